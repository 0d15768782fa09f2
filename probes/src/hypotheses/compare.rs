//! Cross-configuration facts: group runs by configuration and find the pairs of configurations that differ in one
//! dimension only, and whose outcomes differ (H2, H3 and the like).

use crate::{fmt_ms, Dimension, EventKind, Evidence, ExitStatus, Finding, RunConfig, RunRecord, Status};

/// How a run ended, as coarsely as "the outcome flips" needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Healthy,
    Ended(ExitStatus),
    NeverReachable,
    LostReachability,
}

impl Class {
    pub(crate) fn of(run: &RunRecord) -> Class {
        match (run.outcome.healthy, run.outcome.exit, run.outcome.reachable) {
            (true, _, _) => Class::Healthy,
            (false, Some(status), _) => Class::Ended(status),
            (false, None, false) => Class::NeverReachable,
            (false, None, true) => Class::LostReachability,
        }
    }

    fn describe(self) -> String {
        match self {
            Class::Healthy => "healthy".to_string(),
            Class::Ended(status) => status.to_string(),
            Class::NeverReachable => "alive but never reachable".to_string(),
            Class::LostReachability => "reachable, then unreachable".to_string(),
        }
    }
}

/// The runs of one configuration (its repeats), in run order.
pub(crate) struct Group<'a> {
    pub(crate) config: RunConfig,
    pub(crate) runs: Vec<&'a RunRecord>,
}

impl Group<'_> {
    fn classes(&self) -> Vec<Class> {
        self.runs.iter().map(|r| Class::of(r)).collect()
    }

    /// The most frequent failing class that `other` never shows, if any.
    fn failure_absent_from(&self, other: &Group) -> Option<Class> {
        let theirs = other.classes();
        let mine: Vec<Class> =
            self.classes().into_iter().filter(|c| *c != Class::Healthy && !theirs.contains(c)).collect();
        mine.iter().copied().max_by_key(|c| mine.iter().filter(|d| *d == c).count())
    }

    /// `run 4 (stdio pipe-drained) killed by SIGPIPE (13) in 2/2 runs`: the configuration named by what sets it
    /// apart from its twin.
    fn describe(&self, class: Class, twin: &Group) -> String {
        let n = self.runs.len();
        let k = self.classes().iter().filter(|c| **c == class).count();
        let first = self.runs.iter().find(|r| Class::of(r) == class).unwrap_or(&self.runs[0]);
        let rate = if n > 1 { format!(" in {k}/{n} runs") } else { String::new() };
        format!("run {} ({}) {}{rate}", first.id, self.config.change_from(&twin.config), class.describe())
    }

    /// True when a healthy run of this group was watched at least as long as the first run of `failing` with
    /// `class` took to fail: only then does its health contrast with that failure.
    fn healthy_long_enough(&self, failing: &Group, class: Class) -> bool {
        let fail_at = super::facts::failed_at_us(failing.first_with(class));
        self.runs
            .iter()
            .filter(|r| Class::of(r) == Class::Healthy)
            .any(|r| fail_at.is_none_or(|t| super::facts::watched_past(r, t)))
    }

    fn first_with(&self, class: Class) -> &RunRecord {
        self.runs.iter().find(|r| Class::of(r) == class).unwrap_or(&self.runs[0])
    }
}

/// The runs grouped by configuration, in matrix order.
pub(crate) fn groups(runs: &[RunRecord]) -> Vec<Group<'_>> {
    let mut out: Vec<Group> = Vec::new();
    for run in runs {
        match out.iter_mut().find(|g| g.config == run.config) {
            Some(g) => g.runs.push(run),
            None => out.push(Group { config: run.config, runs: vec![run] }),
        }
    }
    out
}

/// The question a cross-configuration probe asks: does changing `dim` from a `base` value to a `suspect` value
/// (attached for detached, a pipe for ignore/file) turn a healthy worker into a failing one?
pub(crate) struct Question {
    pub(crate) dim: Dimension,
    pub(crate) base: fn(&RunConfig) -> bool,
    pub(crate) suspect: fn(&RunConfig) -> bool,
    /// `attached` / `a pipe`: how the summary names the suspect side.
    pub(crate) suspect_name: &'static str,
    /// Extra facts about a failing suspect run (why it failed).
    pub(crate) explain: fn(&RunRecord) -> Vec<Evidence>,
}

/// Pairs of configurations (base, suspect) that differ in the question's dimension only.
fn pairs<'a, 'b>(groups: &'b [Group<'a>], q: &Question) -> Vec<(&'b Group<'a>, &'b Group<'a>)> {
    let mut out = Vec::new();
    for b in groups.iter().filter(|g| (q.base)(&g.config)) {
        for s in groups.iter().filter(|g| (q.suspect)(&g.config)) {
            if b.config.differs_only_in(&s.config, q.dim) {
                out.push((b, s));
            }
        }
    }
    out
}

/// Pairs whose outcomes flip shown at most in a verdict.
const PAIRS_SHOWN: usize = 3;

/// Answers the question from the runs: confirmed when a suspect configuration fails in a way its base twin never
/// does while the twin was healthy; ruled out when every pair has the same outcomes.
pub(crate) fn answer(runs: &[RunRecord], q: &Question) -> Finding {
    let groups = groups(runs);
    let pairs = pairs(&groups, q);
    let dim = q.dim.name();
    if pairs.is_empty() {
        return Finding::new(
            Status::Inconclusive,
            format!("no two configurations differ in {dim} alone"),
            vec![Evidence { run: None, t_us: None, text: format!("missing: runs that vary {dim} (--vary {dim})") }],
        );
    }
    let mut flips: Vec<(&Group, &Group, Class)> = pairs
        .iter()
        .filter(|(b, _)| b.classes().contains(&Class::Healthy))
        .filter_map(|(b, s)| s.failure_absent_from(b).map(|c| (*b, *s, c)))
        .filter(|(b, s, c)| b.healthy_long_enough(s, *c))
        .collect();
    // One flip per failing configuration is enough to show it.
    let mut seen: Vec<RunConfig> = Vec::new();
    flips.retain(|(_, s, _)| {
        !seen.contains(&s.config) && {
            seen.push(s.config);
            true
        }
    });
    if let Some((b, s, class)) = flips.first() {
        let mut summary = format!("{} vs {}", s.describe(*class, b), b.describe(Class::Healthy, s));
        if flips.len() > 1 {
            summary.push_str(&format!(" (and {} more pair(s) of configurations)", flips.len() - 1));
        }
        let evidence = flips.iter().take(PAIRS_SHOWN).flat_map(|(b, s, c)| pair_evidence(b, s, *c, q)).collect();
        return Finding::new(Status::Confirmed, summary, evidence);
    }
    let differing =
        pairs.iter().find(|(b, s)| s.failure_absent_from(b).is_some() || b.failure_absent_from(s).is_some());
    if let Some((b, s)) = differing {
        if let Some(short) = watched_too_short(b, s).or_else(|| watched_too_short(s, b)) {
            return Finding::new(
                Status::Inconclusive,
                format!("outcomes differ between configurations that differ in {dim} alone, but {short}"),
                vec![summary_of(b), summary_of(s)],
            );
        }
        return Finding::new(
            Status::Inconclusive,
            format!("outcomes differ between configurations that differ in {dim} alone, but not as {} failing where the other side is healthy", q.suspect_name),
            vec![summary_of(b), summary_of(s)],
        );
    }
    let evidence = pairs.iter().take(PAIRS_SHOWN).flat_map(|(b, s)| [summary_of(b), summary_of(s)]).collect();
    Finding::new(
        Status::RuledOut,
        format!("the same outcomes whatever the {dim}, in {} pair(s) of configurations", pairs.len()),
        evidence,
    )
}

/// `run 2 (…) was healthy for the 0.23 s it was watched, less than the 0.30 s run 1 took to fail`: when the healthy
/// side of a pair settled before the other side failed, its health says nothing about that failure.
fn watched_too_short(healthy: &Group, failing: &Group) -> Option<String> {
    let class = failing.failure_absent_from(healthy)?;
    if healthy.healthy_long_enough(failing, class) || !healthy.classes().contains(&Class::Healthy) {
        return None;
    }
    let failed = failing.first_with(class);
    let fail_at = super::facts::failed_at_us(failed)?;
    let ok = healthy.first_with(Class::Healthy);
    let secs = |us: u64| format!("{:.2} s", us as f64 / 1e6);
    Some(format!(
        "run {} ({}) was healthy for the {} it was watched, less than the {} run {} ({}) took to fail: not watched \
         long enough to compare",
        ok.id,
        healthy.config,
        secs(super::facts::watched_us(ok).unwrap_or(0)),
        secs(fail_at),
        failed.id,
        failing.config
    ))
}

/// `run 1 (…): healthy 3/3` for a group.
fn summary_of(g: &Group) -> Evidence {
    let mut classes: Vec<(Class, usize)> = Vec::new();
    for c in g.classes() {
        match classes.iter_mut().find(|(d, _)| *d == c) {
            Some((_, n)) => *n += 1,
            None => classes.push((c, 1)),
        }
    }
    let text: Vec<String> = classes.iter().map(|(c, n)| format!("{} {n}/{}", c.describe(), g.runs.len())).collect();
    Evidence::run(g.runs[0].id, format!("({}) {}", g.config, text.join(", ")))
}

/// The events that show one flip: how the suspect run ended, why if known, and the healthy twin's end.
fn pair_evidence(b: &Group, s: &Group, class: Class, q: &Question) -> Vec<Evidence> {
    let failing = s.first_with(class);
    let healthy = b.first_with(Class::Healthy);
    let mut out = vec![Evidence::run(failing.id, format!("({}) {}", s.config, class.describe()))];
    out.extend((q.explain)(failing));
    if let Some((e, _, _)) = failing.events.own_exits().next() {
        out.push(Evidence::at(failing.id, e.t_us, e.kind.describe()));
    }
    let end =
        healthy.events.iter().find(|e| matches!(e.kind, EventKind::HarnessStop { .. } | EventKind::EndState { .. }));
    let text = format!("({}) healthy", b.config);
    out.push(match end {
        Some(e) => Evidence::at(healthy.id, e.t_us, format!("{text}: {}", e.kind.describe())),
        None => Evidence::run(healthy.id, text),
    });
    out
}

/// The launcher's exit, when it came before the worker's: "the worker died after its launcher left".
pub(crate) fn launcher_left_first(run: &RunRecord) -> Vec<Evidence> {
    let Some((gone, status)) = run.events.launcher_exit() else { return vec![] };
    let exit = run.events.own_exits().next();
    match exit {
        Some((e, pid, s)) if e.t_us >= gone.t_us => vec![
            Evidence::at(run.id, gone.t_us, format!("the launcher {status}")),
            Evidence::run(run.id, format!("pid {pid} {s} {} after its launcher exited", ms(e.t_us - gone.t_us))),
        ],
        _ => vec![],
    }
}

fn ms(us: u64) -> String {
    fmt_ms(us).trim_start_matches('+').to_string()
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{Endpoint, Event, Expected, Lifecycle, Outcome, Probe, SpawnMode, StdioMode, Timeline};

    fn run(id: usize, spawn: SpawnMode, stdio: StdioMode, died: Option<i32>) -> RunRecord {
        let config = RunConfig { spawn, lifecycle: Lifecycle::Exits, stdio, ..RunConfig::PRODUCTION };
        let mut events = vec![
            Event { t_us: 10, kind: EventKind::Spawned { pid: 7, argv: vec!["w".into()] } },
            Event { t_us: 20, kind: EventKind::LauncherExited { pid: 6, status: ExitStatus::Code(0) } },
        ];
        match died {
            Some(sig) => {
                events.push(Event { t_us: 30, kind: EventKind::Exited { pid: 7, status: ExitStatus::Signal(sig) } })
            }
            None => events.push(Event { t_us: 40, kind: EventKind::HarnessStop { how: "finalize".into() } }),
        }
        let healthy = died.is_none();
        let exit = died.map(ExitStatus::Signal);
        let outcome = Outcome { reachable: true, healthy, exit, label: String::new() };
        let expected = Expected::for_tests(Endpoint::Unix { path: "/s/w.sock".into() });
        RunRecord { id, clock_origin_ns: 0, config, expected, outcome, events: Timeline::new(events) }
    }

    #[test]
    fn h2_names_the_pair_that_flips() {
        use {SpawnMode::*, StdioMode::*};
        let runs = vec![run(1, Detached, Ignore, None), run(2, Attached, Ignore, Some(1))];
        let f = crate::hypotheses::h02_attached_spawn::AttachedSpawn.evaluate(&runs);
        assert_eq!(f.status, Status::Confirmed);
        assert!(
            f.summary.starts_with("run 2 (attached spawn) killed by SIGHUP (1) vs run 1 (detached spawn) healthy"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e.text.contains("after its launcher exited")), "{:?}", f.evidence);
    }

    #[test]
    fn equal_outcomes_rule_out_and_no_pair_is_inconclusive() {
        use {SpawnMode::*, StdioMode::*};
        let h2 = crate::hypotheses::h02_attached_spawn::AttachedSpawn;
        let h3 = crate::hypotheses::h03_stdio_piping::StdioPiping;
        let equal = vec![run(1, Detached, Ignore, Some(13)), run(2, Attached, Ignore, Some(13))];
        assert_eq!(h2.evaluate(&equal).status, Status::RuledOut);
        assert_eq!(h3.evaluate(&equal).status, Status::Inconclusive);
        // Detached worse than attached: outcomes differ, but not the way H2 claims.
        let reversed = vec![run(1, Detached, Ignore, Some(9)), run(2, Attached, Ignore, None)];
        assert_eq!(h2.evaluate(&reversed).status, Status::Inconclusive);
        // Two configurations differing in spawn and stdio at once are no pair.
        let two_changes = vec![run(1, Detached, Ignore, None), run(2, Attached, PipeDrained, Some(13))];
        assert_eq!(h2.evaluate(&two_changes).status, Status::Inconclusive);
        assert_eq!(h3.evaluate(&two_changes).status, Status::Inconclusive);
    }

    #[test]
    fn a_flaky_base_is_no_flip() {
        use {SpawnMode::*, StdioMode::*};
        let runs = vec![
            run(1, Detached, Ignore, None),
            run(2, Detached, Ignore, Some(13)),
            run(3, Detached, PipeDrained, Some(13)),
            run(4, Detached, PipeDrained, Some(13)),
        ];
        let f = crate::hypotheses::h03_stdio_piping::StdioPiping.evaluate(&runs);
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }
}
