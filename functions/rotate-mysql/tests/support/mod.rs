//! MariaDB as the conformance suite drives it (`rotation_tests::conformance`), and what the
//! rotate-mysql tests of their own share: admin sessions, accounts on a given host part, and
//! their `mysql.user` rows.
//!
//! The server runs with `skip-name-resolve`: a client on 127.0.0.1 matches the accounts for
//! `'%'`, `'127.0.0.1'` (and host patterns such as `'127.0.0.%'`), never those for
//! `'localhost'`. The suite's users are on `'%'`.

// Each test binary uses part of this module.
#![allow(dead_code)]

use async_trait::async_trait;
use rotate_mysql::sql::{quote_identifier, quote_string};
use rotation::crash::points;
use rotation_database::crash_points as database_points;
use rotation_tests::conformance::{DatabaseUnderTest, Server, User};
use rotation_tests::hostile::BadSetting;
use rotation_tests::leaks::assert_no_secret_form_in;
use rotation_tests::login::Login;
use rotation_tests::stack;
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rotate-mysql");

/// The stack's MariaDB 10.11 and the `rotate-mysql` binary.
pub struct MariaDb;

#[async_trait]
impl DatabaseUnderTest for MariaDb {
    fn function(&self) -> &'static str {
        "rotate-mysql"
    }
    fn binary(&self) -> &'static str {
        BINARY
    }
    /// The dialect follows the server, so a secret that says `mysql` rotates a MariaDB account
    /// just as well.
    fn engines(&self) -> &'static [&'static str] {
        &["mariadb", "mysql"]
    }
    fn foreign_engine(&self) -> &'static str {
        "postgres"
    }
    fn database_name(&self, engine: &str) -> &'static str {
        if engine == "mariadb" {
            "MariaDB"
        } else {
            "MySQL"
        }
    }
    fn test_database_name(&self) -> &'static str {
        "MySQL"
    }
    fn verified_tls_mode(&self) -> &'static str {
        "verify-identity"
    }
    fn password_statement(&self) -> &'static str {
        "SET PASSWORD"
    }
    fn secret_fields(&self) -> Value {
        json!({})
    }
    /// The suite's names are longer than MySQL 5.6's 16 characters; MariaDB allows 80.
    fn environment(&self) -> Vec<(String, String)> {
        vec![("USERNAME_CHARACTER_LIMIT".to_owned(), "80".to_owned())]
    }
    fn bad_settings(&self) -> Vec<BadSetting> {
        ["0", "81", "many"]
            .into_iter()
            .map(|value| BadSetting {
                names: "USERNAME_CHARACTER_LIMIT",
                env: vec![("USERNAME_CHARACTER_LIMIT".to_owned(), value.to_owned())],
            })
            .collect()
    }
    fn alternating_crash_points(&self) -> &'static [&'static str] {
        &[
            points::PENDING_STORED,
            database_points::CLONE_CREATED,
            database_points::GRANTS_REPLAYED,
            database_points::PASSWORD_SET,
            points::CURRENT_MOVED,
            points::PENDING_REMOVED,
        ]
    }

    async fn server(&self) -> Server {
        let db = stack::mariadb().await;
        Server {
            host: db.host(),
            ip: db.ip(),
            port: db.port(),
            ca_cert: db.ca_cert_path().to_owned(),
            admin: db.admin_user(),
            admin_password: db.admin_password().to_owned(),
        }
    }

    /// An account on `'%'` with a password and no privileges beyond logging in (USAGE), which
    /// is all a user needs to change its own password.
    async fn create_user(&self, name: &str, password: &str) {
        AppUser::create(name, "%", password).await;
    }

    async fn set_password(&self, name: &str, password: &str) {
        AppUser::on_any_host(name, password)
            .set_password(password)
            .await;
    }

    async fn drop_user(&self, name: &str) {
        AppUser::on_any_host(name, "").drop().await;
    }

    /// Every privilege WITH GRANT OPTION (as an RDS master), and a database the user may read
    /// and write, so the alternate user has grants to replay.
    async fn create_master(&self, user: &str, master: &str, password: &str) {
        run_as_admin(&[
            format!(
                "CREATE USER {} IDENTIFIED BY {}",
                account_name(master, "%"),
                quote_string(password, false)
            ),
            format!(
                "GRANT ALL PRIVILEGES ON *.* TO {} WITH GRANT OPTION",
                account_name(master, "%")
            ),
            format!("CREATE DATABASE {}", quote_identifier(master)),
            format!(
                "GRANT SELECT, INSERT ON {}.* TO {}",
                quote_identifier(master),
                account_name(user, "%")
            ),
        ])
        .await;
    }

    async fn drop_master(&self, user: &str, master: &str) {
        run_as_admin(&[
            format!(
                "DROP USER IF EXISTS {}",
                account_name(&format!("{user}_clone"), "%")
            ),
            format!("DROP USER IF EXISTS {}", account_name(master, "%")),
            format!("DROP DATABASE IF EXISTS {}", quote_identifier(master)),
        ])
        .await;
    }

    async fn login(&self, user: &str, password: &str) -> Login {
        login(user, password).await
    }

    /// Each account's `mysql.user` row but its password, and its `SHOW GRANTS` with the
    /// password hash left out.
    async fn privileges(&self, users: &[String]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut connection = admin().await;
        for row in account_rows(users).await {
            lines.push(format!(
                "{}@{} {} {}",
                row.user, row.host, row.plugin, row.privileges
            ));
            let grants: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SHOW GRANTS FOR {}",
                account_name(&row.user, &row.host)
            )))
            .fetch_all(&mut connection)
            .await
            .expect("SHOW GRANTS");
            lines.extend(grants.into_iter().map(|grant| {
                match grant.find(" IDENTIFIED BY PASSWORD '") {
                    Some(at) => {
                        let rest = &grant[at + 25..];
                        let end = rest.find('\'').map_or(rest.len(), |end| end + 1);
                        format!("{}{}", &grant[..at], &rest[end..])
                    }
                    None => grant,
                }
            }));
        }
        let _ = connection.close().await;
        lines
    }

    async fn create_database(&self, user: &str, database: &str) {
        run_as_admin(&[
            format!("CREATE DATABASE {}", quote_identifier(database)),
            format!(
                "GRANT SELECT ON {}.* TO {}",
                quote_identifier(database),
                account_name(user, "%")
            ),
        ])
        .await;
    }

    /// Without a privilege on the database, the login that names it is refused.
    async fn take_away_database(&self, user: &str, database: &str) {
        run_as_admin(&[format!(
            "REVOKE SELECT ON {}.* FROM {}",
            quote_identifier(database),
            account_name(user, "%")
        )])
        .await;
    }

    async fn drop_database(&self, database: &str) {
        run_as_admin(&[format!(
            "DROP DATABASE IF EXISTS {}",
            quote_identifier(database)
        )])
        .await;
    }

    /// Turns on MariaDB's per-user statistics (global, harmless to the other tests):
    /// `information_schema.USER_STATISTICS` then has a row for every user name that reached
    /// authentication, denied or not. The suite's users are new, so the mark is zero.
    async fn mark_logins(&self) -> u64 {
        run_as_admin(&["SET GLOBAL userstat = 1".to_owned()]).await;
        0
    }

    async fn logins_seen(&self, user: &str, mark: u64) -> bool {
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
        u64::try_from(count.unwrap_or(0)).expect("a count") > mark
    }

    async fn server_log(&self) -> String {
        let path = stack::mariadb().await.log_path();
        String::from_utf8_lossy(&std::fs::read(path).expect("the server log")).into_owned()
    }

    /// The shared leak check, also looking for each secret quoted for SQL in either mode.
    fn assert_no_secret_in(&self, text: &str, secrets: &[String], what: &str) {
        assert_no_secret_in(text, secrets, what);
    }
}

/// The shared leak check, also looking for each secret quoted for SQL in either mode.
pub fn assert_no_secret_in(text: &str, secrets: &[String], what: &str) {
    assert_no_secret_form_in(text, secrets, what, |secret| {
        [quote_string(secret, false), quote_string(secret, true)]
            .iter()
            .map(|quoted| quoted.trim_matches('\'').to_owned())
            .collect()
    });
}

/// Logs in over verified TLS and checks the session answers.
pub async fn login(user: &str, password: &str) -> Login {
    rotation_tests::login::mariadb(stack::mariadb().await, user, password).await
}

/// An admin session (all privileges, with grant option; never subject to `init_connect`).
pub async fn admin() -> MySqlConnection {
    MySqlConnection::connect(&stack::mariadb().await.admin_url())
        .await
        .expect("the admin logs in")
}

/// Runs statements, one at a time, as the admin.
pub async fn run_as_admin(statements: &[String]) {
    let mut connection = admin().await;
    for statement in statements {
        sqlx::raw_sql(AssertSqlSafe(statement.as_str()))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("admin statement failed: {error}"));
    }
    let _ = connection.close().await;
}

/// `'user'@'host'` for the admin's session (backslash escapes on).
pub fn account_name(user: &str, host: &str) -> String {
    format!(
        "{}@{}",
        quote_string(user, false),
        quote_string(host, false)
    )
}

/// A row of `mysql.user` for one account, as text: what a rotation may or may not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub user: String,
    pub host: String,
    pub plugin: String,
    pub authentication_string: String,
    pub privileges: String,
}

/// The `mysql.user` rows of every account whose user name is in `users`, sorted.
pub async fn account_rows(users: &[String]) -> Vec<AccountRow> {
    let mut connection = admin().await;
    let mut rows = Vec::new();
    for user in users {
        let found: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(plugin AS CHAR),
                    CAST(authentication_string AS CHAR),
                    CONCAT_WS(',', Select_priv, Insert_priv, Update_priv, Delete_priv,
                              Create_priv, Drop_priv, Grant_priv, Super_priv,
                              Create_user_priv, CAST(is_role AS CHAR))
             FROM mysql.user WHERE User = ? ORDER BY Host",
        )
        .bind(user)
        .fetch_all(&mut connection)
        .await
        .expect("mysql.user");
        rows.extend(found.into_iter().map(
            |(user, host, plugin, authentication_string, privileges)| AccountRow {
                user,
                host,
                plugin,
                authentication_string,
                privileges,
            },
        ));
    }
    let _ = connection.close().await;
    rows.sort_by(|a, b| (&a.user, &a.host).cmp(&(&b.user, &b.host)));
    rows
}

/// An application account on a given host part, made by the admin.
pub struct AppUser {
    pub name: String,
    pub host: String,
    pub password: String,
}

impl AppUser {
    pub async fn create(name: &str, host: &str, password: &str) -> AppUser {
        run_as_admin(&[format!(
            "CREATE USER {} IDENTIFIED BY {}",
            account_name(name, host),
            quote_string(password, false)
        )])
        .await;
        AppUser {
            name: name.to_owned(),
            host: host.to_owned(),
            password: password.to_owned(),
        }
    }

    fn on_any_host(name: &str, password: &str) -> AppUser {
        AppUser {
            name: name.to_owned(),
            host: "%".to_owned(),
            password: password.to_owned(),
        }
    }

    /// The suite's view of the account: its name and first password.
    pub fn user(&self) -> User {
        User {
            name: self.name.clone(),
            password: self.password.clone(),
        }
    }

    pub fn account(&self) -> String {
        account_name(&self.name, &self.host)
    }

    /// Sets the account's password as the admin (simulates drift or a restore).
    pub async fn set_password(&self, password: &str) {
        run_as_admin(&[format!(
            "SET PASSWORD FOR {} = PASSWORD({})",
            self.account(),
            quote_string(password, false)
        )])
        .await;
    }

    /// The account's `mysql.user` row.
    pub async fn row(&self) -> AccountRow {
        account_rows(std::slice::from_ref(&self.name))
            .await
            .into_iter()
            .find(|row| row.host == self.host)
            .unwrap_or_else(|| panic!("{} exists", self.account()))
    }

    pub async fn drop(self) {
        run_as_admin(&[format!("DROP USER IF EXISTS {}", self.account())]).await;
    }
}
