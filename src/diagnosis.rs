//! The diagnosis: every verdict, every run, where and how it was made, and the most likely root cause, built from
//! the confirmed verdicts in causal order and the decisive facts of the recorded runs.

use serde::{Deserialize, Serialize};
use sockdiag_probes::{
    all_probes, fmt_ms, quotable, Event, EventKind, Finding, Marker, RunConfig, RunRecord, Status, Stream, Verdict,
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
    /// The production configuration's runs and outcome: the answer leads with them. None when not run.
    pub(crate) production: Option<ConfigSummary>,
    /// The configurations whose outcome differs from production's.
    pub(crate) changes: Vec<ConfigSummary>,
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
        let groups = Group::all(&runs);
        let base = production_of(matrix.as_ref());
        let changes = changes(&groups, &verdicts, base);
        let production = groups.iter().find(|g| g.config == base).map(|g| {
            let mut p = g.summary(None);
            p.confirmed.extend(comparisons_production_fails(&p, &changes, &verdicts));
            p
        });
        let root_cause = root_cause(&verdicts, &runs, production.as_ref(), base);
        let look = Look::Run;
        Diagnosis {
            look,
            session,
            profile,
            command,
            environment,
            matrix,
            verdicts,
            runs,
            production,
            changes,
            root_cause,
        }
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
                let why = "a live look cannot decide this; sockdiag run watches the worker start";
                p.dressed(Finding::new(Status::NotApplicable, why, vec![]))
            })
            .collect();
        let root_cause = root_cause(&verdicts, &runs, None, RunConfig::PRODUCTION);
        let (matrix, production, changes) = (None, None, vec![]);
        let look = Look::Inspect;
        Diagnosis {
            look,
            session,
            profile,
            command,
            environment,
            matrix,
            verdicts,
            runs,
            production,
            changes,
            root_cause,
        }
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

    /// The production configuration of these runs (the profile may name its own).
    pub(crate) fn production_config(&self) -> RunConfig {
        production_of(self.matrix.as_ref())
    }

    /// True when some run failed: a hypothesis confirmed in runs that all stayed healthy reproduced nothing.
    pub(crate) fn reproduced(&self) -> bool {
        self.runs.iter().any(|r| !r.outcome.healthy)
    }
}

/// The first configuration of the matrix is production; reports saved without a matrix ran the default one.
fn production_of(matrix: Option<&Matrix>) -> RunConfig {
    matrix.and_then(|m| m.configurations.first().copied()).unwrap_or(RunConfig::PRODUCTION)
}

/// The runs of one configuration, and the verdicts they give on their own.
struct Group<'a> {
    config: RunConfig,
    runs: Vec<&'a RunRecord>,
    verdicts: Vec<Verdict>,
}

/// Runs grouped by configuration, in the order the matrix first ran each one.
pub(crate) fn by_config(runs: &[RunRecord]) -> Vec<(RunConfig, Vec<&RunRecord>)> {
    let mut groups: Vec<(RunConfig, Vec<&RunRecord>)> = Vec::new();
    for r in runs {
        match groups.iter_mut().find(|g| g.0 == r.config) {
            Some(g) => g.1.push(r),
            None => groups.push((r.config, vec![r])),
        }
    }
    groups
}

impl<'a> Group<'a> {
    /// Each configuration's runs, judged on their own.
    fn all(runs: &'a [RunRecord]) -> Vec<Group<'a>> {
        let probes = all_probes();
        by_config(runs)
            .into_iter()
            .map(|(config, runs)| {
                let owned: Vec<RunRecord> = runs.iter().map(|r| (*r).clone()).collect();
                let verdicts = probes.iter().map(|p| p.verdict(&owned)).collect();
                Group { config, runs, verdicts }
            })
            .collect()
    }

    fn labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = self.runs.iter().map(|r| r.outcome.label.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        labels
    }

    fn confirmed(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| v.status == Status::Confirmed)
    }

    /// What a report says of this configuration; `base` is production when this is another configuration.
    fn summary(&self, base: Option<&Group>) -> ConfigSummary {
        let base_confirmed: Vec<&str> = base.map(|b| b.confirmed().map(|v| v.id).collect()).unwrap_or_default();
        ConfigSummary {
            config: self.config,
            change: base.map(|b| self.config.change_from(&b.config)),
            runs: self.runs.iter().map(|r| r.id).collect(),
            outcome: outcome_rates(&self.runs),
            healthy: self.runs.iter().all(|r| r.outcome.healthy),
            confirmed: self.confirmed().map(|v| v.id).filter(|id| !base_confirmed.contains(id)).collect(),
        }
    }
}

/// The outcomes of a configuration's runs as rates, most frequent first: the label alone for one run,
/// `3/3 healthy`, `2/3 healthy, 1/3 exited 1`.
pub(crate) fn outcome_rates(runs: &[&RunRecord]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for r in runs {
        match counts.iter_mut().find(|c| c.0 == r.outcome.label) {
            Some(c) => c.1 += 1,
            None => counts.push((&r.outcome.label, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let n = runs.len();
    match counts.as_slice() {
        [(label, _)] if n == 1 => label.to_string(),
        _ => counts.iter().map(|(label, k)| format!("{k}/{n} {label}")).collect::<Vec<_>>().join(", "),
    }
}

/// One configuration as the head of a report tells it: its runs, their outcome and what they confirm.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigSummary {
    pub(crate) config: RunConfig,
    /// How it differs from production (`stdio pipe-undrained`); none for production itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) change: Option<String>,
    pub(crate) runs: Vec<usize>,
    /// `reachable, then exited 1`, or rates over repeats: `2/3 healthy, 1/3 exited 1`.
    pub(crate) outcome: String,
    pub(crate) healthy: bool,
    /// The hypotheses its runs confirm on their own (for a change: those production's runs do not), and for a
    /// change the comparative ones confirmed in a dimension it changes.
    pub(crate) confirmed: Vec<&'static str>,
}

/// The configurations whose outcomes differ from production's. Without production, none.
fn changes(groups: &[Group], verdicts: &[Verdict], base: RunConfig) -> Vec<ConfigSummary> {
    let Some(production) = groups.iter().find(|g| g.config == base) else { return vec![] };
    groups
        .iter()
        .filter(|g| g.config != production.config && g.labels() != production.labels())
        .map(|g| {
            let mut summary = g.summary(Some(production));
            let changed = g.config.differences(&production.config);
            let comparative = verdicts
                .iter()
                .filter(|v| v.status == Status::Confirmed && v.compares.is_some_and(|d| changed.contains(&d)))
                .map(|v| v.id);
            for id in comparative {
                if !summary.confirmed.contains(&id) {
                    summary.confirmed.push(id);
                }
            }
            let rank = |id: &&str| verdicts.iter().find(|v| v.id == *id).map_or(u8::MAX, |v| v.causal_rank);
            summary.confirmed.sort_by_key(rank);
            summary
        })
        .collect()
}

/// Consequences told after the first cause at most; the others are named.
const CHAINED_MAX: usize = 1;

/// The comparative hypotheses (H3...) that explain production's own failure: confirmed, and production fails
/// where a configuration changed in their dimension alone is healthy.
fn comparisons_production_fails(
    production: &ConfigSummary,
    changes: &[ConfigSummary],
    verdicts: &[Verdict],
) -> Vec<&'static str> {
    if production.healthy {
        return vec![];
    }
    let healthy_when_changed_in =
        |dim| changes.iter().any(|c| c.healthy && c.config.differences(&production.config) == [dim]);
    verdicts
        .iter()
        .filter(|v| v.status == Status::Confirmed && v.compares.is_some_and(healthy_when_changed_in))
        .map(|v| v.id)
        .collect()
}

/// One to three sentences: the confirmed hypotheses that explain production's failure, causes first, each with
/// the fact that decided it; then what the worker said and did as it failed, from a run that kept its output.
/// When production was healthy or not run, the hypotheses confirmed anywhere, said as such.
fn root_cause(
    verdicts: &[Verdict],
    runs: &[RunRecord],
    production: Option<&ConfigSummary>,
    base: RunConfig,
) -> Option<String> {
    let failed_in_production = production.filter(|p| !p.healthy);
    let mut confirmed: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.status == Status::Confirmed)
        .filter(|v| failed_in_production.is_none_or(|p| p.confirmed.contains(&v.id)))
        .collect();
    // What production's own runs confirm leads, then causes before consequences.
    let in_production = |v: &Verdict| production.is_some_and(|p| p.confirmed.contains(&v.id));
    confirmed.sort_by_key(|v| (!in_production(v), v.causal_rank));
    let (first, rest) = confirmed.split_first()?;
    let tag = |v: &Verdict| v.rate.map_or(v.id.to_string(), |r| format!("{}, {r}", v.id));
    let mut text = match production {
        Some(p) if p.healthy && in_production(first) => format!("Production ends healthy, yet: {}", first.title),
        Some(p) if p.healthy => format!("Outside production: {}", first.title),
        _ => capitalize(first.title),
    };
    text.push_str(&format!(" ({}): {}", tag(first), first.fact));
    // What the worker said as it failed explains production's failure; a healthy production has none to explain.
    let production_healthy = production.is_some_and(|p| p.healthy);
    let words = if production_healthy { None } else { last_words(runs, failed_in_production, base) };
    // A fact that only quotes the line the worker's last words quote is told once, there, with its context.
    let told = |v: &Verdict| {
        words
            .as_ref()
            .is_some_and(|(_, line)| v.quote.as_deref() == Some(line) || v.fact.contains(&format!("{line:?}")))
    };
    let rest: Vec<&&Verdict> = rest.iter().filter(|v| !told(v)).collect();
    let (chained, also) = rest.split_at(rest.len().min(CHAINED_MAX));
    for v in chained {
        text.push_str(&format!("; then {} ({})", v.fact, tag(v)));
    }
    if !also.is_empty() {
        text.push_str(&format!(" (also confirmed: {})", also.iter().map(|v| v.id).collect::<Vec<_>>().join(", ")));
    }
    text.push('.');
    // The worker's words are quoted once: by a verdict told above, or else from its last lines.
    let quoted = first.quote.is_some() || chained.iter().any(|v| v.quote.is_some());
    if let Some((facts, _)) = words.filter(|_| !quoted) {
        text.push(' ');
        text.push_str(&facts);
    }
    Some(text)
}

/// What the worker wrote after it said it was listening (or, without such a line, its last line) and how it
/// ended, in a failing run that kept its output (one that failed as production did, when production failed); and
/// whether production throws that output away. Also the line quoted.
fn last_words(runs: &[RunRecord], production: Option<&ConfigSummary>, base: RunConfig) -> Option<(String, String)> {
    let failing_with_lines =
        || runs.iter().filter(|r| !r.outcome.healthy && !r.config.discards_output() && has_lines(r));
    let like_production = |r: &&RunRecord| production.is_some_and(|p| p.outcome.contains(r.outcome.label.as_str()));
    let run = failing_with_lines().find(like_production).or_else(|| failing_with_lines().next())?;
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
    // A last line that only says it listens tells nothing the verdicts do not.
    if listening.is_some_and(|l| std::ptr::eq(l, line)) {
        return None;
    }
    let config = if run.config == base { "production".to_string() } else { run.config.change_from(&base) };
    let mut text = format!("In run {} ({config}), {said} {}", run.id, quote(line));
    // How it ended is the outcome the head already says; that production never shows the line is new.
    if runs.iter().any(|r| r.config == base && r.config.discards_output()) {
        text.push_str("; production discards it");
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

/// `"text" (stderr, +12.345 ms)`, clipped to a readable length.
fn quote(line: &Event) -> String {
    let EventKind::Line { stream, text, .. } = &line.kind else { return String::new() };
    let stream = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    format!("{:?} ({stream}, {})", quotable(text), fmt_ms(line.t_us))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or(String::new(), |c| c.to_uppercase().collect::<String>() + chars.as_str())
}

#[cfg(test)]
mod tests {
    use super::capitalize;

    #[test]
    fn capitalizes_the_first_letter_only() {
        assert_eq!(capitalize("socket file created"), "Socket file created");
        assert_eq!(capitalize(""), "");
    }
}
