//! H9: the socket file is created, then deleted — and by whom. On TCP: the listener is closed while the process
//! that held it lives on.

use super::facts::{file_replacement, known_pids, tcp_replacement};
use crate::{fmt_ms, per_run, Event, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct CreatedThenDeleted;

impl Probe for CreatedThenDeleted {
    fn id(&self) -> &'static str {
        "H9"
    }
    fn causal_rank(&self) -> u8 {
        130
    }
    fn title(&self) -> &'static str {
        "socket created, then deleted or closed"
    }
    fn checks(&self) -> &'static str {
        "Watches the socket's directory (inotify, armed before the spawn): a create at the expected path followed \
         by a remove or rename, before the harness stopped anything. Says who removed it when the evidence allows. \
         On TCP: a listener of the worker's tree that the kernel stops listing while its process is still alive."
    }
    fn fix(&self) -> &'static str {
        "Remove a stale socket only after checking that nothing answers on it; make the error handler keep the \
         file while another instance serves; never let two workers own one session."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    match run.expected.socket_path() {
        Some(path) => judge_unix(run, path),
        None => judge_tcp(run),
    }
}

fn judge_tcp(run: &RunRecord) -> Finding {
    let id = run.id;
    let listeners = run.events.tcp_listeners();
    let Some(first) = listeners.first() else {
        return Finding::new(
            Status::RuledOut,
            "the worker never listened on TCP, so no listener was closed",
            vec![Evidence::run(id, "no TCP listener of the worker's tree during observation")],
        );
    };
    for (listen, pid, inode, address, port) in &listeners {
        let closed = run.events.after(listen.t_us).find(|e| {
            run.events.before_stop(e) && matches!(&e.kind, EventKind::TcpClosed { inode: i, .. } if i == inode)
        });
        let Some(closed) = closed else { continue };
        // A listener replaced on the same port that served to the end: the endpoint was never left unserved.
        if tcp_replacement(run, *inode, *port, closed.t_us).is_some() {
            continue;
        }
        let exit = run.events.own_exits().find(|(_, p, _)| p == pid);
        if exit.is_some_and(|(e, _, _)| e.t_us <= closed.t_us + OBSERVER_SKEW_US) {
            continue; // closed with its process: that is an exit (H1), not a closed listener
        }
        let mut evidence = vec![Evidence::at(id, listen.t_us, listen.kind.describe())];
        evidence.push(Evidence::at(id, closed.t_us, closed.kind.describe()));
        let lived = match exit {
            Some((e, _, status)) => {
                evidence.push(Evidence::at(id, e.t_us, format!("pid {pid} {status}")));
                format!("pid {pid} lived on until {}", fmt_ms(e.t_us))
            }
            None => format!("pid {pid} was still alive at the end of observation"),
        };
        evidence.push(Evidence::run(id, lived.clone()));
        let after = fmt_ms(closed.t_us - listen.t_us).trim_start_matches('+').to_string();
        let bound = crate::timeline::host_port(address, *port);
        return Finding::new(
            Status::Confirmed,
            format!("pid {pid} closed its listener on {bound} {after} after listening; {lived}"),
            evidence,
        );
    }
    Finding::new(
        Status::RuledOut,
        "the TCP listener stayed open until the end of observation, closed only with its process, or was replaced \
         by a new one on the same port that served to the end",
        vec![Evidence::at(id, first.0.t_us, first.0.kind.describe())],
    )
}

fn judge_unix(run: &RunRecord, expected: &str) -> Finding {
    let id = run.id;
    let created = run.events.iter().find(|e| matches!(&e.kind, EventKind::FileCreated { path, file_type } if path == expected && *file_type != FileType::Dir));
    let Some(created) = created else {
        return Finding::new(
            Status::RuledOut,
            format!("no file ever appeared at {expected}"),
            vec![Evidence::run(id, format!("no create event for {expected} during observation"))],
        );
    };
    let removed = run.events.after(created.t_us).find(|e| run.events.before_stop(e) && removes(&e.kind, expected));
    let mut evidence = vec![Evidence::at(id, created.t_us, created.kind.describe())];
    let Some(removed) = removed else {
        let end =
            run.events.iter().find(|e| matches!(e.kind, EventKind::HarnessStop { .. } | EventKind::EndState { .. }));
        if let Some(end) = end {
            evidence.push(Evidence::at(id, end.t_us, end.kind.describe()));
        }
        return Finding::new(Status::RuledOut, "the socket file persisted until the end of observation", evidence);
    };
    evidence.push(Evidence::at(id, removed.t_us, removed.kind.describe()));
    let delay = fmt_ms(removed.t_us - created.t_us).trim_start_matches('+').to_string();
    // A twin that removes the first one's file to bind its own is H9 by a twin (DESIGN §7 rule 6); a file
    // replaced by the worker itself, the endpoint served at the end, was never lost (rule 5).
    if second_worker(run, removed).is_none() {
        if let Some(again) = file_replacement(run, removed.t_us) {
            evidence.push(Evidence::at(id, again.t_us, again.kind.describe()));
            return Finding::new(
                Status::RuledOut,
                format!(
                    "{expected} was removed {delay} after it was created, then replaced by a new one served to the end"
                ),
                evidence,
            );
        }
    }
    let (who, why) = remover(run, removed);
    evidence.push(Evidence::run(id, why));
    // The kernel's side (sock_diag): a listener still alive whose bound file is no longer the one at the path.
    evidence.extend(
        run.events
            .iter()
            .filter(|e| lost_its_file(&e.kind, expected))
            .map(|e| Evidence::at(id, e.t_us, e.kind.describe())),
    );
    Finding::new(Status::Confirmed, format!("{expected} was removed {delay} after it was created, by {who}"), evidence)
        .timed("created → removed", removed.t_us - created.t_us)
}

fn lost_its_file(kind: &EventKind, expected: &str) -> bool {
    matches!(kind, EventKind::ListenerFile { path, bound_file_inode, file_inode_now, .. } if path == expected && *file_inode_now != Some(*bound_file_inode))
}

fn removes(kind: &EventKind, expected: &str) -> bool {
    match kind {
        EventKind::FileRemoved { path } => path == expected,
        EventKind::FileRenamed { from, .. } => from == expected,
        _ => false,
    }
}

/// inotify events and exits reach the harness on different threads: their stamps may be this far out of order
/// (more when the run measured its fs observer running late).
const OBSERVER_SKEW_US: u64 = 5_000;

/// Who removed the file, as far as the evidence goes.
fn remover(run: &RunRecord, removed: &Event) -> (String, String) {
    if let Some(found) = second_worker(run, removed) {
        return found;
    }
    let t = removed.t_us;
    let alive: Vec<i32> = known_pids(run).into_iter().filter(|p| alive_at(run, *p, t)).collect();
    if let [pid] = alive.as_slice() {
        let pid = *pid;
        let exit = run.events.own_exits().find(|(_, p, _)| *p == pid);
        let why = match exit {
            Some((exit, _, status)) => {
                let order = if exit.t_us >= t {
                    "before".to_string()
                } else {
                    let skew = run.events.skew_us(OBSERVER_SKEW_US);
                    format!("within the observers' skew ({}) of", fmt_ms(skew).trim_start_matches('+'))
                };
                format!(
                    "pid {pid} was the only process of the worker's tree alive; the removal was seen {order} its exit \
                     ({status} at {})",
                    fmt_ms(exit.t_us)
                )
            }
            None => format!("pid {pid} was the only process of the worker's tree alive when the file was removed"),
        };
        return (format!("the worker itself (pid {pid})"), why);
    }
    // Nobody seen alive: a late inotify stamp behind the only process of the run, or someone outside it.
    if let ([], [pid]) = (alive.as_slice(), known_pids(run).as_slice()) {
        if let Some((exit, _, status)) = run.events.own_exits().find(|(_, p, _)| p == pid) {
            return (
                format!("the worker itself (pid {pid}), by elimination"),
                format!(
                    "pid {pid} was the only process of the run; the removal was seen {} after its exit ({status} at \
                     {}), later than the observers' usual skew, and no other process was seen",
                    fmt_ms(t - exit.t_us).trim_start_matches('+'),
                    fmt_ms(exit.t_us)
                ),
            );
        }
    }
    (
        "an unidentified process".to_string(),
        format!("{} processes were alive ({alive:?}); the removal cannot be attributed", alive.len()),
    )
}

/// Two workers listened at the expected path, and after the removal clients reached the one that started second:
/// its start-up removed the first one's file to bind its own. Evidence: the kernel's listeners, and the pid that
/// served a connect after the removal (SO_PEERCRED).
fn second_worker(run: &RunRecord, removed: &Event) -> Option<(String, String)> {
    let expected = run.expected.socket_path()?;
    let listeners: Vec<i32> = run.events.listeners().iter().filter(|l| l.3 == expected).map(|l| l.1).collect();
    let served = run.events.after(removed.t_us).find_map(|e| match &e.kind {
        EventKind::Connect { peer: Some(pid), .. } => Some((e, *pid)),
        _ => None,
    });
    let (connect, new_owner) = served?;
    let first_owner = listeners.iter().copied().find(|p| *p != new_owner)?;
    if !listeners.contains(&new_owner) || !alive_at(run, first_owner, removed.t_us) {
        return None;
    }
    let started = run.events.first(|k| match k {
        EventKind::Spawned { pid, .. } if *pid == new_owner => Some(()),
        _ => None,
    });
    let start = started.map_or(String::new(), |(e, _)| format!("pid {new_owner} started at {}; ", fmt_ms(e.t_us)));
    Some((
        format!("a second worker for the same session (pid {new_owner})"),
        format!(
            "{start}both pid {first_owner} and pid {new_owner} listened at {expected}; after the removal a client \
             reached pid {new_owner} (at {}), while pid {first_owner}, alive, kept a listener nobody can reach",
            fmt_ms(connect.t_us)
        ),
    ))
}

/// True when `pid` had shown up by `t_us` and had not exited (beyond the observers' skew) before it.
fn alive_at(run: &RunRecord, pid: i32, t_us: u64) -> bool {
    let skew = run.events.skew_us(OBSERVER_SKEW_US);
    let appeared = run.events.iter().any(|e| e.t_us <= t_us + skew && mentions(&e.kind, pid));
    let gone = run.events.own_exits().any(|(e, p, _)| p == pid && e.t_us + skew < t_us);
    appeared && !gone
}

fn mentions(kind: &EventKind, pid: i32) -> bool {
    match kind {
        EventKind::Spawned { pid: p, .. }
        | EventKind::Exited { pid: p, .. }
        | EventKind::SocketBound { pid: p, .. }
        | EventKind::WorkerView { pid: p, .. } => *p == pid,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::facts::tcp_run;
    use crate::hypotheses::testing::{bound, connect, created, record, PATH};
    use crate::{ConnectResult, ExitStatus, IpFamily, StdioMode};

    fn listen() -> EventKind {
        EventKind::TcpListening { pid: 10, inode: 7, address: "127.0.0.1".into(), port: 4000, family: IpFamily::Ipv4 }
    }

    fn closed() -> EventKind {
        EventKind::TcpClosed { pid: 10, inode: 7, address: "127.0.0.1".into(), port: 4000 }
    }

    #[test]
    fn a_listener_closed_by_a_live_process_is_confirmed() {
        let end = EventKind::EndState { path: "127.0.0.1:4000".into(), file_type: None, live_pids: vec![10] };
        let f = judge(&tcp_run(vec![(5, listen()), (50_000, closed()), (90_000, end)]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.summary.contains("still alive"), "{}", f.summary);
    }

    #[test]
    fn a_listener_closed_with_its_process_is_an_exit_not_h9() {
        let exit = EventKind::Exited { pid: 10, status: ExitStatus::Code(1) };
        let f = judge(&tcp_run(vec![(5, listen()), (50_000, exit), (50_100, closed())]));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    /// A port probe: listen, close, listen again on a new socket 60 ms later; served to the end.
    #[test]
    fn a_listener_replaced_on_the_same_port_that_serves_to_the_end_is_not_h9() {
        let again = EventKind::TcpListening {
            pid: 10,
            inode: 8,
            address: "127.0.0.1".into(),
            port: 4000,
            family: IpFamily::Ipv4,
        };
        let end = EventKind::EndState { path: "127.0.0.1:4000".into(), file_type: None, live_pids: vec![10] };
        let served = EventKind::Connect {
            path: "127.0.0.1:4000".into(),
            result: ConnectResult::Connected,
            detail: "connected".into(),
            peer: None,
        };
        let events = vec![(5, listen()), (50_000, closed()), (110_000, again), (89_000, served), (90_000, end)];
        let mut events = events;
        events.sort_by_key(|(t, _)| *t);
        let f = judge(&tcp_run(events.clone()));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
        // The same close with nobody serving at the end is a closed listener.
        let unserved: Vec<_> = events.into_iter().filter(|(_, k)| !matches!(k, EventKind::Connect { .. })).collect();
        assert_eq!(judge(&tcp_run(unserved)).status, Status::Confirmed);
    }

    #[test]
    fn a_file_the_worker_replaces_and_serves_to_the_end_is_not_h9() {
        let end = EventKind::EndState { path: PATH.into(), file_type: Some(FileType::Socket), live_pids: vec![7] };
        let events = |last: ConnectResult| {
            vec![
                (1, spawned(7)),
                (5, created()),
                (7, removed()),
                (8, created()),
                (9, bound(7, true)),
                (20, connect(last, None)),
                (21, end.clone()),
            ]
        };
        let f = judge(&record(StdioMode::Ignore, events(ConnectResult::Connected)));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
        assert!(f.summary.contains("replaced"), "{}", f.summary);
        assert_eq!(judge(&record(StdioMode::Ignore, events(ConnectResult::Refused))).status, Status::Confirmed);
    }

    fn spawned(pid: i32) -> EventKind {
        EventKind::Spawned { pid, argv: vec!["w".into()] }
    }

    fn removed() -> EventKind {
        EventKind::FileRemoved { path: PATH.into() }
    }

    #[test]
    fn the_second_worker_that_clients_reach_after_the_removal_removed_it() {
        let run = record(
            StdioMode::Ignore,
            vec![
                (1, spawned(7)),
                (2, spawned(8)),
                (5, created()),
                (6, bound(7, true)),
                (7, removed()),
                (8, created()),
                (9, bound(8, true)),
                (20, connect(ConnectResult::Connected, Some(8))),
            ],
        );
        let f = judge(&run);
        assert_eq!(f.status, Status::Confirmed);
        assert!(f.summary.contains("by a second worker for the same session (pid 8)"), "{}", f.summary);
        assert_eq!(f.timing, Some(("created → removed", 2)));
    }

    #[test]
    fn the_only_process_alive_removed_it() {
        let exited = EventKind::Exited { pid: 7, status: ExitStatus::Code(1) };
        let run = record(
            StdioMode::Ignore,
            // Milliseconds apart, as the second worker that found the lock taken leaves long before.
            vec![
                (1_000, spawned(7)),
                (2_000, spawned(8)),
                (3_000, EventKind::Exited { pid: 8, status: ExitStatus::Code(0) }),
                (5_000, created()),
                (6_000, bound(7, true)),
                (50_000, removed()),
                (51_000, exited),
            ],
        );
        let f = judge(&run);
        assert!(f.summary.contains("by the worker itself (pid 7)"), "{}", f.summary);
    }
}
