//! What the benchmark rotates: for each function and strategy, a secret in moto whose
//! credentials work, and the function's environment, with every path to Secrets Manager and to
//! the database going through a counting [`Proxy`].

use rotation_tests::conformance::unique;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

use super::BenchError;
use rotation_tests::api_provider::ReferenceProvider;
use rotation_tests::proxy::Proxy;
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;

/// A function and the strategy (or provider) it runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    PostgresSingleUser,
    PostgresAlternatingUsers,
    MysqlSingleUser,
    MysqlAlternatingUsers,
    ApiKeyHttp,
    ApiKeyAwsIam,
}

impl Subject {
    pub const ALL: [Subject; 6] = [
        Subject::PostgresSingleUser,
        Subject::PostgresAlternatingUsers,
        Subject::MysqlSingleUser,
        Subject::MysqlAlternatingUsers,
        Subject::ApiKeyHttp,
        Subject::ApiKeyAwsIam,
    ];

    /// The binary's name.
    pub fn function(self) -> &'static str {
        match self {
            Subject::PostgresSingleUser | Subject::PostgresAlternatingUsers => "rotate-postgres",
            Subject::MysqlSingleUser | Subject::MysqlAlternatingUsers => "rotate-mysql",
            Subject::ApiKeyHttp | Subject::ApiKeyAwsIam => "rotate-api-key",
        }
    }

    /// `ROTATION_STRATEGY` of the database functions, `API_KEY_PROVIDER` of rotate-api-key.
    pub fn variant(self) -> &'static str {
        match self {
            Subject::PostgresSingleUser | Subject::MysqlSingleUser => "single-user",
            Subject::PostgresAlternatingUsers | Subject::MysqlAlternatingUsers => {
                "alternating-users"
            }
            Subject::ApiKeyHttp => "http",
            Subject::ApiKeyAwsIam => "aws-iam",
        }
    }

    fn database(self) -> Option<Database> {
        match self {
            Subject::PostgresSingleUser | Subject::PostgresAlternatingUsers => {
                Some(Database::Postgres)
            }
            Subject::MysqlSingleUser | Subject::MysqlAlternatingUsers => Some(Database::Mysql),
            Subject::ApiKeyHttp | Subject::ApiKeyAwsIam => None,
        }
    }

    /// `rotate-postgres/single-user`, as given to `--only`.
    pub fn parse(text: &str) -> Option<Subject> {
        Subject::ALL
            .into_iter()
            .find(|subject| subject.to_string() == text)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.function(), self.variant())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Database {
    Postgres,
    Mysql,
}

/// The proxies one subject's function talks through.
pub struct Paths {
    pub secrets_manager: Proxy,
    pub database: Option<Proxy>,
}

impl Paths {
    pub async fn for_subject(subject: Subject) -> Result<Paths, BenchError> {
        let moto = stack::moto().await;
        let secrets_manager = Proxy::aws_json(loopback(moto.port()))
            .await
            .map_err(BenchError::context("start the Secrets Manager proxy"))?;
        let database = match subject.database() {
            None => None,
            Some(Database::Postgres) => Some(stack::postgres().await.port()),
            Some(Database::Mysql) => Some(stack::mariadb().await.port()),
        };
        let database = match database {
            None => None,
            Some(port) => Some(
                Proxy::tcp(loopback(port))
                    .await
                    .map_err(BenchError::context("start the database proxy"))?,
            ),
        };
        Ok(Paths {
            secrets_manager,
            database,
        })
    }

    pub fn reset_counts(&self) {
        self.secrets_manager.reset_counts();
        if let Some(database) = &self.database {
            database.reset_counts();
        }
    }

    /// The port a secret names for its database: the proxy's.
    fn database_port(&self) -> Result<u16, BenchError> {
        self.database
            .as_ref()
            .map(Proxy::port)
            .ok_or_else(|| BenchError("this subject has no database".to_owned()))
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A secret ready to rotate and the function's environment for it. Holds what must outlive the
/// rotations (the reference provider).
pub struct Prepared {
    pub arn: String,
    pub env: Vec<(String, String)>,
    /// For the scale runs: the user whose grants or memberships were made, and the secret's
    /// first value (to start over from).
    pub username: String,
    pub secret: Value,
    _provider: Option<ReferenceProvider>,
}

/// A throw-away password (hex, so it needs no quoting either).
fn password() -> String {
    format!("Bench-{:032x}", rand::random::<u128>())
}

/// How much to give the rotated database user beyond its login: the scale runs' sizes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Privileges {
    /// MySQL: table grants on the user's account.
    pub grants: usize,
    /// PostgreSQL: roles the user is a member of.
    pub memberships: usize,
}

impl Subject {
    /// Creates the credential at the target and its secret in moto; the function's environment
    /// points Secrets Manager at `paths.secrets_manager` and the secret at `paths.database`.
    pub async fn prepare(
        self,
        moto: &MotoSecretsManager,
        paths: &Paths,
        privileges: Privileges,
    ) -> Result<Prepared, BenchError> {
        let mut env = moto.function_environment();
        env.retain(|(name, _)| name != "AWS_ENDPOINT_URL_SECRETS_MANAGER");
        env.push((
            "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(),
            paths.secrets_manager.endpoint(),
        ));
        let mut provider = None;
        let (secret, username) = match self {
            Subject::PostgresSingleUser | Subject::PostgresAlternatingUsers => {
                let alternating = self == Subject::PostgresAlternatingUsers;
                postgres_secret(moto, paths, alternating, privileges, &mut env).await?
            }
            Subject::MysqlSingleUser | Subject::MysqlAlternatingUsers => {
                let alternating = self == Subject::MysqlAlternatingUsers;
                mysql_secret(moto, paths, alternating, privileges, &mut env).await?
            }
            Subject::ApiKeyHttp => {
                let started = ReferenceProvider::start().await;
                let (id, key) = started.issue_directly("issued-by-hand");
                env.extend(pairs(&[
                    ("API_KEY_PROVIDER", "http"),
                    ("API_BASE_URL", &started.base_url()),
                    // The reference provider serves plain HTTP on loopback.
                    ("ALLOW_INSECURE_HTTP", "true"),
                ]));
                provider = Some(started);
                (json!({"api_key": key, "key_id": id}), String::new())
            }
            Subject::ApiKeyAwsIam => {
                let endpoint = stack::moto().await.endpoint();
                env.extend(pairs(&[
                    ("API_KEY_PROVIDER", "aws-iam"),
                    // IAM and STS straight to moto; Secrets Manager keeps its proxy (the
                    // service's own variable wins over AWS_ENDPOINT_URL).
                    ("AWS_ENDPOINT_URL", &endpoint),
                ]));
                iam_secret(&endpoint).await?
            }
        };
        let arn = moto
            .create_secret(&unique("bench"), &secret.to_string())
            .await;
        Ok(Prepared {
            arn,
            env,
            username,
            secret,
            _provider: provider,
        })
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

async fn postgres_secret(
    moto: &MotoSecretsManager,
    paths: &Paths,
    alternating: bool,
    privileges: Privileges,
    env: &mut Vec<(String, String)>,
) -> Result<(Value, String), BenchError> {
    let pg = stack::postgres().await;
    let port = paths.database_port()?;
    let user = unique("bench_pg");
    let user_password = password();
    let mut statements = vec![format!(
        "CREATE ROLE {user} LOGIN PASSWORD '{user_password}'"
    )];
    for index in 0..privileges.memberships {
        statements.push(format!("CREATE ROLE {user}_member_{index}"));
        statements.push(format!("GRANT {user}_member_{index} TO {user}"));
    }
    let mut secret = json!({
        "engine": "postgres", "host": pg.host(), "port": port, "dbname": "postgres",
        "username": user, "password": user_password,
    });
    if alternating {
        let master = unique("bench_pg_master");
        let master_password = password();
        statements.push(format!(
            "CREATE ROLE {master} LOGIN CREATEROLE PASSWORD '{master_password}'"
        ));
        name_the_master(moto, &mut secret, &master, &master_password, env).await;
    }
    let mut admin = PgConnection::connect(&pg.superuser_url())
        .await
        .map_err(BenchError::context("log in to PostgreSQL as the superuser"))?;
    for chunk in statements.chunks(500) {
        sqlx::raw_sql(AssertSqlSafe(chunk.join(";\n")))
            .execute(&mut admin)
            .await
            .map_err(BenchError::context("create the PostgreSQL roles"))?;
    }
    let _ = admin.close().await;
    env.push((
        "CA_BUNDLE".to_owned(),
        pg.ca_cert_path().display().to_string(),
    ));
    Ok((secret, user))
}

async fn mysql_secret(
    moto: &MotoSecretsManager,
    paths: &Paths,
    alternating: bool,
    privileges: Privileges,
    env: &mut Vec<(String, String)>,
) -> Result<(Value, String), BenchError> {
    let db = stack::mariadb().await;
    let port = paths.database_port()?;
    let user = unique("bench_my");
    let user_password = password();
    let account = format!("'{user}'@'%'");
    let mut statements = vec![format!(
        "CREATE USER {account} IDENTIFIED BY '{user_password}'"
    )];
    // Table grants on tables that need not exist (allowed with CREATE): cheap to make by the
    // thousand, and each one a line of SHOW GRANTS to replay.
    statements
        .extend((0..privileges.grants).map(|index| {
            format!("GRANT CREATE, SELECT ON `{user}_db`.`t{index:05}` TO {account}")
        }));
    let mut secret = json!({
        "engine": "mariadb", "host": db.host(), "port": port,
        "username": user, "password": user_password,
    });
    if alternating {
        let master = unique("bench_my_master");
        let master_password = password();
        statements.push(format!(
            "CREATE USER '{master}'@'%' IDENTIFIED BY '{master_password}'"
        ));
        statements.push(format!(
            "GRANT ALL PRIVILEGES ON *.* TO '{master}'@'%' WITH GRANT OPTION"
        ));
        name_the_master(moto, &mut secret, &master, &master_password, env).await;
    }
    let mut admin = MySqlConnection::connect(&db.admin_url())
        .await
        .map_err(BenchError::context("log in to MariaDB as the admin"))?;
    for chunk in statements.chunks(1000) {
        sqlx::raw_sql(AssertSqlSafe(chunk.join(";\n")))
            .execute(&mut admin)
            .await
            .map_err(BenchError::context("create the MariaDB accounts"))?;
    }
    let _ = admin.close().await;
    env.push((
        "CA_BUNDLE".to_owned(),
        db.ca_cert_path().display().to_string(),
    ));
    Ok((secret, user))
}

/// Makes the master's secret (the user's engine, host and port, the master's credentials) and
/// names it in the user's `secret`, for alternating users.
async fn name_the_master(
    moto: &MotoSecretsManager,
    secret: &mut Value,
    master: &str,
    master_password: &str,
    env: &mut Vec<(String, String)>,
) {
    let master_secret = json!({"engine": secret["engine"], "host": secret["host"],
        "port": secret["port"], "username": master, "password": master_password});
    let master_arn = moto
        .create_secret(&unique("bench-master"), &master_secret.to_string())
        .await;
    secret["masterarn"] = json!(master_arn);
    env.extend(pairs(&[("ROTATION_STRATEGY", "alternating-users")]));
}

/// An IAM user of moto's with one access key, as an operator would set it up.
async fn iam_secret(endpoint: &str) -> Result<(Value, String), BenchError> {
    let user = unique("bench-iam");
    let call = |action: String| async move {
        let authorization = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|port| port.parse::<u16>().ok())
            .ok_or_else(|| BenchError(format!("{endpoint} names no port")))?;
        let (status, body) = rotation_tests::http::exchange(
            port,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", authorization),
            ],
            &format!("Version=2010-05-08&{action}"),
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(BenchError)?;
        if status != 200 {
            return Err(BenchError(format!("IAM answered {status} to {action}")));
        }
        Ok(body)
    };
    call(format!("Action=CreateUser&UserName={user}")).await?;
    let created = call(format!("Action=CreateAccessKey&UserName={user}")).await?;
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        created
            .split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(value, _)| value.to_owned())
            .ok_or_else(|| BenchError(format!("CreateAccessKey answered without {name}")))
    };
    let secret = json!({
        "user_name": user,
        "access_key_id": field("AccessKeyId")?,
        "secret_access_key": field("SecretAccessKey")?,
    });
    Ok((secret, user))
}
