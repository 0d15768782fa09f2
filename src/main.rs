//! sockdiag: cli → profile → matrix → runner (sandbox, launcher, observers) → probes → report.

mod arg_error;
mod check;
mod cli;
mod confine;
mod context;
mod diagnosis;
mod error;
mod explain;
mod identity;
mod input;
mod inspect;
mod launcher;
mod matrix;
mod merge;
mod observers;
mod profile;
mod report;
mod runner;
mod shard;
mod visible;

use std::path::Path;

use clap::{CommandFactory, Parser};

use cli::{CheckArgs, Cli, Command, Format, InspectArgs, MergeArgs, RenderArgs, RunArgs, RunOptions};
use context::Environment;
use diagnosis::Diagnosis;
use error::{exit_code, EXIT_DIFFERS, EXIT_HEALTHY, EXIT_REPRODUCED};
use profile::Profile;
use report::Style;

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| arg_error::exit(e, Cli::command().get_styles()));
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            // An error may quote the profile, a path or what the worker wrote.
            eprintln!("sockdiag: {}", visible::visible_lines(&format!("{err:#}")));
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
        Command::Merge(args) => merge(args),
        Command::Inspect(args) => inspect(args),
        Command::Probes => Ok(explain::list(Style::for_stdout())),
        Command::Explain { id } => explain::one(&id, Style::for_stdout()),
        Command::Clean => {
            match runner::leftovers::Leftovers::find().remove() {
                Some(done) => eprintln!("sockdiag: {}", visible::visible_lines(&done)),
                None => eprintln!("sockdiag: no leftovers"),
            }
            Ok(EXIT_HEALTHY)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sockdiag", &mut std::io::stdout());
            Ok(EXIT_HEALTHY)
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::Launch(args) => Ok(launcher::main(args)),
        Command::Keep { cgroup } => Ok(runner::keeper::main(&cgroup)),
    }
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let diagnosis = diagnose(&args.options, &mut |_| Ok(()))?;
    let style = Style::for_stdout().verbose(args.options.verbose);
    if args.options.quiet {
        print!("{}", report::quiet_line(&diagnosis).unwrap_or_default());
    } else {
        print!("{}", report::render(&diagnosis, args.format, style)?);
    }
    write_report(&diagnosis, args.options.report.as_deref())?;
    Ok(if diagnosis.reproduced() { EXIT_REPRODUCED } else { EXIT_HEALTHY })
}

/// Runs, then compares with the baseline (read first, and matched against the matrix before any run: a bad
/// baseline costs no run). With `--format`, stdout carries the run's report as `run` prints it, and what `check`
/// says of the baseline goes to stderr.
fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let baseline = if args.update_baseline { None } else { Some(check::load(&args.baseline)?) };
    let mut expected = None;
    let diagnosis = diagnose(&args.run, &mut |matrix| {
        expected = baseline.as_ref().map(|b| b.expected(matrix)).transpose()?;
        Ok(())
    })?;
    write_report(&diagnosis, args.run.report.as_deref())?;
    let format = args.format.filter(|_| !args.run.quiet);
    if let Some(format) = format {
        print!("{}", report::render(&diagnosis, format, Style::for_stdout().verbose(args.run.verbose))?);
    }
    let (say, style): (fn(&str), Style) = match format {
        Some(_) => (|text| eprint!("{text}"), Style::for_stderr()),
        None => (|text| print!("{text}"), Style::for_stdout()),
    };
    let Some(expected) = expected else {
        let json = report::render(&diagnosis, Format::Json, Style::PLAIN)?;
        std::fs::write(&args.baseline, json)
            .map_err(|e| error::UsageError(format!("--baseline {}: {e}", args.baseline.display())))?;
        if !args.run.quiet {
            say(&format!("sockdiag: baseline written to {}\n", args.baseline.display()));
        }
        return Ok(EXIT_HEALTHY);
    };
    let (text, code) = compare(&diagnosis, &expected, &args.baseline, args.run.quiet, style);
    say(&text);
    Ok(code)
}

/// How the verdicts differ from the baseline's (a table, one line with `quiet`, or that they are the same), and
/// the exit code of a comparison.
fn compare(
    diagnosis: &Diagnosis,
    expected: &[(String, sockdiag_probes::Status)],
    path: &Path,
    quiet: bool,
    style: Style,
) -> (String, i32) {
    let diffs = check::compare(expected, &diagnosis.verdicts);
    let rel = |t: &str| report::shown(diagnosis, t);
    let text = match (diffs.is_empty(), quiet) {
        (true, true) => String::new(),
        (true, false) => {
            format!("sockdiag: the {} verdicts are the same as in {}\n", diagnosis.verdicts.len(), path.display())
        }
        (false, true) => format!("{}\n", check::one_line(&diffs)),
        (false, false) => {
            let mut text = format!("sockdiag: {} verdict(s) differ from {}\n\n", diffs.len(), path.display());
            text += &format!("{}\n", check::table(&diffs, rel, style));
            if let Some(cause) = &diagnosis.root_cause {
                text += &format!("\nMost likely root cause now: {}\n", rel(cause));
            }
            text
        }
    };
    (text, if diffs.is_empty() { EXIT_HEALTHY } else { EXIT_DIFFERS })
}

/// Joins the shards' reports, judges their runs together, then prints the merge (or compares it with a baseline).
fn merge(args: MergeArgs) -> anyhow::Result<i32> {
    let baseline = args.baseline.as_deref().map(check::load).transpose()?;
    let diagnosis = merge::merge(&args.files, args.shard_count, args.partial)?;
    write_report(&diagnosis, args.report.as_deref())?;
    if let (Some(baseline), Some(path)) = (baseline, args.baseline.as_deref()) {
        let expected = baseline.expected(diagnosis.matrix.as_ref().expect("a merge records its matrix"))?;
        let (text, code) = compare(&diagnosis, &expected, path, args.quiet, Style::for_stdout());
        print!("{text}");
        return Ok(code);
    }
    if args.quiet {
        print!("{}", report::quiet_line(&diagnosis).unwrap_or_default());
    } else {
        print!("{}", report::render(&diagnosis, args.format, Style::for_stdout().verbose(args.verbose))?);
    }
    Ok(if diagnosis.reproduced() { EXIT_REPRODUCED } else { EXIT_HEALTHY })
}

/// `sockdiag man`: the page of sockdiag on stdout, or every command's page written into `dir`.
fn man(dir: Option<&Path>) -> anyhow::Result<i32> {
    let command = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(command, dir))
                .map_err(|e| error::UsageError(format!("--dir {}: {e}", dir.display())))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            return print_bytes(&page);
        }
    }
    Ok(EXIT_HEALTHY)
}

/// Writes to stdout; a reader that stops early (`| head`) is no error.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<i32> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(EXIT_HEALTHY),
    }
}

/// Judges the runs of a saved JSON report again and prints them in another format.
fn render(args: RenderArgs) -> anyhow::Result<i32> {
    let name = args.saved.display();
    let text =
        input::read_text(&args.saved, input::REPORT_MAX).map_err(|e| error::UsageError(format!("{name}: {e}")))?;
    let saved = serde_json::from_str(&text)
        .map_err(|e| error::UsageError(format!("{name}: not a sockdiag JSON report: {e}")))?;
    let diagnosis = Diagnosis::from_saved(saved);
    print!("{}", report::render(&diagnosis, args.format, Style::for_stdout().verbose(args.verbose))?);
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
    print!("{}", report::render(&diagnosis, args.format, Style::for_stdout().verbose(args.verbose))?);
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

/// profile → matrix → runner → probes. `before_runs` sees the matrix (the shard's part of it) before anything is
/// spawned, and may refuse it.
fn diagnose(
    opts: &RunOptions,
    before_runs: &mut dyn FnMut(&shard::Matrix) -> anyhow::Result<()>,
) -> anyhow::Result<Diagnosis> {
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
    let configurations = matrix::configurations(opts.matrix, &opts.vary, &substitutes, user, profile.production);
    let (matrix, configs) = shard::Matrix::new(configurations, opts.repeat as usize).split(opts.shard);
    before_runs(&matrix)?;
    if let (Some(shard), true) = (opts.shard, configs.is_empty()) {
        eprintln!("sockdiag: shard {shard} has no runs: the matrix has only {} run(s)", matrix.runs);
    }
    let jobs = opts.jobs.map_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()), |j| j as usize);
    let jobs = runner::within_inotify_limit(jobs, runner::inotify_instances());
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
        database: supervisor.unless_stopping(runner::DatabaseTemplate::prepare(
            &profile,
            opts.session,
            &supervisor.temp_dirs,
        ))?,
    };
    let progress = report::progress::Progress::new(configs.len());
    let runs = supervisor.unless_stopping(runner::run_all(&plan, &configs, jobs, &|run| progress.done(run)));
    drop(plan);
    supervisor.release_owner();
    let runs = runs?;
    progress.finish();
    let name = format!("{} ({})", profile.name, profile.source);
    Ok(Diagnosis::new(opts.session, name, context::reproduce_command(opts), environment, Some(matrix), runs))
}

/// `--report FILE`, in the format its name asks for, without colour.
fn write_report(diagnosis: &Diagnosis, path: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = report::render(diagnosis, report::format_for_file(path), Style::PLAIN)?;
    std::fs::write(path, text).map_err(|e| error::UsageError(format!("--report {}: {e}", path.display())))?;
    Ok(())
}

/// A killed earlier invocation may have left workers and sandboxes: say so, and remove them.
fn report_leftovers() {
    if let Some(done) = runner::leftovers::Leftovers::find().remove() {
        eprintln!("sockdiag: a previous sockdiag was killed: {}", visible::visible_lines(&done));
    }
}

/// Identifies this invocation's processes: our pid and start time.
fn run_token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}
