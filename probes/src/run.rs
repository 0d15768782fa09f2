//! A run: one configuration of the worker, what was expected of it, and what was recorded.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::timeline::{ConnectResult, EventKind, ExitStatus, Marker, Timeline};

/// How the launcher starts the worker, as `child_process.spawn`'s `detached` option does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpawnMode {
    /// Same session and process group as the launcher.
    Attached,
    /// A new session (setsid): no controlling terminal, its own process group.
    Detached,
}

/// What the launcher does once the worker is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// The launcher waits for its workers, like a replay script that keeps running.
    Stays,
    /// The launcher exits after spawning (after `--launcher-exit-ms`), like a hook that returns.
    Exits,
}

impl Lifecycle {
    fn stays() -> Lifecycle {
        Lifecycle::Stays
    }
}

fn one() -> u8 {
    1
}

/// Where the worker's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdioMode {
    /// `/dev/null`, as `stdio: 'ignore'`.
    Ignore,
    /// A pipe that the launcher reads for as long as it lives (`pipe` in reports saved before the launcher).
    #[serde(alias = "pipe", alias = "pipe-drained")]
    PipeDrained,
    /// A pipe that the launcher holds but never reads: the worker blocks once the pipe buffer is full.
    #[serde(alias = "pipe-undrained")]
    PipeUndrained,
    /// A file in the sandbox.
    File,
}

impl StdioMode {
    /// True for both pipe modes.
    pub fn is_pipe(self) -> bool {
        matches!(self, StdioMode::PipeDrained | StdioMode::PipeUndrained)
    }
}

/// Whose user the worker runs as: the permission dimension, present when `--user` names one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunAs {
    /// The user sockdiag was invoked as.
    #[default]
    Invoker,
    /// Another user (`--user`), by uid.
    Uid(u32),
}

impl RunAs {
    /// True for the invoking user (the default, left out of JSON).
    pub fn is_invoker(&self) -> bool {
        *self == RunAs::Invoker
    }
}

/// One axis of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Spawn,
    Lifecycle,
    Stdio,
    Launches,
    /// The runtime put in place of the command's (the profile's `runtimes`): its values depend on what is installed.
    Runtime,
}

impl Dimension {
    /// Every dimension, in matrix order.
    pub const ALL: [Dimension; 5] =
        [Dimension::Spawn, Dimension::Lifecycle, Dimension::Stdio, Dimension::Launches, Dimension::Runtime];

    /// The name used on the command line (`--vary spawn,stdio`).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Spawn => "spawn",
            Dimension::Lifecycle => "lifecycle",
            Dimension::Stdio => "stdio",
            Dimension::Launches => "launches",
            Dimension::Runtime => "runtime",
        }
    }
}

/// Which JavaScript runtime runs the worker: the command as the profile writes it, or a runtime put in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// The profile's command, unchanged (whatever its argv[0] or its script's shebang runs).
    #[default]
    AsWritten,
    Node,
    Bun,
}

impl Runtime {
    /// The runtimes a profile may name, with the program name each is found by on PATH.
    pub const SUBSTITUTES: [(Runtime, &'static str); 2] = [(Runtime::Node, "node"), (Runtime::Bun, "bun")];

    /// The program name (`node`, `bun`), or `as written`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::AsWritten => "as written",
            Runtime::Node => "node",
            Runtime::Bun => "bun",
        }
    }

    /// The runtime a program name or executable path belongs to: `/usr/bin/node`, `bun.exe`, `node20`...
    pub fn of_program(path: &str) -> Option<Runtime> {
        let file = path.rsplit('/').next().unwrap_or(path);
        let stem = file.strip_suffix(".exe").unwrap_or(file);
        let versioned = |name: &str| {
            stem.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        Runtime::SUBSTITUTES.iter().find(|(_, name)| versioned(name)).map(|(r, _)| *r)
    }
}

/// One point of the matrix. The first configuration of every matrix is the production one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunConfig {
    pub spawn: SpawnMode,
    /// Reports saved before the launcher had none: the harness itself launched, and stayed.
    #[serde(default = "Lifecycle::stays")]
    pub lifecycle: Lifecycle,
    pub stdio: StdioMode,
    /// How many workers the launcher starts at once for the same session (1 or 2).
    #[serde(default = "one")]
    pub launches: u8,
    /// Older saved reports have no runtime: they ran the command as written.
    #[serde(default)]
    pub runtime: Runtime,
    /// Written only for another user; absent from reports saved before the permission dimension existed.
    #[serde(default, skip_serializing_if = "RunAs::is_invoker")]
    pub user: RunAs,
}

impl RunConfig {
    /// The founding document's production configuration: a hook that spawns one worker detached, stdio ignored,
    /// and returns; the command as written.
    pub const PRODUCTION: RunConfig = RunConfig {
        spawn: SpawnMode::Detached,
        lifecycle: Lifecycle::Exits,
        stdio: StdioMode::Ignore,
        launches: 1,
        runtime: Runtime::AsWritten,
        user: RunAs::Invoker,
    };

    /// True when this configuration throws the worker's output away.
    pub fn discards_output(&self) -> bool {
        self.stdio == StdioMode::Ignore
    }

    /// The dimensions in which two configurations differ.
    pub fn differences(&self, other: &RunConfig) -> Vec<Dimension> {
        Dimension::ALL
            .into_iter()
            .filter(|d| match d {
                Dimension::Spawn => self.spawn != other.spawn,
                Dimension::Lifecycle => self.lifecycle != other.lifecycle,
                Dimension::Stdio => self.stdio != other.stdio,
                Dimension::Launches => self.launches != other.launches,
                Dimension::Runtime => self.runtime != other.runtime,
            })
            .collect()
    }

    /// True when the two configurations differ in `dim` and in nothing else (the user included).
    pub fn differs_only_in(&self, other: &RunConfig, dim: Dimension) -> bool {
        self.differences(other) == [dim] && self.user == other.user
    }
}

impl RunConfig {
    /// How this configuration differs from `base`, as people say it: `attached spawn`, `stdio pipe-undrained and
    /// 2 launches`, `under bun`; `the same` when it does not.
    pub fn change_from(&self, base: &RunConfig) -> String {
        let mut changes: Vec<String> = self
            .differences(base)
            .into_iter()
            .map(|d| match d {
                Dimension::Spawn => {
                    format!("{} spawn", if self.spawn == SpawnMode::Attached { "attached" } else { "detached" })
                }
                Dimension::Lifecycle => {
                    if self.lifecycle == Lifecycle::Stays { "launcher stays" } else { "launcher exits" }.to_string()
                }
                Dimension::Stdio => format!("stdio {}", self.stdio_name()),
                Dimension::Launches => {
                    if self.launches == 1 {
                        "1 launch".to_string()
                    } else {
                        format!("{} launches", self.launches)
                    }
                }
                Dimension::Runtime => match self.runtime {
                    Runtime::AsWritten => "the runtime as written".to_string(),
                    other => format!("under {}", other.name()),
                },
            })
            .collect();
        match self.user {
            _ if self.user == base.user => {}
            RunAs::Invoker => changes.push("as the invoking user".to_string()),
            RunAs::Uid(uid) => changes.push(format!("as uid {uid}")),
        }
        if changes.is_empty() {
            return "the same".to_string();
        }
        changes.join(" and ")
    }

    fn stdio_name(&self) -> &'static str {
        match self.stdio {
            StdioMode::Ignore => "ignore",
            StdioMode::PipeDrained => "pipe-drained",
            StdioMode::PipeUndrained => "pipe-undrained",
            StdioMode::File => "file",
        }
    }
}

impl fmt::Display for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spawn = match self.spawn {
            SpawnMode::Attached => "attached",
            SpawnMode::Detached => "detached",
        };
        let lifecycle = match self.lifecycle {
            Lifecycle::Stays => "launcher stays",
            Lifecycle::Exits => "launcher exits",
        };
        let stdio = format!("stdio {}", self.stdio_name());
        let launches = if self.launches == 1 { "1 launch".to_string() } else { format!("{} launches", self.launches) };
        write!(f, "{spawn}, {lifecycle}, {stdio}, {launches}")?;
        match self.runtime {
            Runtime::AsWritten => {}
            other => write!(f, ", under {}", other.name())?,
        }
        match self.user {
            RunAs::Invoker => Ok(()),
            RunAs::Uid(uid) => write!(f, ", as uid {uid}"),
        }
    }
}

/// Where clients look for the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// A Unix socket file.
    Unix { path: String },
    /// A TCP address (an HTTP worker on a loopback port, typically).
    Tcp { host: String, port: u16 },
}

impl Endpoint {
    /// What a client dials, as people write it: the socket path, or `HOST:PORT` (`[::1]:PORT` for IPv6).
    pub fn target(&self) -> String {
        match self {
            Endpoint::Unix { path } => path.clone(),
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

/// The profile's HTTP health check (`[health]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The path requested with GET, e.g. `/api/health`.
    pub get: String,
    /// The regex the body must match to count as ready; absent: any 2xx is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
}

/// What the profile says the worker should do, resolved for this run's sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Expected {
    pub session: u64,
    pub endpoint: Endpoint,
    /// The environment the profile gives the worker (data-dir variables and the like).
    pub env: BTreeMap<String, String>,
    /// The database the profile names, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The run's private directory, so that reports can print its paths as `<sandbox>/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// The HTTP health check, if the profile defines one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// The log file patterns whose lines were followed (`[observe] logs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// The pid file the worker is expected to keep (`[observe] pid_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// The runtimes the profile asks to compare, and where each was found (none: not installed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<RuntimeInstall>,
    /// The output markers the profile defines: a marker it does not define can never be seen.
    #[serde(default)]
    pub markers: Vec<Marker>,
    /// The interpreter the worker's script names in its `#!` line, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shebang: Option<Shebang>,
    /// The profile's window (ms): how long the run was to be watched at most. None in recordings made before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
    /// This run was watched for the whole window (the production configuration never stops as settled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_window: bool,
}

/// A runtime the profile names, and the program found for it on PATH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInstall {
    pub runtime: Runtime,
    /// None when the runtime is not installed: runs that need it did not happen.
    pub path: Option<String>,
}

/// The `#!` line of the script the command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shebang {
    pub script: String,
    /// The interpreter's name, after `env` and its options: `node` for `#!/usr/bin/env -S node --flag`.
    pub interpreter: String,
}

impl Expected {
    /// The session at `endpoint`, and nothing else expected yet.
    pub fn at(session: u64, endpoint: Endpoint) -> Expected {
        Expected {
            session,
            endpoint,
            env: BTreeMap::new(),
            database: None,
            sandbox: None,
            health: None,
            logs: vec![],
            pid_file: None,
            runtimes: vec![],
            markers: vec![],
            shebang: None,
            window_ms: None,
            whole_window: false,
        }
    }

    /// What a hand-built run of the probes' unit tests expects: session 28 at `endpoint`, nothing else.
    #[cfg(test)]
    pub(crate) fn for_tests(endpoint: Endpoint) -> Expected {
        Expected::at(28, endpoint)
    }

    /// The expected socket file, when the worker serves a Unix socket.
    pub fn socket_path(&self) -> Option<&str> {
        match &self.endpoint {
            Endpoint::Unix { path } => Some(path),
            Endpoint::Tcp { .. } => None,
        }
    }

    /// The expected host and port, when the worker serves TCP.
    pub fn tcp(&self) -> Option<(&str, u16)> {
        match &self.endpoint {
            Endpoint::Tcp { host, port } => Some((host, *port)),
            Endpoint::Unix { .. } => None,
        }
    }
}

/// Everything recorded about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: usize,
    /// CLOCK_MONOTONIC (ns) at `t_us = 0`: lines that carry the worker's own monotonic stamps can be compared.
    #[serde(default)]
    pub clock_origin_ns: u64,
    pub config: RunConfig,
    pub expected: Expected,
    pub outcome: Outcome,
    pub events: Timeline,
}

/// How a run ended, from the client's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// A client connected at the expected endpoint at least once.
    pub reachable: bool,
    /// The socket was still reachable when the observation ended (or the worker shut down cleanly on request).
    pub healthy: bool,
    /// The worker's exit, if it ended on its own before the harness stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    /// One line for people: `healthy`, `exited 1 after being reachable`...
    pub label: String,
}

impl Outcome {
    /// Reads the outcome off a finished timeline. The exit that counts is that of a process that listened (with
    /// two launches, the worker that lost the race may leave on purpose), or of a spawned worker if none listened.
    pub fn from_timeline(events: &Timeline) -> Outcome {
        let reachable =
            events.iter().any(|e| matches!(e.kind, EventKind::Connect { result: ConnectResult::Connected, .. }));
        let stop = events.harness_stop_us();
        let mut servers: Vec<i32> = events.listeners().iter().map(|l| l.1).collect();
        servers.extend(events.tcp_listeners().iter().map(|l| l.1));
        // A listening socket is shared by every process that inherited it: each one seen holding it (a daemon's
        // forked server, found after its parent; the holder of the expected path at the end) is a server.
        servers.extend(
            events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::PathHolder { holder: Some(h), .. } if h.listening => Some(h.pids.clone()),
                    EventKind::SocketBound { pid, listening: true, .. } => Some(vec![*pid]),
                    _ => None,
                })
                .flatten(),
        );
        let live_at_end: Vec<i32> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::EndState { live_pids, .. } => Some(live_pids.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        // A listener still alive at the end serves the endpoint: an exit of another one (a daemon's first process
        // that forked the server, the loser of two launches) handed it over and is not the worker's end.
        let handed_over = servers.iter().any(|pid| live_at_end.contains(pid));
        let workers = if servers.is_empty() { events.spawned_pids() } else { servers };
        let exit =
            events.own_exits().find(|(_, pid, _)| workers.contains(pid) && !handed_over).map(|(_, _, status)| status);
        let alive_at_end = !live_at_end.is_empty();
        let final_connect_ok = events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::Connect { result, .. } if stop.is_none_or(|s| e.t_us <= s) => {
                    Some(*result == ConnectResult::Connected)
                }
                _ => None,
            })
            .unwrap_or(false);
        // With a health check, serving means answering it "ready" (the last answer before the stop counts).
        let health_ok = events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::Health { ready, .. } if stop.is_none_or(|s| e.t_us <= s) => Some(*ready),
                _ => None,
            })
            .unwrap_or(true);
        let healthy = reachable && final_connect_ok && health_ok && exit.is_none() && (alive_at_end || stop.is_some());
        let label = match (healthy, reachable, exit) {
            (true, _, _) => "healthy".to_string(),
            (false, true, None) if !health_ok => "reachable, health not ready".to_string(),
            (false, true, Some(s)) => format!("reachable, then {s}"),
            (false, false, Some(s)) => format!("{s}, never reachable"),
            (false, true, None) => "reachable, then unreachable".to_string(),
            (false, false, None) => "alive, never reachable".to_string(),
        };
        Outcome { reachable, healthy, exit, label }
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::{run, SOCKET};
    use crate::{ConnectResult, EventKind, ExitStatus, FileType, Holder, RunConfig};

    /// A daemon's first process binds, forks and exits 0; the scan saw only it bind, the end saw its child hold the
    /// listener: the parent's exit is a handover, not the worker's end.
    #[test]
    fn a_forked_server_found_only_at_the_end_took_the_listener_over() {
        let connect = |t| {
            (
                t,
                EventKind::Connect {
                    path: SOCKET.into(),
                    result: ConnectResult::Connected,
                    detail: "connected".into(),
                    peer: Some(10),
                },
            )
        };
        let holder = Holder { socket_inode: 7, listening: true, pids: vec![11] };
        let r = run(
            1,
            RunConfig::PRODUCTION,
            vec![
                (10, EventKind::SocketBound { pid: 10, inode: 7, path: SOCKET.into(), listening: true }),
                connect(20),
                (30, EventKind::Exited { pid: 10, status: ExitStatus::Code(0) }),
                connect(200),
                (210, EventKind::PathHolder { path: SOCKET.into(), file_inode: 3, holder: Some(holder) }),
                (
                    211,
                    EventKind::EndState { path: SOCKET.into(), file_type: Some(FileType::Socket), live_pids: vec![11] },
                ),
                (212, EventKind::HarnessStop { how: "SIGTERM to pids [11]".into() }),
            ],
        );
        assert!(run_healthy(&r), "{:?}", r.outcome);
    }

    fn run_healthy(r: &crate::RunRecord) -> bool {
        r.outcome.healthy && r.outcome.exit.is_none()
    }
}
