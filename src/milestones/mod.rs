//! Financing milestones, payments and deadlines (../shared/spec/milestones.md): a pure function
//! of (events, today, configuration), so the same inputs always give the same schedule.

use serde::Deserialize;

use crate::config::Problem;

/// Tunable parts of the schedule (`[milestones]` in the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilestonesConfig {
    /// Dotation for the smallest ESS (10 members), in euros.
    pub dotation_min_eur: u32,
    /// Members at which the dotation reaches its floor.
    pub dotation_min_members: u32,
    /// Dotation for the largest ESS, in euros.
    pub dotation_max_eur: u32,
    /// Members at which the dotation reaches its ceiling.
    pub dotation_max_members: u32,
}

impl Default for MilestonesConfig {
    fn default() -> Self {
        Self {
            dotation_min_eur: 50_000,
            dotation_min_members: 10,
            dotation_max_eur: 100_000,
            dotation_max_members: 100,
        }
    }
}

impl MilestonesConfig {
    /// Problems of this section, for `essbot config check`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.dotation_min_members >= self.dotation_max_members {
            out.push(Problem {
                path: "milestones.dotation_max_members".into(),
                message: "must be above dotation_min_members".into(),
            });
        }
        if self.dotation_min_eur > self.dotation_max_eur {
            out.push(Problem {
                path: "milestones.dotation_max_eur".into(),
                message: "must be at least dotation_min_eur".into(),
            });
        }
        out
    }
}
