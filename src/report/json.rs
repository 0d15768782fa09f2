//! `--format json`: the diagnosis as one JSON document (DESIGN §5 fields).

use crate::diagnosis::Diagnosis;

/// The diagnosis as one pretty-printed JSON document.
pub(super) fn render(diagnosis: &Diagnosis) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(diagnosis)? + "\n")
}
