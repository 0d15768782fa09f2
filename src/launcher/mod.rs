//! The launcher: a process of its own (`sockdiag __launch`, hidden) that starts the worker the way a hook or a
//! replay script does — attached or detached, stdio ignored, piped (read or not) or sent to a file, once or twice
//! — then stays until its workers end, or exits after a delay like a hook that returns. A real launcher is what
//! makes "the reader of the pipe is gone" (EPIPE) and "the parent exited" happen for real. It reports the workers'
//! pids, the output it reads and the exits it reaps on its stdout (see `protocol`).

pub(crate) mod protocol;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sockdiag_probes::{ExitStatus, StdioMode, Stream};

use protocol::Report;

use crate::identity::Identity;

/// The hidden subcommand's name.
pub(crate) const SUBCOMMAND: &str = "__launch";

/// `sockdiag __launch`: how to start the worker. Spawned by the runner, never typed by people.
#[derive(clap::Args)]
pub(crate) struct LaunchArgs {
    /// Start each worker in a new session (setsid)
    #[arg(long)]
    pub(crate) detached: bool,
    #[arg(long, value_parser = parse_stdio)]
    pub(crate) stdio: StdioMode,
    #[arg(long, default_value_t = 1)]
    pub(crate) launches: u8,
    /// Exit this long after spawning; without it, stay until every worker has exited
    #[arg(long)]
    pub(crate) exit_after_ms: Option<u64>,
    /// Start each worker as this uid, with its groups (the launcher itself stays the invoker)
    #[arg(long)]
    pub(crate) user: Option<u32>,
    /// Join this cgroup (the run's) before spawning anything
    #[arg(long)]
    pub(crate) cgroup: Option<PathBuf>,
    /// The harness's pid: the launcher dies with it (SIGKILL of sockdiag included)
    #[arg(long)]
    pub(crate) harness: Option<i32>,
    #[arg(long)]
    pub(crate) stdout_file: Option<PathBuf>,
    #[arg(long)]
    pub(crate) stderr_file: Option<PathBuf>,
    /// The worker's argv
    #[arg(last = true, required = true)]
    pub(crate) command: Vec<String>,
}

/// The wire name of a stdio mode, between the runner and the launcher.
pub(crate) fn stdio_name(mode: StdioMode) -> &'static str {
    match mode {
        StdioMode::Ignore => "ignore",
        StdioMode::PipeDrained => "pipe-drained",
        StdioMode::PipeUndrained => "pipe-undrained",
        StdioMode::File => "file",
    }
}

fn parse_stdio(s: &str) -> Result<StdioMode, String> {
    [StdioMode::Ignore, StdioMode::PipeDrained, StdioMode::PipeUndrained, StdioMode::File]
        .into_iter()
        .find(|m| stdio_name(*m) == s)
        .ok_or_else(|| format!("unknown stdio mode {s:?}"))
}

/// Where reports go: the launcher's stdout, one whole report at a time.
type Out = Arc<Mutex<std::io::Stdout>>;

fn report(out: &Out, r: &Report) {
    // The harness may be gone: nothing to do about it here.
    let at = crate::observers::monotonic_ns();
    let _ = protocol::write(&mut *out.lock().unwrap_or_else(|e| e.into_inner()), at, r);
}

/// Runs the launcher; returns its exit code.
pub(crate) fn main(args: LaunchArgs) -> i32 {
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    if let Some(harness) = args.harness {
        if !die_with(harness) {
            return 1;
        }
    }
    // A session of its own, as a hook runs apart from the tool that calls it: an attached worker shares it.
    if let Err(e) = nix::unistd::setsid() {
        report(&out, &Report::Failed { text: format!("setsid: {e}") });
        return 1;
    }
    if let Some(dir) = &args.cgroup {
        if let Err(e) = crate::runner::cgroup::join(dir) {
            report(&out, &Report::Failed { text: format!("cannot join the run's cgroup {}: {e}", dir.display()) });
        }
    }
    let mut waiters = Vec::new();
    let mut readers = Vec::new();
    // Undrained pipes: held open, never read, until the launcher ends.
    let mut held: Vec<Box<dyn Read + Send>> = Vec::new();
    for slot in 0..args.launches as usize {
        let mut child = match start(&args) {
            Ok(c) => c,
            Err(e) => {
                report(&out, &Report::Failed { text: format!("cannot start {}: {e}", args.command[0]) });
                continue;
            }
        };
        let pid = child.id() as i32;
        report(&out, &Report::Spawned { slot, pid });
        let pipes: Vec<(Stream, Box<dyn Read + Send>)> = [
            child.stdout.take().map(|p| (Stream::Stdout, Box::new(p) as Box<dyn Read + Send>)),
            child.stderr.take().map(|p| (Stream::Stderr, Box::new(p) as Box<dyn Read + Send>)),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (stream, pipe) in pipes {
            if args.stdio == StdioMode::PipeDrained {
                let out = out.clone();
                readers.push(std::thread::spawn(move || forward(pipe, slot, stream, &out)));
            } else {
                held.push(pipe);
            }
        }
        let out = out.clone();
        waiters.push(std::thread::spawn(move || wait(child, slot, pid, &out)));
    }
    if let Some(ms) = args.exit_after_ms {
        // The configured behaviour: a hook that returns this long after spawning. Workers still running are
        // orphaned and come back to the harness, the child subreaper.
        std::thread::sleep(Duration::from_millis(ms));
        let _whole_reports_only = out.lock();
        std::process::exit(0);
    }
    for w in waiters {
        let _ = w.join();
    }
    drop(held);
    for r in readers {
        let _ = r.join();
    }
    0
}

/// Asks the kernel to kill the launcher when the harness's thread that started it ends, however it ends; false
/// when the harness is already gone (it died between the spawn and this call). The run's thread outlives its
/// launcher, so only the harness's death fires it. The worker is not tied to the launcher this way: a launcher that
/// exits (a hook that returns) must not take its worker with it.
fn die_with(harness: i32) -> bool {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    nix::unistd::getppid().as_raw() == harness
}

/// The profile's environment reaches the launcher under this prefix and only the worker under its own names:
/// a variable meant for the worker (LD_PRELOAD, MALLOC_*...) never acts on the launcher itself.
pub(crate) const WORKER_ENV_PREFIX: &str = "SOCKDIAG_WORKER_ENV_";

/// Spawns one worker as the arguments say.
fn start(args: &LaunchArgs) -> std::io::Result<Child> {
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]).stdin(Stdio::null());
    for (key, value) in std::env::vars_os() {
        if let Some(name) = key.to_str().and_then(|k| k.strip_prefix(WORKER_ENV_PREFIX)) {
            cmd.env_remove(&key);
            // The run marker is the harness's, not the profile's to change.
            if name != crate::runner::marker::RUN_MARKER {
                cmd.env(name, value);
            }
        }
    }
    match args.stdio {
        StdioMode::Ignore => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        StdioMode::PipeDrained | StdioMode::PipeUndrained => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        StdioMode::File => {
            cmd.stdout(append(args.stdout_file.as_deref())?).stderr(append(args.stderr_file.as_deref())?);
        }
    }
    if args.detached {
        // SAFETY: setsid is async-signal-safe and touches nothing of the parent's state.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
        }
    }
    if let Some(uid) = args.user {
        let who = Identity::of_user(&uid.to_string())
            .ok_or_else(|| std::io::Error::other(format!("no user with uid {uid}")))?;
        // All three in our own hook: std's `uid()` would run after the hooks, and setgroups needs root.
        // SAFETY: setgroups, setgid and setuid are async-signal-safe; the group list was built before the fork.
        unsafe {
            cmd.pre_exec(move || who.become_it());
        }
    }
    cmd.spawn()
}

/// Two launches share the run's output files: appends keep their lines whole.
fn append(path: Option<&Path>) -> std::io::Result<std::fs::File> {
    let path = path.ok_or_else(|| std::io::Error::other("stdio file mode without a file"))?;
    std::os::unix::fs::OpenOptionsExt::mode(std::fs::OpenOptions::new().create(true).append(true), 0o600).open(path)
}

/// Reads a worker's pipe as it comes and hands each chunk to the harness.
fn forward(mut pipe: Box<dyn Read + Send>, slot: usize, stream: Stream, out: &Out) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => report(out, &Report::Output { slot, stream, bytes: buf[..n].to_vec() }),
        }
    }
}

/// Reaps a worker (while the launcher lives) and reports how it ended. The exit is first awaited without
/// reaping; reaping and reporting then happen under the output lock, which the launcher holds as it exits: an exit
/// is either reported here or left, as a zombie with its status, to the harness (the child subreaper).
fn wait(child: Child, slot: usize, pid: i32, out: &Out) {
    let target = || Id::Pid(Pid::from_raw(pid));
    if waitid(target(), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT).is_err() {
        return;
    }
    let mut guard = out.lock().unwrap_or_else(|e| e.into_inner());
    let status = match waitid(target(), WaitPidFlag::WEXITED) {
        Ok(WaitStatus::Exited(_, code)) => ExitStatus::Code(code),
        Ok(WaitStatus::Signaled(_, signal, _)) => ExitStatus::Signal(signal as i32),
        _ => return,
    };
    // Reaped by hand: the handle has nothing left to wait for.
    drop(child);
    let _ = protocol::write(&mut *guard, crate::observers::monotonic_ns(), &Report::Exited { slot, pid, status });
}
