//! Facts several probes read off a run: where it started listening, which process is "the worker".

use crate::Event;
use crate::{EventKind, FileType, Marker, RunRecord};

/// The first sign that the worker was listening: a kernel-listed listener (Unix or TCP), the socket file at the
/// expected path, or the "listening" line, whichever came first.
pub(crate) fn listen_point(run: &RunRecord) -> Option<&Event> {
    let expected = run.expected.socket_path();
    run.events.iter().find(|e| match &e.kind {
        EventKind::SocketBound { listening: true, .. } | EventKind::TcpListening { .. } => true,
        EventKind::FileCreated { path, file_type } => Some(path.as_str()) == expected && *file_type != FileType::Dir,
        EventKind::Line { markers, .. } | EventKind::LogLine { markers, .. } => markers.contains(&Marker::Listening),
        _ => false,
    })
}

/// The processes that held a listening socket (at the expected endpoint if any did), else the spawned root.
pub(crate) fn worker_pids(run: &RunRecord) -> Vec<i32> {
    let listeners: Vec<(i32, bool)> = match run.expected.tcp() {
        None => {
            let expected = run.expected.socket_path();
            run.events.listeners().iter().map(|l| (l.1, Some(l.3) == expected)).collect()
        }
        Some((host, port)) => {
            run.events.tcp_listeners().iter().map(|l| (l.1, l.4 == port && serves_host(l.3, host))).collect()
        }
    };
    let at_expected: Vec<i32> = listeners.iter().filter(|l| l.1).map(|l| l.0).collect();
    if !at_expected.is_empty() {
        return at_expected;
    }
    let any: Vec<i32> = listeners.iter().map(|l| l.0).collect();
    if !any.is_empty() {
        return any;
    }
    run.events.spawned_pids().into_iter().take(1).collect()
}

/// True when a socket bound to `bound` accepts clients dialling `host`: the same address, a wildcard that covers
/// it (`0.0.0.0` for IPv4, `::` for both families, as Linux's default `bindv6only=0` makes it), or `localhost`
/// resolving to a loopback address.
pub(crate) fn serves_host(bound: &str, host: &str) -> bool {
    let v4 = !host.contains(':');
    let loopback = |a: &str| a == "127.0.0.1" || a == "::1";
    bound == host
        || bound == "::"
        || (bound == "0.0.0.0" && v4)
        || (host == "localhost" && (loopback(bound) || bound == "0.0.0.0"))
        || (bound.strip_prefix("::ffff:") == Some(host))
}

/// Words that mark a line as an error report, in the spellings runtimes and loggers use.
const ERROR_WORDS: &[&str] =
    &["error", "exception", "fatal", "panic", "failed", "failure", "traceback", "uncaught", "unhandled"];

/// The errno names that servers print when a socket or file operation fails.
const ERRNO_NAMES: &[&str] = &[
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "EACCES",
    "EPERM",
    "ENOENT",
    "ENOTDIR",
    "EEXIST",
    "ECONNREFUSED",
    "ECONNRESET",
    "EPIPE",
    "EINVAL",
    "ENOSPC",
    "EMFILE",
    "ETIMEDOUT",
    "EROFS",
];

/// True when a line reads as an error: an error word (`error`, `errors`, `failed`...) or an errno name.
pub(crate) fn looks_like_error(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).any(|w| {
        let lower = w.to_ascii_lowercase();
        ERRNO_NAMES.contains(&w) || ERROR_WORDS.iter().any(|e| lower == *e || lower.strip_suffix('s') == Some(e))
    })
}

/// Every pid the run saw in the worker's tree.
pub(crate) fn known_pids(run: &RunRecord) -> Vec<i32> {
    let mut pids: Vec<i32> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Spawned { pid, .. }
            | EventKind::Exited { pid, .. }
            | EventKind::SocketBound { pid, .. }
            | EventKind::TcpListening { pid, .. }
            | EventKind::WorkerView { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The last line the worker wrote before `t_us` (what it said as it went down).
pub(crate) fn last_line_before(run: &RunRecord, t_us: u64) -> Option<&Event> {
    run.events.iter().rev().find(|e| e.t_us <= t_us && matches!(e.kind, EventKind::Line { .. }))
}

/// What the spawned process actually ran: the executable `/proc/<pid>/exe` showed, else the program spawned.
pub(crate) fn ran(run: &RunRecord) -> String {
    let root = run.events.spawned_pids().first().copied();
    let exe = run.events.first(|k| match k {
        EventKind::WorkerView { pid, exe, .. } if Some(*pid) == root => Some(exe.clone()),
        _ => None,
    });
    let spawned = || {
        run.events.first(|k| match k {
            EventKind::Spawned { argv, .. } => argv.first().cloned(),
            _ => None,
        })
    };
    exe.or_else(spawned).map_or("an unknown program".to_string(), |(_, p)| p)
}

/// The spawned process's own exit (before any harness stop).
pub(crate) fn root_exit(run: &RunRecord) -> Option<(&Event, i32, crate::ExitStatus)> {
    let root = run.events.spawned_pids().first().copied()?;
    run.events.own_exits().find(|(_, pid, _)| *pid == root)
}

/// `(detached, stdio pipe, under bun)`: a run's configuration, as evidence (which names the run) shows it.
pub(crate) fn config_label(run: &RunRecord) -> String {
    format!("({})", run.config)
}

/// A TCP run on `127.0.0.1:4000` with the given events, for the probes' unit tests.
#[cfg(test)]
pub(crate) fn tcp_run(events: Vec<(u64, EventKind)>) -> RunRecord {
    use crate::{Endpoint, Expected, Outcome, RunConfig, Timeline};
    let env = [("PORT".to_string(), "4000".to_string())].into_iter().collect();
    let expected = Expected {
        session: 1,
        endpoint: Endpoint::Tcp { host: "127.0.0.1".into(), port: 4000 },
        env,
        database: None,
        health: Some(crate::HealthCheck { get: "/health".into(), ready: None }),
        logs: vec![],
        pid_file: Some("/s/worker.pid".into()),
        sandbox: None,
        runtimes: vec![],
        markers: vec![],
        shebang: None,
    };
    let events = Timeline::new(events.into_iter().map(|(t_us, kind)| Event { t_us, kind }).collect());
    let outcome = Outcome::from_timeline(&events);
    RunRecord { id: 1, clock_origin_ns: 0, config: RunConfig::PRODUCTION, expected, outcome, events }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines() {
        assert!(looks_like_error("Error: SDK agent initialization failed"));
        assert!(looks_like_error("listen EADDRINUSE: address already in use 127.0.0.1:37777"));
        assert!(looks_like_error("[ERROR] errors: 3"));
        assert!(!looks_like_error("[worker] session 28 loaded"));
        assert!(!looks_like_error("HTTP server listening on 127.0.0.1:37777"));
        assert!(!looks_like_error("EPOCH 12"));
    }

    #[test]
    fn wildcards_serve_their_family() {
        assert!(serves_host("0.0.0.0", "127.0.0.1"));
        assert!(serves_host("::", "127.0.0.1"));
        assert!(!serves_host("::1", "127.0.0.1"));
        assert!(!serves_host("127.0.0.1", "::1"));
        assert!(serves_host("127.0.0.1", "localhost"));
    }
}
