//! sockdiag: cli → profile → matrix → runner (sandbox, launcher, observers) → probes → report.

mod cli;
mod diagnosis;
mod error;
mod matrix;
mod observers;
mod profile;
mod report;
mod runner;

use std::io::IsTerminal;

use clap::Parser;

use cli::{Cli, Command, RunArgs};
use diagnosis::Diagnosis;
use error::{exit_code, EXIT_HEALTHY, EXIT_REPRODUCED, EXIT_USAGE};
use profile::Profile;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line naming the bad input; `--help` has the rest.
            let msg = e.to_string();
            eprintln!("sockdiag: {}", msg.lines().next().unwrap_or("bad arguments").trim_start_matches("error: "));
            std::process::exit(EXIT_USAGE);
        }
        Err(e) => e.exit(),
    };
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sockdiag: {err:#}");
            exit_code(&err)
        }
    };
    std::process::exit(code);
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Probes => {
            for p in sockdiag_probes::all_probes() {
                println!("{:<4} {}", p.id(), p.title());
            }
            Ok(EXIT_HEALTHY)
        }
        Command::Explain { id } => explain(&id),
        Command::Clean => {
            let leftovers = runner::leftovers::Leftovers::find();
            if leftovers.is_empty() {
                eprintln!("sockdiag: no leftovers");
            } else {
                eprintln!("sockdiag: {}", leftovers.remove());
            }
            Ok(EXIT_HEALTHY)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut profile = Profile::load(args.profile.as_deref())?;
    if let Some(w) = args.window_ms {
        profile.observe.window_ms = w;
    }
    profile.check_command(&profile.real_vars(args.session))?;
    let configs = matrix::expand(args.matrix, args.repeat as usize);
    let jobs = args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()), |j| j as usize);
    report_leftovers();
    let token = run_token();
    runner::interrupt::install(token.clone(), args.keep_sandbox)?;
    let plan = runner::Plan { profile: &profile, session: args.session, keep_sandbox: args.keep_sandbox, token };
    let runs = runner::run_all(&plan, &configs, jobs, &|_| {})?;
    let diagnosis = Diagnosis::new(args.session, format!("{} ({})", profile.name, profile.source), runs);
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = report::render(&diagnosis, args.format, color)?;
    print!("{text}");
    if let Some(path) = &args.report {
        let plain = report::render(&diagnosis, args.format, false)?;
        std::fs::write(path, plain).map_err(|e| error::UsageError(format!("--report {}: {e}", path.display())))?;
    }
    Ok(if diagnosis.reproduced() { EXIT_REPRODUCED } else { EXIT_HEALTHY })
}

fn explain(id: &str) -> anyhow::Result<i32> {
    let probes = sockdiag_probes::all_probes();
    let Some(p) = probes.iter().find(|p| p.id().eq_ignore_ascii_case(id)) else {
        let known: Vec<&str> = probes.iter().map(|p| p.id()).collect();
        return error::usage(format!("unknown hypothesis {id:?}; known: {}", known.join(", ")));
    };
    println!(
        "{}: {}\n\nWhat is checked:\n  {}\n\nHow to fix the usual causes:\n  {}",
        p.id(),
        p.title(),
        p.checks(),
        p.fix()
    );
    Ok(EXIT_HEALTHY)
}

/// A killed earlier invocation may have left workers and sandboxes: say so, and remove them.
fn report_leftovers() {
    let leftovers = runner::leftovers::Leftovers::find();
    if !leftovers.is_empty() {
        eprintln!("sockdiag: a previous sockdiag was killed: {}", leftovers.remove());
    }
}

/// Identifies this invocation's processes: our pid and start time.
fn run_token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}
