//! The answer, as every human format opens with it: production's outcome, the root cause, what changes the
//! outcome, what was ruled out. One line each (the caller wraps them).

use sockdiag_probes::{RunConfig, Status, Verdict};

use super::view::{self, Paths};
use crate::diagnosis::{ConfigSummary, Diagnosis, Look};

/// Configurations that change the outcome named at most; the runs table lists every one.
const CHANGES_SHOWN: usize = 3;

/// The answer's lines, in order.
pub(super) fn lines(d: &Diagnosis, paths: &Paths) -> Vec<String> {
    let mut lines = vec![outcome(d), cause(d, paths)];
    lines.extend(changes(d));
    lines.push(ruled_out(&d.verdicts));
    lines
}

fn outcome(d: &Diagnosis) -> String {
    match (&d.production, d.look) {
        (_, Look::Inspect) => {
            format!("Live system (nothing spawned): {}.", d.runs.first().map_or("", |r| r.outcome.label.as_str()))
        }
        (Some(p), Look::Run) => format!("Production ({}): {}.", p.config, p.outcome),
        (None, Look::Run) => format!("Production ({}) is not among these runs.", RunConfig::PRODUCTION),
    }
}

fn cause(d: &Diagnosis, paths: &Paths) -> String {
    match &d.root_cause {
        Some(cause) => format!("Root cause: {}", paths.show(cause)),
        None if d.reproduced() => "Root cause: no hypothesis is confirmed; the runs below say how they failed.".into(),
        None => "Root cause: none; the endpoint was healthy in every run.".into(),
    }
}

/// `Changes when stdio pipe-undrained: killed by SIGPIPE (13), never reachable (H3).`, per configuration whose
/// outcome differs from production's; one line saying none does when the matrix had several.
fn changes(d: &Diagnosis) -> Vec<String> {
    let configurations = view::groups(&d.runs).len();
    if d.production.is_none() || configurations < 2 {
        return vec![];
    }
    if d.changes.is_empty() {
        return vec![format!("Changes when: nothing; all {configurations} configurations end the same way.")];
    }
    let mut lines: Vec<String> = d.changes.iter().take(CHANGES_SHOWN).map(change_line).collect();
    if d.changes.len() > CHANGES_SHOWN {
        lines
            .push(format!("… and {} more configurations end otherwise (runs below).", d.changes.len() - CHANGES_SHOWN));
    }
    lines
}

fn change_line(c: &ConfigSummary) -> String {
    let ids = if c.confirmed.is_empty() { String::new() } else { format!(" ({})", c.confirmed.join(", ")) };
    format!("Changes when {}: {}{ids}.", c.change.as_deref().unwrap_or("?"), c.outcome)
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
