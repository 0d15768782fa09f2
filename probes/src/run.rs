//! A run: one configuration of the worker, what was expected of it, and what was recorded.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::timeline::{ConnectResult, EventKind, ExitStatus, Timeline};

/// How the launcher starts the worker, as `child_process.spawn`'s `detached` option does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpawnMode {
    /// Same session and process group as the launcher.
    Attached,
    /// A new session (setsid): no controlling terminal, its own process group.
    Detached,
}

/// Where the worker's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdioMode {
    /// `/dev/null`, as `stdio: 'ignore'`.
    Ignore,
    /// A pipe that the launcher reads.
    Pipe,
    /// A file in the sandbox.
    File,
}

/// One point of the matrix. The first configuration of every matrix is the production one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunConfig {
    pub spawn: SpawnMode,
    pub stdio: StdioMode,
}

impl RunConfig {
    /// The founding document's production configuration: detached, stdio ignored.
    pub const PRODUCTION: RunConfig = RunConfig { spawn: SpawnMode::Detached, stdio: StdioMode::Ignore };

    /// True when this configuration throws the worker's output away.
    pub fn discards_output(&self) -> bool {
        self.stdio == StdioMode::Ignore
    }
}

impl fmt::Display for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spawn = match self.spawn {
            SpawnMode::Attached => "attached",
            SpawnMode::Detached => "detached",
        };
        let stdio = match self.stdio {
            StdioMode::Ignore => "stdio ignore",
            StdioMode::Pipe => "stdio pipe",
            StdioMode::File => "stdio file",
        };
        write!(f, "{spawn}, {stdio}")
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
}

impl Expected {
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
    /// Reads the outcome off a finished timeline.
    pub fn from_timeline(events: &Timeline, root_pid: Option<i32>) -> Outcome {
        let reachable =
            events.iter().any(|e| matches!(e.kind, EventKind::Connect { result: ConnectResult::Connected, .. }));
        let stop = events.harness_stop_us();
        let exit = events.iter().find_map(|e| match &e.kind {
            EventKind::Exited { pid, status } if Some(*pid) == root_pid || root_pid.is_none() => {
                (stop.is_none_or(|s| e.t_us < s)).then_some(*status)
            }
            _ => None,
        });
        let alive_at_end =
            events.iter().any(|e| matches!(&e.kind, EventKind::EndState { live_pids, .. } if !live_pids.is_empty()));
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
