//! H12: errors the worker reported where nobody reads them — in a stream the production configuration discards,
//! or only in a log file — before a failure they may explain.

use super::facts::{
    latest_failure_us, listen_point, looks_like_error, output_read_until, per_run_naming_runtimes, watch_span,
    watched_past, worker_pids,
};
use crate::{fmt_ms, Event, EventKind, Evidence, Finding, Probe, RunRecord, Status, StdioMode, Stream};

pub struct LostErrors;

impl Probe for LostErrors {
    fn id(&self) -> &'static str {
        "H12"
    }
    fn causal_rank(&self) -> u8 {
        190
    }
    fn title(&self) -> &'static str {
        "errors lost to an unread stream or a log file"
    }
    fn checks(&self) -> &'static str {
        "In each run that failed (its outcome is not healthy): error lines (error words, exceptions, errno names) \
         the worker wrote to stdout/stderr after it started listening (or at all, if it never listened) and before \
         the failure (its exit, else the end of observation), in runs that read that output up to the failure, when \
         a configuration of the matrix discards it; and error lines in the profile's log files before the failure. \
         Confirmed when a failed run has some (they are quoted). A healthy run rules it out whatever it wrote: a \
         warning in a healthy run is no error lost. A failed run whose output was not read up to its failure has \
         nothing to say."
    }
    fn fix(&self) -> &'static str {
        "Send the worker's stderr to a file the user can find (or keep reading the pipe), and surface the errors a \
         log file records in the health answer or in the launcher's message."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        let some_discard = runs.iter().any(|r| r.config.discards_output());
        let read_any = runs.iter().any(|r| output_read_until(r).is_some() || !r.expected.logs.is_empty());
        if !read_any && runs.iter().any(|r| !r.outcome.healthy) {
            return Finding::new(
                Status::Inconclusive,
                "every run discarded the worker's output and no log file is followed",
                vec![],
            );
        }
        let fail_at = latest_failure_us(runs);
        per_run_naming_runtimes(runs, |r| judge(r, some_discard, fail_at))
    }
}

/// Lines reach the harness through a pipe reader or a file tail: one written just before the exit may be stamped
/// up to this much after it (the time output may drain after the last exit).
const LINE_LAG_US: u64 = 100_000;
/// Lines quoted at most per source in the evidence.
const LINES_SHOWN: usize = 6;

fn fmt_s(us: u64) -> String {
    format!("{:.2} s", us as f64 / 1e6)
}

fn judge(run: &RunRecord, some_discard: bool, fail_at: Option<u64>) -> Finding {
    let id = run.id;
    // Healthy only for as long as it was watched, shorter than another run took to fail: it has nothing to say.
    if let Some(t) = fail_at.filter(|t| run.outcome.healthy && !watched_past(run, *t)) {
        return Finding::new(
            Status::NotApplicable,
            format!("healthy while watched ({}), less than the {} another run took to fail", watch_span(run), fmt_s(t)),
            vec![Evidence::run(id, format!("outcome: {}", run.outcome.label))],
        );
    }
    if run.outcome.healthy {
        return Finding::new(
            Status::RuledOut,
            "the run was healthy: no failure for an error line to explain",
            vec![Evidence::run(id, format!("outcome: {}", run.outcome.label))],
        );
    }
    let failure = Failure::of(run);
    let logs = errors_in_logs(run, &failure);
    // Output no configuration discards is not lost, whatever it says.
    let streams = if some_discard { errors_in_streams(run, &failure) } else { Some(vec![]) };
    if logs.is_empty() && streams.as_ref().is_none_or(Vec::is_empty) {
        return nothing_found(run, &failure, streams.is_some());
    }
    let mut summary = Vec::new();
    if let Some(first) = logs.first() {
        summary.push(format!(
            "{} error line(s) only in a log file came {}, e.g. {}",
            logs.len(),
            failure.before(),
            quote(first)
        ));
    }
    let streams = streams.unwrap_or_default();
    if let Some(first) = streams.first() {
        summary.push(format!(
            "{} error line(s) on {}, discarded when stdio is ignored, came {}, e.g. {}",
            streams.len(),
            stream_names(&streams),
            failure.before(),
            quote(first)
        ));
    }
    let mut evidence: Vec<Evidence> = logs
        .iter()
        .take(LINES_SHOWN)
        .chain(streams.iter().take(LINES_SHOWN))
        .map(|e| Evidence::at(id, e.t_us, e.kind.describe()))
        .collect();
    evidence.extend(failure.evidence(id));
    let finding = Finding::new(Status::Confirmed, summary.join("; "), evidence);
    match streams.first().or(logs.first()).map(|e| &e.kind) {
        Some(EventKind::Line { text, .. } | EventKind::LogLine { text, .. }) => finding.quoting(text.clone()),
        _ => finding,
    }
}

/// A failed run with no error line before its failure: ruled out when its output was read up to the failure (or no
/// configuration discards it), otherwise it holds nothing either way.
fn nothing_found(run: &RunRecord, failure: &Failure, output_read: bool) -> Finding {
    let id = run.id;
    let logs = match run.expected.logs.first() {
        Some(glob) => format!("; log files {glob} followed, no error line in them"),
        None => String::new(),
    };
    if output_read {
        return Finding::new(
            Status::RuledOut,
            format!("no error line {} in the output that was read, nor in the log files", failure.before()),
            vec![Evidence::run(id, format!("output read up to the failure{logs}"))],
        );
    }
    let why = match (run.config.stdio, run.events.launcher_exit()) {
        (StdioMode::PipeDrained, Some((e, _))) => {
            format!("the launcher, the pipe's reader, left at {}", fmt_ms(e.t_us))
        }
        (StdioMode::PipeUndrained, _) => "the launcher never reads the pipe".to_string(),
        _ => "the configuration discards it".to_string(),
    };
    Finding::new(
        Status::NotApplicable,
        format!("this run's output was not read up to its failure: {why}"),
        vec![Evidence::run(id, format!("output not read up to the failure{logs}"))],
    )
}

/// When a run failed: the exit that counts in its outcome, else the end of observation (it never served, or
/// stopped serving, and stayed so).
struct Failure<'a> {
    t_us: u64,
    exit: Option<&'a Event>,
    label: String,
}

impl<'a> Failure<'a> {
    fn of(run: &'a RunRecord) -> Failure<'a> {
        let label = run.outcome.label.clone();
        if let Some(status) = run.outcome.exit {
            let pids = worker_pids(run);
            let exits = || run.events.own_exits().filter(move |(_, _, s)| *s == status);
            let exit = exits().find(|(_, pid, _)| pids.contains(pid)).or_else(|| exits().next());
            if let Some((e, _, _)) = exit {
                return Failure { t_us: e.t_us, exit: Some(e), label };
            }
        }
        let end = run.events.harness_stop_us().or_else(|| run.events.end_state().map(|(e, _, _)| e.t_us));
        Failure { t_us: end.unwrap_or(u64::MAX), exit: None, label }
    }

    /// True when a line stamped at `t_us` was written before the failure.
    fn precedes(&self, t_us: u64) -> bool {
        t_us <= self.t_us.saturating_add(if self.exit.is_some() { LINE_LAG_US } else { 0 })
    }

    /// `before the worker exited 1`, `before the end of a run that failed (alive, never reachable)`.
    fn before(&self) -> String {
        match self.exit.map(|e| &e.kind) {
            Some(EventKind::Exited { status, .. }) => format!("before the worker {status}"),
            _ => format!("before the end of a run that failed ({})", self.label),
        }
    }

    fn evidence(&self, run: usize) -> Vec<Evidence> {
        match self.exit {
            Some(e) => vec![Evidence::at(run, e.t_us, e.kind.describe())],
            None => vec![Evidence::run(run, format!("the run failed: {}", self.label))],
        }
    }
}

/// Error lines from the log files before the failure, before the harness stopped anything.
fn errors_in_logs<'a>(run: &'a RunRecord, failure: &Failure) -> Vec<&'a Event> {
    run.events
        .iter()
        .filter(|e| run.events.before_stop(e) && failure.precedes(e.t_us))
        .filter(|e| matches!(&e.kind, EventKind::LogLine { text, .. } if looks_like_error(text)))
        .collect()
}

/// Error lines on stdout/stderr after the worker started listening (all of them if it never did: they are why) and
/// before the failure; None when the output was not read up to the failure and what was read holds none.
fn errors_in_streams<'a>(run: &'a RunRecord, failure: &Failure) -> Option<Vec<&'a Event>> {
    let read_until = output_read_until(run)?;
    let from = listen_point(run).map_or(0, |e| e.t_us);
    let lines: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| e.t_us >= from && run.events.before_stop(e) && failure.precedes(e.t_us))
        .filter(|e| matches!(&e.kind, EventKind::Line { text, .. } if looks_like_error(text)))
        .collect();
    (read_until >= failure.t_us || !lines.is_empty()).then_some(lines)
}

/// `stderr`, `stdout and stderr`: the streams the lines came on.
fn stream_names(lines: &[&Event]) -> &'static str {
    let on = |s: Stream| lines.iter().any(|e| matches!(&e.kind, EventKind::Line { stream, .. } if *stream == s));
    match (on(Stream::Stdout), on(Stream::Stderr)) {
        (true, true) => "stdout and stderr",
        (true, false) => "stdout",
        _ => "stderr",
    }
}

fn quote(e: &Event) -> String {
    match &e.kind {
        EventKind::Line { text, .. } | EventKind::LogLine { text, .. } => format!("{:?}", crate::quotable(text)),
        other => other.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{line, run, SOCKET};
    use crate::{ConnectResult, ExitStatus, Lifecycle, RunConfig};

    fn config(stdio: StdioMode) -> RunConfig {
        RunConfig { stdio, ..RunConfig::PRODUCTION }
    }

    fn healthy(mut events: Vec<(u64, EventKind)>) -> Vec<(u64, EventKind)> {
        let connected = EventKind::Connect {
            path: SOCKET.into(),
            result: ConnectResult::Connected,
            detail: String::new(),
            peer: Some(10),
        };
        events.extend([
            (50, connected),
            (90, EventKind::EndState { path: SOCKET.into(), file_type: None, live_pids: vec![10] }),
        ]);
        events
    }

    fn exits(t_us: u64, mut events: Vec<(u64, EventKind)>) -> Vec<(u64, EventKind)> {
        events.push((t_us, EventKind::Exited { pid: 10, status: ExitStatus::Code(1) }));
        events
    }

    #[test]
    fn a_warning_in_a_healthy_run_is_no_error_lost() {
        // dbus-daemon's harmless warning, in a run that served throughout.
        let warning = line("Failed to set fd limit to 65536: Operation not permitted", &[]);
        let runs = [
            run(1, config(StdioMode::Ignore), healthy(vec![])),
            run(2, config(StdioMode::File), healthy(vec![(5, warning)])),
        ];
        let f = LostErrors.evaluate(&runs);
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    #[test]
    fn error_lines_before_the_failure_of_a_run_that_read_them_confirm() {
        let error = line("Error: SDK agent initialization failed", &[]);
        let later = line("Error: restarting the worker", &[]);
        let failed = exits(10_000, vec![(9_000, error), (2_000_000, later)]);
        let runs = [run(1, config(StdioMode::Ignore), exits(10_000, vec![])), run(2, config(StdioMode::File), failed)];
        let f = LostErrors.evaluate(&runs);
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(
            f.summary.starts_with(
                "1 error line(s) on stderr, discarded when stdio is ignored, came before the worker exited 1"
            ),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e.text.contains("pid 10 exited 1")), "{:?}", f.evidence);
    }

    #[test]
    fn a_failed_run_whose_output_was_not_read_up_to_its_failure_has_nothing_to_say() {
        // The launcher, the pipe's reader, left before the worker failed; the error came after it.
        let piped = RunConfig { stdio: StdioMode::PipeDrained, lifecycle: Lifecycle::Exits, ..RunConfig::PRODUCTION };
        let left = EventKind::LauncherExited { pid: 9, status: ExitStatus::Code(0) };
        let unread = run(2, piped, exits(10_000, vec![(2_000, left)]));
        let f = judge(&unread, true, None);
        assert_eq!(f.status, Status::NotApplicable, "{}", f.summary);
        let runs = [run(1, config(StdioMode::File), exits(10_000, vec![])), unread];
        assert_eq!(LostErrors.evaluate(&runs).status, Status::RuledOut);
    }

    #[test]
    fn log_file_errors_count_in_a_failed_run_only() {
        let logged =
            |text: &str| EventKind::LogLine { file: "/s/logs/w.log".into(), text: text.into(), markers: vec![] };
        let mut failed = run(1, RunConfig::PRODUCTION, exits(10_000, vec![(5_000, logged("ERROR migration failed"))]));
        failed.expected.logs = vec!["/s/logs/*.log".into()];
        let f = LostErrors.evaluate(std::slice::from_ref(&failed));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.summary.contains("only in a log file came before the worker exited 1"), "{}", f.summary);
        let mut served = run(1, RunConfig::PRODUCTION, healthy(vec![(5, logged("ERROR cache miss, retrying"))]));
        served.expected.logs = failed.expected.logs.clone();
        assert_eq!(LostErrors.evaluate(&[served]).status, Status::RuledOut);
    }
}
