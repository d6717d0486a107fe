//! What the demo rotates: one implementation of [`DemoTarget`] per `--target`. Each starts its
//! server from the local stack, creates the application user (and, for alternating users, a
//! master user), gives the secrets in the AWS templates' format, and answers whether a
//! credential logs in. A new target (the API-key function against the reference provider) is
//! one more implementation and one more arm in [`start`].

use async_trait::async_trait;
use rotation_tests::api_provider::ReferenceProvider;
use rotation_tests::login::{self, Login};
use rotation_tests::stack::{self, random_hex, MariaDb, Postgres};
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

use crate::{Strategy, TargetKind};

/// The application user the demo rotates, and the master user alternating users need. The
/// stack is new for every demo run, so fixed names cannot collide.
const USER: &str = "demo_app";
const MASTER: &str = "demo_master";

/// The secrets a target starts with, in the AWS templates' format.
pub struct Seeded {
    /// The rotated secret (the demo adds `masterarn` once the master secret exists).
    pub secret: Value,
    /// The master user's secret, for alternating users.
    pub master_secret: Option<Value>,
}

#[async_trait]
pub trait DemoTarget {
    /// The function crate (and binary) that rotates this target.
    fn function(&self) -> &'static str;
    /// The server, for the story: "PostgreSQL 15 on localhost:41234".
    fn server(&self) -> String;
    /// Creates the users and returns their secrets.
    async fn seed(&self) -> Result<Seeded, String>;
    /// The function's environment besides the Secrets Manager endpoint.
    fn function_env(&self) -> Vec<(String, String)>;
    /// Whether the credentials of one secret version are accepted (a database login; for an
    /// API key, a call to the provider).
    async fn login(&self, version: &Value) -> Login;
    /// Whose credentials a secret version holds, for the story: the user name by default.
    fn principal(&self, version: &Value) -> String {
        version["username"].as_str().unwrap_or("?").to_owned()
    }
    /// What is rotated, for the story.
    fn credential(&self) -> &'static str {
        "a password"
    }
    /// The secret JSON field that holds the credential: never printed.
    fn secret_field(&self) -> &'static str {
        "password"
    }
    /// What a step did, for the story.
    fn what_happened(&self, step: &str) -> &'static str {
        match step {
            "createSecret" => {
                "new password generated and stored as AWSPENDING (nothing changed in the database yet)"
            }
            "setSecret" => "the database now accepts the AWSPENDING credentials",
            "testSecret" => "the function logged in with AWSPENDING",
            "finishSecret" => "AWSCURRENT moved to the new version, AWSPENDING removed",
            _ => "",
        }
    }
}

/// Starts the server `kind` needs (moto is started by the caller) and returns the target.
pub async fn start(kind: TargetKind, strategy: Strategy) -> Result<Box<dyn DemoTarget>, String> {
    Ok(match kind {
        TargetKind::Postgres => Box::new(PostgresDemo {
            pg: stack::try_postgres()
                .await
                .map_err(|error| format!("PostgreSQL could not start: {error}"))?,
            strategy,
        }),
        TargetKind::ApiKey => {
            if strategy != Strategy::SingleUser {
                return Err(
                    "--target api-key has one strategy (revoke, issue, keep the previous key); \
                     leave --strategy out"
                        .to_owned(),
                );
            }
            Box::new(ApiKeyDemo {
                provider: ReferenceProvider::start().await,
            })
        }
        TargetKind::MySql => Box::new(MariaDbDemo {
            db: stack::try_mariadb()
                .await
                .map_err(|error| format!("MariaDB could not start: {error}"))?,
            strategy,
        }),
    })
}

fn new_password() -> Result<String, String> {
    random_hex(16).map_err(|error| error.to_string())
}

/// `username` and `password` of a secret version.
fn credentials(version: &Value) -> Option<(&str, &str)> {
    Some((version["username"].as_str()?, version["password"].as_str()?))
}

/// Logs in at `url` (the server's administrator) and runs `statements` in order.
async fn run_all<C>(url: &str, statements: Vec<String>) -> Result<(), String>
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    let mut admin = C::connect(url)
        .await
        .map_err(|error| format!("the administrator cannot log in: {error}"))?;
    for statement in statements {
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .map_err(|error| format!("creating the demo users failed: {error}"))?;
    }
    let _ = admin.close().await;
    Ok(())
}

fn function_env(strategy: Strategy, ca_bundle: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("ROTATION_STRATEGY".to_owned(), strategy.as_str().to_owned()),
        ("CA_BUNDLE".to_owned(), ca_bundle.display().to_string()),
    ]
}

struct PostgresDemo {
    pg: &'static Postgres,
    strategy: Strategy,
}

#[async_trait]
impl DemoTarget for PostgresDemo {
    fn function(&self) -> &'static str {
        "rotate-postgres"
    }

    fn server(&self) -> String {
        format!(
            "PostgreSQL 15 on {}:{} (TLS, CA made for this run)",
            self.pg.host(),
            self.pg.port()
        )
    }

    async fn seed(&self) -> Result<Seeded, String> {
        let password = new_password()?;
        // Created with a SCRAM verifier, as the function itself does, so not even the demo's
        // own passwords reach the server's statement log.
        let verifier =
            |password: &str| postgres_protocol::password::scram_sha_256(password.as_bytes());
        let mut statements = vec![format!(
            "CREATE ROLE {USER} LOGIN PASSWORD '{}'",
            verifier(&password)
        )];
        let mut master_secret = None;
        if self.strategy == Strategy::AlternatingUsers {
            let master_password = new_password()?;
            // CREATEROLE, not superuser: the situation of an RDS master user.
            statements.push(format!(
                "CREATE ROLE {MASTER} LOGIN CREATEROLE PASSWORD '{}'",
                verifier(&master_password)
            ));
            master_secret = Some(json!({
                "engine": "postgres", "host": self.pg.host(), "port": self.pg.port(),
                "username": MASTER, "password": master_password,
            }));
        }
        run_all::<PgConnection>(&self.pg.superuser_url(), statements).await?;
        Ok(Seeded {
            secret: json!({
                "engine": "postgres", "host": self.pg.host(), "port": self.pg.port(),
                "dbname": "postgres", "username": USER, "password": password,
            }),
            master_secret,
        })
    }

    fn function_env(&self) -> Vec<(String, String)> {
        function_env(self.strategy, self.pg.ca_cert_path())
    }

    async fn login(&self, version: &Value) -> Login {
        match credentials(version) {
            Some((user, password)) => login::postgres(self.pg, user, password).await,
            None => Login::Failed("the version has no username or password".to_owned()),
        }
    }
}

struct MariaDbDemo {
    db: &'static MariaDb,
    strategy: Strategy,
}

#[async_trait]
impl DemoTarget for MariaDbDemo {
    fn function(&self) -> &'static str {
        "rotate-mysql"
    }

    fn server(&self) -> String {
        format!("MariaDB 10.11 on {}:{}", self.db.host(), self.db.port())
    }

    async fn seed(&self) -> Result<Seeded, String> {
        let password = new_password()?;
        // Hex passwords need no escaping; the server's log lives in the stack's directory,
        // which is removed at the end.
        let mut statements = vec![
            format!("CREATE USER '{USER}'@'%' IDENTIFIED BY '{password}'"),
            "CREATE DATABASE demo".to_owned(),
            format!("GRANT SELECT, INSERT ON demo.* TO '{USER}'@'%'"),
        ];
        let mut master_secret = None;
        if self.strategy == Strategy::AlternatingUsers {
            let master_password = new_password()?;
            // All privileges with grant option: what an RDS master user holds.
            statements.push(format!(
                "CREATE USER '{MASTER}'@'%' IDENTIFIED BY '{master_password}'"
            ));
            statements.push(format!(
                "GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION"
            ));
            master_secret = Some(json!({
                "engine": "mariadb", "host": self.db.host(), "port": self.db.port(),
                "username": MASTER, "password": master_password,
            }));
        }
        run_all::<MySqlConnection>(&self.db.admin_url(), statements).await?;
        Ok(Seeded {
            secret: json!({
                "engine": "mariadb", "host": self.db.host(), "port": self.db.port(),
                "username": USER, "password": password,
            }),
            master_secret,
        })
    }

    fn function_env(&self) -> Vec<(String, String)> {
        function_env(self.strategy, self.db.ca_cert_path())
    }

    async fn login(&self, version: &Value) -> Login {
        match credentials(version) {
            Some((user, password)) => login::mariadb(self.db, user, password).await,
            None => Login::Failed("the version has no username or password".to_owned()),
        }
    }
}

/// `rotate-api-key` with the `http` provider, against the reference provider of the tests (plain
/// HTTP on loopback, which the function accepts only with `ALLOW_INSECURE_HTTP=true`).
struct ApiKeyDemo {
    provider: ReferenceProvider,
}

#[async_trait]
impl DemoTarget for ApiKeyDemo {
    fn function(&self) -> &'static str {
        "rotate-api-key"
    }

    fn server(&self) -> String {
        format!(
            "the reference API-key provider at {}",
            self.provider.base_url()
        )
    }

    async fn seed(&self) -> Result<Seeded, String> {
        let (id, key) = self.provider.issue_directly("issued-by-hand");
        Ok(Seeded {
            secret: json!({ "api_key": key, "key_id": id, "service": "demo" }),
            master_secret: None,
        })
    }

    fn function_env(&self) -> Vec<(String, String)> {
        [
            ("API_KEY_PROVIDER", "http".to_owned()),
            ("API_BASE_URL", self.provider.base_url()),
            ("ALLOW_INSECURE_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    async fn login(&self, version: &Value) -> Login {
        match version["api_key"].as_str() {
            Some(key) if self.provider.authenticates(key).await => Login::Ok,
            Some(_) => Login::Rejected,
            None => Login::Failed("the version holds no api_key".to_owned()),
        }
    }

    fn principal(&self, version: &Value) -> String {
        format!("key {}", version["key_id"].as_str().unwrap_or("?"))
    }

    fn credential(&self) -> &'static str {
        "an API key"
    }

    fn secret_field(&self) -> &'static str {
        "api_key"
    }

    fn what_happened(&self, step: &str) -> &'static str {
        match step {
            "createSecret" => {
                "keys older than AWSCURRENT's revoked, one key issued and stored as AWSPENDING"
            }
            "setSecret" => "the provider lists the AWSPENDING key as live",
            "testSecret" => "the function called the provider's test endpoint with AWSPENDING",
            "finishSecret" => "AWSCURRENT moved to the new version, AWSPENDING removed",
            _ => "",
        }
    }
}
