//! The `milestone_events` table (migration `0005_ledger.sql`): append and read back.
//!
//! There is no update and no delete here, and the table's triggers refuse them anyway: the
//! ledger is an audit trail, a correction is a new row.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::Row;

use super::LedgerError;
use crate::milestones::{Event, EventKind, EventSource};
use crate::store::{Store, format_ts, parse_ts};

fn source_str(source: EventSource) -> &'static str {
    match source {
        EventSource::Ds => "ds",
        EventSource::Annotation => "annotation",
        EventSource::Manual => "manual",
    }
}

fn parse_source(text: &str) -> Result<EventSource, LedgerError> {
    Ok(match text {
        "ds" => EventSource::Ds,
        "annotation" => EventSource::Annotation,
        "manual" => EventSource::Manual,
        other => {
            return Err(LedgerError::Corrupt {
                column: "milestone_events.source",
                value: other.to_owned(),
            });
        }
    })
}

/// Appends `events` in one transaction, in the order given (which breaks ties between events
/// recorded at the same instant: the later row wins).
///
/// # Errors
/// A database failure; then none of `events` is recorded.
pub async fn append(store: &Store, events: &[Event]) -> Result<(), LedgerError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tx = store.pool().begin().await?;
    for e in events {
        let kind = serde_json::to_string(&e.kind).map_err(LedgerError::Encode)?;
        let slot = serde_json::to_string(&e.slot()).map_err(LedgerError::Encode)?;
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
pub async fn all(store: &Store) -> Result<BTreeMap<i64, Vec<Event>>, LedgerError> {
    let rows = sqlx::query(
        "SELECT project, kind, effective, source, author, recorded_at, reason
         FROM milestone_events ORDER BY id",
    )
    .fetch_all(store.pool())
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
/// As [`all`].
pub async fn of_project(store: &Store, project: i64) -> Result<Vec<Event>, LedgerError> {
    let rows = sqlx::query(
        "SELECT project, kind, effective, source, author, recorded_at, reason
         FROM milestone_events WHERE project = $1 ORDER BY id",
    )
    .bind(project)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(event_from_row).collect()
}

/// How many events the ledger holds (for tests and `essbot status`).
///
/// # Errors
/// A database failure.
pub async fn count(store: &Store) -> Result<u64, LedgerError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM milestone_events")
        .fetch_one(store.pool())
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn event_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Event, LedgerError> {
    let kind_text: String = row.try_get("kind")?;
    let kind: EventKind = serde_json::from_str(&kind_text).map_err(|_| LedgerError::Corrupt {
        column: "milestone_events.kind",
        value: kind_text.clone(),
    })?;
    let effective_text: String = row.try_get("effective")?;
    let effective = NaiveDate::parse_from_str(&effective_text, "%Y-%m-%d").map_err(|_| {
        LedgerError::Corrupt {
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
