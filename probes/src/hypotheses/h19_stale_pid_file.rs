//! H19: the pid file is stale — it names a process that is gone, or one that is not the worker, while the tooling
//! that reads it believes the worker runs.

use crate::{per_run, Event, EventKind, Evidence, Finding, PidFileState, Probe, RunRecord, Status};

pub struct StalePidFile;

impl Probe for StalePidFile {
    fn id(&self) -> &'static str {
        "H19"
    }
    fn causal_rank(&self) -> u8 {
        180
    }
    fn title(&self) -> &'static str {
        "stale pid file"
    }
    fn checks(&self) -> &'static str {
        "TCP workers with an [observe] pid_file. Reads the pid file as it changes and when observation ends, and \
         checks the pid it names: alive or not, and whether it is a process of the worker's tree. Confirmed when, \
         at the end, it names a process that is gone or is not the worker."
    }
    fn fix(&self) -> &'static str {
        "Write the pid file from the process that serves (after a daemon's fork), remove it on every exit path, and \
         have readers check that the pid is alive and is the worker (its exe or command line), not only that the \
         file exists."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    if run.expected.tcp().is_none() {
        return Finding::new(Status::NotApplicable, "the worker serves a Unix socket, not a TCP address", vec![]);
    }
    let Some(path) = &run.expected.pid_file else {
        return Finding::new(Status::NotApplicable, "the profile names no pid file", vec![]);
    };
    let seen: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| run.events.before_stop(e) && matches!(e.kind, EventKind::PidFile { .. }))
        .collect();
    let Some(last) = seen.last() else {
        return Finding::new(
            Status::Inconclusive,
            format!("the pid file {path} was not checked"),
            vec![Evidence::run(id, "missing: a read of the pid file")],
        );
    };
    let EventKind::PidFile { pid, state, .. } = &last.kind else { unreachable!("filtered on PidFile") };
    let mut evidence = Vec::new();
    if let Some(first) = seen.iter().find(|e| matches!(&e.kind, EventKind::PidFile { pid: p, .. } if p == pid)) {
        if first.t_us != last.t_us {
            evidence.push(Evidence::at(id, first.t_us, first.kind.describe()));
        }
    }
    if let Some((e, _, status)) = pid.and_then(|p| run.events.own_exits().find(|(_, q, _)| *q == p)) {
        evidence.push(Evidence::at(id, e.t_us, format!("pid {} {status}", pid.unwrap_or_default())));
    }
    evidence.push(Evidence::at(id, last.t_us, last.kind.describe()));
    evidence.sort_by_key(|e| e.t_us);
    let pid = pid.map_or("no pid".to_string(), |p| format!("pid {p}"));
    match state {
        PidFileState::Gone => Finding::new(
            Status::Confirmed,
            format!("the pid file {path} names {pid}, which is no longer running"),
            evidence,
        ),
        PidFileState::NotWorker => Finding::new(
            Status::Confirmed,
            format!("the pid file {path} names {pid}, a live process that is not the worker"),
            evidence,
        ),
        PidFileState::Worker => {
            Finding::new(Status::RuledOut, format!("the pid file names {pid}, the live worker"), evidence)
        }
        PidFileState::Absent => Finding::new(
            Status::RuledOut,
            format!("no pid file at {path} when observation ended, so nothing claims a dead worker runs"),
            evidence,
        ),
        PidFileState::Invalid => {
            Finding::new(Status::Inconclusive, format!("the pid file {path} holds no pid"), evidence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::facts::tcp_run;

    fn pid_file(pid: i32, state: PidFileState) -> EventKind {
        EventKind::PidFile { path: "/s/worker.pid".into(), pid: Some(pid), state, detail: String::new() }
    }

    #[test]
    fn a_live_process_that_is_not_the_worker_is_confirmed() {
        let f = judge(&tcp_run(vec![(5, pid_file(4242, PidFileState::NotWorker))]));
        assert_eq!(f.status, Status::Confirmed);
        assert!(f.summary.contains("not the worker"), "{}", f.summary);
    }

    #[test]
    fn the_last_reading_before_the_stop_decides() {
        let stop = EventKind::HarnessStop { how: "SIGTERM".into() };
        let run =
            tcp_run(vec![(5, pid_file(10, PidFileState::Worker)), (9, stop), (12, pid_file(10, PidFileState::Gone))]);
        assert_eq!(judge(&run).status, Status::RuledOut);
    }
}
