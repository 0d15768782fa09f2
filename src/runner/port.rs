//! `{port}`: a free loopback port per run. The kernel picks it (bind to port 0, read it, close), and this
//! invocation never hands the same port to two runs.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

use anyhow::Context;

/// Tries this many kernel picks before giving up on finding a port not handed out yet.
const ATTEMPTS: usize = 64;

/// The ports this invocation has handed out.
#[derive(Default)]
pub(crate) struct Ports {
    given: Mutex<HashSet<u16>>,
}

impl Ports {
    /// A loopback port that nothing listened on a moment ago and that no other run of this invocation got.
    pub(crate) fn free_loopback(&self) -> anyhow::Result<u16> {
        for _ in 0..ATTEMPTS {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("cannot pick a free loopback port")?
                .port();
            if self.given.lock().expect("port set lock").insert(port) {
                return Ok(port);
            }
        }
        anyhow::bail!("no free loopback port after {ATTEMPTS} attempts")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct() {
        let ports = super::Ports::default();
        let given: std::collections::HashSet<u16> = (0..20).map(|_| ports.free_loopback().unwrap()).collect();
        assert_eq!(given.len(), 20);
    }
}
