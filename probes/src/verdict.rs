//! What a probe concludes about one hypothesis.

use serde::{Deserialize, Serialize};

use crate::Evidence;

/// The four answers a probe can give. Only these strings ever reach JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Confirmed,
    Inconclusive,
    RuledOut,
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Confirmed => "confirmed",
            Status::RuledOut => "ruled_out",
            Status::Inconclusive => "inconclusive",
            Status::NotApplicable => "not_applicable",
        }
    }

    /// The spelling for people: `CONFIRMED`, `ruled out`...
    pub fn label(self) -> &'static str {
        match self {
            Status::Confirmed => "CONFIRMED",
            Status::RuledOut => "ruled out",
            Status::Inconclusive => "inconclusive",
            Status::NotApplicable => "n/a",
        }
    }
}

/// A probe's answer, with the facts that decided it and the usual fix.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub fix: &'static str,
}
