//! H10: the runtime decides — the outcome differs between runs that differ in runtime only, or the launcher runs
//! another runtime than the script's `#!` line names.

use super::facts::{config_label, ran};
use crate::{Dimension, Evidence, Finding, Outcome, Probe, RunRecord, Runtime, Status};

pub struct RuntimeDiffers;

impl Probe for RuntimeDiffers {
    fn id(&self) -> &'static str {
        "H10"
    }
    fn causal_rank(&self) -> u8 {
        100
    }
    fn compares(&self) -> Option<Dimension> {
        Some(Dimension::Runtime)
    }
    fn title(&self) -> &'static str {
        "Bun vs Node runtime"
    }
    fn checks(&self) -> &'static str {
        "Compares runs that differ only in the runtime put in place of the command's (the profile's `runtimes`) \
         and names the pairs whose outcome flips; flags a command as written that runs another runtime than its \
         script's #! line names (from /proc/<pid>/exe). A runtime that is not installed makes it inconclusive."
    }
    fn fix(&self) -> &'static str {
        "Launch the worker with the runtime it is written and tested for (the same in the hook, the shebang and the \
         docs), or make the code path that differs (entry guards, socket path handling, stdio errors) portable."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        let Some(first) = runs.first() else { return Finding::new(Status::Inconclusive, "no runs", vec![]) };
        let finding = judge(runs, first);
        if mismatches(runs).is_empty() {
            return finding;
        }
        let flag = "; note: the command as written runs another runtime than its #! line names";
        Finding { summary: finding.summary + flag, ..finding }
    }
}

fn judge(runs: &[RunRecord], first: &RunRecord) -> Finding {
    let mut evidence = mismatches(runs);
    if first.expected.runtimes.is_empty() {
        let status = if evidence.is_empty() { Status::NotApplicable } else { Status::Inconclusive };
        return Finding::new(status, "the profile names no runtimes to compare", evidence);
    }
    let missing: Vec<&str> =
        first.expected.runtimes.iter().filter(|i| i.path.is_none()).map(|i| i.runtime.name()).collect();
    let (pairs, flips) = compare(runs);
    if !flips.is_empty() {
        let summary = format!(
            "the outcome changes with the runtime in {} of {} pair(s) of runs: {}",
            flips.len(),
            pairs,
            flips[0].0
        );
        evidence.splice(0..0, flips.into_iter().flat_map(|(_, e)| e));
        return Finding::new(Status::Confirmed, summary, evidence);
    }
    if !missing.is_empty() {
        let names = missing.join(", ");
        evidence.insert(0, Evidence { run: None, t_us: None, text: format!("missing: runs under {names}") });
        return Finding::new(Status::Inconclusive, format!("{names} not installed"), evidence);
    }
    if pairs == 0 {
        return Finding::new(Status::Inconclusive, "no two runs differ in runtime only", evidence);
    }
    let names: Vec<String> = runs.iter().map(ran).fold(Vec::new(), |mut acc, p| {
        if !acc.contains(&p) {
            acc.push(p);
        }
        acc
    });
    evidence.insert(0, Evidence { run: None, t_us: None, text: format!("runtimes that ran: {}", names.join(", ")) });
    Finding::new(Status::RuledOut, format!("same outcome under every runtime ({pairs} pair(s) of runs)"), evidence)
}

/// What a runtime can change in how a run ended.
fn key(o: &Outcome) -> (bool, bool, Option<crate::ExitStatus>) {
    (o.healthy, o.reachable, o.exit)
}

/// Counts the pairs of runs that differ in runtime only; returns, per pair of configurations whose outcome flips,
/// a one-line description and the evidence.
fn compare(runs: &[RunRecord]) -> (usize, Vec<(String, Vec<Evidence>)>) {
    let mut pairs = 0;
    let mut flips: Vec<(String, Vec<Evidence>)> = Vec::new();
    let mut seen = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if !a.config.differs_only_in(&b.config, Dimension::Runtime) {
                continue;
            }
            pairs += 1;
            if key(&a.outcome) == key(&b.outcome) || seen.contains(&(a.config, b.config)) {
                continue;
            }
            seen.push((a.config, b.config));
            let side = |r: &RunRecord| format!("{}: {}", runtime_name(&ran(r)), r.outcome.label);
            let line = format!("{} vs {}", side(a), side(b));
            let evidence = [a, b]
                .iter()
                .map(|r| Evidence::run(r.id, format!("{} ran {}: {}", config_label(r), ran(r), r.outcome.label)))
                .collect();
            flips.push((line, evidence));
        }
    }
    (pairs, flips)
}

/// `node` for `/usr/bin/node`, `bun` for `.../bun.exe`; the file name for anything else.
fn runtime_name(program: &str) -> &str {
    match Runtime::of_program(program) {
        Some(runtime) => runtime.name(),
        None => program.rsplit('/').next().unwrap_or(program),
    }
}

/// Runs of the command as written whose executable is another runtime than the script's `#!` line names.
fn mismatches(runs: &[RunRecord]) -> Vec<Evidence> {
    runs.iter()
        .filter(|r| r.config.runtime == Runtime::AsWritten)
        .filter_map(|r| {
            let shebang = r.expected.shebang.as_ref()?;
            let exe = ran(r);
            let (wanted, got) = (Runtime::of_program(&shebang.interpreter)?, Runtime::of_program(&exe)?);
            (wanted != got).then(|| {
                Evidence::run(
                    r.id,
                    format!(
                        "the command as written runs {exe} ({}) while {}'s #! line names {}",
                        got.name(),
                        shebang.script,
                        shebang.interpreter
                    ),
                )
            })
        })
        .take(1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{line, run, runs, under, SOCKET};
    use crate::{ConnectResult, EventKind, ExitStatus, RunConfig, Shebang};

    fn healthy() -> Vec<(u64, EventKind)> {
        vec![
            (
                5,
                EventKind::Connect {
                    path: SOCKET.into(),
                    result: ConnectResult::Connected,
                    detail: String::new(),
                    peer: None,
                },
            ),
            (9, EventKind::EndState { path: SOCKET.into(), file_type: None, live_pids: vec![10] }),
        ]
    }

    fn exits() -> Vec<(u64, EventKind)> {
        vec![(5, EventKind::Exited { pid: 10, status: ExitStatus::Code(0) })]
    }

    fn with_exe(exe: &str, mut events: Vec<(u64, EventKind)>) -> Vec<(u64, EventKind)> {
        events.push((1, runs(exe)));
        events
    }

    #[test]
    fn a_flip_between_runtimes_confirms_and_names_both_runs() {
        let prod = RunConfig::PRODUCTION;
        let a = run(1, prod, with_exe("/usr/bin/node", exits()));
        let b = run(2, under(Runtime::Bun, prod), with_exe("/opt/bun/bun.exe", healthy()));
        let f = RuntimeDiffers.evaluate(&[a, b]);
        assert_eq!(f.status, Status::Confirmed);
        assert!(f.summary.contains("node: exited 0, never reachable vs bun: healthy"), "{}", f.summary);
        assert_eq!(f.evidence.iter().filter_map(|e| e.run).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_runtime_that_cannot_load_the_worker_confirms() {
        let prod = RunConfig::PRODUCTION;
        let as_written = run(1, prod, with_exe("/opt/bun/bun.exe", healthy()));
        let mut unloadable = vec![(2, line("SyntaxError: Unexpected token 'export'", &[]))];
        unloadable.push((4, EventKind::Exited { pid: 10, status: ExitStatus::Code(1) }));
        let node = run(2, under(Runtime::Node, prod), with_exe("/usr/bin/node", unloadable));
        let f = RuntimeDiffers.evaluate(&[as_written, node]);
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.summary.contains("bun: healthy vs node: exited 1, never reachable"), "{}", f.summary);
    }

    #[test]
    fn equal_outcomes_rule_it_out_and_a_missing_runtime_is_inconclusive() {
        let prod = RunConfig::PRODUCTION;
        let (a, b) = (run(1, prod, healthy()), run(2, under(Runtime::Bun, prod), healthy()));
        assert_eq!(RuntimeDiffers.evaluate(&[a.clone(), b]).status, Status::RuledOut);
        let mut alone = a;
        alone.expected.runtimes[0].path = None;
        let f = RuntimeDiffers.evaluate(&[alone]);
        assert_eq!((f.status, f.summary.as_str()), (Status::Inconclusive, "bun not installed"));
    }

    #[test]
    fn no_runtimes_in_the_profile_is_not_applicable_and_a_shebang_mismatch_is_flagged() {
        let mut r = run(1, RunConfig::PRODUCTION, with_exe("/opt/bun/bun.exe", healthy()));
        r.expected.runtimes.clear();
        assert_eq!(RuntimeDiffers.evaluate(&[r.clone()]).status, Status::NotApplicable);
        r.expected.shebang = Some(Shebang { script: "/w.mjs".into(), interpreter: "node".into() });
        let f = RuntimeDiffers.evaluate(&[r]);
        assert!(f.evidence.iter().any(|e| e.text.contains("#! line names node")), "{:?}", f.evidence);
    }
}
