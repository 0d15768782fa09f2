//! `{port}`: a free loopback port per run, below the kernel's ephemeral range: a port the kernel picked (bind to
//! port 0) goes back to that range when it is closed, where any process's next connect may take it as its source
//! port before the worker binds it, and the run would look like H18. This invocation never hands the same port to
//! two runs.

use std::collections::HashSet;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
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
        let (low, high) = below_ephemeral();
        for _ in 0..ATTEMPTS {
            // Where other invocations start looking differs by pid and time, so that they rarely meet.
            let seed =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let port = low + ((seed ^ std::process::id().wrapping_mul(2_654_435_761)) % u32::from(high - low)) as u16;
            if bindable(port) && self.given.lock().expect("port set lock").insert(port) {
                return Ok(port);
            }
        }
        // A machine whose ephemeral range leaves nothing below it: the kernel's pick, as before.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot pick a free loopback port")?
            .port();
        self.given.lock().expect("port set lock").insert(port);
        Ok(port)
    }
}

/// True when a socket can bind 127.0.0.1:`port` now. Bound without listening, so that no look of another run
/// sees a listener there; without SO_REUSEADDR, so that a port with connections in TIME_WAIT is passed over too.
fn bindable(port: u16) -> bool {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .and_then(|fd| bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)))
        .is_ok()
}

/// The ports from 10000 up to the start of the ephemeral range (`net.ipv4.ip_local_port_range`, 32768 by default).
fn below_ephemeral() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let start = range.split_whitespace().next().and_then(|s| s.parse::<u16>().ok()).unwrap_or(32768);
    (10_000, start.max(10_001))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct() {
        let ports = super::Ports::default();
        let given: std::collections::HashSet<u16> = (0..20).map(|_| ports.free_loopback().unwrap()).collect();
        assert_eq!(given.len(), 20);
        let (low, high) = super::below_ephemeral();
        assert!(given.iter().all(|p| (low..high).contains(p)), "{given:?} outside {low}..{high}");
    }
}
