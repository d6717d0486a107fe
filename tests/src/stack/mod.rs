//! The local stack: moto (Secrets Manager), PostgreSQL 15 and MariaDB 10.11 on free loopback
//! ports, all under one temporary directory, each started at most once per test process and
//! shared by every test in it.
//!
//! ```text
//! let stack = rotation_tests::stack::stack().await;      // all three, started in parallel
//! let pg = rotation_tests::stack::postgres().await;      // or only the one a test needs
//! ```
//!
//! The servers live as long as the test process. Rust never drops statics, so nothing in this
//! process can stop them at exit; instead a small watchdog (see `session.rs`) notices the end of the
//! process, whatever ends it (normal exit, panic, SIGKILL), stops the servers and removes the
//! temporary directory.
//!
//! A missing binary is an error that says to run `scripts/setup`; tests never skip silently.

mod process;
mod session;

pub mod mariadb;
pub mod moto;
pub mod postgres;
pub mod rds;
pub mod tls;

use std::path::{Path, PathBuf};

use tokio::sync::OnceCell;

pub use mariadb::MariaDb;
pub use moto::Moto;
pub use postgres::{Build as PostgresBuild, Postgres};
pub use process::random_hex;
pub use rds::RdsMaster;
pub use tls::Tls;

/// Why a part of the stack could not start. The messages name the service, the command or
/// file involved and, for servers, the tail of the server's own log.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "{tool} not found ({looked_in}): run `scripts/setup` as root, it installs {provided_by}"
    )]
    MissingTool {
        tool: &'static str,
        looked_in: String,
        provided_by: &'static str,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        command: String,
        status: String,
        output: String,
    },
    #[error("{service} did not become ready within {seconds} s; last lines of {}:\n{tail}", log.display())]
    StartTimeout {
        service: &'static str,
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("{service} exited during start-up ({status}); last lines of {}:\n{tail}", log.display())]
    ExitedEarly {
        service: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{0}")]
    Setup(String),
    /// A shared part (the temporary directory, the certificates) failed earlier in this process.
    #[error("{what} failed earlier in this test process: {message}")]
    Prerequisite { what: &'static str, message: String },
}

impl StackError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
        let context = context.into();
        move |source| StackError::Io { context, source }
    }
}

/// The whole stack. Every field refers to a process-wide server.
#[derive(Debug, Clone, Copy)]
pub struct Stack {
    pub moto: &'static Moto,
    pub postgres: &'static Postgres,
    pub mariadb: &'static MariaDb,
    pub tls: &'static Tls,
}

/// Starts (once per process) and returns all three servers; the ones not yet running start in
/// parallel. Panics with the reason, including the `scripts/setup` hint, when one cannot start.
pub async fn stack() -> Stack {
    match try_stack().await {
        Ok(stack) => stack,
        Err(error) => panic!("the local test stack could not start: {error}"),
    }
}

/// Like [`stack`], but returns the error instead of panicking.
pub async fn try_stack() -> Result<Stack, &'static StackError> {
    let (moto, postgres, mariadb, tls) =
        tokio::try_join!(try_moto(), try_postgres(), try_mariadb(), try_tls())?;
    Ok(Stack {
        moto,
        postgres,
        mariadb,
        tls,
    })
}

/// The process-wide moto server. Panics with the reason when it cannot start.
pub async fn moto() -> &'static Moto {
    try_moto()
        .await
        .unwrap_or_else(|error| panic!("moto could not start: {error}"))
}

/// The process-wide PostgreSQL 15 server. Panics with the reason when it cannot start.
pub async fn postgres() -> &'static Postgres {
    try_postgres()
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL could not start: {error}"))
}

/// The process-wide PostgreSQL server of major version `major` (see
/// [`postgres::BUILDS`]); 15 is the default server of [`postgres`]. Panics with the reason, which
/// names the install command, when it cannot start: a missing version fails, never skips.
pub async fn postgres_version(major: u32) -> &'static Postgres {
    try_postgres_version(major)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL {major} could not start: {error}"))
}

/// The process-wide MariaDB server. Panics with the reason when it cannot start.
pub async fn mariadb() -> &'static MariaDb {
    try_mariadb()
        .await
        .unwrap_or_else(|error| panic!("MariaDB could not start: {error}"))
}

/// The certificates of this test process (CA, server certificate, an unrelated CA).
pub async fn tls() -> &'static Tls {
    try_tls()
        .await
        .unwrap_or_else(|error| panic!("the test certificates could not be generated: {error}"))
}

// Each cell keeps the outcome, failure included: when a server cannot start, every later test in
// the process fails at once with the same message instead of waiting out the start-up again.

pub async fn try_moto() -> Result<&'static Moto, &'static StackError> {
    static CELL: OnceCell<Result<Moto, StackError>> = OnceCell::const_new();
    CELL.get_or_init(moto::start).await.as_ref()
}

pub async fn try_postgres() -> Result<&'static Postgres, &'static StackError> {
    static CELL: OnceCell<Result<Postgres, StackError>> = OnceCell::const_new();
    CELL.get_or_init(postgres::start).await.as_ref()
}

/// Like [`postgres_version`], but returns the error instead of panicking.
pub async fn try_postgres_version(major: u32) -> Result<&'static Postgres, &'static StackError> {
    // One cell per build of the matrix; the default version shares the default server's cell.
    static CELLS: [OnceCell<Result<Postgres, StackError>>; postgres::BUILDS.len()] =
        [const { OnceCell::const_new() }; postgres::BUILDS.len()];
    if major == postgres::DEFAULT_MAJOR {
        return try_postgres().await;
    }
    let Some(index) = postgres::BUILDS
        .iter()
        .position(|build| build.major == major)
    else {
        // A test asking for a version the matrix lacks is a bug in the test; the leak is one
        // small error, once.
        return Err(Box::leak(Box::new(StackError::Setup(format!(
            "no PostgreSQL {major} in the stack's builds (tests/src/stack/postgres.rs)"
        )))));
    };
    CELLS[index]
        .get_or_init(|| postgres::start_build(&postgres::BUILDS[index]))
        .await
        .as_ref()
}

pub async fn try_mariadb() -> Result<&'static MariaDb, &'static StackError> {
    static CELL: OnceCell<Result<MariaDb, StackError>> = OnceCell::const_new();
    CELL.get_or_init(mariadb::start).await.as_ref()
}

pub async fn try_tls() -> Result<&'static Tls, &'static StackError> {
    static CELL: OnceCell<Result<Tls, StackError>> = OnceCell::const_new();
    CELL.get_or_init(tls::generate).await.as_ref()
}

/// The temporary directory every server of this process lives under; the watchdog removes it
/// once the process has ended and the servers have stopped.
pub async fn temporary_directory() -> Result<&'static Path, &'static StackError> {
    session::session().await.map(session::Session::root)
}

/// Turns a failure of a shared part into an error owned by the service that needed it.
pub(crate) fn prerequisite(what: &'static str, error: &StackError) -> StackError {
    StackError::Prerequisite {
        what,
        message: error.to_string(),
    }
}
