//! H18: the TCP address is held by another live process (often an older worker), so the worker cannot listen.

use super::facts::{looks_like_error, serves_host};
use crate::{per_run, ConnectResult, Event, EventKind, Evidence, Finding, Probe, RunRecord, Status};

pub struct AddressHeld;

impl Probe for AddressHeld {
    fn id(&self) -> &'static str {
        "H18"
    }
    fn causal_rank(&self) -> u8 {
        90
    }
    fn title(&self) -> &'static str {
        "address held by another live process"
    }
    fn checks(&self) -> &'static str {
        "TCP only. Looks for a listener on the expected address that belongs to no process of the worker's tree \
         (/proc/net/tcp and tcp6 joined with every process's descriptors) and names it: pid, command line, how long \
         it has been running. Confirmed when such a holder exists and the worker never listened there, or \
         when the worker itself reports the address in use (EADDRINUSE, \"in use\"); its words are cited. Ruled \
         out when the worker listens there itself, or nothing listened there at all."
    }
    fn fix(&self) -> &'static str {
        "Stop the holder (an older worker: ask it to shut down, or kill the pid named) before starting a new one; \
         or have the new worker check the holder's health and reuse it instead of exiting silently."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let Some((host, port)) = run.expected.tcp() else {
        return Finding::new(Status::NotApplicable, "the worker serves a Unix socket, not a TCP address", vec![]);
    };
    let target = run.expected.endpoint.target();
    let own = run.events.tcp_listeners().into_iter().find(|l| l.4 == port && serves_host(l.3, host));
    if let Some(own) = own {
        return Finding::new(
            Status::RuledOut,
            format!("the worker itself listens on {target}"),
            vec![Evidence::at(id, own.0.t_us, own.0.kind.describe())],
        );
    }
    if let Some(held) = run.events.foreign_holders().next() {
        return confirmed(run, held, &target);
    }
    if let Some(said) = run.events.iter().find(|e| run.events.before_stop(e) && says_in_use(&e.kind)) {
        return Finding::new(
            Status::Confirmed,
            format!("the worker reports {target} in use, though no holder was visible from here"),
            vec![
                Evidence::at(id, said.t_us, format!("the worker said: {}", said.kind.describe())),
                Evidence::run(id, "missing: a listener on the address in this network namespace (another namespace?)"),
            ],
        );
    }
    let connects: Vec<&Event> = run.events.iter().filter(|e| matches!(e.kind, EventKind::Connect { .. })).collect();
    let refused = |e: &&Event| matches!(e.kind, EventKind::Connect { result: ConnectResult::Refused, .. });
    match connects.first() {
        Some(first) if connects.iter().all(refused) => Finding::new(
            Status::RuledOut,
            format!("nothing listened on {target}: every connect was refused"),
            vec![Evidence::at(id, first.t_us, first.kind.describe())],
        ),
        _ => Finding::new(
            Status::Inconclusive,
            format!("the worker did not listen on {target}, and no other holder was found"),
            vec![Evidence::run(id, format!("missing: a listener on {target}"))],
        ),
    }
}

fn confirmed(run: &RunRecord, held: &Event, target: &str) -> Finding {
    let id = run.id;
    let mut evidence = vec![Evidence::at(id, held.t_us, held.kind.describe())];
    let said = run.events.iter().filter(|e| says_in_use(&e.kind)).take(3);
    evidence.extend(said.map(|e| Evidence::at(id, e.t_us, format!("the worker said: {}", e.kind.describe()))));
    if let Some((e, pid, status)) = run.events.own_exits().next() {
        evidence.push(Evidence::at(id, e.t_us, format!("pid {pid} {status}")));
    }
    let EventKind::AddressHeld { holder, .. } = &held.kind else { unreachable!("matched AddressHeld") };
    let who = match holder {
        Some(h) => format!("pid {} ({}), running for {}", h.pid, h.cmdline, crate::timeline::fmt_age(h.age_ms)),
        None => "a process that could not be identified".to_string(),
    };
    Finding::new(Status::Confirmed, format!("{target} is held by {who}; the worker never listened there"), evidence)
}

/// A line of the worker's that reports a busy address.
fn says_in_use(kind: &EventKind) -> bool {
    match kind {
        EventKind::Line { text, .. } | EventKind::LogLine { text, .. } => {
            let lower = text.to_ascii_lowercase();
            text.contains("EADDRINUSE")
                || (lower.contains("in use") && (looks_like_error(text) || lower.contains("port")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::facts::tcp_run;
    use crate::{AddressHolder, Stream};

    #[test]
    fn the_holder_is_named_with_its_age() {
        let holder = AddressHolder {
            pid: 77,
            exe: "/usr/bin/bun".into(),
            cmdline: "bun worker-service.cjs".into(),
            age_ms: 7_200_000,
            started_unix_s: None,
        };
        let held = EventKind::AddressHeld { address: "127.0.0.1:4000".into(), inode: 9, holder: Some(holder) };
        let f = judge(&tcp_run(vec![(1, held)]));
        assert_eq!(f.status, Status::Confirmed);
        assert!(f.summary.contains("pid 77 (bun worker-service.cjs), running for 2 h 0 min"), "{}", f.summary);
    }

    #[test]
    fn the_workers_own_eaddrinuse_confirms_without_a_visible_holder() {
        let text = "Error: listen EADDRINUSE: address already in use 127.0.0.1:4000".to_string();
        let line = EventKind::Line { stream: Stream::Stderr, text, markers: vec![] };
        let f = judge(&tcp_run(vec![(1, line)]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }
}
