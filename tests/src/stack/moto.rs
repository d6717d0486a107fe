//! moto's server mode: the Secrets Manager API (and the rest of AWS) on a loopback port.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{free_port, private_dir, require_executable, wait_until_ready};
use super::session::session;
use super::{prerequisite, StackError};

/// The process-wide moto server.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// The endpoint URL for the AWS SDK (`endpoint_url`), e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// moto's own log (one line per request).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Forgets every secret (and all other state) in moto. Tests share the server, so a test
    /// that resets it must not run beside tests that rely on their secrets; prefer unique
    /// secret names instead.
    pub async fn reset(&self) -> Result<(), StackError> {
        let (status, body) = self.request("POST", "/moto-api/reset", &[], "").await?;
        if status == 200 {
            Ok(())
        } else {
            Err(StackError::Setup(format!(
                "moto refused the reset: HTTP {status}: {body}"
            )))
        }
    }

    /// Sends one AWS JSON 1.1 call (`X-Amz-Target: <target>`, e.g. `secretsmanager.ListSecrets`)
    /// and returns the HTTP status and body. moto does not check signatures; the Authorization
    /// header only tells it the region (us-east-1).
    pub async fn call_json(&self, target: &str, body: &str) -> Result<(u16, String), StackError> {
        let authorization =
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/secretsmanager/aws4_request, \
                             SignedHeaders=host;x-amz-target, Signature=0";
        self.request(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", target),
                ("Authorization", authorization),
            ],
            body,
        )
        .await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String), StackError> {
        http(
            self.port,
            method,
            path,
            headers,
            body,
            Duration::from_secs(30),
        )
        .await
    }
}

/// The moto_server binary: `$MOTO_SERVER` if set, else the one `scripts/setup` puts in the
/// repository's venv (this crate sits one level below the repository root).
fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .unwrap_or(crate_dir)
        .join(".venv/bin/moto_server")
}

pub(crate) async fn start() -> Result<Moto, StackError> {
    let program = moto_server_path();
    require_executable("moto_server", &program, "moto[server] into <repo>/.venv")?;
    let session = session()
        .await
        .map_err(|error| prerequisite("the stack's temporary directory", error))?;
    let dir = session.root().join("moto");
    private_dir(&dir, None)?;
    let log = dir.join("moto.log");
    let log_file = std::fs::File::create(&log).map_err(StackError::io(format!(
        "could not create {}",
        log.display()
    )))?;
    let log_copy = log_file.try_clone().map_err(StackError::io(format!(
        "could not duplicate {}",
        log.display()
    )))?;

    let port = free_port()?;
    let mut command = Command::new(&program);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(&dir)
        // Python buffers a redirected stdout; unbuffered, the log is current when we read it.
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_copy));
    let mut child = session.spawn_server(command, "TERM")?;

    let probe = || async move {
        // Any HTTP answer means the server is up (moto answers `GET /` as S3's ListBuckets).
        http(port, "GET", "/", &[], "", Duration::from_secs(2))
            .await
            .is_ok()
    };
    wait_until_ready("moto_server", &mut child, &log, probe).await?;
    Ok(Moto { port, log })
}

/// An HTTP exchange with moto, its failures as stack errors.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), StackError> {
    crate::http::exchange(port, method, path, headers, body, timeout)
        .await
        .map_err(StackError::Setup)
}
