//! The end of a run: the end state and what only the end can tell, then the stop (the profile's message,
//! SIGTERM, SIGKILL) until nothing of the run is left.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sockdiag_probes::{ConnectResult, EventKind};

use super::state::Input;
use super::Run;
use crate::observers::{connect, database, end_state, sockets};
use crate::runner::escalation::{self, Escalation, Members, Stoppable, GRACE};
use crate::runner::marker;

impl Run<'_> {
    /// Stops the worker politely, then makes sure nothing carrying this run's marker is left: a process forked
    /// while the others were being stopped is found by a fresh look, killed, and waited for (on pidfds).
    pub(super) fn stop_everything(&mut self) {
        self.stop_politely();
        let marked = || marker::processes_of_run(&self.spec.marker);
        escalation::stop(&mut Members { marked: &marked, cgroup: self.cgroup.as_ref(), hurry: None }, Escalation::Kill);
    }

    /// Records the end state, then asks the worker to stop: the profile's message, then SIGTERM, then SIGKILL.
    fn stop_politely(&mut self) {
        let reachable = self.record_end_state();
        // Never ask another process to stop: the stop message goes only to an address no one else holds.
        let timeline = self.state.timeline();
        let own: Vec<u64> = timeline
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::TcpListening { inode, .. } => Some(inode),
                _ => None,
            })
            .collect();
        let held =
            timeline.iter().any(|e| matches!(e.kind, EventKind::AddressHeld { inode, .. } if !own.contains(&inode)));
        if let (true, false, Some(send)) = (reachable, held, self.spec.send.clone()) {
            if self.left().is_empty() {
                return;
            }
            // Stamped before sending: the worker may react before the send returns.
            let before = Instant::now();
            let how = connect::send(&self.spec.expected.endpoint, send.as_bytes());
            self.apply(Input::Observed { at: before, kind: EventKind::HarnessStop { how } });
            self.wait_for_exits(GRACE);
        }
        escalation::stop(self, Escalation::Polite);
    }

    /// The end state: a last look and connect, the pid file, the session rows, what only the end can tell, and
    /// where the live workers stand. Returns whether the endpoint was reachable.
    fn record_end_state(&mut self) -> bool {
        // Every process of the run, found however it got away (a daemon's server whose parent is gone), before
        // the end state says who is alive.
        self.find_stragglers();
        self.look();
        self.apply(Input::WatchEnded);
        let reachable = self.try_connect() == ConnectResult::Connected;
        self.check_pid_file(true);
        self.look_up_sessions();
        self.record_end_evidence();
        let live_pids = self.state.live_workers();
        // Where a worker that is still there stands: waiting in the kernel on what (a full pipe, a lock...).
        let states: Vec<EventKind> = live_pids.iter().filter_map(|p| sockets::thread_states(*p)).collect();
        self.record_all(states);
        let target = self.spec.expected.endpoint.target();
        self.record(end_state::end_state(target, self.spec.socket_path.as_deref(), live_pids));
        reachable
    }

    /// The session row in every database the tree was seen holding open.
    fn look_up_sessions(&mut self) {
        let Some(query) = self.spec.session_query.clone() else { return };
        for path in std::mem::take(&mut self.databases_opened) {
            let lookup = database::lookup(&path, &query, self.spec.session);
            self.record(lookup);
        }
    }

    /// What only the end of observation can tell: the directory again (the worker may have made it), the live
    /// processes' namespaces, and the kernel's socket table about the expected path and the tree's listeners.
    fn record_end_evidence(&mut self) {
        let Some(path) = self.spec.socket_path.clone() else { return };
        self.check_directory();
        let events = end_state::evidence(&path, &self.state.live_pids(), &self.sockets.listeners());
        self.record_all(events);
    }
}

/// The run's tree as the run knows it: every exit it sees is recorded.
impl Stoppable for Run<'_> {
    fn left(&mut self) -> Vec<i32> {
        self.find_stragglers();
        self.check_vanished();
        self.state.live_pids()
    }

    fn signal(&mut self, pids: &[i32], signal: Signal) {
        self.record(EventKind::HarnessStop { how: format!("{signal} to pids {pids:?}") });
        for &pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    fn wait_gone(&mut self, _: &[i32], grace: Duration) {
        self.wait_for_exits(grace);
    }
}
