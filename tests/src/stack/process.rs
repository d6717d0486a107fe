//! Helpers shared by the services: finding binaries, running short commands, service accounts,
//! free ports, random secrets and waiting for a server to come up.

use std::future::Future;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StackError;

/// How long one server may take to become ready. Generous for a loaded 2-core CI machine; a
/// healthy start takes a second or two.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound for one short set-up command (initdb, mariadb-install-db, openssl).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds `name` on PATH or in `extra_dirs` (daemons live in /usr/sbin, often not on a non-root
/// PATH). Missing → the error that tells the user to run `scripts/setup`.
pub(crate) fn find_tool(
    name: &'static str,
    extra_dirs: &[&str],
    provided_by: &'static str,
) -> Result<PathBuf, StackError> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(extra_dirs.iter().map(PathBuf::from));
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| StackError::MissingTool {
            tool: name,
            looked_in: format!("looked in PATH and {}", extra_dirs.join(", ")),
            provided_by,
        })
}

/// Requires an executable at a fixed path.
pub(crate) fn require_executable(
    tool: &'static str,
    path: &Path,
    provided_by: &'static str,
) -> Result<(), StackError> {
    if is_executable(path) {
        Ok(())
    } else {
        Err(StackError::MissingTool {
            tool,
            looked_in: format!("expected at {}", path.display()),
            provided_by,
        })
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs a short set-up command to completion, bounded in time; a failure carries its output.
pub(crate) async fn run(mut command: tokio::process::Command) -> Result<(), StackError> {
    let description = describe(command.as_std());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A command abandoned by a timeout or a cancelled start-up must not linger.
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(StackError::io(format!("could not start `{description}`")))?;
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| StackError::CommandFailed {
            command: description.clone(),
            status: format!("no exit within {} s", COMMAND_TIMEOUT.as_secs()),
            output: String::new(),
        })?
        .map_err(StackError::io(format!(
            "could not wait for `{description}`"
        )))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(StackError::CommandFailed {
            command: description,
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

pub(crate) fn describe(command: &std::process::Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The OS account a server runs as. `None` in [`service_account`] means "as ourselves".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Account {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// True when this process runs as root (the owner of /proc/self is the effective uid).
pub(crate) fn running_as_root() -> Result<bool, StackError> {
    let meta =
        std::fs::metadata("/proc/self").map_err(StackError::io("could not stat /proc/self"))?;
    Ok(meta.uid() == 0)
}

/// When we are root, the servers run as their packages' system accounts (`postgres`, `mysql`):
/// PostgreSQL refuses to run as root, and it is how they run in production. Otherwise they run
/// as the current user and need no account switch.
pub(crate) fn service_account(
    name: &str,
    provided_by: &'static str,
) -> Result<Option<Account>, StackError> {
    if !running_as_root()? {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(StackError::io("could not read /etc/passwd"))?;
    passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [user, _, uid, gid, ..] if *user == name => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
        .map(|(uid, gid)| Some(Account { uid, gid }))
        .next()
        .ok_or_else(|| {
            StackError::Setup(format!(
                "the system user `{name}` does not exist: run `scripts/setup` as root, it installs {provided_by}"
            ))
        })
}

/// Creates a directory owned by `account` (mode 0700), for a server's data and sockets.
pub(crate) fn private_dir(path: &Path, account: Option<Account>) -> Result<(), StackError> {
    std::fs::create_dir_all(path).map_err(StackError::io(format!(
        "could not create {}",
        path.display()
    )))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(
        StackError::io(format!("could not chmod {}", path.display())),
    )?;
    give_to(path, account)
}

/// Writes a file readable only by `account` (or by us), e.g. a key or a password file.
pub(crate) fn private_file(
    path: &Path,
    contents: &[u8],
    account: Option<Account>,
) -> Result<(), StackError> {
    std::fs::write(path, contents).map_err(StackError::io(format!(
        "could not write {}",
        path.display()
    )))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
        StackError::io(format!("could not chmod {}", path.display())),
    )?;
    give_to(path, account)
}

/// Copies a file (a certificate or key) into a server's directory, owned by its account.
pub(crate) fn private_copy(
    from: &Path,
    to: &Path,
    account: Option<Account>,
) -> Result<(), StackError> {
    let contents = std::fs::read(from)
        .map_err(StackError::io(format!("could not read {}", from.display())))?;
    private_file(to, &contents, account)
}

fn give_to(path: &Path, account: Option<Account>) -> Result<(), StackError> {
    match account {
        Some(Account { uid, gid }) => std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(
            StackError::io(format!("could not chown {} to {uid}:{gid}", path.display())),
        ),
        None => Ok(()),
    }
}

/// A port that was free on 127.0.0.1 a moment ago. The listener is closed before the server
/// binds the port, so another process could take it in between; on a test machine that race
/// is rare, and the server's start-up error then names the port. Within this process the
/// services start in parallel, so a port already handed out is never handed out again (the
/// kernel may well offer a just-released port twice).
pub(crate) fn free_port() -> Result<u16, StackError> {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .map_err(|_| StackError::Setup("the port registry lock is poisoned".into()))?;
    for _ in 0..20 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(StackError::io(
            "could not bind 127.0.0.1:0 to pick a free port",
        ))?;
        let port = listener
            .local_addr()
            .map_err(StackError::io("could not read the picked port"))?
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Err(StackError::Setup(
        "the kernel kept offering ports this process already uses".into(),
    ))
}

/// `bytes` random bytes from the OS as lowercase hex: passwords and serial numbers that need
/// no quoting in SQL, URLs or command lines.
pub fn random_hex(bytes: usize) -> Result<String, StackError> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buffer))
        .map_err(StackError::io("could not read /dev/urandom"))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const LINES: usize = 30;
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LINES)..].join("\n")
        }
        Err(error) => format!("(could not read the log: {error})"),
    }
}

/// True once `needle` appears in the log file (a server's "ready" line).
pub(crate) fn log_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
        .unwrap_or(false)
}

/// Polls `ready` until it says yes, the server exits, or [`START_TIMEOUT`] passes.
pub(crate) async fn wait_until_ready<F, Fut>(
    service: &'static str,
    child: &mut std::process::Child,
    log: &Path,
    mut ready: F,
) -> Result<(), StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if ready().await {
            return Ok(());
        }
        let exited = child.try_wait().map_err(StackError::io(format!(
            "could not check whether {service} is running"
        )))?;
        if let Some(status) = exited {
            return Err(StackError::ExitedEarly {
                service,
                status: status.to_string(),
                log: log.to_path_buf(),
                tail: log_tail(log),
            });
        }
        if started.elapsed() > START_TIMEOUT {
            // Best effort: the watchdog stops it at exit anyway, but a hung server should not
            // keep a port and a core busy for the rest of the run.
            let _ = child.kill();
            return Err(StackError::StartTimeout {
                service,
                seconds: START_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
                tail: log_tail(log),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
