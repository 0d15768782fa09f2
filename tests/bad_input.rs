//! Bad input exits 2 with one line that names it, and never panics.

mod common;

use common::{profile, sockdiag};

fn expect_usage_error(args: &[&str], names: &str) {
    let out = sockdiag(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line expected, got:\n{stderr}");
    assert!(stderr.contains(names), "{args:?}: {stderr:?} should name {names:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn sessions_that_are_not_positive_integers() {
    for bad in ["abc", "-1", "0", "28; rm -rf /", "99999999999999999999"] {
        let p = profile("healthy");
        expect_usage_error(&["run", "--session", bad, "--profile", &p], "session");
    }
}

#[test]
fn malformed_profile() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("not-toml.toml", "name = [", "not-toml.toml"),
        (
            "unknown-key.toml",
            "name = \"w\"\nbogus = 1\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\npath = \"/tmp/x.sock\"\n",
            "bogus",
        ),
        (
            "placeholder.toml",
            "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\npath = \"{dta_dir}/x.sock\"\n",
            "{dta_dir}",
        ),
        (
            "empty-command.toml",
            "name = \"w\"\n[worker]\ncommand = []\n[socket]\npath = \"/tmp/x.sock\"\n",
            "worker.command",
        ),
        (
            "missing-command.toml",
            "name = \"w\"\n[worker]\ncommand = [\"/nonexistent/worker\"]\n[socket]\npath = \"/tmp/x.sock\"\n",
            "/nonexistent/worker",
        ),
    ];
    for (file, text, names) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        expect_usage_error(&["run", "--session", "28", "--profile", path.to_str().unwrap()], names);
    }
    expect_usage_error(
        &["run", "--session", "28", "--profile", "/nonexistent/profile.toml"],
        "/nonexistent/profile.toml",
    );
}

#[test]
fn default_profile_without_the_plugin_suggests_the_demo() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockdiag"))
        .args(["run", "--session", "28"])
        .env_remove("CLAUDE_PLUGIN_ROOT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("CLAUDE_PLUGIN_ROOT") && stderr.contains("fixtures/profiles/crash-cleanup.toml"),
        "{stderr}"
    );
}

#[test]
fn unknown_hypothesis_for_explain() {
    let out = sockdiag(&["explain", "H99"]);
    assert_eq!(out.status.code(), Some(2));
    let ok = sockdiag(&["explain", "h9"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("H9"));
}
