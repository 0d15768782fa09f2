//! `--format table`: the answer first (production's outcome, the root cause, what changes it, what was ruled
//! out), then the runs grouped by configuration; every verdict with its evidence under `--verbose`. Within the
//! terminal's width (80 columns off a terminal).

use comfy_table::{presets, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width};
use sockdiag_probes::{Status, Verdict};

use super::answer;
use super::view::{self, Paths};
use super::Style;
use crate::diagnosis::{Diagnosis, Look};

/// The diagnosis as text wrapped to the style's width.
pub(super) fn render(d: &Diagnosis, style: Style) -> String {
    let paths = Paths::of(d);
    let mut out = head(d, &paths, style);
    out.push('\n');
    out.push_str(&runs_table(d, style).to_string());
    out.push('\n');
    if style.verbose {
        out.push('\n');
        out.push_str(&verdicts(d, &paths, style));
    }
    out
}

/// The answer, in at most a dozen lines at 80 columns: production's outcome, the root cause, one line per
/// configuration that changes the outcome, what was ruled out, and where to see more.
pub(super) fn head(d: &Diagnosis, paths: &Paths, style: Style) -> String {
    let width = style.width as usize;
    let failed = d.runs.iter().filter(|r| !r.outcome.healthy).count();
    let runs = match (d.runs.len(), failed) {
        (1, _) => "1 run".to_string(),
        (n, 0) => format!("{n} runs, all healthy"),
        (n, f) => format!("{n} runs, {f} failed"),
    };
    let mut shards = String::new();
    if let Some(label) = d.matrix.as_ref().and_then(|m| m.shards_label()) {
        shards = format!(" ({label})");
    }
    // The profile's file is in the verbose output and the reports; its name says which worker this is.
    let profile = match d.profile.rsplit_once(" (") {
        Some((name, _)) if d.profile.ends_with(')') && !style.verbose => name,
        _ => &d.profile,
    };
    let mut lines = vec![format!("sockdiag: session {}, {}, {runs}{shards}", d.session, view::visible(profile))];
    lines.extend(answer::lines(d, paths));
    lines.push(more_line(d, style));
    lines.iter().map(|l| wrap(&paths.show(l), width, "", "  ")).collect()
}

fn more_line(d: &Diagnosis, style: Style) -> String {
    let mut more = Vec::new();
    if !style.verbose {
        more.push("--verbose".to_string());
    }
    more.push("--report FILE.md".to_string());
    let mut confirmed: Vec<&Verdict> = d.verdicts.iter().filter(|v| v.status == Status::Confirmed).collect();
    confirmed.sort_by_key(|v| v.causal_rank);
    if let Some(first) = confirmed.first() {
        more.push(format!("sockdiag explain {} (the fix)", first.id));
    }
    format!("More: {}.", more.join(", "))
}

/// Every verdict in a table, then the evidence of each decided one and the fix of each confirmed one.
fn verdicts(d: &Diagnosis, paths: &Paths, style: Style) -> String {
    let width = style.width as usize;
    let mut out = verdict_table(paths, &d.verdicts, style).to_string();
    out.push_str("\n\n");
    let decided = d.verdicts.iter().filter(|v| v.status != Status::NotApplicable);
    for v in decided {
        let view = view::verdict_view(paths, v);
        out.push_str(&wrap(&format!("{} {}: {}", view.id, view.status, view.summary), width, "", "    "));
        for e in &view.evidence {
            out.push_str(&wrap(e, width, "    ", "                      "));
        }
        if v.status == Status::Confirmed {
            out.push_str(&wrap(&format!("fix: {}", view.fix), width, "    ", "         "));
        }
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

/// One row per configuration, repeats counted in its outcome (`3/3 reachable, then exited 1`); the
/// configuration said as its change from production.
fn runs_table(d: &Diagnosis, style: Style) -> Table {
    let mut t = new_table(&["runs", "configuration", "outcome"], style);
    let production = d.production_config();
    for g in view::groups(&d.runs) {
        let config = match (d.look, *g.config == production) {
            (Look::Inspect, _) => "live system, nothing spawned".to_string(),
            (Look::Run, true) => "production".to_string(),
            (Look::Run, false) => g.config.change_from(&production),
        };
        let healthy = g.runs.iter().all(|r| r.outcome.healthy);
        let mut outcome = Cell::new(view::visible(&crate::diagnosis::outcome_rates(&g.runs)));
        if style.color {
            outcome = outcome.fg(if healthy { Color::Green } else { Color::Red });
        }
        let ids: Vec<usize> = g.runs.iter().map(|r| r.id).collect();
        t.add_row(vec![Cell::new(view::id_ranges(&ids)), Cell::new(view::visible(&config)), outcome]);
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
