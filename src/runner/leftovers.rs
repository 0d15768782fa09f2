//! What an invocation leaves behind only if it is killed outright (SIGKILL): workers still running and sandboxes
//! still on disk. Both carry the pid of the sockdiag that made them — the run marker in the environment
//! (`SOCKDIAG_RUN=<pid>-…`) and the sandbox name (`sockdiag-<pid>-run…`) — so a later invocation can tell
//! they are orphans (that pid is gone) and remove them.

use std::path::PathBuf;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::escalation::{self, Escalation, Stoppable};
use super::owner;

/// Prefix of every sandbox directory in the temp dir.
pub(crate) const SANDBOX_PREFIX: &str = "sockdiag-";

/// Orphaned processes and sandboxes of sockdiag invocations that are no longer running.
#[derive(Default)]
pub(crate) struct Leftovers {
    pub(crate) pids: Vec<i32>,
    pub(crate) sandboxes: Vec<PathBuf>,
    /// Cgroups of killed invocations (their keeper was killed too): what is in them carries no marker it could
    /// not shed.
    pub(crate) cgroups: Vec<PathBuf>,
}

impl Leftovers {
    /// What killed invocations left; their lock files, which hold nothing, are removed on sight.
    pub(crate) fn find() -> Leftovers {
        stale_locks().iter().for_each(|token| owner::remove_stale_lock(token));
        Leftovers {
            pids: orphan_processes(),
            sandboxes: orphan_sandboxes(),
            cgroups: super::cgroup::orphans(dead_owner),
        }
    }

    fn is_empty(&self) -> bool {
        self.pids.is_empty() && self.sandboxes.is_empty() && self.cgroups.is_empty()
    }

    /// Kills the processes and removes the sandboxes (never following a symlink); returns what it did, in words,
    /// or nothing when it found nothing left to do (another invocation cleaned up first).
    pub(crate) fn remove(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut orphans = Orphans { first: Some(self.pids.clone()), killed: Vec::new() };
        escalation::stop(&mut orphans, Escalation::Kill);
        let mut killed = orphans.killed;
        killed.extend(self.cgroups.iter().flat_map(|dir| super::cgroup::kill_orphan(dir)));
        killed.sort_unstable();
        killed.dedup();
        let removed = self.sandboxes.iter().filter(|d| super::removal::remove_tree(d).is_ok()).count();
        (!killed.is_empty() || removed > 0).then(|| {
            format!(
                "killed {} leftover process(es) {killed:?}, removed {removed} leftover sandbox(es) of killed sockdiag \
                 runs",
                killed.len()
            )
        })
    }
}

/// The orphaned processes: those found first, then any that appeared since (an orphaned launcher may still be
/// starting a worker while we kill).
struct Orphans {
    first: Option<Vec<i32>>,
    killed: Vec<i32>,
}

impl Stoppable for Orphans {
    fn left(&mut self) -> Vec<i32> {
        self.first
            .take()
            .unwrap_or_else(|| orphan_processes().into_iter().filter(|p| !self.killed.contains(p)).collect())
    }

    fn signal(&mut self, pids: &[i32], signal: Signal) {
        for &pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
            // A launcher leads its own process group: a child it was forking when the scan ran goes with it.
            let _ = kill(Pid::from_raw(-pid), signal);
        }
        self.killed.extend(pids);
    }

    fn wait_gone(&mut self, pids: &[i32], grace: std::time::Duration) {
        escalation::wait_gone(pids, grace, None);
    }
}

/// True when the sockdiag whose token a marker, a sandbox or a cgroup name starts with is gone: its lock is
/// released (see `owner`), or, where it left no lock file, its pid is not a live process here.
fn dead_owner(tag: &str) -> bool {
    if let Some(held) = owner::token_of(tag).and_then(owner::lock_held) {
        return !held;
    }
    let Some(pid) = tag.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { return false };
    pid != std::process::id() as i32 && !owner::pid_alive(pid)
}

/// Lock files (`sockdiag-<token>.lock`) that nobody holds any more.
fn stale_locks() -> Vec<String> {
    let entries = owner::lock_dirs().into_iter().filter_map(|d| std::fs::read_dir(d).ok()).flatten().flatten();
    entries
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_prefix(SANDBOX_PREFIX)?.strip_suffix(".lock")?.to_string();
            (owner::lock_held(&name) == Some(false)).then_some(name)
        })
        .collect()
}

fn orphan_processes() -> Vec<i32> {
    super::marker::processes_everywhere(dead_owner)
}

fn orphan_sandboxes() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return vec![] };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_str().and_then(|n| n.strip_prefix(SANDBOX_PREFIX)).is_some_and(dead_owner))
        .map(|e| e.path())
        .collect()
}
