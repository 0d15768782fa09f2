//! The answer, as every human format opens with it: production's outcome, the root cause, what changes the
//! outcome, what was ruled out. One line each (the caller wraps them).

use sockdiag_probes::{Status, Verdict};

use super::view::{self, Paths};
use crate::diagnosis::{ConfigSummary, Diagnosis, Look};

/// Outcomes other than production's named at most; the runs table lists every configuration.
const CHANGES_SHOWN: usize = 3;
/// A word (a path, mostly) longer than this is shortened in the answer, keeping both ends.
const WORD_MAX: usize = 56;

/// The answer's lines, in order.
pub(super) fn lines(d: &Diagnosis, paths: &Paths) -> Vec<String> {
    let mut lines = vec![outcome(d), cause(d, paths)];
    lines.extend(changes(d));
    lines.push(ruled_out(&d.verdicts));
    lines.iter().map(|l| shorten_words(l)).collect()
}

/// Production's outcome, and whether every other configuration ended the same way.
fn outcome(d: &Diagnosis) -> String {
    let configurations = view::groups(&d.runs).len();
    match (&d.production, d.look) {
        (_, Look::Inspect) => {
            format!("Live system (nothing spawned): {}.", d.runs.first().map_or("", |r| r.outcome.label.as_str()))
        }
        (Some(p), Look::Run) if d.changes.is_empty() && configurations > 1 => {
            format!("Production ({}): {}; the same in all {configurations} configurations.", p.config, p.outcome)
        }
        (Some(p), Look::Run) => format!("Production ({}): {}.", p.config, p.outcome),
        (None, Look::Run) => format!("Production ({}) is not among these runs.", d.production_config()),
    }
}

fn cause(d: &Diagnosis, paths: &Paths) -> String {
    match &d.root_cause {
        Some(cause) => format!("Root cause: {}", paths.show(cause)),
        None if d.reproduced() => "Root cause: no hypothesis is confirmed; the runs below say how they failed.".into(),
        None => "Root cause: none; the endpoint was healthy in every run.".into(),
    }
}

/// One line per outcome other than production's: `Changes when stdio pipe-drained: killed by SIGPIPE (13) (H3).`
/// Configurations that end alike share a line, named by what they have in common (`under bun`) when they do.
fn changes(d: &Diagnosis) -> Vec<String> {
    let mut by_outcome: Vec<(&str, Vec<&ConfigSummary>)> = Vec::new();
    for c in &d.changes {
        match by_outcome.iter_mut().find(|(o, _)| *o == c.outcome) {
            Some((_, cs)) => cs.push(c),
            None => by_outcome.push((&c.outcome, vec![c])),
        }
    }
    let mut lines: Vec<String> = by_outcome.iter().take(CHANGES_SHOWN).map(|(o, cs)| change_line(o, cs)).collect();
    if by_outcome.len() > CHANGES_SHOWN {
        let more = by_outcome.len() - CHANGES_SHOWN;
        lines.push(format!("… and {more} more outcomes in other configurations (runs below)."));
    }
    lines
}

fn change_line(outcome: &str, configs: &[&ConfigSummary]) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for id in configs.iter().flat_map(|c| c.confirmed.iter()) {
        if !ids.contains(id) {
            ids.push(id);
        }
    }
    let ids = if ids.is_empty() { String::new() } else { format!(" ({})", ids.join(", ")) };
    format!("Changes when {}: {outcome}{ids}.", when(configs))
}

/// What a set of configurations changes from production: the changes they all share (`under bun (6
/// configurations)`), or each one's when they share none.
fn when(configs: &[&ConfigSummary]) -> String {
    let changes: Vec<Vec<&str>> =
        configs.iter().map(|c| c.change.as_deref().unwrap_or("?").split(" and ").collect()).collect();
    let shared: Vec<&str> = changes[0].iter().copied().filter(|p| changes.iter().all(|c| c.contains(p))).collect();
    match (configs.len(), shared.is_empty()) {
        (1, _) => changes[0].join(" and "),
        (n, false) => format!("{} ({n} configurations)", shared.join(" and ")),
        (n, true) if n <= 3 => changes.iter().map(|c| c.join(" and ")).collect::<Vec<_>>().join(", or "),
        (n, true) => format!("{} and {} more configurations", changes[0].join(" and "), n - 1),
    }
}

/// Words longer than [`WORD_MAX`] (deep paths) shortened to their two ends: the answer must stay a few lines, and
/// where long paths differ is at the end.
fn shorten_words(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            let n = w.chars().count();
            if n <= WORD_MAX {
                return w.to_string();
            }
            let head: String = w.chars().take(WORD_MAX / 2).collect();
            let tail: String = w.chars().skip(n - (WORD_MAX / 2 - 1)).collect();
            format!("{head}…{tail}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Ruled out (13): H2 H3 …; inconclusive: H6; not applicable: H10 H18 H19.`
fn ruled_out(verdicts: &[Verdict]) -> String {
    let ids = |s: Status| verdicts.iter().filter(|v| v.status == s).map(|v| v.id).collect::<Vec<_>>();
    let ruled_out = ids(Status::RuledOut);
    let mut line = format!("Ruled out ({}): {}", ruled_out.len(), list(&ruled_out));
    for (status, name) in [(Status::Inconclusive, "inconclusive"), (Status::NotApplicable, "n/a")] {
        let these = ids(status);
        if !these.is_empty() {
            line.push_str(&format!("; {name}: {}", list(&these)));
        }
    }
    line + "."
}

fn list(ids: &[&str]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.join(" ")
}
