//! H7: the command's routing never reaches the worker's main (an entry guard, a CLI dispatch that falls through).

use super::facts::{is_bind, per_run_naming_runtimes, ran, root_exit};
use crate::{EventKind, Evidence, Finding, Lifecycle, Marker, Probe, RunConfig, RunRecord, Status, StdioMode};

pub struct EntryNeverReached;

impl Probe for EntryNeverReached {
    fn id(&self) -> &'static str {
        "H7"
    }
    fn causal_rank(&self) -> u8 {
        20
    }
    fn title(&self) -> &'static str {
        "the worker's main is never reached"
    }
    fn checks(&self) -> &'static str {
        "Whether the spawned process ends without ever writing the profile's entry marker and without any bind \
         (neither the kernel nor inotify saw a socket). Ruled out by the entry marker or a bind. A run that \
         does not read all the output (discarded, a pipe never read or whose reader left) cannot show the marker: \
         it only counts when it bound."
    }
    fn fix(&self) -> &'static str {
        "Make the entry point call main under every runtime and launcher that starts it: an `import.meta.main` or \
         `require.main === module` guard holds under one runtime only; check the CLI's argument routing."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        // A main never reached only under a runtime put in place of the command's is that runtime's what-if.
        let finding = per_run_naming_runtimes(runs, judge);
        if finding.status == Status::NotApplicable {
            return Finding::new(
                Status::Inconclusive,
                "no run that reads the output saw the worker end, and none bound",
                vec![Evidence { run: None, t_us: None, text: "missing: a run whose output is read".into() }],
            );
        }
        finding
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    if let Some(entry) = run.events.marker(Marker::Entry) {
        return Finding::new(
            Status::RuledOut,
            "the worker wrote its entry marker",
            vec![Evidence::at(id, entry.t_us, entry.kind.describe())],
        );
    }
    if let Some(bind) = run.events.iter().find(|e| is_bind(&e.kind)) {
        return Finding::new(
            Status::RuledOut,
            "the worker bound a socket, so its main ran",
            vec![Evidence::at(id, bind.t_us, bind.kind.describe())],
        );
    }
    if !run.expected.markers.contains(&Marker::Entry) {
        return Finding::new(
            Status::Inconclusive,
            "no bind, and the profile sets no entry marker to look for",
            vec![Evidence::run(id, "missing: [markers] entry in the profile")],
        );
    }
    let program = ran(run);
    // Without a bind, a run that does not read all the output cannot decide, whether or not its tree ended.
    if !reads_all_output(&run.config) {
        return Finding::new(
            Status::NotApplicable,
            "this run does not read all the output: the entry marker could not be seen",
            vec![Evidence::run(id, format!("{}: {program} never bound", run.config))],
        );
    }
    // A process of the tree still running (a daemonized child) may yet get to main: only a finished tree decides.
    let still_running = run.events.end_state().is_some_and(|(_, _, live)| !live.is_empty());
    let Some((exit, pid, status)) = root_exit(run).filter(|_| !still_running) else {
        return Finding::new(
            Status::Inconclusive,
            "the worker neither wrote its entry marker nor bound, but had not ended when observation did",
            vec![Evidence::run(id, format!("missing: the end of every process of the worker ({program})"))],
        );
    };
    let lines = run.events.iter().filter(|e| matches!(e.kind, EventKind::Line { .. })).count();
    Finding::new(
        Status::Confirmed,
        format!("{program} {status} without the entry marker and without binding"),
        vec![
            Evidence::run(id, format!("{} ran {program}", super::facts::config_label(run))),
            Evidence::at(id, exit.t_us, format!("pid {pid} {status}")),
            Evidence::run(id, format!("{lines} line(s) of output, none matching the entry marker; no socket bound")),
        ],
    )
}

/// Output that is read for as long as the worker writes: a file, or a pipe whose reader stays. (Discarded output,
/// a pipe nobody reads, or one whose reader left — the worker may even die writing its first line — show nothing.)
fn reads_all_output(config: &RunConfig) -> bool {
    match config.stdio {
        StdioMode::File => true,
        StdioMode::PipeDrained => config.lifecycle == Lifecycle::Stays,
        StdioMode::Ignore | StdioMode::PipeUndrained => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{line, run, under, SOCKET};
    use crate::{ExitStatus, FileType, Runtime};

    fn exit0() -> (u64, EventKind) {
        (5, EventKind::Exited { pid: 10, status: ExitStatus::Code(0) })
    }

    #[test]
    fn an_exit_without_marker_or_bind_in_a_run_that_reads_output_confirms() {
        let piped = RunConfig { stdio: StdioMode::PipeDrained, lifecycle: Lifecycle::Stays, ..RunConfig::PRODUCTION };
        let f = EntryNeverReached.evaluate(&[run(1, piped, vec![exit0()])]);
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }

    #[test]
    fn a_run_that_discards_output_cannot_decide_alone() {
        let prod = RunConfig::PRODUCTION;
        assert_eq!(EntryNeverReached.evaluate(&[run(1, prod, vec![exit0()])]).status, Status::Inconclusive);
        let piped = RunConfig { stdio: StdioMode::PipeDrained, lifecycle: Lifecycle::Stays, ..prod };
        let seen = run(2, piped, vec![(1, line("main() called", &[Marker::Entry])), exit0()]);
        assert_eq!(EntryNeverReached.evaluate(&[run(1, prod, vec![exit0()]), seen]).status, Status::RuledOut);
    }

    /// A runtime that cannot load the worker: a syntax error before main, and an exit.
    fn unloadable() -> Vec<(u64, EventKind)> {
        vec![
            (1, line("SyntaxError: Cannot use import statement outside a module", &[])),
            (5, EventKind::Exited { pid: 10, status: ExitStatus::Code(1) }),
        ]
    }

    #[test]
    fn a_main_never_reached_only_under_a_substituted_runtime_says_so() {
        let file = RunConfig { stdio: StdioMode::File, ..RunConfig::PRODUCTION };
        let as_written = run(1, file, vec![(1, line("main() called", &[Marker::Entry])), bound_at(2)]);
        let node = run(2, under(Runtime::Node, file), unloadable());
        let f = EntryNeverReached.evaluate(&[as_written.clone(), node.clone()]);
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.described().contains("without binding, under node (1/2 runs"), "{}", f.described());
        // As written too: no what-if.
        let both = EntryNeverReached.evaluate(&[run(1, file, unloadable()), node]);
        assert!(!both.summary.contains("under"), "{}", both.summary);
    }

    fn bound_at(t: u64) -> (u64, EventKind) {
        (t, EventKind::FileCreated { path: SOCKET.into(), file_type: FileType::Socket })
    }

    #[test]
    fn a_tree_still_running_is_inconclusive() {
        let piped = RunConfig { stdio: StdioMode::PipeDrained, lifecycle: Lifecycle::Stays, ..RunConfig::PRODUCTION };
        let end = (9, EventKind::EndState { path: SOCKET.into(), file_type: None, live_pids: vec![11] });
        let f = EntryNeverReached.evaluate(&[run(1, piped, vec![exit0(), end])]);
        assert_eq!(f.status, Status::Inconclusive, "{}", f.summary);
    }

    #[test]
    fn a_bind_rules_it_out() {
        let bound = (2, EventKind::FileCreated { path: SOCKET.into(), file_type: FileType::Socket });
        assert_eq!(
            EntryNeverReached.evaluate(&[run(1, RunConfig::PRODUCTION, vec![bound, exit0()])]).status,
            Status::RuledOut
        );
    }
}
