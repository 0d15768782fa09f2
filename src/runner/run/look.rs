//! One look at the worker: its tree, its sockets, the databases it holds, its pid file, and a connect to the
//! endpoint. What it finds is applied to the run's state.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use sockdiag_probes::{ConnectResult, Endpoint, EventKind, FileType};

use super::state::Input;
use super::Run;
use crate::observers::{connect, database, directory, end_state, fs, pid_file, sockets};
use crate::runner::marker;
use crate::runner::tcp_watch::{Found, TcpWatch};

impl Run<'_> {
    /// One look at the worker: its tree, its sockets, the databases it holds, and the expected path.
    pub(super) fn look(&mut self) {
        self.check_vanished();
        let tree = self.tree();
        for &pid in &tree {
            if !self.state.pids().contains(&pid) && Some(pid) != self.state.launcher() && !self.before_exec(pid) {
                self.adopt(pid);
            }
        }
        // The spawned worker's view is worth another try (its runtime, its environment); a thousand children's
        // are not.
        if let Some(&root) = self.state.pids().first().filter(|p| tree.contains(p)) {
            self.view(root);
        }
        let scan = sockets::scan_fds(&tree);
        if let Some(&netns) = tree.first() {
            let events = self.sockets.update(netns, &scan);
            let serving = events.iter().any(|c| matches!(c, EventKind::SocketBound { listening: true, .. }));
            self.apply(Input::Found { changed: !events.is_empty(), serving, events });
        }
        let (pids, run_marker) = (self.state.pids(), self.spec.marker.as_str());
        let ours = |pid: i32| pids.contains(&pid) || marker::marker_of(pid).as_deref() == Some(run_marker);
        let netns = tree.first().copied().unwrap_or(std::process::id() as i32);
        if let Some(found) = self.tcp.as_mut().map(|t| t.look(netns, &scan, &ours)) {
            self.take(found);
        }
        self.check_databases(&scan.files);
        let lines = self.logs.poll();
        self.apply(Input::Stamped(lines));
        self.check_pid_file(false);
        match self.spec.expected.endpoint {
            Endpoint::Unix { .. } => {
                if self.state.not_yet_connected()
                    && fs::file_type(Path::new(self.spec.expected_path())) != FileType::Gone
                {
                    self.try_connect();
                }
            }
            Endpoint::Tcp { .. } => {
                if self.state.not_yet_connected() {
                    self.try_connect();
                }
                if !self.state.not_yet_connected() {
                    if let Some(found) = self.tcp.as_mut().map(TcpWatch::ask_health) {
                        self.take(found);
                    }
                }
            }
        }
    }

    /// Processes whose pidfd says they exited and whose exit no report will bring: their parent is neither
    /// sockdiag (the reaper reports) nor the launcher (it reports the workers it reaps).
    pub(super) fn check_vanished(&mut self) {
        let pids: Vec<i32> = self.pidfds.keys().copied().collect();
        let mut fds: Vec<PollFd> =
            pids.iter().map(|p| PollFd::new(self.pidfds[p].as_fd(), PollFlags::POLLIN)).collect();
        if fds.is_empty() || poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) == 0 {
            return;
        }
        let ended: Vec<i32> = pids
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(p, _)| *p)
            .collect();
        let reporters = [Some(std::process::id() as i32), self.state.launcher()];
        for pid in ended {
            self.pidfds.remove(&pid);
            let parent = procfs::process::Process::new(pid).and_then(|p| p.stat()).map(|s| s.ppid).ok();
            if self.state.has_exited(pid) || parent.is_some_and(|p| reporters.contains(&Some(p))) {
                continue;
            }
            self.apply(Input::Vanished(pid));
        }
    }

    /// The live processes of the run and their descendants.
    fn tree(&self) -> Vec<i32> {
        end_state::tree_of(&self.state.live_pids())
    }

    /// Applies what the TCP watch found.
    pub(super) fn take(&mut self, found: Found) {
        self.apply(Input::Found { events: found.events, changed: found.changed, serving: found.serving });
    }

    /// True when `pid` is a process of this run (adopted, or carrying the run's marker).
    fn is_ours(&self, pid: i32) -> bool {
        self.state.pids().contains(&pid) || marker::marker_of(pid).as_deref() == Some(self.spec.marker.as_str())
    }

    /// Reads the pid file; it is recorded when what it says changed, or always when `force` (the end state).
    pub(super) fn check_pid_file(&mut self, force: bool) {
        let Some(path) = self.spec.pid_file.clone() else { return };
        let kind = pid_file::check(&path, &self.spec.sandbox, &|pid| self.is_ours(pid));
        self.apply(Input::PidFile { kind, force });
    }

    /// True for a launcher's child that has not exec'd the worker yet (it still runs sockdiag).
    fn before_exec(&self, pid: i32) -> bool {
        let exe = procfs::process::Process::new(pid).and_then(|p| p.exe()).ok();
        exe.is_some() && exe == self.own_exe
    }

    /// Records the SQLite files the tree holds open, once each. Their session rows are looked up at the end
    /// (`look_up_sessions`): a query now would compete with the worker's own start-up.
    fn check_databases(&mut self, files: &[(i32, PathBuf)]) {
        if self.spec.session_query.is_none() {
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

    /// Connects to the endpoint; the state records the attempt when its result differs from the last one.
    pub(super) fn try_connect(&mut self) -> ConnectResult {
        let kind = connect::attempt(&self.spec.expected.endpoint);
        let EventKind::Connect { result, .. } = kind else { unreachable!("attempt returns a Connect") };
        let serves = self.tcp.as_ref().is_none_or(TcpWatch::serves_on_connect);
        self.apply(Input::Connect { kind, serves });
        result
    }

    /// The socket's directory as the worker's user meets it, with a test bind there.
    pub(super) fn check_directory(&mut self) {
        let Some(dir) = self.spec.socket_path.as_deref().map(|p| p.parent().unwrap_or(Path::new("/")).to_path_buf())
        else {
            return;
        };
        let sandbox = self.spec.may_write.then_some(self.spec.sandbox.as_path());
        let checked = directory::check(&dir, &self.spec.who, sandbox);
        self.record(checked);
    }
}
