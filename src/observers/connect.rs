//! Connect observer: what a client gets at the expected socket path.

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use sockdiag_probes::{ConnectResult, EventKind};

/// Tries the path once, as a client would, and closes at once.
pub(crate) fn attempt(path: &str) -> EventKind {
    let (result, detail) = match UnixStream::connect(path) {
        Ok(_) => (ConnectResult::Connected, "connected".to_string()),
        Err(e) => (classify(&e), e.to_string()),
    };
    EventKind::Connect { path: path.to_string(), result, detail }
}

/// Connects and sends the profile's message (e.g. a finalize request). Returns what happened, for the record.
pub(crate) fn send(path: &str, bytes: &[u8]) -> String {
    match UnixStream::connect(path) {
        Ok(mut s) => {
            let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
            match s.write_all(bytes) {
                Ok(()) => format!("sent {} bytes to {path}", bytes.len()),
                Err(e) => format!("connected to {path} but the send failed: {e}"),
            }
        }
        Err(e) => format!("could not connect to {path} to send the stop message: {e}"),
    }
}

fn classify(e: &std::io::Error) -> ConnectResult {
    match e.kind() {
        ErrorKind::NotFound => ConnectResult::NotFound,
        ErrorKind::ConnectionRefused => ConnectResult::Refused,
        _ => ConnectResult::Other,
    }
}
