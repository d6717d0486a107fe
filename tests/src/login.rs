//! Does a credential log in? Asked of the stack's PostgreSQL or MariaDB over TLS verified
//! against the run's CA, with "the server refused the credentials" kept apart from every other
//! failure, so a test or the demo can tell a retired password from a broken connection.
//!
//! sqlx (0.9.1 and later) sets `TCP_NODELAY` on its sockets, so a login takes the server's time,
//! not Nagle's 40 ms: the benchmark's lock-out client times windows of a few milliseconds with
//! these logins.

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
