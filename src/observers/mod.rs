//! Observers: each turns one kind of kernel-level fact into timeline events on the run's clock.
//! Threads (fs watcher, output readers, the reaper) send messages; the run loop records them and decides
//! when to look at `/proc`, connect or look up the session row.

pub(crate) mod address_holder;
pub(crate) mod connect;
pub(crate) mod database;
pub(crate) mod directory;
pub(crate) mod end_state;
pub(crate) mod fs;
pub(crate) mod health;
pub(crate) mod kernel_sockets;
mod log_glob;
pub(crate) mod logs;
pub(crate) mod namespaces;
pub(crate) mod output;
pub(crate) mod pid_file;
pub(crate) mod sock_diag;
pub(crate) mod sockets;
pub(crate) mod tcp_sockets;
pub(crate) mod test_bind;
pub(crate) mod worker_view;

use std::time::Instant;

use crossbeam_channel::Sender;
use sockdiag_probes::{Event, EventKind};

/// The run's single monotonic clock: microseconds since the spawn.
#[derive(Clone, Copy)]
pub(crate) struct Clock(Instant, u64);

impl Clock {
    pub(crate) fn start() -> Self {
        Clock(Instant::now(), monotonic_ns())
    }

    /// CLOCK_MONOTONIC at the origin, in ns.
    pub(crate) fn origin_ns(&self) -> u64 {
        self.1
    }

    /// Stamps an event with a CLOCK_MONOTONIC reading taken by another process (the launcher).
    pub(crate) fn stamp_ns(&self, ns: u64, kind: EventKind) -> Event {
        Event { t_us: ns.saturating_sub(self.1) / 1000, kind }
    }

    /// The instant of a CLOCK_MONOTONIC reading taken by another process.
    pub(crate) fn instant_of_ns(&self, ns: u64) -> Instant {
        self.0 + std::time::Duration::from_nanos(ns.saturating_sub(self.1))
    }

    pub(crate) fn stamp(&self, kind: EventKind) -> Event {
        self.stamp_at(Instant::now(), kind)
    }

    /// True when `at` is not before the run started (an older event belongs to an earlier process).
    pub(crate) fn covers(&self, at: Instant) -> bool {
        at >= self.0
    }

    pub(crate) fn stamp_at(&self, at: Instant, kind: EventKind) -> Event {
        Event { t_us: at.saturating_duration_since(self.0).as_micros() as u64, kind }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock `Instant` reads, shared by every process of the machine.
pub(crate) fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// What observer threads tell the run loop.
pub(crate) enum Msg {
    /// An observation, already stamped.
    Event(Event),
    /// A file the run loop tails (stdio in file mode, or a log file) has grown or appeared.
    Grew(std::path::PathBuf),
    /// An output stream (or the launcher's reports) reached end of file.
    Closed,
    /// The launcher started a worker.
    Worker { pid: i32, at_ns: u64 },
    /// The fs observer has delivered every event that happened before the harness's sync file appeared.
    FsSynced,
}

/// A cloneable handle observer threads use to report.
#[derive(Clone)]
pub(crate) struct Sink {
    pub(crate) clock: Clock,
    pub(crate) tx: Sender<Msg>,
}

impl Sink {
    pub(crate) fn send(&self, msg: Msg) {
        let _ = self.tx.send(msg);
    }
}
