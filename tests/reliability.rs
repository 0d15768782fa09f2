//! Reliability and safety, against the real binary and hostile workers: signals mid-matrix, leftovers of a
//! killed sockdiag, output floods, fork storms, closed stdio, a worker leaving its group, a symlink planted at the
//! socket path, and the user's real home left untouched.

mod common;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

const DEADLINE: Duration = Duration::from_secs(60);

/// Where in an invocation a signal arrives.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// Seeding the database template, before any worker starts.
    DatabasePreparation,
    /// A worker serves.
    MidMatrix,
    /// A run is stopping its worker, which ignores the SIGTERM it just got.
    Stop,
}

fn is_named(path: &Path, part: &str) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().contains(part))
}

/// A private temp dir for one sockdiag invocation (its TMPDIR), watched for the worker's socket.
struct Scene {
    tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        Scene { tmp: tempfile::tempdir().unwrap() }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockdiag"));
        cmd.args(args).env("TMPDIR", self.dir()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Starts `sockdiag run` on a hostile profile and returns once it has reached `point`.
    fn start_at(&self, point: Point, mode: &str) -> Child {
        self.start_wrapped(point, mode, &[])
    }

    /// `start_at`, with sockdiag's command line given to `wrapper` (a command that runs it, e.g. `unshare ...`).
    fn start_wrapped(&self, point: Point, mode: &str, wrapper: &[&str]) -> Child {
        let (profile, window_ms, reached): (_, _, fn(&Path) -> bool) = match point {
            Point::DatabasePreparation => ("hostile-slow-seed".to_string(), "20000", |p| is_named(p, "-db-")),
            Point::MidMatrix => (format!("hostile-{mode}"), "20000", |p| p.ends_with("worker-28.sock")),
            // A short window: the first run stops its worker soon after it serves.
            Point::Stop => (format!("hostile-{mode}"), "300", |p| p.ends_with("got-sigterm")),
        };
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            if let Ok(e) = e {
                if e.kind.is_create() && e.paths.iter().any(|p| reached(p)) {
                    let _ = tx.send(());
                }
            }
        })
        .unwrap();
        watcher.watch(self.dir(), RecursiveMode::Recursive).unwrap();
        let profile = common::profile(&profile);
        let args = ["run", "--session", "28", "--profile", &profile, "--window-ms", window_ms];
        let mut cmd = self.command(&args);
        if let Some((program, rest)) = wrapper.split_first() {
            let mut wrapped = Command::new(program);
            wrapped.args(rest).arg(env!("CARGO_BIN_EXE_sockdiag")).args(args).env("TMPDIR", self.dir());
            cmd = wrapped;
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = cmd.spawn().unwrap();
        rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("sockdiag reached {point:?}"));
        child
    }

    fn sandboxes(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("sockdiag-"))
            .map(|e| e.path())
            .collect()
    }
}

/// Live processes started by the sockdiag with this pid (their environment carries its marker).
fn marked_by(sockdiag_pid: u32) -> Vec<i32> {
    live_with_env(&format!("SOCKDIAG_RUN={sockdiag_pid}-"))
}

/// Live (non-zombie) processes other than this test with an environment variable that starts with `prefix`.
fn live_with_env(prefix: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if !zombie
            && pid != std::process::id() as i32
            && environ.split(|&b| b == 0).any(|v| v.starts_with(prefix.as_bytes()))
        {
            pids.push(pid);
        }
    }
    pids
}

/// Whether sockdiag can make cgroups here: root, and a cgroup v2 hierarchy (found in mountinfo) that takes a new
/// directory.
fn cgroups_writable() -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = info.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        let mount_point = before.split_whitespace().nth(4)?;
        after.starts_with("cgroup2 ").then(|| PathBuf::from(mount_point))
    });
    let Some(probe) = mount.map(|m| m.join(format!("sockdiag-probe-{}", std::process::id()))) else { return false };
    let made = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    common::is_root() && made
}

/// Live processes whose data dir is in `dir` (the scene's TMPDIR, where every sandbox is): a worker that sheds the
/// run marker still has its data dir. (sockdiag's cgroup keeper has the scene's TMPDIR, not a data dir.)
fn in_scene(dir: &Path) -> Vec<i32> {
    live_with_env(&format!("CLAUDE_MEM_DATA_DIR={}", dir.to_string_lossy()))
}

/// Waits (on pidfds) until the processes are gone or zombies, with a deadline.
fn wait_gone(pids: &[i32], deadline: Duration) {
    let end = Instant::now() + deadline;
    for &pid in pids {
        // SAFETY: pidfd_open(2); a non-negative result is a descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            continue;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let left = end.saturating_duration_since(Instant::now()).as_millis() as i32;
        let mut pfd =
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd()), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left) };
    }
}

/// Waits for `child` with a deadline; returns its exit code, or 128 + signal.
fn wait_with_deadline(child: &mut Child) -> (i32, Duration) {
    let start = Instant::now();
    let pid = child.id() as i32;
    wait_gone(&[pid], DEADLINE);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    (status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)), start.elapsed())
}

/// Sends `signal` to sockdiag at `point`, and asserts that it stops every process and removes every temporary
/// directory, and exits 128 + the signal.
fn interrupt(point: Point, mode: &str, signal: i32) {
    let scene = Scene::new();
    let mut child = scene.start_at(point, mode);
    let pid = child.id();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, signal) };
    let (code, took) = wait_with_deadline(&mut child);
    assert_eq!(code, 128 + signal, "exit code after signal {signal} at {point:?}");
    assert!(took < Duration::from_millis(2500), "sockdiag took {took:?} to stop");
    assert_eq!(marked_by(pid), Vec::<i32>::new(), "every worker and descendant is gone");
    assert_eq!(in_scene(scene.dir()), Vec::<i32>::new(), "no process of the scene is left, marked or not");
    assert_eq!(scene.sandboxes(), Vec::<PathBuf>::new(), "sandboxes removed");
}

/// A worker that escapes whatever the cgroup does not hold: it sheds the run marker and scatters into new
/// sessions where a cgroup holds it; a double-forked daemon elsewhere (the marker and the subreaper find it).
fn escaping() -> &'static str {
    if cgroups_writable() {
        "shed-marker"
    } else {
        "double-fork"
    }
}

/// Kills sockdiag at `point`; its workers die with it where a cgroup holds them (the keeper kills it), and the
/// next invocation (`clean`) reports and removes what is left.
/// `reap`: whether its parent reaps the killed sockdiag before `clean` runs (a zombie still has a `/proc` entry).
fn kill_then_clean(point: Point, mode: &str, reap: bool) {
    let scene = Scene::new();
    let cgroups = cgroups_writable();
    let mut child = scene.start_at(point, mode);
    let pid = child.id();
    let workers = in_scene(scene.dir());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    if reap {
        child.wait().unwrap();
    } else {
        // Dead, not reaped: waitid with WNOWAIT returns at the exit and leaves the zombie.
        let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
        nix::sys::wait::waitid(nix::sys::wait::Id::Pid(nix::unistd::Pid::from_raw(pid as i32)), flags).unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "a zombie sockdiag");
    }
    if cgroups {
        // The keeper outlives sockdiag and kills the invocation's cgroup: the workers die with sockdiag, even one
        // that shed the marker.
        // cgroup.kill signals every member at once, but they die one by one, some forked after `workers` was read.
        let end = Instant::now() + Duration::from_secs(10);
        while !in_scene(scene.dir()).is_empty() && Instant::now() < end {
            wait_gone(&in_scene(scene.dir()), end.saturating_duration_since(Instant::now()));
        }
        assert_eq!(in_scene(scene.dir()), Vec::<i32>::new(), "the workers died with sockdiag");
    }
    assert!(!scene.sandboxes().is_empty(), "a killed sockdiag leaves its temporary directories");
    let out = scene.command(&["clean"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("leftover sandbox"), "{stderr}");
    wait_gone(&workers, Duration::from_secs(5));
    assert_eq!(marked_by(pid), Vec::<i32>::new());
    assert_eq!(in_scene(scene.dir()), Vec::<i32>::new());
    assert_eq!(scene.sandboxes(), Vec::<PathBuf>::new());
    child.wait().unwrap();
}

#[test]
fn a_sockdiag_in_another_pid_namespace_is_alive_to_clean() {
    if !common::is_root() || common::find_on_path("unshare").is_none() {
        eprintln!("skipped: needs root and unshare(1)");
        return;
    }
    // Inside its namespace, sockdiag gets a pid that no process has out here: by its pid alone, it looks dead.
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    let inner = (1000..pid_max - 1).rev().find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let set_pid = format!("echo {} > /proc/sys/kernel/ns_last_pid && \"$0\" \"$@\"", inner - 1);
    let wrapper = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--", "sh", "-c", &set_pid];
    let scene = Scene::new();
    let mut child = scene.start_wrapped(Point::MidMatrix, "ignore-term", &wrapper);
    let sandboxes = scene.sandboxes();
    assert!(sandboxes.iter().any(|s| is_named(s, &format!("sockdiag-{inner}-"))), "{sandboxes:?}");
    let is_worker = |p: &i32| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e.ends_with("hostile-worker"));
    let workers: Vec<i32> = in_scene(scene.dir()).into_iter().filter(is_worker).collect();
    assert!(!workers.is_empty(), "a worker serves");
    // The data dirs of the workers that serve (runs that ended on their own have removed theirs).
    let data_dir = |pid: &i32| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let var = environ.split(|&b| b == 0).find_map(|v| v.strip_prefix(b"CLAUDE_MEM_DATA_DIR".as_slice()))?;
        Some(PathBuf::from(String::from_utf8_lossy(&var[1..]).into_owned()))
    };
    let sandboxes: Vec<PathBuf> = workers.iter().filter_map(data_dir).collect();
    assert!(!sandboxes.is_empty(), "the workers' data dirs");
    // (`clean` is machine-wide: what it reports may be another test's leftovers, so only ours are asserted.)
    let out = scene.command(&["clean"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sandboxes.iter().all(|s| s.exists()), "the live sockdiag's sandboxes are still there");
    let after = in_scene(scene.dir());
    assert!(workers.iter().all(|w| after.contains(w)), "its workers are still running: {workers:?}, {after:?}");
    assert!(child.try_wait().unwrap().is_none(), "sockdiag still runs");
    // SAFETY: kill(2) on our own child (unshare, which takes its namespace down with it).
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    wait_gone(&workers, Duration::from_secs(10));
}

/// One test per signal and point, so that a failure names both.
macro_rules! signal_tests {
    ($($name:ident: $point:ident, $signal:ident;)*) => {$(
        #[test]
        fn $name() {
            interrupt(Point::$point, escaping(), libc::$signal);
        }
    )*};
}

signal_tests! {
    sigint_while_preparing_the_database: DatabasePreparation, SIGINT;
    sigterm_while_preparing_the_database: DatabasePreparation, SIGTERM;
    sighup_while_preparing_the_database: DatabasePreparation, SIGHUP;
    sigquit_while_preparing_the_database: DatabasePreparation, SIGQUIT;
    sigint_mid_matrix: MidMatrix, SIGINT;
    sigterm_mid_matrix: MidMatrix, SIGTERM;
    sighup_mid_matrix_from_a_closed_terminal: MidMatrix, SIGHUP;
    sigquit_mid_matrix: MidMatrix, SIGQUIT;
    sigint_during_the_stop: Stop, SIGINT;
    sigterm_during_the_stop: Stop, SIGTERM;
    sighup_during_the_stop: Stop, SIGHUP;
    sigquit_during_the_stop: Stop, SIGQUIT;
}

#[test]
fn sigterm_mid_matrix_stops_a_worker_that_ignores_sigterm() {
    interrupt(Point::MidMatrix, "ignore-term", libc::SIGTERM);
}

#[test]
fn sigint_mid_matrix_stops_a_double_forked_daemon() {
    interrupt(Point::MidMatrix, "double-fork", libc::SIGINT);
}

#[test]
fn sigkill_while_preparing_the_database_leaves_what_clean_removes() {
    kill_then_clean(Point::DatabasePreparation, escaping(), true);
}

#[test]
fn sigkill_mid_matrix_leaves_what_clean_removes() {
    kill_then_clean(Point::MidMatrix, escaping(), true);
}

#[test]
fn sigkill_during_the_stop_leaves_what_clean_removes() {
    kill_then_clean(Point::Stop, escaping(), true);
}

#[test]
fn a_killed_sockdiag_that_is_not_reaped_yet_leaves_what_clean_removes() {
    kill_then_clean(Point::MidMatrix, escaping(), false);
}

/// Peak RSS (KiB) of a child, from wait4's rusage.
fn wait4_maxrss(child: &Child) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

#[test]
fn a_gigabyte_flood_keeps_memory_bounded() {
    let scene = Scene::new();
    let profile = common::profile("hostile-flood");
    let mut cmd = scene.command(&["run", "--session", "28", "--profile", &profile, "--format", "json"]);
    let report_path = scene.dir().join("report.json");
    cmd.args(["--report", report_path.to_str().unwrap()]).stdout(Stdio::null());
    // Reaped by wait4 (for its rusage), not by Child::wait.
    #[expect(clippy::zombie_processes, reason = "wait4 reaps it")]
    let child = cmd.spawn().unwrap();
    let (code, maxrss_kib) = wait4_maxrss(&child);
    assert!(code <= 1, "a diagnosis, not an error: exit {code}");
    assert!(maxrss_kib < 64 * 1024, "peak RSS {maxrss_kib} KiB");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    for run in report["runs"].as_array().unwrap() {
        let mut kept: BTreeMap<String, usize> = BTreeMap::new();
        let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
        for e in run["events"].as_array().unwrap() {
            let stream = e["stream"].as_str().unwrap_or_default().to_string();
            match e["kind"].as_str().unwrap() {
                "line" => *kept.entry(stream).or_default() += e["text"].as_str().unwrap().len() + 1,
                "output_dropped" => *dropped.entry(stream).or_default() += e["bytes"].as_u64().unwrap(),
                _ => {}
            }
        }
        assert!(kept.values().all(|&k| k <= 1 << 20), "run {}: kept {kept:?}", run["id"]);
        // Runs whose output was read all along: a file, or a pipe its launcher drains and never leaves.
        let read_throughout = run["config"]["stdio"] == "file"
            || (run["config"]["stdio"] == "pipe_drained" && run["config"]["lifecycle"] == "stays");
        if read_throughout {
            for stream in ["stdout", "stderr"] {
                assert!(dropped.get(stream).copied().unwrap_or(0) > 0, "run {}: dropped {dropped:?}", run["id"]);
            }
        }
    }
}

/// Runs a hostile mode over the matrix dimensions `vary` (one launch per run: these workers remove any socket
/// file at start-up, so a second launch would be a real, diagnosed failure with its own accuracy test).
fn run_to_completion(mode: &str, vary: &str) -> (i32, u32, serde_json::Value) {
    let scene = Scene::new();
    let profile = common::profile(&format!("hostile-{mode}"));
    let vary = ["--vary", vary];
    let mut child = scene
        .command(&["run", "--session", "28", "--profile", &profile, "--format", "json"])
        .args(vary)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let (code, _) = wait_with_deadline(&mut child);
    assert_eq!(marked_by(pid), Vec::<i32>::new(), "{mode}: nothing left behind");
    assert_eq!(scene.sandboxes(), Vec::<PathBuf>::new(), "{mode}: sandboxes removed");
    (code, pid, serde_json::from_str(&stdout).unwrap_or_default())
}

// Their "listening" line is an eprintln!, which panics (exit 101) on a pipe whose reader has left: a real EPIPE
// failure that H3 diagnoses, not what these tests are about; so they keep stdio ignored.
#[test]
fn a_thousand_children_are_all_stopped() {
    let (code, _, _) = run_to_completion("fork-many", "spawn,lifecycle");
    assert_eq!(code, 0);
}

#[test]
fn a_worker_that_closes_its_stdio_is_observed() {
    let (code, _, report) = run_to_completion("close-stdio", "spawn,lifecycle,stdio");
    assert_eq!(code, 0, "{report}");
}

#[test]
fn a_worker_that_leaves_its_process_group_is_stopped() {
    let (code, _, report) = run_to_completion("leave-group", "spawn,lifecycle");
    assert_eq!(code, 0, "{report}");
}

#[test]
fn a_symlink_at_the_socket_path_is_reported_and_never_followed() {
    let scene = Scene::new();
    let target = scene.dir().join("hostile-target");
    std::fs::write(&target, "precious").unwrap();
    let profile = common::profile("hostile-symlink-escape");
    let out = scene
        .command(&["run", "--session", "28", "--profile", &profile, "--format", "json", "--window-ms", "500"])
        .output()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious", "the symlink's target is untouched");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = report["runs"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "file_created" && e["file_type"] == "symlink");
    assert!(seen, "the symlink is reported");
    assert_eq!(out.status.code(), Some(1), "never reachable: a failure");
    assert_eq!(scene.sandboxes(), Vec::<PathBuf>::new());
}

#[test]
fn a_real_directory_mounted_into_the_sandbox_keeps_its_contents() {
    if !common::is_root() {
        eprintln!("skipped: only root can mount");
        return;
    }
    let scene = Scene::new();
    let target = scene.dir().join("hostile-target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("file"), "precious").unwrap();
    let profile = common::profile("hostile-mount-inside");
    let out = scene
        .command(&["run", "--session", "28", "--profile", &profile, "--vary", "stdio", "--format", "json"])
        .output()
        .unwrap();
    // Run by run, whatever each outcome (a worker whose stderr pipe closes dies of its failed write).
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(target.join("file")).unwrap(), "precious", "the mounted directory is intact");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&scene.dir().display().to_string()), "the mount is detached: {mounts}");
    assert_eq!(scene.sandboxes(), Vec::<PathBuf>::new());
}

/// Every file under `dir` with its size, mtime and content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), (m.len(), m.modified().unwrap(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn the_users_home_and_data_are_untouched() {
    let scene = Scene::new();
    let home = scene.dir().join("real-home");
    let data = home.join(".claude-mem");
    std::fs::create_dir_all(&data).unwrap();
    let conn = rusqlite::Connection::open(data.join("claude-mem.db")).unwrap();
    conn.execute_batch("CREATE TABLE sdk_sessions (id INTEGER PRIMARY KEY); INSERT INTO sdk_sessions VALUES (28);")
        .unwrap();
    drop(conn);
    std::fs::write(data.join("settings.json"), "{}").unwrap();
    let before = snapshot(&home);
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if let Ok(e) = e {
            if !e.kind.is_access() {
                let _ = tx.send(e);
            }
        }
    })
    .unwrap();
    watcher.watch(&home, RecursiveMode::Recursive).unwrap();
    let profile = common::profile("crash-cleanup");
    let out = scene.command(&["run", "--session", "28", "--profile", &profile]).env("HOME", &home).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    drop(watcher);
    let changes: Vec<notify::Event> = rx.try_iter().collect();
    assert!(changes.is_empty(), "the real home was modified: {changes:?}");
    assert_eq!(snapshot(&home), before);
}

#[test]
fn a_launcher_dies_with_its_harness_even_by_sigkill() {
    // A stand-in harness (bash) starts the launcher as sockdiag does, then dies by SIGKILL: the kernel kills the
    // launcher with it (its parent-death signal). The launcher's worker (sleep) is orphaned, as after a hook.
    let scene = Scene::new();
    let tag = format!("SOCKDIAG_TEST_HARNESS={}", scene.dir().display());
    let launch = format!("{} __launch --harness $$ --stdio ignore -- sleep 60 & wait", env!("CARGO_BIN_EXE_sockdiag"));
    let mut harness = Command::new("bash")
        .args(["-c", &launch])
        .env("SOCKDIAG_TEST_HARNESS", scene.dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The launcher's first report (on the stdout it shares with bash) says it spawned its worker.
    let mut first = [0u8; 1];
    std::io::Read::read_exact(harness.stdout.as_mut().unwrap(), &mut first).expect("the launcher reported");
    let others: Vec<i32> = live_with_env(&tag).into_iter().filter(|&p| p != harness.id() as i32).collect();
    let launcher = others.iter().copied().find(|&p| comm(p) == "sockdiag").expect("the launcher runs");
    harness.kill().unwrap();
    harness.wait().unwrap();
    wait_gone(&[launcher], Duration::from_secs(5));
    let left = live_with_env(&tag);
    for &pid in &left {
        // SAFETY: kill(2) on the orphaned sleep this test made.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(!left.contains(&launcher), "the launcher outlived its harness: {left:?}");
    assert!(left.iter().all(|&p| comm(p) == "sleep"), "only the orphaned worker was left: {left:?}");
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

#[test]
fn a_launcher_whose_harness_is_already_gone_starts_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_sockdiag"))
        .args(["__launch", "--harness", "1", "--stdio", "ignore", "--", "sleep", "60"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no worker was reported: {:?}", out.stdout);
}

/// `pid (state, parent): command line`, for a failure message.
fn describe(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().take(2).collect();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    format!("{pid} ({}): {}", fields.join(", parent "), cmdline.trim())
}

/// The live processes of a uid, from /proc. A zombie is dead: once sockdiag has exited, the processes it killed
/// last may still wait as zombies for pid 1 to reap them (and the pidfd wait above returns at the exit, not at
/// the reaping).
fn processes_of(uid: u32) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let entries = std::fs::read_dir("/proc").unwrap().flatten();
    entries
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<i32>().ok()?, e.metadata().ok()?.uid())))
        .filter(|&(_, owner)| owner == uid)
        .map(|(pid, _)| pid)
        .filter(|&pid| !matches!(state_of(pid), Some('Z' | 'X')))
        .collect()
}

/// A process's state letter (`R`, `S`, `Z`...), from /proc/PID/stat.
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn a_worker_that_uses_up_the_process_limit_neither_panics_sockdiag_nor_outlives_it() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching user needs root");
        return;
    }
    // A uid of its own: the process limit counts every process of the uid, and other tests run as nobody.
    const UID: u32 = 54_321;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let profile = dir.path().join("bomb.toml");
    std::fs::write(
        &profile,
        "name = \"bomb\"\n[worker]\ncommand = [\"/bin/sh\", \"-c\", \"while :; do /bin/sleep 30 & done\"]\n\
         [socket]\npath = \"{data_dir}/w.sock\"\n[observe]\nwindow_ms = 1500\n",
    )
    .unwrap();
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockdiag"));
    cmd.args(["run", "--session", "28", "--profile", profile.to_str().unwrap(), "--repeat", "2", "--format", "json"]);
    // Its report goes nowhere: an unread pipe would hold sockdiag at its last write.
    cmd.env("TMPDIR", "/tmp").stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: setrlimit before exec; the uid switch follows (CommandExt::uid runs after pre_exec).
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 60, rlim_max: 60 };
            if libc::setrlimit(libc::RLIMIT_NPROC, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.uid(UID).gid(UID).spawn().unwrap();
    let (code, _) = wait_with_deadline(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // A diagnosis, or a run that could not start (exit 3): never the 101 of a panic that left the workers behind.
    assert!(code == 0 || code == 1 || code == 3, "exit {code}: {stderr}");
    let left = processes_of(UID);
    wait_gone(&left, Duration::from_secs(5));
    let outlived: Vec<String> = processes_of(UID).iter().map(|&pid| describe(pid)).collect();
    assert!(outlived.is_empty(), "the worker's processes outlived sockdiag (it exited {code}): {outlived:?}\n{stderr}");
}

#[test]
fn more_jobs_than_the_inotify_limit_allows_are_capped_not_fatal() {
    let limit: usize =
        std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").unwrap().trim().parse().unwrap();
    let repeat = (limit / 7 + 2).to_string();
    let (code, report) = common::run_json("healthy", &["--jobs", "256", "--repeat", &repeat]);
    let runs = report["runs"].as_array().unwrap();
    assert!(runs.len() > limit, "{} runs: more than the limit, so uncapped they would all start at once", runs.len());
    assert_eq!(code, 0, "every run started and was healthy");
    assert!(runs.iter().all(|r| r["outcome"]["healthy"] == true));
}

#[test]
fn a_preload_in_the_profile_acts_on_the_worker_only() {
    let Some(cc) = common::find_on_path("cc") else {
        eprintln!("skipped: no C compiler to build the preload library");
        return;
    };
    let scene = Scene::new();
    // A library whose constructor writes to stdout: in sockdiag's own launcher, that is its report channel.
    let source = scene.dir().join("noisy.c");
    // Each process that loads it also notes its executable in loaded.log.
    let log = scene.dir().join("loaded.log");
    let code = format!(
        "#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void noisy(void) {{\n\
         char exe[4096]; ssize_t n = readlink(\"/proc/self/exe\", exe, sizeof exe - 1);\n\
         int fd = open(\"{}\", O_WRONLY | O_APPEND | O_CREAT, 0600);\n\
         if (n > 0 && fd >= 0) {{ exe[n] = '\\n'; write(fd, exe, n + 1); }}\n\
         write(1, \"PRELOADED\\n\", 10);\n}}\n",
        log.display()
    );
    std::fs::write(&source, code).unwrap();
    let library = scene.dir().join("noisy.so");
    let built = Command::new(cc).args(["-shared", "-fPIC", "-o"]).arg(&library).arg(&source).status().unwrap();
    assert!(built.success());
    let text = std::fs::read_to_string(common::profile("healthy")).unwrap();
    let fixture = common::root().join("target/release/fixture-worker");
    let text = text
        .replace("{profile_dir}/../../target/release/fixture-worker", fixture.to_str().unwrap())
        .replace(
            "seed_sql = \"schema.sql\"",
            &format!("seed_sql = \"{}\"", common::root().join("fixtures/profiles/schema.sql").display()),
        )
        .replace(
            "env = { CLAUDE_MEM_DATA_DIR = \"{data_dir}\" }",
            &format!(
                "env = {{ CLAUDE_MEM_DATA_DIR = \"{{data_dir}}\", LD_PRELOAD = \"{}\", SOCKDIAG_RUN = \"shed\" }}",
                library.display()
            ),
        );
    let profile = scene.dir().join("preload.toml");
    std::fs::write(&profile, text).unwrap();
    let out = scene
        .command(&[
            "run",
            "--session",
            "28",
            "--profile",
            profile.to_str().unwrap(),
            "--vary",
            "stdio",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    // Where the launcher exits and leaves the pipe unread, the preload's write may kill the worker by SIGPIPE:
    // a true outcome of that configuration. Production (stdio ignored) must be healthy.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["runs"][0]["outcome"]["healthy"], true, "{}", report["runs"][0]["outcome"]);
    let lines: Vec<String> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["events"].as_array().unwrap().clone())
        .filter(|e| e["kind"] == "line")
        .map(|e| e["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(lines.iter().any(|l| l == "PRELOADED"), "the worker got the preload: {lines:?}");
    let loaded = std::fs::read_to_string(&log).unwrap();
    assert!(loaded.lines().all(|exe| exe.ends_with("fixture-worker")), "only the worker loaded it: {loaded}");
    // The worker's view is taken only once its environment shows the run's marker: the profile cannot change it.
    let viewed = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["events"].as_array().unwrap().iter().any(|e| e["kind"] == "worker_view"));
    assert!(viewed, "the run marker reached the worker unchanged");
}
