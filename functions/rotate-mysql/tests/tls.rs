//! TLS as the function uses it, against the stack's MariaDB, which accepts plaintext as well as
//! TLS: whenever no plaintext login happens, it is the function that refused to fall back.
//!
//! The proof that no login was attempted is the server's own count: with `userstat` on,
//! `information_schema.USER_STATISTICS` has a row for every user name that reached
//! authentication, denied or not. A TLS handshake the client abandons never gets that far.
//!
//! The server certificate names `localhost`, 127.0.0.1 and ::1. The host-name mismatch case
//! reaches the same server as `::ffff:127.0.0.1` (the IPv4-mapped IPv6 address): a different
//! name for the same socket, which the certificate does not list.

mod support;

use rotation_tests::runtime_api::Invocation;
use serde_json::json;
use sqlx::Connection;
use support::{
    admin, assert_no_secret_in, login, mariadb, run_as_admin, template_secret, unique, AppUser,
    Fixture, Login,
};

/// The line the function logs for each login, with the TLS mode it used.
const VERIFIED_LOGIN: &str =
    "Successfully established SSL/TLS (verify-identity) connection as user";
const PLAINTEXT_LOGIN: &str = "Successfully established non SSL/TLS connection as user";
const FALLBACK_WARNING: &str = "retrying in plaintext";

async fn wrong_ca() -> String {
    rotation_tests::stack::tls()
        .await
        .wrong_ca_cert_path()
        .display()
        .to_string()
}

/// Turns on MariaDB's per-user statistics (global, harmless to the other tests).
async fn count_logins() {
    run_as_admin(&["SET GLOBAL userstat = 1".to_owned()]).await;
}

/// How many connections as `user` reached authentication (successful or denied).
async fn logins_reaching_the_server(user: &str) -> u64 {
    let mut connection = admin().await;
    let count: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(TOTAL_CONNECTIONS + DENIED_CONNECTIONS) AS SIGNED)
         FROM information_schema.USER_STATISTICS WHERE USER = ?",
    )
    .bind(user)
    .fetch_one(&mut connection)
    .await
    .expect("USER_STATISTICS");
    let _ = connection.close().await;
    count.unwrap_or(0).try_into().expect("a count")
}

/// A rotation that must fail at setSecret because no login can be made over verified TLS;
/// returns the error message after checking its type, and checks that no login as the user
/// reached the server at all (a plaintext attempt would have).
async fn expect_tls_failure(fixture: &Fixture, user: &AppUser) -> String {
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
        error_message.contains(&format!("login as {} to ", user.name)),
        "{error_message}"
    );
    assert!(
        error_message.contains("(TLS verify-identity)"),
        "{error_message}"
    );

    assert_eq!(
        logins_reaching_the_server(&user.name).await,
        0,
        "no login as the user reached the server (no plaintext attempt)"
    );
    let output = fixture.output();
    assert!(!output.contains(FALLBACK_WARNING), "{output}");
    assert!(!output.contains(PLAINTEXT_LOGIN), "{output}");
    assert_eq!(
        login(&user.name, &user.password).await,
        Login::Ok,
        "the password did not change"
    );
    error_message.clone()
}

#[tokio::test]
async fn verify_identity_with_the_stack_ca_succeeds_and_the_log_names_the_tls_mode() {
    let user = AppUser::create(&unique("tls_ok"), "%", "initial-Passw0rd-tls").await;
    let fixture = Fixture::start(
        &template_secret("mariadb", &user.name, &user.password).await,
        &[],
    )
    .await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&user.name, &password).await, Login::Ok);
    let output = fixture.output();
    assert!(
        output.contains(&format!("{VERIFIED_LOGIN} '{}'", user.name)),
        "{output}"
    );
    assert!(output.contains("tls=\"verify-identity\""), "{output}");
    assert!(!output.contains(PLAINTEXT_LOGIN), "{output}");
    assert_no_secret_in(&output, &[user.password.clone(), password], "the output");
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn a_wrong_ca_fails_with_a_clear_unreachable_error_and_no_plaintext_attempt() {
    let db = mariadb().await;
    count_logins().await;
    let user = AppUser::create(&unique("tls_wrong_ca"), "%", "initial-Passw0rd-ca").await;
    let fixture = Fixture::start(
        &template_secret("mysql", &user.name, &user.password).await,
        &[("CA_BUNDLE", &wrong_ca().await)],
    )
    .await;
    let message = expect_tls_failure(&fixture, &user).await;
    assert!(
        message.contains(&format!("localhost:{}", db.port())),
        "{message}"
    );
    assert!(
        message.contains("UnknownIssuer") || message.contains("unknown issuer"),
        "the TLS error says what is wrong: {message}"
    );
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_list_fails_without_a_plaintext_attempt() {
    let db = mariadb().await;
    count_logins().await;
    let user = AppUser::create(&unique("tls_name"), "%", "initial-Passw0rd-name").await;
    let mut secret = template_secret("mariadb", &user.name, &user.password).await;
    secret["host"] = json!("::ffff:127.0.0.1");
    let fixture = Fixture::start(&secret, &[]).await;
    let message = expect_tls_failure(&fixture, &user).await;
    assert!(
        message.contains(&format!("[::ffff:127.0.0.1]:{}", db.port())),
        "{message}"
    );
    assert!(
        message.contains("NotValidForName") || message.contains("not valid for name"),
        "the TLS error says the name does not match: {message}"
    );
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn tls_mode_prefer_with_a_wrong_ca_falls_back_to_plaintext_with_a_warning() {
    let db = mariadb().await;
    count_logins().await;
    let user = AppUser::create(&unique("tls_prefer"), "%", "initial-Passw0rd-prefer").await;
    let fixture = Fixture::start(
        &template_secret("mariadb", &user.name, &user.password).await,
        &[("CA_BUNDLE", &wrong_ca().await), ("TLS_MODE", "prefer")],
    )
    .await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&user.name, &password).await, Login::Ok);
    let output = fixture.output();
    let warning = output
        .lines()
        .find(|line| line.contains(FALLBACK_WARNING))
        .unwrap_or_else(|| panic!("a fall-back warning: {output}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("localhost:{}", db.port())),
        "{warning}"
    );
    assert!(
        warning.contains("UnknownIssuer"),
        "names the TLS error: {warning}"
    );
    // The plaintext logins reach the server under the user's name: the check the no-fall-back
    // tests rely on does see a plaintext attempt when there is one.
    assert!(logins_reaching_the_server(&user.name).await > 0);
    assert!(output.contains(PLAINTEXT_LOGIN), "{output}");
    assert!(!output.contains(VERIFIED_LOGIN), "{output}");
    assert_no_secret_in(&output, &[user.password.clone(), password], "the output");
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn ssl_false_in_the_secret_logs_in_in_plaintext() {
    let user = AppUser::create(&unique("tls_off"), "%", "initial-Passw0rd-off").await;
    let mut secret = template_secret("mysql", &user.name, &user.password).await;
    secret["ssl"] = json!(false);
    // With a CA that verifies nothing, only a plaintext login can succeed.
    let fixture = Fixture::start(&secret, &[("CA_BUNDLE", &wrong_ca().await)]).await;
    fixture.rotate().await.expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&user.name, &password).await, Login::Ok);
    assert_eq!(fixture.value_at("AWSCURRENT").await["ssl"], json!(false));
    let output = fixture.output();
    assert!(
        output.contains(&format!("{PLAINTEXT_LOGIN} '{}'", user.name)),
        "{output}"
    );
    assert!(output.contains("tls=\"disabled\""), "{output}");
    assert!(!output.contains(VERIFIED_LOGIN), "{output}");
    assert!(!output.contains(FALLBACK_WARNING), "{output}");
    assert_no_secret_in(&output, &[user.password.clone(), password], "the output");
    fixture.stop().await;
    user.drop().await;
}
