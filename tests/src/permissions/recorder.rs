//! A loopback front for moto that records which AWS call each request is, for the permissions
//! proof: the service (from the SigV4 credential scope), the action (`X-Amz-Target` of the JSON
//! protocols, `Action=` of the query protocols), the identifier of the resource it names, the
//! access key that signed it, and the status moto answered.
//!
//! Secrets pass through here: of a request's body only the identifying fields are read
//! (`SecretId`, `DBInstanceIdentifier`, `DBClusterIdentifier`, `UserName`), and nothing of the
//! answer but its status.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as the function sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeenCall {
    /// The SigV4 signing name: `secretsmanager`, `rds`, `iam`, `sts`, …
    pub service: String,
    /// The operation, as IAM names the action after the service prefix (`DescribeSecret`).
    pub operation: String,
    /// The resource identifier the request names, as sent (an ARN, a name or an id).
    pub identifier: Option<String>,
    /// The access key id that signed it: the role's, or another credential the function holds.
    pub access_key_id: String,
    /// moto's answer.
    pub status: u16,
}

/// The front: listens on a loopback port, relays each request to moto on a connection of its
/// own, and keeps a [`SeenCall`] per request until [`Recorder::take`].
pub struct Recorder {
    address: SocketAddr,
    calls: Arc<Mutex<Vec<SeenCall>>>,
    accept: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Recorder {
    pub async fn start(moto_port: u16) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, moto_port));
        let kept = calls.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let calls = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        relay(request, upstream, calls.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(client), service)
                        .await;
                });
            }
        });
        Ok(Recorder {
            address,
            calls,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>`, for the function's `AWS_ENDPOINT_URL*` variables.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The calls seen since the last take, in the order they arrived.
    pub fn take(&self) -> Vec<SeenCall> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

type Answer = Response<Full<Bytes>>;

async fn relay(
    request: Request<Incoming>,
    upstream: SocketAddr,
    calls: Arc<Mutex<Vec<SeenCall>>>,
) -> Result<Answer, String> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| format!("reading the request: {error}"))?
        .to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    // `Credential=<key id>/<date>/<region>/<service>/aws4_request`
    let scope: Vec<String> = header("authorization")
        .and_then(|authorization| {
            let credential = authorization.split("Credential=").nth(1)?;
            let credential = credential.split([',', ' ']).next()?;
            Some(credential.split('/').map(str::to_owned).collect())
        })
        .unwrap_or_default();
    let (operation, identifier) = match header("x-amz-target") {
        Some(target) => {
            let operation = target.rsplit('.').next().unwrap_or(&target).to_owned();
            let identifier = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json["SecretId"].as_str().map(str::to_owned));
            (operation, identifier)
        }
        None => {
            let form = form_fields(&body);
            let operation = form_value(&form, "Action").unwrap_or_default();
            let identifier = ["DBInstanceIdentifier", "DBClusterIdentifier", "UserName"]
                .into_iter()
                .find_map(|field| form_value(&form, field));
            (operation, identifier)
        }
    };
    let forwarded = Request::from_parts(parts, Full::new(body));
    let answer = forward(forwarded, upstream).await?;
    let call = SeenCall {
        service: scope.get(3).cloned().unwrap_or_default(),
        operation,
        identifier,
        access_key_id: scope.first().cloned().unwrap_or_default(),
        status: answer.status().as_u16(),
    };
    calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(call);
    Ok(answer)
}

async fn forward(request: Request<Full<Bytes>>, upstream: SocketAddr) -> Result<Answer, String> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|error| format!("connecting to moto: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("talking to moto: {error}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("moto did not answer: {error}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| format!("reading moto's answer: {error}"))?
        .to_bytes();
    let mut answer = Response::from_parts(parts, Full::new(body));
    if answer.status() == StatusCode::CONTINUE {
        *answer.status_mut() = StatusCode::BAD_GATEWAY;
    }
    Ok(answer)
}

/// The `name=value` pairs of a form body, values percent-decoded.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((percent_decode(name), percent_decode(value)))
        })
        .collect()
}

fn form_value(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.clone())
}

fn percent_decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = match (bytes.get(index + 1), bytes.get(index + 2)) {
            (Some(&high), Some(&low)) if bytes[index] == b'%' => hex(high).zip(hex(low)),
            _ => None,
        };
        match (bytes[index], escaped) {
            (b'%', Some((high, low))) => {
                // Two hexadecimal digits make one byte.
                decoded.push((high * 16 + low) as u8);
                index += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                index += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{form_fields, form_value, percent_decode};

    #[test]
    fn form_values_are_percent_decoded() {
        assert_eq!(
            percent_decode("arn%3Aaws%3Ards%3Aus-east-1%3A1%3Adb%3Aa+b"),
            "arn:aws:rds:us-east-1:1:db:a b"
        );
        assert_eq!(percent_decode("100%"), "100%");
        let form = form_fields(b"Action=DescribeDBInstances&DBInstanceIdentifier=db%2D1");
        assert_eq!(
            form_value(&form, "DBInstanceIdentifier").as_deref(),
            Some("db-1")
        );
    }
}
