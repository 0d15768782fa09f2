//! What the human formats (table, Markdown, JUnit) share: sandbox paths printed as `<sandbox>/...`, plain-text
//! timelines, configuration groups, and the output that the production configuration hides. Everything here is
//! generic over events (`EventKind::describe`) and configurations (`RunConfig`'s Display).

use serde::Serialize;
use sockdiag_probes::{fmt_ms, Event, EventKind, RunConfig, RunRecord, Verdict};

use crate::diagnosis::Diagnosis;
pub(super) use crate::visible::visible;

/// How a run's private directory is printed: paths differ per run, the layout under it does not.
pub(super) const SANDBOX: &str = "<sandbox>";
/// Lines of hidden output shown per run at most.
const HIDDEN_MAX: usize = 60;

/// Prepares recorded text for the human formats: every run's sandbox root written `<sandbox>`, control characters
/// made visible.
pub(super) struct Paths(Vec<String>);

impl Paths {
    pub(super) fn of(d: &Diagnosis) -> Paths {
        let mut roots: Vec<String> = d.runs.iter().filter_map(|r| r.expected.sandbox.clone()).collect();
        // Longest first, so that no root is replaced inside a longer one.
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        Paths(roots)
    }

    /// `text` as shown: sandbox roots replaced, then escaped (a root holding a control character still matches).
    pub(super) fn show(&self, text: &str) -> String {
        let relative =
            self.0.iter().filter(|r| !r.is_empty()).fold(text.to_string(), |t, root| t.replace(root.as_str(), SANDBOX));
        visible(&relative).into_owned()
    }
}

/// One line of a plain-text timeline: `    +12.400 ms  created <sandbox>/data/worker-28.sock (socket)`.
pub(super) fn timeline_line(paths: &Paths, e: &Event) -> String {
    format!("{:>12}  {}", fmt_ms(e.t_us), paths.show(&e.kind.describe()))
}

/// The runs of one configuration (repeats of it), in matrix order.
pub(super) struct Group<'a> {
    pub(super) config: &'a RunConfig,
    pub(super) runs: Vec<&'a RunRecord>,
}

/// Runs grouped by configuration, in the order the matrix first ran each one.
pub(super) fn groups(runs: &[RunRecord]) -> Vec<Group<'_>> {
    crate::diagnosis::by_config(runs).into_iter().map(|(_, runs)| Group { config: &runs[0].config, runs }).collect()
}

/// Run ids with consecutive ones joined: `1-3, 8, 15-16`.
pub(super) fn id_ranges(ids: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if j == i { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    parts.join(", ")
}

/// A verdict with paths made relative, ready to print.
#[derive(Serialize)]
pub(super) struct VerdictView {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) status: &'static str,
    pub(super) confirmed: bool,
    pub(super) summary: String,
    pub(super) evidence: Vec<String>,
    pub(super) fix: String,
}

/// The verdict as the human formats print it.
pub(super) fn verdict_view(paths: &Paths, v: &Verdict) -> VerdictView {
    VerdictView {
        id: v.id.to_string(),
        title: v.title.to_string(),
        status: v.status.label(),
        confirmed: v.status == sockdiag_probes::Status::Confirmed,
        summary: paths.show(&v.summary),
        evidence: v.evidence.iter().map(|e| paths.show(e.to_string().trim_end())).collect(),
        fix: v.fix.to_string(),
    }
}

/// Output the production configuration throws away, as seen in runs that kept it.
#[derive(Serialize)]
pub(super) struct HiddenOutput {
    /// The production configuration, when the matrix ran it.
    pub(super) production: Option<String>,
    /// True when production discards the worker's output.
    pub(super) discarded: bool,
    /// One entry per configuration that kept output and saw lines (identical ones are named, not repeated).
    pub(super) seen: Vec<SeenOutput>,
}

#[derive(Serialize)]
pub(super) struct SeenOutput {
    pub(super) run: usize,
    pub(super) config: String,
    pub(super) lines: Vec<String>,
    /// Other runs whose lines were the same.
    pub(super) same_in: Vec<usize>,
}

/// What the production configuration's stdio throws away, from the runs that kept the worker's output.
pub(super) fn hidden_output(paths: &Paths, runs: &[RunRecord], base: RunConfig) -> HiddenOutput {
    let production = runs.iter().find(|r| r.config == base);
    let discarded = production.is_some_and(|p| p.config.discards_output());
    let mut seen: Vec<SeenOutput> = Vec::new();
    let mut texts: Vec<Vec<String>> = Vec::new();
    if discarded {
        for r in runs.iter().filter(|r| !r.config.discards_output()) {
            let events = output_events(r);
            if events.is_empty() {
                continue;
            }
            // Runs are compared by what was said, not when, nor by the numbers in it (pids, clocks, counters).
            let said: Vec<String> = events.iter().map(|e| without_numbers(&paths.show(&e.kind.describe()))).collect();
            match texts.iter().position(|t| *t == said) {
                Some(i) => seen[i].same_in.push(r.id),
                None => {
                    let lines = bounded_lines(paths, &events);
                    seen.push(SeenOutput {
                        run: r.id,
                        config: visible(&r.config.to_string()).into_owned(),
                        lines,
                        same_in: vec![],
                    });
                    texts.push(said);
                }
            }
        }
    }
    HiddenOutput { production: production.map(|p| visible(&p.config.to_string()).into_owned()), discarded, seen }
}

/// `text` with every run of digits written `N`.
fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('N') {
            out.push('N');
        }
    }
    out
}

/// The worker's output lines (and what was not kept of them).
fn output_events(run: &RunRecord) -> Vec<&Event> {
    run.events.iter().filter(|e| matches!(e.kind, EventKind::Line { .. } | EventKind::OutputDropped { .. })).collect()
}

/// Output events as timeline lines, bounded.
fn bounded_lines(paths: &Paths, all: &[&Event]) -> Vec<String> {
    let mut lines: Vec<String> = all.iter().take(HIDDEN_MAX).map(|e| timeline_line(paths, e)).collect();
    if all.len() > HIDDEN_MAX {
        lines.push(format!("{:>12}  … {} more lines in the JSON report", "", all.len() - HIDDEN_MAX));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Diagnosis, Saved};

    fn recorded() -> Diagnosis {
        let saved: Saved = serde_json::from_str(include_str!("../../tests/fixtures/crash-cleanup.json")).unwrap();
        Diagnosis::from_saved(saved)
    }

    #[test]
    fn sandbox_roots_become_a_token() {
        let d = recorded();
        let paths = Paths::of(&d);
        let root = d.runs[2].expected.sandbox.clone().unwrap();
        assert_eq!(paths.show(&format!("{root}/data/w.sock and {root}")), "<sandbox>/data/w.sock and <sandbox>");
    }

    #[test]
    fn hidden_output_is_shown_once_for_runs_that_said_the_same() {
        let d = recorded();
        let hidden = hidden_output(&Paths::of(&d), &d.runs, d.production_config());
        assert!(hidden.discarded);
        // Runs 4 (a pipe its launcher read until it left) and 6 (a file) kept the output and said the same lines
        // (up to pids and clocks): shown once; run 5's pipe was never read.
        assert_eq!(hidden.seen.len(), 1);
        assert_eq!(hidden.seen[0].run, 4);
        assert_eq!(hidden.seen[0].same_in, vec![6]);
        assert!(hidden.seen[0].lines.iter().any(|l| l.contains("stderr: Error:")));
    }

    #[test]
    fn consecutive_run_ids_are_ranges() {
        assert_eq!(id_ranges(&[1, 2, 3, 8, 15, 16]), "1-3, 8, 15-16");
        assert_eq!(id_ranges(&[4]), "4");
        assert_eq!(id_ranges(&[]), "");
    }

    #[test]
    fn groups_keep_matrix_order() {
        let d = recorded();
        let g = groups(&d.runs);
        assert_eq!(g.len(), 7);
        assert_eq!(*g[0].config, RunConfig::PRODUCTION);
    }
}
