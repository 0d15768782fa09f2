//! Command-line arguments, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use sockdiag_probes::Dimension;

use crate::launcher::LaunchArgs;
use crate::matrix::{parse_dimension, MatrixKind};

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
    Run(RunArgs),
    /// Run, then compare each verdict's status with a saved JSON report (exit 0 same, 1 different, 2 bad baseline)
    Check(CheckArgs),
    /// Re-judge the runs of a saved JSON report with this version's probes and print it in another format
    Render(RenderArgs),
    /// Look at the live system (processes, sockets, the expected path, its directory, the session row) and
    /// diagnose what one look can decide; spawns nothing
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
    /// Starts a worker the way a hook does (used by `run`, not by people)
    #[command(name = "__launch", hide = true)]
    Launch(LaunchArgs),
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) options: RunOptions,
    /// Output format on stdout
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

/// What `run` and `check` share: which worker, which configurations, how to observe and where to write the report.
#[derive(Args)]
pub(crate) struct RunOptions {
    /// The session id the worker serves (a positive integer)
    #[arg(long, value_name = "N", value_parser = parse_session, allow_hyphen_values = true)]
    pub(crate) session: u64,
    /// The worker's profile (TOML); default: the built-in claude-mem profile
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Which configurations to run
    #[arg(long, value_enum, default_value = "quick")]
    pub(crate) matrix: MatrixKind,
    /// The dimensions the matrix varies: spawn, lifecycle, stdio, launches, runtime (default: all)
    #[arg(long, value_name = "DIM,...", value_delimiter = ',', value_parser = parse_dimension)]
    pub(crate) vary: Vec<Dimension>,
    /// How long a launcher that exits (like a hook that returns) waits after spawning the worker
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub(crate) launcher_exit_ms: u64,
    /// Run each configuration K times
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
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
    /// Also run the worker as this user (name or uid; sockdiag must run as root): adds the permission dimension
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,
}

#[derive(Args)]
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
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables and evidence for a terminal or a CI log
    Table,
    /// The whole diagnosis, runs and events included (DESIGN §5 fields)
    Json,
    /// REPORT_TEMPLATE.md rendered: root cause, tables, timelines (Mermaid and text), environment
    Markdown,
    /// JUnit XML: one testcase per hypothesis (per configuration group where it applies)
    Junit,
}

fn parse_session(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("the session must be a positive integer".to_string()),
    }
}
