//! `--format table`: runs, verdicts and evidence for a terminal or a CI log, within the terminal's width (80
//! columns off a terminal).

use comfy_table::{presets, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width};
use sockdiag_probes::{Status, Verdict};

use super::view::{self, Paths};
use super::Style;
use crate::diagnosis::{Diagnosis, Look};

/// The diagnosis as tables and evidence, wrapped to the style's width.
pub(super) fn render(d: &Diagnosis, style: Style) -> String {
    let paths = Paths::of(d);
    let width = style.width as usize;
    let profile = view::visible(&d.profile);
    let mut head = format!("sockdiag: session {}, profile {profile}, {} run(s)", d.session, d.runs.len());
    if let Some(shards) = d.matrix.as_ref().and_then(|m| m.shards_label()) {
        head.push_str(&format!(" ({shards})"));
    }
    let mut out = wrap(&head, width, "", "    ") + "\n";
    out.push_str(&runs_table(d, style).to_string());
    out.push_str("\n\n");
    out.push_str(&verdict_table(&paths, &d.verdicts, style).to_string());
    out.push_str("\n\n");
    for v in
        d.verdicts.iter().filter(|v| matches!(v.status, Status::Confirmed | Status::RuledOut | Status::Inconclusive))
    {
        let view = view::verdict_view(&paths, v);
        out.push_str(&wrap(&format!("{} {}: {}", view.id, view.status, view.summary), width, "", "    "));
        for e in &view.evidence {
            out.push_str(&wrap(e, width, "    ", "                      "));
        }
        if v.status == Status::Confirmed {
            out.push_str(&wrap(&format!("fix: {}", view.fix), width, "    ", "         "));
        }
    }
    match &d.root_cause {
        Some(cause) => {
            out.push('\n');
            out.push_str(&wrap(&format!("Most likely root cause: {}", paths.show(cause)), width, "", ""));
        }
        None if d.reproduced() => out.push_str("\nNo hypothesis is confirmed, but a run failed: see the runs above.\n"),
        None => out.push_str("\nThe socket was healthy in every configuration.\n"),
    }
    out
}

/// Wraps one paragraph to the width, with the given indents, ending in a newline.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let options = textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(true)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    textwrap::fill(text, options) + "\n"
}

fn new_table(header: &[&str], style: Style) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(style.width)
        .set_header(header);
    t
}

fn runs_table(d: &Diagnosis, style: Style) -> Table {
    let mut t = new_table(&["run", "configuration", "outcome"], style);
    for r in &d.runs {
        let config = match d.look {
            Look::Run => r.config.to_string(),
            Look::Inspect => "live system, nothing spawned".to_string(),
        };
        t.add_row(vec![
            r.id.to_string(),
            view::visible(&config).into_owned(),
            view::visible(&r.outcome.label).into_owned(),
        ]);
    }
    t
}

fn verdict_table(paths: &Paths, verdicts: &[Verdict], style: Style) -> Table {
    let mut t = new_table(&["id", "hypothesis", "verdict", "summary"], style);
    for v in verdicts {
        let mut status = Cell::new(v.status.label());
        if style.color {
            status = status.fg(match v.status {
                Status::Confirmed => Color::Red,
                Status::RuledOut => Color::Green,
                Status::Inconclusive => Color::Yellow,
                Status::NotApplicable => Color::DarkGrey,
            });
        }
        t.add_row(vec![Cell::new(v.id), Cell::new(v.title), status, Cell::new(paths.show(&v.summary))]);
    }
    // The summary carries the facts (paths, times): it gets the room, the title wraps.
    if let Some(title) = t.column_mut(1) {
        title.set_constraint(ColumnConstraint::UpperBoundary(Width::Percentage(24)));
    }
    t
}
