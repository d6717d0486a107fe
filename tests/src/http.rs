//! A minimal HTTP/1.1 client for loopback test servers (moto and its set-up endpoints), so the
//! tests need no HTTP client crate of their own.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request to `127.0.0.1:port` on its own connection (`Connection: close`), bounded by
/// `timeout`. Returns the status code and the body; errors name the request.
pub async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let context = format!("{method} http://127.0.0.1:{port}{path}");
    let talk = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(timeout, talk)
        .await
        .map_err(|_| format!("{context}: no answer within {} s", timeout.as_secs()))?
        .map_err(|error| format!("{context}: {error}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // "HTTP/1.1 200 OK": the status is the second word of the first line.
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{context}: not an HTTP response: {head:.200}"))?;
    // moto answers with Content-Length, never chunked, so the rest is the body as sent.
    Ok((status, body.to_string()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (form bodies, URL parts).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn percent_encoding_keeps_unreserved_characters_and_escapes_everything_else() {
        assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
        assert_eq!(percent_encode("p@ss:w/rd %"), "p%40ss%3Aw%2Frd%20%25");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
