//! A minimal HTTP/1.1 client for talking to loopback test servers (moto's set-up endpoints),
//! so the tests need no HTTP client crate of their own.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// POSTs `body` to `http://host:port{path}` and returns the status code and the response body.
/// One request per connection (`Connection: close`), bounded by a 30 s timeout.
pub async fn post(
    endpoint: &str,
    path: &str,
    content_type: &str,
    authorization: Option<&str>,
    body: &str,
) -> Result<(u16, String), String> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("{endpoint} is not an http:// endpoint"))?
        .trim_end_matches('/');
    let exchange = async {
        let mut stream = TcpStream::connect(authority)
            .await
            .map_err(|error| format!("connect {authority}: {error}"))?;
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(authorization) = authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| format!("send to {authority}: {error}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|error| format!("read from {authority}: {error}"))?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("{authority} sent no HTTP status line"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("{authority} did not answer within 30 s"))?
}
