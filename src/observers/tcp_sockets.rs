//! TCP socket observer: the worker tree's listening TCP sockets — `/proc/<pid>/fd` joined with the worker's own
//! `/proc/<pid>/net/tcp` and `tcp6` (its network namespace) — and every listener of that namespace on a port.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use procfs::net::{TcpNetEntry, TcpState};
use procfs::process::Process;
use sockdiag_probes::{EventKind, IpFamily};

use super::sockets::FdScan;

/// Listening TCP sockets by inode, from `pid`'s network namespace (ours when `pid` is gone).
pub(crate) fn listening(pid: i32) -> HashMap<u64, SocketAddr> {
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
