//! TLS as the function uses it, against a server that accepts plaintext as well as TLS:
//! whenever no plaintext login happens, it is the function that refused to fall back.
//!
//! The server certificate names `localhost`, 127.0.0.1 and ::1. The host-name mismatch case
//! reaches the same server as `::ffff:127.0.0.1` (the IPv4-mapped IPv6 address): a different
//! name for the same socket, which the certificate does not list. Whether a login reached the
//! server is the server's own record ([`DatabaseUnderTest::logins_seen`]).

use serde_json::json;

use super::{DatabaseUnderTest, Fixture, User};
use crate::login::Login;
use crate::runtime_api::Invocation;

const PLAINTEXT_LOGIN: &str = "Successfully established non SSL/TLS connection as user";
const FALLBACK_WARNING: &str = "retrying in plaintext";

/// The line the function logs for a verified login.
fn verified_login(database: &dyn DatabaseUnderTest) -> String {
    format!(
        "Successfully established SSL/TLS ({}) connection as user",
        database.verified_tls_mode()
    )
}

async fn wrong_ca() -> String {
    crate::stack::tls()
        .await
        .wrong_ca_cert_path()
        .display()
        .to_string()
}

/// A rotation that must fail at setSecret because no login can be made over verified TLS;
/// returns the error message after checking its type, and checks that no login as the user
/// reached the server at all (a plaintext attempt would have).
async fn expect_tls_failure(fixture: &Fixture<'_>, user: &User, mark: u64) -> String {
    let database = fixture.database;
    let record = fixture.rotate().await;
    let failed = record.failure().expect("the rotation fails");
    assert_eq!(failed.step, "setSecret");
    let Invocation::Failed {
        error_type,
        error_message,
    } = &failed.invocation
    else {
        panic!("expected a function error, got {:?}", failed.invocation);
    };
    assert_eq!(error_type, "TargetUnreachable", "{error_message}");
    for expected in [
        "Unable to log into database with previous, current, or pending".to_owned(),
        format!("login as {} to ", user.name),
        format!("(TLS {})", database.verified_tls_mode()),
    ] {
        assert!(error_message.contains(&expected), "{error_message}");
    }
    assert!(
        !database.logins_seen(&user.name, mark).await,
        "no login as the user reached the server (no plaintext attempt)"
    );
    let output = fixture.output();
    assert!(!output.contains(FALLBACK_WARNING), "{output}");
    assert!(!output.contains(PLAINTEXT_LOGIN), "{output}");
    assert_eq!(
        database.login(&user.name, &user.password).await,
        Login::Ok,
        "the password did not change"
    );
    error_message.clone()
}

pub async fn verified_tls_with_the_stack_ca_succeeds_and_the_log_names_the_tls_mode(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "tls_ok").await;
    let fixture = Fixture::for_user(database, &user, &[]).await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(database.login(&user.name, &password).await, Login::Ok);
    let output = fixture.output();
    assert!(
        output.contains(&format!("{} '{}'", verified_login(database), user.name)),
        "{output}"
    );
    let mode = format!("tls=\"{}\"", database.verified_tls_mode());
    assert!(output.contains(&mode), "{output}");
    assert!(!output.contains(PLAINTEXT_LOGIN), "{output}");
    database.assert_no_secret_in(&output, &[user.password.clone(), password], "the output");
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn a_wrong_ca_fails_with_a_clear_unreachable_error_and_no_plaintext_attempt(
    database: &dyn DatabaseUnderTest,
) {
    let server = database.server().await;
    let user = User::create(database, "tls_wrong_ca").await;
    let mark = database.mark_logins().await;
    let fixture = Fixture::for_user(database, &user, &[("CA_BUNDLE", &wrong_ca().await)]).await;
    let message = expect_tls_failure(&fixture, &user, mark).await;
    assert!(
        message.contains(&format!("{}:{}", server.host, server.port)),
        "{message}"
    );
    assert!(
        message.contains("UnknownIssuer") || message.contains("unknown issuer"),
        "the TLS error says what is wrong: {message}"
    );
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn a_host_name_the_certificate_does_not_list_fails_without_a_plaintext_attempt(
    database: &dyn DatabaseUnderTest,
) {
    let server = database.server().await;
    let user = User::create(database, "tls_name").await;
    let mark = database.mark_logins().await;
    let mut secret =
        super::template_secret(database, database.engines()[0], &user.name, &user.password).await;
    secret["host"] = json!("::ffff:127.0.0.1");
    let fixture = Fixture::start(database, &secret, &[]).await;
    let message = expect_tls_failure(&fixture, &user, mark).await;
    assert!(
        message.contains(&format!("[::ffff:127.0.0.1]:{}", server.port)),
        "{message}"
    );
    assert!(
        message.contains("NotValidForName") || message.contains("not valid for name"),
        "the TLS error says the name does not match: {message}"
    );
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn tls_mode_prefer_with_a_wrong_ca_falls_back_to_plaintext_with_a_warning(
    database: &dyn DatabaseUnderTest,
) {
    let server = database.server().await;
    let user = User::create(database, "tls_prefer").await;
    let mark = database.mark_logins().await;
    let fixture = Fixture::for_user(
        database,
        &user,
        &[("CA_BUNDLE", &wrong_ca().await), ("TLS_MODE", "prefer")],
    )
    .await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(database.login(&user.name, &password).await, Login::Ok);
    let output = fixture.output();
    let warning = output
        .lines()
        .find(|line| line.contains(FALLBACK_WARNING))
        .unwrap_or_else(|| panic!("a fall-back warning: {output}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("{}:{}", server.host, server.port)),
        "{warning}"
    );
    assert!(
        warning.contains("UnknownIssuer"),
        "names the TLS error: {warning}"
    );
    // The plaintext logins reach the server under the user's name: the check the no-fall-back
    // tests rely on does see a plaintext attempt when there is one.
    assert!(database.logins_seen(&user.name, mark).await);
    assert!(output.contains(PLAINTEXT_LOGIN), "{output}");
    assert!(!output.contains(&verified_login(database)), "{output}");
    database.assert_no_secret_in(&output, &[user.password.clone(), password], "the output");
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn ssl_false_in_the_secret_logs_in_in_plaintext(database: &dyn DatabaseUnderTest) {
    let user = User::create(database, "tls_off").await;
    let mut secret =
        super::template_secret(database, database.engines()[0], &user.name, &user.password).await;
    secret["ssl"] = json!(false);
    // With a CA that verifies nothing, only a plaintext login can succeed.
    let fixture = Fixture::start(database, &secret, &[("CA_BUNDLE", &wrong_ca().await)]).await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(database.login(&user.name, &password).await, Login::Ok);
    assert_eq!(fixture.value_at("AWSCURRENT").await["ssl"], json!(false));
    let output = fixture.output();
    assert!(
        output.contains(&format!("{PLAINTEXT_LOGIN} '{}'", user.name)),
        "{output}"
    );
    assert!(output.contains("tls=\"disabled\""), "{output}");
    assert!(!output.contains(&verified_login(database)), "{output}");
    assert!(!output.contains(FALLBACK_WARNING), "{output}");
    database.assert_no_secret_in(&output, &[user.password.clone(), password], "the output");
    fixture.stop().await;
    user.drop(database).await;
}
