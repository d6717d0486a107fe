//! Certificates for one test process, made with the `openssl` command-line tool: a CA, a server
//! certificate it signs for `localhost` / 127.0.0.1 / ::1 (used by PostgreSQL and MariaDB), and a
//! second, unrelated CA, so tests can show that verification against the wrong CA fails.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::process::{find_tool, private_dir, random_hex, run};
use super::session::session;
use super::{prerequisite, StackError};

/// Paths of this process's certificates (PEM). Keys stay in the stack's temporary directory.
#[derive(Debug)]
pub struct Tls {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    wrong_ca_cert: PathBuf,
}

impl Tls {
    /// The CA that signed the servers' certificate: the trust anchor for `verify-full`.
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert
    }

    /// A CA that signed nothing the servers present: verifying against it must fail.
    pub fn wrong_ca_cert_path(&self) -> &Path {
        &self.wrong_ca_cert
    }

    /// The servers' certificate (SAN: DNS:localhost, IP:127.0.0.1, IP:::1).
    pub fn server_cert_path(&self) -> &Path {
        &self.server_cert
    }

    /// The servers' private key (each server gets its own copy, owned by its account).
    pub fn server_key_path(&self) -> &Path {
        &self.server_key
    }
}

/// Lifetime of the certificates: far longer than any test run, short enough to be obviously
/// throw-away.
const DAYS: &str = "30";

pub(crate) async fn generate() -> Result<Tls, StackError> {
    let session = session()
        .await
        .map_err(|error| prerequisite("the stack's temporary directory", error))?;
    let openssl = find_tool("openssl", &["/usr/bin"], "openssl")?;
    let dir = session.root().join("tls");
    // Only we read these; each server gets copies owned by its account.
    private_dir(&dir, None)?;

    let path = |name: &str| dir.join(name);
    write_config(&path("ca.cnf"), &ca_config("rotation-tests CA"))?;
    write_config(
        &path("wrong-ca.cnf"),
        &ca_config("rotation-tests unrelated CA"),
    )?;
    write_config(&path("server.cnf"), SERVER_CONFIG)?;

    // The two CAs and the server's key and request are independent: make them in parallel.
    let self_signed = |name: &str| {
        let mut command = Command::new(&openssl);
        command
            .args([
                "req",
                "-x509",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-days", DAYS, "-extensions", "v3_ca", "-config"])
            .arg(path(&format!("{name}.cnf")))
            .arg("-keyout")
            .arg(path(&format!("{name}.key")))
            .arg("-out")
            .arg(path(&format!("{name}.crt")));
        run(command)
    };
    let mut request = Command::new(&openssl);
    request
        .args([
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-config",
        ])
        .arg(path("server.cnf"))
        .arg("-keyout")
        .arg(path("server.key"))
        .arg("-out")
        .arg(path("server.csr"));
    tokio::try_join!(self_signed("ca"), self_signed("wrong-ca"), run(request))?;

    // A random serial: clients cache nothing across runs, but distinct serials keep any
    // certificate store that does from confusing two runs' certificates. The leading 0x7f
    // keeps it positive.
    let serial = format!("0x7f{}", random_hex(15)?);
    let mut sign = Command::new(&openssl);
    sign.args([
        "x509",
        "-req",
        "-days",
        DAYS,
        "-set_serial",
        &serial,
        "-extensions",
        "v3_server",
    ])
    .arg("-in")
    .arg(path("server.csr"))
    .arg("-CA")
    .arg(path("ca.crt"))
    .arg("-CAkey")
    .arg(path("ca.key"))
    .arg("-extfile")
    .arg(path("server.cnf"))
    .arg("-out")
    .arg(path("server.crt"));
    run(sign).await?;

    Ok(Tls {
        ca_cert: path("ca.crt"),
        server_cert: path("server.crt"),
        server_key: path("server.key"),
        wrong_ca_cert: path("wrong-ca.crt"),
    })
}

fn write_config(path: &Path, contents: &str) -> Result<(), StackError> {
    std::fs::write(path, contents).map_err(StackError::io(format!(
        "could not write {}",
        path.display()
    )))
}

// Our own configuration files, so the result does not depend on the system's openssl.cnf.
// rustls (webpki) wants v3 certificates: a CA with basicConstraints CA:TRUE and keyCertSign,
// and a leaf that is not a CA, has the names in subjectAltName (the CN is ignored) and allows
// serverAuth.

fn ca_config(common_name: &str) -> String {
    format!(
        "[req]\n\
         prompt = no\n\
         distinguished_name = dn\n\
         [dn]\n\
         CN = {common_name}\n\
         [v3_ca]\n\
         basicConstraints = critical, CA:TRUE\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n"
    )
}

const SERVER_CONFIG: &str = "[req]\n\
    prompt = no\n\
    distinguished_name = dn\n\
    [dn]\n\
    CN = localhost\n\
    [v3_server]\n\
    basicConstraints = critical, CA:FALSE\n\
    keyUsage = critical, digitalSignature\n\
    extendedKeyUsage = serverAuth\n\
    subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n\
    subjectKeyIdentifier = hash\n\
    authorityKeyIdentifier = keyid\n";
