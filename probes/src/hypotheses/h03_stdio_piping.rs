//! H3: piping the worker's stdio interferes (a blocked write before bind, EPIPE once the reader is gone).

use super::compare::{answer, launcher_left_first, Question};
use crate::{Dimension, EventKind, Evidence, Finding, Probe, RunRecord, StdioMode};

pub struct StdioPiping;

impl Probe for StdioPiping {
    fn id(&self) -> &'static str {
        "H3"
    }
    fn causal_rank(&self) -> u8 {
        120
    }
    fn compares(&self) -> Option<Dimension> {
        Some(Dimension::Stdio)
    }
    fn title(&self) -> &'static str {
        "stdio piping interferes"
    }
    fn checks(&self) -> &'static str {
        "Compares runs whose configurations differ in stdio only: a pipe (read by the launcher while it lives, or \
         never read) against ignore or a file. Confirmed when the piped configuration fails where its twin is \
         healthy (a worker blocked writing to a full pipe before it binds, or killed by EPIPE/SIGPIPE once the \
         launcher that read the pipe is gone); ruled out when outcomes are equal across stdio modes."
    }
    fn fix(&self) -> &'static str {
        "Do not pipe a daemon's output to a launcher that stops reading or exits: use `stdio: 'ignore'` or a log \
         file, or keep draining the pipe for the worker's whole life; handle EPIPE on stdout/stderr in the worker."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        answer(
            runs,
            &Question {
                dim: Dimension::Stdio,
                base: |c| matches!(c.stdio, StdioMode::Ignore | StdioMode::File),
                suspect: |c| c.stdio.is_pipe(),
                suspect_name: "a piped configuration",
                explain: why,
            },
        )
    }
}

/// What the pipe did: the worker died after its reader left, or never got as far as a bind.
fn why(run: &RunRecord) -> Vec<Evidence> {
    let mut out = launcher_left_first(run);
    // The kernel shows the worker waiting in a pipe write, at the end: the pipe is full and nobody reads it.
    let blocked = run.events.iter().rev().find(
        |e| matches!(&e.kind, EventKind::ThreadStates { busy: false, wchan: Some(w), .. } if w.contains("pipe_write")),
    );
    if let Some(e) = blocked {
        out.push(Evidence::at(run.id, e.t_us, e.kind.describe()));
        if run.config.stdio == StdioMode::PipeUndrained
            && run.events.launcher_exit().is_none_or(|(l, _)| l.t_us > e.t_us)
        {
            out.push(Evidence::run(run.id, "its launcher held the pipe and never read it: a full pipe blocks writes"));
        }
    }
    out
}
