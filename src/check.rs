//! `sockdiag check --baseline FILE`: the verdicts of a saved JSON report are the expected ones; any status that
//! differs (a hypothesis added or gone counts too) is a regression to show as a table. A shard (`--shard i/n`) is
//! held to the baseline's runs of the same shard, judged again; a baseline that is itself only some shards of its
//! matrix is no baseline for the whole.

use std::path::{Path, PathBuf};

use comfy_table::{presets, ContentArrangement, Table};
use serde::Deserialize;
use sockdiag_probes::{Status, Verdict};

use crate::diagnosis::{Diagnosis, Saved};
use crate::error::UsageError;
use crate::report::Style;
use crate::shard::Matrix;
use crate::visible::visible;

/// A saved report to compare with.
pub(crate) struct Baseline {
    path: PathBuf,
    text: String,
    read: BaselineFile,
}

/// The part of a saved report that a check reads first.
#[derive(Deserialize)]
struct BaselineFile {
    verdicts: Vec<BaselineVerdict>,
    #[serde(default)]
    matrix: Option<Matrix>,
}

#[derive(Deserialize)]
struct BaselineVerdict {
    id: String,
    status: Status,
}

/// Reads a saved JSON report to compare with; a bad file is a usage error (exit 2).
pub(crate) fn load(path: &Path) -> anyhow::Result<Baseline> {
    let name = path.display();
    let text = crate::input::read_text(path, crate::input::REPORT_MAX)
        .map_err(|e| UsageError(format!("--baseline {name}: {e}")))?;
    let read: BaselineFile = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("--baseline {name}: not a sockdiag JSON report: {e}")))?;
    if read.verdicts.is_empty() {
        return Err(UsageError(format!("--baseline {name}: the report has no verdicts")).into());
    }
    Ok(Baseline { path: path.to_path_buf(), text, read })
}

impl Baseline {
    /// The expected status of each hypothesis for runs of `matrix`: the baseline's own verdicts for a whole
    /// matrix; for a shard, the verdicts of the baseline's runs of that shard, judged again (a shard's verdicts are
    /// about its runs only). A baseline of only some shards is refused, and so, for a shard, is one of another
    /// matrix.
    pub(crate) fn expected(&self, matrix: &Matrix) -> anyhow::Result<Vec<(String, Status)>> {
        let name = self.path.display();
        let usage = |msg: String| -> anyhow::Error { UsageError(format!("--baseline {name}: {msg}")).into() };
        let recorded = self.read.matrix.as_ref();
        if let Some(label) = recorded.and_then(Matrix::shards_label) {
            return Err(usage(format!(
                "holds only {label}, not a whole matrix: merge the shards first (sockdiag merge)"
            )));
        }
        let wanted = matrix.shards.as_ref().filter(|s| s.ran.len() < s.count as usize);
        let Some(wanted) = wanted else {
            return Ok(self.read.verdicts.iter().map(|v| (v.id.clone(), v.status)).collect());
        };
        let shard = format!("--shard {}/{}", wanted.ran[0], wanted.count);
        let Some(recorded) = recorded else {
            return Err(usage(format!("records no matrix (saved by an older sockdiag), so {shard} cannot be matched")));
        };
        if (&recorded.configurations, recorded.repeat) != (&matrix.configurations, matrix.repeat) {
            return Err(usage(format!(
                "ran another matrix ({} configuration(s) × {}; now {} × {}), so {shard} cannot be matched",
                recorded.configurations.len(),
                recorded.repeat,
                matrix.configurations.len(),
                matrix.repeat
            )));
        }
        let saved: Saved =
            serde_json::from_str(&self.text).map_err(|e| usage(format!("not a sockdiag JSON report: {e}")))?;
        let Saved { session, profile, command, environment, mut runs, .. } = saved;
        runs.retain(|r| wanted.ran.iter().any(|&index| crate::shard::shard_of(r.id, wanted.count) == index));
        let slice = Diagnosis::new(session, profile, command, environment, None, runs);
        Ok(slice.verdicts.iter().map(|v| (v.id.to_string(), v.status)).collect())
    }
}

/// A hypothesis whose status is not the baseline's.
pub(crate) struct Difference {
    pub(crate) id: String,
    pub(crate) baseline: Option<Status>,
    pub(crate) now: Option<Status>,
    pub(crate) summary: String,
}

/// Every difference, in the current verdicts' order, then hypotheses only the baseline has.
pub(crate) fn compare(baseline: &[(String, Status)], verdicts: &[Verdict]) -> Vec<Difference> {
    let mut diffs: Vec<Difference> = verdicts
        .iter()
        .filter_map(|v| {
            let before = baseline.iter().find(|(id, _)| id == v.id).map(|(_, s)| *s);
            (before != Some(v.status)).then(|| Difference {
                id: v.id.to_string(),
                baseline: before,
                now: Some(v.status),
                summary: v.summary.clone(),
            })
        })
        .collect();
    diffs.extend(baseline.iter().filter(|(id, _)| !verdicts.iter().any(|v| v.id == id)).map(|(id, s)| Difference {
        id: id.clone(),
        baseline: Some(*s),
        now: None,
        summary: "this version has no such hypothesis".into(),
    }));
    diffs
}

fn label(s: Option<Status>) -> &'static str {
    s.map_or("absent", Status::label)
}

/// The differences as a table for people.
pub(crate) fn table(diffs: &[Difference], rel: impl Fn(&str) -> String, style: Style) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(style.width)
        .set_header(["id", "baseline", "now", "summary now"]);
    for d in diffs {
        t.add_row([&visible(&d.id), label(d.baseline), label(d.now), &rel(&d.summary)]);
    }
    t.to_string()
}

/// The differences on one line (`--quiet`).
pub(crate) fn one_line(diffs: &[Difference]) -> String {
    let items: Vec<String> =
        diffs.iter().map(|d| format!("{} {} -> {}", visible(&d.id), label(d.baseline), label(d.now))).collect();
    format!("differs from the baseline: {}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(id: &'static str, status: Status) -> Verdict {
        let summary = format!("{id} now");
        let (fact, rate, spread, quote, compares) = (summary.clone(), None, None, None, None);
        Verdict {
            id,
            title: "t",
            status,
            summary,
            fact,
            rate,
            spread,
            quote,
            evidence: vec![],
            fix: "f",
            causal_rank: 0,
            compares,
        }
    }

    #[test]
    fn differences_cover_changed_new_and_gone_hypotheses() {
        let baseline = vec![
            ("H1".to_string(), Status::Confirmed),
            ("H9".into(), Status::Confirmed),
            ("H99".into(), Status::RuledOut),
        ];
        let now = [verdict("H1", Status::Confirmed), verdict("H2", Status::RuledOut), verdict("H9", Status::RuledOut)];
        let diffs = compare(&baseline, &now);
        let got: Vec<(&str, &str, &str)> =
            diffs.iter().map(|d| (d.id.as_str(), label(d.baseline), label(d.now))).collect();
        assert_eq!(
            got,
            [("H2", "absent", "ruled out"), ("H9", "CONFIRMED", "ruled out"), ("H99", "ruled out", "absent")]
        );
        assert_eq!(
            one_line(&diffs),
            "differs from the baseline: H2 absent -> ruled out, H9 CONFIRMED -> ruled out, H99 ruled out -> absent"
        );
        assert!(compare(&baseline[..2], &now[..1]).iter().all(|d| d.id == "H9"));
    }
}
