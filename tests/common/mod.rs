//! Runs the real `sockdiag` binary, with a deadline, against the fixture profiles.

// Each test binary compiles this module and uses only some of its helpers: the rest would be dead code there.
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

/// Where `.ci/run` installs Bun from the npm registry (`npm install --prefix .tools bun@<version>`).
pub fn tools_bin() -> PathBuf {
    root().join(".tools/node_modules/.bin")
}

/// Fails the test with the way out when the pinned Bun is not installed.
pub fn require_bun() {
    let bun = tools_bin().join("bun");
    assert!(bun.exists(), "{} is missing: run .ci/run, or its npm install line, first", bun.display());
}

/// PATH with the project's own tools first: sockdiag finds runtimes by name on PATH, as a user's shell would.
pub fn path_with_tools() -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(tools_bin()).chain(std::env::split_paths(&rest))).expect("PATH joins")
}

/// Runs sockdiag with `args` and the project's tools on PATH; panics if it outlives the deadline.
pub fn sockdiag(args: &[&str]) -> Output {
    sockdiag_with_path(args, &path_with_tools())
}

/// Runs sockdiag with `args` and the given PATH; panics if it outlives the deadline.
pub fn sockdiag_with_path(args: &[&str], path: &std::ffi::OsStr) -> Output {
    let path = path.to_os_string();
    sockdiag_with(args, move |cmd| {
        cmd.env("PATH", path);
    })
}

/// Runs sockdiag with `args` and the project's tools on PATH, letting `prepare` shape the command first (its
/// environment, a mount namespace of its own...); panics if it outlives the deadline.
pub fn sockdiag_with(args: &[&str], prepare: impl FnOnce(&mut Command)) -> Output {
    let fixture = root().join("target/release/fixture-worker");
    assert!(fixture.exists(), "{} is missing: run `cargo build --release` first", fixture.display());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockdiag"));
    cmd.env("PATH", path_with_tools());
    prepare(&mut cmd);
    let child = cmd
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
    run_json_with_path(mode, extra, &path_with_tools())
}

/// Runs `sockdiag run --format json` with the given PATH and parses the report.
pub fn run_json_with_path(mode: &str, extra: &[&str], path: &std::ffi::OsStr) -> (i32, serde_json::Value) {
    let profile = profile(mode);
    let mut args = vec!["run", "--session", "28", "--profile", &profile, "--format", "json"];
    args.extend_from_slice(extra);
    parse_report(mode, sockdiag_with_path(&args, path))
}

/// True when the tests run as root (CI does); scenarios that switch users or mount need it.
pub fn is_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid cannot fail.
    unsafe { geteuid() == 0 }
}

/// Parses sockdiag's JSON report and exit code.
pub fn parse_report(mode: &str, out: Output) -> (i32, serde_json::Value) {
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

/// A program on the caller's PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Another process listening on a loopback port: the fixture worker in its healthy TCP mode, started outside any
/// sockdiag run. Killed and reaped on drop.
pub struct PortHolder {
    pub child: std::process::Child,
    _data: tempfile::TempDir,
}

impl PortHolder {
    /// Starts the holder on `port` and returns once it listens: its "listening" line has arrived and a connect
    /// succeeds. Panics after the deadline.
    pub fn start(port: u16) -> PortHolder {
        use std::io::BufRead;
        let data = tempfile::tempdir().expect("holder data dir");
        let mut child = Command::new(root().join("target/release/fixture-worker"))
            .args(["tcp-healthy", "1"])
            .env("CLAUDE_MEM_WORKER_PORT", port.to_string())
            .env("CLAUDE_MEM_DATA_DIR", data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("holder starts");
        let stderr = child.stderr.take().expect("holder stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let holder = PortHolder { child, _data: data };
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains("listening") => break,
                Ok(line) if line.contains("in use") => panic!("port {port} is already taken on this machine: {line}"),
                Ok(_) => {}
                Err(e) => panic!("the holder never listened on {port}: {e}"),
            }
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("the holder accepts");
        holder
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PortHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
