//! The probe contract, and how per-run findings add up to one verdict.

use serde::Serialize;

use crate::{Dimension, Evidence, RunRecord, Status, Verdict};

/// In how many runs a verdict's status held: `of` out of `runs`, of which `with_evidence` held evidence for the
/// hypothesis at all (the others were not applicable and decided nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub of: usize,
    pub runs: usize,
    pub with_evidence: usize,
}

impl std::fmt::Display for Rate {
    /// `3/4 runs`, or `7/7 runs with evidence, of 14` when some runs held none.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.with_evidence < self.runs && self.of <= self.with_evidence {
            write!(f, "{}/{} runs with evidence, of {}", self.of, self.with_evidence, self.runs)
        } else {
            write!(f, "{}/{} runs", self.of, self.runs)
        }
    }
}

/// The spread of the time that matters over the runs that measured it (`created → removed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub what: &'static str,
    pub min_us: u64,
    pub median_us: u64,
    pub max_us: u64,
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |us: u64| crate::fmt_ms(us).trim_start_matches('+').to_string();
        write!(f, "{} min {}, median {}, max {}", self.what, ms(self.min_us), ms(self.median_us), ms(self.max_us))
    }
}

/// What a probe found, before it is dressed as a verdict.
#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    /// The decisive fact, without rates: `the worker exited 1 50.8 ms after it started listening`.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// The time that matters for this hypothesis in this run (e.g. `created → removed`), in microseconds.
    pub timing: Option<(&'static str, u64)>,
    /// Over several runs: in how many the status held.
    pub rate: Option<Rate>,
    /// Over several runs: the spread of `timing`.
    pub spread: Option<Spread>,
    /// The worker's line the fact quotes, whole (reports clip it).
    pub quote: Option<String>,
}

impl Finding {
    pub fn new(status: Status, summary: impl Into<String>, evidence: Vec<Evidence>) -> Self {
        Finding { status, summary: summary.into(), evidence, timing: None, rate: None, spread: None, quote: None }
    }

    /// Attaches the measured time that matters (`what` names the two events, e.g. `created → removed`).
    pub fn timed(mut self, what: &'static str, us: u64) -> Self {
        self.timing = Some((what, us));
        self
    }

    /// Records the worker's line that the summary quotes.
    pub fn quoting(mut self, line: impl Into<String>) -> Self {
        self.quote = Some(line.into());
        self
    }

    /// The summary as reports print it: the fact, then `(3/4 runs; created → removed min …)`.
    pub fn described(&self) -> String {
        match (self.rate, self.spread) {
            (Some(rate), Some(spread)) => format!("{} ({rate}; {spread})", self.summary),
            (Some(rate), None) => format!("{} ({rate})", self.summary),
            (None, _) => self.summary.clone(),
        }
    }
}

/// One hypothesis: an id (`H1`), a title, the usual fix, its place among causes, and a pure function from the runs
/// to a finding.
pub trait Probe: Sync {
    fn id(&self) -> &'static str;
    fn title(&self) -> &'static str;
    /// What is checked and which evidence decides it (for `sockdiag explain`).
    fn checks(&self) -> &'static str;
    fn fix(&self) -> &'static str;
    /// Where a confirmed verdict stands when confirmed verdicts explain each other: lower ranks are causes, higher
    /// ones their consequences (a missing session row comes before the exit it causes, which comes before the
    /// unreachable endpoint). Unique across probes (tested).
    fn causal_rank(&self) -> u8;
    fn evaluate(&self, runs: &[RunRecord]) -> Finding;
    /// The one dimension of the matrix a comparative probe judges (spawn for H2): its verdict is about the
    /// configurations that change in it, not about any one run.
    fn compares(&self) -> Option<Dimension> {
        None
    }
    /// True when one look at a live system (`sockdiag inspect`, nothing spawned) holds the evidence it needs.
    fn live_look(&self) -> bool {
        false
    }

    fn verdict(&self, runs: &[RunRecord]) -> Verdict {
        self.dressed(self.evaluate(runs))
    }

    /// A finding as this probe's verdict: its id, title, fix and rank around the facts.
    fn dressed(&self, finding: Finding) -> Verdict {
        Verdict {
            id: self.id(),
            title: self.title(),
            status: finding.status,
            summary: finding.described(),
            fact: finding.summary,
            rate: finding.rate,
            spread: finding.spread,
            quote: finding.quote,
            evidence: finding.evidence,
            fix: self.fix(),
            causal_rank: self.causal_rank(),
            compares: self.compares(),
        }
    }
}

/// Evidence kept per verdict at most, so that a 50-run matrix stays readable.
const EVIDENCE_PER_VERDICT: usize = 12;
/// Runs named at most in a "likewise in runs ..." line.
const RUNS_NAMED: usize = 20;

/// Adds up a per-run judgement: confirmed if any run confirms (with the rate), ruled out if every run that holds
/// evidence rules it out (a run without any is not applicable and decides nothing), not applicable if no run
/// applies, inconclusive otherwise.
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
    let mut finding = Finding::new(status, first.summary.clone(), evidence);
    finding.timing = first.timing;
    finding.quote = first.quote.clone();
    if n > 1 {
        finding.rate = Some(Rate { of: chosen.len(), runs: n, with_evidence: n - na });
        finding.spread = spread(&chosen);
    }
    finding
}

/// The spread of the measured time over the runs that measured it (two or more).
fn spread(findings: &[&Finding]) -> Option<Spread> {
    let what = findings.iter().find_map(|f| f.timing.map(|t| t.0))?;
    let mut times: Vec<u64> = findings.iter().filter_map(|f| f.timing.map(|t| t.1)).collect();
    if times.len() < 2 {
        return None;
    }
    times.sort_unstable();
    Some(Spread { what, min_us: times[0], median_us: times[times.len() / 2], max_us: times[times.len() - 1] })
}
