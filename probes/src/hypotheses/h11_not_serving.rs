//! H11: the endpoint is there but does not serve yet — on a Unix socket the file exists before the server
//! accepts; on TCP connections are accepted but the health check fails or says "not ready".

use super::facts::{in_other_mount_ns, looks_like_error, serves_host};
use crate::{fmt_ms, per_run, ConnectResult, Event, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct NotServing;

impl Probe for NotServing {
    fn id(&self) -> &'static str {
        "H11"
    }
    fn causal_rank(&self) -> u8 {
        160
    }
    fn title(&self) -> &'static str {
        "endpoint present but not serving"
    }
    fn checks(&self) -> &'static str {
        "Unix socket: the first connect after the socket file appeared — refused, then accepted later, is the race \
         (the window is reported). TCP with a [health] check: the HTTP GET after a connection was accepted — a \
         failed request, a non-2xx status or a body that does not match `ready` is confirmed, with the body and \
         the worker's lines around it. A run with no socket file clients could reach (none appeared, or no connect \
         got as far as it), or whose worker never listened on the address, is left to the runs that had one."
    }
    fn fix(&self) -> &'static str {
        "Announce readiness only once the server accepts and its dependencies are initialised; have clients wait \
         for the health check (with a deadline) rather than for the file or the port; log why the worker is not \
         ready where its launcher can see it."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        if runs.iter().all(|r| r.expected.tcp().is_some() && r.expected.health.is_none()) {
            return Finding::new(
                Status::NotApplicable,
                "the profile defines no [health] check for its TCP endpoint",
                vec![],
            );
        }
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    match run.expected.socket_path() {
        Some(path) => judge_unix(run, path),
        None => judge_tcp(run),
    }
}

/// The removal of the file, or the exit of the last process of the tree, after `t_us` and before any harness stop.
fn never_served_again<'a>(run: &'a RunRecord, expected: &str, t_us: u64) -> Option<&'a Event> {
    let removed = run.events.after(t_us).find(|e| {
        run.events.before_stop(e)
            && matches!(&e.kind, EventKind::FileRemoved { path } | EventKind::FileRenamed { from: path, .. } if path == expected)
    });
    let tree_ended = || {
        let live_at_end = run.events.end_state().is_some_and(|(_, _, live)| !live.is_empty());
        (!live_at_end).then(|| run.events.own_exits().last().map(|(e, _, _)| e)).flatten()
    };
    removed.or_else(tree_ended)
}

fn judge_unix(run: &RunRecord, expected: &str) -> Finding {
    let id = run.id;
    let created = run
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::FileCreated { path, file_type: FileType::Socket } if path == expected));
    let Some(created) = created else { return no_file(run, expected) };
    // The create is stamped by the inotify thread, which may lag: a kernel-listed socket at the path, or a
    // connect that found the file, proves it existed earlier.
    let since = run.events.iter().find(|e| proves_file(&e.kind, expected)).map_or(created.t_us, |e| e.t_us);
    let connects: Vec<(&Event, ConnectResult)> = run
        .events
        .iter()
        .filter(|e| e.t_us >= since && run.events.before_stop(e))
        .filter_map(|e| match &e.kind {
            EventKind::Connect { result, .. } => Some((e, *result)),
            _ => None,
        })
        .collect();
    let mut evidence = vec![Evidence::at(id, created.t_us, created.kind.describe())];
    let Some((first, result)) = connects.first() else {
        return Finding::new(Status::Inconclusive, "no connect was tried after the file appeared", evidence);
    };
    evidence.push(Evidence::at(id, first.t_us, first.kind.describe()));
    if *result == ConnectResult::Connected {
        return Finding::new(Status::RuledOut, "the first connect after the file appeared was accepted", evidence)
            .timed("file → accepted", first.t_us.saturating_sub(since));
    }
    // Accepting shows as a connect that succeeds, or as the kernel listing the socket as listening — whichever the
    // observers saw first (a starved retry may come only after the worker is gone).
    let accepted = run.events.after(first.t_us).find(|e| {
        run.events.before_stop(e)
            && match &e.kind {
                EventKind::Connect { result, .. } => *result == ConnectResult::Connected,
                EventKind::SocketBound { path, listening, .. } => *listening && path == expected,
                _ => false,
            }
    });
    let Some(ok) = accepted else {
        if !connects.iter().any(|(_, r)| matches!(r, ConnectResult::Refused | ConnectResult::TimedOut)) {
            // Gone (see H9), or a path no client can dial (see H13): no connect got as far as the socket.
            return Finding::new(
                Status::NotApplicable,
                format!("no client reached the socket at {expected}: nothing to race"),
                evidence,
            );
        }
        // Refused, then removed or left by a worker that ended: it never served, so there was no race to lose.
        if let Some(end) = never_served_again(run, expected, first.t_us) {
            evidence.push(Evidence::at(id, end.t_us, end.kind.describe()));
            return Finding::new(
                Status::NotApplicable,
                format!("the socket at {expected} refused, then ended without ever accepting (see H1, H9): no race"),
                evidence,
            );
        }
        return Finding::new(
            Status::Inconclusive,
            "the socket at the path was never seen accepting: not a race (see H1, H9)",
            evidence,
        );
    };
    // The last refusal seen before accepting bounds the window from below, whatever the observers' own delays.
    let last_refused = connects
        .iter()
        .rev()
        .find(|(e, r)| *r == ConnectResult::Refused && e.t_us < ok.t_us)
        .map_or(*first, |(e, _)| *e);
    if last_refused.t_us != first.t_us {
        evidence.push(Evidence::at(id, last_refused.t_us, last_refused.kind.describe()));
    }
    evidence.push(Evidence::at(id, ok.t_us, ok.kind.describe()));
    let at_least = fmt_ms(last_refused.t_us.saturating_sub(since)).trim_start_matches('+').to_string();
    let by = fmt_ms(ok.t_us.saturating_sub(since)).trim_start_matches('+').to_string();
    if last_refused.t_us.saturating_sub(since) < CLIENT_RETRY_US {
        return Finding::new(
            Status::RuledOut,
            format!("connects were refused for {at_least} only (accepted by {by}), shorter than a client's retry loop"),
            evidence,
        )
        .timed("file → accepted", ok.t_us.saturating_sub(since));
    }
    Finding::new(
        Status::Confirmed,
        format!("the socket file existed and refused connections for at least {at_least} (accepted by {by})"),
        evidence,
    )
    .timed("file → accepted", ok.t_us.saturating_sub(since))
}

/// No create of a socket at the path: nothing to race, unless the file is known to have been there all the same
/// (the kernel's listing, a connect that found it) and only its creation was not seen.
fn no_file(run: &RunRecord, expected: &str) -> Finding {
    let id = run.id;
    // A bind in another mount namespace (see H16) makes no file that clients here could race for.
    let here = |kind: &EventKind| !matches!(kind, EventKind::SocketBound { pid, .. } if in_other_mount_ns(run, *pid));
    match run.events.iter().find(|e| proves_file(&e.kind, expected) && here(&e.kind)) {
        Some(e) => Finding::new(
            Status::Inconclusive,
            format!("the socket at {expected} was there, but its creation was not seen"),
            vec![
                Evidence::at(id, e.t_us, e.kind.describe()),
                Evidence::run(id, format!("missing: a create of {expected}")),
            ],
        ),
        None => Finding::new(
            Status::NotApplicable,
            format!("no socket file appeared at {expected}: nothing to race"),
            vec![Evidence::run(id, format!("no socket created at {expected} during observation"))],
        ),
    }
}

/// bind() creates the file and listen() follows, microseconds later — tens of milliseconds on a loaded machine.
/// Clients retry a refused connect for about this long; a shorter window is reported, not confirmed. The harness
/// retries at once while refused, so the measured window is the real one.
const CLIENT_RETRY_US: u64 = 100_000;

/// True when an event shows that the socket file existed at its time.
fn proves_file(kind: &EventKind, expected: &str) -> bool {
    match kind {
        EventKind::FileCreated { path, file_type: FileType::Socket } | EventKind::SocketBound { path, .. } => {
            path == expected
        }
        EventKind::Connect { path, result, .. } => {
            path == expected && matches!(result, ConnectResult::Connected | ConnectResult::Refused)
        }
        _ => false,
    }
}

fn judge_tcp(run: &RunRecord) -> Finding {
    let id = run.id;
    let target = run.expected.endpoint.target();
    let held = run.events.foreign_holders().next();
    let answers: Vec<&Event> =
        run.events.iter().filter(|e| run.events.before_stop(e) && matches!(e.kind, EventKind::Health { .. })).collect();
    let listened = own_listener(run);
    if let Some(held) = held {
        let (status, summary) = match listened {
            Some(_) => {
                (Status::Inconclusive, format!("{target} answered, but from another process than the worker (see H18)"))
            }
            None => (
                Status::NotApplicable,
                format!("the worker never listened on {target}; another process answered there (see H18)"),
            ),
        };
        return Finding::new(status, summary, vec![Evidence::at(id, held.t_us, held.kind.describe())]);
    }
    let Some(last) = answers.last() else {
        let accepted =
            run.events.iter().find(|e| matches!(e.kind, EventKind::Connect { result: ConnectResult::Connected, .. }));
        return match listened.or(accepted) {
            Some(e) => Finding::new(
                Status::Inconclusive,
                format!("{target} was listened on, but no health answer came"),
                vec![Evidence::at(id, e.t_us, e.kind.describe()), Evidence::run(id, "missing: a health answer")],
            ),
            None => Finding::new(
                Status::NotApplicable,
                format!(
                    "the worker never listened on {target} and no connection was accepted: no health answer to judge"
                ),
                vec![Evidence::run(id, format!("no listener of the worker on {target}, no accepted connection"))],
            ),
        };
    };
    let accepted = run.events.first(|k| match k {
        EventKind::Connect { result: ConnectResult::Connected, .. } => Some(()),
        _ => None,
    });
    let mut evidence: Vec<Evidence> =
        accepted.iter().map(|(e, _)| Evidence::at(id, e.t_us, e.kind.describe())).collect();
    if matches!(last.kind, EventKind::Health { ready: true, .. }) {
        evidence.push(Evidence::at(id, last.t_us, last.kind.describe()));
        return Finding::new(Status::RuledOut, "the health check answered ready", evidence);
    }
    let first_bad = answers.iter().find(|e| matches!(e.kind, EventKind::Health { ready: false, .. })).unwrap_or(last);
    evidence.push(Evidence::at(id, first_bad.t_us, first_bad.kind.describe()));
    if first_bad.t_us != last.t_us {
        evidence.push(Evidence::at(id, last.t_us, last.kind.describe()));
    }
    evidence.extend(lines_around(run, first_bad.t_us));
    evidence.sort_by_key(|e| e.t_us);
    let EventKind::Health { url, status, detail, .. } = &last.kind else { unreachable!("filtered on Health") };
    let said = match status {
        Some(code) if (200..300).contains(code) => format!("GET {url} answers {code} but not ready"),
        Some(code) => format!("GET {url} answers {code}"),
        None => format!("GET {url} fails: {detail}"),
    };
    Finding::new(Status::Confirmed, format!("connections to {target} are accepted, yet {said}"), evidence)
}

/// The worker tree's listener on the expected address, if it had one.
fn own_listener(run: &RunRecord) -> Option<&Event> {
    let (host, port) = run.expected.tcp()?;
    run.events.tcp_listeners().into_iter().find(|l| l.4 == port && serves_host(l.3, host)).map(|l| l.0)
}

/// How far from the health answer the worker's lines are shown.
const AROUND_US: u64 = 2_000_000;
/// Lines shown at most.
const LINES_SHOWN: usize = 6;

/// The worker's output and log lines around `t_us`, error lines first, then in time order.
fn lines_around(run: &RunRecord, t_us: u64) -> Vec<Evidence> {
    let mut lines: Vec<(usize, &Event, &str)> = run
        .events
        .iter()
        .filter(|e| e.t_us.abs_diff(t_us) <= AROUND_US && run.events.before_stop(e))
        .filter_map(|e| match &e.kind {
            EventKind::Line { text, .. } | EventKind::LogLine { text, .. } => Some((e, text.as_str())),
            _ => None,
        })
        .enumerate()
        .map(|(i, (e, text))| (i, e, text))
        .collect();
    lines.sort_by_key(|(i, _, text)| (!looks_like_error(text), *i));
    lines.truncate(LINES_SHOWN);
    lines.sort_by_key(|(i, _, _)| *i);
    lines.into_iter().map(|(_, e, _)| Evidence::at(run.id, e.t_us, e.kind.describe())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::facts::tcp_run;

    fn connected() -> EventKind {
        EventKind::Connect {
            path: "127.0.0.1:4000".into(),
            result: ConnectResult::Connected,
            detail: String::new(),
            peer: None,
        }
    }

    fn health(status: Option<u16>, ready: bool) -> EventKind {
        let detail = if status.is_some() { "status".to_string() } else { "timed out".to_string() };
        EventKind::Health { url: "http://127.0.0.1:4000/health".into(), status, ready, body: String::new(), detail }
    }

    #[test]
    fn a_health_request_without_answer_is_confirmed() {
        let f = judge(&tcp_run(vec![(5, connected()), (6, health(None, false))]));
        assert_eq!(f.status, Status::Confirmed);
        assert!(f.summary.contains("fails: timed out"), "{}", f.summary);
    }

    #[test]
    fn the_kernel_listing_the_socket_as_listening_counts_as_accepting() {
        let path = "/s/w.sock".to_string();
        let mut run = tcp_run(vec![]);
        run.expected.endpoint = crate::Endpoint::Unix { path: path.clone() };
        let refused = EventKind::Connect {
            path: path.clone(),
            result: ConnectResult::Refused,
            detail: String::new(),
            peer: None,
        };
        let listening = EventKind::SocketBound { pid: 10, inode: 3, path: path.clone(), listening: true };
        let created = EventKind::FileCreated { path: path.clone(), file_type: FileType::Socket };
        let gone = EventKind::Connect { path, result: ConnectResult::NotFound, detail: String::new(), peer: None };
        run.events = crate::Timeline::new(
            [(1, created), (2, refused), (60_000, listening), (90_000, gone)]
                .into_iter()
                .map(|(t_us, kind)| Event { t_us, kind })
                .collect(),
        );
        let f = judge(&run);
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    fn unix_run(connects: &[(u64, ConnectResult)]) -> RunRecord {
        let path = "/s/w.sock".to_string();
        let mut run = tcp_run(vec![]);
        run.expected.endpoint = crate::Endpoint::Unix { path: path.clone() };
        let mut events =
            vec![Event { t_us: 1, kind: EventKind::FileCreated { path: path.clone(), file_type: FileType::Socket } }];
        events.extend(connects.iter().map(|(t_us, result)| Event {
            t_us: *t_us,
            kind: EventKind::Connect { path: path.clone(), result: *result, detail: String::new(), peer: None },
        }));
        run.events = crate::Timeline::new(events);
        run
    }

    #[test]
    fn refusals_seen_for_long_confirm_the_race() {
        use ConnectResult::{Connected, Refused};
        let f = judge(&unix_run(&[(2, Refused), (150_000, Refused), (152_000, Connected)]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.summary.contains("at least 149.999 ms"), "{}", f.summary);
    }

    #[test]
    fn a_late_look_alone_does_not_make_a_long_window() {
        // One refusal, then the observers were busy: the next attempt, much later, is accepted.
        use ConnectResult::{Connected, Refused};
        let f = judge(&unix_run(&[(2, Refused), (150_000, Connected)]));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    #[test]
    fn runs_without_a_socket_file_leave_the_others_to_decide() {
        use ConnectResult::{Connected, Other};
        let mut never = unix_run(&[]);
        never.events = crate::Timeline::new(vec![]);
        assert_eq!(judge(&never).status, Status::NotApplicable, "{}", judge(&never).summary);
        // A path no client can dial: the socket is there, but no connect gets as far as it.
        let undialable = unix_run(&[(2, Other), (90_000, Other)]);
        assert_eq!(judge(&undialable).status, Status::NotApplicable, "{}", judge(&undialable).summary);
        let served = unix_run(&[(2, Connected)]);
        assert_eq!(NotServing.evaluate(&[served, never, undialable]).status, Status::RuledOut);
    }

    #[test]
    fn a_socket_known_to_exist_whose_creation_was_not_seen_is_inconclusive() {
        let mut run = unix_run(&[(2, ConnectResult::Refused)]);
        run.events = crate::Timeline::new(run.events.iter().filter(|e| e.t_us != 1).cloned().collect());
        assert_eq!(judge(&run).status, Status::Inconclusive, "{}", judge(&run).summary);
    }

    #[test]
    fn a_socket_bound_in_a_private_mount_namespace_is_no_file_here() {
        let path = "/s/w.sock".to_string();
        let mut run = tcp_run(vec![]);
        run.expected.endpoint = crate::Endpoint::Unix { path: path.clone() };
        let ns = EventKind::Namespaces {
            pid: 10,
            same_mnt: false,
            same_net: true,
            path: path.clone(),
            inside: FileType::Socket,
            outside: FileType::Gone,
        };
        let bound = EventKind::SocketBound { pid: 10, inode: 3, path: path.clone(), listening: true };
        let gone = EventKind::Connect { path, result: ConnectResult::NotFound, detail: String::new(), peer: None };
        run.events = crate::Timeline::new(
            [(5, bound), (9, gone), (10, ns)].into_iter().map(|(t_us, kind)| Event { t_us, kind }).collect(),
        );
        assert_eq!(judge(&run).status, Status::NotApplicable, "{}", judge(&run).summary);
    }

    #[test]
    fn a_tcp_worker_that_never_listened_has_no_health_to_judge() {
        let f = judge(&tcp_run(vec![(5, EventKind::Exited { pid: 10, status: crate::ExitStatus::Code(0) })]));
        assert_eq!(f.status, Status::NotApplicable, "{}", f.summary);
        let held = EventKind::AddressHeld { address: "127.0.0.1:4000".into(), inode: 9, holder: None };
        let f = judge(&tcp_run(vec![(1, held), (2, connected()), (3, health(Some(200), true))]));
        assert_eq!(f.status, Status::NotApplicable, "another process answered: {}", f.summary);
        let listening = EventKind::TcpListening {
            pid: 10,
            inode: 7,
            address: "127.0.0.1".into(),
            port: 4000,
            family: crate::IpFamily::Ipv4,
        };
        let f = judge(&tcp_run(vec![(1, listening)]));
        assert_eq!(f.status, Status::Inconclusive, "it listened, but no health answer came: {}", f.summary);
    }

    #[test]
    fn the_workers_own_listener_seen_early_is_no_other_holder() {
        // A look read the kernel's table before it could tie the listener to the worker: the same socket inode.
        let held = EventKind::AddressHeld { address: "127.0.0.1:4000".into(), inode: 7, holder: None };
        let listening = EventKind::TcpListening {
            pid: 10,
            inode: 7,
            address: "127.0.0.1".into(),
            port: 4000,
            family: crate::IpFamily::Ipv4,
        };
        let run = tcp_run(vec![(1, held), (2, listening), (3, connected()), (4, health(Some(200), true))]);
        let f = judge(&run);
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
        let f = crate::hypotheses::h18_address_held::AddressHeld.evaluate(std::slice::from_ref(&run));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    #[test]
    fn ready_in_the_end_rules_it_out() {
        let f = judge(&tcp_run(vec![(5, connected()), (6, health(Some(503), false)), (90, health(Some(200), true))]));
        assert_eq!(f.status, Status::RuledOut);
    }
}
