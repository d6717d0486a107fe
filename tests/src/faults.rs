//! Fault-injecting proxies on loopback, for the tests that prove every failure is classified,
//! bounded in time and finished by a retry.
//!
//! - [`HttpFaults`] sits in front of moto. moto answers each request on its own connection
//!   (`Connection: close`), so the proxy reads one request per connection, matches its operation
//!   (`X-Amz-Target`), and either forwards it or answers with a fault: a status and body (500,
//!   throttling), a late answer, or a dropped connection.
//! - [`TcpFaults`] sits in front of a database: it refuses connections, delays them, or cuts a
//!   connection right after forwarding the first client packet that contains a marker (with TLS
//!   off, a statement's text).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the HTTP proxy does to a matching request.
#[derive(Clone, Debug)]
pub enum HttpFault {
    /// Answers with this status and JSON body without forwarding.
    Answer(u16, String),
    /// Forwards, but holds the answer back this long.
    Late(Duration),
    /// Closes the connection without an answer.
    Drop,
}

impl HttpFault {
    /// A 500 as the service sends for an internal failure.
    pub fn internal_error() -> HttpFault {
        HttpFault::Answer(
            500,
            r#"{"__type":"InternalServiceError","message":"injected internal failure"}"#.to_owned(),
        )
    }

    /// The throttling answer of AWS JSON services.
    pub fn throttling() -> HttpFault {
        HttpFault::Answer(
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
        )
    }
}

struct Rule<F> {
    /// Applies to requests (or connections) whose text contains this.
    matching: String,
    left: usize,
    fault: F,
}

type Rules<F> = Arc<Mutex<Vec<Rule<F>>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes one use of the first rule that matches `text`.
fn take<F: Clone>(rules: &Mutex<Vec<Rule<F>>>, text: &str) -> Option<F> {
    let mut rules = lock(rules);
    let index = rules
        .iter()
        .position(|rule| rule.left > 0 && text.contains(&rule.matching))?;
    rules[index].left -= 1;
    Some(rules[index].fault.clone())
}

/// The proxy in front of moto.
pub struct HttpFaults {
    port: u16,
    rules: Rules<HttpFault>,
    task: JoinHandle<()>,
}

impl HttpFaults {
    pub async fn start(upstream: SocketAddr) -> HttpFaults {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port for the fault proxy");
        let port = listener.local_addr().expect("its address").port();
        let rules: Rules<HttpFault> = Arc::default();
        let shared = rules.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(http_exchange(client, upstream, shared.clone()));
            }
        });
        HttpFaults { port, rules, task }
    }

    /// The endpoint to give the function instead of moto's.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Applies `fault` to the next `count` requests for `operation` (`PutSecretValue`).
    pub fn inject(&self, operation: &str, count: usize, fault: HttpFault) {
        lock(&self.rules).push(Rule {
            matching: format!("secretsmanager.{operation}"),
            left: count,
            fault,
        });
    }
}

impl Drop for HttpFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn http_exchange(mut client: TcpStream, upstream: SocketAddr, rules: Rules<HttpFault>) {
    let Some(request) = read_request(&mut client).await else {
        return;
    };
    let head = String::from_utf8_lossy(&request).into_owned();
    let fault = take(&rules, &head);
    match fault {
        Some(HttpFault::Drop) => {}
        Some(HttpFault::Answer(status, body)) => {
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
        }
        Some(HttpFault::Late(delay)) => {
            tokio::time::sleep(delay).await;
            forward(client, upstream, &request).await;
        }
        None => forward(client, upstream, &request).await,
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, request: &[u8]) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(request).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// One request: the head, and as many body bytes as `Content-Length` says.
async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        let read = client.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let read = client.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    Some(request)
}

/// What the TCP proxy does to a connection.
#[derive(Clone, Debug)]
pub enum TcpFault {
    /// Closes the connection at once, before any byte reaches the server.
    Refuse,
    /// Holds the connection this long before connecting to the server.
    Delay(Duration),
    /// Forwards until the client sends a packet containing the marker, forwards that packet,
    /// then cuts both sides: the server may act on it, the client never hears back.
    CutAfter(String),
}

/// The proxy in front of a database.
pub struct TcpFaults {
    port: u16,
    faults: Arc<Mutex<Vec<(usize, TcpFault)>>>,
    task: JoinHandle<()>,
}

impl TcpFaults {
    pub async fn start(upstream: SocketAddr) -> TcpFaults {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port for the fault proxy");
        let port = listener.local_addr().expect("its address").port();
        let faults: Arc<Mutex<Vec<(usize, TcpFault)>>> = Arc::default();
        let shared = faults.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = {
                    let mut faults = lock(&shared);
                    let next = faults.iter_mut().find(|(left, _)| *left > 0);
                    next.map(|(left, fault)| {
                        *left -= 1;
                        fault.clone()
                    })
                };
                tokio::spawn(tcp_connection(client, upstream, fault));
            }
        });
        TcpFaults { port, faults, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Applies `fault` to the next `count` connections.
    pub fn inject(&self, count: usize, fault: TcpFault) {
        lock(&self.faults).push((count, fault));
    }

    /// Lets every later connection through.
    pub fn heal(&self) {
        lock(&self.faults).clear();
    }
}

impl Drop for TcpFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tcp_connection(mut client: TcpStream, upstream: SocketAddr, fault: Option<TcpFault>) {
    let marker = match fault {
        Some(TcpFault::Refuse) => return,
        Some(TcpFault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(TcpFault::CutAfter(marker)) => Some(marker),
        None => None,
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let Some(marker) = marker else {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read @ 1..) = client_read.read(&mut buffer).await {
        if server_write.write_all(&buffer[..read]).await.is_err() {
            break;
        }
        if String::from_utf8_lossy(&buffer[..read]).contains(&marker) {
            // Give the server the packet, then cut before its answer can come back.
            answers.abort();
            return;
        }
    }
    answers.abort();
}
