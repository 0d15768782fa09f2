//! A run's timeline as a Mermaid `sequenceDiagram` (GitHub renders it): sockdiag, the worker, the filesystem and
//! the client as participants, each event an arrow or a note at its time. Text is escaped with Mermaid's entity
//! codes so that no path, log line or error message can break the diagram.

use std::fmt::Write;

use sockdiag_probes::{fmt_ms, ConnectResult, Event, EventKind, RunRecord};

use super::view::{visible, Paths};

/// Events drawn per diagram at most; the plain-text timeline beside it has them all.
const EVENTS_MAX: usize = 60;
/// Characters of text per arrow or note at most.
const TEXT_MAX: usize = 100;

/// The diagram's source, without the fences.
pub(super) fn sequence(paths: &Paths, run: &RunRecord) -> String {
    // Wrapped text keeps the diagram within a page's width (GitHub scales wider ones down to unreadable).
    let mut out = String::from("---\nconfig:\n  sequence:\n    wrap: true\n    width: 180\n---\nsequenceDiagram\n");
    for (alias, name) in [("S", "sockdiag"), ("W", "worker"), ("F", "filesystem"), ("C", "client")] {
        let _ = writeln!(out, "    participant {alias} as {name}");
    }
    let events: Vec<&Event> = run.events.iter().collect();
    for e in events.iter().take(EVENTS_MAX) {
        let text = escape(&format!("{} {}", fmt_ms(e.t_us), paths.show(&e.kind.describe())));
        let _ = writeln!(out, "    {}: {text}", lane(&e.kind));
    }
    if events.len() > EVENTS_MAX {
        let _ = writeln!(out, "    Note over S: {} more events in the text timeline", events.len() - EVENTS_MAX);
    }
    out
}

/// Who talks to whom for each kind of event; anything else is a note of the harness.
fn lane(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Spawned { .. } | EventKind::HarnessStop { .. } => "S->>W",
        EventKind::Exited { .. } => "W-->>S",
        EventKind::Line { .. } | EventKind::OutputDropped { .. } => "Note over W",
        EventKind::SocketBound { .. } | EventKind::SocketClosed { .. } => "Note over W",
        EventKind::TcpListening { .. } | EventKind::TcpClosed { .. } | EventKind::LogLine { .. } => "Note over W",
        EventKind::FileCreated { .. } | EventKind::FileRemoved { .. } | EventKind::FileRenamed { .. } => "Note over F",
        EventKind::PidFile { .. } => "Note over F",
        EventKind::Connect { result: ConnectResult::Connected, .. } | EventKind::Health { .. } => "C->>W",
        EventKind::Connect { .. } => "C-xF",
        _ => "Note over S",
    }
}

/// Mermaid reads `#…;` as entity codes, `;` may end a statement, `%%` starts a comment and `<…>` is HTML; three
/// backticks would close the Markdown fence around the diagram: all are written as entity codes. The text is cut
/// to a readable length, kept on one line and its control characters escaped.
fn escape(text: &str) -> String {
    let text = visible(text);
    let mut cut: String = text.chars().take(TEXT_MAX).collect();
    if text.chars().count() > TEXT_MAX {
        cut.push('…');
    }
    let mut out = String::with_capacity(cut.len());
    for c in cut.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '%' => out.push_str("#37;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '"' => out.push_str("#quot;"),
            '&' => out.push_str("#amp;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            '`' => out.push_str("#96;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_mermaid_reads_as_syntax() {
        assert_eq!(escape("a;b #c <sandbox> 50%%"), "a#59;b #35;c #lt;sandbox#gt; 50#37;#37;");
        assert_eq!(escape("line\nbreak\u{1b}[2J"), "line\\nbreak\\u#123;1b#125;[2J");
        assert_eq!(escape("```"), "#96;#96;#96;");
        assert!(escape(&"x".repeat(500)).chars().count() <= super::TEXT_MAX + 1);
    }
}
