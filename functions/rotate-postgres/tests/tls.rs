//! TLS as the function uses it, against the stack's PostgreSQL, whose `pg_hba.conf` accepts
//! plaintext as well as TLS: whenever no plaintext login happens, it is the function that
//! refused to fall back.
//!
//! The server certificate names `localhost`, 127.0.0.1 and ::1. The host-name mismatch case
//! reaches the same server as `::ffff:127.0.0.1` (the IPv4-mapped IPv6 address): a different
//! name for the same socket, which the certificate does not list.

mod support;

use rotation_tests::runtime_api::Invocation;
use serde_json::json;
use support::{
    assert_no_secret_in, login, postgres, server_log_len, server_log_since, template_secret,
    unique, AppRole, Fixture, Login,
};

/// The line the function logs for each login, with the TLS mode it used.
const VERIFIED_LOGIN: &str = "Successfully established SSL/TLS (verify-full) connection as user";
const PLAINTEXT_LOGIN: &str = "Successfully established non SSL/TLS connection as user";
const FALLBACK_WARNING: &str = "retrying in plaintext";

async fn wrong_ca() -> String {
    rotation_tests::stack::tls()
        .await
        .wrong_ca_cert_path()
        .display()
        .to_string()
}

/// A rotation that must fail at setSecret because no login can be made over verified TLS;
/// returns the error message after checking its type, and checks that no login reached the
/// server at all (a plaintext attempt would have shown the role's name in the server log).
async fn expect_tls_failure(fixture: &Fixture, role: &AppRole, log_offset: usize) -> String {
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
    assert!(
        error_message.contains("Unable to log into database with previous, current, or pending"),
        "{error_message}"
    );
    assert!(
        error_message.contains(&format!("login as {} to ", role.name)),
        "{error_message}"
    );
    assert!(
        error_message.contains("(TLS verify-full)"),
        "{error_message}"
    );

    let server_log = server_log_since(log_offset).await;
    assert!(
        !server_log.contains(&role.name),
        "no login as the role reached the server (no plaintext attempt):\n{server_log}"
    );
    let output = fixture.output();
    assert!(!output.contains(FALLBACK_WARNING), "{output}");
    assert!(!output.contains(PLAINTEXT_LOGIN), "{output}");
    assert_eq!(
        login(&role.name, &role.password).await,
        Login::Ok,
        "the password did not change"
    );
    error_message.clone()
}

#[tokio::test]
async fn verify_full_with_the_stack_ca_succeeds_and_the_log_names_the_tls_mode() {
    let role = AppRole::create(&unique("tls_ok"), "initial-Passw0rd-tls").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&role.name, &password).await, Login::Ok);
    let output = fixture.output();
    assert!(
        output.contains(&format!("{VERIFIED_LOGIN} '{}'", role.name)),
        "{output}"
    );
    assert!(output.contains("tls=\"verify-full\""), "{output}");
    assert!(!output.contains(PLAINTEXT_LOGIN), "{output}");
    assert_no_secret_in(&output, &[role.password.clone(), password], "the output");
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_wrong_ca_fails_with_a_clear_unreachable_error_and_no_plaintext_attempt() {
    let pg = postgres().await;
    let role = AppRole::create(&unique("tls_wrong_ca"), "initial-Passw0rd-ca").await;
    let offset = server_log_len().await;
    let fixture = Fixture::start(
        &template_secret(&role.name, &role.password).await,
        &[("CA_BUNDLE", &wrong_ca().await)],
    )
    .await;
    let message = expect_tls_failure(&fixture, &role, offset).await;
    assert!(
        message.contains(&format!("localhost:{}", pg.port())),
        "{message}"
    );
    assert!(
        message.contains("UnknownIssuer") || message.contains("unknown issuer"),
        "the TLS error says what is wrong: {message}"
    );
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_list_fails_without_a_plaintext_attempt() {
    let pg = postgres().await;
    let role = AppRole::create(&unique("tls_name"), "initial-Passw0rd-name").await;
    let offset = server_log_len().await;
    let mut secret = template_secret(&role.name, &role.password).await;
    secret["host"] = json!("::ffff:127.0.0.1");
    let fixture = Fixture::start(&secret, &[]).await;
    let message = expect_tls_failure(&fixture, &role, offset).await;
    assert!(
        message.contains(&format!("[::ffff:127.0.0.1]:{}", pg.port())),
        "{message}"
    );
    assert!(
        message.contains("NotValidForName") || message.contains("not valid for name"),
        "the TLS error says the name does not match: {message}"
    );
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn tls_mode_prefer_with_a_wrong_ca_falls_back_to_plaintext_with_a_warning() {
    let pg = postgres().await;
    let role = AppRole::create(&unique("tls_prefer"), "initial-Passw0rd-prefer").await;
    let offset = server_log_len().await;
    let fixture = Fixture::start(
        &template_secret(&role.name, &role.password).await,
        &[("CA_BUNDLE", &wrong_ca().await), ("TLS_MODE", "prefer")],
    )
    .await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&role.name, &password).await, Login::Ok);
    let output = fixture.output();
    let warning = output
        .lines()
        .find(|line| line.contains(FALLBACK_WARNING))
        .unwrap_or_else(|| panic!("a fall-back warning: {output}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("localhost:{}", pg.port())),
        "{warning}"
    );
    assert!(
        warning.contains("UnknownIssuer"),
        "names the TLS error: {warning}"
    );
    // The plaintext logins show in the server log under the role's name: the check the
    // no-fall-back tests rely on does see a plaintext attempt when there is one.
    let server_log = server_log_since(offset).await;
    assert!(
        server_log.contains(&format!("connection authorized: user={}", role.name)),
        "{server_log}"
    );
    assert!(output.contains(PLAINTEXT_LOGIN), "{output}");
    assert!(!output.contains(VERIFIED_LOGIN), "{output}");
    assert_no_secret_in(&output, &[role.password.clone(), password], "the output");
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn ssl_false_in_the_secret_logs_in_in_plaintext() {
    let role = AppRole::create(&unique("tls_off"), "initial-Passw0rd-off").await;
    let mut secret = template_secret(&role.name, &role.password).await;
    secret["ssl"] = json!(false);
    // With a CA that verifies nothing, only a plaintext login can succeed.
    let fixture = Fixture::start(&secret, &[("CA_BUNDLE", &wrong_ca().await)]).await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&role.name, &password).await, Login::Ok);
    assert_eq!(fixture.value_at("AWSCURRENT").await["ssl"], json!(false));
    let output = fixture.output();
    assert!(
        output.contains(&format!("{PLAINTEXT_LOGIN} '{}'", role.name)),
        "{output}"
    );
    assert!(output.contains("tls=\"disabled\""), "{output}");
    assert!(!output.contains(VERIFIED_LOGIN), "{output}");
    assert!(!output.contains(FALLBACK_WARNING), "{output}");
    assert_no_secret_in(&output, &[role.password.clone(), password], "the output");
    fixture.stop().await;
    role.drop().await;
}
