//! Runs the real `sockdiag` binary, with a deadline, against the fixture profiles.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The longest one sockdiag invocation may take in a test.
const DEADLINE: Duration = Duration::from_secs(120);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn profile(mode: &str) -> String {
    root().join("fixtures/profiles").join(format!("{mode}.toml")).display().to_string()
}

/// Runs sockdiag with `args`; panics if it outlives the deadline.
pub fn sockdiag(args: &[&str]) -> Output {
    let fixture = root().join("target/release/fixture-worker");
    assert!(fixture.exists(), "{} is missing: run `cargo build --release` first", fixture.display());
    let child = Command::new(env!("CARGO_BIN_EXE_sockdiag"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sockdiag starts");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(DEADLINE).is_err() {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc_kill(pid) };
        }
    });
    let out = child.wait_with_output().expect("sockdiag runs");
    let _ = tx.send(());
    out
}

unsafe fn libc_kill(pid: i32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    kill(pid, 9);
}

/// Runs `sockdiag run --format json` and parses the report.
pub fn run_json(mode: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let profile = profile(mode);
    let mut args = vec!["run", "--session", "28", "--profile", &profile, "--format", "json"];
    args.extend_from_slice(extra);
    let out = sockdiag(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{mode}: stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The status of every verdict, by id.
pub fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| (v["id"].as_str().unwrap().to_string(), v["status"].as_str().unwrap().to_string()))
        .collect()
}
