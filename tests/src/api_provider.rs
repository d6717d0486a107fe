//! The reference API-key provider: a small HTTP service standing in for a SaaS API that issues
//! keys, meeting the contract `rotate-api-key` documents with its default settings:
//!
//! - `POST /keys` with `{"name": …}` issues a key: `201 {"id", "name", "key"}`. An
//!   `Idempotency-Key` header replays the first answer given for that key (switchable off).
//! - `GET /keys` lists the live keys: `{"keys": [{"id", "name"}]}`, never their secrets.
//! - `DELETE /keys/{id}` revokes: `204`, or `404` for a key that is not live.
//! - `GET /whoami` answers `200` for a live key and `401` otherwise.
//!
//! Every call is authenticated with `Authorization: Bearer <key>`, where the key is the admin key
//! or any live key (a key that administers itself). Tests steer it: fail the next N requests with
//! 500, answer slowly, cap live keys, and run an action (such as killing the function) right after
//! a key is issued or revoked, before the answer leaves. It counts live keys at every moment.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// A moment a test can attach an action to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderEvent {
    /// A key was issued (and counted live); its answer has not been sent.
    Issued,
    /// A key was revoked; the answer has not been sent.
    Revoked,
}

/// A live key as the provider sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
}

type Action = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct ProviderState {
    admin_key: String,
    /// id → (name, secret).
    live: BTreeMap<String, (String, String)>,
    /// Every secret ever issued, for the tests' leak checks.
    issued: Vec<String>,
    idempotency: bool,
    /// Idempotency-Key → the first answer's body.
    replays: BTreeMap<String, Value>,
    limit: Option<usize>,
    most_live: usize,
    /// Requests starting with the text (`"POST /keys"`, `""` for all) left to fail, and the
    /// status they fail with.
    failures: Option<(String, usize, StatusCode)>,
    /// Requests starting with the text left to answer late, and how late.
    slow: Option<(String, usize, Duration)>,
    actions: Vec<(ProviderEvent, Action)>,
    requests: Vec<String>,
    counter: u64,
}

pub struct ReferenceProvider {
    state: Arc<Mutex<ProviderState>>,
    address: SocketAddr,
    server: JoinHandle<()>,
    /// The HTTPS front, when one was started.
    tls_front: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<ProviderState>) -> MutexGuard<'_, ProviderState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReferenceProvider {
    /// Starts the provider on a free loopback port, honouring `Idempotency-Key`.
    pub async fn start() -> ReferenceProvider {
        let admin_key = format!("admin-{}", random_hex());
        crate::leaks::remember(&admin_key);
        let state = Arc::new(Mutex::new(ProviderState {
            admin_key,
            idempotency: true,
            ..ProviderState::default()
        }));
        let app = Router::new()
            .route("/keys", get(list).post(issue))
            .route("/keys/{id}", delete(revoke))
            .route("/whoami", get(whoami))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a free loopback port for the reference provider");
        let address = listener.local_addr().expect("the listener's address");
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("reference provider stopped: {error}");
            }
        });
        ReferenceProvider {
            state,
            address,
            server,
            tls_front: None,
        }
    }

    /// Serves the provider over HTTPS too, with `certificate` and `key` (PEM files), on another
    /// loopback port, which it returns: TLS is terminated there and the bytes passed on.
    pub async fn serve_https(
        &mut self,
        certificate: &std::path::Path,
        key: &std::path::Path,
    ) -> u16 {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
            .expect("the certificate file")
            .collect::<Result<_, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(key).expect("a PEM private key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a usable certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a free loopback port for the HTTPS front");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let backend = self.address;
        self.tls_front = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its own connection: nothing
                    // to report here, the client's error is what the tests look at.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        }));
        port
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn admin_key(&self) -> String {
        lock(&self.state).admin_key.clone()
    }

    /// Issues a key without a request, as an operator would before the first rotation. Returns
    /// its id and secret.
    pub fn issue_directly(&self, name: &str) -> (String, String) {
        let mut state = lock(&self.state);
        let (id, secret) = state.issue(name);
        (id, secret)
    }

    pub fn set_idempotency(&self, honoured: bool) {
        lock(&self.state).idempotency = honoured;
    }

    /// Refuses to issue a key while `limit` keys are live (409), as many providers do.
    pub fn set_limit(&self, limit: Option<usize>) {
        lock(&self.state).limit = limit;
    }

    /// Answers the next `count` requests that start with `request` (`"POST /keys"`; `""` for
    /// any) with 500, without acting on them.
    pub fn fail_next(&self, request: &str, count: usize) {
        lock(&self.state).failures =
            Some((request.to_owned(), count, StatusCode::INTERNAL_SERVER_ERROR));
    }

    /// Acts on the next `count` requests that start with `request`, then holds each answer back
    /// for `delay`: a caller that gives up first never learns what happened.
    pub fn slow_next(&self, request: &str, count: usize, delay: Duration) {
        lock(&self.state).slow = Some((request.to_owned(), count, delay));
    }

    /// Runs `action` the next time `event` happens, before the answer is sent.
    pub fn on_next(&self, event: ProviderEvent, action: impl FnOnce() + Send + 'static) {
        lock(&self.state).actions.push((event, Box::new(action)));
    }

    pub fn live_keys(&self) -> Vec<KeyRecord> {
        lock(&self.state)
            .live
            .iter()
            .map(|(id, (name, _))| KeyRecord {
                id: id.clone(),
                name: name.clone(),
            })
            .collect()
    }

    pub fn is_live(&self, id: &str) -> bool {
        lock(&self.state).live.contains_key(id)
    }

    /// The most keys that were live at any one moment.
    pub fn most_live(&self) -> usize {
        lock(&self.state).most_live
    }

    /// Every key secret issued so far, the admin key included: what must never be logged.
    pub fn every_secret(&self) -> Vec<String> {
        let state = lock(&self.state);
        let mut secrets = state.issued.clone();
        secrets.push(state.admin_key.clone());
        secrets
    }

    /// The requests received, as `METHOD /path`, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// Whether `key` authenticates, asked over HTTP as a client of the provider would.
    pub async fn authenticates(&self, key: &str) -> bool {
        let bearer = format!("Bearer {key}");
        let (status, _) = crate::http::exchange(
            self.port(),
            "GET",
            "/whoami",
            &[("Authorization", &bearer)],
            "",
            Duration::from_secs(5),
        )
        .await
        .expect("the reference provider answers");
        status == 200
    }
}

impl Drop for ReferenceProvider {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(front) = &self.tls_front {
            front.abort();
        }
    }
}

impl ProviderState {
    fn issue(&mut self, name: &str) -> (String, String) {
        self.counter += 1;
        let id = format!("key_{:04}", self.counter);
        let secret = format!("sk_{}", random_hex());
        self.live
            .insert(id.clone(), (name.to_owned(), secret.clone()));
        self.issued.push(secret.clone());
        crate::leaks::remember(&secret);
        self.most_live = self.most_live.max(self.live.len());
        (id, secret)
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(key) = bearer(headers) else {
            return false;
        };
        key == self.admin_key || self.live.values().any(|(_, secret)| *secret == key)
    }

    fn take_action(&mut self, event: ProviderEvent) -> Option<Action> {
        let index = self.actions.iter().position(|(on, _)| *on == event)?;
        Some(self.actions.remove(index).1)
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// Takes one use of a countdown for `request` if it applies: `Some` with its value.
fn count_down<T: Copy>(slot: &mut Option<(String, usize, T)>, request: &str) -> Option<T> {
    let (prefix, left, value) = slot.as_mut()?;
    if !request.starts_with(prefix.as_str()) {
        return None;
    }
    let value = *value;
    *left -= 1;
    if *left == 0 {
        *slot = None;
    }
    Some(value)
}

/// What every request goes through first: recorded, maybe failed, then (for the key management
/// calls) authenticated. `Some` is the answer to send instead of handling the request.
fn admit(
    state: &Mutex<ProviderState>,
    request: &str,
    headers: Option<&HeaderMap>,
) -> Option<Response> {
    let mut state = lock(state);
    state.requests.push(request.to_owned());
    if let Some(status) = count_down(&mut state.failures, request) {
        return Some(error(status, "internal error, please retry"));
    }
    if headers.is_some_and(|headers| !state.authorised(headers)) {
        return Some(error(StatusCode::UNAUTHORIZED, "invalid API key"));
    }
    None
}

/// Holds the answer to `request` back when the test asked for slow answers.
async fn pace(state: &Mutex<ProviderState>, request: &str, answer: Response) -> Response {
    let delay = count_down(&mut lock(state).slow, request);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    answer
}

async fn issue(
    State(state): State<Arc<Mutex<ProviderState>>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    const REQUEST: &str = "POST /keys";
    if let Some(answer) = admit(&state, REQUEST, Some(&headers)) {
        return answer;
    }
    let Some(name) = body
        .as_ref()
        .and_then(|Json(body)| body.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "a JSON body with a name is required",
        );
    };
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (action, answer) = {
        let mut state = lock(&state);
        let replay = idempotency_key
            .as_ref()
            .filter(|_| state.idempotency)
            .and_then(|key| state.replays.get(key))
            .cloned();
        match replay {
            Some(first) => (None, first),
            None => {
                if state.limit.is_some_and(|limit| state.live.len() >= limit) {
                    return error(StatusCode::CONFLICT, "too many live keys; revoke one first");
                }
                let (id, secret) = state.issue(&name);
                let answer = json!({ "id": id, "name": name, "key": secret });
                if let Some(key) = idempotency_key {
                    state.replays.insert(key, answer.clone());
                }
                (state.take_action(ProviderEvent::Issued), answer)
            }
        }
    };
    if let Some(action) = action {
        action();
    }
    pace(
        &state,
        REQUEST,
        (StatusCode::CREATED, Json(answer)).into_response(),
    )
    .await
}

async fn list(State(state): State<Arc<Mutex<ProviderState>>>, headers: HeaderMap) -> Response {
    const REQUEST: &str = "GET /keys";
    if let Some(answer) = admit(&state, REQUEST, Some(&headers)) {
        return answer;
    }
    let keys: Vec<Value> = lock(&state)
        .live
        .iter()
        .map(|(id, (name, _))| json!({ "id": id, "name": name }))
        .collect();
    pace(
        &state,
        REQUEST,
        Json(json!({ "keys": keys })).into_response(),
    )
    .await
}

async fn revoke(
    State(state): State<Arc<Mutex<ProviderState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let request = format!("DELETE /keys/{id}");
    if let Some(answer) = admit(&state, &request, Some(&headers)) {
        return answer;
    }
    let action = {
        let mut state = lock(&state);
        if state.live.remove(&id).is_none() {
            return error(StatusCode::NOT_FOUND, "no such key");
        }
        state.take_action(ProviderEvent::Revoked)
    };
    if let Some(action) = action {
        action();
    }
    pace(&state, &request, StatusCode::NO_CONTENT.into_response()).await
}

async fn whoami(State(state): State<Arc<Mutex<ProviderState>>>, headers: HeaderMap) -> Response {
    const REQUEST: &str = "GET /whoami";
    if let Some(answer) = admit(&state, REQUEST, None) {
        return answer;
    }
    let key = bearer(&headers);
    let answer = match lock(&state)
        .live
        .iter()
        .find(|(_, (_, secret))| Some(secret) == key.as_ref())
    {
        Some((id, (name, _))) => Json(json!({ "id": id, "name": name })).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "invalid API key"),
    };
    pace(&state, REQUEST, answer).await
}
