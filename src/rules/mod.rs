//! The rulebook: pure pre-check of lettres d'intention and projets de santé against the
//! cahier des charges (../shared/spec/rules.md). No I/O here: reference data and "today" come in
//! as arguments, so every rule is unit-tested at its boundaries.

use serde::Deserialize;

use crate::config::Problem;

/// Tunable parts of the rulebook (`[rules]` in the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Words that name a single disease rather than a specialty (LI-SPEC-02).
    pub pathology_keywords: Vec<String>,
    /// A text champ shorter than this (in characters, trimmed) counts as empty (LI-CONT-01, PS-CONT-01).
    pub min_text_length: usize,
    /// How far (in %) declared figures may stray from the reference demography (LI-ADH-02).
    pub demography_tolerance_pct: u32,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            pathology_keywords: [
                "diabète",
                "glaucome",
                "psoriasis",
                "insuffisance cardiaque",
                "asthme",
                "épilepsie",
                "mélanome",
                "cancer du sein",
            ]
            .map(String::from)
            .to_vec(),
            min_text_length: 20,
            demography_tolerance_pct: 25,
        }
    }
}

impl RulesConfig {
    /// Problems of this section, for `essbot config check`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.demography_tolerance_pct == 0 || self.demography_tolerance_pct > 100 {
            out.push(Problem {
                path: "rules.demography_tolerance_pct".into(),
                message: "must be between 1 and 100".into(),
            });
        }
        if self.pathology_keywords.iter().any(|k| k.trim().is_empty()) {
            out.push(Problem {
                path: "rules.pathology_keywords".into(),
                message: "contains an empty keyword".into(),
            });
        }
        out
    }
}
