//! Building recorded runs by hand, for the probes' unit tests.

use crate::{
    ConnectResult, Endpoint, Event, EventKind, Expected, FileType, Lifecycle, Outcome, RunConfig, RunRecord, SpawnMode,
    StdioMode, Timeline,
};

pub(crate) const PATH: &str = "/s/data/w.sock";

/// A run of the production configuration with `stdio`, whose timeline is `events`.
pub(crate) fn record(stdio: StdioMode, events: Vec<(u64, EventKind)>) -> RunRecord {
    let config = RunConfig { spawn: SpawnMode::Detached, lifecycle: Lifecycle::Stays, stdio, ..RunConfig::PRODUCTION };
    let events = Timeline::new(events.into_iter().map(|(t_us, kind)| Event { t_us, kind }).collect());
    let outcome = Outcome::from_timeline(&events);
    let expected = Expected::for_tests(Endpoint::Unix { path: PATH.into() });
    RunRecord { id: 1, clock_origin_ns: 0, config, expected, outcome, events }
}

pub(crate) fn created() -> EventKind {
    EventKind::FileCreated { path: PATH.into(), file_type: FileType::Socket }
}

pub(crate) fn connect(result: ConnectResult, peer: Option<i32>) -> EventKind {
    EventKind::Connect { path: PATH.into(), result, detail: format!("{result:?}"), peer }
}

pub(crate) fn bound(pid: i32, listening: bool) -> EventKind {
    EventKind::SocketBound { pid, inode: 100 + pid as u64, path: PATH.into(), listening }
}
