//! Reporters turn a finished diagnosis into text; the caller decides where it goes.

mod answer;
mod json;
mod junit;
mod markdown;
mod mermaid;
pub(crate) mod progress;
mod table;
mod view;

use std::path::Path;

use crate::cli::Format;
use crate::diagnosis::Diagnosis;

/// How the terminal wants text: colour or not, and how wide.
#[derive(Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
    pub(crate) width: u16,
    /// Every verdict and its evidence after the answer (`--verbose`); the other formats always have them.
    pub(crate) verbose: bool,
}

impl Style {
    /// Plain text for files and pipes: no colour, 80 columns.
    pub(crate) const PLAIN: Style = Style { color: false, width: 80, verbose: false };

    /// The same, with every verdict and its evidence (`--verbose`) or not.
    pub(crate) fn verbose(self, verbose: bool) -> Style {
        Style { verbose, ..self }
    }

    /// Colour only on a terminal and never with NO_COLOR; the terminal's width there, 80 columns elsewhere.
    pub(crate) fn for_stdout() -> Style {
        Style::for_stream(&std::io::stdout())
    }

    /// As [`Style::for_stdout`], for what goes to stderr.
    pub(crate) fn for_stderr() -> Style {
        Style::for_stream(&std::io::stderr())
    }

    fn for_stream(stream: &impl std::io::IsTerminal) -> Style {
        if !stream.is_terminal() {
            return Style::PLAIN;
        }
        let width = textwrap::termwidth().clamp(40, u16::MAX as usize) as u16;
        Style { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()), width, verbose: false }
    }
}

/// The diagnosis in one format, as text.
pub(crate) fn render(diagnosis: &Diagnosis, format: Format, style: Style) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(table::render(diagnosis, style)),
        Format::Json => json::render(diagnosis),
        Format::Markdown => markdown::render(diagnosis),
        Format::Junit => junit::render(diagnosis),
    }
}

/// The format `--report FILE` is written in: JSON or JUnit XML by extension, Markdown otherwise.
pub(crate) fn format_for_file(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") => Format::Json,
        Some("xml") => Format::Junit,
        _ => Format::Markdown,
    }
}

/// The `--quiet` line: the root cause, paths relative to `<sandbox>`, escaped; nothing when there is none.
pub(crate) fn quiet_line(diagnosis: &Diagnosis) -> Option<String> {
    let paths = view::Paths::of(diagnosis);
    diagnosis.root_cause.as_deref().map(|c| format!("{}\n", paths.show(c)))
}

/// `text` as the human formats show it: every run's sandbox root written `<sandbox>`, control characters escaped.
pub(crate) fn shown(diagnosis: &Diagnosis, text: &str) -> String {
    view::Paths::of(diagnosis).show(text)
}
