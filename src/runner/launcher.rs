//! The launcher: starts the worker the way a hook or replay script would — argv only (never a shell), attached
//! or detached (a new session), with stdio ignored, piped or sent to a file.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use sockdiag_probes::{RunConfig, SpawnMode, StdioMode};

use super::reaper;
use crate::observers::Sink;

/// The environment variable every process of a run inherits, so leftovers can be found by `/proc/<pid>/environ`.
pub(crate) const RUN_MARKER: &str = "SOCKDIAG_RUN";

/// Everything needed to start one worker.
pub(crate) struct Launch<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: &'a Path,
    pub(crate) config: RunConfig,
    /// Where stdout and stderr go in file mode.
    pub(crate) output_files: (PathBuf, PathBuf),
    pub(crate) marker: String,
}

pub(crate) fn spawn(launch: &Launch, sink: &Sink) -> anyhow::Result<Child> {
    let mut cmd = Command::new(launch.program);
    cmd.args(&launch.args).current_dir(launch.cwd).stdin(Stdio::null());
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v))).env(RUN_MARKER, &launch.marker);
    match launch.config.stdio {
        StdioMode::Ignore => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        StdioMode::Pipe => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        StdioMode::File => {
            let open = |p: &Path| std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()));
            cmd.stdout(open(&launch.output_files.0)?).stderr(open(&launch.output_files.1)?);
        }
    }
    let detached = launch.config.spawn == SpawnMode::Detached;
    if detached {
        // SAFETY: setsid is async-signal-safe and touches nothing of the parent's state.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
        }
    }
    reaper::spawn(&mut cmd, sink, detached).with_context(|| format!("cannot start {}", launch.program.display()))
}
