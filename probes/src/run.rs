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
}

impl Expected {
    pub fn socket_path(&self) -> &str {
        match &self.endpoint {
            Endpoint::Unix { path } => path,
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
    /// A client connected at the expected path at least once.
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
        let healthy = reachable && final_connect_ok && exit.is_none() && (alive_at_end || stop.is_some());
        let label = match (healthy, reachable, exit) {
            (true, _, _) => "healthy".to_string(),
            (false, true, Some(s)) => format!("reachable, then {s}"),
            (false, false, Some(s)) => format!("{s}, never reachable"),
            (false, true, None) => "reachable, then unreachable".to_string(),
            (false, false, None) => "alive, never reachable".to_string(),
        };
        Outcome { reachable, healthy, exit, label }
    }
}
