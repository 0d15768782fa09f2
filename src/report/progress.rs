//! Progress while the runs go: a bar on stderr (runs done, failures so far, ETA) on a terminal, nothing otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sockdiag_probes::RunRecord;

/// The progress reporter; silent when stderr is not a terminal.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// Failures so far. Held while the bar moves: runner threads finish at once, and the count shown must never
    /// run ahead of the runs done ("18/96 runs, 19 failed").
    failures: Mutex<usize>,
}

impl Progress {
    pub(crate) fn new(runs: usize) -> Progress {
        let target =
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Progress::drawn_to(runs, target)
    }

    fn drawn_to(runs: usize, target: ProgressDrawTarget) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(runs as u64), target);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {msg}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("0 failed");
        Progress { bar, failures: Mutex::new(0) }
    }

    /// Called as each run finishes, from any runner thread.
    pub(crate) fn done(&self, run: &RunRecord) {
        self.finished(run.outcome.healthy);
    }

    /// One run more, and one failure more unless it was healthy: the position first, so that a frame drawn in
    /// between shows one failure too few, never one too many.
    fn finished(&self, healthy: bool) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.bar.inc(1);
        if !healthy {
            *failures += 1;
            self.bar.set_message(format!("{failures} failed"));
        }
    }

    /// Clears the bar before the report is printed.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failures the bar's message counts.
    fn failed(progress: &Progress) -> u64 {
        let message = progress.bar.message();
        message.strip_suffix(" failed").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{message:?}"))
    }

    #[test]
    fn position_and_failures_count_every_run() {
        let progress = Progress::drawn_to(10, ProgressDrawTarget::hidden());
        for healthy in [true, false, false, true, false, true, true] {
            progress.finished(healthy);
        }
        assert_eq!(progress.bar.position(), 7);
        assert_eq!(failed(&progress), 3);
    }

    #[test]
    fn failures_never_run_ahead_of_the_runs_done_across_threads() {
        let (threads, runs) = (8, 2000);
        let progress = Progress::drawn_to(threads * runs, ProgressDrawTarget::hidden());
        std::thread::scope(|s| {
            for _ in 0..threads {
                // Every run fails: the count then equals the position, and any lead of it shows.
                s.spawn(|| (0..runs).for_each(|_| progress.finished(false)));
            }
            s.spawn(|| {
                while progress.bar.position() < (threads * runs) as u64 {
                    // The message first: the position only grows, so it must be at least what the message says.
                    let failed = failed(&progress);
                    assert!(failed <= progress.bar.position(), "{failed} failed of {} runs", progress.bar.position());
                }
            });
        });
        assert_eq!(progress.bar.position(), (threads * runs) as u64);
        assert_eq!(failed(&progress), (threads * runs) as u64);
    }
}
