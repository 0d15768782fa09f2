//! Reports: every format rendered from a RECORDED crash-cleanup run (tests/fixtures/crash-cleanup.json, judged
//! again by the probes through `sockdiag render`) is pinned by a snapshot; the Markdown has every section, no
//! placeholder and valid Mermaid; the JUnit XML is read back with a real XML parser.
//!
//! To re-record the fixture (when the run record's shape changes):
//!   target/release/sockdiag run --session 28 --profile fixtures/profiles/crash-cleanup.toml --format json \
//!     --launcher-exit-ms 300 | sed "s#$PWD/#/src/sockdiag/#g" > tests/fixtures/crash-cleanup.json
//! (the launcher outlives the worker's crash, so the drained pipe shows what the production configuration hides)
//! and tests/fixtures/healthy.json the same way from fixtures/profiles/healthy.toml (without --launcher-exit-ms)
//! then review the snapshots: `INSTA_UPDATE=always cargo test --release --test reports` and `git diff`.

mod common;

use common::{root, sockdiag};

const SECTIONS: &[&str] = &[
    "## Summary",
    "- Production (detached, launcher exits, stdio ignore, 1 launch): ",
    "- Root cause: ",
    "## Verdicts",
    "## Configurations and outcomes",
    "## Timelines of the failing runs",
    "```mermaid",
    "## Output the production configuration hides",
    "## Environment",
    "## Reproduce",
];

fn fixture() -> String {
    recorded("crash-cleanup")
}

/// A recorded run, `tests/fixtures/<name>.json`.
fn recorded(name: &str) -> String {
    root().join(format!("tests/fixtures/{name}.json")).display().to_string()
}

/// The answer as a person reads it first: the lines before the first blank one.
fn head(text: &str) -> String {
    text.lines().take_while(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_answer_comes_first_and_a_quick_matrix_fits_one_screen() {
    for (name, code, snapshot) in [("crash-cleanup", 1, "head_failing"), ("healthy", 0, "head_healthy")] {
        let out = sockdiag(&["render", &recorded(name), "--format", "table"]);
        assert_eq!(out.status.code(), Some(code), "{name}: exit 0 exactly when every run was healthy");
        let text = String::from_utf8(out.stdout).unwrap();
        let head = head(&text);
        assert!(head.lines().count() <= 12, "{name}: the answer takes {} lines:\n{head}", head.lines().count());
        assert!(head.lines().nth(1).unwrap().starts_with("Production (detached, launcher exits, stdio ignore"));
        // An 80x24 terminal shows the whole of a 7-run quick matrix.
        assert!(text.lines().count() <= 24, "{name}: {} lines:\n{text}", text.lines().count());
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{name}:\n{text}");
        insta::assert_snapshot!(snapshot, head);
    }
}

/// The README's example output is the table of the recorded run, as the binary prints it now.
#[test]
fn readme_example_is_what_the_binary_prints() {
    let readme_path = root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let section = readme.find("## Example output").expect("README has an Example output section");
    let open = section + readme[section..].find("```\n").expect("a fenced block") + 4;
    let close = open + readme[open..].find("```\n").expect("the block is closed");
    let printed = render("table");
    if std::env::var_os("SOCKDIAG_UPDATE_README").is_some() {
        std::fs::write(&readme_path, format!("{}{printed}{}", &readme[..open], &readme[close..])).unwrap();
        return;
    }
    assert_eq!(
        &readme[open..close],
        printed,
        "README's example output is out of date: SOCKDIAG_UPDATE_README=1 cargo test --release --test reports readme"
    );
}

/// `sockdiag render` of the recorded run, in one format; its exit code says the failure is reproduced.
fn render(format: &str) -> String {
    let out = sockdiag(&["render", &fixture(), "--format", format]);
    assert_eq!(out.status.code(), Some(1), "{format}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn table_snapshot_fits_80_columns() {
    let text = render("table");
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line:?}");
    }
    assert!(!text.contains("/tmp/sockdiag"), "sandbox paths are written <sandbox>/...");
    insta::assert_snapshot!("table", text);
}

#[test]
fn verbose_adds_every_verdict_its_evidence_and_fix_after_the_answer() {
    let out = sockdiag(&["render", &fixture(), "--format", "table", "--verbose"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let plain = render("table");
    // The same answer, the profile's file named in its first line.
    assert!(text.contains("(fixtures/profiles/crash-cleanup.toml)") && !plain.contains("crash-cleanup.toml"));
    assert_eq!(text.lines().nth(3), plain.lines().nth(2), "{text}");
    for said in ["H1 CONFIRMED:", "H9 CONFIRMED:", "H4 ruled out:", "    fix: ", "likewise in runs"] {
        assert!(text.contains(said) && !plain.contains(said), "{said:?} only under --verbose:\n{text}");
    }
    assert!(!text.contains("More: --verbose"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80));
}

#[test]
fn json_snapshot() {
    let text = render("json");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["verdicts"][0]["id"], "H1");
    insta::assert_snapshot!("json", text);
}

#[test]
fn markdown_snapshot_has_every_section_and_no_placeholder() {
    let text = render("markdown");
    assert_markdown_complete(&text);
    insta::assert_snapshot!("markdown", text);
}

#[test]
fn markdown_root_cause_names_the_decisive_facts() {
    let text = render("markdown");
    let cause = text.lines().find(|l| l.starts_with("- Root cause:")).unwrap();
    // Causal order: the removal (H9) explains what clients saw, then the exit (H1); then the hidden stderr line.
    let (h9, h1) = (cause.find("(H9, 7/7 runs)").unwrap(), cause.find("(H1, 7/7 runs)").unwrap());
    assert!(h9 < h1, "{cause}");
    assert!(cause.contains("by the worker itself") && cause.contains("exited 1"), "{cause}");
    assert!(cause.contains("ANTHROPIC\\_API\\_KEY is not set") && cause.contains("production discards it"), "{cause}");
}

#[test]
fn junit_parses_and_maps_statuses() {
    let text = render("junit");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let top = doc.root_element();
    assert_eq!(top.tag_name().name(), "testsuites");
    let suites: Vec<_> = top.children().filter(|n| n.has_tag_name("testsuite")).collect();
    let names: Vec<&str> = suites.iter().map(|s| s.attribute("name").unwrap()).collect();
    // The quick matrix ran seven configurations: one suite each (then, maybe, "across configurations").
    assert_eq!(
        names[..7],
        [
            "detached, launcher exits, stdio ignore, 1 launch",
            "attached, launcher exits, stdio ignore, 1 launch",
            "detached, launcher stays, stdio ignore, 1 launch",
            "detached, launcher exits, stdio pipe-drained, 1 launch",
            "detached, launcher exits, stdio pipe-undrained, 1 launch",
            "detached, launcher exits, stdio file, 1 launch",
            "detached, launcher exits, stdio ignore, 2 launches",
        ]
    );
    assert!(names[7..].iter().all(|n| *n == "across configurations"), "{names:?}");
    let mut ids_seen: Vec<String> = Vec::new();
    for suite in &suites {
        let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(suite.attribute("tests").unwrap(), cases.len().to_string());
        let failures = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure"))).count();
        assert_eq!(suite.attribute("failures").unwrap(), failures.to_string());
        for case in &cases {
            let name = case.attribute("name").unwrap();
            let id = &name[..name.find(' ').unwrap()];
            ids_seen.push(id.to_string());
            let child = |tag: &str| case.children().find(|n| n.has_tag_name(tag));
            match id {
                // The worker removed its socket and exited in every configuration: confirmed = failure, whose
                // message and text are the evidence and the fix.
                "H1" | "H9" => {
                    let failure = child("failure").unwrap_or_else(|| panic!("{name}: no failure"));
                    assert!(failure.attribute("message").unwrap().starts_with("confirmed: "));
                    assert!(failure.text().unwrap_or_default().contains("fix: "));
                    if id == "H9" {
                        assert!(failure.attribute("message").unwrap().contains("removed"));
                    }
                }
                // Ruled out = pass: no failure, no skipped.
                "H4" | "H8" => assert!(child("failure").is_none() && child("skipped").is_none(), "{name}"),
                _ => {}
            }
        }
    }
    // Every hypothesis of this version appears.
    let json: serde_json::Value = serde_json::from_str(&render("json")).unwrap();
    for v in json["verdicts"].as_array().unwrap() {
        assert!(ids_seen.iter().any(|id| v["id"] == id.as_str()), "{} has no testcase", v["id"]);
    }
    insta::assert_snapshot!("junit", text);
}

#[test]
fn report_file_of_a_real_run_is_complete_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let out_md = dir.path().join("out.md");
    let profile = common::profile("crash-cleanup");
    let out = sockdiag(&["run", "--session", "28", "--profile", &profile, "--report", out_md.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&out_md).unwrap();
    assert_markdown_complete(&text);
    assert!(text.contains(&format!("--profile {profile}")), "the reproduce command names the profile");
    validate_mermaid(&out_md);
}

#[test]
fn markdown_on_stdout_equals_the_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_md = dir.path().join("again.md");
    let out = sockdiag(&["render", &fixture(), "--format", "markdown", "--report", out_md.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), std::fs::read_to_string(&out_md).unwrap());
}

#[test]
fn quiet_prints_only_the_root_cause() {
    let profile = common::profile("crash-cleanup");
    let out = sockdiag(&["run", "--session", "28", "--profile", &profile, "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(" was removed ") && stdout.contains("(H9, "), "the removal (H9) is named: {stdout}");
    assert!(stdout.contains("<sandbox>/data/worker-28.sock") && !stdout.contains("/tmp/"), "{stdout}");
    let healthy = sockdiag(&["run", "--session", "28", "--profile", &common::profile("healthy"), "--quiet"]);
    assert_eq!(healthy.status.code(), Some(0));
    assert!(healthy.stdout.is_empty(), "nothing when healthy");
}

fn assert_markdown_complete(text: &str) {
    for section in SECTIONS {
        assert!(text.contains(section), "missing {section:?}");
    }
    for leftover in ["{{", "}}", "{%", "%}", "{#", "#}"] {
        assert!(!text.contains(leftover), "placeholder left: {leftover:?}");
    }
    assert!(!text.contains("/tmp/sockdiag"), "sandbox paths are written <sandbox>/...");
    assert!(text.contains("stderr: Error: SDK agent initialization failed"), "the hidden output is shown");
}

/// Parses every Mermaid block with mermaid's own parser (tests/mermaid, installed by `.ci/run`). Off CI, without
/// the install, says so and checks nothing more.
fn validate_mermaid(file: &std::path::Path) {
    let dir = root().join("tests/mermaid");
    if !dir.join("node_modules/mermaid").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must install the Mermaid parser: npm ci --prefix tests/mermaid");
        eprintln!("note: Mermaid not validated: run `npm ci --prefix tests/mermaid` to enable it");
        return;
    }
    let out = std::process::Command::new("node").arg(dir.join("validate.mjs")).arg(file).output().expect("node runs");
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "invalid Mermaid: {said}");
    assert!(said.contains("sequence ok"), "{said}");
}

/// Runs `sockdiag render … --format table` on a pseudo-terminal (util-linux `script`) `cols` wide.
fn render_on_a_tty(cols: u16, no_color: bool) -> String {
    let bin = env!("CARGO_BIN_EXE_sockdiag");
    let inner = format!("stty cols {cols} rows 50; {bin} render {} --format table", fixture());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]).env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.output().expect("script(1) from util-linux runs");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn colour_and_width_follow_the_terminal() {
    let wide = render_on_a_tty(120, false);
    assert!(wide.contains("\x1b["), "colour on a terminal:\n{wide}");
    let widest = wide.lines().map(|l| strip_ansi(l).chars().count()).max().unwrap();
    assert!(widest > 80 && widest <= 120, "tables use the terminal's width: {widest}");
    let plain = render_on_a_tty(120, true);
    assert!(!plain.contains("\x1b["), "never with NO_COLOR:\n{plain}");
    assert!(!render("table").contains('\x1b'), "never off a terminal");
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn render_of_something_else_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let not_report = dir.path().join("not-report.json");
    std::fs::write(&not_report, "{\"verdicts\": []}").unwrap();
    for file in [not_report.clone(), dir.path().join("missing.json")] {
        let out = sockdiag(&["render", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(file.to_str().unwrap()) && stderr.lines().count() == 1, "{stderr}");
    }
}

/// Bytes a worker could use to act on the reader's terminal: ESC, BEL, CR (overwriting the line), U+202E.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars().filter(|c| matches!(c, '\x1b' | '\x07' | '\r' | '\u{202e}')).collect()
}

/// The worker's escape sequences as they arrive in the human formats: escaped, yet readable.
fn assert_escaped_but_shown(text: &str, format: &str) {
    assert!(text.contains("pwned") && text.contains("cleared"), "{format}: the lines are shown:\n{text}");
    assert!(text.contains(r"\u{1b}]0;pwned\u{7}"), "{format}: escaped visibly:\n{text}");
}

#[test]
fn worker_escape_sequences_never_reach_the_terminal_nor_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (out_md, out_json) = (dir.path().join("out.md"), dir.path().join("out.json"));
    let profile = common::profile("hostile-terminal");
    let run = |report: &std::path::Path| {
        sockdiag(&["run", "--session", "28", "--profile", &profile, "--verbose", "--report", report.to_str().unwrap()])
    };
    let out = run(&out_md);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(raw_controls(&table), [], "plain table:\n{table}");
    assert_escaped_but_shown(&table, "table");
    let markdown = std::fs::read_to_string(&out_md).unwrap();
    assert_eq!(raw_controls(&markdown), [], "Markdown:\n{markdown}");
    assert_escaped_but_shown(&markdown, "Markdown");
    validate_mermaid(&out_md);
    // The JSON report keeps the exact bytes.
    assert_eq!(run(&out_json).status.code(), Some(1));
    assert!(std::fs::read_to_string(&out_json).unwrap().contains(r"\u001b]0;pwned\u0007"));
    // Rendered again on a terminal, with colour: the only escapes are the table's own colours.
    let inner = format!(
        "stty cols 100 rows 50; {} render {} --format table --verbose",
        env!("CARGO_BIN_EXE_sockdiag"),
        out_json.display()
    );
    let tty = std::process::Command::new("script").args(["-qec", &inner, "/dev/null"]).env_remove("NO_COLOR").output();
    let tty = String::from_utf8_lossy(&tty.expect("script(1) from util-linux runs").stdout).replace("\r\n", "\n");
    assert!(tty.contains("\x1b["), "colour on a terminal:\n{tty}");
    let colourless = strip_ansi(&tty);
    assert_eq!(raw_controls(&colourless), [], "terminal table:\n{tty}");
    assert!(!tty.contains("\x1b]") && !tty.contains("\x1b[2J") && !tty.contains('\x07'), "{tty}");
    assert_escaped_but_shown(&colourless, "terminal table");
}

/// A profile whose production pipes the worker's output to a launcher that leaves: the matrix varies around that
/// launch, and the answer leads with its failure and the comparison that explains it.
#[test]
fn a_profile_names_its_own_production_and_the_answer_leads_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = root().join("fixtures/profiles");
    let text = std::fs::read_to_string(profiles.join("die-with-launcher.toml")).unwrap();
    let text = text.replace("{profile_dir}", profiles.to_str().unwrap()).replace(
        "seed_sql = \"schema.sql\"",
        &format!("seed_sql = {:?}", profiles.join("schema.sql").to_str().unwrap()),
    );
    let profile = dir.path().join("piped-production.toml");
    std::fs::write(&profile, format!("{text}\n[production]\nstdio = \"pipe-drained\"\n")).unwrap();
    let out =
        sockdiag(&["run", "--session", "28", "--profile", profile.to_str().unwrap(), "--launcher-exit-ms", "300"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let head = head(&text).replace("\n  ", " ");
    let lines: Vec<&str> = head.lines().collect();
    assert!(
        lines[1].starts_with("Production (detached, launcher exits, stdio pipe-drained, 1 launch): reachable, then killed by SIGPIPE (13)"),
        "{head}"
    );
    assert!(lines[2].starts_with("Root cause: Stdio piping interferes (H3)"), "{head}");
    assert!(
        lines.iter().any(|l| l.starts_with("Changes when") && l.contains("stdio ignore") && l.contains(": healthy")),
        "{head}"
    );
    let table_first_row = text.lines().find(|l| l.contains("┆ production")).unwrap_or_default();
    assert!(table_first_row.contains(" 1 "), "production is run 1: {text}");
}
