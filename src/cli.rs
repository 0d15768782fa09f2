//! Command-line arguments, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use sockdiag_probes::Dimension;

use crate::launcher::LaunchArgs;
use crate::matrix::{parse_dimension, MatrixKind};
use crate::shard::Shard;

#[derive(Parser)]
#[command(
    name = "sockdiag",
    version,
    about = "Diagnoses workers that log \"listening\" but cannot be reached",
    long_about = "Spawns the real worker under a matrix of configurations, watches it at kernel level (processes, \
                  inotify, the sockets the kernel bound, output, the session row) and tells, for each hypothesis, \
                  whether it is confirmed or ruled out, with the evidence.",
    after_help = "Examples:\n  \
                  sockdiag run --session 28 --profile fixtures/profiles/crash-cleanup.toml\n  \
                  sockdiag run --session 28 --profile my-worker.toml --matrix full --format json\n  \
                  sockdiag run --session 28 --profile my-worker.toml --report report.md\n  \
                  sockdiag check --baseline baseline.json --session 28 --profile my-worker.toml\n  \
                  sockdiag run --session 28 --profile my-worker.toml --shard 1/4 --report shard-1.json\n  \
                  sockdiag merge shard-*.json --baseline baseline.json\n  \
                  sockdiag render report.json --format markdown\n  \
                  sockdiag inspect --session 28 --profile my-worker.toml\n  \
                  sockdiag probes\n  \
                  sockdiag explain H9\n\n\
                  Exit codes: 0 healthy in every configuration, 1 failure reproduced, 2 bad input, 3 internal error."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Spawn the worker under a matrix of configurations and diagnose it
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Run, then compare each verdict's status with a saved JSON report (exit 0 same, 1 different, 2 bad baseline);
    /// takes every option of `run`
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Re-judge the runs of a saved JSON report with this version's probes and print it in another format
    Render(RenderArgs),
    /// Join the JSON reports of the shards of one matrix (`--shard i/n`) and judge all their runs together
    Merge(MergeArgs),
    /// Look at the live system (processes, sockets, the expected path, its directory, the session row) and
    /// diagnose what one look can decide; spawns nothing
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// List the hypotheses
    Probes,
    /// Kill the workers and remove the sandboxes left by a sockdiag that was killed outright
    Clean,
    /// Say what is checked for a hypothesis and how to fix its usual causes
    Explain {
        /// A hypothesis id, e.g. H4
        id: String,
    },
    /// Print a shell completion script (e.g. `sockdiag completions bash > /etc/bash_completion.d/sockdiag`)
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory
    Man {
        /// Write sockdiag.1 and a sockdiag-COMMAND.1 for each command here instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Starts a worker the way a hook does (used by `run`, not by people)
    #[command(name = "__launch", hide = true)]
    Launch(LaunchArgs),
    /// Kills what is left in an invocation's cgroup once sockdiag is gone (spawned by sockdiag itself)
    #[command(name = "__keep", hide = true)]
    Keep { cgroup: PathBuf },
}

const RUN_EXAMPLES: &str = "Examples:\n  \
    sockdiag run --session 28 --profile fixtures/profiles/crash-cleanup.toml\n  \
    sockdiag run --session 28 --profile my-worker.toml --matrix full --repeat 3 --jobs 4\n  \
    sockdiag run --session 28 --profile my-worker.toml --format json > report.json\n  \
    sockdiag run --session 28 --profile my-worker.toml --report report.md\n  \
    sockdiag run --session 28 --profile my-worker.toml --verbose\n\n\
    Exit codes: 0 healthy in every configuration, 1 failure reproduced, 2 bad input, 3 internal error.";

const CHECK_EXAMPLES: &str = "Examples:\n  \
    sockdiag run --session 28 --profile my-worker.toml --matrix full --repeat 3 --report baseline.json\n  \
    sockdiag check --baseline baseline.json --session 28 --profile my-worker.toml --matrix full --repeat 3\n  \
    sockdiag check --baseline baseline.json --session 28 --profile my-worker.toml --quiet --report now.json\n  \
    sockdiag check --baseline baseline.json --session 28 --profile my-worker.toml --format junit > check.xml\n  \
    sockdiag check --baseline baseline.json --session 28 --profile my-worker.toml --update-baseline\n\n\
    The run records the baseline where the worker behaves; each check runs the same matrix again and compares. \
    Every option of `run` works with `check`.\n\
    Exit codes: 0 the same verdicts as the baseline (or the baseline written), 1 some verdict differs, 2 bad input \
    or a bad baseline, 3 internal error.";

const INSPECT_EXAMPLES: &str = "Examples:\n  \
    sockdiag inspect --session 28                  # the installed claude-mem worker, as it runs now\n  \
    sockdiag inspect --session 28 --profile my-worker.toml\n  \
    sockdiag inspect --session 28 --profile my-worker.toml --format json --report inspect.md\n\n\
    Exit codes: 0 the socket is reachable and nothing is confirmed, 1 it is not or a hypothesis is confirmed, \
    2 bad input, 3 internal error.";

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) options: RunOptions,
    /// Output format on stdout
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

/// What `run` and `check` share: which worker, which configurations, how to observe and where to write the report.
/// [`RunOptions::reproduce_args`] turns it back into arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub(crate) struct RunOptions {
    /// The session id the worker serves (a positive integer)
    #[arg(long, value_name = "N", value_parser = parse_session, allow_hyphen_values = true)]
    pub(crate) session: u64,
    /// The worker's profile (TOML); default: the built-in claude-mem profile
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Which configurations to run
    #[arg(long, value_enum, default_value_t = DEFAULT_MATRIX)]
    pub(crate) matrix: MatrixKind,
    /// The dimensions the matrix varies: spawn, lifecycle, stdio, launches, runtime (default: all)
    #[arg(long, value_name = "DIM,...", value_delimiter = ',', value_parser = parse_dimension)]
    pub(crate) vary: Vec<Dimension>,
    /// How long a launcher that exits (like a hook that returns) waits after spawning the worker
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_LAUNCHER_EXIT_MS)]
    pub(crate) launcher_exit_ms: u64,
    /// Run each configuration K times
    #[arg(long, value_name = "K", default_value_t = DEFAULT_REPEAT, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) repeat: u32,
    /// Runs at a time (default: the number of cores)
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) jobs: Option<u32>,
    /// Also write the report to FILE: Markdown (REPORT_TEMPLATE.md), or JSON / JUnit XML when FILE ends in .json / .xml
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Keep each run's sandbox and print where it is
    #[arg(long)]
    pub(crate) keep_sandbox: bool,
    /// Overrides the profile's [observe] settle_ms
    #[arg(long, value_name = "MS")]
    pub(crate) settle_ms: Option<u64>,
    /// Overrides the profile's [observe] window_ms
    #[arg(long, value_name = "MS")]
    pub(crate) window_ms: Option<u64>,
    /// Print at most one line on stdout (run: the root cause; check: the differences); the exit code says the rest
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Print every verdict with its evidence, and every run, after the answer
    #[arg(long)]
    pub(crate) verbose: bool,
    /// Also run the worker as this user (name or uid; sockdiag must run as root): adds the permission dimension
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// Run only shard I of N: the runs of the expanded matrix (repeats included) whose place, counted from 1, is I
    /// modulo N; `sockdiag merge` joins the shards' JSON reports
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub(crate) shard: Option<Shard>,
}

/// `--matrix` when not given.
const DEFAULT_MATRIX: MatrixKind = MatrixKind::Quick;
/// `--launcher-exit-ms` when not given.
const DEFAULT_LAUNCHER_EXIT_MS: u64 = 0;
/// `--repeat` when not given.
const DEFAULT_REPEAT: u32 = 1;

impl RunOptions {
    /// The arguments of `run` that make the same diagnosis again, flags at their default left out. Every field is
    /// named here (a new one does not compile until it is handled), and this is the one place that decides which
    /// flags a "reproduce this" command carries.
    pub(crate) fn reproduce_args(&self) -> Vec<String> {
        let RunOptions {
            session,
            profile,
            matrix,
            vary,
            launcher_exit_ms,
            repeat,
            jobs,
            settle_ms,
            window_ms,
            user,
            shard,
            // Left out: they change where the results go and how much is printed, not what is run or observed.
            // `--report` would overwrite the reporter's file; `--quiet` would hide the diagnosis, `--verbose` only
            // adds to it; `--keep-sandbox` only keeps the run's files on disk afterwards.
            report: _,
            quiet: _,
            verbose: _,
            keep_sandbox: _,
        } = self;
        let mut args = ArgList::default();
        args.flag("--session", Some(session));
        args.flag("--profile", profile.as_ref().map(|p| p.display()));
        args.flag("--matrix", (*matrix != DEFAULT_MATRIX).then(|| value_name(*matrix)));
        args.flag("--vary", (!vary.is_empty()).then(|| vary.iter().map(|d| d.name()).collect::<Vec<_>>().join(",")));
        args.flag("--launcher-exit-ms", (*launcher_exit_ms != DEFAULT_LAUNCHER_EXIT_MS).then_some(launcher_exit_ms));
        args.flag("--repeat", (*repeat != DEFAULT_REPEAT).then_some(repeat));
        // Kept although it changes no configuration: how many runs share the cores changes their timing.
        args.flag("--jobs", jobs.as_ref());
        args.flag("--settle-ms", settle_ms.as_ref());
        args.flag("--window-ms", window_ms.as_ref());
        args.flag("--user", user.as_ref());
        // A shard's command runs that shard again; `merge` drops it to give the whole matrix's.
        args.flag("--shard", shard.as_ref());
        args.0
    }
}

/// Arguments being put back together: `--name value` pairs.
#[derive(Default)]
struct ArgList(Vec<String>);

impl ArgList {
    fn flag(&mut self, name: &str, value: Option<impl std::fmt::Display>) {
        if let Some(value) = value {
            self.0.extend([name.to_string(), value.to_string()]);
        }
    }
}

/// The name a `ValueEnum` value is given on the command line.
fn value_name(value: impl ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub(crate) struct InspectArgs {
    /// The session id the worker serves (a positive integer)
    #[arg(long, value_name = "N", value_parser = parse_session, allow_hyphen_values = true)]
    pub(crate) session: u64,
    /// The worker's profile (TOML); default: the built-in claude-mem profile
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Output format on stdout
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
    /// Also write the report to FILE: Markdown (REPORT_TEMPLATE.md), or JSON / JUnit XML when FILE ends in .json / .xml
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Print every verdict with its evidence, and every run, after the answer (table format)
    #[arg(long)]
    pub(crate) verbose: bool,
}

impl InspectArgs {
    /// The arguments of `inspect` that look again, every field named as in [`RunOptions::reproduce_args`].
    pub(crate) fn reproduce_args(&self) -> Vec<String> {
        // Left out: the format on stdout and the report file say where the results go, not what is looked at.
        let InspectArgs { session, profile, format: _, report: _, verbose: _ } = self;
        let mut args = ArgList::default();
        args.flag("--session", Some(session));
        args.flag("--profile", profile.as_ref().map(|p| p.display()));
        args.0
    }
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The saved JSON report (`--format json`) whose verdicts are expected
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: PathBuf,
    /// Write this run's JSON report to the baseline file instead of comparing
    #[arg(long)]
    pub(crate) update_baseline: bool,
    #[command(flatten)]
    pub(crate) run: RunOptions,
    /// Also print this run's report on stdout, as `run` does; the comparison then goes to stderr
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
}

#[derive(Args)]
pub(crate) struct RenderArgs {
    /// A JSON report saved by `sockdiag run --format json` (or `--update-baseline`)
    #[arg(value_name = "FILE")]
    pub(crate) saved: PathBuf,
    /// Output format on stdout
    #[arg(long, value_enum, default_value = "markdown")]
    pub(crate) format: Format,
    /// Also write the report to FILE: Markdown (REPORT_TEMPLATE.md), or JSON / JUnit XML when FILE ends in .json / .xml
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Print every verdict with its evidence, and every run, after the answer (table format)
    #[arg(long)]
    pub(crate) verbose: bool,
}

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// JSON reports of shards of one matrix (`run --shard I/N --report FILE.json`), in any order
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Output format on stdout
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
    /// Also write the merged report to FILE: Markdown, or JSON / JUnit XML when FILE ends in .json / .xml
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Compare the merge's verdicts with this saved JSON report, as `check` does (exit 0 same, 1 different)
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// The files must be shards of N (the size of a CI job matrix): a file of another count is bad input
    #[arg(long = "shards", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) shard_count: Option<u32>,
    /// Merge even if some shards are missing (they are named on stderr and recorded in the report); without it,
    /// missing shards are bad input
    #[arg(long)]
    pub(crate) partial: bool,
    /// Print at most one line on stdout (the root cause; with --baseline, the differences)
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Print every verdict with its evidence, and every run, after the answer (table format)
    #[arg(long)]
    pub(crate) verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables and evidence for a terminal or a CI log
    Table,
    /// The whole diagnosis, runs and events included (DESIGN §5 fields)
    Json,
    /// REPORT_TEMPLATE.md rendered: root cause, tables, timelines (Mermaid and text), environment
    Markdown,
    /// JUnit XML: a testsuite per configuration (its runs' outcome, then a testcase per hypothesis)
    Junit,
}

fn parse_session(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("the session must be a positive integer".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// The options of a subcommand: long name and short letter.
    fn options(name: &str) -> Vec<(Option<String>, Option<char>)> {
        let cli = Cli::command();
        let command = cli.find_subcommand(name).unwrap_or_else(|| panic!("no {name}"));
        command.get_arguments().map(|a| (a.get_long().map(str::to_string), a.get_short())).collect()
    }

    #[test]
    fn check_takes_every_option_of_run() {
        let check = options("check");
        let missing: Vec<_> = options("run").into_iter().filter(|o| !check.contains(o)).collect();
        assert_eq!(missing, [], "`check` should take every option `run` takes");
    }

    #[test]
    fn verbose_and_format_parse_for_run_and_check() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).command;
        let Command::Run(run) = parse(&["sockdiag", "run", "--session", "1", "--verbose", "--format", "json"]) else {
            unreachable!()
        };
        assert!(run.options.verbose && run.format == Format::Json);
        let check = ["sockdiag", "check", "--baseline", "b.json", "--session", "1", "--verbose", "--format", "junit"];
        let Command::Check(check) = parse(&check) else { unreachable!() };
        assert!(check.run.verbose && check.format == Some(Format::Junit));
        let Command::Check(plain) = parse(&["sockdiag", "check", "--baseline", "b.json", "--session", "1"]) else {
            unreachable!()
        };
        assert!(!plain.run.verbose && plain.format.is_none(), "without --format, check prints only the comparison");
    }
}
