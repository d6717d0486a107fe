//! The per-process temporary directory and the watchdog that cleans up after the process.
//!
//! Why a watchdog: the servers are kept in statics, and Rust never drops statics, so no
//! destructor in this process runs at exit. `PR_SET_PDEATHSIG` is no fix either: it fires when
//! the *thread* that spawned the child exits, and the test harness and tokio start and end
//! threads all the time; it is also cleared when a child changes its uid (our servers run as
//! `postgres` / `mysql` when we are root).
//!
//! So, once per process, we start `sh` with its stdin on a pipe whose only write end stays open
//! in this process for its whole life (the `ChildStdin` sits in a static and is never closed;
//! Rust opens pipes close-on-exec, so no server inherits it). When the process ends, however it
//! ends (exit, panic, SIGKILL), the kernel closes that end and the watchdog's `read` sees EOF. It
//! then sends each registered server its stop signal, waits up to 10 s for them to go, SIGKILLs
//! what is left and removes the directory. The watchdog and the servers run in their own
//! process groups, so a Ctrl-C on the terminal stops the test process but not the clean-up.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use tokio::sync::OnceCell;

use super::process::{describe, running_as_root};
use super::StackError;

const WATCHDOG: &str = r#"
root="$1"
pids="$root/pids"
# A hang-up or Ctrl-C on the terminal is for the test process, not for the clean-up.
trap '' INT HUP
# Block until the test process is gone: it holds the only write end of our stdin.
while read -r _; do :; done
alive() {
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}
if [ -f "$pids" ]; then
    while read -r pid signal; do kill -s "$signal" "$pid" 2>/dev/null; done < "$pids"
    waited=0
    while [ "$waited" -lt 100 ]; do
        left=""
        while read -r pid signal; do alive "$pid" && left="$left $pid"; done < "$pids"
        [ -z "$left" ] && break
        sleep 0.1
        waited=$((waited + 1))
    done
    [ -n "$left" ] && kill -s KILL $left 2>/dev/null
fi
rm -rf "$root"
"#;

pub(crate) struct Session {
    root: PathBuf,
    /// One line per server: "<pid> <signal>", read by the watchdog after the process ends.
    registry: Mutex<File>,
    /// Never written and never closed: its closing at process exit is the watchdog's cue.
    _watchdog_stdin: ChildStdin,
}

impl Session {
    /// The temporary directory every service of this process lives under.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Spawns a long-running server in its own process group and registers it with the
    /// watchdog, which sends it `stop_signal` (a `kill -s` name such as `TERM`) at exit.
    pub(crate) fn spawn_server(
        &self,
        mut command: Command,
        stop_signal: &'static str,
    ) -> Result<Child, StackError> {
        let description = describe(&command);
        command.stdin(Stdio::null()).process_group(0);
        let mut child = command
            .spawn()
            .map_err(StackError::io(format!("could not start `{description}`")))?;
        if let Err(error) = self.register(child.id(), stop_signal) {
            // Unregistered means nobody would stop it: do not leave it running.
            let _ = child.kill();
            let _ = child.wait();
            return Err(error);
        }
        Ok(child)
    }

    fn register(&self, pid: u32, signal: &str) -> Result<(), StackError> {
        let mut registry = self
            .registry
            .lock()
            .map_err(|_| StackError::Setup("the server registry lock is poisoned".into()))?;
        // One short write to an O_APPEND file: a line is never torn.
        registry
            .write_all(format!("{pid} {signal}\n").as_bytes())
            .map_err(StackError::io(
                "could not register a server with the watchdog",
            ))
    }
}

pub(crate) async fn session() -> Result<&'static Session, &'static StackError> {
    static CELL: OnceCell<Result<Session, StackError>> = OnceCell::const_new();
    CELL.get_or_init(|| async { create() }).await.as_ref()
}

fn create() -> Result<Session, StackError> {
    let root = tempfile::Builder::new()
        .prefix("rotation-stack-")
        .tempdir()
        .map_err(StackError::io(
            "could not create the stack's temporary directory",
        ))?
        // The watchdog removes it, after the servers using it have stopped.
        .keep();
    // As root the servers run as `postgres` / `mysql`: they must be able to reach their own
    // subdirectories, but not list the others' (0711).
    let mode = if running_as_root()? { 0o711 } else { 0o700 };
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode)).map_err(
        StackError::io(format!("could not chmod {}", root.display())),
    )?;

    let registry_path = root.join("pids");
    let registry = File::options()
        .create(true)
        .append(true)
        .open(&registry_path)
        .map_err(StackError::io(format!(
            "could not create {}",
            registry_path.display()
        )))?;

    // Absolute paths: the clean-up must not depend on the PATH the tests happen to run with.
    let mut watchdog = Command::new("/bin/sh");
    watchdog
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("rotation-stack-watchdog")
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = match watchdog.spawn() {
        Ok(child) => child,
        Err(error) => {
            // Without a watchdog nobody would remove the directory later.
            let _ = std::fs::remove_dir_all(&root);
            return Err(StackError::io(
                "could not start the stack's watchdog (/bin/sh)",
            )(error));
        }
    };
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| StackError::Setup("the watchdog's stdin pipe is missing".into()))?;
    Ok(Session {
        root,
        registry: Mutex::new(registry),
        _watchdog_stdin: stdin,
    })
}
