//! H4: the worker binds somewhere other than where clients look — another socket path, or on TCP another host,
//! port or address family.

use super::facts::{serves_host, unseen_listener, worker_pids};
use crate::{per_run, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct PathMismatch;

impl Probe for PathMismatch {
    fn id(&self) -> &'static str {
        "H4"
    }
    fn causal_rank(&self) -> u8 {
        80
    }
    fn title(&self) -> &'static str {
        "socket path or address mismatch"
    }
    fn checks(&self) -> &'static str {
        "Compares the path the kernel shows the worker's listening socket bound to (and any socket file that \
         appeared) with the expected path — on TCP, the host, port and family of the worker tree's listeners with \
         the expected address — and the worker's own environment with the one the profile gives it. A run that never \
         bound has nothing to compare and is left to the runs that did; one that said it listens where no listener \
         was seen is inconclusive."
    }
    fn fix(&self) -> &'static str {
        "Compute the socket path in one shared function from one setting; pass the data-dir variable explicitly in \
         the spawn's env; resolve relative paths against a known directory, not the worker's cwd."
    }
    fn live_look(&self) -> bool {
        true
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    match (run.expected.socket_path(), run.expected.tcp()) {
        (Some(path), _) => judge_unix(run, path),
        (None, Some((host, port))) => judge_tcp(run, host, port),
        (None, None) => Finding::new(Status::NotApplicable, "no endpoint to compare", vec![]),
    }
}

fn judge_unix(run: &RunRecord, expected: &str) -> Finding {
    let id = run.id;
    let sockets: Vec<(u64, String, String)> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SocketBound { path, listening: true, .. } => Some((e.t_us, path.clone(), e.kind.describe())),
            EventKind::FileCreated { path, file_type: FileType::Socket } => {
                Some((e.t_us, path.clone(), e.kind.describe()))
            }
            // A file at the expected path that was gone before it could be looked at is named by its path alone.
            EventKind::FileCreated { path, file_type: FileType::Unknown | FileType::Gone } if path == expected => {
                Some((e.t_us, path.clone(), e.kind.describe()))
            }
            _ => None,
        })
        .collect();
    if let Some((t, _, text)) = sockets.iter().find(|(_, path, _)| path == expected) {
        return Finding::new(
            Status::RuledOut,
            format!("the worker bound the expected path {expected}"),
            vec![Evidence::at(id, *t, text.clone())],
        );
    }
    let mut evidence: Vec<Evidence> = sockets.iter().map(|(t, _, text)| Evidence::at(id, *t, text.clone())).collect();
    let env_diffs = env_differences(run);
    evidence.extend(env_diffs.iter().cloned());
    if let Some((_, path, _)) = sockets.first() {
        evidence.insert(0, Evidence::run(id, format!("expected {expected}")));
        return Finding::new(Status::Confirmed, format!("the worker bound {path} instead of {expected}"), evidence);
    }
    if !env_diffs.is_empty() {
        return Finding::new(
            Status::Confirmed,
            "the worker's environment differs from the one the profile sets",
            evidence,
        );
    }
    no_listener(run, &format!("listener or socket file (expected {expected})"))
}

/// No listener of the worker was seen: inconclusive when it said it listens or a client reached it (it bound, but
/// not where it could be seen), otherwise the run never got as far as a bind and has nothing to compare.
fn no_listener(run: &RunRecord, what: &str) -> Finding {
    let id = run.id;
    match unseen_listener(run) {
        Some(sign) => Finding::new(
            Status::Inconclusive,
            "the worker listened (its \"listening\" line, or a client it accepted), but none of its listeners was \
             seen: nothing to compare",
            vec![Evidence::at(id, sign.t_us, sign.kind.describe()), Evidence::run(id, format!("missing: a {what}"))],
        ),
        None => Finding::new(
            Status::NotApplicable,
            "the worker never bound (no listener, socket file or \"listening\" line): nothing to compare",
            vec![Evidence::run(id, format!("no {what} during observation"))],
        ),
    }
}

fn judge_tcp(run: &RunRecord, host: &str, port: u16) -> Finding {
    let id = run.id;
    let target = run.expected.endpoint.target();
    let listeners: Vec<_> = run.events.tcp_listeners().into_iter().filter(|l| run.events.before_stop(l.0)).collect();
    if let Some(l) = listeners.iter().find(|l| l.4 == port && serves_host(l.3, host)) {
        return Finding::new(
            Status::RuledOut,
            format!("the worker listens on the expected address {target}"),
            vec![Evidence::at(id, l.0.t_us, l.0.kind.describe())],
        );
    }
    let mut evidence: Vec<Evidence> =
        listeners.iter().map(|l| Evidence::at(id, l.0.t_us, l.0.kind.describe())).collect();
    evidence.extend(worker_env(run));
    let Some(first) = listeners.first() else {
        let diffs = env_differences(run);
        if !diffs.is_empty() {
            return Finding::new(
                Status::Confirmed,
                "the worker's environment differs from the one the profile sets",
                diffs,
            );
        }
        return no_listener(run, &format!("TCP listener of the worker (expected {target})"));
    };
    evidence.insert(0, Evidence::run(id, format!("clients dial {target}")));
    let bound = crate::timeline::host_port(first.3, first.4);
    let how = if first.4 == port { "the same port on another address or family" } else { "another port" };
    Finding::new(Status::Confirmed, format!("the worker listens on {bound} instead of {target} ({how})"), evidence)
}

/// The profile-set variables as the worker saw them: each one equal to the profile's value, or not.
fn worker_env(run: &RunRecord) -> Vec<Evidence> {
    let diffs = env_differences(run);
    if !diffs.is_empty() {
        return diffs;
    }
    let pids = worker_pids(run);
    let Some((view, env)) = run.events.first(|k| match k {
        EventKind::WorkerView { pid, env, .. } if pids.contains(pid) => Some(env),
        _ => None,
    }) else {
        return vec![];
    };
    // The settings that name the expected port are the ones the worker should have used.
    let port = run.expected.tcp().map(|(_, p)| p.to_string()).unwrap_or_default();
    let set: Vec<(&String, &String)> = run.expected.env.keys().filter_map(|k| env.get(k).map(|v| (k, v))).collect();
    let naming_port: Vec<(&String, &String)> = set.iter().copied().filter(|(_, v)| v.contains(&port)).collect();
    let cited = if naming_port.is_empty() { set } else { naming_port };
    cited
        .into_iter()
        .map(|(k, v)| {
            Evidence::at(
                run.id,
                view.t_us,
                format!("worker env {k}={v:?}, as the profile sets: the bound address comes from another setting"),
            )
        })
        .collect()
}

/// Profile-set variables whose value in the worker's own environment differs.
fn env_differences(run: &RunRecord) -> Vec<Evidence> {
    let pids = worker_pids(run);
    let Some((view, env)) = run.events.first(|k| match k {
        EventKind::WorkerView { pid, env, .. } if pids.contains(pid) => Some(env),
        _ => None,
    }) else {
        return vec![];
    };
    run.expected
        .env
        .iter()
        .filter(|(k, v)| env.get(*k) != Some(*v))
        .map(|(k, v)| {
            let actual = env.get(k).map_or("unset".to_string(), |a| format!("{a:?}"));
            Evidence::at(run.id, view.t_us, format!("worker env {k} is {actual}, the profile sets {v:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::facts::tcp_run;
    use crate::hypotheses::testing::{bound, connect, created, record};
    use crate::{ConnectResult, ExitStatus, IpFamily, Marker, Status, StdioMode, Stream};

    fn exited(code: i32) -> EventKind {
        EventKind::Exited { pid: 10, status: ExitStatus::Code(code) }
    }

    fn listening_line() -> EventKind {
        EventKind::Line { stream: Stream::Stderr, text: "listening".into(), markers: vec![Marker::Listening] }
    }

    #[test]
    fn runs_that_never_bound_leave_the_runs_that_bound_to_decide() {
        let spawned = EventKind::Spawned { pid: 10, argv: vec!["w".into()] };
        let bound_right = record(StdioMode::File, vec![(1, spawned.clone()), (2, bound(10, true)), (3, created())]);
        let mut never = record(StdioMode::File, vec![(1, spawned), (5, exited(1))]);
        never.id = 2;
        assert_eq!(judge(&never).status, Status::NotApplicable, "{}", judge(&never).summary);
        let f = PathMismatch.evaluate(&[bound_right, never]);
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
        assert!(f.described().ends_with("(1/1 runs with evidence, of 2)"), "{}", f.described());
    }

    #[test]
    fn a_worker_that_says_it_listens_where_no_listener_was_seen_is_inconclusive() {
        let f = judge(&record(StdioMode::File, vec![(1, listening_line())]));
        assert_eq!(f.status, Status::Inconclusive, "{}", f.summary);
        let served = record(StdioMode::Ignore, vec![(1, connect(ConnectResult::Connected, Some(10)))]);
        assert_eq!(judge(&served).status, Status::NotApplicable, "pid 10 was never seen: not the worker's");
    }

    #[test]
    fn a_tcp_client_served_by_another_process_is_no_sign_of_the_worker() {
        let connected = || EventKind::Connect {
            path: "127.0.0.1:4000".into(),
            result: ConnectResult::Connected,
            detail: String::new(),
            peer: None,
        };
        let held = EventKind::AddressHeld { address: "127.0.0.1:4000".into(), inode: 9, holder: None };
        let f = judge(&tcp_run(vec![(1, held), (2, connected()), (3, exited(0))]));
        assert_eq!(f.status, Status::NotApplicable, "{}", f.summary);
        let f = judge(&tcp_run(vec![(2, connected())]));
        assert_eq!(f.status, Status::Inconclusive, "{}", f.summary);
    }

    fn listening(address: &str, port: u16, family: IpFamily) -> EventKind {
        EventKind::TcpListening { pid: 10, inode: 7, address: address.into(), port, family }
    }

    #[test]
    fn ipv6_loopback_is_not_what_ipv4_clients_dial() {
        let run = tcp_run(vec![(5, listening("::1", 4000, IpFamily::Ipv6))]);
        let f = judge(&run);
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.summary.contains("[::1]:4000") && f.summary.contains("another address or family"), "{}", f.summary);
    }

    #[test]
    fn a_wildcard_serves_the_expected_address() {
        assert_eq!(judge(&tcp_run(vec![(5, listening("0.0.0.0", 4000, IpFamily::Ipv4))])).status, Status::RuledOut);
        assert_eq!(judge(&tcp_run(vec![(5, listening("::", 4000, IpFamily::Ipv6))])).status, Status::RuledOut);
    }
}
