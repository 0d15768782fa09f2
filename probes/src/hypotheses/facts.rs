//! Facts several probes read off a run: where it started listening, which process is "the worker".

use crate::Event;
use crate::{
    per_run, ConnectResult, EventKind, FileType, Finding, Lifecycle, Marker, RunRecord, Runtime, Status, StdioMode,
};

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

/// The processes that held a listening socket (at the expected endpoint if any did), else those seen with a socket
/// bound at the expected path (a look may fall between its bind and its listen), else the spawned root.
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
    let bound = bound_at_expected(run);
    if !bound.is_empty() {
        return bound;
    }
    run.events.spawned_pids().into_iter().take(1).collect()
}

/// The processes seen holding a socket bound at the expected path, listening or not yet.
fn bound_at_expected(run: &RunRecord) -> Vec<i32> {
    let Some(expected) = run.expected.socket_path() else { return vec![] };
    let mut pids: Vec<i32> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SocketBound { pid, path, .. } if path == expected => Some(*pid),
            _ => None,
        })
        .collect();
    pids.dedup();
    pids
}

/// When the run's first process was spawned (the origin of "how long it was watched").
fn spawned_at(run: &RunRecord) -> u64 {
    run.events.first(|k| matches!(k, EventKind::Spawned { .. }).then_some(())).map_or(0, |(e, _)| e.t_us)
}

/// How long the run was watched: from the spawn to the end of observation (its end state, else the first stop).
pub(crate) fn watched_us(run: &RunRecord) -> Option<u64> {
    let end = run.events.end_state().map(|(e, _, _)| e.t_us).or_else(|| run.events.harness_stop_us())?;
    Some(end.saturating_sub(spawned_at(run)))
}

/// `watched 0.23 s of its 3 s window` or `watched for its whole 3 s window`: what an "alive at the end" rests on.
pub(crate) fn watch_span(run: &RunRecord) -> String {
    let secs = |us: u64| format!("{:.2} s", us as f64 / 1e6);
    let watched = watched_us(run).map_or("for an unknown time".to_string(), secs);
    match run.expected.window_ms {
        Some(w) if run.expected.whole_window => format!("watched {watched}, its whole {} window", secs(w * 1000)),
        Some(w) => format!("watched {watched} of its {} window (it settled)", secs(w * 1000)),
        None => format!("watched {watched}"),
    }
}

/// When the run failed, from its spawn: the worker's own exit that decided its outcome. None for a healthy run,
/// and for a failure that is not a moment (never reachable).
pub(crate) fn failed_at_us(run: &RunRecord) -> Option<u64> {
    let status = run.outcome.exit.filter(|_| !run.outcome.healthy)?;
    let (e, _, _) = run.events.own_exits().find(|(_, _, s)| *s == status)?;
    Some(e.t_us.saturating_sub(spawned_at(run)))
}

/// The latest moment, from its spawn, at which any of `runs` failed: a healthy run watched for less says nothing
/// about a failure that comes that late.
pub(crate) fn latest_failure_us(runs: &[RunRecord]) -> Option<u64> {
    runs.iter().filter_map(failed_at_us).max()
}

/// True when a healthy `run` was watched at least until `t_us` after its spawn: its health says something about a
/// failure that came that late elsewhere. A run that settled sooner was healthy so far, no more.
pub(crate) fn watched_past(run: &RunRecord, t_us: u64) -> bool {
    run.expected.whole_window || watched_us(run).is_some_and(|w| w >= t_us)
}

/// The endpoint was served at the end: the last connect attempt before the end of observation (the end state's
/// own attempt, made before any stop) was accepted. That connect, if so.
pub(crate) fn served_at_end(run: &RunRecord) -> Option<&Event> {
    let end = run.events.end_state().map(|(e, _, _)| e.t_us)?;
    let last = run.events.iter().rev().find(|e| e.t_us <= end && matches!(e.kind, EventKind::Connect { .. }))?;
    matches!(last.kind, EventKind::Connect { result: ConnectResult::Connected, .. }).then_some(last)
}

/// A new listener of the tree on the same TCP port that took over after `inode` closed at `closed_us` (a port
/// probe: listen, close, listen again), while the endpoint was served at the end.
pub(crate) fn tcp_replacement(run: &RunRecord, inode: u64, port: u16, closed_us: u64) -> Option<&Event> {
    served_at_end(run)?;
    let later = |e: &Event| e.t_us + REPLACEMENT_SKEW_US >= closed_us;
    run.events.tcp_listeners().into_iter().find(|l| l.2 != inode && l.4 == port && later(l.0)).map(|l| l.0)
}

/// A new socket file at the expected path after the one removed at `removed_us` (a restart, a probe), while the
/// endpoint was served at the end: the file was replaced, not lost.
pub(crate) fn file_replacement(run: &RunRecord, removed_us: u64) -> Option<&Event> {
    let expected = run.expected.socket_path()?;
    served_at_end(run)?;
    run.events.after(removed_us).find(|e| matches!(&e.kind, EventKind::FileCreated { path, file_type } if path == expected && *file_type != FileType::Dir))
}

/// A look lists listeners in inode order, not in the order they were made: a replacement seen in the same look as
/// the old one's close may be stamped a little before it.
const REPLACEMENT_SKEW_US: u64 = 5_000;

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

/// A sign that the worker served or meant to, in a run where none of its listeners was seen: its "listening" line,
/// or a client accepted at the expected endpoint by the worker's tree (the connect's peer is one of its processes,
/// or, the peer unknown, no outside process held the address). Without one, the run never got as far as a bind.
pub(crate) fn unseen_listener(run: &RunRecord) -> Option<&Event> {
    let pids = known_pids(run);
    let held_outside = run.events.foreign_holders().next().is_some();
    run.events.iter().find(|e| match &e.kind {
        EventKind::Line { markers, .. } | EventKind::LogLine { markers, .. } => markers.contains(&Marker::Listening),
        EventKind::Connect { result: ConnectResult::Connected, peer, .. } => match peer {
            Some(p) => pids.contains(p),
            None => !held_outside,
        },
        _ => false,
    })
}

/// True when a look found `pid` in another mount namespace than the harness's: a path it binds is not the file that
/// clients see at that path.
pub(crate) fn in_other_mount_ns(run: &RunRecord, pid: i32) -> bool {
    run.events.iter().any(|e| matches!(&e.kind, EventKind::Namespaces { pid: p, same_mnt: false, .. } if *p == pid))
}

/// `node`, `node and bun`: the runtimes put in place of the command's, when every one of `runs` ran under one;
/// None when any ran the command as written (or there are none). A finding that holds only there is a what-if.
pub(crate) fn substituted_runtimes<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        match run.config.runtime {
            Runtime::AsWritten => return None,
            other if !names.contains(&other.name()) => names.push(other.name()),
            _ => {}
        }
    }
    (!names.is_empty()).then(|| names.join(" and "))
}

/// Adds up a per-run judgement as [`per_run`] does; when every run that confirms ran under a runtime put in place of
/// the command's, the summary says so (`…, under node`): it holds only in that what-if.
pub(crate) fn per_run_naming_runtimes(runs: &[RunRecord], judge: impl Fn(&RunRecord) -> Finding) -> Finding {
    let confirming = runs.iter().filter(|r| judge(r).status == Status::Confirmed);
    let Some(names) = substituted_runtimes(confirming) else { return per_run(runs, judge) };
    per_run(runs, |r| match judge(r) {
        f if f.status == Status::Confirmed => Finding { summary: format!("{}, under {names}", f.summary), ..f },
        f => f,
    })
}

/// Until when the worker's stdout and stderr were read: to the end (a file, a pipe whose reader stays), until the
/// pipe's reader left (a launcher that exits), or not at all (discarded, a pipe nobody reads).
pub(crate) fn output_read_until(run: &RunRecord) -> Option<u64> {
    match (run.config.stdio, run.config.lifecycle) {
        (StdioMode::File, _) | (StdioMode::PipeDrained, Lifecycle::Stays) => Some(u64::MAX),
        (StdioMode::PipeDrained, Lifecycle::Exits) => {
            Some(run.events.launcher_exit().map_or(u64::MAX, |(e, _)| e.t_us))
        }
        (StdioMode::Ignore | StdioMode::PipeUndrained, _) => None,
    }
}

/// A sign that something was bound: a socket seen bound, a TCP listener, a socket file created.
pub(crate) fn is_bind(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::SocketBound { .. }
            | EventKind::TcpListening { .. }
            | EventKind::FileCreated { file_type: FileType::Socket, .. }
    )
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
        env,
        health: Some(crate::HealthCheck { get: "/health".into(), ready: None }),
        pid_file: Some("/s/worker.pid".into()),
        ..Expected::for_tests(Endpoint::Tcp { host: "127.0.0.1".into(), port: 4000 })
    };
    let events = Timeline::new(events.into_iter().map(|(t_us, kind)| Event { t_us, kind }).collect());
    let outcome = Outcome::from_timeline(&events);
    RunRecord { id: 1, clock_origin_ns: 0, config: RunConfig::PRODUCTION, expected, outcome, events }
}

/// The socket file clients expect, when the worker serves one.
pub(crate) fn socket_file(run: &RunRecord) -> Option<&str> {
    run.expected.socket_path()
}

/// The finding of a probe about socket files for a worker that serves none.
pub(crate) fn no_socket_file() -> crate::Finding {
    crate::Finding::new(crate::Status::NotApplicable, "the worker serves no socket file", vec![])
}

/// The message libc gives each errno the directory probes look for, for matching what workers print.
const ERRNO_TEXT: &[(&str, &str)] = &[
    ("EACCES", "permission denied"),
    ("EPERM", "operation not permitted"),
    ("ENOENT", "no such file or directory"),
    ("ENOTDIR", "not a directory"),
    ("EOPNOTSUPP", "operation not supported"),
    ("EIO", "input/output error"),
];

/// True when `text` reports `errno` by its symbol (`EACCES`, as Node prints it) or by its message.
pub(crate) fn reports_errno(text: &str, errno: &str) -> bool {
    let symbol = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == errno || (errno == "EOPNOTSUPP" && w == "ENOTSUP"));
    let message = ERRNO_TEXT.iter().find(|(e, _)| *e == errno).is_some_and(|(_, m)| text.to_lowercase().contains(m));
    symbol || message
}

/// The worker's own lines, before the harness intervened, that report one of `errnos` about the socket path or
/// its directory.
pub(crate) fn errno_lines<'a>(run: &'a RunRecord, errnos: &[&str]) -> Vec<&'a Event> {
    let Some(expected) = socket_file(run) else { return vec![] };
    let dir = socket_dir(expected);
    run.events
        .iter()
        .filter(|e| run.events.before_stop(e))
        .filter(|e| match &e.kind {
            EventKind::Line { text, .. } => {
                (text.contains(expected) || (!dir.is_empty() && text.contains(dir)))
                    && errnos.iter().any(|n| reports_errno(text, n))
            }
            _ => false,
        })
        .collect()
}

/// The directory part of a socket path.
pub(crate) fn socket_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| if d.is_empty() { "/" } else { d })
}

/// The last look at the socket's directory (the end of observation if there was one, else the spawn).
pub(crate) fn last_dir_check(run: &RunRecord) -> Option<&Event> {
    run.events.iter().rev().find(|e| matches!(e.kind, EventKind::DirChecked { .. }))
}

/// The finding of a directory probe when the socket's directory was never looked at.
pub(crate) fn unexamined_dir(id: usize) -> crate::Finding {
    crate::Finding::new(
        crate::Status::Inconclusive,
        "the socket directory was not examined",
        vec![crate::Evidence::run(id, "missing: a look at the socket directory")],
    )
}

/// The first look at the socket's directory: the moment of the spawn.
pub(crate) fn first_dir_check(run: &RunRecord) -> Option<&Event> {
    run.events.iter().find(|e| matches!(e.kind, EventKind::DirChecked { .. }))
}

/// Whether `uid` (with `gids`) may create an entry in a directory with this mode and owner: write and search
/// permission for the class it falls in, as the kernel checks it (root passes).
pub(crate) fn may_create(mode: u32, owner: u32, group: u32, uid: u32, gids: &[u32]) -> bool {
    if uid == 0 {
        return true;
    }
    let bits = if uid == owner {
        mode >> 6
    } else if gids.contains(&group) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o3 == 0o3
}

/// A run built from events, one microsecond apart, expecting `/d/w.sock`: for the probes' unit tests.
#[cfg(test)]
pub(crate) fn record(kinds: Vec<EventKind>) -> RunRecord {
    use crate::{Endpoint, Expected, Outcome, RunConfig, Timeline};
    let events = kinds.into_iter().enumerate().map(|(i, kind)| Event { t_us: i as u64, kind }).collect();
    let events = Timeline::new(events);
    RunRecord {
        id: 1,
        clock_origin_ns: 0,
        config: RunConfig::PRODUCTION,
        expected: Expected::for_tests(Endpoint::Unix { path: "/d/w.sock".into() }),
        outcome: Outcome::from_timeline(&events),
        events,
    }
}

/// A look at `/d` for the probes' unit tests.
#[cfg(test)]
pub(crate) fn dir_checked(mode: u32, owner: u32, fs_magic: u64, as_uid: u32, test_bind: crate::BindTest) -> EventKind {
    EventKind::DirChecked {
        dir: "/d".into(),
        file_type: FileType::Dir,
        missing_from: None,
        mode,
        owner,
        group: owner,
        fs_magic,
        as_uid,
        as_gids: vec![as_uid],
        test_bind,
    }
}

/// A look at `/d` that found it missing, for the probes' unit tests.
#[cfg(test)]
pub(crate) fn dir_missing() -> EventKind {
    EventKind::DirChecked {
        dir: "/d".into(),
        file_type: FileType::Gone,
        missing_from: Some("/d".into()),
        mode: 0,
        owner: 0,
        group: 0,
        fs_magic: 0,
        as_uid: 1000,
        as_gids: vec![],
        test_bind: crate::BindTest::NotTried { why: "the directory does not exist".into() },
    }
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

    #[test]
    fn errno_by_symbol_or_message() {
        assert!(reports_errno("Error: listen EACCES: permission denied /x.sock", "EACCES"));
        assert!(reports_errno("cannot listen on /x.sock: Permission denied (os error 13)", "EACCES"));
        assert!(!reports_errno("EACCESS is not a word here", "EACCES"));
        assert!(reports_errno("bind: ENOTSUP", "EOPNOTSUPP"));
        assert!(!reports_errno("meiosis", "EIO"));
    }

    #[test]
    fn create_permission_follows_the_class() {
        assert!(may_create(0o700, 1000, 1000, 1000, &[]));
        assert!(!may_create(0o711, 0, 0, 65534, &[65534]));
        assert!(may_create(0o770, 0, 50, 65534, &[50]));
        assert!(!may_create(0o750, 0, 50, 65534, &[50]));
        assert!(may_create(0o000, 5, 5, 0, &[]));
        assert!(may_create(0o1777, 0, 0, 65534, &[]));
    }

    #[test]
    fn socket_dir_of_paths() {
        assert_eq!(socket_dir("/a/b/c.sock"), "/a/b");
        assert_eq!(socket_dir("/c.sock"), "/");
        assert_eq!(socket_dir("c.sock"), "");
    }
}
