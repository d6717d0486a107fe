//! MySQL, Aurora MySQL and MariaDB as a [`rotation_database::Engine`]: how to reach a server,
//! how to read its errors, and the statements of its dialect. The strategies are
//! `rotation_database`'s.
//!
//! `verify-identity` is MySQL's name (`ssl-mode=VERIFY_IDENTITY`) for what PostgreSQL calls
//! `verify-full`: the server certificate must chain to the CA bundle **and** name the host.

use async_trait::async_trait;
use rotation::config::{ConfigError, Environment};
use rotation::password::MYSQL_EXCLUDED_CHARACTERS;
use rotation::TargetError;
use rotation_database::{
    DatabaseSecret, Engine, EngineFamily, NameLimit, PasswordSet, PreviousWording,
    ServerErrorClass, Transport,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlSslMode};
use sqlx::MySqlConnection;

use crate::account::{synchronise, Account};
use crate::sql;

/// The `engine` values and defaults of AWS's MySQL templates.
pub const MYSQL: EngineFamily = EngineFamily {
    engines: &["mysql", "aurora-mysql", "mariadb"],
    name: "mysql",
    default_port: 3306,
    default_dbname: None,
    default_excluded_characters: MYSQL_EXCLUDED_CHARACTERS,
};

/// MariaDB user names may be 80 characters long, whatever `USERNAME_CHARACTER_LIMIT` says.
pub const MARIADB_USERNAME_LIMIT: usize = 80;

/// The MySQL engine, with the one setting only it has.
#[derive(Clone, Copy, Debug)]
pub struct MySql {
    /// `USERNAME_CHARACTER_LIMIT` (AWS's MySQL multi-user template): the longest MySQL user
    /// name, 16 by default (MySQL 5.6); 32 on MySQL 5.7 and later.
    pub username_character_limit: usize,
}

impl Default for MySql {
    fn default() -> Self {
        MySql {
            username_character_limit: 16,
        }
    }
}

impl MySql {
    /// Reads `USERNAME_CHARACTER_LIMIT`, once at start-up.
    pub fn from_environment(env: &Environment) -> Result<Self, ConfigError> {
        let username_character_limit: usize = env.integer("USERNAME_CHARACTER_LIMIT", 16)?;
        if !(1..=MARIADB_USERNAME_LIMIT).contains(&username_character_limit) {
            return Err(ConfigError::new(
                "USERNAME_CHARACTER_LIMIT",
                format!("{username_character_limit} is out of range; use 1 to 80"),
            ));
        }
        Ok(MySql {
            username_character_limit,
        })
    }
}

/// Server error numbers that mean the server refused these credentials:
/// 1044 no access to the database, 1045 access denied (bad password, no such account),
/// 1049 unknown database, 1130 host not allowed to connect, 1698 access denied without a
/// password, 1820 and 1862 password expired, 3118 (MySQL) and 4151 (MariaDB) account locked.
pub const REJECTED_LOGIN_ERRORS: [u16; 9] = [1044, 1045, 1049, 1130, 1698, 1820, 1862, 3118, 4151];

/// Server errors after which a later attempt may succeed, for a login or a statement alike: too
/// many connections (1040), shutdown in progress (1053), lock wait timeout (1205), deadlock
/// (1213), a resource limit of the account (1226), query interrupted (1317), connection killed
/// (1927, MariaDB), statement time-out (1969 MariaDB, 3024 MySQL).
const TRANSIENT_SERVER_ERRORS: [u16; 9] = [1040, 1053, 1205, 1213, 1226, 1317, 1927, 1969, 3024];

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

#[async_trait]
impl Engine for MySql {
    type Connection = MySqlConnection;
    type Account = Account;

    const VERIFIED_TLS: &'static str = "verify-identity";
    const PLAINTEXT_AFTER_FALLBACK: &'static str = "disabled, after verify-identity failed";
    const PROBE: &'static str = "SELECT NOW()";

    fn family(&self) -> &'static EngineFamily {
        &MYSQL
    }

    /// The AWS templates' log lines: their MariaDB template says "MariaDB DB", the MySQL one
    /// "MySQL DB".
    fn server_name(&self, engine: &str) -> &'static str {
        if engine == "mariadb" {
            "MariaDB"
        } else {
            "MySQL"
        }
    }

    fn name_limit(&self, engine: &str) -> NameLimit {
        NameLimit::Characters(if engine == "mariadb" {
            MARIADB_USERNAME_LIMIT
        } else {
            self.username_character_limit
        })
    }

    fn check_user_name(&self, name: &str) -> Result<(), String> {
        sql::check_name("user name", name).map_err(|problem| problem.message)
    }

    fn previous_wording(&self, engine: &str) -> PreviousWording {
        // The AWS MariaDB template says "last valid user", the MySQL one "previous valid user".
        PreviousWording {
            user: if engine == "mariadb" {
                "last valid user"
            } else {
                "previous valid user"
            },
            host: "previous host",
        }
    }

    fn roll_back_in_secret_database(&self) -> bool {
        false
    }

    fn connect_options(
        &self,
        secret: &DatabaseSecret,
        transport: Transport,
        ca_pem: Option<&[u8]>,
    ) -> MySqlConnectOptions {
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
            .statement_cache_capacity(0);
        if let Some(dbname) = &secret.dbname {
            options = options.database(dbname);
        }
        match (transport, ca_pem) {
            (Transport::Plaintext, _) => options.ssl_mode(MySqlSslMode::Disabled),
            (Transport::VerifiedTls, None) => options.ssl_mode(MySqlSslMode::VerifyIdentity),
            (Transport::VerifiedTls, Some(pem)) => options
                .ssl_mode(MySqlSslMode::VerifyIdentity)
                .ssl_ca_from_pem(pem.to_vec()),
        }
    }

    async fn run(&self, connection: &mut MySqlConnection, sql: &str) -> Result<(), sqlx::Error> {
        rotation_database::connection::run_batch(connection, sql).await
    }

    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> (ServerErrorClass, String) {
        let number = error
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number);
        let class = match number {
            Some(number) if REJECTED_LOGIN_ERRORS.contains(&number) => {
                ServerErrorClass::CredentialsRejected
            }
            Some(number) if TRANSIENT_SERVER_ERRORS.contains(&number) => {
                ServerErrorClass::Transient
            }
            _ if error.code().is_some_and(|state| state.starts_with("08")) => {
                ServerErrorClass::Transient
            }
            // 2000-2999 are the client's own errors (lost connection and the like).
            Some(number) if (2000..3000).contains(&number) => ServerErrorClass::Transient,
            // Any other server error (below 2000, or MySQL 8's 3000-4999 range) is the server
            // refusing the request, which it will refuse again.
            _ => ServerErrorClass::Refused,
        };
        (class, describe_database_error(error))
    }

    async fn logged_in_as(&self, connection: &mut MySqlConnection) -> Result<Account, TargetError> {
        let (user, host) = sql::current_account(connection).await?;
        Ok(Account { user, host })
    }

    fn user_of<'a>(&self, account: &'a Account) -> &'a str {
        &account.user
    }

    /// As the logged-in user: read the server's dialect and the account the server matched,
    /// then change that account's password with the statement the **server** needs, whatever
    /// the secret's `engine` says. When the same user name has accounts for other hosts, only
    /// the account this function logs in as changes.
    async fn set_own_password(
        &self,
        connection: &mut MySqlConnection,
        user: &str,
        new: &SecretString,
        old: &SecretString,
    ) -> Result<(), TargetError> {
        let info = sql::server_info(connection).await?;
        let (account_user, account_host) = sql::current_account(connection).await?;
        let account = format!("'{account_user}'@'{account_host}'");
        tracing::info!(
            "setSecret: user {user} is logged in as account {account} on {info}; changing that \
             account's password."
        );
        let statement = sql::set_own_password_replacing(&info, new, old);
        sql::execute(
            connection,
            &format!("changing the password of account {account}"),
            statement.expose_secret(),
        )
        .await
    }

    async fn make_alternate_like(
        &self,
        master: &mut MySqlConnection,
        model: &Account,
        alternate: &str,
        password: &SecretString,
    ) -> Result<PasswordSet, TargetError> {
        let info = sql::server_info(master).await?;
        tracing::info!("setSecret: the master makes {alternate} equal to {model} on {info}");
        let replay = synchronise(master, &info, model, alternate, password).await?;
        tracing::info!(
            "setSecret: {} {} like {}: {} grant statements in {} round trips.",
            if replay.created { "created" } else { "updated" },
            replay.clone,
            replay.model,
            replay.statements,
            replay.round_trips,
        );
        Ok(PasswordSet::ByMaster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn parse(pairs: &[(&str, &str)]) -> Result<MySql, ConfigError> {
        MySql::from_environment(&Environment::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn the_defaults_follow_the_aws_mysql_templates() {
        let engine = parse(&[]).expect("defaults");
        assert_eq!(engine.username_character_limit, 16);
        assert_eq!(engine.name_limit("mysql"), NameLimit::Characters(16));
        assert_eq!(engine.name_limit("mariadb"), NameLimit::Characters(80));
        assert_eq!(MYSQL.default_excluded_characters, MYSQL_EXCLUDED_CHARACTERS);
    }

    #[test]
    fn an_invalid_username_limit_is_refused_naming_the_variable() {
        for value in ["sixteen", "0", "81"] {
            let error = parse(&[("USERNAME_CHARACTER_LIMIT", value)]).expect_err(value);
            assert_eq!(error.variable, "USERNAME_CHARACTER_LIMIT");
        }
    }

    #[test]
    fn a_name_alternates_with_its_clone_within_the_limit() {
        use rotation_database::alternating_users::alternate_username;
        assert_eq!(
            alternate_username("app", NameLimit::Characters(16)).expect("ok"),
            "app_clone"
        );
        assert_eq!(
            alternate_username("app_clone", NameLimit::Characters(16)).expect("ok"),
            "app"
        );
        assert_eq!(
            alternate_username("ü'`\\%", NameLimit::Characters(80)).expect("ok"),
            "ü'`\\%_clone"
        );
        assert_eq!(
            alternate_username(&"a".repeat(10), NameLimit::Characters(16)).expect("16"),
            "aaaaaaaaaa_clone"
        );
        let error = alternate_username(&"a".repeat(11), NameLimit::Characters(16)).expect_err("17");
        assert_eq!(
            error.message,
            "Unable to clone user, username length with _clone appended would exceed 16 characters"
        );
        assert_eq!(error.error_type(), "InvalidSecret");
        // Characters, not bytes.
        assert!(alternate_username(&"é".repeat(74), NameLimit::Characters(80)).is_ok());
        assert!(alternate_username(&"é".repeat(75), NameLimit::Characters(80)).is_err());
        assert!(alternate_username("_clone", NameLimit::Characters(80)).is_err());
    }
}
