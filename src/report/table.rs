//! `--format table`: runs, verdicts and evidence for a terminal or a CI log.

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use sockdiag_probes::{Status, Verdict};

use crate::diagnosis::Diagnosis;

/// Widest the tables grow, so the report reads in an 80-column CI log too.
const WIDTH: u16 = 100;

pub(super) fn render(d: &Diagnosis, color: bool) -> String {
    let mut out = format!("sockdiag: session {}, profile {}, {} run(s)\n\n", d.session, d.profile, d.runs.len());
    out.push_str(&runs_table(d).to_string());
    out.push_str("\n\n");
    out.push_str(&verdict_table(&d.verdicts, color).to_string());
    out.push_str("\n\n");
    for v in
        d.verdicts.iter().filter(|v| matches!(v.status, Status::Confirmed | Status::RuledOut | Status::Inconclusive))
    {
        out.push_str(&format!("{} {}: {}\n", v.id, v.status.label(), v.summary));
        for e in &v.evidence {
            out.push_str(&format!("    {e}\n"));
        }
        if v.status == Status::Confirmed {
            out.push_str(&format!("    fix: {}\n", v.fix));
        }
    }
    match &d.root_cause {
        Some(cause) => out.push_str(&format!("\nMost likely root cause: {cause}\n")),
        None if d.reproduced() => out.push_str("\nNo hypothesis is confirmed, but a run failed: see the runs above.\n"),
        None => out.push_str("\nThe socket was healthy in every configuration.\n"),
    }
    out
}

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH)
        .set_header(header);
    t
}

fn runs_table(d: &Diagnosis) -> Table {
    let mut t = new_table(&["run", "configuration", "outcome"]);
    for r in &d.runs {
        t.add_row(vec![r.id.to_string(), r.config.to_string(), r.outcome.label.clone()]);
    }
    t
}

fn verdict_table(verdicts: &[Verdict], color: bool) -> Table {
    let mut t = new_table(&["id", "hypothesis", "verdict", "summary"]);
    for v in verdicts {
        let mut status = Cell::new(v.status.label());
        if color {
            status = status.fg(match v.status {
                Status::Confirmed => Color::Red,
                Status::RuledOut => Color::Green,
                Status::Inconclusive => Color::Yellow,
                Status::NotApplicable => Color::DarkGrey,
            });
        }
        t.add_row(vec![Cell::new(v.id), Cell::new(v.title), status, Cell::new(&v.summary)]);
    }
    t
}
