//! Kernel socket table: every Unix socket on the system with the inode and device of the file it bound, through
//! sock_diag netlink (UDIAG_SHOW_VFS). It tells whether the socket file at a path belongs to a live socket (and
//! whose), and whether a listener's file is still the one at its path.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::unix::{nlas::Nla, ShowFlags, StateFlags, UnixRequest};
use netlink_packet_sock_diag::{SockDiagMessage, TCP_LISTEN};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use procfs::process::FDTarget;
use sockdiag_probes::{EventKind, Holder};

/// A Unix socket as sock_diag reports it.
pub(crate) struct KernelSocket {
    pub(crate) inode: u64,
    pub(crate) listening: bool,
    /// (inode, device) of the file the socket is bound to, for sockets bound to a path.
    pub(crate) vfs: Option<(u64, u64)>,
}

/// Dumps every Unix socket of the system (of this network namespace) with its bound file.
pub(crate) fn dump() -> std::io::Result<Vec<KernelSocket>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let request = UnixRequest {
        // Every state: a bound socket that does not listen still owns its file.
        state_flags: StateFlags::from_bits_retain(u32::MAX),
        inode: 0,
        show_flags: ShowFlags::VFS,
        cookie: [0; 8],
    };
    let mut packet = NetlinkMessage::new(header, SockDiagMessage::UnixRequest(request).into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;
    // The kernel answers a dump at once, in as many datagrams as it needs, ending with Done.
    let mut found = Vec::new();
    let mut recv = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut recv[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&recv[offset..size])
                .map_err(|e| std::io::Error::other(format!("sock_diag: {e}")))?;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::UnixResponse(r)) => found.push(KernelSocket {
                    inode: u64::from(r.header.inode),
                    listening: r.header.state == TCP_LISTEN,
                    vfs: r.nlas.iter().find_map(|n| match n {
                        Nla::Vfs(v) => Some(vfs_of(v)),
                        _ => None,
                    }),
                }),
                NetlinkPayload::Done(_) => return Ok(found),
                NetlinkPayload::Error(e) => return Err(std::io::Error::other(format!("sock_diag: {e:?}"))),
                _ => {}
            }
            if msg.header.length == 0 {
                break;
            }
            offset += msg.header.length as usize;
        }
    }
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
/// holders are looked for among `likely` first (the run's processes); only when none of them holds it, in every
/// process of the system.
pub(crate) fn path_holder(path: &Path, table: &[KernelSocket], likely: &[i32]) -> Option<EventKind> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let file = (meta.ino(), meta.dev());
    let holder = table.iter().filter(|s| s.vfs == Some(file)).max_by_key(|s| s.listening).map(|s| {
        let among_likely = holders_among(likely, s.inode);
        let pids = if among_likely.is_empty() {
            holders_of(&[s.inode]).remove(&s.inode).unwrap_or_default()
        } else {
            among_likely
        };
        Holder { socket_inode: s.inode, listening: s.listening, pids }
    });
    Some(EventKind::PathHolder { path: path.display().to_string(), file_inode: meta.ino(), holder })
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

/// Which of `pids` hold the socket `inode` open.
fn holders_among(pids: &[i32], inode: u64) -> Vec<i32> {
    let holds = |pid: i32| {
        procfs::process::Process::new(pid)
            .and_then(|p| p.fd())
            .is_ok_and(|fds| fds.flatten().any(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode)))
    };
    pids.iter().copied().filter(|&pid| holds(pid)).collect()
}

/// Which processes hold each socket inode open, from every `/proc/<pid>/fd`.
pub(crate) fn holders_of(inodes: &[u64]) -> HashMap<u64, Vec<i32>> {
    let mut out: HashMap<u64, Vec<i32>> = HashMap::new();
    let Ok(all) = procfs::process::all_processes() else { return out };
    for p in all.flatten() {
        let Ok(fds) = p.fd() else { continue };
        for fd in fds.flatten() {
            if let FDTarget::Socket(inode) = fd.target {
                if inodes.contains(&inode) {
                    let pids = out.entry(inode).or_default();
                    if !pids.contains(&p.pid()) {
                        pids.push(p.pid());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_listener_is_found_with_its_file_and_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let table = dump().unwrap();
        let Some(EventKind::PathHolder { holder: Some(h), .. }) = path_holder(&path, &table, &[]) else {
            panic!("the listener owns its file")
        };
        assert!(h.listening && h.pids.contains(&(std::process::id() as i32)));
        drop(listener);
        // A process this test binary is forking at the same moment may hold a copy of the socket until its exec:
        // what must hold is that we no longer do. (Stale files proper are tested end to end, across processes.)
        let table = dump().unwrap();
        let Some(EventKind::PathHolder { holder, .. }) = path_holder(&path, &table, &[]) else {
            panic!("the file is there")
        };
        assert!(holder.is_none_or(|h| !h.pids.contains(&(std::process::id() as i32))));
    }
}
