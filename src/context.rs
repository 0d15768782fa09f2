//! Where and how a diagnosis was made: the machine (OS, kernel, runtimes, sockdiag's version) and the command
//! that reproduces it. Reports print both; the JSON report keeps them so a saved report can be rendered later.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{InspectArgs, RunOptions};

/// The longest a `--version` query may take.
const VERSION_DEADLINE: Duration = Duration::from_secs(3);

/// The machine a diagnosis was made on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Environment {
    /// `PRETTY_NAME` of /etc/os-release, or the OS family.
    pub(crate) os: String,
    /// `uname -srm`.
    pub(crate) kernel: String,
    /// Runtimes found on PATH with what `--version` printed.
    pub(crate) runtimes: Vec<Runtime>,
    /// The version of sockdiag that made the diagnosis.
    pub(crate) sockdiag: String,
    /// The observation sources of the runs, and why any did not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) sources: Vec<Source>,
}

/// A source of facts about the runs (the per-run cgroup, inotify, /proc...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) active: bool,
    /// What it covers, or why it did not run.
    pub(crate) detail: String,
}

impl Source {
    pub(crate) fn new(name: &str, active: bool, detail: impl Into<String>) -> Source {
        Source { name: name.to_string(), active, detail: detail.into() }
    }
}

/// A runtime and its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Runtime {
    pub(crate) name: String,
    pub(crate) version: String,
}

impl Environment {
    /// Looks at this machine.
    pub(crate) fn detect() -> Environment {
        Environment {
            os: os_name(),
            kernel: kernel(),
            // The runtimes a profile may name, each one found on PATH asked for its version.
            runtimes: sockdiag_probes::Runtime::SUBSTITUTES
                .iter()
                .filter_map(|(_, name)| version_of(name).map(|version| Runtime { name: name.to_string(), version }))
                .collect(),
            sockdiag: env!("CARGO_PKG_VERSION").to_string(),
            sources: Vec::new(),
        }
    }
}

fn os_name() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

fn kernel() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => format!(
            "{} {} {}",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        ),
        Err(e) => format!("unknown (uname: {e})"),
    }
}

/// `NAME --version`'s first line, if NAME is on PATH and answers within the deadline.
fn version_of(name: &str) -> Option<String> {
    let program = crate::profile::find_program(name)?;
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text);
        let _ = tx.send(text);
    });
    if spawned.is_err() {
        let _ = child.kill();
        return None;
    }
    let text = rx.recv_timeout(VERSION_DEADLINE).ok();
    if text.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let line = text?.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// The command that looks again, shell-quoted.
pub(crate) fn inspect_command(args: &InspectArgs) -> String {
    command_line("inspect", args.reproduce_args())
}

/// The command that runs the same diagnosis again, shell-quoted: the flags [`RunOptions::reproduce_args`] keeps.
pub(crate) fn reproduce_command(args: &RunOptions) -> String {
    command_line("run", args.reproduce_args())
}

/// `sockdiag SUBCOMMAND ARGS...`, each word quoted for a POSIX shell.
fn command_line(subcommand: &str, args: Vec<String>) -> String {
    let argv: Vec<String> = ["sockdiag".to_string(), subcommand.to_string()].into_iter().chain(args).collect();
    // Only a NUL byte cannot be quoted; no shell could take that argument anyway.
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;
    use sockdiag_probes::Dimension;

    use super::*;
    use crate::cli::{Cli, Command, Format};
    use crate::matrix::MatrixKind;
    use crate::shard::Shard;

    /// `run` with nothing but the session: every other flag at its default.
    fn defaults() -> RunOptions {
        let Command::Run(run) = Cli::try_parse_from(["sockdiag", "run", "--session", "7"]).unwrap().command else {
            unreachable!()
        };
        run.options
    }

    /// Every flag away from its default, with words a shell must have quoted.
    fn everything_set() -> RunOptions {
        RunOptions {
            session: 28,
            profile: Some(PathBuf::from("/tmp/my profiles/it's $HOME.toml")),
            matrix: MatrixKind::Full,
            vary: vec![Dimension::Stdio, Dimension::Spawn, Dimension::Runtime],
            launcher_exit_ms: 300,
            repeat: 5,
            jobs: Some(3),
            report: Some(PathBuf::from("out dir/report.md")),
            keep_sandbox: true,
            settle_ms: Some(25),
            window_ms: Some(4500),
            quiet: true,
            verbose: true,
            user: Some("no body".to_string()),
            shard: Some(Shard { index: 2, count: 3 }),
        }
    }

    /// The options `run` parses from the printed command, through a POSIX shell's word splitting.
    fn parsed_back(command: &str) -> RunOptions {
        let words = shlex::split(command).unwrap_or_else(|| panic!("not shell words: {command}"));
        let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{command}: {e}"));
        let Command::Run(run) = cli.command else { panic!("not a run command: {command}") };
        assert_eq!(run.format, Format::Table, "{command}");
        run.options
    }

    /// What the reproduce command is meant to carry: everything but the output flags, which come back as defaults.
    fn reproducible(options: &RunOptions) -> RunOptions {
        let defaults = defaults();
        RunOptions {
            report: defaults.report,
            quiet: defaults.quiet,
            verbose: defaults.verbose,
            keep_sandbox: defaults.keep_sandbox,
            ..options.clone()
        }
    }

    #[test]
    fn every_flag_set_survives_the_reproduce_command() {
        let options = everything_set();
        let defaults = defaults();
        // The options differ from the defaults in every field, or the round trip proves nothing about that field.
        let RunOptions {
            session,
            profile,
            matrix,
            vary,
            launcher_exit_ms,
            repeat,
            jobs,
            report,
            keep_sandbox,
            settle_ms,
            window_ms,
            quiet,
            verbose,
            user,
            shard,
        } = &options;
        assert_ne!(*session, defaults.session);
        assert_ne!(*profile, defaults.profile);
        assert_ne!(*matrix, defaults.matrix);
        assert_ne!(*vary, defaults.vary);
        assert_ne!(*launcher_exit_ms, defaults.launcher_exit_ms);
        assert_ne!(*repeat, defaults.repeat);
        assert_ne!(*jobs, defaults.jobs);
        assert_ne!(*report, defaults.report);
        assert_ne!(*keep_sandbox, defaults.keep_sandbox);
        assert_ne!(*settle_ms, defaults.settle_ms);
        assert_ne!(*window_ms, defaults.window_ms);
        assert_ne!(*quiet, defaults.quiet);
        assert_ne!(*verbose, defaults.verbose);
        assert_ne!(*user, defaults.user);
        assert_ne!(*shard, defaults.shard);

        let command = reproduce_command(&options);
        assert_eq!(parsed_back(&command), reproducible(&options), "{command}");
    }

    #[test]
    fn defaults_survive_the_reproduce_command() {
        let options = defaults();
        let command = reproduce_command(&options);
        assert_eq!(command, "sockdiag run --session 7", "flags at their default are left out");
        assert_eq!(parsed_back(&command), options);
    }

    #[test]
    fn inspect_command_survives_a_shell() {
        for argv in [
            &["sockdiag", "inspect", "--session", "3"][..],
            &["sockdiag", "inspect", "--session", "28", "--profile", "/tmp/a b/it's.toml"],
        ] {
            let Command::Inspect(args) = Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
            let command = inspect_command(&args);
            let words = shlex::split(&command).unwrap();
            assert_eq!(words, argv, "{command}");
        }
    }
}
