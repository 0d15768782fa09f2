//! The end of a run: the end state and what only the end can tell, then the stop (the profile's message,
//! SIGTERM, SIGKILL) until nothing of the run is left.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sockdiag_probes::{ConnectResult, EventKind};

use super::{Observation, DRAIN};
use crate::observers::{connect, database, directory, fs, kernel_sockets, namespaces, sockets};
use crate::runner::{interrupt, marker};

/// How long a worker gets to stop after the profile's message, then after SIGTERM.
const STOP_GRACE: Duration = Duration::from_millis(1000);
const TERM_GRACE: Duration = Duration::from_millis(500);

impl Observation<'_> {
    /// Stops the worker politely, then makes sure nothing carrying this run's marker is left: a process forked
    /// while the others were being stopped is found by a fresh look, killed, and waited for (on pidfds).
    pub(super) fn stop_everything(&mut self) {
        self.stop_politely();
        for _ in 0..3 {
            let left = marker::processes_of_run(&self.marker);
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
        self.look();
        self.events.extend(self.refused_again.take());
        self.last_connect = None;
        let reachable = self.try_connect() == ConnectResult::Connected;
        self.check_pid_file(true);
        self.look_up_sessions();
        self.record_end_evidence();
        let live = self.live_pids();
        let file_type = Some(fs::file_type(Path::new(&self.expected_path)))
            .filter(|t| *t != sockdiag_probes::FileType::Gone && !self.expected_path.is_empty());
        let live_pids = self.live_workers();
        // Where a worker that is still there stands: waiting in the kernel on what (a full pipe, a lock...).
        let states: Vec<EventKind> = live_pids.iter().filter_map(|p| sockets::thread_states(*p)).collect();
        self.record_all(states);
        self.record(EventKind::EndState { path: self.endpoint.target(), file_type, live_pids });
        if live.is_empty() {
            self.find_stragglers();
            if self.live_pids().is_empty() {
                return;
            }
        }
        // Never ask another process to stop: the stop message goes only to an address no one else holds.
        let held = self.events.iter().any(|e| matches!(e.kind, EventKind::AddressHeld { .. }));
        if let (true, false, Some(send)) = (reachable, held, &self.plan.profile.observe.send) {
            // Stamped before sending: the worker may react before the send returns.
            let before = Instant::now();
            let how = connect::send(&self.endpoint, send.as_bytes());
            self.events.push(self.sink.clock.stamp_at(before, EventKind::HarnessStop { how }));
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

    /// The session row in every database the tree was seen holding open.
    fn look_up_sessions(&mut self) {
        let Some(section) = &self.plan.profile.database else { return };
        for path in std::mem::take(&mut self.databases_opened) {
            let lookup = database::lookup(&path, &section.session_query, self.plan.session);
            self.record(lookup);
        }
    }

    /// What only the end of observation can tell: the directory again (the worker may have made it), the live
    /// processes' namespaces, and the kernel's socket table about the expected path and the tree's listeners.
    fn record_end_evidence(&mut self) {
        if self.expected_path.is_empty() {
            return;
        }
        self.check_directory();
        let dir = Path::new(&self.expected_path).parent().unwrap_or(Path::new("/")).to_path_buf();
        for pid in self.live_pids() {
            if let Some(ns) = namespaces::compare(pid, &self.expected_path) {
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
        if fs::file_type(Path::new(&self.expected_path)) == sockdiag_probes::FileType::Socket {
            match kernel_sockets::path_holder(Path::new(&self.expected_path), &known, &self.live_pids()) {
                Ok(held) => self.record_all(held.into_iter().collect()),
                Err(e) => self.record(unavailable(e)),
            }
        }
    }

    fn signal_all(&mut self, signal: Signal) {
        self.find_stragglers();
        let live = self.live_pids();
        if live.is_empty() {
            return;
        }
        self.record(EventKind::HarnessStop { how: format!("{signal} to pids {live:?}") });
        for pid in live {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// Once the processes are gone, the pipe readers still flush what they held back (a flood's tail, the count
    /// of dropped bytes): wait for them to close, with a deadline (a descendant may still hold a pipe).
    pub(super) fn drain_output(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while self.open_streams > 0 {
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => {
                    self.handle(msg);
                }
                Err(_) => return,
            }
        }
    }

    /// Records messages until every process of the run has exited or the grace period ends.
    fn wait_for_exits(&mut self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        while !self.live_pids().is_empty() {
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => {
                    self.handle(msg);
                }
                Err(_) => return false,
            }
        }
        true
    }
}
