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
use crossbeam_channel::Receiver;
use sockdiag_probes::{
    ConnectResult, Endpoint, Event, EventKind, Expected, HealthCheck, Lifecycle, Outcome, PidFileState, RunAs,
    RunConfig, RunRecord, StdioMode, Stream, Timeline,
};

use super::launcher::{self, Launch};
use super::sandbox::Sandbox;
use super::tcp_watch::TcpWatch;
use super::{marker, port, reaper, runtime, Plan};
use crate::error::UsageError;
use crate::identity::Identity;
use crate::observers::logs::LogFiles;
use crate::observers::output::Tail;
use crate::observers::{database, fs, namespaces, sockets, worker_view, Clock, Msg, Sink};
use crate::profile::{EndpointTemplate, Profile, Vars};

mod look;
mod stop;
mod watch;

/// How long output may keep flowing after the last process exited (a descendant may hold the pipe).
const DRAIN: Duration = Duration::from_millis(100);

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
    let expected = expected(plan, &vars, &sandbox, database.as_deref(), &argv)?;
    let output_files = (sandbox.root.join("stdout.log"), sandbox.root.join("stderr.log"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let sink = Sink { clock: Clock::start(), tx };
    let socket_path = expected.socket_path().map(PathBuf::from);
    let roots = watched_roots(&sandbox.root, socket_path.as_deref());
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

/// What the run expects of the worker, with the sandbox's placeholders resolved.
fn expected(
    plan: &Plan,
    vars: &Vars,
    sandbox: &Sandbox,
    database: Option<&Path>,
    argv: &[String],
) -> anyhow::Result<Expected> {
    let profile = plan.profile;
    Ok(Expected {
        session: plan.session,
        endpoint: endpoint(profile, vars)?,
        env: profile.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))).collect(),
        database: database.map(|d| d.display().to_string()),
        sandbox: Some(sandbox.root.display().to_string()),
        health: profile
            .health
            .as_ref()
            .map(|h| HealthCheck { get: h.get.clone(), ready: h.ready.as_ref().map(|r| r.as_str().to_string()) }),
        logs: profile.observe.logs.iter().map(|g| vars.expand(g)).collect(),
        pid_file: profile.observe.pid_file.as_ref().map(|p| vars.expand(p)),
        runtimes: plan.runtimes.clone(),
        markers: profile.markers.defined(),
        shebang: runtime::shebang(argv),
    })
}

/// The sandbox (the worker's cwd, home and data), and the socket's directory when it lies outside.
fn watched_roots(sandbox_root: &Path, socket_path: Option<&Path>) -> Vec<PathBuf> {
    let outside = socket_path.and_then(Path::parent).filter(|p| !p.starts_with(sandbox_root) && p.is_dir());
    std::iter::once(sandbox_root.to_path_buf()).chain(outside.map(Path::to_path_buf)).collect()
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
}
