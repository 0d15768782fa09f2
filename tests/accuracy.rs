//! Accuracy: each fixture mode, run through the real binary, gives its whole expected verdict set and exit code.

mod common;

use std::os::unix::process::CommandExt;

use common::{is_root, parse_report, run_json, run_json_with_path, sockdiag_with, statuses, PortHolder};

const C: &str = "confirmed";
const R: &str = "ruled_out";
const I: &str = "inconclusive";
const N: &str = "not_applicable";

/// The status expected of every hypothesis, in id order.
type VerdictSet = &'static [(&'static str, &'static str)];

/// mode → the run options, the exit code and the status of every hypothesis. Races run repeated. The `js-*` modes
/// run fixtures/js/worker.mjs under node (as written, or bun for js-guard) and under the other runtime, both real.
#[rustfmt::skip]
const EXPECTED: &[(&str, &[&str], i32, VerdictSet)] = &[
    ("healthy", &[], 0,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", R), ("H10", N), ("H11", R), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("crash-cleanup", &[], 1,
     &[("H1", C), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", C), ("H10", N), ("H11", R), ("H12", C), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    // Two launches would race: a second worker that starts after the first one died rightly removes the stale
    // file. The two-launch dimension has its own mode (duplicate-cleanup).
    ("exit-no-cleanup", &["--vary", "spawn,lifecycle,stdio"], 1,
     &[("H1", C), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", R), ("H10", N), ("H11", R), ("H12", C), ("H13", R), ("H14", C),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("wrong-path", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", C), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("no-session", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", R), ("H6", R), ("H7", R),
       ("H8", C), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("die-with-launcher", &["--launcher-exit-ms", "300", "--repeat", "2"], 1,
     &[("H1", C), ("H2", R), ("H3", C), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", R), ("H10", N), ("H11", R), ("H12", R), ("H13", R), ("H14", C),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    // A blocked worker never binds: H1, H4, H7 and H11 have nothing to judge in those runs.
    ("chatty-before-bind", &["--matrix", "full", "--vary", "spawn,lifecycle,stdio"], 1,
     &[("H1", I), ("H2", R), ("H3", C), ("H4", I), ("H5", R), ("H6", R), ("H7", I),
       ("H8", R), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("log-before-bind", &["--repeat", "2"], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", C), ("H7", R),
       ("H8", R), ("H9", R), ("H10", N), ("H11", R), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("slow-listen", &["--repeat", "2"], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", R), ("H10", N), ("H11", C), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("duplicate-cleanup", &["--repeat", "3"], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", R), ("H9", C), ("H10", N), ("H11", R), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    // One launch per run for TCP workers: a second one on the same port is an address conflict, H18's domain.
    ("tcp-healthy", TCP_ONE_LAUNCH, 0,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", N), ("H6", N), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", R), ("H12", R), ("H13", N), ("H14", N),
       ("H15", N), ("H16", N), ("H17", N), ("H18", R), ("H19", R)]),
    ("tcp-not-ready", TCP_ONE_LAUNCH, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", N), ("H6", N), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", C), ("H12", C), ("H13", N), ("H14", N),
       ("H15", N), ("H16", N), ("H17", N), ("H18", R), ("H19", R)]),
    ("tcp-wrong-port", TCP_ONE_LAUNCH, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", C), ("H5", N), ("H6", N), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", N), ("H14", N),
       ("H15", N), ("H16", N), ("H17", N), ("H18", R), ("H19", R)]),
    ("tcp-port-held", TCP_ONE_LAUNCH, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", N), ("H6", N), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", C), ("H13", N), ("H14", N),
       ("H15", N), ("H16", N), ("H17", N), ("H18", C), ("H19", R)]),
    ("node-http", TCP_ONE_LAUNCH, 0,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", N), ("H6", N), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", R), ("H12", R), ("H13", N), ("H14", N),
       ("H15", N), ("H16", N), ("H17", N), ("H18", R), ("H19", R)]),
    ("tcp-stale-pid", TCP_ONE_LAUNCH, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", N), ("H6", N), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", N), ("H14", N),
       ("H15", N), ("H16", N), ("H17", N), ("H18", R), ("H19", C)]),
    // The launcher leaves 300 ms after the spawn, once the worker has started and bound (a launcher that leaves
    // earlier can make Node die at its very first write, before or after its bind: a race, not a fixed outcome);
    // one launch per run (a second one is the two-launch dimension's own story, duplicate-cleanup).
    ("js-healthy", JS, 0,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", R), ("H11", R), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("js-long-path", JS, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", C), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", C), ("H11", I), ("H12", C), ("H13", C), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("js-long-dir", JS, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", C), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", R), ("H11", I), ("H12", R), ("H13", C), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("js-guard", JS, 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", R), ("H6", R), ("H7", C),
       ("H8", N), ("H9", R), ("H10", C), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("js-epipe", JS, 1,
     &[("H1", C), ("H2", R), ("H3", C), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", C), ("H10", C), ("H11", R), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    ("stale-socket", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", R), ("H12", C), ("H13", R), ("H14", C),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    // The worker's own file replaced by one nobody listens on, while it serves on.
    ("replaced", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", C), ("H10", N), ("H11", R), ("H12", R), ("H13", R), ("H14", C),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    // With the directory missing, its permissions and filesystem cannot be judged.
    ("missing-dir", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", I), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", C), ("H13", R), ("H14", R),
       ("H15", C), ("H16", R), ("H17", I), ("H18", N), ("H19", N)]),
    ("abstract", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", C), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", C), ("H17", R), ("H18", N), ("H19", N)]),
    // Needs root: the worker mounts a tmpfs in a mount namespace of its own.
    ("private-tmp", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", R), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", C), ("H17", R), ("H18", N), ("H19", N)]),
    // Run with --user nobody (needs root): as root it serves, as nobody it never binds.
    ("socket-dir-not-writable", &["--user", "nobody"], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", C), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", R), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", R), ("H18", N), ("H19", N)]),
    // A generated profile whose socket dir is an mqueue mount in sockdiag's own mount namespace (needs root).
    ("unsocketable-fs", &[], 1,
     &[("H1", R), ("H2", R), ("H3", R), ("H4", I), ("H5", R), ("H6", R), ("H7", R),
       ("H8", N), ("H9", R), ("H10", N), ("H11", I), ("H12", C), ("H13", R), ("H14", R),
       ("H15", R), ("H16", R), ("H17", C), ("H18", N), ("H19", N)]),
];

/// The matrix of the JavaScript modes, each configuration under node and bun.
const JS: &[&str] = &["--launcher-exit-ms", "300", "--vary", "spawn,lifecycle,stdio,runtime"];

/// The matrix of the TCP modes: every dimension but the second launch.
const TCP_ONE_LAUNCH: &[&str] = &["--vary", "spawn,lifecycle,stdio"];

/// The fixed port of `fixtures/profiles/tcp-port-held.toml`, outside Linux's ephemeral range so that no `{port}`
/// run can be handed it.
const HELD_PORT: u16 = 61777;

fn check(mode: &str) -> serde_json::Value {
    check_with(mode, &[])
}

fn check_with(mode: &str, extra: &[&str]) -> serde_json::Value {
    if mode.starts_with("js-") {
        common::require_bun();
    }
    let (_, args, _, _) = row(mode);
    let args: Vec<&str> = args.iter().chain(extra).copied().collect();
    compare(mode, run_json(mode, &args))
}

/// The table's row for `mode`.
fn row(mode: &str) -> &'static (&'static str, &'static [&'static str], i32, VerdictSet) {
    EXPECTED.iter().find(|(m, _, _, _)| *m == mode).expect("mode in table")
}

/// Compares a report with the table's row for `mode`.
fn compare(mode: &str, (code, report): (i32, serde_json::Value)) -> serde_json::Value {
    let (_, _, exit, expected) = row(mode);
    let got = statuses(&report);
    let want: Vec<(String, String)> = expected.iter().map(|(id, s)| (id.to_string(), s.to_string())).collect();
    let said: Vec<String> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{} {}: {}", v["id"], v["status"], v["summary"]))
        .collect();
    assert_eq!(got, want, "{mode}: verdicts:\n{}", said.join("\n"));
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

/// The executable each run actually ran, from the worker view (`/proc/<pid>/exe`), by the run's runtime.
fn executables(report: &serde_json::Value) -> Vec<(String, String)> {
    let runs = report["runs"].as_array().unwrap();
    runs.iter()
        .map(|r| {
            let exe = r["events"].as_array().unwrap().iter().find(|e| e["kind"] == "worker_view").map(|e| &e["exe"]);
            (r["config"]["runtime"].as_str().unwrap().to_string(), exe.and_then(|e| e.as_str()).unwrap_or("").into())
        })
        .collect()
}

#[test]
fn crash_cleanup() {
    let report = check("crash-cleanup");
    let h9 = verdict(&report, "H9");
    assert!(h9["summary"].as_str().unwrap().contains("by the worker itself"), "{h9}");
    // Every run sees the removal, including those whose worker exits with no output stream left to drain.
    assert!(h9["summary"].as_str().unwrap().contains("(7/7 runs"), "{h9}");
    assert!(report["root_cause"].as_str().unwrap().contains("H9"));
    // The production configuration (first run) discards output: the verdict must rest on kernel events alone.
    assert_eq!(report["runs"][0]["config"]["stdio"], "ignore");
}

#[test]
fn crash_cleanup_shows_the_lines_production_discards() {
    let (_, report) = run_json("crash-cleanup", &[]);
    let h12 = evidence_text(&report, "H12");
    assert!(h12.contains("stderr: Error: SDK agent initialization failed"), "{h12}");
}

#[test]
fn exit_no_cleanup() {
    check("exit-no-cleanup");
}

#[test]
fn js_healthy_under_node_and_bun() {
    let report = check("js-healthy");
    let exes = executables(&report);
    assert!(exes.iter().any(|(rt, exe)| rt == "as_written" && exe.ends_with("/node")), "{exes:?}");
    assert!(exes.iter().any(|(rt, exe)| rt == "bun" && exe.contains("bun")), "{exes:?}");
    assert!(report["runs"].as_array().unwrap().iter().all(|r| r["outcome"]["healthy"] == true));
}

#[test]
fn js_long_path_node_truncates_bun_refuses() {
    let report = check("js-long-path");
    let h13 = verdict(&report, "H13")["summary"].as_str().unwrap().to_string();
    assert!(h13.contains("cut to 108 bytes"), "{h13}");
    let h10 = evidence_text(&report, "H10");
    assert!(h10.contains("/node: alive, never reachable") && h10.contains("bun") && h10.contains("exited 1"), "{h10}");
    // Bun's refusal is read from its output in the runs that keep it.
    let runs = report["runs"].as_array().unwrap();
    let bun_lines: String = runs
        .iter()
        .filter(|r| r["config"]["runtime"] == "bun")
        .flat_map(|r| r["events"].as_array().unwrap().iter())
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(bun_lines.contains("EINVAL"), "{bun_lines}");
}

#[test]
fn js_long_path_without_bun_is_inconclusive_on_runtimes() {
    // A PATH that has node and no bun: the runtime comparison must not be decided on missing evidence.
    let dir = tempfile::tempdir().unwrap();
    let node = common::find_on_path("node").expect("node is installed");
    std::os::unix::fs::symlink(node, dir.path().join("node")).unwrap();
    let (code, report) = run_json_with_path("js-long-path", JS, dir.path().as_os_str());
    assert_eq!(code, 1);
    let h10 = verdict(&report, "H10");
    assert_eq!(h10["status"], I, "{h10}");
    assert!(h10["summary"].as_str().unwrap().contains("bun not installed"), "{h10}");
    assert_eq!(verdict(&report, "H13")["status"], C);
    assert!(report["runs"].as_array().unwrap().iter().all(|r| r["config"]["runtime"] == "as_written"));
}

#[test]
fn js_long_dir_bun_binds_by_a_detour_that_clients_cannot_follow() {
    let report = check("js-long-dir");
    let runs = report["runs"].as_array().unwrap();
    let bun: Vec<&serde_json::Value> = runs.iter().filter(|r| r["config"]["runtime"] == "bun").collect();
    let events = || bun.iter().flat_map(|r| r["events"].as_array().unwrap().iter());
    assert!(events().any(|e| e["kind"] == "socket_bound" && e["path"].as_str().unwrap().starts_with("/proc/self/fd/")));
    assert!(events().all(|e| e["kind"] != "connect" || e["result"] != "connected"));
}

#[test]
fn js_guard_main_never_runs_under_node() {
    let report = check("js-guard");
    let h7 = verdict(&report, "H7")["summary"].as_str().unwrap().to_string();
    assert!(h7.contains("/node exited 0 without the entry marker"), "{h7}");
    let h10 = evidence_text(&report, "H10");
    assert!(h10.contains("#! line names node"), "the launcher/shebang mismatch is flagged: {h10}");
}

#[test]
fn js_epipe_node_dies_with_its_launcher_bun_does_not() {
    let report = check("js-epipe");
    // H3 names the stdio pair that flips (under node), H10 the runtime pair.
    let h3 = summary(&report, "H3");
    assert!(h3.contains("launcher exits, stdio pipe-drained") && h3.contains("exited 1"), "{h3}");
    let h10 = evidence_text(&report, "H10");
    assert!(
        h10.contains("/node: reachable, then exited 1") && h10.contains("under bun") && h10.contains("healthy"),
        "{h10}"
    );
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

fn summary<'a>(report: &'a serde_json::Value, id: &str) -> &'a str {
    verdict(report, id)["summary"].as_str().unwrap()
}

fn evidence_text(report: &serde_json::Value, id: &str) -> String {
    verdict(report, id)["evidence"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect()
}

#[test]
fn tcp_healthy() {
    let report = check("tcp-healthy");
    assert!(report["root_cause"].is_null());
    assert!(report["runs"].as_array().unwrap().iter().all(|r| r["outcome"]["healthy"] == true));
}

#[test]
fn tcp_not_ready() {
    let report = check("tcp-not-ready");
    // The body that says "not ready", and the reason that only the log file holds.
    assert!(summary(&report, "H11").contains("200 but not ready"), "{}", summary(&report, "H11"));
    assert!(evidence_text(&report, "H11").contains("\\\"initialized\\\":false"), "{}", evidence_text(&report, "H11"));
    let h12 = summary(&report, "H12");
    assert!(h12.contains("log file") && h12.contains("database migration failed"), "{h12}");
    assert!(evidence_text(&report, "H12").contains("logs/worker.log: ERROR database migration failed"));
}

#[test]
fn tcp_wrong_port() {
    let report = check("tcp-wrong-port");
    let h4 = summary(&report, "H4");
    assert!(h4.contains("another port"), "{h4}");
    // The worker's own environment had the right setting: it read another one.
    assert!(
        evidence_text(&report, "H4").contains("worker env CLAUDE_MEM_WORKER_PORT="),
        "{}",
        evidence_text(&report, "H4")
    );
}

#[test]
fn tcp_port_held() {
    let holder = PortHolder::start(HELD_PORT);
    let report = check("tcp-port-held");
    let h18 = summary(&report, "H18");
    assert!(h18.contains(&format!("pid {}", holder.pid())), "{h18}");
    assert!(h18.contains("fixture-worker tcp-healthy"), "{h18}");
    assert!(h18.contains("running for"), "{h18}");
    // The holder must survive: sockdiag never sends its stop message to another process.
    std::net::TcpStream::connect(("127.0.0.1", HELD_PORT)).expect("the holder still listens");
}

#[test]
fn tcp_stale_pid() {
    let report = check("tcp-stale-pid");
    assert!(summary(&report, "H19").contains("no longer running"), "{}", summary(&report, "H19"));
}

#[test]
fn every_tcp_run_gets_its_own_port() {
    let (code, report) = run_json("tcp-healthy", &["--jobs", "2", "--repeat", "4", "--vary", "spawn,lifecycle,stdio"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(code, 0, "root cause: {}", report["root_cause"]);
    assert!(runs.len() >= 20, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r["outcome"]["healthy"] == true));
    let mut ports: Vec<u64> = runs.iter().map(|r| r["expected"]["endpoint"]["port"].as_u64().unwrap()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), runs.len(), "a port was handed to two runs");
}

/// Node's own HTTP server: the health client must read its framing (a body streamed in two writes).
#[test]
fn node_http() {
    let node = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("node").is_file()));
    if !node {
        eprintln!("node_http: node is not on PATH; skipped");
        return;
    }
    let report = check("node-http");
    assert!(evidence_text(&report, "H11").contains("200, body"), "{}", evidence_text(&report, "H11"));
}

#[test]
fn die_with_launcher() {
    let report = check("die-with-launcher");
    let h3 = verdict(&report, "H3")["summary"].as_str().unwrap().to_string();
    assert!(h3.contains("pipe") && h3.contains("killed by signal 13") && h3.contains("stdio ignore"), "{h3}");
    let evidence = verdict(&report, "H3")["evidence"].to_string();
    assert!(evidence.contains("after its launcher exited"), "{evidence}");
    // The socket file stays behind: the worker died without cleaning up.
    assert_eq!(verdict(&report, "H9")["status"], R);
}

#[test]
fn chatty_before_bind() {
    let report = check("chatty-before-bind");
    let h3 = verdict(&report, "H3");
    assert!(h3["summary"].as_str().unwrap().contains("launcher stays, stdio pipe-undrained"), "{h3}");
    assert!(h3["evidence"].to_string().contains("pipe_write"), "{h3}");
}

#[test]
fn log_before_bind() {
    let report = check("log-before-bind");
    let h6 = verdict(&report, "H6")["summary"].as_str().unwrap().to_string();
    assert!(h6.contains("after the listening line"), "{h6}");
}

#[test]
fn slow_listen() {
    let report = check("slow-listen");
    let h11 = verdict(&report, "H11")["summary"].as_str().unwrap().to_string();
    // Every repeat of every configuration saw the refusal window, and its times are reported.
    assert!(h11.contains("14/14 runs") && h11.contains("median"), "{h11}");
}

#[test]
fn duplicate_cleanup() {
    let report = check("duplicate-cleanup");
    let h9 = verdict(&report, "H9")["summary"].as_str().unwrap().to_string();
    // Two launches race: the second worker may remove the first's file, or both may remove before either binds.
    // Each of the three two-launch runs usually shows the removal; at least one must.
    let rate = regex_lite_rate(&h9);
    assert!(h9.contains("by a second worker for the same session") && (1..=3).contains(&rate), "{h9}");
}

#[test]
fn runs_keep_the_matrix_order_and_production_comes_first() {
    let (_, report) = run_json("healthy", &["--repeat", "2", "--jobs", "3"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 14);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r["id"], i + 1);
    }
    let prod = serde_json::json!(
        {"spawn": "detached", "lifecycle": "exits", "stdio": "ignore", "launches": 1, "runtime": "as_written"}
    );
    assert_eq!(runs[0]["config"], prod);
    assert_eq!(runs[1]["config"], prod);
    assert_eq!(runs[13]["config"]["launches"], 2);
}

#[test]
fn healthy_as_another_user() {
    if !is_root() {
        eprintln!("skipped: --user needs root");
        return;
    }
    let (code, report) = run_json("healthy", &["--user", "nobody"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.last().unwrap()["config"]["user"]["uid"], 65534, "the last run is nobody's");
    assert!(runs.iter().all(|r| r["outcome"]["healthy"] == true), "the sandbox is usable by nobody");
    assert_eq!(code, 0);
}

#[test]
fn stale_socket() {
    let report = check("stale-socket");
    let h14 = verdict(&report, "H14");
    assert!(h14["summary"].as_str().unwrap().contains("no live process holds"), "{h14}");
    assert!(h14["evidence"].to_string().contains("bound file of no live socket"), "{h14}");
}

#[test]
fn replaced() {
    let report = check("replaced");
    for id in ["H9", "H14"] {
        let v = verdict(&report, id);
        assert!(v["evidence"].to_string().contains(": replaced"), "{id} cites the listener's lost file: {v}");
    }
}

#[test]
fn missing_dir() {
    let report = check("missing-dir");
    assert!(verdict(&report, "H15")["summary"].as_str().unwrap().contains("/data/run"), "{report}");
}

#[test]
fn abstract_name() {
    let report = check("abstract");
    assert!(verdict(&report, "H16")["summary"].as_str().unwrap().contains("abstract name @/"));
}

#[test]
fn private_tmp() {
    if !is_root() {
        eprintln!("skipped: the worker's private mount needs root");
        return;
    }
    let report = check("private-tmp");
    assert!(verdict(&report, "H16")["summary"].as_str().unwrap().contains("private mount namespace"));
}

#[test]
fn socket_dir_not_writable() {
    if !is_root() {
        eprintln!("skipped: --user needs root");
        return;
    }
    let report = check("socket-dir-not-writable");
    let h5 = verdict(&report, "H5");
    assert!(h5["summary"].as_str().unwrap().contains("uid 65534 may not create"), "{h5}");
    assert!(h5["evidence"].to_string().contains("failed: EACCES"), "the test bind as nobody: {h5}");
}

/// The socket directory is an mqueue mount (a filesystem without socket files) in a mount namespace made for
/// sockdiag alone, so nothing outlives the test.
#[test]
fn unsocketable_fs() {
    if !is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("mq");
    std::fs::create_dir(&mount_point).unwrap();
    let template = std::fs::read_to_string(common::profile("missing-dir")).unwrap();
    let worker = common::root().join("target/release/misplaced-worker");
    let text = template
        .replace("{profile_dir}/../../target/release/misplaced-worker", &worker.display().to_string())
        .replace("\"missing-dir\"", "\"serve\"")
        .replace("{data_dir}/run", &mount_point.display().to_string());
    let profile = dir.path().join("unsocketable-fs.toml");
    std::fs::write(&profile, text).unwrap();
    let target = std::ffi::CString::new(mount_point.display().to_string()).unwrap();
    let args = ["run", "--session", "28", "--profile", profile.to_str().unwrap(), "--format", "json"];
    let out = sockdiag_with(&args, move |cmd| {
        // SAFETY: unshare and mount are plain system calls on strings that outlive the child's exec.
        unsafe {
            cmd.pre_exec(move || private_mqueue(&target));
        }
    });
    let report = compare("unsocketable-fs", parse_report("unsocketable-fs", out));
    assert!(verdict(&report, "H17")["summary"].as_str().unwrap().contains("mqueue"));
}

fn private_mqueue(target: &std::ffi::CStr) -> std::io::Result<()> {
    extern "C" {
        fn unshare(flags: i32) -> i32;
        fn mount(src: *const i8, target: *const i8, fs: *const i8, flags: u64, data: *const u8) -> i32;
    }
    const CLONE_NEWNS: i32 = 0x0002_0000;
    const MS_REC: u64 = 0x4000;
    const MS_PRIVATE: u64 = 1 << 18;
    let check = |rc: i32| if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
    // SAFETY: as above.
    unsafe {
        check(unshare(CLONE_NEWNS))?;
        check(mount(c"none".as_ptr(), c"/".as_ptr(), std::ptr::null(), MS_REC | MS_PRIVATE, std::ptr::null()))?;
        check(mount(c"mqueue".as_ptr(), target.as_ptr(), c"mqueue".as_ptr(), 0, std::ptr::null()))
    }
}

/// The k of a "(k/21 runs" rate in a summary.
fn regex_lite_rate(summary: &str) -> usize {
    let Some((before, _)) = summary.split_once("/21 runs") else { return 0 };
    let digits: String = before.chars().rev().take_while(char::is_ascii_digit).collect();
    digits.chars().rev().collect::<String>().parse().unwrap_or(0)
}
