//! A loopback proxy in front of one server, which counts what passes and can make it fail.
//!
//! The functions are black boxes to the tests: they reach Secrets Manager and the databases over
//! TCP, as they would on Lambda. Putting a [`Proxy`] between a function and a server (the
//! secret's `host`/`port`, or the Secrets Manager endpoint, name the proxy instead of the
//! server) shows on the wire what the function did and lets a test break the path in the ways
//! production breaks it:
//!
//! - [`Proxy::tcp`] relays bytes untouched (TLS included: a database's certificate still names
//!   `localhost`, and the proxy listens there too). It counts connections, those still open,
//!   bytes each way and round trips (each burst from the client after the server spoke).
//! - [`Proxy::aws_json`] speaks HTTP/1.1 to an AWS JSON 1.1 service (moto): it also counts
//!   requests by operation, from the `X-Amz-Target` header (`secretsmanager.DescribeSecret` is
//!   counted as `DescribeSecret`).
//!
//! Faults are armed for the next N connections ([`Proxy::fail_connections`]: reset at once,
//! answer late, reset after N bytes or right after a statement went through) or, in AWS JSON
//! mode, the next N requests of an operation ([`Proxy::fail_requests`]: 500, throttling as the
//! service sends it, a late answer, a connection closed without an answer). Armed faults are
//! used up in the order they were armed; [`Proxy::heal`] disarms the rest.
//!
//! The proxy never looks at, keeps or prints a request's body or headers other than the
//! operation name: secrets pass through it and nowhere else.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What a connection suffers instead of a clean relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionFault {
    /// Accepted and reset at once, before any byte: the client sees its connection die as it
    /// starts (a listener cannot refuse selectively; to the client's driver it is the same
    /// failure to connect).
    Refuse,
    /// The server is reached only after this long: a slow network or an overloaded server.
    /// Connect timeouts fire here.
    Delay(Duration),
    /// Relayed until this many bytes (both directions together) have passed, then reset on
    /// both sides: a connection lost mid-stream. TCP mode only.
    ResetAfter(u64),
    /// Relayed until a chunk from the client contains this text (a statement, with TLS off),
    /// which still reaches the server; then both sides are closed, so the server may act on it
    /// while the client never hears back. TCP mode only.
    CutAfter(String),
}

/// How an AWS JSON request is answered instead of being relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFault {
    /// `500` with `InternalServiceError`, as the service reports its own failure.
    ServerError,
    /// `400` with `ThrottlingException` "Rate exceeded", as the service throttles.
    Throttling,
    /// Relayed after this long: an answer slower than the client's timeouts, or just slow.
    Slow(Duration),
    /// The connection is closed without an answer.
    Drop,
}

/// What the proxy saw since it started or since [`Proxy::reset_counts`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Connections accepted.
    pub connections: u64,
    /// Bursts of bytes from the client that followed bytes from the server (or opened the
    /// connection): the round trips the client waited for. In AWS JSON mode, requests.
    pub round_trips: u64,
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
    /// AWS JSON mode: requests by operation (`X-Amz-Target` after its last dot).
    pub operations: BTreeMap<String, u64>,
    /// Faults that were applied.
    pub faults: u64,
}

impl Counts {
    /// Requests of every operation together.
    pub fn requests(&self) -> u64 {
        self.operations.values().sum()
    }
}

/// The operation name counted for requests without an `X-Amz-Target` header.
pub const UNNAMED_OPERATION: &str = "(no X-Amz-Target)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Tcp,
    AwsJson,
}

struct Armed<F> {
    operation: Option<String>,
    left: u32,
    fault: F,
}

#[derive(Default)]
struct Faults {
    connections: Vec<Armed<ConnectionFault>>,
    requests: Vec<Armed<RequestFault>>,
}

struct Shared {
    upstream: SocketAddr,
    mode: Mode,
    counts: Mutex<Counts>,
    faults: Mutex<Faults>,
    /// Not part of [`Counts`]: a reset must not forget connections still open.
    open: AtomicU64,
    closed: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay meaningful after a panic elsewhere.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn count(&self, update: impl FnOnce(&mut Counts)) {
        update(&mut lock(&self.counts));
    }

    fn next_connection_fault(&self) -> Option<ConnectionFault> {
        let fault = take_armed(&mut lock(&self.faults).connections, None);
        if fault.is_some() {
            self.count(|counts| counts.faults += 1);
        }
        fault
    }

    fn next_request_fault(&self, operation: &str) -> Option<RequestFault> {
        let fault = take_armed(&mut lock(&self.faults).requests, Some(operation));
        if fault.is_some() {
            self.count(|counts| counts.faults += 1);
        }
        fault
    }
}

/// Uses up one of the first armed fault that matches `operation` (any, for a rule without one).
fn take_armed<F: Clone>(armed: &mut Vec<Armed<F>>, operation: Option<&str>) -> Option<F> {
    let index = armed.iter().position(|rule| {
        rule.left > 0
            && match (&rule.operation, operation) {
                (Some(wanted), Some(operation)) => wanted == operation,
                _ => true,
            }
    })?;
    let rule = &mut armed[index];
    rule.left -= 1;
    let fault = rule.fault.clone();
    if rule.left == 0 {
        armed.remove(index);
    }
    Some(fault)
}

/// Decrements the open count when a connection's task ends, however it ends.
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

/// A proxy on `127.0.0.1:<free port>` in front of one server; stops when dropped.
pub struct Proxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A byte relay to `upstream` (a database).
    pub async fn tcp(upstream: SocketAddr) -> io::Result<Proxy> {
        Self::start(upstream, Mode::Tcp).await
    }

    /// An HTTP/1.1 relay to `upstream`, an AWS JSON 1.1 service (moto), counting operations.
    pub async fn aws_json(upstream: SocketAddr) -> io::Result<Proxy> {
        Self::start(upstream, Mode::AwsJson).await
    }

    async fn start(upstream: SocketAddr, mode: Mode) -> io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode,
            counts: Mutex::new(Counts::default()),
            faults: Mutex::new(Faults::default()),
            open: AtomicU64::new(0),
            closed: Notify::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            address,
            shared,
            accept,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:<port>`: the endpoint URL to give an AWS client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What passed since the start or the last reset.
    pub fn counts(&self) -> Counts {
        lock(&self.shared.counts).clone()
    }

    /// Starts counting afresh (connections still open stay open, see [`Proxy::open`]).
    pub fn reset_counts(&self) {
        *lock(&self.shared.counts) = Counts::default();
    }

    /// Connections open right now.
    pub fn open(&self) -> u64 {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Waits until no connection is open, at most `limit`; whether none is. A client's close
    /// reaches the proxy a moment after the client moved on, hence the wait.
    pub async fn wait_until_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let closed = self.shared.closed.notified();
            if self.open() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return self.open() == 0;
            }
        }
    }

    /// The next `times` connections suffer `fault`.
    ///
    /// # Panics
    /// For [`ConnectionFault::ResetAfter`] and [`ConnectionFault::CutAfter`] on an AWS JSON
    /// proxy: it relays requests, not bytes (use [`RequestFault::Drop`]).
    pub fn fail_connections(&self, times: u32, fault: ConnectionFault) {
        assert!(
            self.shared.mode == Mode::Tcp
                || matches!(fault, ConnectionFault::Refuse | ConnectionFault::Delay(_)),
            "{fault:?} applies to TCP proxies; an AWS JSON proxy drops requests instead"
        );
        lock(&self.shared.faults).connections.push(Armed {
            operation: None,
            left: times,
            fault,
        });
    }

    /// The next `times` requests for `operation` (`"PutSecretValue"`; `None`: any) suffer
    /// `fault`.
    ///
    /// # Panics
    /// On a TCP proxy, which does not see requests.
    pub fn fail_requests(&self, operation: Option<&str>, times: u32, fault: RequestFault) {
        assert!(
            self.shared.mode == Mode::AwsJson,
            "request faults need an AWS JSON proxy"
        );
        lock(&self.shared.faults).requests.push(Armed {
            operation: operation.map(str::to_owned),
            left: times,
            fault,
        });
    }

    /// Disarms every fault not used yet: later connections and requests pass.
    pub fn heal(&self) {
        let mut faults = lock(&self.shared.faults);
        faults.connections.clear();
        faults.requests.clear();
    }

    /// Faults armed and not used yet (connections and requests).
    pub fn faults_pending(&self) -> u32 {
        let faults = lock(&self.shared.faults);
        let connections: u32 = faults.connections.iter().map(|rule| rule.left).sum();
        let requests: u32 = faults.requests.iter().map(|rule| rule.left).sum();
        connections + requests
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Connections in progress finish on their own; no new ones are accepted.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "the proxy could not accept a connection");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.open.fetch_add(1, Ordering::SeqCst);
        shared.count(|counts| counts.connections += 1);
        let guard = OpenConnection(shared.clone());
        let shared = shared.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let _ = client.set_nodelay(true);
            let cut = match shared.next_connection_fault() {
                Some(ConnectionFault::Refuse) => return reset(client),
                Some(ConnectionFault::Delay(delay)) => {
                    tokio::time::sleep(delay).await;
                    None
                }
                Some(ConnectionFault::ResetAfter(bytes)) => Some(Cut::Bytes(bytes)),
                Some(ConnectionFault::CutAfter(marker)) => Some(Cut::Marker(marker)),
                None => None,
            };
            match shared.mode {
                Mode::Tcp => relay(client, &shared, cut).await,
                Mode::AwsJson => serve_aws_json(client, shared.clone()).await,
            }
        });
    }
}

/// Closes with a reset (RST) rather than an orderly close (FIN): a lost connection, not an
/// ended one.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Where a connection is cut short.
enum Cut {
    /// After this many bytes, both directions together.
    Bytes(u64),
    /// After the client's chunk that contains this text.
    Marker(String),
}

/// A connection's cut as the two directions share it: the bytes relayed so far count against
/// the limit.
struct Budget {
    cut: Cut,
    relayed: AtomicU64,
}

impl Budget {
    /// How much of a `chunk` read in `direction` may pass, and whether the connection is cut
    /// after it.
    fn allow(&self, chunk: &[u8], direction: Direction) -> (usize, bool) {
        match &self.cut {
            Cut::Bytes(limit) => {
                let before = self.relayed.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                let left = limit.saturating_sub(before);
                if (chunk.len() as u64) >= left {
                    (left as usize, true)
                } else {
                    (chunk.len(), false)
                }
            }
            Cut::Marker(marker) => {
                let hit = direction == Direction::ToServer
                    && String::from_utf8_lossy(chunk).contains(marker.as_str());
                (chunk.len(), hit)
            }
        }
    }
}

/// Which side spoke last on a connection, for counting round trips.
#[derive(Default)]
struct Turn {
    server_spoke: AtomicBool,
}

/// Relays bytes both ways until both sides are done, or resets both where `cut` says.
async fn relay(client: TcpStream, shared: &Shared, cut: Option<Cut>) {
    let server = match TcpStream::connect(shared.upstream).await {
        Ok(server) => server,
        Err(error) => {
            tracing::warn!(%error, upstream = %shared.upstream, "the proxy could not reach its server");
            return reset(client);
        }
    };
    let _ = server.set_nodelay(true);
    if matches!(cut, Some(Cut::Bytes(_))) {
        // Every close of this connection is then a reset, which is the point of the fault. A
        // cut after a marker closes in order instead: a reset could discard the marked chunk
        // before the server read it, and the point there is that the server gets it.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    let budget = cut.map(|cut| Budget {
        cut,
        relayed: AtomicU64::new(0),
    });
    let turn = Turn {
        server_spoke: AtomicBool::new(true),
    };
    // Borrowed halves: unlike owned ones they send no FIN when dropped, so a spent budget ends
    // in a reset only.
    let (mut client, mut server) = (client, server);
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let upward = pump(
        client_read,
        server_write,
        Direction::ToServer,
        shared,
        &turn,
        &budget,
    );
    let downward = pump(
        server_read,
        client_write,
        Direction::ToClient,
        shared,
        &turn,
        &budget,
    );
    if budget.is_some() {
        // Whichever direction spends the budget ends the connection for both: dropping the
        // four halves closes both sockets, with a reset.
        tokio::select! {
            () = upward => {},
            () = downward => {},
        }
    } else {
        tokio::join!(upward, downward);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// Copies one direction, counting; forwards the end of stream as a half close. With a budget,
/// returns as soon as the budget is spent (after relaying what fits).
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    direction: Direction,
    shared: &Shared,
    turn: &Turn,
    budget: &Option<Budget>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let (allowed, spent) = match budget {
            Some(budget) => budget.allow(&buffer[..read], direction),
            None => (read, false),
        };
        shared.count(|counts| match direction {
            Direction::ToServer => {
                if turn.server_spoke.swap(false, Ordering::SeqCst) {
                    counts.round_trips += 1;
                }
                counts.bytes_to_server += allowed as u64;
            }
            Direction::ToClient => {
                turn.server_spoke.store(true, Ordering::SeqCst);
                counts.bytes_to_client += allowed as u64;
            }
        });
        if allowed > 0 && to.write_all(&buffer[..allowed]).await.is_err() {
            break;
        }
        if spent {
            return;
        }
    }
    if budget.is_none() {
        let _ = to.shutdown().await;
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Serves one client connection as HTTP/1.1, relaying each request over one connection to the
/// server (opened on first use, reopened if the server closed it).
async fn serve_aws_json(client: TcpStream, shared: Arc<Shared>) {
    let server: Arc<tokio::sync::Mutex<Option<SendRequest<Incoming>>>> =
        Arc::new(tokio::sync::Mutex::new(None));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        let server = server.clone();
        async move { answer(request, &shared, &server).await }
    });
    // A client that goes away mid-request ends the connection; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(client), service)
        .await;
}

/// Why a request got no answer (hyper then closes the connection).
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    #[error("a Drop fault closed the connection")]
    Dropped,
    #[error("the server could not be reached: {0}")]
    Server(String),
}

async fn answer(
    request: Request<Incoming>,
    shared: &Shared,
    server: &tokio::sync::Mutex<Option<SendRequest<Incoming>>>,
) -> Result<Response<ProxyBody>, Unanswered> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .map(|target| target.rsplit('.').next().unwrap_or(target).to_owned())
        .unwrap_or_else(|| UNNAMED_OPERATION.to_owned());
    shared.count(|counts| {
        counts.round_trips += 1;
        *counts.operations.entry(operation.clone()).or_default() += 1;
    });
    match shared.next_request_fault(&operation) {
        Some(RequestFault::ServerError) => {
            return Ok(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                "An error occurred on the server side (injected by the test proxy).",
            ))
        }
        Some(RequestFault::Throttling) => {
            return Ok(aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            ))
        }
        Some(RequestFault::Drop) => return Err(Unanswered::Dropped),
        Some(RequestFault::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let mut connection = server.lock().await;
    // Reuse the server connection while it lasts; the server may have closed it since.
    let reusable = match connection.as_mut() {
        Some(sender) => sender.ready().await.is_ok(),
        None => false,
    };
    if !reusable {
        *connection = Some(connect_server(shared.upstream).await?);
    }
    let Some(sender) = connection.as_mut() else {
        return Err(Unanswered::Server("no connection".to_owned()));
    };
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| Unanswered::Server(error.to_string()))?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, body.boxed()))
}

async fn connect_server(upstream: SocketAddr) -> Result<SendRequest<Incoming>, Unanswered> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|error| Unanswered::Server(error.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| Unanswered::Server(error.to_string()))?;
    tokio::spawn(async move {
        // Ends when either side closes; the next request reconnects.
        let _ = connection.await;
    });
    Ok(sender)
}

/// An error as AWS JSON 1.1 services send it: the code in `__type`, the text in `message`.
fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amzn-errortype",
        hyper::header::HeaderValue::from_str(code)
            .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("Unknown")),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use aws_sdk_secretsmanager::config::retry::RetryConfig;
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    use rotation::store::aws::AwsSecretStore;
    use rotation::store::{SecretStore, StoreErrorKind};

    use super::*;

    /// A server that echoes what it reads, and first greets with `greeting`.
    async fn echo_server(greeting: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = stream.write_all(greeting).await;
                    let mut buffer = [0u8; 1024];
                    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                        if stream.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    /// Sends `message` and reads as many bytes back.
    async fn echo(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
        stream.write_all(message).await.expect("write");
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.expect("read the echo");
        back
    }

    /// Everything the proxy lets through before the connection ends, and whether it ended with
    /// an error (a reset) rather than an orderly close.
    async fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, bool) {
        let mut received = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return (received, false),
                Ok(read) => received.extend_from_slice(&buffer[..read]),
                Err(_) => return (received, true),
            }
        }
    }

    #[tokio::test]
    async fn a_tcp_proxy_relays_both_ways_and_counts_connections_bytes_and_round_trips() {
        let proxy = Proxy::tcp(echo_server(b"").await).await.expect("proxy");
        let mut stream = TcpStream::connect(proxy.address()).await.expect("connect");
        assert_eq!(echo(&mut stream, b"ping").await, b"ping");
        assert_eq!(echo(&mut stream, b"again").await, b"again");
        assert_eq!(proxy.open(), 1);
        drop(stream);
        assert!(proxy.wait_until_idle(Duration::from_secs(5)).await);

        let counts = proxy.counts();
        assert_eq!(counts.connections, 1);
        assert_eq!(counts.round_trips, 2);
        assert_eq!((counts.bytes_to_server, counts.bytes_to_client), (9, 9));
        assert_eq!(counts.faults, 0);
        proxy.reset_counts();
        assert_eq!(proxy.counts(), Counts::default());
    }

    #[tokio::test]
    async fn a_refused_connection_ends_before_any_byte_and_the_next_one_works() {
        let proxy = Proxy::tcp(echo_server(b"hello").await)
            .await
            .expect("proxy");
        proxy.fail_connections(1, ConnectionFault::Refuse);

        let mut refused = TcpStream::connect(proxy.address()).await.expect("connect");
        let (received, _) = read_until_end(&mut refused).await;
        assert!(received.is_empty(), "{received:?}");

        let mut next = TcpStream::connect(proxy.address()).await.expect("connect");
        let mut greeting = [0u8; 5];
        next.read_exact(&mut greeting).await.expect("the greeting");
        assert_eq!(&greeting, b"hello");
        assert_eq!(proxy.counts().faults, 1);
        assert_eq!(proxy.faults_pending(), 0);
    }

    #[tokio::test]
    async fn a_delayed_connection_reaches_the_server_only_after_the_delay() {
        let proxy = Proxy::tcp(echo_server(b"hi").await).await.expect("proxy");
        proxy.fail_connections(1, ConnectionFault::Delay(Duration::from_millis(300)));
        let started = Instant::now();
        let mut stream = TcpStream::connect(proxy.address()).await.expect("connect");
        let mut greeting = [0u8; 2];
        stream
            .read_exact(&mut greeting)
            .await
            .expect("the greeting");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_connection_reset_after_n_bytes_delivers_no_more_and_ends_with_a_reset() {
        let proxy = Proxy::tcp(echo_server(&[7u8; 100]).await)
            .await
            .expect("proxy");
        proxy.fail_connections(1, ConnectionFault::ResetAfter(10));
        let mut stream = TcpStream::connect(proxy.address()).await.expect("connect");
        let (received, reset) = read_until_end(&mut stream).await;
        assert!(received.len() <= 10, "{} bytes", received.len());
        assert!(reset, "the connection ends with a reset, not a close");
        assert!(proxy.wait_until_idle(Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn a_cut_after_a_marker_delivers_that_chunk_to_the_server_and_no_answer_back() {
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let upstream = listener.local_addr().expect("an address");
        let log = received.clone();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 1024];
                while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                    lock(&log).extend_from_slice(&buffer[..read]);
                    if stream.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let proxy = Proxy::tcp(upstream).await.expect("proxy");
        proxy.fail_connections(1, ConnectionFault::CutAfter("ALTER ROLE".to_owned()));

        let mut stream = TcpStream::connect(proxy.address()).await.expect("connect");
        assert_eq!(echo(&mut stream, b"SELECT 1").await, b"SELECT 1");
        stream.write_all(b"ALTER ROLE app").await.expect("write");
        let (answer, _) = read_until_end(&mut stream).await;
        assert!(answer.is_empty(), "{answer:?}");
        assert!(proxy.wait_until_idle(Duration::from_secs(5)).await);
        // The server reads on its own schedule; give it a moment to see the last chunk.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = String::new();
        while Instant::now() < deadline {
            seen = String::from_utf8_lossy(&lock(&received)).into_owned();
            if seen.ends_with("ALTER ROLE app") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(seen.ends_with("ALTER ROLE app"), "{seen}");
    }

    #[tokio::test]
    async fn healing_disarms_every_fault_left() {
        let proxy = Proxy::tcp(echo_server(b"").await).await.expect("proxy");
        proxy.fail_connections(5, ConnectionFault::Refuse);
        assert_eq!(proxy.faults_pending(), 5);
        proxy.heal();
        assert_eq!(proxy.faults_pending(), 0);
        let mut stream = TcpStream::connect(proxy.address()).await.expect("connect");
        assert_eq!(echo(&mut stream, b"ok").await, b"ok");
    }

    /// An AWS JSON 1.1 service that answers every call with `answer`.
    async fn aws_json_server(answer: &'static str) -> SocketAddr {
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || async move {
                (
                    [("content-type", "application/x-amz-json-1.1")],
                    answer.to_owned(),
                )
            }),
        );
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        address
    }

    async fn call(proxy: &Proxy, operation: &str) -> Result<(u16, String), String> {
        let target = format!("secretsmanager.{operation}");
        crate::http::exchange(
            proxy.port(),
            "POST",
            "/",
            &[
                ("X-Amz-Target", target.as_str()),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            "{}",
            Duration::from_secs(5),
        )
        .await
    }

    #[tokio::test]
    async fn an_aws_json_proxy_counts_requests_by_operation() {
        let proxy = Proxy::aws_json(aws_json_server("{}").await)
            .await
            .expect("proxy");
        for operation in ["DescribeSecret", "GetSecretValue", "DescribeSecret"] {
            assert_eq!(call(&proxy, operation).await, Ok((200, "{}".to_owned())));
        }
        let counts = proxy.counts();
        assert_eq!(counts.operations.get("DescribeSecret"), Some(&2));
        assert_eq!(counts.operations.get("GetSecretValue"), Some(&1));
        assert_eq!(counts.requests(), 3);
        assert_eq!(counts.connections, 3, "one connection per exchange");
    }

    #[tokio::test]
    async fn faults_hit_only_the_named_operation_and_only_as_often_as_armed() {
        let proxy = Proxy::aws_json(aws_json_server("{}").await)
            .await
            .expect("proxy");
        proxy.fail_requests(Some("PutSecretValue"), 2, RequestFault::Throttling);
        proxy.fail_requests(None, 1, RequestFault::ServerError);

        let (status, body) = call(&proxy, "PutSecretValue").await.expect("an answer");
        assert_eq!(status, 400);
        assert!(
            body.contains("\"__type\":\"ThrottlingException\""),
            "{body}"
        );
        let (status, body) = call(&proxy, "DescribeSecret").await.expect("an answer");
        assert_eq!(status, 500);
        assert!(body.contains("InternalServiceError"), "{body}");
        assert_eq!(
            call(&proxy, "DescribeSecret").await,
            Ok((200, "{}".to_owned()))
        );
        assert_eq!(call(&proxy, "PutSecretValue").await.map(|a| a.0), Ok(400));
        assert_eq!(call(&proxy, "PutSecretValue").await.map(|a| a.0), Ok(200));
        assert_eq!(proxy.counts().faults, 3);
        assert_eq!(proxy.faults_pending(), 0);
    }

    #[tokio::test]
    async fn a_slow_request_is_answered_after_the_delay() {
        let proxy = Proxy::aws_json(aws_json_server("{}").await)
            .await
            .expect("proxy");
        proxy.fail_requests(None, 1, RequestFault::Slow(Duration::from_millis(300)));
        let started = Instant::now();
        assert_eq!(call(&proxy, "GetSecretValue").await.map(|a| a.0), Ok(200));
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_dropped_request_gets_no_answer_at_all() {
        let proxy = Proxy::aws_json(aws_json_server("{}").await)
            .await
            .expect("proxy");
        proxy.fail_requests(Some("GetSecretValue"), 1, RequestFault::Drop);
        let dropped = call(&proxy, "GetSecretValue").await;
        assert!(dropped.is_err(), "{dropped:?}");
        assert_eq!(call(&proxy, "GetSecretValue").await.map(|a| a.0), Ok(200));
    }

    /// The fault answers are what the AWS SDK expects of the service: the port classifies them
    /// as failures a retry may cure.
    #[tokio::test]
    async fn the_sdk_sees_injected_throttling_and_server_errors_as_transient() {
        let described = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf","Name":"s","RotationEnabled":true,"VersionIdsToStages":{"v1":["AWSCURRENT"]}}"#;
        let proxy = Proxy::aws_json(aws_json_server(described).await)
            .await
            .expect("proxy");
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .endpoint_url(proxy.endpoint())
            .retry_config(RetryConfig::disabled())
            .build();
        let store = AwsSecretStore::from_client(aws_sdk_secretsmanager::Client::from_conf(config));
        proxy.fail_requests(Some("DescribeSecret"), 1, RequestFault::Throttling);
        proxy.fail_requests(Some("DescribeSecret"), 1, RequestFault::ServerError);

        let throttled = store.describe("s").await.expect_err("throttled");
        assert_eq!(throttled.kind, StoreErrorKind::Transient);
        assert!(
            throttled.message.contains("ThrottlingException"),
            "{throttled}"
        );
        let failed = store.describe("s").await.expect_err("a server error");
        assert_eq!(failed.kind, StoreErrorKind::Transient);
        let description = store.describe("s").await.expect("relayed");
        assert!(description.rotation_enabled);
        assert_eq!(proxy.counts().operations.get("DescribeSecret"), Some(&3));
    }
}
