//! The probe contract, and how per-run findings add up to one verdict.

use crate::{Evidence, RunRecord, Status, Verdict};

/// What a probe found, before it is dressed as a verdict.
#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// The time that matters for this hypothesis in this run (e.g. `created → removed`), in microseconds.
    pub timing: Option<(&'static str, u64)>,
}

impl Finding {
    pub fn new(status: Status, summary: impl Into<String>, evidence: Vec<Evidence>) -> Self {
        Finding { status, summary: summary.into(), evidence, timing: None }
    }

    /// Attaches the measured time that matters (`what` names the two events, e.g. `created → removed`).
    pub fn timed(mut self, what: &'static str, us: u64) -> Self {
        self.timing = Some((what, us));
        self
    }
}

/// One hypothesis: an id (`H1`), a title, the usual fix, and a pure function from the runs to a finding.
pub trait Probe: Sync {
    fn id(&self) -> &'static str;
    fn title(&self) -> &'static str;
    /// What is checked and which evidence decides it (for `sockdiag explain`).
    fn checks(&self) -> &'static str;
    fn fix(&self) -> &'static str;
    fn evaluate(&self, runs: &[RunRecord]) -> Finding;
    /// True when one look at a live system (`sockdiag inspect`, nothing spawned) holds the evidence it needs.
    fn live_look(&self) -> bool {
        false
    }

    fn verdict(&self, runs: &[RunRecord]) -> Verdict {
        let Finding { status, summary, evidence, .. } = self.evaluate(runs);
        Verdict { id: self.id(), title: self.title(), status, summary, evidence, fix: self.fix() }
    }
}

/// Evidence kept per verdict at most, so that a 50-run matrix stays readable.
const EVIDENCE_PER_VERDICT: usize = 12;
/// Runs named at most in a "likewise in runs ..." line.
const RUNS_NAMED: usize = 20;

/// Adds up a per-run judgement: confirmed if any run confirms (with the rate), ruled out if every run rules it out,
/// not applicable if no run applies, inconclusive otherwise.
pub fn per_run(runs: &[RunRecord], judge: impl Fn(&RunRecord) -> Finding) -> Finding {
    let findings: Vec<Finding> = runs.iter().map(judge).collect();
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let n = findings.len();
    let (confirmed, ruled_out, na) = (count(Status::Confirmed), count(Status::RuledOut), count(Status::NotApplicable));
    let status = if confirmed > 0 {
        Status::Confirmed
    } else if n > 0 && ruled_out + na == n && ruled_out > 0 {
        Status::RuledOut
    } else if n > 0 && na == n {
        Status::NotApplicable
    } else {
        Status::Inconclusive
    };
    let chosen: Vec<&Finding> = findings.iter().filter(|f| f.status == status).collect();
    let Some(first) = chosen.first() else {
        return Finding::new(Status::Inconclusive, "no runs", vec![]);
    };
    let summary = if n > 1 {
        format!("{} ({}/{n} runs{})", first.summary, chosen.len(), spread(&chosen))
    } else {
        first.summary.clone()
    };
    // The first run's evidence in full; the others are named, not repeated.
    let mut evidence: Vec<Evidence> = first.evidence.iter().take(EVIDENCE_PER_VERDICT).cloned().collect();
    let others: Vec<String> =
        chosen[1..].iter().filter_map(|f| f.evidence.first()?.run).map(|r| r.to_string()).collect();
    if !others.is_empty() {
        let mut text =
            format!("likewise in runs {}", others.iter().take(RUNS_NAMED).cloned().collect::<Vec<_>>().join(", "));
        if others.len() > RUNS_NAMED {
            text.push_str(&format!(" and {} more", others.len() - RUNS_NAMED));
        }
        evidence.push(Evidence { run: None, t_us: None, text });
    }
    Finding::new(status, summary, evidence)
}

/// `; created → removed min 50.1 ms, median 50.7 ms, max 52.3 ms` over the runs that measured it.
fn spread(findings: &[&Finding]) -> String {
    let mut times: Vec<u64> = findings.iter().filter_map(|f| f.timing.map(|t| t.1)).collect();
    let Some(what) = findings.iter().find_map(|f| f.timing.map(|t| t.0)) else { return String::new() };
    if times.len() < 2 {
        return String::new();
    }
    times.sort_unstable();
    let ms = |us: u64| crate::fmt_ms(us).trim_start_matches('+').to_string();
    format!("; {what} min {}, median {}, max {}", ms(times[0]), ms(times[times.len() / 2]), ms(times[times.len() - 1]))
}
