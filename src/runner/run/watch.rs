//! The run's main loop: applies each message as it comes and looks at the worker when the state calls for it,
//! until the state says the run is over; and the waits of the run's other phases (the fs sync, the drain).

use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::state::{Input, Step, StopReason};
use super::{Run, DRAIN};
use crate::observers::Msg;

/// How long the fs observer gets to catch up.
const FS_SYNC: Duration = Duration::from_millis(500);
/// How long the observers must be silent, once the tree has exited, before the run stops listening to them.
const PENDING_QUIET: Duration = Duration::from_millis(10);

impl Run<'_> {
    /// The main loop: apply messages; look at /proc when something happened or the backoff timer fires.
    pub(super) fn watch_until_done(&mut self) {
        loop {
            match self.state.step(Instant::now()) {
                Step::Look => {
                    self.look();
                    self.state.looked(Instant::now());
                }
                Step::Stop(StopReason::TreeExited) => {
                    // What the observers already have on its way belongs to the run too.
                    self.take_pending();
                    return;
                }
                Step::Stop(_) => return,
                Step::Wait(deadline) => match self.rx.recv_deadline(deadline) {
                    Ok(msg) => self.handle(msg),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            }
        }
    }

    /// Applies a source's message.
    pub(super) fn handle(&mut self, msg: Msg) {
        self.apply(Input::Source(msg));
    }

    /// Applies messages until `done` holds or `deadline` passes; returns whether `done` held.
    pub(super) fn handle_until(&mut self, deadline: Instant, done: impl Fn(&Self) -> bool) -> bool {
        while !done(self) {
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => self.handle(msg),
                Err(_) => return false,
            }
        }
        true
    }

    /// Observations already on their way when the tree's last exit was reaped (an inotify remove that the watcher
    /// thread reads just after) belong to the run: take them until the observers are quiet for `PENDING_QUIET`,
    /// `DRAIN` at most.
    fn take_pending(&mut self) {
        let end = Instant::now() + DRAIN;
        while let Ok(msg) = self.rx.recv_deadline((Instant::now() + PENDING_QUIET).min(end)) {
            self.handle(msg);
        }
    }

    /// Waits (with a deadline) until the fs observer has delivered everything that happened so far: a file the
    /// harness creates in a watched directory comes back after every earlier event (one inotify queue). Returns
    /// how long that took.
    pub(super) fn sync_fs(&mut self) -> Option<Duration> {
        self.state.expect_fs_sync();
        // A new file, never through whatever the worker may have put at that name.
        crate::confine::create_new(&self.spec.fs_barrier, Some(&self.spec.sandbox)).ok()?;
        let made = Instant::now();
        let synced = self.handle_until(made + FS_SYNC, |run| run.state.fs_synced());
        let lag = made.elapsed();
        let _ = std::fs::remove_file(&self.spec.fs_barrier);
        synced.then_some(lag)
    }

    /// Once the processes are gone, the pipe readers still flush what they held back (a flood's tail, the count
    /// of dropped bytes): wait for them to close, with a deadline (a descendant may still hold a pipe).
    pub(super) fn drain_output(&mut self) {
        self.handle_until(Instant::now() + DRAIN, |run| run.state.open_streams() == 0);
    }

    /// Applies messages until every process of the run has exited or the grace period ends.
    pub(super) fn wait_for_exits(&mut self, grace: Duration) -> bool {
        self.handle_until(Instant::now() + grace, |run| run.state.live_pids().is_empty())
    }
}
