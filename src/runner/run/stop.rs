//! The end of a run: the end state and what only the end can tell, then the stop (the profile's message,
//! SIGTERM, SIGKILL) until nothing of the run is left.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sockdiag_probes::{ConnectResult, EventKind, FileType};

use super::state::Input;
use super::Run;
use crate::observers::{connect, database, directory, fs, kernel_sockets, namespaces, sockets};
use crate::runner::{interrupt, marker};

/// How long a worker gets to stop after the profile's message, then after SIGTERM.
const STOP_GRACE: Duration = Duration::from_millis(1000);
const TERM_GRACE: Duration = Duration::from_millis(500);

impl Run<'_> {
    /// Stops the worker politely, then makes sure nothing carrying this run's marker is left: a process forked
    /// while the others were being stopped is found by a fresh look, killed, and waited for (on pidfds).
    pub(super) fn stop_everything(&mut self) {
        self.stop_politely();
        for _ in 0..3 {
            let left = marker::processes_of_run(&self.spec.marker);
            if left.is_empty() {
                return;
            }
            for &pid in &left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            interrupt::wait_gone(&left, TERM_GRACE);
        }
    }

    /// Records the end state, then asks the worker to stop: the profile's message, then SIGTERM, then SIGKILL.
    fn stop_politely(&mut self) {
        let reachable = self.record_end_state();
        if self.state.live_pids().is_empty() {
            self.find_stragglers();
            if self.state.live_pids().is_empty() {
                return;
            }
        }
        // Never ask another process to stop: the stop message goes only to an address no one else holds.
        let held = self.state.timeline().iter().any(|e| matches!(e.kind, EventKind::AddressHeld { .. }));
        if let (true, false, Some(send)) = (reachable, held, self.spec.send.clone()) {
            // Stamped before sending: the worker may react before the send returns.
            let before = Instant::now();
            let how = connect::send(&self.spec.expected.endpoint, send.as_bytes());
            self.apply(Input::Observed { at: before, kind: EventKind::HarnessStop { how } });
            if self.wait_for_exits(STOP_GRACE) {
                return;
            }
        }
        self.signal_all(Signal::SIGTERM);
        if !self.wait_for_exits(TERM_GRACE) {
            self.signal_all(Signal::SIGKILL);
            self.wait_for_exits(TERM_GRACE);
        }
    }

    /// The end state: a last look and connect, the pid file, the session rows, what only the end can tell, and
    /// where the live workers stand. Returns whether the endpoint was reachable.
    fn record_end_state(&mut self) -> bool {
        self.look();
        self.apply(Input::WatchEnded);
        let reachable = self.try_connect() == ConnectResult::Connected;
        self.check_pid_file(true);
        self.look_up_sessions();
        self.record_end_evidence();
        let expected_path = self.spec.expected_path();
        let file_type =
            Some(fs::file_type(Path::new(expected_path))).filter(|t| *t != FileType::Gone && !expected_path.is_empty());
        let live_pids = self.state.live_workers();
        // Where a worker that is still there stands: waiting in the kernel on what (a full pipe, a lock...).
        let states: Vec<EventKind> = live_pids.iter().filter_map(|p| sockets::thread_states(*p)).collect();
        self.record_all(states);
        self.record(EventKind::EndState { path: self.spec.expected.endpoint.target(), file_type, live_pids });
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
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        for pid in self.state.live_pids() {
            if let Some(ns) = namespaces::compare(pid, self.spec.expected_path()) {
                self.record(ns);
            }
            if let Some(newer) = directory::newer_than_process(&dir, pid) {
                self.record(newer);
            }
        }
        let unavailable = |e: std::io::Error| EventKind::Note { text: format!("sock_diag unavailable: {e}") };
        let listeners = self.sockets.listeners();
        let inodes: Vec<u64> = listeners.iter().map(|(_, inode, _)| *inode).collect();
        let known = match kernel_sockets::by_inode(&inodes) {
            Ok(known) => known,
            Err(e) => return self.record(unavailable(e)),
        };
        let files = kernel_sockets::listener_files(&listeners, &known);
        self.record_all(files);
        if fs::file_type(&path) == FileType::Socket {
            match kernel_sockets::path_holder(&path, &known, &self.state.live_pids()) {
                Ok(held) => self.record_all(held.into_iter().collect()),
                Err(e) => self.record(unavailable(e)),
            }
        }
    }

    fn signal_all(&mut self, signal: Signal) {
        self.find_stragglers();
        let live = self.state.live_pids();
        if live.is_empty() {
            return;
        }
        self.record(EventKind::HarnessStop { how: format!("{signal} to pids {live:?}") });
        for pid in live {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}
