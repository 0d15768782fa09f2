//! Facts several probes read off a run: where it started listening, which process is "the worker".

use crate::Event;
use crate::{EventKind, FileType, Marker, RunRecord};

/// The first sign that the worker was listening: a kernel-listed listener, the socket file at the expected path,
/// or the "listening" line, whichever came first.
pub(crate) fn listen_point(run: &RunRecord) -> Option<&Event> {
    let expected = run.expected.socket_path();
    run.events.iter().find(|e| match &e.kind {
        EventKind::SocketBound { listening: true, .. } => true,
        EventKind::FileCreated { path, file_type } => path == expected && *file_type != FileType::Dir,
        EventKind::Line { markers, .. } => markers.contains(&Marker::Listening),
        _ => false,
    })
}

/// The processes that held a listening socket (at the expected path if any did), else the spawned root.
pub(crate) fn worker_pids(run: &RunRecord) -> Vec<i32> {
    let expected = run.expected.socket_path();
    let listeners = run.events.listeners();
    let at_expected: Vec<i32> = listeners.iter().filter(|l| l.3 == expected).map(|l| l.1).collect();
    if !at_expected.is_empty() {
        return at_expected;
    }
    let any: Vec<i32> = listeners.iter().map(|l| l.1).collect();
    if !any.is_empty() {
        return any;
    }
    run.events.spawned_pids().into_iter().take(1).collect()
}

/// Every pid the run saw in the worker's tree.
pub(crate) fn known_pids(run: &RunRecord) -> Vec<i32> {
    let mut pids: Vec<i32> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Spawned { pid, .. }
            | EventKind::Exited { pid, .. }
            | EventKind::SocketBound { pid, .. }
            | EventKind::WorkerView { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The last line the worker wrote before `t_us` (what it said as it went down).
pub(crate) fn last_line_before(run: &RunRecord, t_us: u64) -> Option<&Event> {
    run.events.iter().rev().find(|e| e.t_us <= t_us && matches!(e.kind, EventKind::Line { .. }))
}
