//! Health observer: the profile's HTTP GET after a connection is accepted — the status line's code and the body,
//! every read under a deadline. HTTP/1.0 with `Connection: close`, so the body is what follows the headers up to
//! the close; nothing beyond the status line is parsed.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sockdiag_probes::EventKind;

use super::connect::{connect, Conn};
use crate::profile::Health;

/// The most of a response that is kept.
const MAX_RESPONSE: usize = 64 * 1024;

/// Requests the health path and records the answer.
pub(crate) fn check(endpoint: &sockdiag_probes::Endpoint, health: &Health) -> EventKind {
    let url = format!("http://{}{}", endpoint.target(), health.get);
    let (status, body, detail) = match request(endpoint, health) {
        Ok(response) => match status_code(&response) {
            Some(code) => (Some(code), body(&response), format!("status {code}")),
            None => (None, String::new(), format!("not an HTTP response: {:?}", first_line(&response))),
        },
        Err(e) => (None, String::new(), e.to_string()),
    };
    let ready =
        status.is_some_and(|c| (200..300).contains(&c)) && health.ready.as_ref().is_none_or(|re| re.is_match(&body));
    EventKind::Health { url, status, ready, body, detail }
}

fn request(endpoint: &sockdiag_probes::Endpoint, health: &Health) -> std::io::Result<Vec<u8>> {
    let Conn::Tcp(mut stream) = connect(endpoint)? else {
        return Err(std::io::Error::other("a health check needs a TCP endpoint"));
    };
    let deadline = Instant::now() + Duration::from_millis(health.timeout_ms);
    let host = endpoint.target();
    let req =
        format!("GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: sockdiag\r\nConnection: close\r\n\r\n", health.get);
    stream.set_write_timeout(Some(Duration::from_millis(health.timeout_ms)))?;
    stream.write_all(req.as_bytes())?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    while response.len() < MAX_RESPONSE {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no complete answer before timeout_ms"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf)? {
            0 => break,
            n => response.extend_from_slice(&buf[..n.min(MAX_RESPONSE - response.len())]),
        }
    }
    Ok(response)
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(response: &[u8]) -> Option<u16> {
    let line = first_line(response);
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    let code = parts.next()?;
    (version.starts_with("HTTP/") && code.len() == 3).then(|| code.parse().ok()).flatten()
}

fn first_line(response: &[u8]) -> String {
    let end = response.iter().position(|&b| b == b'\n').unwrap_or(response.len().min(200));
    String::from_utf8_lossy(&response[..end]).trim_end().to_string()
}

/// What follows the blank line that ends the headers.
fn body(response: &[u8]) -> String {
    let start = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    String::from_utf8_lossy(&response[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_and_body() {
        let r = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nnot ready";
        assert_eq!(status_code(r), Some(503));
        assert_eq!(body(r), "not ready");
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
    }
}
