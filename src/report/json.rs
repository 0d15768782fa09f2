//! `--format json`: the diagnosis as one JSON document (DESIGN §5 fields).

use crate::diagnosis::Diagnosis;

pub(super) fn render(diagnosis: &Diagnosis) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(diagnosis)? + "\n")
}
