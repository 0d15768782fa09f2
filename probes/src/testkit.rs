//! Recorded runs built by hand, for the probes' unit tests.

use crate::{
    Endpoint, Event, EventKind, Expected, Marker, Outcome, RunConfig, RunRecord, Runtime, RuntimeInstall, Stream,
    Timeline,
};

/// The socket path every hand-built run expects.
pub(crate) const SOCKET: &str = "/s/data/w.sock";

/// A run of `config` whose timeline is `events` (pid 10 is the spawned worker).
pub(crate) fn run(id: usize, config: RunConfig, events: Vec<(u64, EventKind)>) -> RunRecord {
    let mut all = vec![Event { t_us: 0, kind: EventKind::Spawned { pid: 10, argv: vec!["/usr/bin/node".into()] } }];
    all.extend(events.into_iter().map(|(t_us, kind)| Event { t_us, kind }));
    let events = Timeline::new(all);
    let outcome = Outcome::from_timeline(&events);
    let expected = Expected {
        runtimes: vec![RuntimeInstall { runtime: Runtime::Bun, path: Some("/opt/bun".into()) }],
        markers: vec![Marker::Entry, Marker::Listening],
        ..Expected::for_tests(Endpoint::Unix { path: SOCKET.into() })
    };
    RunRecord { id, clock_origin_ns: 0, config, expected, outcome, events }
}

/// A line on stderr, tagged with the markers it matches.
pub(crate) fn line(text: &str, markers: &[Marker]) -> EventKind {
    EventKind::Line { stream: Stream::Stderr, text: text.into(), markers: markers.to_vec() }
}

/// The worker's view: it runs `exe`.
pub(crate) fn runs(exe: &str) -> EventKind {
    EventKind::WorkerView { pid: 10, exe: exe.into(), cwd: "/s".into(), uid: 0, env: Default::default() }
}

/// `config` under `runtime`.
pub(crate) fn under(runtime: Runtime, config: RunConfig) -> RunConfig {
    RunConfig { runtime, ..config }
}
