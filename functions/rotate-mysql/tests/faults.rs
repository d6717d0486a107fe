//! Faults on the way to MariaDB: a proxy in front of the server refuses connections or cuts one
//! right after the password statement reached the server. Each fault must give a clear,
//! classified error within the step's time bound, and the rotation retried as Secrets Manager
//! would must finish it.

mod support;

use std::time::Duration;

use rotation_tests::orchestrator::Orchestrator;
use rotation_tests::proxy::{ConnectionFault, Proxy};
use serde_json::json;
use support::{login, mariadb, template_secret, unique, AppUser, Fixture, Login};

/// Far inside the 30 s Lambda timeout the template sets, and above every timeout in the code.
const STEP_BOUND: Duration = Duration::from_secs(28);

#[tokio::test]
async fn refused_and_cut_connections_are_classified_and_the_retry_finishes_the_rotation() {
    let db = mariadb().await;
    let proxy = Proxy::tcp(([127, 0, 0, 1], db.port()).into())
        .await
        .expect("a proxy in front of MariaDB");
    for (what, ssl, fault) in [
        ("refused", true, ConnectionFault::Refuse),
        // TLS off so the proxy can see the statement; MariaDB's form is SET PASSWORD.
        (
            "cut mid-statement",
            false,
            ConnectionFault::CutAfter("SET PASSWORD".to_owned()),
        ),
    ] {
        let user = AppUser::create(&unique("faults"), "%", "initial-Passw0rd-fault").await;
        let mut secret = template_secret("mariadb", &user.name, &user.password).await;
        secret["port"] = json!(proxy.port());
        if !ssl {
            secret["ssl"] = json!(false);
        }
        let fixture = Fixture::start(&secret, &[("CONNECT_TIMEOUT_SECONDS", "1")]).await;
        let orchestrator: Orchestrator<'_> = fixture.orchestrator();
        proxy.fail_connections(100, fault);
        let token = fixture.moto.start_rotation(&fixture.arn).await;
        let created = orchestrator
            .invoke(&fixture.arn, &token, "createSecret")
            .await;
        assert!(created.invocation.clone().succeeded().is_ok(), "{what}");
        let set = orchestrator.invoke(&fixture.arn, &token, "setSecret").await;
        assert!(set.duration < STEP_BOUND, "{what}: {:?}", set.duration);
        let (error_type, message) = set.invocation.failed().expect("setSecret fails");
        assert_eq!(error_type, "TargetUnreachable", "{what}: {message}");
        assert!(
            message.contains(&format!("{}", proxy.port())),
            "{what}: names the server: {message}"
        );
        proxy.heal();
        orchestrator
            .run_steps(&fixture.arn, token)
            .await
            .expect_success();
        let password = fixture.password_at("AWSCURRENT").await;
        assert_eq!(login(&user.name, &password).await, Login::Ok, "{what}");
        assert_eq!(
            login(&user.name, &user.password).await,
            Login::Rejected,
            "{what}"
        );
        fixture.stop().await;
        user.drop().await;
    }
}
