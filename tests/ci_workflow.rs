//! docs/ci/github-actions.yml: the shard count, the job matrix, the artifacts and the merge agree; sockdiag is
//! built in one job only; and its sockdiag steps, run here as GitHub would run them (bash -eo pipefail) against a
//! fixture worker, give shards that merge into the same verdicts as the baseline.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn workflow() -> Value {
    let path = common::root().join("docs/ci/github-actions.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

fn steps<'a>(w: &'a Value, job: &str) -> &'a Vec<Value> {
    w["jobs"][job]["steps"].as_array().unwrap_or_else(|| panic!("job {job} has no steps"))
}

/// The one step of `job` whose `run` script contains `needle`.
fn step_running<'a>(w: &'a Value, job: &str, needle: &str) -> &'a Value {
    let found: Vec<&Value> =
        steps(w, job).iter().filter(|s| s["run"].as_str().is_some_and(|r| r.contains(needle))).collect();
    assert_eq!(found.len(), 1, "job {job}: one step should run {needle:?}");
    found[0]
}

/// The steps of `job` that use `action` (e.g. actions/upload-artifact).
fn uses<'a>(w: &'a Value, job: &str, action: &str) -> Vec<&'a Value> {
    steps(w, job).iter().filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action))).collect()
}

fn shard_count(w: &Value) -> u64 {
    w["env"]["SHARDS"].as_u64().expect("env.SHARDS is a number")
}

#[test]
fn shard_count_job_matrix_artifacts_and_merge_agree() {
    let w = workflow();
    let n = shard_count(&w);
    assert!(n >= 2, "a sharded workflow has at least 2 shards");
    let listed: Vec<u64> = w["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(listed, (1..=n).collect::<Vec<_>>(), "the job matrix lists 1 … SHARDS");
    assert_eq!(w["jobs"]["shard"]["strategy"]["fail-fast"], false, "one shard's failure must not cancel the others");

    let run = step_running(&w, "shard", "sockdiag run")["run"].as_str().unwrap();
    assert!(run.contains(r#"--shard "${{ matrix.shard }}/$SHARDS""#), "{run}");
    assert!(run.contains(r#"--report "sockdiag-shard-${{ matrix.shard }}.json""#), "{run}");
    let upload = uses(&w, "shard", "actions/upload-artifact");
    assert_eq!(upload.len(), 1);
    assert_eq!(upload[0]["with"]["name"], "sockdiag-shard-${{ matrix.shard }}");
    assert_eq!(upload[0]["with"]["path"], "sockdiag-shard-${{ matrix.shard }}.json");

    let merge_needs = w["jobs"]["merge"]["needs"].as_array().unwrap();
    assert!(merge_needs.iter().any(|j| j == "shard") && merge_needs.iter().any(|j| j == "build"));
    let download = uses(&w, "merge", "actions/download-artifact");
    let shards = download.iter().find(|s| s["with"]["pattern"].is_string()).expect("the merge downloads the shards");
    let pattern = shards["with"]["pattern"].as_str().unwrap();
    assert_eq!(pattern, "sockdiag-shard-*", "the pattern matches every shard's artifact name");
    assert_eq!(shards["with"]["merge-multiple"], true);
    let dir = shards["with"]["path"].as_str().unwrap();
    let merge = step_running(&w, "merge", "sockdiag merge")["run"].as_str().unwrap();
    assert!(merge.contains(r#"--shards "$SHARDS""#), "the merge checks the count: {merge}");
    assert!(merge.contains(&format!("{dir}/sockdiag-shard-*.json")), "the merge reads what was downloaded: {merge}");
    assert!(merge.contains(r#"--baseline "$BASELINE""#), "a changed verdict fails the job: {merge}");
    assert!(!merge.contains("--partial"), "a missing shard fails the merge: {merge}");
    let junit = uses(&w, "merge", "mikepenz/action-junit-report");
    assert_eq!(junit.len(), 1, "JUnit is published");
    assert_eq!(junit[0]["if"].as_str().map(|c| c.starts_with("always()")), Some(true), "also when verdicts differ");

    // Built once: only the build job builds sockdiag; the others download its artifact.
    let jobs = w["jobs"].as_object().unwrap();
    for (name, _) in jobs {
        let builds = steps(&w, name).iter().any(|s| s["run"].as_str().is_some_and(|r| r.contains("install --locked")));
        assert_eq!(builds, name == "build", "job {name}");
    }
    assert_eq!(uses(&w, "build", "actions/upload-artifact")[0]["with"]["name"], "sockdiag");
    for job in ["shard", "merge"] {
        assert!(uses(&w, job, "actions/download-artifact").iter().any(|s| s["with"]["name"] == "sockdiag"), "{job}");
    }
}

/// Runs one step's script the way GitHub's `shell: bash` does, in `dir`, with sockdiag on PATH.
fn run_step(script: &str, dir: &Path, env: &[(&str, String)]) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_sockdiag")).parent().unwrap().to_path_buf();
    let path =
        std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&common::path_with_tools()))).unwrap();
    Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash runs")
}

#[test]
fn the_workflow_steps_shard_merge_and_compare_for_real() {
    let w = workflow();
    let n = shard_count(&w);
    let dir = tempfile::tempdir().unwrap();
    // The fixture instead of the worker the workflow names; the quick matrix repeated twice.
    let args = format!("--session 28 --profile {} --matrix quick --repeat 2", common::profile("crash-cleanup"));
    let summary = dir.path().join("summary.md");
    let env = [
        ("SHARDS", n.to_string()),
        ("SOCKDIAG_ARGS", args.clone()),
        ("BASELINE", "baseline.json".to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
    ];
    let ok = |what: &str, out: &std::process::Output| {
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{what}: {:?}\n{stdout}\n{stderr}", out.status.code());
    };
    // The baseline, recorded the way the workflow's comment says.
    let record =
        run_step("sockdiag check --baseline \"$BASELINE\" --update-baseline $SOCKDIAG_ARGS --quiet", dir.path(), &env);
    ok("recording the baseline", &record);

    let shard_step = step_running(&w, "shard", "sockdiag run")["run"].as_str().unwrap();
    std::fs::create_dir(dir.path().join("shards")).unwrap();
    for i in 1..=n {
        let out = run_step(&shard_step.replace("${{ matrix.shard }}", &i.to_string()), dir.path(), &env);
        ok(&format!("shard {i}"), &out);
        // upload-artifact, then download-artifact with merge-multiple into shards/.
        let file = format!("sockdiag-shard-{i}.json");
        std::fs::rename(dir.path().join(&file), dir.path().join("shards").join(&file)).unwrap();
    }
    let merge_step = step_running(&w, "merge", "sockdiag merge")["run"].as_str().unwrap();
    let merged = run_step(merge_step, dir.path(), &env);
    ok("merge", &merged);
    assert!(String::from_utf8_lossy(&merged.stdout).contains("same as in baseline.json"));
    let report_step = step_running(&w, "merge", "--format junit")["run"].as_str().unwrap();
    ok("JUnit and Markdown", &run_step(report_step, dir.path(), &env));
    let xml = std::fs::read_to_string(dir.path().join("sockdiag-junit.xml")).unwrap();
    roxmltree::Document::parse(&xml).expect("the published JUnit is XML");
    assert!(std::fs::read_to_string(&summary).unwrap().starts_with("# sockdiag report"));

    // A shard missing (its job failed, its artifact absent) fails the merge step with exit 2.
    std::fs::remove_file(dir.path().join("shards/sockdiag-shard-2.json")).unwrap();
    let out = run_step(merge_step, dir.path(), &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("shard 2/{n} missing")));
}
