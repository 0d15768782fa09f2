//! Accuracy: each fixture mode, run through the real binary, gives its whole expected verdict set and exit code.

mod common;

use common::{run_json, statuses};

const C: &str = "confirmed";
const R: &str = "ruled_out";
const I: &str = "inconclusive";

/// The status expected of every hypothesis, in id order.
type VerdictSet = &'static [(&'static str, &'static str)];

/// mode → exit code and the status of every hypothesis.
const EXPECTED: &[(&str, i32, VerdictSet)] = &[
    ("healthy", 0, &[("H1", R), ("H4", R), ("H8", R), ("H9", R)]),
    ("crash-cleanup", 1, &[("H1", C), ("H4", R), ("H8", R), ("H9", C)]),
    ("exit-no-cleanup", 1, &[("H1", C), ("H4", R), ("H8", R), ("H9", R)]),
    ("wrong-path", 1, &[("H1", R), ("H4", C), ("H8", R), ("H9", R)]),
    ("no-session", 1, &[("H1", R), ("H4", I), ("H8", C), ("H9", R)]),
];

fn check(mode: &str) -> serde_json::Value {
    let (_, exit, expected) = EXPECTED.iter().find(|(m, _, _)| *m == mode).expect("mode in table");
    let (code, report) = run_json(mode, &[]);
    let got = statuses(&report);
    let want: Vec<(String, String)> = expected.iter().map(|(id, s)| (id.to_string(), s.to_string())).collect();
    assert_eq!(got, want, "{mode}: verdicts; root cause: {}", report["root_cause"]);
    assert_eq!(code, *exit, "{mode}: exit code");
    report
}

fn verdict<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["verdicts"].as_array().unwrap().iter().find(|v| v["id"] == id).expect("verdict present")
}

#[test]
fn healthy() {
    let report = check("healthy");
    assert!(report["root_cause"].is_null());
    assert!(report["runs"].as_array().unwrap().iter().all(|r| r["outcome"]["healthy"] == true));
}

#[test]
fn crash_cleanup() {
    let report = check("crash-cleanup");
    let h9 = verdict(&report, "H9");
    assert!(h9["summary"].as_str().unwrap().contains("by the worker itself"), "{h9}");
    // Every run sees the removal, including those whose worker exits with no output stream left to drain.
    assert!(h9["summary"].as_str().unwrap().ends_with("(4/4 runs)"), "{h9}");
    assert!(report["root_cause"].as_str().unwrap().contains("H9"));
    // The production configuration (first run) discards output: the verdict must rest on kernel events alone.
    assert_eq!(report["runs"][0]["config"]["stdio"], "ignore");
}

#[test]
fn exit_no_cleanup() {
    check("exit-no-cleanup");
}

#[test]
fn wrong_path() {
    let report = check("wrong-path");
    let h4 = verdict(&report, "H4")["summary"].as_str().unwrap().to_string();
    assert!(h4.contains("/home/.claude-mem/worker-28.sock"), "{h4}");
}

#[test]
fn no_session() {
    check("no-session");
}

#[test]
fn json_has_the_documented_fields() {
    let (_, report) = run_json("exit-no-cleanup", &[]);
    for key in ["session", "profile", "verdicts", "runs", "root_cause"] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    let run = &report["runs"][0];
    for key in ["id", "config", "outcome", "events"] {
        assert!(run.get(key).is_some(), "run misses {key}");
    }
    let first = &run["events"][0];
    assert!(first["t_us"].is_u64() && first["kind"].is_string(), "{first}");
    for v in report["verdicts"].as_array().unwrap() {
        for key in ["id", "title", "status", "summary", "evidence"] {
            assert!(v.get(key).is_some(), "verdict misses {key}");
        }
    }
}
