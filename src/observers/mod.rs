//! Observers: each turns one kind of kernel-level fact into timeline events on the run's clock.
//! Threads (fs watcher, output readers, the reaper) send messages; the run loop records them and decides
//! when to look at `/proc`, connect or look up the session row.

pub(crate) mod address_holder;
pub(crate) mod connect;
pub(crate) mod database;
pub(crate) mod fs;
pub(crate) mod health;
pub(crate) mod logs;
pub(crate) mod output;
pub(crate) mod pid_file;
pub(crate) mod sockets;
pub(crate) mod tcp_sockets;
pub(crate) mod worker_view;

use std::time::Instant;

use crossbeam_channel::Sender;
use sockdiag_probes::{Event, EventKind};

/// The run's single monotonic clock: microseconds since the spawn.
#[derive(Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn start() -> Self {
        Clock(Instant::now())
    }

    pub(crate) fn stamp(&self, kind: EventKind) -> Event {
        self.stamp_at(Instant::now(), kind)
    }

    pub(crate) fn stamp_at(&self, at: Instant, kind: EventKind) -> Event {
        Event { t_us: at.saturating_duration_since(self.0).as_micros() as u64, kind }
    }
}

/// What observer threads tell the run loop.
pub(crate) enum Msg {
    /// An observation, already stamped.
    Event(Event),
    /// A file the run loop tails (stdio in file mode, or a log file) has grown or appeared.
    Grew(std::path::PathBuf),
    /// An output stream reached end of file.
    Closed,
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
