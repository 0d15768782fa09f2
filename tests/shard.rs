//! More than one runner: real shards of a fixture profile cover the unsharded matrix run for run, `merge` gives
//! the unsharded verdicts, and `check` works on shards and on the merge.

mod common;

use std::path::{Path, PathBuf};

use common::{profile, sockdiag, statuses};
use serde_json::Value;

/// The matrix of these tests: the quick matrix of the fixture, twice (14 runs).
const MATRIX: [&str; 2] = ["--repeat", "2"];
const SHARDS: u32 = 3;

fn run_args<'a>(p: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--session", "28", "--profile", p, "--format", "json"];
    args.extend_from_slice(&MATRIX);
    args.extend_from_slice(extra);
    args
}

fn json_of(out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// `(id, configuration)` of every run of a report.
fn runs_of(report: &Value) -> Vec<(u64, Value)> {
    report["runs"].as_array().unwrap().iter().map(|r| (r["id"].as_u64().unwrap(), r["config"].clone())).collect()
}

/// Runs every shard of the matrix, each saved to a file; returns the files.
fn run_shards(dir: &Path, p: &str) -> Vec<PathBuf> {
    (1..=SHARDS)
        .map(|i| {
            let file = dir.join(format!("shard-{i}.json"));
            let shard = format!("{i}/{SHARDS}");
            let out = sockdiag(&run_args(p, &["--shard", &shard, "--report", file.to_str().unwrap()]));
            assert_eq!(out.status.code(), Some(1), "shard {shard}: {}", String::from_utf8_lossy(&out.stderr));
            let report = json_of(&out);
            assert_eq!(report["matrix"]["shards"], serde_json::json!({"count": SHARDS, "ran": [i]}));
            assert!(
                report["command"].as_str().unwrap().ends_with(&format!("--shard {shard}")),
                "{}",
                report["command"]
            );
            file
        })
        .collect()
}

#[test]
fn shards_cover_the_matrix_and_their_merge_judges_like_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile("crash-cleanup");
    let whole_file = dir.path().join("whole.json");
    let whole_out = sockdiag(&run_args(&p, &["--report", whole_file.to_str().unwrap()]));
    assert_eq!(whole_out.status.code(), Some(1), "{}", String::from_utf8_lossy(&whole_out.stderr));
    let whole = json_of(&whole_out);
    assert_eq!(whole["matrix"]["runs"], 14);
    assert!(whole["matrix"].get("shards").is_none(), "{}", whole["matrix"]);

    let files = run_shards(dir.path(), &p);
    // Every run of the matrix in exactly one shard: the same ids with the same configurations.
    let mut union: Vec<(u64, Value)> = Vec::new();
    for file in &files {
        let report: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        union.extend(runs_of(&report));
    }
    let mut ids: Vec<u64> = union.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), union.len(), "a run in two shards: {ids:?}");
    union.sort_by_key(|(id, _)| *id);
    assert_eq!(union, runs_of(&whole));

    // In any order of the files: the merge has the runs in matrix order, says which shards made it, reproduces
    // the whole matrix, and judges like the unsharded run.
    let mut args = vec!["merge", "--format", "json", "--shards", "3"];
    args.extend(files.iter().rev().map(|f| f.to_str().unwrap()));
    let merged_file = dir.path().join("merged.json");
    args.extend(["--report", merged_file.to_str().unwrap()]);
    let out = sockdiag(&args);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let merged = json_of(&out);
    assert_eq!(runs_of(&merged), runs_of(&whole));
    assert_eq!(merged["matrix"]["shards"], serde_json::json!({"count": 3, "ran": [1, 2, 3]}));
    assert_eq!(merged["command"], whole["command"]);
    assert_eq!(statuses(&merged), statuses(&whole));

    // JUnit of the merge: one suite per configuration, holding its repeats from different shards.
    let out = sockdiag(&["render", merged_file.to_str().unwrap(), "--format", "junit"]);
    let xml = String::from_utf8_lossy(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML");
    let suites: Vec<_> = doc.root_element().children().filter(|n| n.has_tag_name("testsuite")).collect();
    let property = |suite: &roxmltree::Node, name: &str| {
        suite
            .descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
            .map(str::to_string)
    };
    assert_eq!(suites[0].attribute("name"), Some("detached, launcher exits, stdio ignore, 1 launch"));
    assert_eq!(property(&suites[0], "runs").as_deref(), Some("1, 2"), "{xml}");
    assert_eq!(property(&suites[0], "shards").as_deref(), Some("1/3, 2/3, 3/3"));
    let first_case = suites[0].children().find(|n| n.has_tag_name("testcase")).unwrap();
    assert_eq!(first_case.attribute("name"), Some("socket served in every run"));
    assert!(first_case.children().any(|n| n.has_tag_name("failure")), "the fixture's runs fail: {xml}");

    // check: the merge is a baseline like the whole run; a shard is held to the baseline's runs of that shard.
    let base = |f: &Path| f.to_str().unwrap().to_string();
    let check = |baseline: &str, extra: &[&str]| {
        let mut args = vec!["check", "--baseline", baseline, "--session", "28", "--profile", &p];
        args.extend_from_slice(&MATRIX);
        args.extend_from_slice(extra);
        sockdiag(&args)
    };
    for (baseline, extra) in [(base(&merged_file), &[][..]), (base(&whole_file), &["--shard", "2/3"][..])] {
        let out = check(&baseline, extra);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{baseline} {extra:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("same as in"), "{stdout}");
    }
    // A shard is no baseline for the whole matrix; merge --baseline compares like check.
    let out = check(&base(&files[0]), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("merge the shards first"));
    let mut args = vec!["merge", "--baseline", whole_file.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = sockdiag(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_partial_merge_names_the_missing_shards_and_merges_with_them_later() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile("crash-cleanup");
    let files = run_shards(dir.path(), &p);
    let [one, two, three] = [0, 1, 2].map(|i| files[i].to_str().unwrap());

    let refused = sockdiag(&["merge", one, three]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("shard 2/3 missing") && stderr.contains("--partial"), "{stderr}");

    let partial_file = dir.path().join("partial.json");
    let partial =
        sockdiag(&["merge", "--partial", "--format", "json", one, three, "--report", partial_file.to_str().unwrap()]);
    assert_eq!(partial.status.code(), Some(1), "{}", String::from_utf8_lossy(&partial.stderr));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("shard 2/3 missing"));
    let report = json_of(&partial);
    assert_eq!(report["matrix"]["shards"], serde_json::json!({"count": 3, "ran": [1, 3]}));
    let ids: Vec<u64> = runs_of(&report).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 3, 4, 6, 7, 9, 10, 12, 13]);

    let completed = sockdiag(&["merge", "--format", "json", partial_file.to_str().unwrap(), two]);
    assert_eq!(completed.status.code(), Some(1), "{}", String::from_utf8_lossy(&completed.stderr));
    assert_eq!(json_of(&completed)["matrix"]["shards"]["ran"], serde_json::json!([1, 2, 3]));
}
