//! TCP socket observer: the worker tree's listening TCP sockets — `/proc/<pid>/fd` joined with the listeners of
//! the worker's network namespace — and every listener of that namespace on a port.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use procfs::net::{TcpNetEntry, TcpState};
use procfs::process::Process;
use sockdiag_probes::{EventKind, IpFamily};

use super::sock_diag;
use super::sockets::FdScan;

/// Listening TCP sockets by inode, in `pid`'s network namespace (ours when `pid` is gone). In our own namespace
/// the kernel filters them (inet_diag, state LISTEN): the cost follows the number of listeners, not of
/// connections. `net/tcp` and `tcp6` are read for another namespace, or when sock_diag is unavailable.
pub(crate) fn listening(pid: i32) -> HashMap<u64, SocketAddr> {
    if sock_diag::sees(pid) {
        if let Ok(found) = diag_listeners() {
            return found;
        }
    }
    proc_listeners(pid)
}

fn diag_listeners() -> std::io::Result<HashMap<u64, SocketAddr>> {
    let socket = sock_diag::connect()?;
    let mut found = HashMap::new();
    for (family, id) in [(libc::AF_INET, SocketId::new_v4()), (libc::AF_INET6, SocketId::new_v6())] {
        let request = SockDiagMessage::InetRequest(InetRequest {
            family: family as u8,
            protocol: libc::IPPROTO_TCP as u8,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id: id,
        });
        sock_diag::ask(&socket, true, request, |answer| {
            if let SockDiagMessage::InetResponse(r) = answer {
                let id = &r.header.socket_id;
                found.insert(u64::from(r.header.inode), SocketAddr::new(id.source_address, id.source_port));
            }
        })?;
    }
    Ok(found)
}

fn proc_listeners(pid: i32) -> HashMap<u64, SocketAddr> {
    let (v4, v6) = match Process::new(pid) {
        Ok(p) => (p.tcp(), p.tcp6()),
        Err(_) => (procfs::net::tcp(), procfs::net::tcp6()),
    };
    let entries = v4.unwrap_or_default().into_iter().chain(v6.unwrap_or_default());
    entries.filter(|e: &TcpNetEntry| e.state == TcpState::Listen).map(|e| (e.inode, e.local_address)).collect()
}

/// Remembers which listeners the tree held, to report new ones and closed ones.
#[derive(Default)]
pub(crate) struct TcpTable {
    held: HashMap<(i32, u64), SocketAddr>,
}

impl TcpTable {
    /// Compares a fresh descriptor scan with what was held before, given the namespace's listeners.
    pub(crate) fn update(&mut self, table: &HashMap<u64, SocketAddr>, scan: &FdScan) -> Vec<EventKind> {
        let mut events = Vec::new();
        let mut now: HashSet<(i32, u64)> = HashSet::new();
        for &(pid, inode) in &scan.sockets {
            let Some(addr) = table.get(&inode) else { continue };
            now.insert((pid, inode));
            if self.held.insert((pid, inode), *addr).is_none() {
                let family = if addr.is_ipv4() { IpFamily::Ipv4 } else { IpFamily::Ipv6 };
                events.push(EventKind::TcpListening {
                    pid,
                    inode,
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    family,
                });
            }
        }
        let gone: Vec<(i32, u64)> = self.held.keys().filter(|k| !now.contains(k)).copied().collect();
        for key in gone {
            events.extend(self.closed(key));
        }
        events
    }

    /// Forgets the listeners of a process that exited (its descriptors are closed with it).
    pub(crate) fn forget_pid(&mut self, pid: i32) -> Vec<EventKind> {
        let gone: Vec<(i32, u64)> = self.held.keys().filter(|(p, _)| *p == pid).copied().collect();
        gone.into_iter().filter_map(|k| self.closed(k)).collect()
    }

    /// The inodes the tree holds now.
    pub(crate) fn inodes(&self) -> HashSet<u64> {
        self.held.keys().map(|(_, inode)| *inode).collect()
    }

    fn closed(&mut self, (pid, inode): (i32, u64)) -> Option<EventKind> {
        let addr = self.held.remove(&(pid, inode))?;
        Some(EventKind::TcpClosed { pid, inode, address: addr.ip().to_string(), port: addr.port() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_diag_lists_the_listeners_net_tcp_lists() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        let connected = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let me = std::process::id() as i32;
        let (diag, proc) = (diag_listeners().unwrap(), proc_listeners(me));
        for addr in std::iter::once(v4.local_addr().unwrap()).chain(v6.map(|l| l.local_addr().unwrap())) {
            let in_diag = diag.iter().find(|(_, a)| **a == addr).map(|(i, _)| *i);
            assert!(in_diag.is_some(), "{addr} listed by sock_diag");
            assert_eq!(in_diag, proc.iter().find(|(_, a)| **a == addr).map(|(i, _)| *i), "{addr}");
        }
        use std::os::unix::fs::MetadataExt;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&connected);
        let client = std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino();
        assert!(!diag.contains_key(&client), "a connection is not a listener");
    }
}
