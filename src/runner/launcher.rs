//! Starting a launcher (`sockdiag __launch`, see `crate::launcher`) for one run, and turning its reports into the
//! run's events: the workers' pids, their output lines, the exits it reaped. Argv only, never a shell.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use sockdiag_probes::{EventKind, Lifecycle, RunConfig, SpawnMode, StdioMode, Stream};

use super::marker::RUN_MARKER;
use super::reaper::Reaper;
use crate::launcher::protocol::{self, Report};
use crate::launcher::{stdio_name, SUBCOMMAND, WORKER_ENV_PREFIX};
use crate::observers::output::{is_listening_line, LineSplitter, Markers};
use crate::observers::{fs, Msg, Sink};

/// Everything needed to start one run's launcher.
pub(crate) struct Launch<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: &'a Path,
    pub(crate) config: RunConfig,
    /// How long a launcher that exits waits after spawning.
    pub(crate) exit_after: Duration,
    /// Where stdout and stderr go in file mode.
    pub(crate) output_files: (PathBuf, PathBuf),
    pub(crate) marker: String,
    /// The uid the worker runs as, when it is not the harness's own (`--user`).
    pub(crate) user: Option<u32>,
    /// The run's cgroup, which the launcher joins before it spawns the worker.
    pub(crate) cgroup: Option<&'a Path>,
}

/// Starts the launcher, which puts itself in a session of its own (as a hook runs apart from the tool that calls it), so an attached
/// worker shares the launcher's session and group, and a detached one has its own.
pub(crate) fn spawn(launch: &Launch, sink: &Sink, reaper: &Reaper) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find sockdiag's own executable")?;
    let config = launch.config;
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND).args(["--stdio", stdio_name(config.stdio), "--launches", &config.launches.to_string()]);
    if config.spawn == SpawnMode::Detached {
        cmd.arg("--detached");
    }
    if config.lifecycle == Lifecycle::Exits {
        cmd.args(["--exit-after-ms", &launch.exit_after.as_millis().to_string()]);
    }
    if let Some(uid) = launch.user {
        cmd.args(["--user", &uid.to_string()]);
    }
    if let Some(dir) = launch.cgroup {
        cmd.arg("--cgroup").arg(dir);
    }
    cmd.args(["--harness", &std::process::id().to_string()]);
    if config.stdio == StdioMode::File {
        cmd.arg("--stdout-file").arg(&launch.output_files.0).arg("--stderr-file").arg(&launch.output_files.1);
    }
    cmd.arg("--").arg(launch.program).args(&launch.args);
    cmd.current_dir(launch.cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd.envs(launch.env.iter().map(|(k, v)| (format!("{WORKER_ENV_PREFIX}{k}"), v))).env(RUN_MARKER, &launch.marker);
    // The launcher makes its own session as it starts: without a pre_exec hook the standard library spawns with
    // posix_spawn (vfork), not a fork that copies all of sockdiag's page tables.
    reaper.spawn(&mut cmd, sink, true).map_err(|e| match e.raw_os_error() {
        // The profile's command line and environment are more than one exec can carry: the input's fault.
        Some(libc::E2BIG) => crate::error::UsageError(format!(
            "worker.command and worker.env are too long for one exec ({} bytes; the kernel refuses with E2BIG: \
             at most 128 KiB per argument, ARG_MAX in all)",
            launch.args.iter().map(String::len).sum::<usize>()
                + launch.env.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        ))
        .into(),
        _ => anyhow::Error::new(e).context("cannot start the launcher"),
    })
}

/// Reads the launcher's reports on a thread of its own until it closes its stdout.
/// `expected`: the socket file clients look for (none for a TCP endpoint).
pub(crate) fn read_reports(
    stdout: ChildStdout,
    markers: Markers,
    expected: Option<PathBuf>,
    sink: Sink,
) -> std::io::Result<()> {
    // A worker can use up the process limit: no thread is an error of the run, not a panic of sockdiag.
    let spawned = std::thread::Builder::new().name("launcher-reports".into()).spawn(move || {
        let mut reader = BufReader::with_capacity(128 * 1024, stdout);
        let mut splitters: HashMap<(usize, Stream), LineSplitter> = HashMap::new();
        while let Ok(Some((at, report))) = protocol::read(&mut reader) {
            let stamp = |kind| Msg::Event(sink.clock.stamp_ns(at, kind));
            match report {
                Report::Spawned { pid, .. } => sink.send(Msg::Worker { pid, at_ns: at }),
                Report::Output { slot, stream, bytes } => {
                    let splitter =
                        splitters.entry((slot, stream)).or_insert_with(|| LineSplitter::new(stream, markers.clone()));
                    emit_lines(splitter.feed(&bytes, sink.clock.instant_of_ns(at)), true, expected.as_deref(), &sink);
                }
                Report::Exited { pid, status, .. } => sink.send(stamp(EventKind::Exited { pid, status })),
                Report::Failed { text } => sink.send(stamp(EventKind::Note { text: format!("launcher: {text}") })),
            }
        }
        for splitter in splitters.values_mut() {
            emit_lines(splitter.finish(Instant::now()), false, expected.as_deref(), &sink);
        }
        sink.send(Msg::Closed);
    });
    spawned.map(drop)
}

/// Records lines, stamped when the launcher read them; when they have just arrived (`live`), right after a
/// "listening" line, looks at the expected path (did the file exist yet?).
fn emit_lines(lines: Vec<(Instant, EventKind)>, live: bool, expected: Option<&Path>, sink: &Sink) {
    for (at, line) in lines {
        let listening = is_listening_line(&line);
        sink.send(Msg::Event(sink.clock.stamp_at(at, line)));
        if let Some(expected) = expected.filter(|_| listening && live) {
            sink.send(Msg::Event(sink.clock.stamp(fs::file_check(expected))));
        }
    }
}
