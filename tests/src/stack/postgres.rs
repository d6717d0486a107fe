//! PostgreSQL 15 on a loopback port: SCRAM-SHA-256 only (never `trust`), TLS with this run's
//! CA, and every statement logged so tests can prove no plaintext password reaches the server.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::{
    free_port, log_contains, private_copy, private_dir, private_file, random_hex,
    require_executable, run, service_account, wait_until_ready,
};
use super::session::session;
use super::{prerequisite, try_tls, StackError};

/// Debian's PostgreSQL 15 binaries (package postgresql-15).
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The database superuser; its password is random per run.
const SUPERUSER: &str = "postgres";

/// Our pg_hba.conf. SCRAM everywhere. `host` lines (not only `hostssl`) on purpose: the server
/// also accepts plaintext, so a test can show that it is the *client* that refuses to fall back
/// to it.
const PG_HBA: &str = "\
# TYPE   DATABASE  USER  ADDRESS       METHOD
local    all       all                 scram-sha-256
hostssl  all       all   127.0.0.1/32  scram-sha-256
hostssl  all       all   ::1/128       scram-sha-256
host     all       all   127.0.0.1/32  scram-sha-256
host     all       all   ::1/128       scram-sha-256
";

/// The process-wide PostgreSQL server.
pub struct Postgres {
    port: u16,
    password: String,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    ca_cert: PathBuf,
}

// The superuser password stays out of Debug output (and so out of assertion messages).
impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("port", &self.port)
            .field("superuser", &SUPERUSER)
            .field("password", &"<redacted>")
            .field("data_dir", &self.data_dir)
            .field("log", &self.log)
            .finish()
    }
}

impl Postgres {
    /// The name to connect to for `verify-full`: it is in the certificate's SAN, and resolves
    /// to the loopback address the server listens on.
    pub fn host(&self) -> &'static str {
        "localhost"
    }

    /// The address the server listens on (also in the certificate's SAN).
    pub fn ip(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The CA that signed the server certificate (the `sslrootcert` for `verify-full`).
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert
    }

    /// The server's log: with `log_statement = all`, every statement any client sent.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole server log so far (statements, connections, errors).
    pub fn statement_log(&self) -> Result<String, StackError> {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(StackError::io(format!(
                "could not read {}",
                self.log.display()
            )))
    }

    /// The pg_hba.conf the server runs with.
    pub fn hba_path(&self) -> PathBuf {
        self.data_dir.join("pg_hba.conf")
    }

    /// The directory of the server's Unix socket (`-h` for psql).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// A libpq-style URL for `user` over TLS with `verify-full` against this run's CA.
    /// User and password are percent-encoded, so any password works.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}?sslmode=verify-full&sslrootcert={}",
            crate::http::percent_encode(user),
            crate::http::percent_encode(password),
            self.host(),
            self.port,
            crate::http::percent_encode(database),
            crate::http::percent_encode(&self.ca_cert.to_string_lossy()),
        )
    }

    /// [`Postgres::url`] for the superuser and the `postgres` database.
    pub fn superuser_url(&self) -> String {
        self.url(SUPERUSER, &self.password, "postgres")
    }
}

pub(crate) async fn start() -> Result<Postgres, StackError> {
    let bin = Path::new(BIN_DIR);
    let initdb = bin.join("initdb");
    let postgres = bin.join("postgres");
    require_executable("initdb (PostgreSQL 15)", &initdb, "postgresql-15")?;
    require_executable("postgres (PostgreSQL 15)", &postgres, "postgresql-15")?;
    let account = service_account("postgres", "postgresql-15")?;

    let session = session()
        .await
        .map_err(|error| prerequisite("the stack's temporary directory", error))?;
    let dir = session.root().join("postgres");
    private_dir(&dir, account)?;
    let data_dir = dir.join("data");
    let password = random_hex(16)?;

    // initdb reads the superuser password from a file, never from the command line; the file
    // goes as soon as initdb is done.
    let pwfile = dir.join("pwfile");
    private_file(&pwfile, password.as_bytes(), account)?;
    let mut init = tokio::process::Command::new(&initdb);
    init.arg("--pgdata")
        .arg(&data_dir)
        .args([
            "--username",
            SUPERUSER,
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        // C locale and no fsync: fastest, and nothing here must survive a crash of the machine.
        .args([
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ])
        .current_dir(&dir);
    if let Some(account) = account {
        init.uid(account.uid).gid(account.gid);
    }
    // The certificates are made while initdb runs.
    let (initialised, tls) = tokio::join!(run(init), try_tls());
    let removed = std::fs::remove_file(&pwfile);
    initialised?;
    removed.map_err(StackError::io(format!(
        "could not remove {}",
        pwfile.display()
    )))?;
    let tls = tls.map_err(|error| prerequisite("the test certificates", error))?;

    private_file(&data_dir.join("pg_hba.conf"), PG_HBA.as_bytes(), account)?;
    // PostgreSQL refuses a key readable by others or owned by another user.
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    private_copy(tls.server_cert_path(), &cert, account)?;
    private_copy(tls.server_key_path(), &key, account)?;

    let port = free_port()?;
    let log = dir.join("postgres.log");
    let log_file = std::fs::File::create(&log).map_err(StackError::io(format!(
        "could not create {}",
        log.display()
    )))?;
    let log_copy = log_file.try_clone().map_err(StackError::io(format!(
        "could not duplicate {}",
        log.display()
    )))?;

    let settings = [
        "listen_addresses=127.0.0.1".to_string(),
        format!("port={port}"),
        format!("unix_socket_directories={}", dir.display()),
        "ssl=on".to_string(),
        format!("ssl_cert_file={}", cert.display()),
        format!("ssl_key_file={}", key.display()),
        "password_encryption=scram-sha-256".to_string(),
        // Everything to stderr, which is our log file: statements with who sent them.
        "logging_collector=off".to_string(),
        "log_destination=stderr".to_string(),
        "log_statement=all".to_string(),
        "log_connections=on".to_string(),
        "log_line_prefix=%m [%p] %q%u@%d ".to_string(),
        // Durability is pointless for a throw-away server; start-up and tests get faster.
        "fsync=off".to_string(),
        "synchronous_commit=off".to_string(),
        "full_page_writes=off".to_string(),
    ];
    let mut command = Command::new(&postgres);
    command.arg("-D").arg(&data_dir);
    for setting in &settings {
        command.arg("-c").arg(setting);
    }
    command
        .current_dir(&dir)
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_copy));
    if let Some(account) = account {
        std::os::unix::process::CommandExt::uid(&mut command, account.uid);
        std::os::unix::process::CommandExt::gid(&mut command, account.gid);
    }
    // SIGINT is PostgreSQL's "fast shutdown": it ends the sessions and stops at once.
    let mut child = session.spawn_server(command, "INT")?;
    let ready_log = log.clone();
    wait_until_ready("postgres", &mut child, &log, || {
        let ready = log_contains(&ready_log, "database system is ready to accept connections");
        async move { ready }
    })
    .await?;

    Ok(Postgres {
        port,
        password,
        data_dir,
        socket_dir: dir,
        log,
        ca_cert: tls.ca_cert_path().to_path_buf(),
    })
}
