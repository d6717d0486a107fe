//! The HTTPS client an HTTP provider is called with: rustls verifying against the public (Mozilla)
//! roots plus `CA_BUNDLE`, one timeout per request covering the connection and the whole answer,
//! and answers capped in size. Built once per process; it keeps connections alive between steps.

use std::error::Error as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rotation::config::ConfigError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::CA_BUNDLE;

/// No provider answer we read is anywhere near this; a larger one is refused rather than
/// buffered.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

pub struct HttpsClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

/// A provider's answer, read to the end.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A request that got no usable answer. Never carries a header or body of the request.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("{0}")]
    Transport(String),
    #[error("the answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
}

impl HttpsClient {
    /// `allow_http` lets plain `http://` URLs through (the operator opted in); otherwise the
    /// connector refuses anything but TLS, whatever URL it is given.
    pub fn new(
        ca_bundle: Option<&Path>,
        allow_http: bool,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_bundle {
            let (added, _ignored) = roots.add_parsable_certificates(read_bundle(path)?);
            if added == 0 {
                return Err(ConfigError::new(
                    CA_BUNDLE,
                    format!("{} holds no usable CA certificate", path.display()),
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| ConfigError::new(CA_BUNDLE, format!("TLS set-up failed: {error}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let builder = HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if allow_http {
            builder.https_or_http().enable_http1().wrap_connector(http)
        } else {
            builder.https_only().enable_http1().wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            // Lambda freezes the process between invocations; a pooled connection older than
            // this is likely closed by the provider by then.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpsClient { client, timeout })
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, CallError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| CallError::Transport(describe(&error)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<http_body_util::LengthLimitError>() {
                        CallError::TooLarge
                    } else {
                        CallError::Transport(format!("the answer broke off: {error}"))
                    }
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout(self.timeout.as_secs())))
    }
}

fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = std::fs::read(path).map_err(|error| {
        ConfigError::new(
            CA_BUNDLE,
            format!("cannot read {}: {error}", path.display()),
        )
    })?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            ConfigError::new(
                CA_BUNDLE,
                format!("{} is not a PEM bundle: {error}", path.display()),
            )
        })
}

/// The error and its causes on one line: hyper's top-level message alone ("client error
/// (Connect)") does not say whether the connection was refused or the certificate was wrong.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
