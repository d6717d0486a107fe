//! Proves the local stack: moto answers the Secrets Manager API, and PostgreSQL and MariaDB
//! accept password logins over verified TLS, refuse wrong passwords and fail verification
//! against an unrelated CA.

use std::time::Instant;

use rotation_tests::stack::{self, mariadb, moto, postgres};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Connection, Row};

fn pg_options(password: &str, ca: &std::path::Path, pg: &stack::Postgres) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(pg.host())
        .port(pg.port())
        .username(pg.superuser())
        .password(password)
        .database("postgres")
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(ca)
}

fn mysql_options(password: &str, ca: &std::path::Path, db: &stack::MariaDb) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .host(db.host())
        .port(db.port())
        .username(db.admin_user())
        .password(password)
        .ssl_mode(MySqlSslMode::VerifyIdentity)
        .ssl_ca(ca)
}

#[tokio::test]
async fn the_whole_stack_starts_once_and_is_shared() {
    let started = Instant::now();
    let first = stack::stack().await;
    eprintln!("stack ready after {:?}", started.elapsed());
    let second = stack::stack().await;
    assert!(std::ptr::eq(first.postgres, second.postgres));
    assert!(std::ptr::eq(first.mariadb, second.mariadb));
    assert!(std::ptr::eq(first.moto, second.moto));
    let ports = [
        first.moto.port(),
        first.postgres.port(),
        first.mariadb.port(),
    ];
    assert!(
        ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2],
        "ports collide: {ports:?}"
    );
}

#[tokio::test]
async fn moto_answers_a_secrets_manager_list_secrets_call() {
    let moto = moto().await;
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let (status, body) = moto
        .call_json("secretsmanager.ListSecrets", "{}")
        .await
        .expect("moto should answer ListSecrets");
    assert_eq!(status, 200, "ListSecrets failed: {body}");
    let answer: serde_json::Value =
        serde_json::from_str(&body).expect("ListSecrets should answer JSON");
    assert!(answer["SecretList"].is_array(), "no SecretList in {body}");
}

#[tokio::test]
async fn postgres_accepts_the_superuser_over_tls_verified_against_the_run_ca() {
    let pg = postgres().await;
    let mut connection =
        PgConnection::connect_with(&pg_options(pg.superuser_password(), pg.ca_cert_path(), pg))
            .await
            .expect("the superuser should connect with verify-full");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connection)
        .await
        .expect("SELECT 1");
    assert_eq!(one, 1);
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut connection)
        .await
        .expect("SHOW ssl");
    assert_eq!(ssl, "on");
    let row = sqlx::query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut connection)
        .await
        .expect("pg_stat_ssl");
    assert!(
        row.get::<bool, _>("ssl"),
        "this connection is not encrypted"
    );
    let version: Option<String> = row.get("version");
    assert!(
        version.is_some_and(|v| v.starts_with("TLS")),
        "no TLS version reported"
    );
    connection.close().await.expect("close");
}

#[tokio::test]
async fn postgres_url_helper_connects_with_verify_full() {
    let pg = postgres().await;
    let mut connection = PgConnection::connect(&pg.superuser_url())
        .await
        .expect("the superuser URL should connect");
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut connection)
        .await
        .expect("server_version_num");
    assert!(
        (150000..160000).contains(&version),
        "not PostgreSQL 15: {version}"
    );
}

#[tokio::test]
async fn postgres_rejects_a_wrong_password() {
    let pg = postgres().await;
    let error = PgConnection::connect_with(&pg_options("not-the-password", pg.ca_cert_path(), pg))
        .await
        .expect_err("a wrong password must be rejected");
    assert!(
        error.to_string().contains("password authentication failed"),
        "unexpected error: {error}"
    );
}

#[tokio::test]
async fn postgres_verify_full_fails_against_an_unrelated_ca() {
    let pg = postgres().await;
    let tls = stack::tls().await;
    let error = PgConnection::connect_with(&pg_options(
        pg.superuser_password(),
        tls.wrong_ca_cert_path(),
        pg,
    ))
    .await
    .expect_err("a certificate from another CA must not verify");
    let message = error.to_string();
    assert!(
        !message.contains("password authentication"),
        "TLS was not the failure: {message}"
    );
}

#[tokio::test]
async fn postgres_hba_conf_allows_only_scram() {
    let pg = postgres().await;
    let hba = std::fs::read_to_string(pg.hba_path()).expect("read pg_hba.conf");
    let rules: Vec<&str> = hba
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    assert!(!rules.is_empty());
    for rule in &rules {
        assert!(!rule.contains("trust"), "trust in pg_hba.conf: {rule}");
        assert!(rule.ends_with("scram-sha-256"), "not SCRAM: {rule}");
    }
    assert!(
        rules.iter().any(|rule| rule.starts_with("hostssl")),
        "no hostssl rule"
    );
}

#[tokio::test]
async fn postgres_logs_every_statement() {
    let pg = postgres().await;
    let mut connection = PgConnection::connect(&pg.superuser_url())
        .await
        .expect("connect");
    let marker = format!("statement-log-marker-{}", std::process::id());
    // The marker is our own alphanumeric text, so inlining it is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT '{marker}'")))
        .execute(&mut connection)
        .await
        .expect("marker query");
    connection.close().await.expect("close");
    let log = pg.statement_log().expect("read the statement log");
    assert!(
        log.contains(&marker),
        "the statement is not in {}",
        pg.log_path().display()
    );
    assert!(
        !log.contains(pg.superuser_password()),
        "the superuser password leaked into the log"
    );
}

#[tokio::test]
async fn mariadb_accepts_the_admin_over_tls_verified_against_the_run_ca() {
    let db = mariadb().await;
    let mut connection =
        MySqlConnection::connect_with(&mysql_options(db.admin_password(), db.ca_cert_path(), db))
            .await
            .expect("the admin should connect with VERIFY_IDENTITY");
    let row = sqlx::query("SHOW STATUS LIKE 'Ssl_cipher'")
        .fetch_one(&mut connection)
        .await
        .expect("SHOW STATUS");
    let cipher: String = row.get(1);
    assert!(!cipher.is_empty(), "the connection is not encrypted");
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut connection)
        .await
        .expect("VERSION()");
    assert!(
        version.starts_with("10.11.") && version.contains("MariaDB"),
        "not MariaDB 10.11: {version}"
    );
    let grants: Vec<String> = sqlx::query_scalar("SHOW GRANTS")
        .fetch_all(&mut connection)
        .await
        .expect("SHOW GRANTS");
    assert!(
        grants
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES ON *.*") && g.contains("WITH GRANT OPTION")),
        "admin lacks ALL PRIVILEGES WITH GRANT OPTION: {grants:?}"
    );
    connection.close().await.expect("close");
}

#[tokio::test]
async fn mariadb_url_helper_connects_with_verify_identity() {
    let db = mariadb().await;
    let mut connection = MySqlConnection::connect(&db.admin_url())
        .await
        .expect("the admin URL should connect");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connection)
        .await
        .expect("SELECT 1");
    assert_eq!(one, 1);
}

#[tokio::test]
async fn mariadb_rejects_a_wrong_password() {
    let db = mariadb().await;
    let error =
        MySqlConnection::connect_with(&mysql_options("not-the-password", db.ca_cert_path(), db))
            .await
            .expect_err("a wrong password must be rejected");
    assert!(
        error.to_string().contains("Access denied"),
        "unexpected error: {error}"
    );
}

#[tokio::test]
async fn mariadb_verify_identity_fails_against_an_unrelated_ca() {
    let db = mariadb().await;
    let tls = stack::tls().await;
    let error = MySqlConnection::connect_with(&mysql_options(
        db.admin_password(),
        tls.wrong_ca_cert_path(),
        db,
    ))
    .await
    .expect_err("a certificate from another CA must not verify");
    assert!(
        !error.to_string().contains("Access denied"),
        "TLS was not the failure: {error}"
    );
}
