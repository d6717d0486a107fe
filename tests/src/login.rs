//! Does a credential log in? Asked of the stack's PostgreSQL or MariaDB over TLS verified
//! against the run's CA, with "the server refused the credentials" kept apart from every other
//! failure, so a test or the demo can tell a retired password from a broken connection.

use std::str::FromStr;

use rotation::database::tunnel::Tunnel;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, MySqlConnection, PgConnection};

use crate::stack::{MariaDb, Postgres};

/// How a login attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Ok,
    /// The server refused the credentials (SQLSTATE 28P01 or 28000; MySQL's 1045 is 28000).
    Rejected,
    Failed(String),
}

/// Logs in to the stack's PostgreSQL (database `postgres`) and checks the session answers.
pub async fn postgres(pg: &Postgres, user: &str, password: &str) -> Login {
    outcome(PgConnection::connect(&pg.url(user, password, "postgres")).await).await
}

/// Logs in to the stack's MariaDB and checks the session answers.
pub async fn mariadb(db: &MariaDb, user: &str, password: &str) -> Login {
    outcome(MySqlConnection::connect(&db.url(user, password)).await).await
}

/// [`postgres`] with `TCP_NODELAY` on the client's socket, through the functions' own
/// [`Tunnel`] (sqlx 0.9.0 leaves it off): a login then takes the server's time, not Nagle's
/// 40 ms, which the benchmark's lock-out client needs to time a window of a few milliseconds.
pub async fn postgres_without_delay(pg: &Postgres, user: &str, password: &str) -> Login {
    let options = match PgConnectOptions::from_str(&pg.url(user, password, "postgres")) {
        Ok(options) => options,
        Err(error) => return Login::Failed(error.to_string()),
    };
    let socket = format!(".s.PGSQL.{}", pg.port());
    let tunnel = match Tunnel::open(pg.host(), pg.port(), &socket).await {
        Ok(tunnel) => tunnel,
        Err(error) => return Login::Failed(error.to_string()),
    };
    let connected = PgConnection::connect_with(&options.socket(tunnel.dir())).await;
    tunnel.keep();
    outcome(connected).await
}

/// [`mariadb`] with `TCP_NODELAY`, as [`postgres_without_delay`].
pub async fn mariadb_without_delay(db: &MariaDb, user: &str, password: &str) -> Login {
    let options = match MySqlConnectOptions::from_str(&db.url(user, password)) {
        Ok(options) => options,
        Err(error) => return Login::Failed(error.to_string()),
    };
    let tunnel = match Tunnel::open(db.host(), db.port(), "mysqld.sock").await {
        Ok(tunnel) => tunnel,
        Err(error) => return Login::Failed(error.to_string()),
    };
    let socket = tunnel.dir().join("mysqld.sock");
    let connected = MySqlConnection::connect_with(&options.socket(socket)).await;
    tunnel.keep();
    outcome(connected).await
}

async fn outcome<C: Connection>(connected: Result<C, sqlx::Error>) -> Login {
    match connected {
        Ok(mut connection) => {
            let answered = connection.ping().await;
            let _ = connection.close().await;
            match answered {
                Ok(()) => Login::Ok,
                Err(error) => Login::Failed(error.to_string()),
            }
        }
        Err(sqlx::Error::Database(error))
            if matches!(error.code().as_deref(), Some("28P01" | "28000")) =>
        {
            Login::Rejected
        }
        Err(error) => Login::Failed(error.to_string()),
    }
}
