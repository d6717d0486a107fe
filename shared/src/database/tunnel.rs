//! The database connection's TCP leg, opened by the function with `TCP_NODELAY`, and handed to
//! the driver through a private Unix socket.
//!
//! Why: sqlx 0.9.0 connects without `TCP_NODELAY` (0.8 set it; transact-rs/sqlx#4335, fixed
//! upstream by #4336 but not released when this was written), so Nagle's algorithm holds every
//! small write that follows an unacknowledged one until the server's delayed ACK, 40 ms on
//! Linux. A TLS login writes such pairs two or three times (the TLS handshake's last flight, then
//! the startup message), and MySQL commands do too: measured on the local stack, one login to
//! PostgreSQL took about 95 ms instead of 10, and a whole warm single-user rotation 245 ms
//! instead of 40. libpq and PyMySQL, which the AWS templates use, set `TCP_NODELAY`.
//!
//! sqlx takes no socket from outside, but it connects to a Unix socket when told to, and runs
//! TLS over it exactly as over TCP (the certificate is still checked against the secret's host).
//! So [`Tunnel::open`] connects to the database itself, with `TCP_NODELAY` and the same
//! errors the driver would report (refused, unreachable, unknown host), listens on a fresh
//! socket in a directory only this process's user can enter, and relays the one connection the
//! driver makes to it. The relay sees what the network would see: TLS records, or plaintext when
//! the secret asks for no TLS. It ends when either side closes, so closing the driver's
//! connection closes the database connection.
//!
//! Remove this module once sqlx sets `TCP_NODELAY` again: the connectors then connect directly.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tokio::net::{TcpStream, UnixListener};
use tokio::task::JoinHandle;

/// The directory of this process's sockets: private (mode 0700), made on first use so that
/// start-up does no file work.
fn socket_root() -> io::Result<&'static Path> {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(root) = ROOT.get() {
        return Ok(root);
    }
    let root = std::env::temp_dir().join(format!("rotation-db-{}", std::process::id()));
    match private_dir(&root) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            // Left by an earlier process with the same id: use it only if it is this user's
            // and private, never one someone else made to catch the connections.
            use std::os::unix::fs::MetadataExt;
            let found = std::fs::symlink_metadata(&root)?;
            let user = std::fs::metadata("/proc/self")?.uid();
            if !found.is_dir() || found.uid() != user || found.mode() & 0o077 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} is not a private directory of this user", root.display()),
                ));
            }
        }
        other => other?,
    }
    Ok(ROOT.get_or_init(|| root))
}

fn private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// One database connection's TCP leg, waiting for the driver on a Unix socket.
///
/// Dropping it before [`Tunnel::keep`] (the driver failed to connect) closes the TCP
/// connection at once.
pub struct Tunnel {
    dir: PathBuf,
    relay: Option<JoinHandle<()>>,
}

impl Tunnel {
    /// Connects to `host:port` with `TCP_NODELAY` and listens for the driver on a socket named
    /// `socket_name` in [`Tunnel::dir`]. The errors are the TCP connection's, as the driver's
    /// own connection attempt would have met them.
    pub async fn open(host: &str, port: u16, socket_name: &str) -> io::Result<Tunnel> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let server = TcpStream::connect((host, port)).await?;
        server.set_nodelay(true)?;
        let dir = socket_root()?.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
        if let Err(error) = private_dir(&dir) {
            if error.kind() != io::ErrorKind::AlreadyExists {
                return Err(error);
            }
            // A leftover of an earlier process with the same id, inside our private root.
            std::fs::remove_dir_all(&dir)?;
            private_dir(&dir)?;
        }
        let path = dir.join(socket_name);
        let listener = match UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(error);
            }
        };
        let relay = tokio::spawn(relay(listener, path, server));
        Ok(Tunnel {
            dir,
            relay: Some(relay),
        })
    }

    /// The directory holding the socket (PostgreSQL's driver wants the directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The driver is connected: the relay now lives as long as the driver's connection.
    pub fn keep(mut self) {
        // Dropping the handle detaches the task; Drop below then has nothing to abort.
        self.relay.take();
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        // Empty once the relay accepted (it removes the socket); otherwise the abort dropped the
        // listener, and the socket file goes here.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts the driver's one connection, removes the socket, and copies both ways until either
/// side is done.
async fn relay(listener: UnixListener, path: PathBuf, mut server: TcpStream) {
    let accepted = listener.accept().await;
    drop(listener);
    let _ = std::fs::remove_file(&path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    if let Ok((mut driver, _)) = accepted {
        // Either side closing ends the relay; what the other side gets is the same end of
        // stream or reset it would have got without the relay.
        let _ = tokio::io::copy_bidirectional(&mut driver, &mut server).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, UnixStream};

    use super::*;

    #[tokio::test]
    async fn the_driver_reaches_the_server_through_the_tunnel_and_the_socket_goes_away() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a connection");
            let mut buffer = [0u8; 4];
            stream.read_exact(&mut buffer).await.expect("the request");
            stream.write_all(b"pong").await.expect("the answer");
        });

        let tunnel = Tunnel::open("127.0.0.1", port, ".s.PGSQL.5432")
            .await
            .expect("the tunnel");
        let path = tunnel.dir().join(".s.PGSQL.5432");
        let mut driver = UnixStream::connect(&path).await.expect("the socket");
        tunnel.keep();
        driver.write_all(b"ping").await.expect("write");
        let mut answer = [0u8; 4];
        driver.read_exact(&mut answer).await.expect("read");
        assert_eq!(&answer, b"pong");
        server.await.expect("the server");
        assert!(
            !path.exists(),
            "the socket is removed once the driver connected"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_the_tunnels_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        drop(listener);
        let error = Tunnel::open("127.0.0.1", port, "mysql.sock")
            .await
            .err()
            .expect("nothing listens");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn a_tunnel_the_driver_never_used_closes_its_server_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let tunnel = Tunnel::open("127.0.0.1", port, "mysql.sock")
            .await
            .expect("the tunnel");
        let (mut accepted, _) = listener.accept().await.expect("the tunnel's connection");
        let dir = tunnel.dir().to_path_buf();
        drop(tunnel);
        let mut buffer = [0u8; 1];
        assert_eq!(accepted.read(&mut buffer).await.expect("end of stream"), 0);
        assert!(!dir.exists());
    }
}
