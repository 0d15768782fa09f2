//! Supervision: sockdiag is the child subreaper, so every process of a worker's tree — even one whose parent
//! is gone — comes back to it. One thread reaps them all and hands each exit to the run it belongs to.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use sockdiag_probes::{EventKind, ExitStatus};

use crate::observers::{Msg, Sink};

#[derive(Default)]
struct Registry {
    /// pid → the run it belongs to
    by_pid: HashMap<i32, Sink>,
    /// session or group id → the run, for descendants nobody registered (orphans that came back to us)
    by_group: HashMap<i32, Sink>,
    /// Exits nobody had claimed yet: a worker can end before its launcher's report of its pid is read.
    unclaimed: HashMap<i32, (Instant, ExitStatus)>,
    children: usize,
    /// Bumped at every spawn, so a reaper that found no child can tell whether one appeared since it looked.
    spawns: u64,
}

/// Unclaimed exits kept at most (they are forgotten oldest first beyond that).
const UNCLAIMED_MAX: usize = 256;

/// The reaper of one invocation: who each pid and session belongs to, and the thread that reaps them.
pub(crate) struct Reaper {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Mutex<Registry>,
    wake: Condvar,
}

impl Reaper {
    /// Makes sockdiag the child subreaper and starts reaping. Once started, every child of this process is
    /// reaped here: nothing else may wait for one.
    pub(crate) fn start() -> Reaper {
        // Orphans of the worker's tree are re-parented to us instead of init, so we get their exit status.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let shared = Arc::new(Shared { registry: Mutex::new(Registry::default()), wake: Condvar::new() });
        let reaping = shared.clone();
        std::thread::spawn(move || reap_forever(&reaping));
        Reaper { shared }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared.registry.lock().expect("registry lock")
    }

    /// Spawns `cmd` and registers its pid (and its session, when it leads one) with the run's sink.
    /// Spawning holds the registry lock so the reaper cannot take a child that `Command::spawn` is still waiting
    /// on.
    pub(crate) fn spawn(&self, cmd: &mut Command, sink: &Sink, leads_session: bool) -> std::io::Result<Child> {
        let mut reg = self.registry();
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        reg.by_pid.insert(pid, sink.clone());
        if leads_session {
            reg.by_group.insert(pid, sink.clone());
        }
        reg.children += 1;
        reg.spawns += 1;
        self.shared.wake.notify_all();
        Ok(child)
    }

    /// Stops any further spawn for the rest of the process's life (on interrupt): spawning needs this lock.
    pub(crate) fn freeze_spawning(&self) {
        std::mem::forget(self.registry());
    }

    /// Adds a process to a run (a worker its launcher reported, a descendant found in `/proc`). If it has
    /// already exited unclaimed, its exit is delivered now, with the time it was reaped.
    pub(crate) fn adopt(&self, pid: i32, sink: &Sink) {
        let mut reg = self.registry();
        if let Some((at, status)) = reg.unclaimed.remove(&pid).filter(|(at, _)| sink.clock.covers(*at)) {
            drop(reg);
            sink.send(Msg::Event(sink.clock.stamp_at(at, EventKind::Exited { pid, status })));
            return;
        }
        reg.by_pid.entry(pid).or_insert_with(|| sink.clone());
    }

    /// Adds a session (a detached worker's) to a run: its orphaned descendants come back to the run.
    pub(crate) fn adopt_group(&self, sid: i32, sink: &Sink) {
        self.registry().by_group.entry(sid).or_insert_with(|| sink.clone());
    }

    /// Forgets a run's sessions and processes (after they are gone, or were reaped by their launcher).
    pub(crate) fn forget(&self, sids: &[i32], pids: &[i32]) {
        let mut reg = self.registry();
        for sid in sids {
            reg.by_group.remove(sid);
        }
        for pid in pids {
            reg.by_pid.remove(pid);
        }
    }
}

fn reap_forever(r: &Shared) {
    loop {
        let spawns_before = r.registry.lock().expect("registry lock").spawns;
        // Wait without reaping, so the zombie's /proc/<pid>/stat (its session and group) can still be read.
        match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let at = Instant::now();
                let groups = groups_of(pid.as_raw());
                let mut reg = r.registry.lock().expect("registry lock");
                let reaped = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                let sink = reg
                    .by_pid
                    .remove(&pid.as_raw())
                    .or_else(|| groups.iter().find_map(|g| reg.by_group.get(g).cloned()));
                reg.children = reg.children.saturating_sub(1);
                let status = reaped.ok().and_then(exit_status);
                match (sink, status) {
                    (Some(sink), Some(status)) => {
                        drop(reg);
                        let event = sink.clock.stamp_at(at, EventKind::Exited { pid: pid.as_raw(), status });
                        sink.send(Msg::Event(event));
                    }
                    (None, Some(status)) => {
                        if reg.unclaimed.len() >= UNCLAIMED_MAX {
                            let oldest = reg.unclaimed.iter().min_by_key(|(_, (t, _))| *t).map(|(p, _)| *p);
                            if let Some(p) = oldest {
                                reg.unclaimed.remove(&p);
                            }
                        }
                        reg.unclaimed.insert(pid.as_raw(), (at, status));
                    }
                    _ => {}
                }
            }
            Err(nix::errno::Errno::ECHILD) => {
                let reg = r.registry.lock().expect("registry lock");
                // A spawn between waitid and here already notified: waiting would delay its exit by the timeout.
                if reg.spawns == spawns_before {
                    let _unused = r.wake.wait_timeout(reg, std::time::Duration::from_millis(200));
                }
            }
            Err(_) => {}
        }
    }
}

/// The session and process group of a (zombie) process.
fn groups_of(pid: i32) -> Vec<i32> {
    procfs::process::Process::new(pid).and_then(|p| p.stat()).map(|s| vec![s.session, s.pgrp]).unwrap_or_default()
}

fn exit_status(ws: WaitStatus) -> Option<ExitStatus> {
    match ws {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Code(code)),
        WaitStatus::Signaled(_, sig, _) => Some(ExitStatus::Signal(sig as i32)),
        _ => None,
    }
}
