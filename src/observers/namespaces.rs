//! Namespace observer: whether a process shares the harness's mount and network namespaces, and what the
//! expected path is inside its own mount namespace (`/proc/<pid>/root/<path>`) against outside.

use std::path::Path;

use sockdiag_probes::EventKind;

use super::fs::file_type;

/// Compares `pid`'s namespaces with ours and looks at `path` through its root. None if the process is gone.
pub(crate) fn compare(pid: i32, path: &str) -> Option<EventKind> {
    let same = |ns: &str| -> Option<bool> {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()?;
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).ok()?;
        Some(theirs == ours)
    };
    let (same_mnt, same_net) = (same("mnt")?, same("net")?);
    let inside = file_type(&Path::new(&format!("/proc/{pid}/root")).join(path.trim_start_matches('/')));
    Some(EventKind::Namespaces {
        pid,
        same_mnt,
        same_net,
        path: path.to_string(),
        inside,
        outside: file_type(Path::new(path)),
    })
}
