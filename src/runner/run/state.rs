//! The run as one fold: every observation, from an observer thread or from the executor's own looks, is applied
//! to `RunState`, which appends it to the timeline (the only place that does), keeps what the run knows (its
//! processes, since when it serves, its connect results) and returns the actions it wants carried out. It does
//! no I/O, so its decisions are unit-tested with event sequences alone.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sockdiag_probes::{ConnectResult, Event, EventKind, Lifecycle, PidFileState, RunConfig, SpawnMode};

use crate::observers::output::is_listening_line;
use crate::observers::{Clock, Msg};

/// First interval of the look at `/proc` between events; it doubles up to the cap while nothing happens.
pub(super) const SCAN_FIRST: Duration = Duration::from_millis(2);
const SCAN_CAP: Duration = Duration::from_millis(50);

/// What is applied to the state: a source's message, or what the executor found when it carried out an action.
pub(super) enum Input {
    /// A message from an observer thread (the reaper, the launcher's reports, the fs watcher, output readers).
    Source(Msg),
    /// The launcher was started, running `argv` for the worker.
    LauncherStarted { pid: i32, argv: Vec<String> },
    /// A fact observed now (or at `at`), which changes nothing about when the run settles.
    Observed { at: Instant, kind: EventKind },
    /// Output lines read from a file, stamped when read.
    Lines(Vec<(Instant, EventKind)>),
    /// Facts stamped when they were read, which change nothing about when the run settles (log lines, the rest
    /// of the output at the end).
    Stamped(Vec<(Instant, EventKind)>),
    /// What a look at the worker's sockets found: whether something changed, whether the worker now serves.
    Found { events: Vec<EventKind>, changed: bool, serving: bool },
    /// A connect attempt to the endpoint; `serves` when accepting a connection means serving (no health check).
    Connect { kind: EventKind, serves: bool },
    /// The pid file as read now; `force` records it even when unchanged (the end state).
    PidFile { kind: EventKind, force: bool },
    /// The watch is over: a pending repeat of a refused connect is recorded, and the next attempt is recorded
    /// whatever its result (the end state).
    WatchEnded,
    /// A process of the run is gone, and nobody will report its exit to us (its own parent reaped it: a shell
    /// shim's helper, a daemon's short-lived child).
    Vanished(i32),
}

/// What the state asks the executor to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Take the process into the run (the reaper routes its exit here; what it sees is recorded); `session`:
    /// it leads a session of its own whose members the reaper routes too.
    Adopt { pid: i32, session: bool },
    /// The process exited: what it held (sockets, listeners) is closed.
    Forget(i32),
    /// Every known process has exited: look for processes of the run no tree walk found.
    FindStragglers,
    /// A "listening" line arrived: what is at the expected path now.
    CheckFile(PathBuf),
    /// A tailed file grew: read its new lines.
    ReadGrown(PathBuf),
}

/// What the run loop does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Look at the worker now.
    Look,
    /// Wait for the next message until this instant.
    Wait(Instant),
    /// Stop watching.
    Stop(StopReason),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum StopReason {
    /// Every process of the run is gone and the launcher's reports are all in.
    TreeExited,
    /// The worker has served and been quiet for `settle`.
    Settled,
    /// The window is over.
    Window,
}

/// How soon an observation calls for a fresh look at the worker.
enum Look {
    Now,
    Soon,
    Later,
}

/// The state of one run.
pub(super) struct RunState {
    config: RunConfig,
    clock: Clock,
    window_end: Instant,
    settle: Duration,
    /// Watched for the whole window, however settled it looks (the production configuration: a failure that comes
    /// after a healthy start must be seen there, DESIGN §7 rule 7).
    whole_window: bool,
    /// The socket file clients expect (none for a TCP endpoint).
    expected_path: Option<PathBuf>,
    timeline: Vec<Event>,
    /// The launcher's pid, and whether it still runs.
    launcher: Option<i32>,
    launcher_alive: bool,
    /// The worker's argv, for the spawn events.
    argv: Vec<String>,
    pids: Vec<i32>,
    /// The workers the launcher started: their exit is always reported (by the launcher, or by the reaper).
    spawned: HashSet<i32>,
    exited: HashSet<i32>,
    /// Sessions registered with the reaper (the launcher's, detached workers'), forgotten at the end.
    sessions: Vec<i32>,
    /// Since when the worker serves: a client connected, or the kernel lists a listener of its tree anywhere.
    serving_since: Option<Instant>,
    connected_at: Option<Instant>,
    last_change: Instant,
    last_connect: Option<ConnectResult>,
    /// The latest repeat of a refused connect, recorded only when the result changes: with the first refusal it
    /// bounds how long the endpoint refused, whatever the delay before the next attempt.
    refused_again: Option<Event>,
    last_pid_file: Option<(Option<i32>, PidFileState)>,
    /// Output streams not yet at end of file (the launcher's reports).
    open_streams: usize,
    fs_synced: bool,
    next_look: Instant,
    look_every: Duration,
    /// A look was asked for by an event (not by the backoff timer).
    look_urgent: bool,
}

impl RunState {
    pub(super) fn new(
        config: RunConfig,
        clock: Clock,
        start: Instant,
        window: Duration,
        settle: Duration,
        expected_path: Option<PathBuf>,
    ) -> Self {
        RunState {
            config,
            clock,
            window_end: start + window,
            settle,
            whole_window: false,
            expected_path,
            timeline: Vec::new(),
            launcher: None,
            launcher_alive: true,
            argv: Vec::new(),
            pids: Vec::new(),
            spawned: HashSet::new(),
            exited: HashSet::new(),
            sessions: Vec::new(),
            serving_since: None,
            connected_at: None,
            last_change: start,
            last_connect: None,
            refused_again: None,
            last_pid_file: None,
            open_streams: 0,
            fs_synced: false,
            next_look: start,
            look_every: SCAN_FIRST,
            look_urgent: false,
        }
    }

    /// Watches the run for its whole window: it never stops as settled.
    pub(super) fn watching_whole_window(mut self, whole: bool) -> Self {
        self.whole_window = whole;
        self
    }

    /// Applies one input at `now`; returns the actions it calls for.
    pub(super) fn apply(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let look = match input {
            Input::Source(msg) => self.apply_msg(msg, now, &mut actions),
            Input::LauncherStarted { pid, argv } => {
                self.launcher = Some(pid);
                self.argv = argv;
                self.open_streams = 1;
                self.push(self.clock.stamp_at(now, EventKind::LauncherStarted { pid }));
                Look::Later
            }
            Input::Observed { at, kind } => {
                self.push(self.clock.stamp_at(at, kind));
                Look::Later
            }
            Input::Stamped(facts) => {
                for (at, kind) in facts {
                    self.push(self.clock.stamp_at(at, kind));
                }
                Look::Later
            }
            Input::Lines(lines) => {
                let listening = self.apply_lines(lines, &mut actions);
                self.look_after(listening)
            }
            Input::Found { events, changed, serving } => self.apply_found(events, changed, serving, now),
            Input::Connect { kind, serves } => {
                self.apply_connect(kind, serves, now);
                Look::Later
            }
            Input::PidFile { kind, force } => self.apply_pid_file(kind, force, now),
            Input::Vanished(pid) => {
                if self.pids.contains(&pid) && !self.spawned.contains(&pid) && self.exited.insert(pid) {
                    actions.push(Action::Forget(pid));
                    if self.live_pids().is_empty() {
                        actions.push(Action::FindStragglers);
                    }
                }
                Look::Soon
            }
            Input::WatchEnded => {
                if let Some(again) = self.refused_again.take() {
                    self.push(again);
                }
                self.last_connect = None;
                Look::Later
            }
        };
        self.schedule(look, now);
        actions
    }

    /// When the next look at `/proc` is due after an input.
    fn schedule(&mut self, look: Look, now: Instant) {
        match look {
            Look::Now => {
                self.look_urgent = true;
                self.next_look = now;
            }
            Look::Soon => {
                self.look_every = SCAN_FIRST;
                self.next_look = self.next_look.min(now + SCAN_FIRST);
            }
            Look::Later => {}
        }
    }

    /// What a look found: its events, and whether the worker changed or serves.
    fn apply_found(&mut self, events: Vec<EventKind>, changed: bool, serving: bool, now: Instant) -> Look {
        if changed {
            self.last_change = now;
        }
        if serving {
            self.serving_since.get_or_insert(now);
        }
        for kind in events {
            self.push(self.clock.stamp_at(now, kind));
        }
        Look::Later
    }

    /// The pid file is recorded when what it says changed, or always when `force` (the end state).
    fn apply_pid_file(&mut self, kind: EventKind, force: bool, now: Instant) -> Look {
        if let EventKind::PidFile { pid, state, .. } = &kind {
            let key = (*pid, *state);
            if force || self.last_pid_file != Some(key) {
                self.last_pid_file = Some(key);
                self.push(self.clock.stamp_at(now, kind));
            }
        }
        Look::Later
    }

    fn apply_msg(&mut self, msg: Msg, now: Instant, actions: &mut Vec<Action>) -> Look {
        match msg {
            Msg::Event(Event { t_us, kind: EventKind::Exited { pid, status } }) if Some(pid) == self.launcher => {
                self.launcher_alive = false;
                self.push(Event { t_us, kind: EventKind::LauncherExited { pid, status } });
                self.last_change = now;
                // The launcher may be the last known process while a worker's child no walk saw yet still runs.
                if self.live_pids().is_empty() {
                    actions.push(Action::FindStragglers);
                }
                Look::Now
            }
            Msg::Worker { pid, at_ns } => {
                self.push(self.clock.stamp_ns(at_ns, EventKind::Spawned { pid, argv: self.argv.clone() }));
                let session = self.config.spawn == SpawnMode::Detached;
                self.spawned.insert(pid);
                if session {
                    self.sessions.push(pid);
                }
                actions.extend(self.adopt(pid, session));
                self.last_change = now;
                Look::Now
            }
            Msg::Event(event) => {
                let interesting = !matches!(event.kind, EventKind::Line { .. }) || is_listening_line(&event.kind);
                let exited = match event.kind {
                    EventKind::Exited { pid, .. } => Some(pid),
                    _ => None,
                };
                self.push(event);
                if let Some(pid) = exited {
                    self.exited.insert(pid);
                    actions.push(Action::Forget(pid));
                    if self.live_pids().is_empty() {
                        actions.push(Action::FindStragglers);
                    }
                }
                if interesting {
                    self.last_change = now;
                }
                self.look_after(interesting)
            }
            Msg::Grew(path) => {
                actions.push(Action::ReadGrown(path));
                Look::Later
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

    /// Records output lines; right after a "listening" line, asks what is at the expected path. Returns whether
    /// one of them was a "listening" line.
    fn apply_lines(&mut self, lines: Vec<(Instant, EventKind)>, actions: &mut Vec<Action>) -> bool {
        let mut any_listening = false;
        for (at, line) in lines {
            let listening = is_listening_line(&line);
            any_listening |= listening;
            self.push(self.clock.stamp_at(at, line));
            if let (true, Some(path)) = (listening, &self.expected_path) {
                actions.push(Action::CheckFile(path.clone()));
            }
        }
        any_listening
    }

    /// Records a connect attempt when its result differs from the last one; a repeated refusal is kept aside.
    fn apply_connect(&mut self, kind: EventKind, serves: bool, now: Instant) {
        let EventKind::Connect { result, .. } = kind else { return };
        if result == ConnectResult::Connected && self.connected_at.is_none() {
            self.connected_at = Some(now);
            // With a health check, serving means answering it ready, not just accepting.
            if serves {
                self.serving_since.get_or_insert(now);
            }
        }
        if self.last_connect != Some(result) {
            if let Some(again) = self.refused_again.take() {
                self.push(again);
            }
            self.last_connect = Some(result);
            self.push(self.clock.stamp_at(now, kind));
        } else if result == ConnectResult::Refused {
            self.refused_again = Some(self.clock.stamp_at(now, kind));
        }
    }

    /// Takes a process into the run, once.
    pub(super) fn adopt(&mut self, pid: i32, session: bool) -> Option<Action> {
        if self.pids.contains(&pid) {
            return None;
        }
        self.pids.push(pid);
        Some(Action::Adopt { pid, session })
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

    fn push(&mut self, event: Event) {
        self.timeline.push(event);
    }

    /// What the run loop does next at `now`: look, stop, or wait for a message.
    pub(super) fn step(&self, now: Instant) -> Step {
        if now >= self.next_look {
            return Step::Look;
        }
        if let Some(reason) = self.stop_reason(now) {
            return Step::Stop(reason);
        }
        let mut deadline = self.next_look.min(self.window_end);
        // Settled but waiting for the launcher's exit: that exit is a message, not a deadline.
        if let Some(settled_at) = self.settled_at().filter(|at| *at > now) {
            deadline = deadline.min(settled_at);
        }
        Step::Wait(deadline)
    }

    /// Done when every process is gone and the launcher's reports are all in: it closes them as it exits, and they
    /// may still name a worker (whose exit the reaper holds until the worker is claimed); when the worker has
    /// served and been quiet for `settle` (and a launcher that exits has); when the window is over.
    pub(super) fn stop_reason(&self, now: Instant) -> Option<StopReason> {
        if self.live_pids().is_empty() && self.open_streams == 0 {
            return Some(StopReason::TreeExited);
        }
        let settled = self.settled_at().is_some_and(|at| now >= at);
        if settled && !self.launcher_exit_pending() {
            return Some(StopReason::Settled);
        }
        (now >= self.window_end).then_some(StopReason::Window)
    }

    fn settled_at(&self) -> Option<Instant> {
        if self.whole_window {
            return None;
        }
        self.serving_since.map(|since| since.max(self.last_change) + self.settle)
    }

    /// A look was made at `now`: when the next one is due. A socket file that refuses may be between bind() and
    /// listen(): that window is measured closely.
    pub(super) fn looked(&mut self, now: Instant) {
        let racing = self.last_connect == Some(ConnectResult::Refused) && self.expected_path.is_some();
        self.look_every = if self.look_urgent || racing { SCAN_FIRST } else { (self.look_every * 2).min(SCAN_CAP) };
        self.look_urgent = false;
        self.next_look = now + self.look_every;
    }

    /// True while a launcher that is configured to exit has not yet: the run must see what follows its exit.
    fn launcher_exit_pending(&self) -> bool {
        self.config.lifecycle == Lifecycle::Exits && self.launcher_alive
    }

    /// Workers (and their descendants) still running.
    pub(super) fn live_workers(&self) -> Vec<i32> {
        self.pids.iter().copied().filter(|p| !self.exited.contains(p)).collect()
    }

    /// Every process of the run still running: the workers and the launcher.
    pub(super) fn live_pids(&self) -> Vec<i32> {
        let mut live = self.live_workers();
        live.extend(self.launcher.filter(|_| self.launcher_alive));
        live
    }

    pub(super) fn launcher(&self) -> Option<i32> {
        self.launcher
    }

    pub(super) fn pids(&self) -> &[i32] {
        &self.pids
    }

    pub(super) fn has_exited(&self, pid: i32) -> bool {
        self.exited.contains(&pid)
    }

    pub(super) fn sessions(&self) -> &[i32] {
        &self.sessions
    }

    pub(super) fn not_yet_connected(&self) -> bool {
        self.connected_at.is_none()
    }

    pub(super) fn open_streams(&self) -> usize {
        self.open_streams
    }

    /// Forgets an earlier sync of the fs observer; `fs_synced` turns true when the next one arrives.
    pub(super) fn expect_fs_sync(&mut self) {
        self.fs_synced = false;
    }

    pub(super) fn fs_synced(&self) -> bool {
        self.fs_synced
    }

    pub(super) fn timeline(&self) -> &[Event] {
        &self.timeline
    }

    /// The run's events, as applied.
    pub(super) fn into_timeline(self) -> Vec<Event> {
        self.timeline
    }
}

#[cfg(test)]
mod tests {
    use sockdiag_probes::{ExitStatus, RunAs, Runtime, StdioMode, Stream};

    use super::*;
    use sockdiag_probes::Marker;

    const WINDOW: Duration = Duration::from_millis(3000);
    const SETTLE: Duration = Duration::from_millis(50);

    fn config(spawn: SpawnMode, lifecycle: Lifecycle) -> RunConfig {
        RunConfig {
            spawn,
            lifecycle,
            stdio: StdioMode::Ignore,
            launches: 1,
            runtime: Runtime::AsWritten,
            user: RunAs::Invoker,
        }
    }

    fn state(lifecycle: Lifecycle, path: Option<&str>) -> (RunState, Instant) {
        let clock = Clock::start();
        let start = Instant::now();
        let s = RunState::new(
            config(SpawnMode::Detached, lifecycle),
            clock,
            start,
            WINDOW,
            SETTLE,
            path.map(PathBuf::from),
        );
        (s, start)
    }

    fn exited(pid: i32, code: i32) -> Input {
        Input::Source(Msg::Event(Event { t_us: 10, kind: EventKind::Exited { pid, status: ExitStatus::Code(code) } }))
    }

    fn line(text: &str, markers: Vec<Marker>) -> EventKind {
        EventKind::Line { stream: Stream::Stdout, text: text.into(), markers }
    }

    fn connect(result: ConnectResult) -> Input {
        Input::Connect {
            kind: EventKind::Connect { path: "x".into(), result, detail: String::new(), peer: None },
            serves: true,
        }
    }

    /// Starts a launcher (pid 10) that spawns a worker (pid 11), both looked at once.
    fn started(s: &mut RunState, now: Instant) -> Vec<Action> {
        s.apply(Input::LauncherStarted { pid: 10, argv: vec!["w".into()] }, now);
        s.apply(Input::Source(Msg::Worker { pid: 11, at_ns: 0 }), now)
    }

    #[test]
    fn a_spawned_worker_is_adopted_with_its_session_and_looked_at_now() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        let actions = started(&mut s, t + Duration::from_millis(1));
        assert_eq!(actions, vec![Action::Adopt { pid: 11, session: true }]);
        assert_eq!(s.sessions(), &[11]);
        assert_eq!(s.step(t + Duration::from_millis(1)), Step::Look);
        assert!(matches!(s.timeline().last().map(|e| &e.kind), Some(EventKind::Spawned { pid: 11, .. })));
        // Adopting again does nothing.
        assert_eq!(s.adopt(11, false), None);
    }

    #[test]
    fn the_run_stops_when_the_tree_has_exited_and_the_reports_are_in() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        started(&mut s, t);
        s.looked(t);
        let after = t + Duration::from_millis(5);
        let actions = s.apply(exited(11, 1), after);
        assert_eq!(actions, vec![Action::Forget(11)]);
        assert!(matches!(s.timeline().last().map(|e| &e.kind), Some(EventKind::Exited { pid: 11, .. })));
        // The launcher's exit is recorded as the launcher's, and the last exit asks for stragglers.
        let actions = s.apply(exited(10, 0), after);
        assert!(matches!(s.timeline().last().map(|e| &e.kind), Some(EventKind::LauncherExited { pid: 10, .. })));
        assert_eq!(actions, vec![Action::FindStragglers]);
        assert_eq!(s.stop_reason(after), None, "the launcher's reports are still open");
        s.apply(Input::Source(Msg::Closed), after);
        assert_eq!(s.stop_reason(after), Some(StopReason::TreeExited));
    }

    #[test]
    fn the_last_worker_exit_asks_for_stragglers() {
        let (mut s, t) = state(Lifecycle::Exits, None);
        started(&mut s, t);
        s.apply(exited(10, 0), t);
        assert_eq!(s.apply(exited(11, 0), t), vec![Action::Forget(11), Action::FindStragglers]);
    }

    #[test]
    fn a_serving_worker_settles_after_quiet_but_not_before_its_launcher_exits() {
        let (mut s, t) = state(Lifecycle::Exits, None);
        started(&mut s, t);
        s.looked(t);
        s.apply(Input::Found { events: vec![], changed: true, serving: true }, t);
        let later = t + SETTLE + Duration::from_millis(1);
        assert_eq!(s.stop_reason(later), None, "the launcher is still to exit");
        s.apply(exited(10, 0), t);
        assert_eq!(s.stop_reason(later), Some(StopReason::Settled));
        assert_eq!(s.stop_reason(t + Duration::from_millis(10)), None, "not quiet for long enough");
    }

    #[test]
    fn the_production_configuration_is_watched_for_its_whole_window() {
        let (s, t) = state(Lifecycle::Stays, None);
        let mut s = s.watching_whole_window(true);
        started(&mut s, t);
        s.apply(connect(ConnectResult::Connected), t);
        assert_eq!(s.stop_reason(t + SETTLE * 10), None, "serving and quiet, yet not settled");
        assert_eq!(s.stop_reason(t + WINDOW), Some(StopReason::Window));
    }

    #[test]
    fn a_change_while_serving_restarts_the_settle_clock() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        started(&mut s, t);
        s.apply(connect(ConnectResult::Connected), t);
        let change = t + Duration::from_millis(40);
        s.apply(Input::Found { events: vec![], changed: true, serving: false }, change);
        assert_eq!(s.stop_reason(t + SETTLE + Duration::from_millis(1)), None);
        assert_eq!(s.stop_reason(change + SETTLE), Some(StopReason::Settled));
    }

    #[test]
    fn the_window_bounds_every_run() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        started(&mut s, t);
        s.looked(t);
        assert_eq!(s.stop_reason(t + WINDOW), Some(StopReason::Window));
        let Step::Wait(deadline) = s.step(t + Duration::from_millis(1)) else { panic!("a wait") };
        assert!(deadline <= t + WINDOW);
    }

    #[test]
    fn with_a_health_check_accepting_is_not_serving() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        started(&mut s, t);
        let kind = EventKind::Connect {
            path: "x".into(),
            result: ConnectResult::Connected,
            detail: String::new(),
            peer: None,
        };
        s.apply(Input::Connect { kind, serves: false }, t);
        assert!(!s.not_yet_connected());
        assert_eq!(s.stop_reason(t + Duration::from_secs(1)), None);
    }

    #[test]
    fn repeated_refusals_are_recorded_once_and_bounded_by_the_last() {
        let (mut s, t) = state(Lifecycle::Stays, Some("/s/worker.sock"));
        started(&mut s, t);
        for ms in [1, 3, 5] {
            s.apply(connect(ConnectResult::Refused), t + Duration::from_millis(ms));
        }
        let connects =
            |s: &RunState| s.timeline().iter().filter(|e| matches!(e.kind, EventKind::Connect { .. })).count();
        assert_eq!(connects(&s), 1);
        // A refusal keeps the looks close together (bind() done, listen() not yet).
        s.looked(t);
        assert_eq!(s.step(t + Duration::from_millis(1)), Step::Wait(t + SCAN_FIRST));
        s.apply(connect(ConnectResult::Connected), t + Duration::from_millis(7));
        assert_eq!(connects(&s), 3, "the last refusal, then the success");
        let times: Vec<u64> =
            s.timeline().iter().filter(|e| matches!(e.kind, EventKind::Connect { .. })).map(|e| e.t_us).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn a_process_reaped_by_its_own_parent_is_no_longer_live() {
        let (mut s, t) = state(Lifecycle::Stays, Some("/s/worker.sock"));
        started(&mut s, t);
        s.adopt(12, false);
        assert!(s.live_pids().contains(&12));
        assert_eq!(s.apply(Input::Vanished(12), t), vec![Action::Forget(12)]);
        assert!(!s.live_pids().contains(&12));
        // Once only, and never for a pid that is not the run's, nor for a worker the launcher started: its exit
        // report is on its way, with the status.
        assert!(s.apply(Input::Vanished(12), t).is_empty());
        assert!(s.apply(Input::Vanished(99), t).is_empty());
        s.apply(Input::Source(Msg::Worker { pid: 13, at_ns: 0 }), t);
        assert!(s.apply(Input::Vanished(13), t).is_empty());
        assert!(s.live_pids().contains(&13));
    }

    #[test]
    fn a_listening_line_asks_for_the_file_and_a_look_now() {
        let (mut s, t) = state(Lifecycle::Stays, Some("/s/worker.sock"));
        started(&mut s, t);
        s.looked(t);
        let lines = vec![(t, line("booting", vec![])), (t, line("listening", vec![Marker::Listening]))];
        let actions = s.apply(Input::Lines(lines), t + Duration::from_millis(1));
        assert_eq!(actions, vec![Action::CheckFile(PathBuf::from("/s/worker.sock"))]);
        assert_eq!(s.step(t + Duration::from_millis(1)), Step::Look);
    }

    #[test]
    fn chatty_output_asks_for_a_look_soon_not_now() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        started(&mut s, t);
        s.looked(t);
        s.looked(t + SCAN_FIRST); // backed off to 4 ms
        let now = t + SCAN_FIRST;
        let pipe_line = Input::Source(Msg::Event(Event { t_us: 1, kind: line("progress", vec![]) }));
        s.apply(pipe_line, now);
        assert_eq!(s.step(now), Step::Wait(now + SCAN_FIRST));
    }

    #[test]
    fn the_pid_file_is_recorded_when_it_changes_or_at_the_end() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        let read =
            |pid| EventKind::PidFile { path: "p".into(), pid, state: PidFileState::Worker, detail: String::new() };
        s.apply(Input::PidFile { kind: read(Some(5)), force: false }, t);
        s.apply(Input::PidFile { kind: read(Some(5)), force: false }, t);
        s.apply(Input::PidFile { kind: read(Some(5)), force: true }, t);
        s.apply(Input::PidFile { kind: read(Some(6)), force: false }, t);
        assert_eq!(s.timeline().len(), 3);
    }

    #[test]
    fn a_grown_file_is_read_and_a_sync_is_noticed() {
        let (mut s, t) = state(Lifecycle::Stays, None);
        let grown = s.apply(Input::Source(Msg::Grew(PathBuf::from("/s/stdout.log"))), t);
        assert_eq!(grown, vec![Action::ReadGrown(PathBuf::from("/s/stdout.log"))]);
        s.expect_fs_sync();
        assert!(!s.fs_synced());
        s.apply(Input::Source(Msg::FsSynced), t);
        assert!(s.fs_synced());
    }
}
