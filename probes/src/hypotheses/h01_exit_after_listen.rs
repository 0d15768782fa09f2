//! H1: the worker exits right after creating its socket.

use super::facts::{last_line_before, listen_point, unseen_listener, watch_span, worker_pids};
use crate::{per_run, ConnectResult, EventKind, Evidence, ExitStatus, Finding, Probe, RunRecord, Status};

pub struct ExitAfterListen;

impl Probe for ExitAfterListen {
    fn id(&self) -> &'static str {
        "H1"
    }
    fn causal_rank(&self) -> u8 {
        140
    }
    fn title(&self) -> &'static str {
        "worker exits right after creating the socket"
    }
    fn checks(&self) -> &'static str {
        "Whether the process that listens (or the spawned worker) ends on its own after its bind, its socket file \
         or its \"listening\" line. Confirmed by an exit after that point; ruled out when it is alive and the socket \
         is reachable when observation ends. A run that never got as far as listening, and did not exit, is left to \
         the runs that did."
    }
    fn fix(&self) -> &'static str {
        "Find what fails after the server starts (its last output lines, its exit status) and handle it; keep the \
         process alive while the server is meant to serve."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let pids = worker_pids(run);
    let exit = run.events.own_exits().find(|(_, pid, _)| pids.contains(pid));
    let Some(listen) = listen_point(run) else {
        return match exit {
            Some((e, pid, status)) => Finding::new(
                Status::RuledOut,
                format!("the worker {status} before any bind or \"listening\" line"),
                vec![Evidence::at(
                    id,
                    e.t_us,
                    format!("pid {pid} {status}; no listener, socket file or listening line before"),
                )],
            ),
            None => never_listened(run),
        };
    };
    let mut evidence = vec![Evidence::at(id, listen.t_us, listen.kind.describe())];
    if let Some((e, pid, status)) = exit.filter(|(e, _, _)| e.t_us >= listen.t_us) {
        if let Some(finding) = handed_off(run, e, pid, &status).or_else(|| listener_kept(run, e, pid, &status)) {
            return finding;
        }
        if let Some(line) = last_line_before(run, e.t_us).filter(|l| l.t_us > listen.t_us) {
            evidence.push(Evidence::at(id, line.t_us, format!("last output: {}", line.kind.describe())));
        }
        evidence.push(Evidence::at(id, e.t_us, format!("pid {pid} {status}")));
        let after = crate::fmt_ms(e.t_us - listen.t_us).trim_start_matches('+').to_string();
        let how = match status {
            ExitStatus::Code(_) => status.to_string(),
            ExitStatus::Signal(_) => format!("was {status}"),
        };
        return Finding::new(
            Status::Confirmed,
            format!("the worker {how} {after} after it started listening"),
            evidence,
        )
        .timed("listening → exit", e.t_us - listen.t_us);
    }
    let end = run.events.end_state().filter(|(_, _, live)| pids.iter().any(|p| live.contains(p)));
    let stop = run.events.iter().find(|e| matches!(e.kind, EventKind::HarnessStop { .. }));
    match (stop, end) {
        (Some(e), _) | (None, Some((e, _, _))) => {
            if let Some(c) = run.events.iter().rev().find(|c| c.t_us <= e.t_us && is_connected(&c.kind)) {
                evidence.push(Evidence::at(id, c.t_us, c.kind.describe()));
            }
            evidence.push(Evidence::at(id, e.t_us, e.kind.describe()));
            // Alive at the end says as much as the watch was long (DESIGN §7 rule 7).
            let summary = format!("the worker was still alive when observation ended ({})", watch_span(run));
            Finding::new(Status::RuledOut, summary, evidence)
        }
        (None, None) => {
            Finding::new(Status::Inconclusive, "the worker neither exited nor was seen alive at the end", evidence)
        }
    }
}

/// Neither a sign of listening nor an exit: a worker that never got as far as a bind (blocked, or still starting) has
/// nothing to say about an exit after listening, unless a client was accepted by a listener that was not seen.
fn never_listened(run: &RunRecord) -> Finding {
    let id = run.id;
    match unseen_listener(run) {
        Some(sign) => Finding::new(
            Status::Inconclusive,
            "a client was accepted, but no bind, socket file or \"listening\" line of the worker was observed",
            vec![
                Evidence::at(id, sign.t_us, sign.kind.describe()),
                Evidence::run(id, "missing: the worker's listener"),
            ],
        ),
        None => Finding::new(
            Status::NotApplicable,
            "the worker never started listening (no bind, socket file or \"listening\" line) and did not exit",
            vec![Evidence::run(id, "no sign of listening during observation, and no exit")],
        ),
    }
}

/// The process that exited was not the server: another process still serves (a daemon's client that forked the
/// server, a duplicate that leaves the endpoint to its twin). Told by a connect that succeeded after the exit, and
/// the server that accepted it: the connect's peer (SO_PEERCRED), or a process of the run alive at the end.
fn handed_off(run: &RunRecord, exit: &crate::Event, pid: i32, status: &ExitStatus) -> Option<Finding> {
    let id = run.id;
    let served = run.events.iter().find(|c| c.t_us > exit.t_us && is_connected(&c.kind))?;
    let peer = match &served.kind {
        EventKind::Connect { peer, .. } => peer.filter(|p| *p != pid),
        _ => None,
    };
    let mut evidence = vec![
        Evidence::at(id, exit.t_us, format!("pid {pid} {status}")),
        Evidence::at(id, served.t_us, served.kind.describe()),
    ];
    let server = match peer {
        Some(server) => server,
        None => {
            let (end, _, live) = run.events.end_state()?;
            evidence.push(Evidence::at(id, end.t_us, end.kind.describe()));
            live.iter().copied().find(|p| *p != pid)?
        }
    };
    Some(Finding::new(
        Status::RuledOut,
        format!(
            "pid {pid} {status} after listening, but pid {server} served the endpoint after it: a handoff, not a crash"
        ),
        evidence,
    ))
}

/// The process that exited shared its listening socket with another (a fork inherits it) that was alive at the end:
/// it handed the listener over, wherever that listener is bound (no client need have reached it).
fn listener_kept(run: &RunRecord, exit: &crate::Event, pid: i32, status: &ExitStatus) -> Option<Finding> {
    let (end, _, live) = run.events.end_state()?;
    let sockets = |of: &dyn Fn(i32, bool) -> bool| -> Vec<(&crate::Event, i32, u64)> {
        run.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::SocketBound { pid, inode, listening, .. } if of(*pid, *listening) => Some((e, *pid, *inode)),
                _ => None,
            })
            .collect()
    };
    let its: Vec<u64> = sockets(&|p, _| p == pid).iter().map(|s| s.2).collect();
    let (held, keeper, inode) =
        sockets(&|p, listening| p != pid && listening && live.contains(&p)).into_iter().find(|s| its.contains(&s.2))?;
    let id = run.id;
    Some(Finding::new(
        Status::RuledOut,
        format!(
            "pid {pid} {status} after listening, but pid {keeper} held its listener to the end: a handoff, not a crash"
        ),
        vec![
            Evidence::at(id, held.t_us, held.kind.describe()),
            Evidence::at(id, exit.t_us, format!("pid {pid} {status}")),
            Evidence::at(
                id,
                end.t_us,
                format!("{}; socket inode {inode} is the one pid {pid} bound", end.kind.describe()),
            ),
        ],
    ))
}

fn is_connected(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Connect { result: ConnectResult::Connected, .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::testing::{bound, connect, created, record, PATH};
    use crate::{FileType, StdioMode};

    fn spawned(pid: i32) -> EventKind {
        EventKind::Spawned { pid, argv: vec!["w".into()] }
    }

    fn exited(pid: i32, code: i32) -> EventKind {
        EventKind::Exited { pid, status: ExitStatus::Code(code) }
    }

    fn end(live: Vec<i32>) -> EventKind {
        EventKind::EndState { path: PATH.into(), file_type: Some(FileType::Socket), live_pids: live }
    }

    /// ssh-agent told to listen elsewhere: the client binds, forks the server, exits 0; no client ever reaches the
    /// server (it is at another path), but the server holds the very socket its parent bound until the end.
    #[test]
    fn a_fork_that_keeps_the_parents_listener_is_a_handoff_wherever_it_listens() {
        let inherited =
            EventKind::SocketBound { pid: 11, inode: 110, path: "/s/data/other.sock".into(), listening: true };
        let own = EventKind::SocketBound { pid: 10, inode: 110, path: "/s/data/other.sock".into(), listening: true };
        let run = record(
            StdioMode::Ignore,
            vec![(1, spawned(10)), (2, own), (3, inherited), (4, exited(10, 0)), (9, end(vec![11]))],
        );
        let finding = judge(&run);
        assert_eq!(finding.status, Status::RuledOut, "{}", finding.summary);
        assert!(finding.summary.contains("pid 11 held its listener"), "{}", finding.summary);
        assert!(!run.outcome.label.contains("exited"), "the outcome is the server's: {}", run.outcome.label);
        // A child that bound a socket of its own, or died before the end, takes nothing over.
        let other = EventKind::SocketBound { pid: 11, inode: 111, path: "/s/data/other.sock".into(), listening: true };
        let own = EventKind::SocketBound { pid: 10, inode: 110, path: "/s/data/other.sock".into(), listening: true };
        let run = record(
            StdioMode::Ignore,
            vec![(1, spawned(10)), (2, own), (3, other), (4, exited(10, 0)), (9, end(vec![11]))],
        );
        assert_eq!(judge(&run).status, Status::Confirmed, "{}", judge(&run).summary);
    }

    #[test]
    fn a_daemon_that_forks_its_server_and_exits_hands_off() {
        // The client binds, forks the server (pid 11), exits 0; the server keeps serving.
        let run = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(10)),
                (2, bound(10, true)),
                (3, created()),
                (4, exited(10, 0)),
                (6, connect(ConnectResult::Connected, Some(11))),
                (9, end(vec![11])),
            ],
        );
        let finding = judge(&run);
        assert_eq!(finding.status, Status::RuledOut, "{}", finding.summary);
        assert!(finding.summary.contains("pid 11"), "{}", finding.summary);
    }

    #[test]
    fn the_connect_peer_names_the_server_that_took_over() {
        let run = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(10)),
                (2, bound(10, true)),
                (4, exited(10, 0)),
                (6, connect(ConnectResult::Connected, Some(11))),
                (9, end(vec![])),
            ],
        );
        let finding = judge(&run);
        assert_eq!(finding.status, Status::RuledOut, "{}", finding.summary);
        assert!(finding.summary.contains("pid 11 served"), "{}", finding.summary);
    }

    #[test]
    fn an_exit_that_leaves_nobody_serving_confirms() {
        let run = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(10)),
                (2, bound(10, true)),
                (3, created()),
                (4, exited(10, 1)),
                (6, connect(ConnectResult::Refused, None)),
                (9, end(vec![])),
            ],
        );
        assert_eq!(judge(&run).status, Status::Confirmed);
    }

    #[test]
    fn a_worker_blocked_before_its_bind_leaves_it_to_the_runs_that_listened() {
        let blocked =
            EventKind::ThreadStates { pid: 10, busy: false, states: "S".into(), wchan: Some("pipe_write".into()) };
        let mut never = record(StdioMode::PipeUndrained, vec![(1, spawned(10)), (8, blocked), (9, end(vec![10]))]);
        never.id = 2;
        assert_eq!(judge(&never).status, Status::NotApplicable, "{}", judge(&never).summary);
        let served = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(10)),
                (2, bound(10, true)),
                (3, connect(ConnectResult::Connected, Some(10))),
                (9, end(vec![10])),
            ],
        );
        let f = ExitAfterListen.evaluate(&[served, never]);
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    #[test]
    fn a_client_accepted_by_an_unseen_listener_is_inconclusive() {
        let run = record(
            StdioMode::Ignore,
            vec![(1, spawned(10)), (3, connect(ConnectResult::Connected, Some(10))), (9, end(vec![10]))],
        );
        assert_eq!(judge(&run).status, Status::Inconclusive, "{}", judge(&run).summary);
    }

    /// Two launches of a worker whose socket lives microseconds: the first one's exit is stamped before its file
    /// (another observer's thread); the second is seen between its bind and its listen, then exits.
    #[test]
    fn a_process_seen_bound_but_not_yet_listening_is_the_worker() {
        let gone = EventKind::FileCreated { path: PATH.into(), file_type: FileType::Unknown };
        let run = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(10)),
                (2, spawned(11)),
                (3, exited(10, 1)),
                (4, gone),
                (6, created()),
                (7, bound(11, false)),
                (8, exited(11, 1)),
                (9, end(vec![])),
            ],
        );
        assert_eq!(judge(&run).status, Status::Confirmed, "{}", judge(&run).summary);
    }

    #[test]
    fn a_connect_before_the_exit_is_no_handoff() {
        let run = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(10)),
                (2, bound(10, true)),
                (3, connect(ConnectResult::Connected, Some(10))),
                (4, exited(10, 0)),
                (9, end(vec![12])),
            ],
        );
        assert_eq!(judge(&run).status, Status::Confirmed);
    }
}
