//! One run, event-driven: resolve the spec, arm the watchers, spawn, then fold every observation into the run's
//! state until the worker's tree has exited, the socket has been reachable and quiet for `settle_ms`, or
//! `window_ms` has passed. Observer threads (sources) send messages on one channel; `RunState` applies each and
//! returns the actions it wants; `Run` (the executor, here and in `watch`, `look`, `stop`) carries them out and
//! feeds what it finds back to the state. Every wait has a deadline.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use sockdiag_probes::{EventKind, Outcome, RunAs, RunConfig, RunRecord, Stream, Timeline};

use super::cgroup::Cgroup;
use super::escalation;
use super::launcher::{self, Launch};
use super::sandbox::Sandbox;
use super::tcp_watch::TcpWatch;
use super::{marker, Plan};
use crate::observers::logs::LogFiles;
use crate::observers::output::Tail;
use crate::observers::{database, fs, namespaces, sockets, worker_view, Clock, Msg, Sink};

mod look;
mod spec;
mod state;
mod stop;
mod watch;

pub(crate) use spec::expected_endpoint;
use spec::RunSpec;
use state::{Action, Input, RunState};

/// How long output may keep flowing after the last process exited (a descendant may hold the pipe).
const DRAIN: Duration = Duration::from_millis(100);

pub(super) fn run_one(plan: &Plan, id: usize, config: RunConfig) -> anyhow::Result<RunRecord> {
    let mut sandbox = Sandbox::create(id, &plan.supervisor.temp_dirs)?;
    let spec = RunSpec::resolve(plan, id, config, &sandbox)?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let sink = Sink { clock: Clock::start(), tx };
    let pending: Vec<Arc<AtomicBool>> = spec.tailed.iter().map(|_| Arc::default()).collect();
    let logs = LogFiles::new(&spec.expected.logs, spec.markers.clone(), Some(spec.sandbox.clone()));
    let interest = fs::Interest {
        expected: spec.socket_path.clone(),
        tailed: spec.tailed.iter().cloned().zip(pending.iter().cloned()).collect(),
        logs: logs.interest(),
        barrier: spec.fs_barrier.clone(),
    };
    let watcher = fs::watch(&spec.watched, interest, sink.clone())?;

    let mut run = Run::new(plan, spec, sink.clone(), rx, logs);
    run.cgroup = plan.supervisor.run_cgroup(id);
    // A holder that is there before the worker starts is the clearest sign of a busy address.
    let held = run.tcp.as_mut().map(TcpWatch::before_spawn).unwrap_or_default();
    run.record_all(held);
    run.check_directory();
    if let (Some(db), Some(query)) = (&run.spec.expected.database, &run.spec.session_query) {
        run.record(database::lookup(std::path::Path::new(db), query, run.spec.session));
    }
    // The watcher's first event, before the worker starts (see `fs::watch`).
    run.sync_fs();
    let _launcher = run.start(pending)?;

    run.watch_until_done();
    if let Some(lag) = run.sync_fs() {
        // How late the fs observer runs behind the kernel now: the probes widen their tolerance by it.
        run.record(EventKind::FsLag { us: lag.as_micros() as u64 });
    }
    run.stop_everything();
    run.drain_output();
    drop(watcher);
    let mut lines: Vec<(Instant, EventKind)> = run.tails.iter_mut().flat_map(Tail::read_to_end).collect();
    lines.extend(run.logs.finish());
    run.apply(Input::Stamped(lines));
    plan.supervisor.reaper.forget(run.state.sessions(), run.state.pids());
    if let Some(cgroup) = &run.cgroup {
        cgroup.remove();
    }
    let Run { spec, state, .. } = run;
    let events = Timeline::new(state.into_timeline());
    let outcome = Outcome::from_timeline(&events);
    if plan.keep_sandbox {
        eprintln!("sockdiag: run {id} sandbox kept at {}", sandbox.keep().display());
    }
    Ok(RunRecord { id, clock_origin_ns: sink.clock.origin_ns(), config, expected: spec.expected, outcome, events })
}

/// The executor of one run: what carrying out the state's actions needs (the observers a look reads, the
/// channel), beside the state itself.
struct Run<'a> {
    plan: &'a Plan<'a>,
    spec: RunSpec,
    state: RunState,
    sink: Sink,
    rx: Receiver<Msg>,
    /// The Unix sockets of the worker's tree.
    sockets: sockets::SocketTable,
    /// The TCP side (listeners, holders, health), for a TCP endpoint.
    tcp: Option<TcpWatch>,
    logs: LogFiles,
    tails: Vec<Tail>,
    /// The pids whose view of the world is recorded.
    viewed: HashSet<i32>,
    files_checked: HashSet<PathBuf>,
    /// SQLite files the tree opened whose session row is still to be looked up.
    databases_opened: Vec<PathBuf>,
    /// sockdiag's own executable: a launcher's child that still runs it has not exec'd the worker yet.
    own_exe: Option<PathBuf>,
    /// The run's cgroup, where the invocation has one: every process of the run, whatever it did.
    cgroup: Option<Cgroup>,
    /// A pidfd per adopted process, opened when it was taken into the run: it tells of the exit of a process whose
    /// own parent reaps it, which no report brings.
    pidfds: HashMap<i32, OwnedFd>,
}

impl<'a> Run<'a> {
    fn new(plan: &'a Plan<'a>, spec: RunSpec, sink: Sink, rx: Receiver<Msg>, logs: LogFiles) -> Self {
        let state =
            RunState::new(spec.config, sink.clock, Instant::now(), spec.window, spec.settle, spec.socket_path.clone())
                .watching_whole_window(spec.whole_window);
        Run {
            plan,
            tcp: TcpWatch::new(&spec.expected.endpoint, spec.health.clone()),
            spec,
            state,
            sink,
            rx,
            sockets: sockets::SocketTable::default(),
            logs,
            tails: Vec::new(),
            viewed: HashSet::new(),
            files_checked: HashSet::new(),
            databases_opened: Vec::new(),
            own_exe: std::env::current_exe().ok(),
            cgroup: None,
            pidfds: HashMap::new(),
        }
    }

    /// Starts the launcher, the reader of its reports and the tails of the worker's output files.
    fn start(&mut self, pending: Vec<Arc<AtomicBool>>) -> anyhow::Result<std::process::Child> {
        let spec = &self.spec;
        let launch = Launch {
            program: &spec.program,
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: &spec.cwd,
            config: spec.config,
            exit_after: self.plan.launcher_exit,
            output_files: spec.output_files.clone(),
            marker: spec.marker.clone(),
            user: (spec.config.user != RunAs::Invoker).then_some(spec.who.uid),
            cgroup: self.cgroup.as_ref().map(|c| c.dir.as_path()),
        };
        let mut child = launcher::spawn(&launch, &self.sink, &self.plan.supervisor.reaper)?;
        let reports = child.stdout.take();
        let has_reports = reports.is_some();
        if let Some(reports) = reports {
            let read =
                launcher::read_reports(reports, spec.markers.clone(), spec.socket_path.clone(), self.sink.clone());
            if let Err(e) = read {
                // Unwatched, the launcher must not go on; a worker it started already carries the run marker.
                let _ = child.kill();
                return Err(anyhow::anyhow!("cannot read the launcher's reports: {e}"));
            }
        }
        self.tails = spec
            .tailed
            .iter()
            .cloned()
            .zip(pending)
            .zip([Stream::Stdout, Stream::Stderr])
            .map(|((p, f), s)| Tail::new(p, Some(spec.sandbox.clone()), f, s, spec.markers.clone()))
            .collect();
        let argv = std::iter::once(spec.program.display().to_string()).chain(spec.args.iter().cloned()).collect();
        self.apply(Input::LauncherStarted { pid: child.id() as i32, argv });
        if !has_reports {
            self.apply(Input::Source(Msg::Closed));
        }
        Ok(child)
    }

    /// Applies an input to the state and carries out the actions it calls for.
    fn apply(&mut self, input: Input) {
        for action in self.state.apply(input, Instant::now()) {
            self.perform(action);
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Adopt { pid, session } => {
                if session {
                    self.plan.supervisor.reaper.adopt_group(pid, &self.sink);
                }
                self.plan.supervisor.reaper.adopt(pid, &self.sink);
                match escalation::pidfd_open(pid) {
                    Some(fd) => {
                        self.pidfds.insert(pid, fd);
                        self.view(pid);
                    }
                    // Already reaped (a zombie still has a pidfd): by us or the launcher, whose report of the exit
                    // is on its way, or by its own parent, whose is not.
                    None => self.apply(Input::Vanished(pid)),
                }
            }
            Action::Forget(pid) => {
                let mut closed = self.sockets.forget_pid(pid);
                closed.extend(self.tcp.as_mut().map(|t| t.forget_pid(pid)).unwrap_or_default());
                self.record_all(closed);
            }
            Action::FindStragglers => self.find_stragglers(),
            Action::CheckFile(path) => self.record(fs::file_check(&path)),
            Action::ReadGrown(path) => {
                let mut lines = self.tails.iter_mut().find(|t| t.path == path).map(Tail::read_new).unwrap_or_default();
                lines.extend(self.logs.read(&path));
                self.apply(Input::Lines(lines));
            }
        }
    }

    /// Records a fact observed now.
    fn record(&mut self, kind: EventKind) {
        self.apply(Input::Observed { at: Instant::now(), kind });
    }

    fn record_all(&mut self, kinds: Vec<EventKind>) {
        for kind in kinds {
            self.record(kind);
        }
    }

    /// Takes a process into the run, once: the reaper routes its exit here, and what it sees is recorded.
    fn adopt(&mut self, pid: i32) {
        if let Some(action) = self.state.adopt(pid, false) {
            self.perform(action);
        }
    }

    /// Processes of the run that no tree walk found (a daemon whose parent is gone): in the run's cgroup, or
    /// carrying the run's env marker.
    fn find_stragglers(&mut self) {
        let marked = || marker::processes_of_run(&self.spec.marker);
        let found = escalation::Members { marked: &marked, cgroup: self.cgroup.as_ref(), hurry: None }.find();
        for pid in found {
            if !self.state.has_exited(pid) && Some(pid) != self.state.launcher() {
                self.adopt(pid);
            }
        }
    }

    /// Records what a process sees, once. Right after exec the kernel has not yet set up the new environment
    /// (the launcher learns of the exec before that), so a first look may find nothing to trust: `look` tries
    /// again for the spawned worker.
    fn view(&mut self, pid: i32) {
        if self.viewed.contains(&pid) {
            return;
        }
        if let Some(view) = worker_view::view(pid, &self.spec.env_keys, Some((marker::RUN_MARKER, &self.spec.marker))) {
            self.viewed.insert(pid);
            self.record(view);
        }
        let expected_path = self.spec.expected_path();
        if let Some(ns) = namespaces::compare(pid, expected_path).filter(|_| !expected_path.is_empty()) {
            self.record(ns);
        }
    }
}
