//! sockdiag: cli → profile → matrix → runner (sandbox, launcher, observers) → probes → report.

mod check;
mod cli;
mod context;
mod diagnosis;
mod error;
mod explain;
mod identity;
mod inspect;
mod launcher;
mod matrix;
mod observers;
mod profile;
mod report;
mod runner;

use clap::Parser;

use cli::{CheckArgs, Cli, Command, Format, InspectArgs, RenderArgs, RunArgs, RunOptions};
use context::Environment;
use diagnosis::Diagnosis;
use error::{exit_code, EXIT_DIFFERS, EXIT_HEALTHY, EXIT_REPRODUCED, EXIT_USAGE};
use profile::Profile;
use report::Style;

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
        Command::Check(args) => check(args),
        Command::Render(args) => render(args),
        Command::Inspect(args) => inspect(args),
        Command::Probes => Ok(explain::list(Style::for_stdout())),
        Command::Explain { id } => explain::one(&id, Style::for_stdout()),
        Command::Clean => {
            let leftovers = runner::leftovers::Leftovers::find();
            if leftovers.is_empty() {
                eprintln!("sockdiag: no leftovers");
            } else {
                eprintln!("sockdiag: {}", leftovers.remove());
            }
            Ok(EXIT_HEALTHY)
        }
        Command::Launch(args) => Ok(launcher::main(args)),
        Command::Keep { cgroup } => Ok(runner::keeper::main(&cgroup)),
    }
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let diagnosis = diagnose(&args.options)?;
    let style = Style::for_stdout();
    if args.options.quiet {
        print!("{}", report::quiet_line(&diagnosis).unwrap_or_default());
    } else {
        print!("{}", report::render(&diagnosis, args.format, style)?);
    }
    write_report(&diagnosis, args.options.report.as_deref())?;
    Ok(if diagnosis.reproduced() { EXIT_REPRODUCED } else { EXIT_HEALTHY })
}

/// Runs, then compares with the baseline (read first: a bad baseline costs no run).
fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let baseline = if args.update_baseline { None } else { Some(check::load(&args.baseline)?) };
    let diagnosis = diagnose(&args.run)?;
    write_report(&diagnosis, args.run.report.as_deref())?;
    let Some(baseline) = baseline else {
        let json = report::render(&diagnosis, Format::Json, Style::PLAIN)?;
        std::fs::write(&args.baseline, json)
            .map_err(|e| error::UsageError(format!("--baseline {}: {e}", args.baseline.display())))?;
        if !args.run.quiet {
            println!("sockdiag: baseline written to {}", args.baseline.display());
        }
        return Ok(EXIT_HEALTHY);
    };
    let diffs = check::compare(&baseline, &diagnosis.verdicts);
    let rel = |t: &str| report::relative(&diagnosis, t);
    match (diffs.is_empty(), args.run.quiet) {
        (true, true) => {}
        (true, false) => println!(
            "sockdiag: the {} verdicts are the same as in {}",
            diagnosis.verdicts.len(),
            args.baseline.display()
        ),
        (false, true) => println!("{}", check::one_line(&diffs)),
        (false, false) => {
            println!("sockdiag: {} verdict(s) differ from {}\n", diffs.len(), args.baseline.display());
            println!("{}", check::table(&diffs, rel, Style::for_stdout()));
            if let Some(cause) = &diagnosis.root_cause {
                println!("\nMost likely root cause now: {}", rel(cause));
            }
        }
    }
    Ok(if diffs.is_empty() { EXIT_HEALTHY } else { EXIT_DIFFERS })
}

/// Judges the runs of a saved JSON report again and prints them in another format.
fn render(args: RenderArgs) -> anyhow::Result<i32> {
    let name = args.saved.display();
    let text = std::fs::read_to_string(&args.saved).map_err(|e| error::UsageError(format!("{name}: {e}")))?;
    let saved = serde_json::from_str(&text)
        .map_err(|e| error::UsageError(format!("{name}: not a sockdiag JSON report: {e}")))?;
    let diagnosis = Diagnosis::from_saved(saved);
    print!("{}", report::render(&diagnosis, args.format, Style::for_stdout())?);
    write_report(&diagnosis, args.report.as_deref())?;
    Ok(if diagnosis.reproduced() { EXIT_REPRODUCED } else { EXIT_HEALTHY })
}

/// One look at the live system, nothing spawned → the probes a look can decide.
fn inspect(args: InspectArgs) -> anyhow::Result<i32> {
    let profile = Profile::load(args.profile.as_deref())?;
    let environment = Environment::detect();
    let live = inspect::look(&profile, args.session)?;
    let name = format!("{} ({})", profile.name, profile.source);
    let command = context::inspect_command(&args);
    let diagnosis = Diagnosis::inspect(args.session, name, command, environment, live);
    print!("{}", report::render(&diagnosis, args.format, Style::for_stdout())?);
    write_report(&diagnosis, args.report.as_deref())?;
    Ok(if diagnosis.reproduced() { EXIT_REPRODUCED } else { EXIT_HEALTHY })
}

/// `--user NAME`: the uid of an existing user; switching users needs root.
fn resolve_user(name: &str) -> anyhow::Result<u32> {
    if !nix::unistd::geteuid().is_root() {
        return error::usage(format!(
            "--user {name}: running the worker as another user needs sockdiag to run as root"
        ));
    }
    match identity::Identity::of_user(name) {
        Some(who) => Ok(who.uid),
        None => error::usage(format!("--user {name}: no such user")),
    }
}

/// profile → matrix → runner → probes.
fn diagnose(opts: &RunOptions) -> anyhow::Result<Diagnosis> {
    let mut profile = Profile::load(opts.profile.as_deref())?;
    if let Some(s) = opts.settle_ms {
        profile.observe.settle_ms = s;
    }
    if let Some(w) = opts.window_ms {
        profile.observe.window_ms = w;
    }
    let real = profile.real_vars(opts.session);
    profile.check_command(&real)?;
    // Before the runs: once the reaper reaps every child of ours, a `--version` query could not be waited for.
    let mut environment = Environment::detect();
    let runtimes = runner::runtime::find_installed(&profile);
    let substitutes = runner::runtime::substitutes(&profile, &real, &runtimes);
    let user = opts.user.as_deref().map(resolve_user).transpose()?;
    let configs = matrix::expand(opts.matrix, &opts.vary, opts.repeat as usize, &substitutes, user);
    let jobs = opts.jobs.map_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()), |j| j as usize);
    report_leftovers();
    let supervisor = runner::Supervisor::start(run_token(), opts.keep_sandbox)?;
    runner::interrupt::install(supervisor.clone())?;
    environment.sources = supervisor.sources();
    let plan = runner::Plan {
        profile: &profile,
        supervisor: &supervisor,
        session: opts.session,
        keep_sandbox: opts.keep_sandbox,
        launcher_exit: std::time::Duration::from_millis(opts.launcher_exit_ms),
        runtimes,
        database: runner::DatabaseTemplate::prepare(&profile, opts.session, &supervisor.temp_dirs)?,
    };
    let progress = report::progress::Progress::new(configs.len());
    let runs = runner::run_all(&plan, &configs, jobs, &|run| progress.done(run))?;
    progress.finish();
    let name = format!("{} ({})", profile.name, profile.source);
    Ok(Diagnosis::new(opts.session, name, context::reproduce_command(opts), environment, runs))
}

/// `--report FILE`, in the format its name asks for, without colour.
fn write_report(diagnosis: &Diagnosis, path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = report::render(diagnosis, report::format_for_file(path), Style::PLAIN)?;
    std::fs::write(path, text).map_err(|e| error::UsageError(format!("--report {}: {e}", path.display())))?;
    Ok(())
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
