//! Where and how a diagnosis was made: the machine (OS, kernel, runtimes, sockdiag's version) and the command
//! that reproduces it. Reports print both; the JSON report keeps them so a saved report can be rendered later.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::RunOptions;
use crate::matrix::MatrixKind;

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
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text);
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(VERSION_DEADLINE).ok();
    if text.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let line = text?.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// The command that looks again, shell-quoted.
pub(crate) fn inspect_command(session: u64, profile: Option<&std::path::Path>) -> String {
    let mut argv: Vec<String> = vec!["sockdiag".into(), "inspect".into(), "--session".into(), session.to_string()];
    if let Some(p) = profile {
        argv.extend(["--profile".into(), p.display().to_string()]);
    }
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// The command that runs the same diagnosis again (same profile, matrix, repeats, window and user), shell-quoted.
pub(crate) fn reproduce_command(args: &RunOptions) -> String {
    let mut argv: Vec<String> = vec!["sockdiag".into(), "run".into(), "--session".into(), args.session.to_string()];
    if let Some(p) = &args.profile {
        argv.extend(["--profile".into(), p.display().to_string()]);
    }
    if args.matrix == MatrixKind::Full {
        argv.extend(["--matrix".into(), "full".into()]);
    }
    if !args.vary.is_empty() {
        let names: Vec<&str> = args.vary.iter().map(|d| d.name()).collect();
        argv.extend(["--vary".into(), names.join(",")]);
    }
    if args.launcher_exit_ms > 0 {
        argv.extend(["--launcher-exit-ms".into(), args.launcher_exit_ms.to_string()]);
    }
    if args.repeat > 1 {
        argv.extend(["--repeat".into(), args.repeat.to_string()]);
    }
    if let Some(w) = args.window_ms {
        argv.extend(["--window-ms".into(), w.to_string()]);
    }
    if let Some(u) = &args.user {
        argv.extend(["--user".into(), u.clone()]);
    }
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}
