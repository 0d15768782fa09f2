//! `sockdiag check --baseline`: exit 0 when every verdict's status equals the baseline's, 1 with a table of the
//! differences when one does not, 2 when the baseline is missing or not a report. Real runs, real binary.

mod common;

use common::{profile, sockdiag};

fn check(baseline: &std::path::Path, mode: &str, extra: &[&str]) -> std::process::Output {
    let p = profile(mode);
    let mut args = vec!["check", "--baseline", baseline.to_str().unwrap(), "--session", "28", "--profile", &p];
    args.extend_from_slice(extra);
    sockdiag(&args)
}

#[test]
fn same_behaviour_passes_and_a_changed_one_fails_with_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let written = check(&baseline, "crash-cleanup", &["--update-baseline"]);
    assert_eq!(written.status.code(), Some(0), "{}", String::from_utf8_lossy(&written.stderr));
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert!(saved["verdicts"].as_array().is_some_and(|v| !v.is_empty()), "the baseline is a JSON report");

    let same = check(&baseline, "crash-cleanup", &[]);
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&same.stderr));
    assert!(stdout.contains("same as in"), "{stdout}");

    // The worker now leaves its socket file behind: H9 is no longer confirmed, and the file left is stale (H14).
    let changed = check(&baseline, "exit-no-cleanup", &[]);
    let stdout = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(1), "{stdout}");
    let row = stdout.lines().find(|l| l.contains("H9")).unwrap_or_else(|| panic!("no H9 row:\n{stdout}"));
    assert!(row.contains("CONFIRMED") && row.contains("ruled out"), "{row}");
    assert!(!stdout.lines().any(|l| l.contains("│ H1 ")), "H1 is still confirmed: not a difference\n{stdout}");

    let quiet = check(&baseline, "exit-no-cleanup", &["--quiet"]);
    assert_eq!(quiet.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&quiet.stdout).trim(),
        "differs from the baseline: H9 CONFIRMED -> ruled out, H14 ruled out -> CONFIRMED"
    );
}

#[test]
fn a_recorded_baseline_from_another_fixture_differs() {
    let recorded = common::root().join("tests/fixtures/crash-cleanup.json");
    let out = check(&recorded, "wrong-path", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l.contains("H4") && l.contains("ruled out") && l.contains("CONFIRMED")), "{stdout}");
}

#[test]
fn a_missing_or_invalid_baseline_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "this is not a report").unwrap();
    let no_verdicts = dir.path().join("empty.json");
    std::fs::write(&no_verdicts, "{\"verdicts\": []}").unwrap();
    for bad in [&missing, &not_json, &no_verdicts] {
        let out = check(bad, "crash-cleanup", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", bad.display());
        assert!(stderr.contains("--baseline") && stderr.contains(bad.to_str().unwrap()), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn with_a_format_the_report_is_on_stdout_and_the_comparison_on_stderr() {
    let recorded = common::root().join("tests/fixtures/crash-cleanup.json");
    let out = check(&recorded, "wrong-path", &["--format", "json"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "the comparison still decides the exit: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}:\n{stdout}"));
    assert!(report["verdicts"].as_array().is_some_and(|v| !v.is_empty()), "{stdout}");
    assert!(stderr.lines().any(|l| l.contains("H4") && l.contains("CONFIRMED")), "{stderr}");

    let quiet = check(&recorded, "wrong-path", &["--format", "json", "--quiet"]);
    let line = String::from_utf8_lossy(&quiet.stdout);
    assert!(line.starts_with("differs from the baseline: ") && line.lines().count() == 1, "--quiet wins: {line}");
}
