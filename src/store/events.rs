//! The `milestone_events` table (migration `0005_ledger.sql`): append and read back.
//!
//! There is no update and no delete here, and the table's triggers refuse them anyway: the
//! ledger is an audit trail, a correction is a new row.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_ts, parse_ts};
use crate::milestones::{Event, EventKind, EventSource};

fn source_str(source: EventSource) -> &'static str {
    match source {
        EventSource::Ds => "ds",
        EventSource::Annotation => "annotation",
        EventSource::Manual => "manual",
    }
}

fn parse_source(text: &str) -> Result<EventSource, StoreError> {
    Ok(match text {
        "ds" => EventSource::Ds,
        "annotation" => EventSource::Annotation,
        "manual" => EventSource::Manual,
        other => {
            return Err(StoreError::Corrupt {
                column: "milestone_events.source",
                value: other.to_owned(),
            });
        }
    })
}

const SELECT_EVENTS: &str =
    "SELECT project, kind, effective, source, author, recorded_at, reason FROM milestone_events";

impl Store {
    /// Appends `events` in one transaction, in the order given (which breaks ties between
    /// events recorded at the same instant: the later row wins).
    ///
    /// # Errors
    /// A database failure, [`StoreError::NotActive`]; then none of `events` is recorded.
    pub async fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for e in events {
            let encode = |column, r: serde_json::Result<String>| {
                r.map_err(|err| StoreError::Corrupt {
                    column,
                    value: err.to_string(),
                })
            };
            let kind = encode("milestone_events.kind", serde_json::to_string(&e.kind))?;
            let slot = encode("milestone_events.slot", serde_json::to_string(&e.slot()))?;
            sqlx::query(
                "INSERT INTO milestone_events
                     (project, slot, kind, effective, source, author, recorded_at, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(e.project)
            .bind(slot)
            .bind(kind)
            .bind(e.effective.format("%Y-%m-%d").to_string())
            .bind(source_str(e.source))
            .bind(&e.author)
            .bind(format_ts(e.recorded_at))
            .bind(&e.reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every event of every project, each project's in the order they were appended.
    ///
    /// # Errors
    /// A database failure, or a row this version cannot read.
    pub async fn events(&self) -> Result<BTreeMap<i64, Vec<Event>>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_EVENTS} ORDER BY id")))
            .fetch_all(&self.pool)
            .await?;
        let mut out: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
        for row in rows {
            let e = event_from_row(&row)?;
            out.entry(e.project).or_default().push(e);
        }
        Ok(out)
    }

    /// The events of one project, in the order they were appended.
    ///
    /// # Errors
    /// As [`Store::events`].
    pub async fn events_of(&self, project: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_EVENTS} WHERE project = $1 ORDER BY id"
        )))
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// How many events the ledger holds (for tests and `essbot status`).
    ///
    /// # Errors
    /// A database failure.
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM milestone_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn event_from_row(row: &AnyRow) -> Result<Event, StoreError> {
    let kind_text: String = row.try_get("kind")?;
    let kind: EventKind = serde_json::from_str(&kind_text).map_err(|_| StoreError::Corrupt {
        column: "milestone_events.kind",
        value: kind_text.clone(),
    })?;
    let effective_text: String = row.try_get("effective")?;
    let effective = NaiveDate::parse_from_str(&effective_text, "%Y-%m-%d").map_err(|_| {
        StoreError::Corrupt {
            column: "milestone_events.effective",
            value: effective_text.clone(),
        }
    })?;
    let source: String = row.try_get("source")?;
    let recorded_at: String = row.try_get("recorded_at")?;
    Ok(Event {
        project: row.try_get("project")?,
        kind,
        effective,
        source: parse_source(&source)?,
        author: row.try_get("author")?,
        recorded_at: parse_ts("milestone_events.recorded_at", &recorded_at)?,
        reason: row.try_get("reason")?,
    })
}
