//! H12: errors the worker reported where nobody reads them — in a stream the production configuration discards,
//! or only in a log file.

use super::facts::{listen_point, looks_like_error};
use crate::{Event, EventKind, Evidence, Finding, Probe, RunRecord, Status};

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
        "Error lines (error words, exceptions, errno names) the worker wrote to stdout/stderr after it started \
         listening (or at all, if it never listened), in runs that read its output, when a configuration of the \
         matrix discards that output; and \
         error lines in the profile's log files at any time. Confirmed when there are some (they are quoted); ruled \
         out when the output was read or the log files followed and none was found."
    }
    fn fix(&self) -> &'static str {
        "Send the worker's stderr to a file the user can find (or keep reading the pipe), and surface the errors a \
         log file records in the health answer or in the launcher's message."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        let some_discard = runs.iter().any(|r| r.config.discards_output());
        let read_any = runs.iter().any(|r| !r.config.discards_output() || !r.expected.logs.is_empty());
        if !read_any {
            return Finding::new(
                Status::Inconclusive,
                "every run discarded the worker's output and no log file is followed",
                vec![],
            );
        }
        let in_logs: Vec<(usize, &Event)> =
            runs.iter().flat_map(|r| errors_in_logs(r).map(move |e| (r.id, e))).collect();
        let in_streams: Vec<(usize, &Event)> = if some_discard {
            runs.iter()
                .filter(|r| !r.config.discards_output())
                .flat_map(|r| errors_after_listen(r).map(move |e| (r.id, e)))
                .collect()
        } else {
            vec![]
        };
        let mut summary = Vec::new();
        if let Some((_, e)) = in_logs.first() {
            summary.push(format!("{} error line(s) went only to a log file, e.g. {}", in_logs.len(), quote(e)));
        }
        if let Some((_, e)) = in_streams.first() {
            let runs = run_ids(&in_streams);
            summary.push(format!(
                "{} error line(s) on stdout/stderr (runs {runs}) are discarded when stdio is ignored, e.g. {}",
                in_streams.len(),
                quote(e)
            ));
        }
        if summary.is_empty() {
            return Finding::new(
                Status::RuledOut,
                "no error line after listening in the output that was read, nor in the log files",
                runs.first().map(|r| vec![Evidence::run(r.id, read_what(runs))]).unwrap_or_default(),
            );
        }
        let evidence = in_logs
            .iter()
            .take(6)
            .chain(in_streams.iter().take(6))
            .map(|(run, e)| Evidence::at(*run, e.t_us, e.kind.describe()))
            .collect();
        Finding::new(Status::Confirmed, summary.join("; "), evidence)
    }
}

/// Error lines from the log files, before the harness stopped anything.
fn errors_in_logs(run: &RunRecord) -> impl Iterator<Item = &Event> {
    run.events.iter().filter(move |e| {
        run.events.before_stop(e) && matches!(&e.kind, EventKind::LogLine { text, .. } if looks_like_error(text))
    })
}

/// Error lines on stdout/stderr after the worker started listening (all of them if it never did: they are why),
/// before the harness stopped anything.
fn errors_after_listen(run: &RunRecord) -> impl Iterator<Item = &Event> {
    let from = listen_point(run).map_or(0, |e| e.t_us);
    run.events.iter().filter(move |e| {
        e.t_us >= from
            && run.events.before_stop(e)
            && matches!(&e.kind, EventKind::Line { text, .. } if looks_like_error(text))
    })
}

fn quote(e: &Event) -> String {
    match &e.kind {
        EventKind::Line { text, .. } | EventKind::LogLine { text, .. } => format!("{text:?}"),
        other => other.describe(),
    }
}

fn run_ids(found: &[(usize, &Event)]) -> String {
    let mut ids: Vec<usize> = found.iter().map(|(r, _)| *r).collect();
    ids.dedup();
    ids.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

fn read_what(runs: &[RunRecord]) -> String {
    let read = runs.iter().filter(|r| !r.config.discards_output()).count();
    let logs: Vec<&str> = runs.iter().flat_map(|r| r.expected.logs.iter().map(String::as_str)).take(1).collect();
    match logs.first() {
        Some(glob) => format!("output read in {read} run(s); log files {glob} followed in every run"),
        None => format!("output read in {read} run(s); no log file in the profile"),
    }
}
