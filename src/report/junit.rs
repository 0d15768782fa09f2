//! `--format junit`: JUnit XML for CI (quick-junit), so that a dashboard shows which configuration broke. One test
//! suite per configuration group (the runs of one configuration, its repeats), named by the configuration, with the
//! group's run ids, its dimensions and (for shards) the shards among its properties. Its first case is the runs'
//! outcome (a failure when a run of that configuration failed, whether or not a hypothesis explains it), then one
//! case per hypothesis judged on that configuration's runs; a hypothesis that only a comparison of configurations
//! decides (every single configuration leaves it open, all of them together do not) is one case of the suite
//! "across configurations". Confirmed = failure whose message is the evidence, ruled out = pass,
//! inconclusive / not applicable = skipped.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use sockdiag_probes::{all_probes, Probe, RunRecord, Status, Verdict};

use super::view::{self, Paths};
use crate::diagnosis::Diagnosis;

/// The suite of hypotheses that only a comparison of configurations decides.
const ACROSS: &str = "across configurations";
/// The first case of a configuration's suite: how its runs ended.
const OUTCOME: &str = "socket served in every run";

/// The diagnosis as JUnit XML.
pub(super) fn render(d: &Diagnosis) -> anyhow::Result<String> {
    render_with(d, &all_probes())
}

/// The report, judging each configuration's runs with `probes` (the ones that judged `d`).
fn render_with(d: &Diagnosis, probes: &[Box<dyn Probe>]) -> anyhow::Result<String> {
    let paths = Paths::of(d);
    let groups = view::groups(&d.runs);
    let group_runs: Vec<Vec<RunRecord>> =
        groups.iter().map(|g| g.runs.iter().map(|r| (*r).clone()).collect()).collect();
    let mut suites: Vec<TestSuite> = groups.iter().map(|g| suite_of(g, d)).collect();
    let mut across = TestSuite::new(ACROSS);
    for overall in &d.verdicts {
        let Some(probe) = probes.iter().find(|p| p.id() == overall.id) else { continue };
        let per_group: Vec<Verdict> = group_runs.iter().map(|runs| probe.verdict(runs)).collect();
        let only_across = decisive(overall) && !per_group.iter().any(decisive);
        if groups.len() <= 1 || only_across {
            let suite = if groups.len() == 1 && !only_across { &mut suites[0] } else { &mut across };
            let name = suite.name.to_string();
            suite.add_test_case(case(&paths, overall, &name));
        } else {
            for (suite, v) in suites.iter_mut().zip(&per_group) {
                let name = suite.name.to_string();
                suite.add_test_case(case(&paths, v, &name));
            }
        }
    }
    let mut report = Report::new("sockdiag");
    for mut suite in suites.into_iter().chain(std::iter::once(across)).filter(|s| !s.test_cases.is_empty()) {
        suite.add_property(Property::new("session", d.session.to_string()));
        suite.add_property(Property::new("profile", view::visible(&d.profile).into_owned()));
        if let Some(cause) = &d.root_cause {
            suite.add_property(Property::new("root_cause", paths.show(cause)));
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

/// A configuration's suite, with its properties and the case of its runs' outcome.
fn suite_of(group: &view::Group, d: &Diagnosis) -> TestSuite {
    let name = view::visible(&group.config.to_string()).into_owned();
    let mut suite = TestSuite::new(name.as_str());
    let ids: Vec<String> = group.runs.iter().map(|r| r.id.to_string()).collect();
    suite.add_property(Property::new("runs", ids.join(", ")));
    // The dimensions as the JSON report names them, for dashboards that filter by property.
    if let Ok(serde_json::Value::Object(dimensions)) = serde_json::to_value(group.config) {
        for name in ["spawn", "lifecycle", "stdio", "launches", "runtime", "user"] {
            let Some(value) = dimensions.get(name) else { continue };
            let value = value.as_str().map_or_else(|| value.to_string(), str::to_string);
            suite.add_property(Property::new(name, view::visible(&value).into_owned()));
        }
    }
    if let Some(shards) = d.matrix.as_ref().and_then(|m| m.shards.as_ref()) {
        let list: Vec<String> = shards.ran.iter().map(|i| format!("{i}/{}", shards.count)).collect();
        suite.add_property(Property::new("shards", list.join(", ")));
    }
    let outcomes: Vec<String> =
        group.runs.iter().map(|r| format!("run {}: {}", r.id, view::visible(&r.outcome.label))).collect();
    let failed: Vec<&str> =
        group.runs.iter().zip(&outcomes).filter(|(r, _)| !r.outcome.healthy).map(|(_, o)| o.as_str()).collect();
    let status = if failed.is_empty() {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(format!("{} of {} run(s) failed: {}", failed.len(), group.runs.len(), failed.join("; ")))
            .set_type("failed run");
        s
    };
    let mut case = TestCase::new(OUTCOME, status);
    case.set_classname(name.as_str()).set_system_out(outcomes.join("\n"));
    suite.add_test_case(case);
    suite
}

fn decisive(v: &Verdict) -> bool {
    matches!(v.status, Status::Confirmed | Status::RuledOut)
}

/// One hypothesis in one suite.
fn case(paths: &Paths, v: &Verdict, classname: &str) -> TestCase {
    let view = view::verdict_view(paths, v);
    let evidence = view.evidence.join("\n");
    let status = match v.status {
        Status::Confirmed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("confirmed: {}", view.summary))
                .set_type("confirmed")
                .set_description(format!("{evidence}\nfix: {}", view.fix));
            s
        }
        Status::RuledOut => TestCaseStatus::success(),
        Status::Inconclusive | Status::NotApplicable => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("{}: {}", v.status.label(), view.summary)).set_type(v.status.label());
            s
        }
    };
    let mut case = TestCase::new(format!("{} {}", view.id, view.title), status);
    case.set_classname(classname);
    if v.status != Status::Confirmed && !evidence.is_empty() {
        case.set_system_out(format!("{}\n{evidence}", view.summary));
    }
    case
}

#[cfg(test)]
mod tests {
    use sockdiag_probes::{Finding, Probe, RunRecord, Status};

    use super::render_with;
    use crate::diagnosis::{Diagnosis, Saved};

    /// Decided only by comparing configurations: open on any one configuration's runs.
    struct ComparesConfigurations;

    impl Probe for ComparesConfigurations {
        fn id(&self) -> &'static str {
            "H2"
        }
        fn title(&self) -> &'static str {
            "compares configurations"
        }
        fn checks(&self) -> &'static str {
            ""
        }
        fn fix(&self) -> &'static str {
            ""
        }
        fn causal_rank(&self) -> u8 {
            0
        }
        fn evaluate(&self, runs: &[RunRecord]) -> Finding {
            match runs.iter().any(|r| r.config != runs[0].config) {
                true => Finding::new(Status::RuledOut, "same outcome in every configuration", vec![]),
                false => Finding::new(Status::NotApplicable, "one configuration only", vec![]),
            }
        }
    }

    #[test]
    fn a_hypothesis_only_a_comparison_decides_is_one_case_across_configurations() {
        let saved: Saved = serde_json::from_str(include_str!("../../tests/fixtures/crash-cleanup.json")).unwrap();
        let mut d = Diagnosis::from_saved(saved);
        let probes: Vec<Box<dyn Probe>> = vec![Box::new(ComparesConfigurations)];
        d.verdicts = probes.iter().map(|p| p.verdict(&d.runs)).collect();
        let xml = render_with(&d, &probes).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let suites: Vec<_> = doc.root_element().children().filter(|n| n.has_tag_name("testsuite")).collect();
        // The configurations' suites hold their outcome only; the hypothesis is one case across them.
        let across: Vec<_> = suites.iter().filter(|s| s.attribute("name") == Some("across configurations")).collect();
        assert_eq!(across.len(), 1, "{xml}");
        assert_eq!(across[0].attribute("tests"), Some("1"));
        assert_eq!(suites.len(), 8, "{xml}");
        assert!(suites[..7].iter().all(|s| s.attribute("tests") == Some("1")), "{xml}");
    }
}
