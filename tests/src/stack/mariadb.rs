//! MariaDB 10.11 on a loopback port with TLS from this run's CA and one password-authenticated
//! admin account reachable over TCP.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::{
    find_tool, free_port, log_contains, private_copy, private_dir, private_file, random_hex, run,
    service_account, wait_until_ready,
};
use super::session::session;
use super::{prerequisite, try_tls, StackError};
use crate::http::percent_encode;

/// The admin account: all privileges with grant option, from any host ('%'), so it can create
/// and alter the users the rotation tests rotate.
const ADMIN: &str = "admin";

/// Server settings shared by `mariadb-install-db` (which bootstraps with them) and `mariadbd`.
/// Small InnoDB files and no performance schema: a quicker start on a 2-core machine.
/// `skip-name-resolve` makes a TCP client from 127.0.0.1 match accounts by IP (our '%'), never
/// by a looked-up name such as `localhost`, whose anonymous accounts could shadow ours.
const MY_CNF: &str = "\
[mysqld]
skip-name-resolve
performance-schema = OFF
innodb-buffer-pool-size = 32M
innodb-log-file-size = 16M
innodb-doublewrite = OFF
innodb-flush-log-at-trx-commit = 2
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
";

/// The process-wide MariaDB server.
pub struct MariaDb {
    port: u16,
    password: String,
    socket: PathBuf,
    log: PathBuf,
    ca_cert: PathBuf,
}

// The admin password stays out of Debug output (and so out of assertion messages).
impl fmt::Debug for MariaDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MariaDb")
            .field("port", &self.port)
            .field("admin", &ADMIN)
            .field("password", &"<redacted>")
            .field("socket", &self.socket)
            .field("log", &self.log)
            .finish()
    }
}

impl MariaDb {
    /// The name to connect to for `VERIFY_IDENTITY`: it is in the certificate's SAN, and
    /// resolves to the loopback address the server listens on.
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

    pub fn admin_user(&self) -> &'static str {
        ADMIN
    }

    pub fn admin_password(&self) -> &str {
        &self.password
    }

    /// The CA that signed the server certificate (`ssl-ca` for `VERIFY_IDENTITY`).
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert
    }

    /// The server's Unix socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The server's error log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A `mysql://` URL for `user` over TLS with `VERIFY_IDENTITY` against this run's CA.
    /// User and password are percent-encoded, so any password works.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "mysql://{}:{}@{}:{}/?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
            percent_encode(user),
            percent_encode(password),
            self.host(),
            self.port,
            percent_encode(&self.ca_cert.to_string_lossy()),
        )
    }

    /// [`MariaDb::url`] for the admin account.
    pub fn admin_url(&self) -> String {
        self.url(ADMIN, &self.password)
    }
}

pub(crate) async fn start() -> Result<MariaDb, StackError> {
    let install_db = find_tool("mariadb-install-db", &["/usr/bin"], "mariadb-server")?;
    let mariadbd = find_tool("mariadbd", &["/usr/sbin"], "mariadb-server")?;
    let account = service_account("mysql", "mariadb-server")?;

    let session = session()
        .await
        .map_err(|error| prerequisite("the stack's temporary directory", error))?;
    let dir = session.root().join("mariadb");
    private_dir(&dir, account)?;
    let data_dir = dir.join("data");
    let config = dir.join("my.cnf");
    private_file(&config, MY_CNF.as_bytes(), account)?;

    // `--defaults-file` must come first; it also keeps Debian's /etc/mysql out. Root gets only
    // the default unix_socket login (no password over TCP); our admin account is made below.
    let mut install = tokio::process::Command::new(&install_db);
    install
        .arg(format!("--defaults-file={}", config.display()))
        .arg(format!("--datadir={}", data_dir.display()))
        .args([
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ])
        .current_dir(&dir);
    if let Some(account) = account {
        install.uid(account.uid).gid(account.gid);
    }
    // The certificates are made while the data directory is bootstrapped.
    let (installed, tls) = tokio::join!(run(install), try_tls());
    installed?;
    let tls = tls.map_err(|error| prerequisite("the test certificates", error))?;
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    private_copy(tls.server_cert_path(), &cert, account)?;
    private_copy(tls.server_key_path(), &key, account)?;
    let ca = dir.join("ca.crt");
    private_copy(tls.ca_cert_path(), &ca, account)?;

    // The admin account is made by `--init-file`, which the server runs before it accepts any
    // connection: no client, no socket authentication as whichever OS user we are, and no
    // window in which the server is up without it. The file holds the password, so it is
    // private to the server's account and removed once the server is ready.
    let password = random_hex(16)?;
    let init_file = dir.join("init.sql");
    let init_sql = format!(
        "DELETE FROM mysql.global_priv WHERE User = '';\n\
         FLUSH PRIVILEGES;\n\
         CREATE USER '{ADMIN}'@'%' IDENTIFIED BY '{password}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{ADMIN}'@'%' WITH GRANT OPTION;\n"
    );
    private_file(&init_file, init_sql.as_bytes(), account)?;

    let port = free_port()?;
    let socket = dir.join("mariadb.sock");
    let log = dir.join("mariadb.log");
    // Created here, owned by the server's account, so that both our redirection and the
    // server's own (re)opening of it work.
    private_file(&log, b"", account)?;
    let log_file = std::fs::File::options()
        .append(true)
        .open(&log)
        .map_err(StackError::io(format!("could not open {}", log.display())))?;
    let log_copy = log_file.try_clone().map_err(StackError::io(format!(
        "could not duplicate {}",
        log.display()
    )))?;
    let mut command = Command::new(&mariadbd);
    command
        .arg(format!("--defaults-file={}", config.display()))
        .arg(format!("--datadir={}", data_dir.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--skip-networking=0")
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
        .arg(format!("--log-error={}", log.display()))
        .arg(format!("--ssl-ca={}", ca.display()))
        .arg(format!("--ssl-cert={}", cert.display()))
        .arg(format!("--ssl-key={}", key.display()))
        .arg(format!("--init-file={}", init_file.display()))
        .current_dir(&dir)
        // mariadbd writes to --log-error once it has opened it; what it prints before (bad
        // options, for one) goes to the same file through stderr.
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_copy));
    if let Some(account) = account {
        std::os::unix::process::CommandExt::uid(&mut command, account.uid);
        std::os::unix::process::CommandExt::gid(&mut command, account.gid);
    }
    let mut child = session.spawn_server(command, "TERM")?;
    let ready_log = log.clone();
    wait_until_ready("mariadbd", &mut child, &log, || {
        let ready = log_contains(&ready_log, "ready for connections");
        async move { ready }
    })
    .await?;
    std::fs::remove_file(&init_file).map_err(StackError::io(format!(
        "could not remove {}",
        init_file.display()
    )))?;

    Ok(MariaDb {
        port,
        password,
        socket,
        log,
        ca_cert: tls.ca_cert_path().to_path_buf(),
    })
}
