//! The run marker: every process of a run inherits `SOCKDIAG_RUN=<sockdiag pid>-<start time>-<run id>` in its
//! environment, so the run's processes can be told apart from everything else in `/proc`, even those no tree
//! walk reaches any more.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The environment variable that carries the marker.
pub(crate) const RUN_MARKER: &str = "SOCKDIAG_RUN";

/// The marker in a live process's environment. A zombie's (or a vanished process's) environment reads empty.
pub(crate) fn marker_of(pid: i32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{RUN_MARKER}=");
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .map(|m| String::from_utf8_lossy(m).into_owned())
}

/// The live processes of one run. They are all sockdiag's descendants (it is the child subreaper: an orphan
/// comes back to it, or to a subreaper below it), so only those are read, not the whole system.
pub(crate) fn processes_of_run(marker: &str) -> Vec<i32> {
    descendants().into_iter().filter(|&pid| marker_of(pid).as_deref() == Some(marker)).collect()
}

/// Every live process on the system whose marker passes `keep` (for what is no longer our descendant: the
/// leftovers of a killed invocation), or a last sweep of our own.
pub(crate) fn processes_everywhere(keep: impl Fn(&str) -> bool) -> Vec<i32> {
    all_pids().into_iter().filter(|&pid| marker_of(pid).is_some_and(|m| keep(&m))).collect()
}

/// sockdiag's descendants, from `/proc/<pid>/task/<tid>/children`; every process when the kernel does not
/// list children (CONFIG_PROC_CHILDREN off).
fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    if !Path::new(&format!("/proc/{me}/task/{me}/children")).exists() {
        return all_pids();
    }
    let mut tree = crate::observers::sockets::tree(me);
    tree.retain(|&p| p != me);
    tree
}

fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries.flatten().filter_map(|e| std::str::from_utf8(e.file_name().as_bytes()).ok()?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_found_by_its_marker_and_a_stranger_is_not() {
        let marker = format!("{}-test-{}", std::process::id(), line!());
        let mut child = std::process::Command::new("sleep").arg("30").env(RUN_MARKER, &marker).spawn().unwrap();
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        // spawn returns once the exec is under way, maybe before the kernel has laid out the new environment:
        // wait for it, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while marker_of(pid).is_none() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(processes_of_run(&marker), vec![pid]);
        assert_eq!(processes_everywhere(|m| m == marker), vec![pid]);
        assert_eq!(marker_of(other.id() as i32), None);
        for c in [&mut child, &mut other] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        assert!(processes_of_run(&marker).is_empty(), "a reaped child is gone");
    }
}
