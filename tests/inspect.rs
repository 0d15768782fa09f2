//! `sockdiag inspect`: one look at a live system. The profile resolves against the real home, so each test points
//! HOME at a temp dir, and uses a session number of its own (other workers may run on the machine).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{parse_report, profile, root, statuses};

/// How long the worker may take to say it listens.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);

/// A session number no other test or fixture uses.
fn session(offset: u32) -> String {
    (1_000_000 + std::process::id() * 4 + offset).to_string()
}

fn inspect(home: &Path, session: &str) -> (i32, serde_json::Value) {
    let profile = profile("healthy");
    let args = ["inspect", "--session", session, "--profile", &profile, "--format", "json"];
    let out = common::sockdiag_with(&args, |cmd| {
        cmd.env("HOME", home).env_remove("CLAUDE_MEM_DATA_DIR");
    });
    parse_report("inspect", out)
}

fn verdict<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["verdicts"].as_array().unwrap().iter().find(|v| v["id"] == id).expect("verdict present")
}

#[test]
fn a_stale_socket_is_named_with_its_inode_and_no_holder() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".claude-mem");
    std::fs::create_dir(&data).unwrap();
    let session = session(0);
    let path = data.join(format!("worker-{session}.sock"));
    // A server that died without removing its file.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let inode = std::fs::metadata(&path).unwrap().ino();

    let (code, report) = inspect(home.path(), &session);
    let h14 = verdict(&report, "H14");
    assert_eq!(h14["status"], "confirmed", "{h14}");
    let summary = h14["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("inode {inode}")) && summary.contains("no live process holds"), "{summary}");
    assert!(h14["evidence"].to_string().contains("refused"), "{h14}");
    assert_eq!(code, 1);
    for id in ["H1", "H9"] {
        assert_eq!(verdict(&report, id)["status"], "not_applicable", "{id} needs a run");
    }
    assert_eq!(report["look"], "inspect");
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
}

/// A healthy worker started here, with its database; inspect runs once it has said it listens.
struct Worker(Child);

impl Worker {
    fn start(home: &Path, session: &str) -> Worker {
        let data = home.join(".claude-mem");
        std::fs::create_dir(&data).unwrap();
        let schema = std::fs::read_to_string(root().join("fixtures/profiles/schema.sql")).unwrap();
        let conn = rusqlite::Connection::open(data.join("claude-mem.db")).unwrap();
        conn.execute_batch(&schema.replace("{session}", session)).unwrap();
        drop(conn);
        let mut child = Command::new(root().join("target/release/fixture-worker"))
            .args(["healthy", session])
            .env("HOME", home)
            .env("CLAUDE_MEM_DATA_DIR", &data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(());
                }
            }
        });
        let mut worker = Worker(child);
        rx.recv_timeout(LISTEN_DEADLINE).expect("the worker says it listens");
        if let Some(status) = worker.0.try_wait().unwrap() {
            panic!("the worker exited: {status}");
        }
        worker
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_healthy_worker_is_found_and_everything_is_ruled_out() {
    let home = tempfile::tempdir().unwrap();
    let session = session(1);
    let worker = Worker::start(home.path(), &session);
    let pid = worker.0.id();
    let path = home.path().join(format!(".claude-mem/worker-{session}.sock"));

    let (code, report) = inspect(home.path(), &session);
    let decided: Vec<(String, String)> = statuses(&report).into_iter().filter(|(_, s)| s != "not_applicable").collect();
    assert!(!decided.is_empty());
    assert!(decided.iter().all(|(_, s)| s == "ruled_out"), "{decided:?}\n{report:#}");
    for id in ["H4", "H5", "H8", "H13", "H14", "H15", "H16", "H17"] {
        assert_eq!(verdict(&report, id)["status"], "ruled_out", "{id} is decided by a live look");
    }
    let h4 = verdict(&report, "H4").to_string();
    assert!(h4.contains(&format!("pid {pid}")) && h4.contains(&path.display().to_string()), "{h4}");
    assert!(report["runs"][0]["outcome"]["label"].as_str().unwrap().contains(&pid.to_string()));
    assert_eq!(code, 0, "{report:#}");
    drop(worker);
}

#[test]
fn inspect_spawns_nothing_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".claude-mem");
    std::fs::create_dir(&data).unwrap();
    let (code, report) = inspect(home.path(), &session(2));
    assert_eq!(code, 1, "nothing answers: not healthy");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0, "the socket dir is left as it was");
    assert_eq!(verdict(&report, "H14")["status"], "ruled_out");
    assert!(!report.to_string().contains("spawned"), "no process was started");
}

#[test]
fn a_socket_directory_recreated_under_the_worker_is_found() {
    let home = tempfile::tempdir().unwrap();
    let session = session(3);
    let worker = Worker::start(home.path(), &session);
    // Process start times have the clock tick's resolution (10 ms): the new directory must be born measurably
    // later than the worker for the comparison to mean anything.
    std::thread::sleep(Duration::from_millis(50));
    let data = home.path().join(".claude-mem");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();

    let (code, report) = inspect(home.path(), &session);
    let h15 = verdict(&report, "H15");
    assert_eq!(h15["status"], "confirmed", "{h15}");
    let evidence = h15["evidence"].to_string();
    assert!(evidence.contains(&format!("after pid {} started", worker.0.id())), "{evidence}");
    assert!(evidence.contains("is gone: unlinked"), "{evidence}");
    assert_eq!(code, 1);
}
