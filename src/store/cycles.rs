//! One row per cycle, so that `essbot status` can tell when the daemon last ran and how it went.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, format_ts, parse_opt_ts, parse_ts};

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleOutcome {
    /// Started and not finished yet (or the process is still running it).
    Running,
    /// Every step of every démarche succeeded.
    Ok,
    /// Some démarches or dossiers failed, the others went through.
    Partial,
    /// Nothing useful was done.
    Failed,
    /// The process stopped during the cycle: found `running` when the next one began.
    Interrupted,
}

impl CycleOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "ok" => Self::Ok,
            "partial" => Self::Partial,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }
}

/// A cycle as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: CycleOutcome,
    pub error: Option<String>,
    /// The counters the cycle chose to keep (JSON).
    pub summary: Option<serde_json::Value>,
}

impl Store {
    /// Records the start of a cycle and returns its id. A cycle still `running` is from a
    /// process that died: it is marked `interrupted` first, so `status` does not show it as live.
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_cycle(&self, at: DateTime<Utc>) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE cycles SET outcome = 'interrupted' WHERE outcome = 'running'")
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cycles (started_at, outcome) VALUES ($1, 'running') RETURNING id",
        )
        .bind(format_ts(at))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records how cycle `id` ended.
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish_cycle(
        &self,
        id: i64,
        at: DateTime<Utc>,
        outcome: CycleOutcome,
        error: Option<&str>,
        summary: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cycles SET finished_at = $2, outcome = $3, error = $4, summary = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(format_ts(at))
        .bind(outcome.as_str())
        .bind(error)
        .bind(summary.map(serde_json::Value::to_string))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent cycle, if any ran.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn last_cycle(&self) -> Result<Option<Cycle>, StoreError> {
        Ok(self.recent_cycles(1).await?.into_iter().next())
    }

    /// The `limit` most recent cycles, newest first.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn recent_cycles(&self, limit: i64) -> Result<Vec<Cycle>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, started_at, finished_at, outcome, error, summary FROM cycles
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let outcome: String = row.try_get("outcome")?;
                let summary: Option<String> = row.try_get("summary")?;
                Ok(Cycle {
                    id: row.try_get("id")?,
                    started_at: parse_ts("cycles.started_at", row.try_get("started_at")?)?,
                    finished_at: parse_opt_ts("cycles.finished_at", row.try_get("finished_at")?)?,
                    outcome: CycleOutcome::parse(&outcome).ok_or(StoreError::Corrupt {
                        column: "cycles.outcome",
                        value: outcome.clone(),
                    })?,
                    error: row.try_get("error")?,
                    summary: summary
                        .map(|s| {
                            serde_json::from_str(&s).map_err(|_| StoreError::Corrupt {
                                column: "cycles.summary",
                                value: s,
                            })
                        })
                        .transpose()?,
                })
            })
            .collect()
    }
}
