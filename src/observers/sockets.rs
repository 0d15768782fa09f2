//! Socket observer: the kernel's view of the worker tree's Unix sockets — `/proc/<pid>/fd` joined with the
//! worker's own `/proc/<pid>/net/unix` (its network namespace), abstract `@names` included.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use procfs::process::{FDTarget, Process};
use sockdiag_probes::EventKind;

use super::{kernel_sockets, sock_diag};

/// `__SO_ACCEPTCON` in `/proc/net/unix`'s Flags column: the socket is listening.
const SO_ACCEPTCON: u32 = 0x10000;

/// A Unix socket as `/proc/<pid>/net/unix` lists it.
struct UnixEntry {
    path: String,
    listening: bool,
}

/// The pids of the tree rooted at `root` (root first), from `/proc/<pid>/task/<tid>/children`.
pub(crate) fn tree(root: i32) -> Vec<i32> {
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        if let Ok(p) = Process::new(pids[i]) {
            if let Ok(tasks) = p.tasks() {
                for task in tasks.flatten() {
                    for child in task.children().unwrap_or_default() {
                        let child = child as i32;
                        if !pids.contains(&child) {
                            pids.push(child);
                        }
                    }
                }
            }
        }
        i += 1;
    }
    pids
}

/// How a process's threads stand: busy (a thread running or runnable, R, or in an uninterruptible wait such as a
/// page-in, D), every thread's state letter (`S S R`), and where in the
/// kernel its main thread waits (`/proc/<pid>/wchan`, e.g. `pipe_write`).
pub(crate) fn thread_states(pid: i32) -> Option<EventKind> {
    let tasks = Process::new(pid).and_then(|p| p.tasks()).ok()?;
    let states: Vec<char> = tasks.flatten().filter_map(|t| t.stat().ok().map(|s| s.state)).collect();
    if states.is_empty() {
        return None;
    }
    let text: Vec<String> = states.iter().map(char::to_string).collect();
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let wchan = Some(wchan.trim().to_string()).filter(|w| !w.is_empty() && w != "0");
    Some(EventKind::ThreadStates {
        pid,
        busy: states.iter().any(|s| matches!(s, 'R' | 'D')),
        states: text.join(" "),
        wchan,
    })
}

/// What one look at the tree's descriptors found.
#[derive(Default)]
pub(crate) struct FdScan {
    /// (pid, socket inode)
    pub(crate) sockets: Vec<(i32, u64)>,
    /// (pid, path) of open regular files
    pub(crate) files: Vec<(i32, PathBuf)>,
}

/// Reads the descriptors of every pid. Processes that vanished meanwhile are skipped.
pub(crate) fn scan_fds(pids: &[i32]) -> FdScan {
    let mut scan = FdScan::default();
    for &pid in pids {
        let Ok(fds) = Process::new(pid).and_then(|p| p.fd()) else { continue };
        for fd in fds.flatten() {
            match fd.target {
                FDTarget::Socket(inode) => scan.sockets.push((pid, inode)),
                FDTarget::Path(path) if path.is_absolute() => scan.files.push((pid, path)),
                _ => {}
            }
        }
    }
    scan
}

/// Remembers which bound sockets the tree held, to report new ones and closed ones.
#[derive(Default)]
pub(crate) struct SocketTable {
    held: HashMap<(i32, u64), (String, bool)>,
}

impl SocketTable {
    /// Compares a fresh scan with what was held before. `netns_pid` is whose `net/unix` to read.
    pub(crate) fn update(&mut self, netns_pid: i32, scan: &FdScan) -> Vec<EventKind> {
        if scan.sockets.is_empty() && self.held.is_empty() {
            return vec![];
        }
        let table = self.names(netns_pid, scan);
        let mut events = Vec::new();
        let mut now: HashSet<(i32, u64)> = HashSet::new();
        for &(pid, inode) in &scan.sockets {
            let Some(entry) = table.get(&inode) else { continue };
            now.insert((pid, inode));
            let before = self.held.insert((pid, inode), (entry.path.clone(), entry.listening));
            if before.as_ref().is_none_or(|(_, l)| *l != entry.listening) {
                events.push(EventKind::SocketBound {
                    pid,
                    inode,
                    path: entry.path.clone(),
                    listening: entry.listening,
                });
            }
        }
        let gone: Vec<(i32, u64)> = self.held.keys().filter(|k| !now.contains(k)).copied().collect();
        for (pid, inode) in gone {
            if let Some((path, _)) = self.held.remove(&(pid, inode)) {
                events.push(EventKind::SocketClosed { pid, inode, path });
            }
        }
        events
    }

    /// The bound sockets among the scan's, by inode. A listening socket keeps its name for good: only the others
    /// are asked about, through sock_diag (which knows no other kind of socket: those are left out); the worker's
    /// whole `net/unix` (every socket of its network namespace) is read only when sock_diag cannot see that
    /// namespace or is unavailable.
    fn names(&self, netns_pid: i32, scan: &FdScan) -> HashMap<u64, UnixEntry> {
        let mut table: HashMap<u64, UnixEntry> = HashMap::new();
        let mut ask: Vec<u64> = Vec::new();
        for (key, inode) in scan.sockets.iter().map(|k @ (_, inode)| (k, *inode)) {
            match self.held.get(key) {
                Some((path, true)) => {
                    table.insert(inode, UnixEntry { path: path.clone(), listening: true });
                }
                _ if !ask.contains(&inode) => ask.push(inode),
                _ => {}
            }
        }
        if ask.is_empty() {
            return table;
        }
        if !sock_diag::sees(netns_pid) {
            return read_net_unix(netns_pid);
        }
        match kernel_sockets::by_inode(&ask) {
            Ok(known) => {
                for s in known {
                    if let Some(path) = s.name {
                        table.insert(s.inode, UnixEntry { path, listening: s.listening });
                    }
                }
                table
            }
            _ => read_net_unix(netns_pid),
        }
    }

    /// The listening sockets held now: (pid, inode, path).
    pub(crate) fn listeners(&self) -> Vec<(i32, u64, String)> {
        self.held
            .iter()
            .filter(|(_, (_, l))| *l)
            .map(|((pid, inode), (path, _))| (*pid, *inode, path.clone()))
            .collect()
    }

    /// Forgets the sockets of a process that exited (its descriptors are closed with it).
    pub(crate) fn forget_pid(&mut self, pid: i32) -> Vec<EventKind> {
        let gone: Vec<(i32, u64)> = self.held.keys().filter(|(p, _)| *p == pid).copied().collect();
        gone.into_iter()
            .filter_map(|k| self.held.remove(&k).map(|(path, _)| EventKind::SocketClosed { pid, inode: k.1, path }))
            .collect()
    }
}

/// Bound Unix sockets by inode, from `/proc/<pid>/net/unix`. procfs's parser drops the Flags column, which is the
/// only place the kernel says "listening", so the file is read here.
fn read_net_unix(pid: i32) -> HashMap<u64, UnixEntry> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/unix"))
        .or_else(|_| std::fs::read_to_string("/proc/net/unix"))
        .unwrap_or_default();
    text.lines().skip(1).filter_map(parse_line).collect()
}

/// `Num RefCount Protocol Flags Type St Inode [Path]`
fn parse_line(line: &str) -> Option<(u64, UnixEntry)> {
    let mut cols = line.split_whitespace();
    let flags = u32::from_str_radix(cols.nth(3)?, 16).ok()?;
    let inode: u64 = cols.nth(2)?.parse().ok()?;
    let path: Vec<&str> = cols.collect();
    if path.is_empty() {
        return None;
    }
    Some((inode, UnixEntry { path: path.join(" "), listening: flags & SO_ACCEPTCON != 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_diag_names_sockets_as_net_unix_does() {
        use std::os::linux::net::SocketAddrExt;
        let dir = tempfile::tempdir().unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("l.sock")).unwrap();
        let name = format!("sockdiag-test-{}", std::process::id());
        let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _datagram = std::os::unix::net::UnixDatagram::bind_addr(&abstract_addr).unwrap();
        let _pair = std::os::unix::net::UnixStream::pair().unwrap();
        let me = std::process::id() as i32;
        let inodes: Vec<u64> = scan_fds(&[me]).sockets.iter().map(|(_, i)| *i).collect();
        let known = kernel_sockets::by_inode(&inodes).unwrap();
        let listed = read_net_unix(me);
        let by_diag = |want: &str| known.iter().find(|s| s.name.as_deref() == Some(want)).map(|s| s.listening);
        let by_proc = |want: &str| listed.values().find(|e| e.path == want).map(|e| e.listening);
        for path in [dir.path().join("l.sock").display().to_string(), format!("@{name}")] {
            assert!(by_diag(&path).is_some(), "sock_diag names {path}");
            assert_eq!(by_diag(&path), by_proc(&path), "{path}");
        }
        assert_eq!(by_diag(&dir.path().join("l.sock").display().to_string()), Some(true));
        assert!(known.iter().any(|s| s.name.is_none()), "the pair is unbound");
    }

    #[test]
    fn parses_listening_and_abstract_entries() {
        let (inode, e) = parse_line("0000000000000000: 00000002 00000000 00010000 0001 01 123456 /tmp/w.sock").unwrap();
        assert_eq!((inode, e.path.as_str(), e.listening), (123456, "/tmp/w.sock", true));
        let (_, e) = parse_line("0000000000000000: 00000002 00000000 00000000 0001 03 77 @abstract").unwrap();
        assert_eq!((e.path.as_str(), e.listening), ("@abstract", false));
        assert!(parse_line("0000000000000000: 00000003 00000000 00000000 0001 03 78").is_none());
    }
}
