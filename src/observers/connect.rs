//! Connect observer: what a client gets at the expected endpoint — a Unix socket path, or a TCP address dialled
//! with a deadline.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use sockdiag_probes::{ConnectResult, Endpoint, EventKind};

/// The longest a TCP connect may take before it counts as timed out.
const CONNECT_DEADLINE: Duration = Duration::from_millis(500);

/// An open connection to the endpoint, whichever kind it is.
pub(crate) enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let timeout = Some(Duration::from_millis(500));
        match self {
            Conn::Unix(s) => s.set_write_timeout(timeout).and_then(|()| s.write_all(bytes)),
            Conn::Tcp(s) => s.set_write_timeout(timeout).and_then(|()| s.write_all(bytes)),
        }
    }
}

/// Connects to the endpoint once, as a client would.
pub(crate) fn connect(endpoint: &Endpoint) -> std::io::Result<Conn> {
    match endpoint {
        Endpoint::Unix { path } => UnixStream::connect(path).map(Conn::Unix),
        Endpoint::Tcp { host, port } => {
            let mut last = std::io::Error::new(ErrorKind::NotFound, format!("{host} resolves to no address"));
            for addr in resolve(host, *port)? {
                match TcpStream::connect_timeout(&addr, CONNECT_DEADLINE) {
                    Ok(s) => return Ok(Conn::Tcp(s)),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// The addresses a client tries for `host:port` (`localhost` may give both families).
pub(crate) fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Tries the endpoint once and closes at once; on a Unix socket, notes which process accepted.
pub(crate) fn attempt(endpoint: &Endpoint) -> EventKind {
    let (result, detail, peer) = match connect(endpoint) {
        Ok(conn) => (ConnectResult::Connected, "connected".to_string(), server_pid(&conn)),
        Err(e) => (classify(&e), e.to_string(), None),
    };
    EventKind::Connect { path: endpoint.target(), result, detail, peer }
}

/// The pid of the process that listened on the Unix socket we reached (the kernel keeps it from listen()).
fn server_pid(conn: &Conn) -> Option<i32> {
    match conn {
        Conn::Unix(s) => {
            nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials).ok().map(|c| c.pid())
        }
        Conn::Tcp(_) => None,
    }
}

/// Connects and sends the profile's message (e.g. a finalize request). Returns what happened, for the record.
pub(crate) fn send(endpoint: &Endpoint, bytes: &[u8]) -> String {
    let target = endpoint.target();
    match connect(endpoint) {
        Ok(mut conn) => match conn.write_all(bytes) {
            Ok(()) => format!("sent {} bytes to {target}", bytes.len()),
            Err(e) => format!("connected to {target} but the send failed: {e}"),
        },
        Err(e) => format!("could not connect to {target} to send the stop message: {e}"),
    }
}

fn classify(e: &std::io::Error) -> ConnectResult {
    match e.kind() {
        ErrorKind::NotFound => ConnectResult::NotFound,
        ErrorKind::ConnectionRefused => ConnectResult::Refused,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => ConnectResult::TimedOut,
        _ => ConnectResult::Other,
    }
}
