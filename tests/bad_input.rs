//! Bad input exits 2 and never panics: a bad file, profile or database with one line that names it, bad
//! arguments with clap's whole message (the error, the usage line, its tips, the allowed values).

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

/// Arguments clap refuses: exit 2, its message on stderr naming `names`, nothing on stdout; returns stderr.
fn expect_argument_error(args: &[&str], names: &str) -> String {
    let out = sockdiag(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: clap's message expected, got:\n{stderr}");
    assert!(stderr.contains("For more information, try '--help'."), "{args:?}: cut short:\n{stderr}");
    assert!(stderr.contains(names), "{args:?}: {stderr:?} should name {names:?}");
    assert!(!stderr.contains('\x1b'), "{args:?}: no colour off a terminal: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    stderr
}

#[test]
fn a_missing_argument_is_named_with_the_usage() {
    let stderr = expect_argument_error(&["run"], "--session <N>");
    assert!(stderr.contains("the following required arguments were not provided"), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("Usage: sockdiag run")), "{stderr}");
    expect_argument_error(&["check", "--session", "28"], "--baseline <FILE>");
}

#[test]
fn a_misspelled_option_gets_the_similar_one_as_a_tip() {
    let p = profile("healthy");
    let stderr = expect_argument_error(&["run", "--session", "28", "--profle", &p], "unexpected argument '--profle'");
    assert!(stderr.contains("tip: a similar argument exists: '--profile'"), "{stderr}");
    assert!(stderr.contains("Usage: "), "{stderr}");
}

#[test]
fn a_value_outside_the_allowed_ones_lists_them() {
    let p = profile("healthy");
    let stderr = expect_argument_error(&["run", "--session", "28", "--profile", &p, "--matrix", "bogus"], "bogus");
    assert!(stderr.contains("[possible values: quick, full]"), "{stderr}");
    let stderr = expect_argument_error(&["run", "--session", "28", "--format", "yaml"], "yaml");
    assert!(stderr.contains("table, json, markdown, junit"), "{stderr}");
}

#[test]
fn control_characters_in_arguments_are_shown_escaped() {
    let stderr = expect_argument_error(&["run", "--session", "28", "--profle\x1b]0;pwned\x07\r"], "--profle");
    assert!(stderr.contains(r"--profle\u{1b}]0;pwned\u{7}\r"), "{stderr}");
    assert!(!stderr.contains(['\x07', '\r']), "{stderr:?}");
    let stderr = expect_argument_error(&["run", "--session", "2\x1b[2J8"], "positive integer");
    assert!(stderr.contains(r"2\u{1b}[2J8"), "{stderr}");
}

/// What sockdiag writes on a pseudo-terminal (util-linux `script`), stdout and stderr together; `args` are shell
/// words.
fn on_a_tty(args: &str, no_color: bool) -> String {
    let inner = format!("{} {args}", env!("CARGO_BIN_EXE_sockdiag"));
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]).env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.output().expect("script(1) from util-linux runs");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[test]
fn argument_errors_are_styled_on_a_terminal_and_what_they_quote_stays_escaped() {
    let args = r"run --session 28 $(printf '%s\033[2J\007' --profle)";
    let tty = on_a_tty(args, false);
    assert!(tty.contains("\x1b[") && tty.contains("error:"), "clap's styles on a terminal: {tty:?}");
    assert!(tty.contains(r"--profle\u{1b}[2J\u{7}"), "{tty:?}");
    assert!(!tty.contains("\x1b[2J") && !tty.contains('\x07'), "{tty:?}");
    let plain = on_a_tty(args, true);
    assert!(plain.contains("error:") && !plain.contains('\x1b'), "never with NO_COLOR: {plain:?}");
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0() {
    for command in ["run", "check", "inspect"] {
        for help in ["--help", "-h"] {
            let out = sockdiag(&[command, help]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{command} {help}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(stdout.contains("\nExamples:\n"), "{command} {help} has examples:\n{stdout}");
            assert!(stdout.contains(&format!("  sockdiag {command} --")), "{command} {help}: its own:\n{stdout}");
            assert!(stdout.contains("Exit codes: 0 "), "{command} {help} says its exit codes:\n{stdout}");
            assert!(out.stderr.is_empty(), "{command} {help}");
        }
    }
    let out = sockdiag(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sockdiag "));
}

/// A value for every option of `run`: `check` must take each of them.
const RUN_OPTIONS: &[(&str, Option<&str>)] = &[
    ("--profile", Some("fixtures/profiles/healthy.toml")),
    ("--matrix", Some("full")),
    ("--vary", Some("spawn,stdio")),
    ("--launcher-exit-ms", Some("300")),
    ("--repeat", Some("3")),
    ("--jobs", Some("4")),
    ("--report", Some("report.md")),
    ("--keep-sandbox", None),
    ("--settle-ms", Some("25")),
    ("--window-ms", Some("4500")),
    ("--quiet", None),
    ("-q", None),
    ("--verbose", None),
    ("--user", Some("nobody")),
    ("--shard", Some("1/2")),
    ("--format", Some("json")),
];

/// The options `run -h` lists (the words that open its lines), `--help` and the session left out.
fn options_of_run() -> Vec<String> {
    let out = sockdiag(&["run", "-h"]);
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = help.lines().map(str::trim_start).filter(|l| l.starts_with('-'));
    let words = lines.flat_map(|l| l.split_whitespace().take_while(|w| w.starts_with('-')));
    let options = words.map(|w| w.trim_end_matches(',').to_string());
    options.filter(|o| !["--help", "-h", "--session"].contains(&o.as_str())).collect()
}

#[test]
fn check_takes_every_option_of_run() {
    let mut listed = options_of_run();
    let mut known: Vec<&str> = RUN_OPTIONS.iter().map(|(name, _)| *name).collect();
    listed.sort();
    known.sort();
    assert_eq!(listed, known, "RUN_OPTIONS should give a value to each option of `run`");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-baseline.json");
    for (name, value) in RUN_OPTIONS {
        let mut args = vec!["check", "--baseline", missing.to_str().unwrap(), "--session", "28", name];
        args.extend(value);
        // The baseline is read before anything runs: its error means every argument before it parsed.
        expect_usage_error(&args, &format!("--baseline {}", missing.display()));
    }
    let mut all = vec!["check", "--baseline", missing.to_str().unwrap(), "--session", "28"];
    all.extend(
        RUN_OPTIONS
            .iter()
            .filter(|(name, _)| *name != "-q")
            .flat_map(|(name, value)| std::iter::once(*name).chain(*value)),
    );
    expect_usage_error(&all, "no-baseline.json");
}

#[test]
fn check_says_in_its_help_that_it_takes_the_run_options() {
    let out = sockdiag(&["check", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("takes every option of `run`"), "{help}");
    let top = String::from_utf8_lossy(&sockdiag(&["--help"]).stdout).into_owned();
    assert!(top.contains("takes every option of `run`"), "{top}");
}

#[test]
fn sessions_that_are_not_positive_integers() {
    for bad in ["abc", "-1", "0", "28; rm -rf /", "99999999999999999999"] {
        let p = profile("healthy");
        expect_argument_error(&["run", "--session", bad, "--profile", &p], "'--session <N>': the session must be");
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
        (
            "not-tcp.toml",
            "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\naddress = \"udp://127.0.0.1:1\"\n",
            "socket.address",
        ),
        (
            "bad-port.toml",
            "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\naddress = \"tcp://127.0.0.1:70000\"\n",
            "socket.address",
        ),
        (
            "no-endpoint.toml",
            "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\n",
            "socket.path and socket.address",
        ),
        (
            "health-on-unix.toml",
            concat!(
                "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n",
                "[socket]\npath = \"/tmp/x.sock\"\n[health]\nget = \"/h\"\n"
            ),
            "[health]",
        ),
        (
            "bad-ready.toml",
            concat!(
                "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\naddress = \"tcp://127.0.0.1:{port}\"\n",
                "[health]\nget = \"/h\"\nready = \"(\"\n",
            ),
            "health.ready",
        ),
        (
            "bad-log-glob.toml",
            concat!(
                "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\naddress = \"tcp://127.0.0.1:{port}\"\n",
                "[observe]\nlogs = [\"{log_dir}/*.log\"]\n",
            ),
            "observe.logs[0]",
        ),
        (
            "unknown-runtime.toml",
            "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\nruntimes = [\"deno\"]\n[socket]\npath = \"/tmp/x.sock\"\n",
            "worker.runtimes",
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

/// A profile whose real data dir (the database source) is `data`, socket under `socket_dir`.
fn profile_with(dir: &std::path::Path, data: &std::path::Path, socket_dir: &str) -> std::path::PathBuf {
    let fixture = common::root().join("target/release/fixture-worker");
    let text = format!(
        "name = \"w\"\ndata_dir = \"{}\"\n[worker]\ncommand = [\"{}\", \"healthy\", \"{{session}}\"]\n[socket]\npath = \"{socket_dir}/w.sock\"\n[database]\npath = \"{{data_dir}}/claude-mem.db\"\nsession_query = \"SELECT 1 FROM sdk_sessions WHERE id = ?1\"\n",
        data.display(),
        fixture.display()
    );
    let path = dir.join("profile.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn databases_that_are_not_sqlite_locked_or_lack_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("claude-mem.db");
    let profile = profile_with(dir.path(), &data, "{data_dir}");
    let p = profile.to_str().unwrap();

    std::fs::write(&db, "this is not a database").unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", p], "not a SQLite database");

    std::fs::remove_file(&db).unwrap();
    rusqlite::Connection::open(&db).unwrap().execute_batch("CREATE TABLE other (id INTEGER);").unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", p], "no such table");

    std::fs::remove_file(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE sdk_sessions (id INTEGER PRIMARY KEY); BEGIN EXCLUSIVE; INSERT INTO sdk_sessions VALUES (28);",
    )
    .unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", p], "locked");
    drop(conn);
}

#[test]
fn seed_sql_and_profiles_that_are_too_big_or_not_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let profile = profile_with(dir.path(), &data, "{data_dir}");
    let text = std::fs::read_to_string(&profile).unwrap() + "seed_sql = \"seed.sql\"\n";
    std::fs::write(&profile, text).unwrap();
    let p = profile.to_str().unwrap();
    let seed = dir.path().join("seed.sql");
    // 17 MiB of holes: over the 16 MiB bound, refused before a byte of it is run.
    std::fs::File::create(&seed).unwrap().set_len(17 << 20).unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", p], "seed.sql: 17825792 bytes, over the limit");
    std::fs::remove_file(&seed).unwrap();
    mkfifo(&seed);
    expect_usage_error(&["run", "--session", "28", "--profile", p], "seed.sql: not a regular file");
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big).unwrap().set_len(2 << 20).unwrap();
    for bad in [big.to_str().unwrap(), "/dev/zero", seed.to_str().unwrap()] {
        expect_usage_error(&["run", "--session", "28", "--profile", bad], &format!("cannot read profile {bad}: "));
    }
}

#[test]
fn saved_reports_that_are_not_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.json");
    mkfifo(&fifo);
    for bad in [fifo.to_str().unwrap(), "/dev/zero"] {
        expect_usage_error(&["render", bad], &format!("{bad}: not a regular file"));
        expect_usage_error(&["merge", bad], &format!("{bad}: not a regular file"));
    }
}

/// A FIFO nobody writes to: reading it would block forever.
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo(1) runs");
    assert!(status.success());
}

#[test]
fn socket_path_with_a_nul_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nul.toml");
    std::fs::write(
        &path,
        "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\n[socket]\npath = \"/tmp/a\\u0000b.sock\"\n",
    )
    .unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", path.to_str().unwrap()], "NUL");
}

/// Runs `sockdiag run` on `profile` as nobody, expects exit 2, and returns its stderr.
fn usage_error_as_nobody(profile: &std::path::Path) -> String {
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockdiag"))
        .args(["run", "--session", "28", "--profile", profile.to_str().unwrap()])
        .env("TMPDIR", "/tmp")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn socket_directory_that_cannot_be_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    let profile = dir.path().join("p.toml");
    let fixture = common::root().join("target/release/fixture-worker");
    std::fs::write(&profile, format!("name = \"w\"\n[worker]\ncommand = [\"{}\", \"healthy\", \"{{session}}\"]\n[socket]\npath = \"{}/w.sock\"\n", fixture.display(), secret.display())).unwrap();
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Root reads everything: run sockdiag as nobody so the directory is really unreadable to it.
    let stderr = usage_error_as_nobody(&profile);
    assert!(stderr.contains(secret.to_str().unwrap()) && stderr.trim_end().lines().count() == 1, "{stderr}");
}

#[test]
fn unknown_matrix_dimension_names_the_known_ones() {
    let p = profile("healthy");
    expect_argument_error(&["run", "--session", "28", "--profile", &p, "--vary", "spawn,stdoi"], "stdio, launches");
}

#[test]
fn unknown_user() {
    let profile = common::profile("healthy");
    let args = ["run", "--session", "28", "--profile", &profile, "--user", "no-such-user-here"];
    if common::is_root() {
        expect_usage_error(&args, "--user no-such-user-here: no such user");
    } else {
        expect_usage_error(&args, "needs sockdiag to run as root");
    }
}

#[test]
fn inspect_checks_its_input_like_run() {
    expect_argument_error(&["inspect", "--session", "0"], "positive integer");
    expect_usage_error(&["inspect", "--session", "28", "--profile", "/nonexistent.toml"], "/nonexistent.toml");
}

#[test]
fn shards_that_do_not_exist() {
    let p = profile("healthy");
    for (bad, names) in
        [("0/2", "count from 1"), ("3/2", "only 2 shards"), ("x", "i/n"), ("1/0", "no shard of 0"), ("-1/2", "i/n")]
    {
        let stderr = expect_argument_error(&["run", "--session", "28", "--profile", &p, "--shard", bad], "--shard");
        assert!(stderr.contains(names), "{bad}: {stderr}");
        expect_argument_error(
            &["check", "--baseline", "b.json", "--session", "28", "--profile", &p, "--shard", bad],
            names,
        );
    }
}

/// One real shard report of the healthy fixture (2 runs in all, 1 per shard), then copies of it changed in one
/// field each.
#[test]
fn merging_shards_that_do_not_fit_together() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile("healthy");
    let shard = |i: u32| {
        let file = dir.path().join(format!("shard-{i}.json"));
        let shard = format!("{i}/2");
        let out = sockdiag(&[
            "run",
            "--session",
            "28",
            "--profile",
            &p,
            "--vary",
            "launches",
            "--shard",
            &shard,
            "--report",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        file
    };
    let (one, two) = (shard(1), shard(2));
    let read = |f: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()
    };
    let changed = |name: &str, change: &dyn Fn(&mut serde_json::Value)| {
        let mut report = read(&two);
        change(&mut report);
        let file = dir.path().join(name);
        std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
        file
    };
    let other_session = changed("session.json", &|r| r["session"] = 29.into());
    let other_profile = changed("profile.json", &|r| r["profile"] = "another (other.toml)".into());
    let other_matrix = changed("matrix.json", &|r| r["matrix"]["repeat"] = 2.into());
    let other_count = changed("count.json", &|r| r["matrix"]["shards"]["count"] = 3.into());
    let other_options = changed("options.json", &|r| {
        r["command"] =
            r["command"].as_str().unwrap().replace("--vary launches", "--vary launches --window-ms 10").into()
    });
    let foreign_run = changed("foreign.json", &|r| r["runs"][0]["id"] = 1.into());
    // A report saved before matrices were recorded.
    let whole = changed("no-matrix.json", &|r| {
        r.as_object_mut().unwrap().remove("matrix");
    });
    let s = |f: &std::path::Path| f.to_str().unwrap().to_string();
    for (files, names) in [
        (vec![s(&one), s(&other_session)], "different sessions"),
        (vec![s(&one), s(&other_profile)], "different profiles"),
        (vec![s(&one), s(&other_matrix)], "different matrices"),
        (vec![s(&one), s(&other_count)], "different splits"),
        (vec![s(&one), s(&other_options)], "different options"),
        (vec![s(&one), s(&foreign_run)], "not one of its shards"),
        (vec![s(&one), s(&one)], "shard 1/2 is in both"),
        (vec![s(&one)], "shard 2/2 missing"),
        (vec![s(&one), s(&whole)], "records no matrix"),
        (vec![s(&one), s(&common::root().join("tests/fixtures/crash-cleanup.json"))], "the whole matrix, not a shard"),
        (vec![s(&one), s(&dir.path().join("absent.json"))], "absent.json"),
    ] {
        let mut args = vec!["merge"];
        args.extend(files.iter().map(String::as_str));
        expect_usage_error(&args, names);
    }
    expect_usage_error(&["merge", "--shards", "4", &s(&one), &s(&two)], "not of 4");
    let out = sockdiag(&["merge", &s(&one), &s(&two)]);
    assert_eq!(out.status.code(), Some(0), "the unchanged shards merge: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_database_outside_the_sandbox_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    rusqlite::Connection::open(&real).unwrap().execute_batch("CREATE TABLE sdk_sessions (id INTEGER);").unwrap();
    let before = std::fs::read(&real).unwrap();
    std::fs::write(dir.path().join("seed.sql"), "CREATE TABLE sdk_sessions (id INTEGER);").unwrap();
    let fixture = common::root().join("target/release/fixture-worker");
    let planted = dir.path().join("planted.db");
    for (name, db, seed) in [
        ("absolute-seeded", planted.display().to_string(), "\nseed_sql = \"seed.sql\""),
        ("real", real.display().to_string(), ""),
        ("climbing", "{data_dir}/../../escaped.db".to_string(), "\nseed_sql = \"seed.sql\""),
    ] {
        let text = format!(
            "name = \"w\"\n[worker]\ncommand = [\"{}\", \"healthy\", \"{{session}}\"]\n[socket]\npath = \"{{data_dir}}/w.sock\"\n[database]\npath = \"{db}\"\nsession_query = \"SELECT 1 FROM sdk_sessions WHERE id = ?1\"{seed}\n",
            fixture.display()
        );
        let profile = dir.path().join(format!("{name}.toml"));
        std::fs::write(&profile, text).unwrap();
        expect_usage_error(&["run", "--session", "28", "--profile", profile.to_str().unwrap()], "database.path");
    }
    assert!(!planted.exists(), "nothing was created outside the sandbox");
    assert_eq!(std::fs::read(&real).unwrap(), before, "the real database is untouched");
    assert!(!dir.path().join("escaped.db").exists() && !std::path::Path::new("/tmp/escaped.db").exists());
}

#[test]
fn a_database_that_cannot_be_read_is_an_input_error_not_a_missing_session() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    rusqlite::Connection::open(data.join("claude-mem.db"))
        .unwrap()
        .execute_batch("CREATE TABLE sdk_sessions (id INTEGER PRIMARY KEY); INSERT INTO sdk_sessions VALUES (28);")
        .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let profile = profile_with(dir.path(), &data, "{data_dir}");
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Root reads everything: run sockdiag as nobody so the database's directory is really closed to it.
    let stderr = usage_error_as_nobody(&profile);
    assert!(stderr.contains("claude-mem.db") && stderr.contains("ermission denied"), "{stderr}");
}

#[test]
fn inputs_that_never_end_or_never_come_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let p = profile("healthy");
    for bad in ["/dev/zero", fifo.to_str().unwrap()] {
        // No writer ever opens the FIFO and /dev/zero never ends: a blocking or unbounded read would hang here.
        expect_usage_error(&["run", "--session", "28", "--profile", bad], bad);
        expect_usage_error(&["render", bad], bad);
        expect_usage_error(&["merge", bad], bad);
        expect_usage_error(&["check", "--baseline", bad, "--session", "28", "--profile", &p], bad);
    }
}

#[test]
fn an_environment_variable_name_with_a_nul_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nul-env.toml");
    std::fs::write(&path, "name = \"w\"\n[worker]\ncommand = [\"/bin/true\"]\nenv = { \"A\\u0000B\" = \"1\" }\n[socket]\npath = \"/tmp/w.sock\"\n").unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", path.to_str().unwrap()], "worker.env");
}

#[test]
fn a_command_line_longer_than_one_exec_carries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.toml");
    let long = "x".repeat(200 * 1024);
    std::fs::write(
        &path,
        format!("name = \"w\"\n[worker]\ncommand = [\"/bin/true\", \"{long}\"]\n[socket]\npath = \"/tmp/w.sock\"\n"),
    )
    .unwrap();
    expect_usage_error(&["run", "--session", "28", "--profile", path.to_str().unwrap(), "--vary", "stdio"], "E2BIG");
}

#[test]
fn a_temp_dir_that_is_not_a_directory() {
    let out = common::sockdiag_with(&["run", "--session", "28", "--profile", &common::profile("healthy")], |cmd| {
        cmd.env("TMPDIR", "/etc/hostname");
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TMPDIR") && stderr.contains("/etc/hostname"), "{stderr}");
}
