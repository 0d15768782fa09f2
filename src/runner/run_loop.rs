//! One run, event-driven: arm the watchers, spawn, then react to each observation until the worker's tree has
//! exited, the socket has been reachable and quiet for `settle_ms`, or `window_ms` has passed. Every wait has a
//! deadline; `/proc` is read when an event calls for it, with a backing-off look in between for what no event
//! announces (a socket bound in an unwatched place, a database opened).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sockdiag_probes::{
    ConnectResult, Endpoint, Event, EventKind, Expected, HealthCheck, Lifecycle, Outcome, PidFileState, RunAs,
    RunConfig, RunRecord, SpawnMode, StdioMode, Stream, Timeline,
};

use super::launcher::{self, Launch};
use super::sandbox::Sandbox;
use super::tcp_watch::{Found, TcpWatch};
use super::{marker, port, reaper, runtime, Plan};
use crate::error::UsageError;
use crate::identity::Identity;
use crate::observers::logs::LogFiles;
use crate::observers::output::Tail;
use crate::observers::{
    connect, database, directory, fs, kernel_sockets, namespaces, pid_file, sockets, worker_view, Clock, Msg, Sink,
};
use crate::profile::{EndpointTemplate, Profile, Vars};

/// First interval of the look at `/proc` between events; it doubles up to the cap while nothing happens.
const SCAN_FIRST: Duration = Duration::from_millis(2);
const SCAN_CAP: Duration = Duration::from_millis(50);
/// How long the fs observer gets to catch up at the end of a run.
const FS_SYNC: Duration = Duration::from_millis(500);
/// How long output may keep flowing after the last process exited (a descendant may hold the pipe).
const DRAIN: Duration = Duration::from_millis(100);
/// How long the observers must be silent, once the tree has exited, before the run stops listening to them.
const PENDING_QUIET: Duration = Duration::from_millis(10);
/// How long a worker gets to stop after the profile's message, then after SIGTERM.
const STOP_GRACE: Duration = Duration::from_millis(1000);
const TERM_GRACE: Duration = Duration::from_millis(500);

pub(super) fn run_one(plan: &Plan, id: usize, config: RunConfig) -> anyhow::Result<RunRecord> {
    let profile = plan.profile;
    let mut sandbox = Sandbox::create(id)?;
    let port = if profile.uses_port { port::free_loopback_port()? } else { 0 };
    let vars = profile.sandbox_vars(plan.session, &sandbox.home, &sandbox.data, port);
    let database = sandbox.install_database(plan.database.as_ref(), profile, &vars)?;
    let who = match config.user {
        RunAs::Invoker => Identity::current(),
        RunAs::Uid(uid) => {
            let who = Identity::of_user(&uid.to_string()).with_context(|| format!("no user with uid {uid}"))?;
            sandbox.give_to(&who)?;
            who
        }
    };
    let argv: Vec<String> = profile.command.iter().map(|a| vars.expand(a)).collect();
    let (program, args) = runtime::command(&argv, config.runtime, profile.check_command(&vars)?, &plan.runtimes)?;
    let expected = Expected {
        session: plan.session,
        endpoint: endpoint(profile, &vars)?,
        env: profile.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))).collect(),
        database: database.as_ref().map(|d| d.display().to_string()),
        sandbox: Some(sandbox.root.display().to_string()),
        health: profile
            .health
            .as_ref()
            .map(|h| HealthCheck { get: h.get.clone(), ready: h.ready.as_ref().map(|r| r.as_str().to_string()) }),
        logs: profile.observe.logs.iter().map(|g| vars.expand(g)).collect(),
        pid_file: profile.observe.pid_file.as_ref().map(|p| vars.expand(p)),
        runtimes: plan.runtimes.clone(),
        markers: profile.markers.defined(),
        shebang: runtime::shebang(&argv),
    };
    let output_files = (sandbox.root.join("stdout.log"), sandbox.root.join("stderr.log"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let sink = Sink { clock: Clock::start(), tx };
    let socket_path = expected.socket_path().map(PathBuf::from);
    let mut roots = vec![sandbox.root.clone()];
    roots.extend(
        socket_path
            .as_ref()
            .and_then(|s| s.parent())
            .filter(|p| !p.starts_with(&sandbox.root) && p.is_dir())
            .map(Path::to_path_buf),
    );
    let tailed =
        if config.stdio == StdioMode::File { vec![output_files.0.clone(), output_files.1.clone()] } else { vec![] };
    let pending: Vec<Arc<AtomicBool>> = tailed.iter().map(|_| Arc::new(AtomicBool::new(false))).collect();
    let logs = LogFiles::new(&expected.logs, profile.markers.clone());
    let barrier = sandbox.root.join(".sockdiag-fs-sync");
    let interest = fs::Interest {
        expected: socket_path.clone(),
        tailed: tailed.iter().cloned().zip(pending.iter().cloned()).collect(),
        logs: logs.interest(),
        barrier: barrier.clone(),
    };
    let watcher = fs::watch(&roots, interest, sink.clone())?;

    let mut obs = Observation::new(plan, id, config, &expected, sink.clone(), rx, who.clone());
    obs.logs = logs;
    obs.fs_barrier = barrier;
    // A holder that is there before the worker starts is the clearest sign of a busy address.
    let held = obs.tcp.as_mut().map(TcpWatch::before_spawn).unwrap_or_default();
    obs.record_all(held);
    // The test bind writes a (short-lived) file: only inside the sandbox.
    obs.may_write = socket_path.as_deref().and_then(Path::parent).is_some_and(|d| d.starts_with(&sandbox.root));
    obs.check_directory();
    if let (Some(db), Some(section)) = (&database, &profile.database) {
        obs.record(database::lookup(db, &section.session_query, plan.session));
    }
    // The watcher's first event, before the worker starts (see `fs::watch`).
    obs.sync_fs();
    let mut env: Vec<(String, String)> = vec![("HOME".into(), sandbox.home.display().to_string())];
    env.extend(expected.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let launch = Launch {
        program: &program,
        args: args.clone(),
        env,
        cwd: &sandbox.root,
        config,
        exit_after: plan.launcher_exit,
        output_files: output_files.clone(),
        marker: obs.marker.clone(),
        user: (config.user != RunAs::Invoker).then_some(who.uid),
    };
    let mut child = launcher::spawn(&launch, &sink)?;
    obs.launcher = Some(child.id() as i32);
    obs.record(EventKind::LauncherStarted { pid: child.id() as i32 });
    obs.argv = std::iter::once(program.display().to_string()).chain(args).collect();
    if let Some(reports) = child.stdout.take() {
        launcher::read_reports(reports, profile.markers.clone(), socket_path.clone(), sink.clone());
        obs.open_streams = 1;
    }
    obs.tails = tailed
        .into_iter()
        .zip(pending)
        .zip([Stream::Stdout, Stream::Stderr])
        .map(|((p, f), s)| Tail::new(p, f, s, profile.markers.clone()))
        .collect();

    obs.watch_until_done();
    if let Some(lag) = obs.sync_fs() {
        // How late the fs observer runs behind the kernel now: the probes widen their tolerance by it.
        obs.record(EventKind::FsLag { us: lag.as_micros() as u64 });
    }
    obs.stop_everything();
    obs.drain_output();
    drop(watcher);
    let mut lines: Vec<(Instant, EventKind)> = obs.tails.iter_mut().flat_map(Tail::read_to_end).collect();
    lines.extend(obs.logs.finish());
    obs.record_stamped(lines);
    reaper::forget(&obs.sessions, &obs.pids);
    let events = Timeline::new(std::mem::take(&mut obs.events));
    let outcome = Outcome::from_timeline(&events);
    if plan.keep_sandbox {
        eprintln!("sockdiag: run {id} sandbox kept at {}", sandbox.keep().display());
    }
    Ok(RunRecord { id, clock_origin_ns: sink.clock.origin_ns(), config, expected, outcome, events })
}

/// The run's endpoint with its placeholders resolved (`{port}` is the run's own port).
fn endpoint(profile: &Profile, vars: &Vars) -> anyhow::Result<Endpoint> {
    Ok(match &profile.endpoint {
        EndpointTemplate::Unix(path) => Endpoint::Unix { path: vars.expand_path(path) },
        EndpointTemplate::Tcp { host, port } => {
            let port = vars.expand(port);
            let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                UsageError(format!("profile {}: socket.address: the port {port:?} is not a port", profile.source))
            })?;
            Endpoint::Tcp { host: host.clone(), port }
        }
    })
}

/// How soon an observation calls for a fresh look at the worker.
enum Look {
    Now,
    Soon,
    Later,
}

/// The state of one run's observation.
struct Observation<'a> {
    plan: &'a Plan<'a>,
    config: RunConfig,
    /// The launcher's pid, and whether it still runs.
    launcher: Option<i32>,
    launcher_alive: bool,
    /// The worker's argv, for the spawn events.
    argv: Vec<String>,
    /// Sessions registered with the reaper (the launcher's, detached workers'), forgotten at the end.
    sessions: Vec<i32>,
    endpoint: Endpoint,
    /// The socket file clients expect (empty for a TCP endpoint).
    expected_path: String,
    env_keys: Vec<String>,
    marker: String,
    sink: Sink,
    rx: Receiver<Msg>,
    events: Vec<Event>,
    pids: Vec<i32>,
    /// The pids whose view of the world is recorded.
    viewed: HashSet<i32>,
    exited: HashSet<i32>,
    sockets: sockets::SocketTable,
    /// The TCP side (listeners, holders, health), for a TCP endpoint.
    tcp: Option<TcpWatch>,
    logs: LogFiles,
    pid_file: Option<PathBuf>,
    last_pid_file: Option<(Option<i32>, PidFileState)>,
    files_checked: HashSet<PathBuf>,
    /// SQLite files the tree opened whose session row is still to be looked up.
    databases_opened: Vec<PathBuf>,
    last_connect: Option<ConnectResult>,
    /// The latest repeat of a refused connect, recorded only when the result changes: with the first refusal it
    /// bounds how long the endpoint refused, whatever the delay before the next attempt.
    refused_again: Option<Event>,
    connected_at: Option<Instant>,
    /// Since when the worker serves: a client connected, or the kernel lists a listener of its tree anywhere.
    serving_since: Option<Instant>,
    last_change: Instant,
    open_streams: usize,
    tails: Vec<Tail>,
    fs_synced: bool,
    /// Where the fs observer's sync file goes.
    fs_barrier: PathBuf,
    /// sockdiag's own executable: a launcher's child that still runs it has not exec'd the worker yet.
    own_exe: Option<PathBuf>,
    /// Who the worker runs as: the directory checks are made as this user.
    who: Identity,
    /// Whether the socket's directory is the harness's to write in (the test bind).
    may_write: bool,
}

impl<'a> Observation<'a> {
    fn new(
        plan: &'a Plan<'a>,
        id: usize,
        config: RunConfig,
        expected: &Expected,
        sink: Sink,
        rx: Receiver<Msg>,
        who: Identity,
    ) -> Self {
        let mut env_keys: Vec<String> = expected.env.keys().cloned().collect();
        env_keys.push("HOME".into());
        Observation {
            plan,
            config,
            launcher: None,
            launcher_alive: true,
            argv: Vec::new(),
            sessions: Vec::new(),
            endpoint: expected.endpoint.clone(),
            expected_path: expected.socket_path().unwrap_or_default().to_string(),
            env_keys,
            marker: format!("{}-{id}", plan.token),
            sink,
            rx,
            events: Vec::new(),
            pids: Vec::new(),
            viewed: HashSet::new(),
            exited: HashSet::new(),
            sockets: sockets::SocketTable::default(),
            tcp: TcpWatch::new(&expected.endpoint, plan.profile.health.clone()),
            logs: LogFiles::new(&[], Default::default()),
            pid_file: expected.pid_file.as_ref().map(PathBuf::from),
            last_pid_file: None,
            files_checked: HashSet::new(),
            databases_opened: Vec::new(),
            last_connect: None,
            refused_again: None,
            connected_at: None,
            serving_since: None,
            last_change: Instant::now(),
            open_streams: 0,
            tails: Vec::new(),
            fs_synced: false,
            fs_barrier: PathBuf::new(),
            own_exe: std::env::current_exe().ok(),
            who,
            may_write: false,
        }
    }

    fn record(&mut self, kind: EventKind) {
        self.events.push(self.sink.clock.stamp(kind));
    }

    fn record_stamped(&mut self, lines: Vec<(Instant, EventKind)>) {
        for (at, kind) in lines {
            self.events.push(self.sink.clock.stamp_at(at, kind));
        }
    }

    fn record_all(&mut self, kinds: Vec<EventKind>) {
        for kind in kinds {
            self.record(kind);
        }
    }

    /// Workers (and their descendants) still running.
    fn live_workers(&self) -> Vec<i32> {
        self.pids.iter().copied().filter(|p| !self.exited.contains(p)).collect()
    }

    /// Every process of the run still running: the workers and the launcher.
    fn live_pids(&self) -> Vec<i32> {
        let mut live = self.live_workers();
        live.extend(self.launcher.filter(|_| self.launcher_alive));
        live
    }

    /// True while a launcher that is configured to exit has not yet: the run must see what follows its exit.
    fn launcher_exit_pending(&self) -> bool {
        self.config.lifecycle == Lifecycle::Exits && self.launcher_alive
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

    /// Takes a process into the run: the reaper routes its exit here, and what it sees is recorded.
    fn adopt(&mut self, pid: i32) {
        if self.pids.contains(&pid) {
            return;
        }
        self.pids.push(pid);
        reaper::adopt(pid, &self.sink);
        self.view(pid);
    }

    /// Records what a process sees, once. Right after exec the kernel has not yet set up the new environment
    /// (the launcher learns of the exec before that), so a first look may find nothing to trust: `look` tries
    /// again for the spawned worker.
    fn view(&mut self, pid: i32) {
        if self.viewed.contains(&pid) {
            return;
        }
        if let Some(view) = worker_view::view(pid, &self.env_keys, Some((marker::RUN_MARKER, &self.marker))) {
            self.viewed.insert(pid);
            self.record(view);
        }
        if let Some(ns) = namespaces::compare(pid, &self.expected_path).filter(|_| !self.expected_path.is_empty()) {
            self.record(ns);
        }
    }

    /// The socket's directory as the worker's user meets it, with a test bind there.
    fn check_directory(&mut self) {
        if self.expected_path.is_empty() {
            return;
        }
        let dir = Path::new(&self.expected_path).parent().unwrap_or(Path::new("/")).to_path_buf();
        let checked = directory::check(&dir, &self.who, self.may_write);
        self.record(checked);
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
        let table = match kernel_sockets::dump() {
            Ok(t) => t,
            Err(e) => return self.record(EventKind::Note { text: format!("sock_diag unavailable: {e}") }),
        };
        let listeners = self.sockets.listeners();
        let files = kernel_sockets::listener_files(&listeners, &table);
        self.record_all(files);
        if fs::file_type(Path::new(&self.expected_path)) == sockdiag_probes::FileType::Socket {
            if let Some(held) = kernel_sockets::path_holder(Path::new(&self.expected_path), &table, &self.live_pids()) {
                self.record(held);
            }
        }
    }

    /// The main loop: react to messages; look at /proc when something happened or the backoff timer fires.
    fn watch_until_done(&mut self) {
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
    fn handle(&mut self, msg: Msg) -> Look {
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

    /// Processes of the run that no tree walk found (a daemon whose parent is gone), by the run's env marker.
    fn find_stragglers(&mut self) {
        for pid in marker::processes_of_run(&self.marker) {
            if !self.exited.contains(&pid) && Some(pid) != self.launcher {
                self.adopt(pid);
            }
        }
    }

    /// One look at the worker: its tree, its sockets, the databases it holds, and the expected path.
    fn look(&mut self) {
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
    fn take(&mut self, found: Found) {
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
    fn check_pid_file(&mut self, force: bool) {
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

    /// Waits (with a deadline) until the fs observer has delivered everything that happened so far: a file the
    /// harness creates in a watched directory comes back after every earlier event (one inotify queue). Returns
    /// how long that took.
    fn sync_fs(&mut self) -> Option<Duration> {
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

    /// The session row in every database the tree was seen holding open.
    fn look_up_sessions(&mut self) {
        let Some(section) = &self.plan.profile.database else { return };
        for path in std::mem::take(&mut self.databases_opened) {
            let lookup = database::lookup(&path, &section.session_query, self.plan.session);
            self.record(lookup);
        }
    }

    /// Connects to the expected path; records the attempt when its result differs from the last one.
    fn try_connect(&mut self) -> ConnectResult {
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

    /// Records the end state, asks the worker to stop (the profile's message, then SIGTERM, then SIGKILL) and
    /// makes sure nothing of the run is left.
    /// Stops the worker politely, then makes sure nothing carrying this run's marker is left: a process forked
    /// while the others were being stopped is found by a fresh look, killed, and waited for (on pidfds).
    fn stop_everything(&mut self) {
        self.stop_politely();
        for _ in 0..3 {
            let left = marker::processes_of_run(&self.marker);
            if left.is_empty() {
                return;
            }
            for &pid in &left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            super::interrupt::wait_gone(&left, TERM_GRACE);
        }
    }

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
    fn drain_output(&mut self) {
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
