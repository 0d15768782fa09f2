//! `--format markdown` and `--report FILE.md`: REPORT_TEMPLATE.md (minijinja) filled with the diagnosis. The
//! template decides the layout; this file prepares values (paths relative to `<sandbox>`, Mermaid source) and the
//! escaping filters. Undefined names are errors, so no placeholder can be left in a report.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::mermaid;
use super::view::{self, HiddenOutput, Paths, VerdictView};
use sockdiag_probes::RunRecord;

use crate::context;
use crate::diagnosis::Diagnosis;

/// The template, built into the binary.
const TEMPLATE: &str = include_str!("../../REPORT_TEMPLATE.md");
/// Failing runs drawn at most; the JSON report has every run.
const FAILING_MAX: usize = 6;

#[derive(Serialize)]
struct Page {
    session: u64,
    profile: String,
    run_count: usize,
    /// `shard 2/4 of 28 runs` when the runs are only part of their matrix.
    shards: Option<String>,
    failing_count: usize,
    reproduced: bool,
    headline: String,
    /// Production's outcome, the root cause, what changes the outcome, what was ruled out: a line each.
    answer: Vec<String>,
    root_cause: Option<String>,
    command: String,
    verdicts: Vec<VerdictView>,
    configurations: Vec<ConfigRow>,
    failing: Vec<FailingRun>,
    failing_omitted: usize,
    hidden: HiddenOutput,
    environment: context::Environment,
}

/// One configuration and its runs (repeats counted in the outcome).
#[derive(Serialize)]
struct ConfigRow {
    runs: String,
    config: String,
    outcome: String,
    healthy: bool,
}

#[derive(Serialize)]
struct FailingRun {
    id: usize,
    config: String,
    outcome: String,
    mermaid: String,
    timeline: Vec<String>,
}

/// The diagnosis as Markdown, from REPORT_TEMPLATE.md.
pub(super) fn render(d: &Diagnosis) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build()?);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("md", |s: String| inline(&s));
    // Inline text is one line without `|`: it fits a table cell as it is.
    env.add_filter("cell", |s: String| inline(&s));
    env.add_filter("code", |s: String| code_line(&s));
    let template = env.template_from_named_str("REPORT_TEMPLATE.md", TEMPLATE)?;
    Ok(template.render(Serde(page(d)))?)
}

fn page(d: &Diagnosis) -> Page {
    let paths = Paths::of(d);
    let failing = failing_runs(d);
    let headline = match failing.len() {
        0 => format!("The socket was healthy in every configuration ({} runs).", d.runs.len()),
        n => format!("The failure was reproduced in {n} of {} runs.", d.runs.len()),
    };
    Page {
        session: d.session,
        profile: d.profile.clone(),
        run_count: d.runs.len(),
        shards: d.matrix.as_ref().and_then(|m| m.shards_label()),
        failing_count: failing.len(),
        reproduced: d.reproduced(),
        headline,
        answer: super::answer::lines(d, &paths).iter().map(|l| paths.show(l)).collect(),
        root_cause: d.root_cause.as_deref().map(|c| paths.show(c)),
        command: d.command.clone(),
        verdicts: d.verdicts.iter().map(|v| view::verdict_view(&paths, v)).collect(),
        configurations: view::groups(&d.runs)
            .iter()
            .map(|g| ConfigRow {
                runs: view::id_ranges(&g.runs.iter().map(|r| r.id).collect::<Vec<_>>()),
                config: g.config.to_string(),
                outcome: crate::diagnosis::outcome_rates(&g.runs),
                healthy: g.runs.iter().all(|r| r.outcome.healthy),
            })
            .collect(),
        failing_omitted: failing.len().saturating_sub(FAILING_MAX),
        failing: failing
            .iter()
            .take(FAILING_MAX)
            .map(|r| FailingRun {
                id: r.id,
                config: r.config.to_string(),
                outcome: r.outcome.label.clone(),
                mermaid: mermaid::sequence(&paths, r),
                timeline: r.events.iter().map(|e| view::timeline_line(&paths, e)).collect(),
            })
            .collect(),
        hidden: view::hidden_output(&paths, &d.runs, d.production_config()),
        environment: d.environment.clone(),
    }
}

/// The failing runs, the first of each configuration before the repeats, so that the runs drawn cover every
/// configuration that failed.
fn failing_runs(d: &Diagnosis) -> Vec<&RunRecord> {
    let per_group: Vec<Vec<&RunRecord>> = view::groups(&d.runs)
        .into_iter()
        .map(|g| g.runs.into_iter().filter(|r| !r.outcome.healthy).collect())
        .collect();
    let firsts = per_group.iter().filter_map(|runs| runs.first().copied());
    let repeats = per_group.iter().flat_map(|runs| runs.iter().skip(1).copied());
    firsts.chain(repeats).collect()
}

/// Backslash-escapes the characters Markdown would read as markup (`<sandbox>` would vanish as an HTML tag, `&…;`
/// would become any character), on one line with control characters escaped: a line break could start a block.
fn inline(text: &str) -> String {
    let text = view::visible(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One line inside a fenced block: control characters escaped, so that it stays one line, and no run of three
/// backticks, so that it cannot close the fence.
fn code_line(text: &str) -> String {
    view::visible(text).replace("```", "`\u{200b}``")
}

#[cfg(test)]
mod tests {
    use super::{code_line, inline};

    #[test]
    fn inline_text_cannot_become_markup() {
        assert_eq!(inline("<sandbox>/a_b|c"), "\\<sandbox\\>/a\\_b\\|c");
        assert_eq!(inline("&#x202e; [x](http://e) <img>"), "\\&\\#x202e; \\[x\\](http://e) \\<img\\>");
        assert_eq!(inline("a\n---\n\u{1b}[2J"), "a\\\\n---\\\\n\\\\u{1b}\\[2J");
    }

    #[test]
    fn a_code_line_stays_one_line_inside_its_fence() {
        assert_eq!(code_line("x\n```\n<b>\u{7}"), "x\\n`\u{200b}``\\n<b>\\u{7}");
    }
}
