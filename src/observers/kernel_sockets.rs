//! Kernel socket table, through sock_diag netlink: Unix sockets with their name and the inode and device of the
//! file they bound (UDIAG_SHOW_VFS), asked one by one by inode, or all at once (a dump) when the one to find is
//! not known. It tells whether the socket file at a path belongs to a live socket (and whose), and whether a
//! listener's file is still the one at its path.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use netlink_packet_sock_diag::unix::nlas::{Nla, UnixDiagName};
use netlink_packet_sock_diag::unix::{ShowFlags, StateFlags, UnixRequest};
use netlink_packet_sock_diag::{SockDiagMessage, TCP_LISTEN};
use procfs::process::FDTarget;
use sockdiag_probes::{EventKind, Holder};

use super::sock_diag;

/// A Unix socket as sock_diag reports it.
pub(crate) struct KernelSocket {
    pub(crate) inode: u64,
    pub(crate) listening: bool,
    /// (inode, device) of the file the socket is bound to, for sockets bound to a path.
    pub(crate) vfs: Option<(u64, u64)>,
    /// What it is bound to: a path, or `@name` for an abstract name (asked of single sockets only).
    pub(crate) name: Option<String>,
}

/// Dumps every Unix socket of the system (of this network namespace) with its bound file.
pub(crate) fn dump() -> std::io::Result<Vec<KernelSocket>> {
    let socket = sock_diag::connect()?;
    let mut found = Vec::new();
    sock_diag::ask(&socket, true, unix_request(0, ShowFlags::VFS), |m| found.extend(kernel_socket(m)))?;
    Ok(found)
}

/// Asks the kernel about each socket inode, one exact request each: what it costs does not grow with the number
/// of sockets on the system, as a dump or reading `net/unix` does. Inodes this network namespace does not know
/// are left out.
pub(crate) fn by_inode(inodes: &[u64]) -> std::io::Result<Vec<KernelSocket>> {
    let socket = sock_diag::connect()?;
    let mut found = Vec::new();
    for &inode in inodes {
        let Ok(ino) = u32::try_from(inode) else { continue };
        let request = unix_request(ino, ShowFlags::NAME | ShowFlags::VFS);
        let answer = sock_diag::ask(&socket, false, request, |m| found.extend(kernel_socket(m)));
        match answer {
            Ok(()) => {}
            // Gone meanwhile, or in another network namespace.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// A request about Unix sockets in every state (a bound socket that does not listen still owns its file): the
/// one `inode`, or all when it is 0 (a dump).
fn unix_request(inode: u32, show_flags: ShowFlags) -> SockDiagMessage {
    SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: StateFlags::from_bits_retain(u32::MAX),
        inode,
        show_flags,
        // INET_DIAG_NOCOOKIE: no cookie to check.
        cookie: [0xff; 8],
    })
}

fn kernel_socket(message: SockDiagMessage) -> Option<KernelSocket> {
    let SockDiagMessage::UnixResponse(r) = message else { return None };
    let mut socket = KernelSocket {
        inode: u64::from(r.header.inode),
        listening: r.header.state == TCP_LISTEN,
        vfs: None,
        name: None,
    };
    for nla in &r.nlas {
        match nla {
            Nla::Vfs(v) => socket.vfs = Some(vfs_of(v)),
            Nla::Name(UnixDiagName::Pathname(p)) => socket.name = Some(p.to_string_lossy().into_owned()),
            // As net/unix shows it: '@', and every NUL of the name as '@'.
            Nla::Name(UnixDiagName::Abstract(a)) => {
                socket.name = Some(format!("@{}", String::from_utf8_lossy(a).replace('\0', "@")))
            }
            _ => {}
        }
    }
    Some(socket)
}

/// The crate keeps the fields of its `Vfs` private, but emits them as the kernel's `struct unix_diag_vfs`
/// (inode, then device, native u32s). The device is the kernel's dev_t (major << 20 | minor): it is turned into
/// the encoding `stat` uses so the two compare.
fn vfs_of(v: &netlink_packet_sock_diag::unix::nlas::Vfs) -> (u64, u64) {
    use netlink_packet_core::Emitable;
    let mut raw = [0u8; 8];
    v.emit(&mut raw);
    let inode = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let kdev = u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]);
    (u64::from(inode), libc::makedev(kdev >> 20, kdev & 0xfffff))
}

/// The socket file at `path` and the live socket bound to it, if any (with the pids holding that socket). The
/// socket is looked for among `known` first (the run's own, asked by inode), and only then in a dump of every
/// socket; its holders among `likely` first (the run's processes), and only then in every process.
pub(crate) fn path_holder(path: &Path, known: &[KernelSocket], likely: &[i32]) -> std::io::Result<Option<EventKind>> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(None) };
    let file = (meta.ino(), meta.dev());
    let dumped;
    let table = if known.iter().any(|s| s.vfs == Some(file)) {
        known
    } else {
        dumped = dump()?;
        &dumped
    };
    let holder = table.iter().filter(|s| s.vfs == Some(file)).max_by_key(|s| s.listening).map(|s| Holder {
        socket_inode: s.inode,
        listening: s.listening,
        pids: holders(s.inode, likely),
    });
    Ok(Some(EventKind::PathHolder { path: path.display().to_string(), file_inode: meta.ino(), holder }))
}

/// For each listener (pid, socket inode, path) of the tree: the file it bound against the file at its path now.
pub(crate) fn listener_files(listeners: &[(i32, u64, String)], table: &[KernelSocket]) -> Vec<EventKind> {
    listeners
        .iter()
        .filter(|(_, _, path)| path.starts_with('/'))
        .filter_map(|(pid, inode, path)| {
            let (bound, dev) = table.iter().find(|s| s.inode == *inode)?.vfs?;
            let now = std::fs::symlink_metadata(path).ok().filter(|m| m.dev() == dev).map(|m| m.ino());
            Some(EventKind::ListenerFile {
                pid: *pid,
                inode: *inode,
                path: path.clone(),
                bound_file_inode: bound,
                file_inode_now: now,
            })
        })
        .collect()
}

/// The processes holding the socket `inode` open: among `likely` first, and only when none of them does, among
/// every process of the system.
fn holders(inode: u64, likely: &[i32]) -> Vec<i32> {
    let among_likely: Vec<i32> = likely
        .iter()
        .copied()
        .filter(|&pid| procfs::process::Process::new(pid).is_ok_and(|p| holds_socket(&p, inode)))
        .collect();
    if !among_likely.is_empty() {
        return among_likely;
    }
    let Ok(all) = procfs::process::all_processes() else { return vec![] };
    all.flatten().filter(|p| holds_socket(p, inode)).map(|p| p.pid()).collect()
}

/// True when `p` has a descriptor on the socket `inode`.
pub(crate) fn holds_socket(p: &procfs::process::Process, inode: u64) -> bool {
    p.fd().is_ok_and(|fds| fds.flatten().any(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inode_the_namespace_does_not_know_is_left_out() {
        let pair = std::os::unix::net::UnixStream::pair().unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pair.0)))
            .map(|m| m.ino())
            .unwrap();
        let known = by_inode(&[inode, u64::from(u32::MAX - 7)]).unwrap();
        assert_eq!(known.iter().map(|s| (s.inode, s.name.is_none())).collect::<Vec<_>>(), vec![(inode, true)]);
    }

    #[test]
    fn a_bound_listener_is_found_with_its_file_and_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let Ok(Some(EventKind::PathHolder { holder: Some(h), .. })) = path_holder(&path, &[], &[]) else {
            panic!("the listener owns its file")
        };
        assert!(h.listening && h.pids.contains(&(std::process::id() as i32)));
        drop(listener);
        // A process this test binary is forking at the same moment may hold a copy of the socket until its exec:
        // what must hold is that we no longer do. (Stale files proper are tested end to end, across processes.)
        let Ok(Some(EventKind::PathHolder { holder, .. })) = path_holder(&path, &[], &[]) else {
            panic!("the file is there")
        };
        assert!(holder.is_none_or(|h| !h.pids.contains(&(std::process::id() as i32))));
    }
}
