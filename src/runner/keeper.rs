//! The keeper (`sockdiag __keep DIR`, hidden): one small process per invocation, outside the invocation's cgroup,
//! that outlives sockdiag. Its stdin is a pipe whose only writer is sockdiag, so it reads end of file exactly when
//! sockdiag is gone, however it went (SIGKILL included); it then kills whatever is left in the cgroup and removes
//! it. Workers do not outlive a killed sockdiag.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;

/// The hidden subcommand's name.
pub(crate) const SUBCOMMAND: &str = "__keep";

/// Starts the keeper of the cgroup at `dir`. The write end of its stdin stays open, unused, until sockdiag exits
/// (it is close-on-exec, so no launcher or worker holds it).
pub(crate) fn start(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find sockdiag's own executable")?;
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the cgroup keeper")?;
    std::mem::forget(child.stdin.take());
    Ok(())
}

/// Runs the keeper; returns its exit code.
pub(crate) fn main(dir: &Path) -> i32 {
    // Out of the terminal's session: a Ctrl-C or a closed terminal reaches sockdiag, which stops the workers
    // itself; the keeper must still be there if sockdiag is killed outright.
    let _ = nix::unistd::setsid();
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    if dir.exists() {
        super::cgroup::kill_orphan(dir);
    }
    0
}
