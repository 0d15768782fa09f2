//! The signals that end sockdiag in the middle of a matrix (Ctrl-C, SIGTERM, a closed terminal's SIGHUP,
//! SIGQUIT): every process of this invocation gets SIGTERM, then SIGKILL after the grace period, the temporary
//! directories are removed (unless kept), and sockdiag exits 128 + the signal. A second signal skips the grace.

use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::supervisor::Supervisor;

/// Installs the handler for this invocation.
pub(crate) fn install(supervisor: Arc<Supervisor>) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::spawn(move || {
        let mut stopping = false;
        for sig in signals.forever() {
            if stopping {
                say(&format!("{}, killing every worker now", name(sig)));
                supervisor.hurry();
                continue;
            }
            stopping = true;
            say(&format!("{}, stopping every worker", name(sig)));
            let stopper = supervisor.clone();
            let spawned = std::thread::Builder::new().spawn(move || {
                stopper.shut_down();
                std::process::exit(128 + sig);
            });
            // No thread to spare (a worker used up the process limit): stop here, without the second-signal hurry.
            if spawned.is_err() {
                supervisor.shut_down();
                std::process::exit(128 + sig);
            }
        }
    });
    Ok(())
}

/// A line on stderr that may fail: after SIGHUP the terminal is gone, and `eprintln!` would panic.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "sockdiag: {text}");
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "interrupted",
        SIGHUP => "the terminal closed (SIGHUP)",
        SIGQUIT => "quit (SIGQUIT)",
        _ => "terminated",
    }
}
