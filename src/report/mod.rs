//! Reporters turn a finished diagnosis into text; the caller decides where it goes.

mod json;
mod table;

use crate::cli::Format;
use crate::diagnosis::Diagnosis;

pub(crate) fn render(diagnosis: &Diagnosis, format: Format, color: bool) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(table::render(diagnosis, color)),
        Format::Json => json::render(diagnosis),
    }
}
