//! The run's main loop: records each observation as it comes and looks at the worker when one calls for it, until
//! the tree has exited, the socket has been reachable and quiet for `settle_ms`, or `window_ms` has passed.

use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use sockdiag_probes::{ConnectResult, Event, EventKind, SpawnMode};

use super::{Observation, DRAIN};
use crate::observers::output::Tail;
use crate::observers::Msg;
use crate::runner::launcher;
use crate::runner::{marker, reaper};

/// First interval of the look at `/proc` between events; it doubles up to the cap while nothing happens.
pub(super) const SCAN_FIRST: Duration = Duration::from_millis(2);
const SCAN_CAP: Duration = Duration::from_millis(50);
/// How long the fs observer gets to catch up.
const FS_SYNC: Duration = Duration::from_millis(500);
/// How long the observers must be silent, once the tree has exited, before the run stops listening to them.
const PENDING_QUIET: Duration = Duration::from_millis(10);

/// How soon an observation calls for a fresh look at the worker.
pub(super) enum Look {
    Now,
    Soon,
    Later,
}

impl Observation<'_> {
    /// The main loop: react to messages; look at /proc when something happened or the backoff timer fires.
    pub(super) fn watch_until_done(&mut self) {
        let profile = self.plan.profile;
        let start = Instant::now();
        let window_end = start + Duration::from_millis(profile.observe.window_ms);
        let settle = Duration::from_millis(profile.observe.settle_ms);
        let mut scan_every = SCAN_FIRST;
        let mut next_scan = start;
        loop {
            let now = Instant::now();
            if now >= next_scan {
                self.look();
                // A socket file that refuses may be between bind() and listen(): measure that window closely.
                let racing = self.last_connect == Some(ConnectResult::Refused) && !self.expected_path.is_empty();
                scan_every = if racing { SCAN_FIRST } else { (scan_every * 2).min(SCAN_CAP) };
                next_scan = now + scan_every;
            }
            // Done when every process is gone and the launcher's reports are all in: it closes them as it exits,
            // and they may still name a worker (whose exit the reaper holds until the worker is claimed). Then
            // what the observers already have on its way belongs to the run too.
            if self.live_pids().is_empty() && self.open_streams == 0 {
                self.take_pending();
                break;
            }
            let settled = self.serving_since.is_some_and(|c| now >= c.max(self.last_change) + settle);
            if (settled && !self.launcher_exit_pending()) || now >= window_end {
                break;
            }
            let mut deadline = next_scan.min(window_end);
            if let Some(c) = self.serving_since {
                deadline = deadline.min(c.max(self.last_change) + settle);
            }
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => match self.handle(msg) {
                    Look::Now => {
                        self.look();
                        scan_every = SCAN_FIRST;
                        next_scan = Instant::now() + scan_every;
                    }
                    Look::Soon => {
                        scan_every = SCAN_FIRST;
                        next_scan = next_scan.min(Instant::now() + scan_every);
                    }
                    Look::Later => {}
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Observations already on their way when the tree's last exit was reaped (an inotify remove that the watcher
    /// thread reads just after) belong to the run: take them until the observers are quiet for `PENDING_QUIET`,
    /// `DRAIN` at most.
    fn take_pending(&mut self) {
        let end = Instant::now() + DRAIN;
        while let Ok(msg) = self.rx.recv_deadline((Instant::now() + PENDING_QUIET).min(end)) {
            self.handle(msg);
        }
    }

    /// Records a message; returns how soon it calls for a fresh look at the worker.
    pub(super) fn handle(&mut self, msg: Msg) -> Look {
        match msg {
            Msg::Event(Event { t_us, kind: EventKind::Exited { pid, status } }) if Some(pid) == self.launcher => {
                self.launcher_alive = false;
                self.events.push(Event { t_us, kind: EventKind::LauncherExited { pid, status } });
                self.last_change = Instant::now();
                Look::Now
            }
            Msg::Worker { pid, at_ns } => {
                self.events.push(self.sink.clock.stamp_ns(at_ns, EventKind::Spawned { pid, argv: self.argv.clone() }));
                if self.config.spawn == SpawnMode::Detached {
                    reaper::adopt_group(pid, &self.sink);
                    self.sessions.push(pid);
                }
                self.adopt(pid);
                self.last_change = Instant::now();
                Look::Now
            }
            Msg::Event(event) => {
                let interesting = !matches!(event.kind, EventKind::Line { .. }) || self.is_listening_line(&event.kind);
                if let EventKind::Exited { pid, .. } = event.kind {
                    self.exited.insert(pid);
                    let mut closed = self.sockets.forget_pid(pid);
                    closed.extend(self.tcp.as_mut().map(|t| t.forget_pid(pid)).unwrap_or_default());
                    self.events.push(event);
                    self.record_all(closed);
                    if self.live_pids().is_empty() {
                        self.find_stragglers();
                    }
                } else {
                    self.events.push(event);
                }
                if interesting {
                    self.last_change = Instant::now();
                }
                self.look_after(interesting)
            }
            Msg::Grew(path) => {
                let mut lines = self.tails.iter_mut().find(|t| t.path == path).map(Tail::read_new).unwrap_or_default();
                lines.extend(self.logs.read(&path));
                let listening = self.record_lines(lines);
                self.look_after(listening)
            }
            Msg::Closed => {
                self.open_streams = self.open_streams.saturating_sub(1);
                Look::Later
            }
            Msg::FsSynced => {
                self.fs_synced = true;
                Look::Later
            }
        }
    }

    /// An observation that can change what a look finds (an exit, a file, a "listening" line) calls for one now.
    /// Before the worker serves, any output is a sign of progress: a look soon, at most one per `SCAN_FIRST` however
    /// chatty the worker (reading its /proc takes locks its own start-up needs).
    fn look_after(&self, interesting: bool) -> Look {
        match (interesting, self.connected_at) {
            (true, _) => Look::Now,
            (false, None) => Look::Soon,
            (false, Some(_)) => Look::Later,
        }
    }

    fn is_listening_line(&self, kind: &EventKind) -> bool {
        matches!(kind, EventKind::Line { markers, .. } if markers.contains(&sockdiag_probes::Marker::Listening))
    }

    /// Records output lines (stamped when read); right after a "listening" line, what is at the expected path.
    /// Returns whether one of them was a "listening" line.
    fn record_lines(&mut self, lines: Vec<(Instant, EventKind)>) -> bool {
        let mut any_listening = false;
        for (at, line) in lines {
            let listening = self.is_listening_line(&line);
            any_listening |= listening;
            self.events.push(self.sink.clock.stamp_at(at, line));
            if listening && !self.expected_path.is_empty() {
                self.record(launcher::file_check(Path::new(&self.expected_path)));
            }
        }
        any_listening
    }

    /// Processes of the run that no tree walk found (a daemon whose parent is gone), by the run's env marker.
    pub(super) fn find_stragglers(&mut self) {
        for pid in marker::processes_of_run(&self.marker) {
            if !self.exited.contains(&pid) && Some(pid) != self.launcher {
                self.adopt(pid);
            }
        }
    }

    /// Waits (with a deadline) until the fs observer has delivered everything that happened so far: a file the
    /// harness creates in a watched directory comes back after every earlier event (one inotify queue). Returns
    /// how long that took.
    pub(super) fn sync_fs(&mut self) -> Option<Duration> {
        self.fs_synced = false;
        std::fs::File::create(&self.fs_barrier).ok()?;
        let made = Instant::now();
        let deadline = made + FS_SYNC;
        while !self.fs_synced {
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => {
                    self.handle(msg);
                }
                Err(_) => break,
            }
        }
        let lag = made.elapsed();
        let _ = std::fs::remove_file(&self.fs_barrier);
        self.fs_synced.then_some(lag)
    }
}
