//! Logging in to MySQL, Aurora MySQL or MariaDB with one version's credentials: verified TLS by
//! default, a bounded time per attempt, and errors that say who tried to log in where, how, and
//! what the server answered (never the password).
//!
//! | secret `ssl`              | `TLS_MODE=verify-full` (default)     | `TLS_MODE=prefer`                          |
//! |---------------------------|--------------------------------------|--------------------------------------------|
//! | `false` / `"false"`       | plaintext                            | plaintext                                  |
//! | `true` / `"true"`         | verify-identity                      | verify-identity                            |
//! | absent or anything else   | verify-identity, no fall-back        | verify-identity, then plaintext (WARN log) |
//!
//! `verify-identity` is MySQL's name (`ssl-mode=VERIFY_IDENTITY`) for what PostgreSQL calls
//! `verify-full`: the server certificate must chain to the CA bundle **and** name the host.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rotation::config::ConfigError;
pub use rotation::database::login::{host_and_port, LoginError, LoginFailure, TLS_DISABLED};
use rotation::database::login::{Login, LoginSettings, TlsLabels};
use rotation::database::tunnel::Tunnel;
use rotation::database::DatabaseSecret;
use rotation::TargetError;
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, MySqlConnection};

use crate::config::TlsMode;

/// The TLS modes a login can use, as they appear in logs and errors (and [`TLS_DISABLED`]).
pub const TLS_VERIFY_IDENTITY: &str = "verify-identity";
/// The plaintext retry of `TLS_MODE=prefer`, after the verified TLS attempt failed.
pub const TLS_DISABLED_AFTER_FALLBACK: &str = "disabled, after verify-identity failed";

const TLS_LABELS: TlsLabels = TlsLabels {
    verified: TLS_VERIFY_IDENTITY,
    after_fallback: TLS_DISABLED_AFTER_FALLBACK,
};

/// Logs in to MySQL or MariaDB. Built once at start-up: the CA bundle is read here, once.
#[derive(Clone)]
pub struct Connector(LoginSettings);

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Connector {
    pub fn new(
        tls_mode: TlsMode,
        ca_bundle: Option<PathBuf>,
        connect_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        LoginSettings::new(tls_mode, ca_bundle, connect_timeout).map(Connector)
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.0.tls_mode()
    }

    pub fn connect_timeout(&self) -> Duration {
        self.0.connect_timeout()
    }

    /// Logs in with one version's credentials, with TLS as the secret's `ssl` and `TLS_MODE`
    /// say (see the module's table). Logs at INFO which TLS mode the login used.
    pub async fn connect(&self, secret: &DatabaseSecret) -> Result<MySqlConnection, LoginError> {
        self.login(secret).await.map(|(connection, _)| connection)
    }

    /// [`Connector::connect`], also saying which TLS mode the login used.
    pub async fn login(
        &self,
        secret: &DatabaseSecret,
    ) -> Result<(MySqlConnection, &'static str), LoginError> {
        self.0
            .login(secret, TLS_LABELS, |tls| self.attempt(secret, tls))
            .await
    }

    /// Logs in, runs `SELECT NOW()` and logs out: proof that the credentials work.
    pub async fn verify_login(&self, secret: &DatabaseSecret) -> Result<(), LoginError> {
        let (mut connection, tls) = self.login(secret).await?;
        let limit = self.connect_timeout();
        let queried = tokio::time::timeout(
            limit,
            sqlx::raw_sql("SELECT NOW()").execute(&mut connection),
        )
        .await;
        let result = match queried {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(login_error(secret, tls, &error)),
            Err(_) => Err(LoginError::timeout(secret, tls, limit, "SELECT NOW()")),
        };
        close(connection).await;
        result
    }

    /// One connection attempt with the given TLS mode, within the connect timeout.
    async fn attempt(
        &self,
        secret: &DatabaseSecret,
        tls: &'static str,
    ) -> Result<(MySqlConnection, &'static str), LoginError> {
        let options = self.options(secret, tls);
        let connecting = async {
            // The TCP leg with TCP_NODELAY, which sqlx 0.9.0 leaves off (see the tunnel's docs).
            let tunnel = Tunnel::open(&secret.host, secret.port, "mysqld.sock")
                .await
                .map_err(sqlx::Error::Io)?;
            let socket = tunnel.dir().join("mysqld.sock");
            let connection = MySqlConnection::connect_with(&options.socket(socket)).await?;
            tunnel.keep();
            Ok::<_, sqlx::Error>(connection)
        };
        self.0
            .attempt(secret, tls, TLS_LABELS, connecting, login_error)
            .await
    }

    fn options(&self, secret: &DatabaseSecret, tls: &'static str) -> MySqlConnectOptions {
        let mut options = MySqlConnectOptions::new()
            .host(&secret.host)
            .port(secret.port)
            .username(&secret.username)
            .password(secret.password.expose_secret())
            // utf8mb4 on both sides: names are UTF-8, and no multi-byte character set (GBK,
            // Big5, SJIS) can turn a quoted backslash into part of a character.
            .charset("utf8mb4")
            // Keep the server's sql_mode (sqlx would add PIPES_AS_CONCAT and
            // NO_ENGINE_SUBSTITUTION) and time zone: the session is the account's as configured.
            .pipes_as_concat(false)
            .no_engine_substitution(false)
            .timezone(None)
            // Statements are never prepared twice on these short-lived connections.
            .statement_cache_capacity(0)
            // sqlx logs statements at DEBUG and slow ones at WARN; `ALTER USER … IDENTIFIED BY`
            // holds the password, which stays out of the function's logs at every level.
            .disable_statement_logging();
        if let Some(dbname) = &secret.dbname {
            options = options.database(dbname);
        }
        if tls == TLS_VERIFY_IDENTITY {
            options = options.ssl_mode(MySqlSslMode::VerifyIdentity);
            if let Some(pem) = self.0.ca_pem() {
                options = options.ssl_ca_from_pem(pem.to_vec());
            }
        } else {
            options = options.ssl_mode(MySqlSslMode::Disabled);
        }
        options
    }
}

#[async_trait::async_trait]
impl Login for Connector {
    type Connection = MySqlConnection;

    async fn login_as(&self, secret: &DatabaseSecret) -> Result<MySqlConnection, LoginError> {
        self.connect(secret).await
    }

    async fn set_own_password(
        &self,
        connection: &mut MySqlConnection,
        user: &str,
        new: &SecretString,
        old: &SecretString,
    ) -> Result<(), TargetError> {
        crate::single_user::change_own_password(connection, user, new, old).await
    }

    async fn log_out(&self, connection: MySqlConnection) {
        close(connection).await;
    }
}

async fn close(connection: MySqlConnection) {
    // The work is done; a failure to say goodbye changes nothing.
    let _ = connection.close().await;
}

/// Server error numbers that mean the server refused these credentials:
/// 1044 no access to the database, 1045 access denied (bad password, no such account),
/// 1049 unknown database, 1130 host not allowed to connect, 1698 access denied without a
/// password, 1820 and 1862 password expired, 3118 (MySQL) and 4151 (MariaDB) account locked.
pub const REJECTED_LOGIN_ERRORS: [u16; 9] = [1044, 1045, 1049, 1130, 1698, 1820, 1862, 3118, 4151];

/// Server errors after which a later attempt may succeed: too many connections (1040), shutdown
/// (1053), lock wait timeout (1205), deadlock (1213), a resource limit of the account (1226),
/// query interrupted (1317), MariaDB's and MySQL's statement time limits (1969, 3024).
const TRANSIENT_SERVER_ERRORS: [u16; 8] = [1040, 1053, 1205, 1213, 1226, 1317, 1969, 3024];

/// The server error number of a MySQL or MariaDB error, when there is one.
pub fn error_number(error: &sqlx::Error) -> Option<u16> {
    error
        .as_database_error()
        .and_then(|database| database.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// The server's message with its error number and SQLSTATE: `Access denied for user … (error
/// 1045, SQLSTATE 28000)`.
pub fn describe_database_error(database: &dyn sqlx::error::DatabaseError) -> String {
    match database.try_downcast_ref::<MySqlDatabaseError>() {
        Some(mysql) => {
            let message = withhold_statement_text(mysql.message());
            match mysql.code() {
                Some(state) => format!("{message} (error {}, SQLSTATE {state})", mysql.number()),
                None => format!("{message} (error {})", mysql.number()),
            }
        }
        None => withhold_statement_text(database.message()),
    }
}

/// A syntax error (1064, 1149) quotes the statement from where parsing stopped, "… near
/// '`<text>`' at line 1", and a password statement's text holds the password: that quote never
/// leaves the function.
pub fn withhold_statement_text(message: &str) -> String {
    match message.find(" near '") {
        Some(start) => format!("{} near (statement text withheld)", &message[..start]),
        None => message.to_owned(),
    }
}

fn login_error(secret: &DatabaseSecret, tls: &'static str, error: &sqlx::Error) -> LoginError {
    let (kind, message) = match error {
        sqlx::Error::Database(database) => {
            let kind = match error_number(error) {
                Some(number) if REJECTED_LOGIN_ERRORS.contains(&number) => LoginFailure::Rejected,
                Some(number) if TRANSIENT_SERVER_ERRORS.contains(&number) => {
                    LoginFailure::Unreachable
                }
                // Any other server error (below 2000, or MySQL 8's 3000-4999 range) is the
                // server refusing the request, which it will refuse again; 2000-2999 are the
                // client's own (lost connection and the like).
                Some(number) if !(2000..3000).contains(&number) => LoginFailure::Rejected,
                _ => LoginFailure::Unreachable,
            };
            (kind, describe_database_error(database.as_ref()))
        }
        // The client refused to go on with these options: trying again will not help.
        sqlx::Error::Configuration(_) => (LoginFailure::Rejected, error.to_string()),
        other => (LoginFailure::Unreachable, other.to_string()),
    };
    LoginError::new(kind, secret, tls, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotation::TargetError;

    #[test]
    fn a_syntax_error_never_quotes_the_statement_it_stopped_in() {
        let message = "You have an error in your SQL syntax; check the manual that corresponds to \
                       your MariaDB server version for the right syntax to use near \
                       'PASSWORD('s3cr3t-pw')' at line 1";
        let shown = withhold_statement_text(message);
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.ends_with("for the right syntax to use near (statement text withheld)"));
        assert_eq!(withhold_statement_text("Access denied"), "Access denied");
    }
    use rotation::database::MYSQL;
    use rotation::SecretDocument;

    fn secret(ssl: &str) -> DatabaseSecret {
        let json = format!(
            r#"{{"engine":"mysql","host":"127.0.0.1","port":1,"username":"app","password":"pw-s3cret"{ssl}}}"#
        );
        let document = SecretDocument::parse(&json).expect("JSON");
        DatabaseSecret::from_document(&document, &MYSQL, "test").expect("valid")
    }

    #[test]
    fn a_login_error_names_user_host_port_and_tls_mode() {
        let error = LoginError {
            kind: LoginFailure::Rejected,
            host: "db.example".into(),
            port: 3306,
            user: "app".into(),
            tls: TLS_VERIFY_IDENTITY,
            message: "Access denied for user 'app'@'10.0.0.1' (using password: YES) (error 1045, \
                      SQLSTATE 28000)"
                .into(),
        };
        assert_eq!(
            error.to_string(),
            "login as app to db.example:3306 (TLS verify-identity) failed: Access denied for \
             user 'app'@'10.0.0.1' (using password: YES) (error 1045, SQLSTATE 28000)"
        );
        assert!(error.is_rejected());
        let target: TargetError = error.clone().into();
        assert_eq!(target.error_type(), "TargetRejected");
        let unreachable = LoginError {
            kind: LoginFailure::Unreachable,
            host: "::1".into(),
            ..error
        };
        assert!(unreachable.to_string().contains("[::1]:3306"));
        assert_eq!(
            TargetError::from(unreachable).error_type(),
            "TargetUnreachable"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_bundle_is_a_configuration_error() {
        let missing = Connector::new(
            TlsMode::VerifyFull,
            Some(PathBuf::from("/no/such/ca.pem")),
            Duration::from_secs(1),
        )
        .expect_err("missing");
        assert_eq!(missing.variable, "CA_BUNDLE");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let error = Connector::new(TlsMode::VerifyFull, Some(empty), Duration::from_secs(1))
            .expect_err("no certificate");
        assert!(error.problem.contains("no PEM certificate"), "{error:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_the_error_never_shows_the_password() {
        let connector =
            Connector::new(TlsMode::Prefer, None, Duration::from_secs(2)).expect("connector");
        let error = connector
            .connect(&secret(""))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.kind, LoginFailure::Unreachable);
        assert_eq!(error.tls, TLS_DISABLED_AFTER_FALLBACK);
        assert!(error.message.contains("verify-identity attempt"), "{error}");
        assert!(!error.to_string().contains("pw-s3cret"));
        assert!(!format!("{error:?}").contains("pw-s3cret"));
        assert!(!format!("{connector:?}").contains("pw-s3cret"));

        let error = connector
            .connect(&secret(r#","ssl":"FALSE""#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_DISABLED);
        let error = connector
            .connect(&secret(r#","ssl":true"#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_VERIFY_IDENTITY, "ssl true never falls back");

        let strict =
            Connector::new(TlsMode::VerifyFull, None, Duration::from_secs(2)).expect("connector");
        let error = strict
            .connect(&secret(""))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_VERIFY_IDENTITY, "no fall-back by default");
    }
}
