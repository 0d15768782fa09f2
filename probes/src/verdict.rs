//! What a probe concludes about one hypothesis.

use serde::{Deserialize, Serialize};

use crate::{Dimension, Evidence, Rate, Spread};

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
    /// The fact with its rate and spread, as reports print it.
    pub summary: String,
    /// The decisive fact alone.
    pub fact: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// The worker's line the fact quotes, whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    pub evidence: Vec<Evidence>,
    pub fix: &'static str,
    /// Lower ranks explain higher ones (see `Probe::causal_rank`).
    pub causal_rank: u8,
    /// The dimension a comparative probe judges (see `Probe::compares`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compares: Option<Dimension>,
}
