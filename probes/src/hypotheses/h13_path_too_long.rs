//! H13: the socket path is longer than `sun_path` holds: truncated by some runtimes, refused (EINVAL) by others.

use super::facts::{is_bind, ran, root_exit};
use crate::{per_run, ConnectResult, Event, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

/// Bytes in `sockaddr_un.sun_path`. Linux binds a path that fills all 108 without a terminating NUL (and Node's
/// libuv truncates to exactly that); the BSDs and macOS have 104.
pub const SUN_PATH_BYTES: usize = if cfg!(target_os = "linux") { 108 } else { 104 };

/// How runtimes and libc word a refused long path (errno names and strerror texts, not one program's words).
const TOO_LONG_ERRORS: &[&str] = &["EINVAL", "ENAMETOOLONG", "Invalid argument", "File name too long", "path too long"];

pub struct PathTooLong;

impl Probe for PathTooLong {
    fn id(&self) -> &'static str {
        "H13"
    }
    fn causal_rank(&self) -> u8 {
        50
    }
    fn title(&self) -> &'static str {
        "socket path over the sun_path limit"
    }
    fn checks(&self) -> &'static str {
        "Measures the expected path against sun_path (108 bytes on Linux, 104 on macOS). When it is \
         over: confirmed by a socket bound at a truncated prefix of it (kernel or inotify), or by a bind error \
         (EINVAL, ENAMETOOLONG) in the output, or by a socket bound at the full path through a detour (Bun binds \
         via /proc/self/fd) that a client still cannot connect to. Ruled out when the path fits, or clients \
         connect anyway. Over the limit, a worker that ends without any bind is confirmed too."
    }
    fn fix(&self) -> &'static str {
        "Keep socket paths short: put the socket in a short directory (e.g. $XDG_RUNTIME_DIR or /tmp/<app>-<uid>/) \
         and hash long components (project paths) instead of embedding them; check the length before binding."
    }
    fn live_look(&self) -> bool {
        true
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let Some(expected) = run.expected.socket_path() else {
        return Finding::new(Status::NotApplicable, "the worker serves a TCP address, not a socket path", vec![]);
    };
    let len = expected.len();
    if len <= SUN_PATH_BYTES {
        return Finding::new(
            Status::RuledOut,
            format!("the expected path is {len} bytes, within the {SUN_PATH_BYTES}-byte sun_path"),
            vec![Evidence::run(id, format!("{expected}: {len} bytes"))],
        );
    }
    let over =
        Evidence::run(id, format!("{expected} is {len} bytes; sun_path holds {SUN_PATH_BYTES} ({} ran)", ran(run)));
    if let Some((e, path)) = run.events.first(|k| truncated(k, expected)) {
        return Finding::new(
            Status::Confirmed,
            format!("the {len}-byte path was cut to {} bytes: the socket is at {path}", path.len()),
            vec![over, Evidence::at(id, e.t_us, e.kind.describe())],
        );
    }
    if let Some(line) = refusal(run) {
        return Finding::new(
            Status::Confirmed,
            format!("the {len}-byte path was refused at bind"),
            vec![over, Evidence::at(id, line.t_us, line.kind.describe())],
        );
    }
    let full = run
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::FileCreated { path, file_type: FileType::Socket } if path == expected));
    if let Some(created) = full {
        return bound_in_full(run, len, created, over);
    }
    if let Some(found) = without_bind(run, len, &over) {
        return found;
    }
    Finding::new(
        Status::Inconclusive,
        format!("the path is {len} bytes, over the limit, but neither a bind nor a bind error was seen"),
        vec![over, Evidence::run(id, "missing: a socket bound anywhere, or readable output")],
    )
}

/// No bind anywhere and no error seen: a worker whose tree ended that way never got a socket for its over-long path;
/// one still running at the end never got as far as a bind, and holds nothing about its path.
fn without_bind(run: &RunRecord, len: usize, over: &Evidence) -> Option<Finding> {
    let id = run.id;
    if run.events.iter().any(|e| is_bind(&e.kind)) {
        return None;
    }
    let (end, _, live) = run.events.end_state()?;
    if !live.is_empty() {
        return Some(Finding::new(
            Status::NotApplicable,
            format!(
                "the worker never bound and was still running at the end: nothing shows what its {len}-byte path did"
            ),
            vec![over.clone(), Evidence::at(id, end.t_us, end.kind.describe())],
        ));
    }
    let (exit, pid, status) = root_exit(run)?;
    Some(Finding::new(
        Status::Confirmed,
        format!(
            "the worker {status} without ever binding: nothing over sun_path can be bound, and its path is {len} bytes"
        ),
        vec![over.clone(), Evidence::at(id, exit.t_us, format!("pid {pid} {status}; no socket bound anywhere"))],
    ))
}

/// The file is at the full path (some runtimes bind through `/proc/self/fd/<dir>/<name>`): what decides is whether
/// a client, which connects by the path, got through.
fn bound_in_full(run: &RunRecord, len: usize, created: &Event, over: Evidence) -> Finding {
    let id = run.id;
    let mut evidence = vec![over, Evidence::at(id, created.t_us, created.kind.describe())];
    if let Some((e, _)) =
        run.events.first(|k| matches!(k, EventKind::SocketBound { listening: true, .. }).then_some(()))
    {
        evidence.push(Evidence::at(id, e.t_us, format!("the kernel names it: {}", e.kind.describe())));
    }
    let connected = |e: &&&Event| matches!(e.kind, EventKind::Connect { result: ConnectResult::Connected, .. });
    let connects: Vec<&Event> = run.events.iter().filter(|e| matches!(e.kind, EventKind::Connect { .. })).collect();
    if let Some(ok) = connects.iter().find(connected) {
        evidence.push(Evidence::at(id, ok.t_us, ok.kind.describe()));
        return Finding::new(
            Status::RuledOut,
            format!("the path is {len} bytes, over the limit, yet clients connect"),
            evidence,
        );
    }
    let Some(failed) = connects.first() else {
        return Finding::new(
            Status::Inconclusive,
            format!("the {len}-byte path was bound in full, but no client tried it"),
            evidence,
        );
    };
    evidence.push(Evidence::at(id, failed.t_us, failed.kind.describe()));
    Finding::new(
        Status::Confirmed,
        format!("the {len}-byte path was bound by a detour, but a client cannot connect to it"),
        evidence,
    )
}

/// A socket bound (kernel) or created (inotify) at a strict prefix of the expected path.
fn truncated(kind: &EventKind, expected: &str) -> Option<String> {
    let path = match kind {
        EventKind::SocketBound { path, .. } => path,
        EventKind::FileCreated { path, file_type: FileType::Socket } => path,
        _ => return None,
    };
    (path.len() < expected.len() && !path.is_empty() && expected.starts_with(path.as_str())).then(|| path.clone())
}

/// An output line reporting a bind refused for its length.
fn refusal(run: &RunRecord) -> Option<&Event> {
    run.events.iter().find(|e| match &e.kind {
        EventKind::Line { text, .. } => TOO_LONG_ERRORS.iter().any(|w| text.contains(w)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{line, run};
    use crate::{Endpoint, RunConfig};

    fn long_run(events: Vec<(u64, EventKind)>) -> (RunRecord, String) {
        let path = format!("/s/data/{}.sock", "p".repeat(120));
        let mut r = run(1, RunConfig::PRODUCTION, events);
        r.expected.endpoint = Endpoint::Unix { path: path.clone() };
        (r, path)
    }

    fn created(path: &str) -> EventKind {
        EventKind::FileCreated { path: path.into(), file_type: FileType::Socket }
    }

    #[test]
    fn a_short_path_rules_it_out() {
        assert_eq!(PathTooLong.evaluate(&[run(1, RunConfig::PRODUCTION, vec![])]).status, Status::RuledOut);
    }

    #[test]
    fn a_socket_at_a_prefix_of_a_long_path_confirms() {
        let path = format!("/s/data/{}.sock", "p".repeat(120));
        let (r, _) = long_run(vec![(5, created(&path[..SUN_PATH_BYTES]))]);
        let f = PathTooLong.evaluate(&[r]);
        assert_eq!(f.status, Status::Confirmed);
        assert!(f.summary.contains(&format!("cut to {SUN_PATH_BYTES} bytes")), "{}", f.summary);
    }

    #[test]
    fn a_bind_error_in_the_output_confirms() {
        let (r, _) = long_run(vec![(5, line("listen EINVAL: invalid argument /s/data/ppp", &[]))]);
        assert_eq!(PathTooLong.evaluate(&[r]).status, Status::Confirmed);
    }

    #[test]
    fn a_long_path_bound_in_full_is_decided_by_the_client() {
        let path = format!("/s/data/{}.sock", "p".repeat(120));
        let connect = |result| EventKind::Connect { path: path.clone(), result, detail: String::new(), peer: None };
        let (r, _) = long_run(vec![(5, created(&path)), (6, connect(ConnectResult::Other))]);
        assert_eq!(PathTooLong.evaluate(&[r]).status, Status::Confirmed);
        let (r, _) = long_run(vec![(5, created(&path)), (6, connect(ConnectResult::Connected))]);
        assert_eq!(PathTooLong.evaluate(&[r]).status, Status::RuledOut);
        let (r, _) = long_run(vec![]);
        assert_eq!(PathTooLong.evaluate(&[r]).status, Status::Inconclusive);
    }

    #[test]
    fn without_any_bind_an_ended_worker_confirms_and_a_running_one_has_nothing_to_say() {
        let end = |live: Vec<i32>| EventKind::EndState { path: String::new(), file_type: None, live_pids: live };
        let exited = EventKind::Exited { pid: 10, status: crate::ExitStatus::Code(1) };
        let (ended, _) = long_run(vec![(5, exited), (9, end(vec![]))]);
        let f = PathTooLong.evaluate(&[ended]);
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        let (running, _) = long_run(vec![(9, end(vec![10]))]);
        let f = PathTooLong.evaluate(&[running]);
        assert_eq!(f.status, Status::NotApplicable, "{}", f.summary);
    }
}
