//! H4: the worker binds somewhere other than where clients look.

use super::facts::worker_pids;
use crate::{per_run, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct PathMismatch;

impl Probe for PathMismatch {
    fn id(&self) -> &'static str {
        "H4"
    }
    fn title(&self) -> &'static str {
        "socket path mismatch"
    }
    fn checks(&self) -> &'static str {
        "Compares the path the kernel shows the worker's listening socket bound to (and any socket file that \
         appeared) with the expected path, and the worker's own environment with the one the profile gives it."
    }
    fn fix(&self) -> &'static str {
        "Compute the socket path in one shared function from one setting; pass the data-dir variable explicitly in \
         the spawn's env; resolve relative paths against a known directory, not the worker's cwd."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let expected = run.expected.socket_path();
    let sockets: Vec<(u64, String, String)> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SocketBound { path, listening: true, .. } => Some((e.t_us, path.clone(), e.kind.describe())),
            EventKind::FileCreated { path, file_type: FileType::Socket } => {
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
    Finding::new(
        Status::Inconclusive,
        "no socket was bound or created, so there is no path to compare",
        vec![Evidence::run(id, format!("missing: a listener or socket file (expected {expected})"))],
    )
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
