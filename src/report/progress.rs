//! Progress while the runs go: a bar on stderr (runs done, failures so far, ETA) on a terminal, nothing otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sockdiag_probes::RunRecord;

/// The progress reporter; silent when stderr is not a terminal.
pub(crate) struct Progress {
    bar: ProgressBar,
    failures: AtomicUsize,
}

impl Progress {
    pub(crate) fn new(runs: usize) -> Progress {
        let target =
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(runs as u64), target);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {msg}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("0 failed");
        Progress { bar, failures: AtomicUsize::new(0) }
    }

    /// Called as each run finishes, from any runner thread.
    pub(crate) fn done(&self, run: &RunRecord) {
        if !run.outcome.healthy {
            let failed = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
            self.bar.set_message(format!("{failed} failed"));
        }
        self.bar.inc(1);
    }

    /// Clears the bar before the report is printed.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
