//! H6: "listening" is logged before the socket file exists.

use crate::{fmt_ms, per_run, EventKind, Evidence, Finding, Marker, Probe, RunRecord, Status, StdioMode};

pub struct ListeningBeforeFile;

impl Probe for ListeningBeforeFile {
    fn id(&self) -> &'static str {
        "H6"
    }
    fn causal_rank(&self) -> u8 {
        150
    }
    fn title(&self) -> &'static str {
        "\"listening\" logged before the file exists"
    }
    fn checks(&self) -> &'static str {
        "When the \"listening\" line arrives, the harness looks at the expected path at once. Confirmed when the \
         file was not there yet and appeared later (the delay is measured); ruled out when the file existed when \
         the line arrived, or never appeared. Runs whose output nobody read (stdio ignored, a pipe never read or \
         whose reader exited) cannot tell."
    }
    fn fix(&self) -> &'static str {
        "Log \"listening\" from the server's listening callback (after bind and listen), not before; clients should \
         wait for a successful connect, not for a log line."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        if runs.iter().all(|r| r.expected.socket_path().is_none()) {
            return Finding::new(Status::NotApplicable, "the endpoint is a TCP address, not a socket file", vec![]);
        }
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let Some(expected) = run.expected.socket_path() else {
        return Finding::new(Status::NotApplicable, "the endpoint is a TCP address, not a socket file", vec![]);
    };
    let Some(line) = run.events.marker(Marker::Listening) else {
        return no_line(run);
    };
    let mut evidence = vec![Evidence::at(id, line.t_us, line.kind.describe())];
    let created = run.events.created(expected);
    let check = run.events.after(line.t_us.saturating_sub(1)).find_map(|e| match &e.kind {
        EventKind::FileChecked { path, file_type } if path == expected => Some((e, *file_type)),
        _ => None,
    });
    let Some((check, present)) = check else {
        return Finding::new(
            Status::Inconclusive,
            "the listening line was read only after the fact, so the file was not looked at when it arrived",
            vec![Evidence::run(id, "missing: a look at the expected path when the line arrived")],
        );
    };
    evidence.push(Evidence::at(id, check.t_us, check.kind.describe()));
    match (present, created) {
        (Some(_), created) => {
            if let Some(c) = created.filter(|c| c.t_us <= check.t_us) {
                evidence.insert(0, Evidence::at(id, c.t_us, c.kind.describe()));
            }
            Finding::new(Status::RuledOut, "the socket file existed when the listening line arrived", evidence)
        }
        (None, Some(c)) if c.t_us >= check.t_us => {
            let delay = c.t_us - line.t_us;
            evidence.push(Evidence::at(id, c.t_us, c.kind.describe()));
            Finding::new(
                Status::Confirmed,
                format!("the socket file appeared {} after the listening line", fmt_ms(delay).trim_start_matches('+')),
                evidence,
            )
            .timed("line → file", delay)
        }
        (None, _) => Finding::new(
            Status::RuledOut,
            format!("no socket file appeared at {expected} after the listening line (not an ordering problem)"),
            evidence,
        ),
    }
}

/// No listening line: either the worker wrote none, or nobody was reading.
fn no_line(run: &RunRecord) -> Finding {
    let id = run.id;
    let unread = match run.config.stdio {
        StdioMode::Ignore => Some("the configuration discards the output".to_string()),
        StdioMode::PipeUndrained => Some("the launcher never reads the pipe".to_string()),
        StdioMode::PipeDrained => run
            .events
            .launcher_exit()
            .map(|(e, _)| format!("the launcher, the pipe's reader, exited at {}", fmt_ms(e.t_us))),
        StdioMode::File => None,
    };
    match unread {
        Some(why) => Finding::new(Status::NotApplicable, format!("no listening line could be seen: {why}"), vec![]),
        None => Finding::new(
            Status::RuledOut,
            "the worker wrote no listening line",
            vec![Evidence::run(id, "output was read throughout; no line matched the listening marker")],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypotheses::testing::{created, record, PATH};
    use crate::{FileType, Stream};

    fn line() -> EventKind {
        EventKind::Line { stream: Stream::Stderr, text: "listening".into(), markers: vec![Marker::Listening] }
    }

    fn checked(file_type: Option<FileType>) -> EventKind {
        EventKind::FileChecked { path: PATH.into(), file_type }
    }

    #[test]
    fn the_look_at_the_path_when_the_line_arrives_decides() {
        let early = record(StdioMode::File, vec![(10, line()), (11, checked(None)), (210, created())]);
        let f = judge(&early);
        assert_eq!((f.status, f.timing), (Status::Confirmed, Some(("line → file", 200))));
        let after = record(StdioMode::File, vec![(5, created()), (10, line()), (11, checked(Some(FileType::Socket)))]);
        assert_eq!(judge(&after).status, Status::RuledOut);
        let never = record(StdioMode::File, vec![(10, line()), (11, checked(None))]);
        assert_eq!(judge(&never).status, Status::RuledOut);
    }

    #[test]
    fn without_a_line_it_depends_on_whether_anyone_read() {
        assert_eq!(judge(&record(StdioMode::Ignore, vec![(5, created())])).status, Status::NotApplicable);
        assert_eq!(judge(&record(StdioMode::PipeUndrained, vec![(5, created())])).status, Status::NotApplicable);
        assert_eq!(judge(&record(StdioMode::File, vec![(5, created())])).status, Status::RuledOut);
    }
}
