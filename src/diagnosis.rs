//! The diagnosis: every verdict, every run, and the most likely root cause, built from the confirmed verdicts.

use serde::Serialize;
use sockdiag_probes::{all_probes, RunRecord, Status, Verdict};

#[derive(Serialize)]
pub(crate) struct Diagnosis {
    pub(crate) session: u64,
    pub(crate) profile: String,
    pub(crate) verdicts: Vec<Verdict>,
    pub(crate) runs: Vec<RunRecord>,
    pub(crate) root_cause: Option<String>,
}

/// The order in which confirmed hypotheses explain each other: causes before consequences.
const CAUSAL_ORDER: &[&str] = &[
    "H8", "H7", "H5", "H15", "H13", "H16", "H17", "H4", "H18", "H10", "H2", "H3", "H9", "H1", "H6", "H11", "H14",
    "H19", "H12",
];

impl Diagnosis {
    pub(crate) fn new(session: u64, profile: String, runs: Vec<RunRecord>) -> Diagnosis {
        let verdicts: Vec<Verdict> = all_probes().iter().map(|p| p.verdict(&runs)).collect();
        let root_cause = root_cause(&verdicts);
        Diagnosis { session, profile, verdicts, runs, root_cause }
    }

    /// True when some run failed or some hypothesis is confirmed.
    pub(crate) fn reproduced(&self) -> bool {
        self.runs.iter().any(|r| !r.outcome.healthy) || self.verdicts.iter().any(|v| v.status == Status::Confirmed)
    }
}

fn root_cause(verdicts: &[Verdict]) -> Option<String> {
    let mut confirmed: Vec<&Verdict> = verdicts.iter().filter(|v| v.status == Status::Confirmed).collect();
    confirmed.sort_by_key(|v| CAUSAL_ORDER.iter().position(|id| *id == v.id).unwrap_or(usize::MAX));
    let first = confirmed.first()?;
    let mut text = format!("{} ({}): {}", first.title, first.id, first.summary);
    for v in confirmed.iter().skip(1) {
        text.push_str(&format!("; then {} ({}): {}", v.title, v.id, v.summary));
    }
    Some(text)
}
