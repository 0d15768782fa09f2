//! One look at the worker: its tree, its sockets, the databases it holds, its pid file, and a connect to the
//! endpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sockdiag_probes::{ConnectResult, Endpoint, EventKind};

use super::Observation;
use crate::observers::{connect, database, directory, fs, pid_file, sockets};
use crate::runner::marker;
use crate::runner::tcp_watch::{Found, TcpWatch};

impl Observation<'_> {
    /// One look at the worker: its tree, its sockets, the databases it holds, and the expected path.
    pub(super) fn look(&mut self) {
        let live = self.live_pids();
        let mut tree: Vec<i32> = Vec::new();
        for pid in live {
            for p in sockets::tree(pid) {
                if !tree.contains(&p) {
                    tree.push(p);
                }
            }
        }
        for &pid in &tree {
            if !self.pids.contains(&pid) && Some(pid) != self.launcher && !self.before_exec(pid) {
                self.adopt(pid);
            }
        }
        // The spawned worker's view is worth another try (its runtime, its environment); a thousand children's
        // are not.
        if let Some(&root) = self.pids.first().filter(|p| tree.contains(p)) {
            self.view(root);
        }
        let scan = sockets::scan_fds(&tree);
        if let Some(&netns) = tree.first() {
            let changes = self.sockets.update(netns, &scan);
            if !changes.is_empty() {
                self.last_change = Instant::now();
            }
            if changes.iter().any(|c| matches!(c, EventKind::SocketBound { listening: true, .. })) {
                self.serving_since.get_or_insert_with(Instant::now);
            }
            self.record_all(changes);
        }
        let (pids, run_marker) = (&self.pids, self.marker.as_str());
        let ours = |pid: i32| pids.contains(&pid) || marker::marker_of(pid).as_deref() == Some(run_marker);
        let netns = tree.first().copied().unwrap_or(std::process::id() as i32);
        if let Some(found) = self.tcp.as_mut().map(|t| t.look(netns, &scan, &ours)) {
            self.take(found);
        }
        self.check_databases(&scan.files);
        let lines = self.logs.poll();
        self.record_stamped(lines);
        self.check_pid_file(false);
        match self.endpoint {
            Endpoint::Unix { .. } => {
                if self.connected_at.is_none()
                    && fs::file_type(Path::new(&self.expected_path)) != sockdiag_probes::FileType::Gone
                {
                    self.try_connect();
                }
            }
            Endpoint::Tcp { .. } => {
                if self.connected_at.is_none() {
                    self.try_connect();
                }
                if self.connected_at.is_some() {
                    if let Some(found) = self.tcp.as_mut().map(TcpWatch::ask_health) {
                        self.take(found);
                    }
                }
            }
        }
    }

    /// Records what the TCP watch found, and what it means for when the run settles.
    pub(super) fn take(&mut self, found: Found) {
        if found.changed {
            self.last_change = Instant::now();
        }
        if found.serving {
            self.serving_since.get_or_insert_with(Instant::now);
        }
        self.record_all(found.events);
    }

    /// True when `pid` is a process of this run (adopted, or carrying the run's marker).
    fn is_ours(&self, pid: i32) -> bool {
        self.pids.contains(&pid) || marker::marker_of(pid).as_deref() == Some(self.marker.as_str())
    }

    /// Reads the pid file; records it when what it says changed, or always when `force` (the end state).
    pub(super) fn check_pid_file(&mut self, force: bool) {
        let Some(path) = self.pid_file.clone() else { return };
        let event = pid_file::check(&path, &|pid| self.is_ours(pid));
        let EventKind::PidFile { pid, state, .. } = &event else { unreachable!("check returns PidFile") };
        let key = (*pid, *state);
        if force || self.last_pid_file != Some(key) {
            self.last_pid_file = Some(key);
            self.record(event);
        }
    }

    /// True for a launcher's child that has not exec'd the worker yet (it still runs sockdiag).
    fn before_exec(&self, pid: i32) -> bool {
        let exe = procfs::process::Process::new(pid).and_then(|p| p.exe()).ok();
        exe.is_some() && exe == self.own_exe
    }

    /// Records the SQLite files the tree holds open, once each. Their session rows are looked up at the end
    /// (`look_up_sessions`): a query now would compete with the worker's own start-up.
    fn check_databases(&mut self, files: &[(i32, PathBuf)]) {
        if self.plan.profile.database.is_none() {
            return;
        }
        for (pid, path) in files {
            if self.files_checked.contains(path) || !database::is_sqlite(path) {
                continue;
            }
            self.files_checked.insert(path.clone());
            self.databases_opened.push(path.clone());
            self.record(EventKind::DatabaseOpened { pid: *pid, path: path.display().to_string() });
        }
    }

    /// Connects to the expected path; records the attempt when its result differs from the last one.
    pub(super) fn try_connect(&mut self) -> ConnectResult {
        let kind = connect::attempt(&self.endpoint);
        let EventKind::Connect { result, .. } = kind else { unreachable!("attempt returns a Connect") };
        if result == ConnectResult::Connected && self.connected_at.is_none() {
            self.connected_at = Some(Instant::now());
            // With a health check, serving means answering it ready, not just accepting.
            if self.tcp.as_ref().is_none_or(TcpWatch::serves_on_connect) {
                self.serving_since.get_or_insert_with(Instant::now);
            }
        }
        if self.last_connect != Some(result) {
            self.events.extend(self.refused_again.take());
            self.last_connect = Some(result);
            self.record(kind);
        } else if result == ConnectResult::Refused {
            self.refused_again = Some(self.sink.clock.stamp(kind));
        }
        result
    }

    /// The socket's directory as the worker's user meets it, with a test bind there.
    pub(super) fn check_directory(&mut self) {
        if self.expected_path.is_empty() {
            return;
        }
        let dir = Path::new(&self.expected_path).parent().unwrap_or(Path::new("/")).to_path_buf();
        let checked = directory::check(&dir, &self.who, self.may_write);
        self.record(checked);
    }
}
