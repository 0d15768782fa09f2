//! The diagnosis: every verdict, every run, where and how it was made, and the most likely root cause, built from
//! the confirmed verdicts in causal order and the decisive facts of the recorded runs.

use serde::{Deserialize, Serialize};
use sockdiag_probes::{
    all_probes, fmt_ms, Event, EventKind, Marker, RunConfig, RunRecord, Status, Stream, Verdict, CAUSAL_ORDER,
};

use crate::context::Environment;
use crate::shard::Matrix;

/// How the evidence was gathered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Look {
    /// `sockdiag run`: the worker was spawned under a matrix.
    #[default]
    Run,
    /// `sockdiag inspect`: one look at the live system, nothing spawned.
    Inspect,
}

/// Everything a report says: what was run where, every verdict, every run, and the root cause.
#[derive(Serialize)]
pub(crate) struct Diagnosis {
    pub(crate) look: Look,
    pub(crate) session: u64,
    pub(crate) profile: String,
    /// The command that reproduces this diagnosis.
    pub(crate) command: String,
    pub(crate) environment: Environment,
    /// The matrix the runs come from, and which shards of it they are; none for a live look (and in reports saved
    /// before shards existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) matrix: Option<Matrix>,
    pub(crate) verdicts: Vec<Verdict>,
    pub(crate) runs: Vec<RunRecord>,
    pub(crate) root_cause: Option<String>,
}

/// What a saved JSON report is read back as: the recorded runs and their context. Verdicts are not read: the
/// probes judge the runs again, so a report saved by an older version is judged by this one.
#[derive(Deserialize)]
pub(crate) struct Saved {
    #[serde(default)]
    pub(crate) look: Look,
    pub(crate) session: u64,
    pub(crate) profile: String,
    #[serde(default)]
    pub(crate) command: String,
    #[serde(default)]
    pub(crate) environment: Environment,
    #[serde(default)]
    pub(crate) matrix: Option<Matrix>,
    pub(crate) runs: Vec<RunRecord>,
}

/// Longest output line quoted in the root cause.
const QUOTE_MAX: usize = 200;

impl Diagnosis {
    pub(crate) fn new(
        session: u64,
        profile: String,
        command: String,
        environment: Environment,
        matrix: Option<Matrix>,
        runs: Vec<RunRecord>,
    ) -> Diagnosis {
        let verdicts: Vec<Verdict> = all_probes().iter().map(|p| p.verdict(&runs)).collect();
        let root_cause = root_cause(&verdicts, &runs);
        Diagnosis { look: Look::Run, session, profile, command, environment, matrix, verdicts, runs, root_cause }
    }

    /// A diagnosis from one look at the live system: the hypotheses that need a run are not applicable.
    pub(crate) fn inspect(
        session: u64,
        profile: String,
        command: String,
        environment: Environment,
        live: RunRecord,
    ) -> Diagnosis {
        let runs = vec![live];
        let verdicts: Vec<Verdict> = all_probes()
            .iter()
            .map(|p| {
                if p.live_look() {
                    return p.verdict(&runs);
                }
                Verdict {
                    id: p.id(),
                    title: p.title(),
                    status: Status::NotApplicable,
                    summary: "a live look cannot decide this; sockdiag run watches the worker start".into(),
                    evidence: vec![],
                    fix: p.fix(),
                }
            })
            .collect();
        let root_cause = root_cause(&verdicts, &runs);
        let matrix = None;
        Diagnosis { look: Look::Inspect, session, profile, command, environment, matrix, verdicts, runs, root_cause }
    }

    /// Judges the runs of a saved report again.
    pub(crate) fn from_saved(saved: Saved) -> Diagnosis {
        let Saved { look, session, profile, command, environment, matrix, mut runs } = saved;
        match (look, runs.pop()) {
            (Look::Inspect, Some(live)) if runs.is_empty() => {
                Diagnosis::inspect(session, profile, command, environment, live)
            }
            (_, last) => {
                runs.extend(last);
                Diagnosis::new(session, profile, command, environment, matrix, runs)
            }
        }
    }

    /// True when some run failed or some hypothesis is confirmed.
    pub(crate) fn reproduced(&self) -> bool {
        self.runs.iter().any(|r| !r.outcome.healthy) || self.verdicts.iter().any(|v| v.status == Status::Confirmed)
    }
}

/// One or two sentences: the confirmed hypotheses, causes first, each with the fact that decided it; then what
/// the worker said and did as it failed, from a run that kept its output.
fn root_cause(verdicts: &[Verdict], runs: &[RunRecord]) -> Option<String> {
    let mut confirmed: Vec<&Verdict> = verdicts.iter().filter(|v| v.status == Status::Confirmed).collect();
    confirmed.sort_by_key(|v| CAUSAL_ORDER.iter().position(|id| *id == v.id).unwrap_or(usize::MAX));
    let (first, rest) = confirmed.split_first()?;
    let tag = |v: &Verdict| {
        let (fact, rate) = split_rate(&v.summary);
        (fact.to_string(), rate.map_or(v.id.to_string(), |r| format!("{}, {r}", v.id)))
    };
    let (fact, t) = tag(first);
    let mut text = format!("{} ({t}): {fact}", capitalize(first.title));
    let words = last_words(runs);
    // A fact that only quotes the line the worker's last words quote is told once, there, with its context.
    let told = |v: &Verdict| words.as_ref().is_some_and(|(_, line)| v.summary.contains(&format!("{line:?}")));
    for v in rest.iter().filter(|v| !told(v)) {
        let (fact, t) = tag(v);
        text.push_str(&format!("; then {fact} ({t})"));
    }
    text.push('.');
    if let Some((facts, _)) = words {
        text.push(' ');
        text.push_str(&facts);
    }
    Some(text)
}

/// `"fact (3/4 runs)"` -> `("fact", Some("3/4 runs"))`: the rate `per_run` adds, to be said once per hypothesis
/// (the spread of times that may follow it, `; created → removed min …`, stays with the verdict).
fn split_rate(summary: &str) -> (&str, Option<&str>) {
    static RATE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let rate = RATE.get_or_init(|| regex::Regex::new(r" \((\d+/\d+ runs)(?:; [^()]*)?\)$").expect("valid regex"));
    match rate.captures(summary) {
        Some(c) => (&summary[..c.get(0).map_or(summary.len(), |m| m.start())], c.get(1).map(|m| m.as_str())),
        None => (summary, None),
    }
}

/// What the worker wrote after it said it was listening (or, without such a line, its last line) and how it
/// ended, in the first failing run that kept its output; and whether production throws that output away. Also
/// the line quoted.
fn last_words(runs: &[RunRecord]) -> Option<(String, String)> {
    let run = runs.iter().find(|r| !r.outcome.healthy && !r.config.discards_output() && has_lines(r))?;
    let exit = run.events.own_exits().next();
    // What the worker says once the harness asks it to stop is an answer to that, not why it failed. Its own
    // exit is no bound: whatever it wrote came before it, even when the line is read (and stamped) later, as a
    // file is.
    let end = run.events.harness_stop_us().unwrap_or(u64::MAX);
    let listening = run.events.marker(Marker::Listening);
    let after_listening = listening.and_then(|l| run.events.after(l.t_us).find(|e| is_line(e) && e.t_us <= end));
    let (said, line) = match after_listening {
        Some(line) => ("after \"listening\" the worker wrote", line),
        None => ("the worker's last line was", run.events.iter().rev().find(|e| is_line(e) && e.t_us <= end)?),
    };
    let mut text = format!("In run {} ({}), {said} {}", run.id, run.config, quote(line));
    if let Some((e, pid, status)) = exit {
        text.push_str(&format!(", and pid {pid} {status} at {}", fmt_ms(e.t_us)));
    }
    let production = runs.iter().find(|r| r.config == RunConfig::PRODUCTION);
    if production.is_some_and(|p| p.config.discards_output()) {
        text.push_str(&format!("; the production configuration ({}) discards this output", RunConfig::PRODUCTION));
    }
    text.push('.');
    let EventKind::Line { text: said_line, .. } = &line.kind else { return None };
    Some((text, said_line.clone()))
}

fn is_line(e: &Event) -> bool {
    matches!(e.kind, EventKind::Line { .. })
}

fn has_lines(run: &RunRecord) -> bool {
    run.events.iter().any(is_line)
}

/// `"text" (stderr, +12.345 ms)`, cut to a readable length.
fn quote(line: &Event) -> String {
    let EventKind::Line { stream, text, .. } = &line.kind else { return String::new() };
    let mut text = text.clone();
    if text.chars().count() > QUOTE_MAX {
        text = text.chars().take(QUOTE_MAX).collect::<String>() + "…";
    }
    let stream = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    format!("{text:?} ({stream}, {})", fmt_ms(line.t_us))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or(String::new(), |c| c.to_uppercase().collect::<String>() + chars.as_str())
}

#[cfg(test)]
mod tests {
    use super::{capitalize, split_rate};

    #[test]
    fn the_rate_is_split_off_a_summary() {
        assert_eq!(split_rate("the worker exited 1 (4/4 runs)"), ("the worker exited 1", Some("4/4 runs")));
        assert_eq!(
            split_rate("it exited (2/3 runs; listening → exit min 1.000 ms, median 2.000 ms, max 3.000 ms)"),
            ("it exited", Some("2/3 runs"))
        );
        assert_eq!(split_rate("exited (pid 12)"), ("exited (pid 12)", None));
        assert_eq!(split_rate("no rate"), ("no rate", None));
    }

    #[test]
    fn capitalizes_the_first_letter_only() {
        assert_eq!(capitalize("socket file created"), "Socket file created");
        assert_eq!(capitalize(""), "");
    }
}
