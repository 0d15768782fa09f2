//! What a look at the end of observation tells about a set of processes and the socket path they should serve.
//! A run calls these for its live workers when it stops; `inspect` calls them for the processes it found.

use std::path::Path;

use sockdiag_probes::{EventKind, FileType};

use super::{directory, fs, kernel_sockets, namespaces, sockets};

/// The processes and their descendants, each once, in the order found.
pub(crate) fn tree_of(pids: &[i32]) -> Vec<i32> {
    let mut tree: Vec<i32> = Vec::new();
    for &pid in pids {
        for p in sockets::tree(pid) {
            if !tree.contains(&p) {
                tree.push(p);
            }
        }
    }
    tree
}

/// For each process: its mount namespace if it is not ours, and the socket's directory if it changed after the
/// process started. Then the kernel's socket table: which file each listening socket is bound to, and who holds
/// the socket at `path`.
pub(crate) fn evidence(path: &Path, pids: &[i32], listeners: &[(i32, u64, String)]) -> Vec<EventKind> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut events = Vec::new();
    for &pid in pids {
        events.extend(namespaces::compare(pid, &path.display().to_string()));
        events.extend(directory::newer_than_process(dir, pid));
    }
    let unavailable = |e: std::io::Error| EventKind::Note { text: format!("sock_diag unavailable: {e}") };
    let inodes: Vec<u64> = listeners.iter().map(|(_, inode, _)| *inode).collect();
    let known = match kernel_sockets::by_inode(&inodes) {
        Ok(known) => known,
        Err(e) => {
            events.push(unavailable(e));
            return events;
        }
    };
    events.extend(kernel_sockets::listener_files(listeners, &known));
    if fs::file_type(path) == FileType::Socket {
        match kernel_sockets::path_holder(path, &known, pids) {
            Ok(held) => events.extend(held),
            Err(e) => events.push(unavailable(e)),
        }
    }
    events
}

/// The endpoint (`target`), what is at its socket path now (none for a TCP endpoint), and which processes are
/// still there.
pub(crate) fn end_state(target: String, socket_path: Option<&Path>, live_pids: Vec<i32>) -> EventKind {
    let file_type = socket_path.map(fs::file_type).filter(|t| *t != FileType::Gone);
    EventKind::EndState { path: target, file_type, live_pids }
}
