//! Where the sync of each démarche stands: watermarks, the pass in progress, the last outcome.

use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, format_ts, parse_opt_ts, parse_ts};

/// The sync position of one démarche. Written whole, in the same transaction as the data of the
/// page that moved it, so that it never claims more than what was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub demarche: i64,
    /// Max `dateDerniereModification` committed: `updatedSince` of the next incremental pass.
    pub watermark: Option<DateTime<Utc>>,
    /// Max `dateSupression` committed from `deletedDossiers`.
    pub deleted_watermark: Option<DateTime<Utc>>,
    /// Max `dateSupression` committed from `pendingDeletedDossiers`.
    pub pending_deleted_watermark: Option<DateTime<Utc>>,
    /// The pass in progress: `Some` between a crash and its resumption.
    pub pass: Option<Pass>,
    /// Number of the last full reconciliation started; dossiers it listed carry it.
    pub full_pass_id: i64,
    /// When the last full reconciliation completed.
    pub last_full_sync: Option<DateTime<Utc>>,
    /// When a pass last completed without error.
    pub last_success: Option<DateTime<Utc>>,
    /// The last error that stopped this démarche's sync (French, for `essbot status`); cleared
    /// by the next success.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl SyncState {
    /// The state of a démarche never synced.
    pub fn new(demarche: i64) -> Self {
        Self {
            demarche,
            watermark: None,
            deleted_watermark: None,
            pending_deleted_watermark: None,
            pass: None,
            full_pass_id: 0,
            last_full_sync: None,
            last_success: None,
            last_error: None,
            last_error_at: None,
        }
    }
}

/// A pass over one of DS's listings, resumable from its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub kind: PassKind,
    pub phase: PassPhase,
    /// The `updatedSince` / `deletedSince` of the current phase, kept so that a resumed cursor is
    /// used with the query that produced it.
    pub since: Option<DateTime<Utc>>,
    /// The `endCursor` of the last committed page; `None` before the first page.
    pub cursor: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// Incremental passes follow `updatedSince`; full ones re-list everything (blind spots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    Incremental,
    Full,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::Full => "full",
        }
    }
}

/// Which listing a pass is reading: a full pass reads the three in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassPhase {
    Dossiers,
    Deleted,
    PendingDeleted,
}

impl PassPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dossiers => "dossiers",
            Self::Deleted => "deleted",
            Self::PendingDeleted => "pending_deleted",
        }
    }
}

impl Store {
    /// The sync position of `demarche`, or [`SyncState::new`] when it was never synced.
    ///
    /// # Errors
    /// Database failures, or [`StoreError::Corrupt`] for unreadable stored values.
    pub async fn sync_state(&self, demarche: i64) -> Result<SyncState, StoreError> {
        let row = sqlx::query(SELECT_STATE)
            .bind(demarche)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(SyncState::new(demarche)),
            Some(row) => state_from_row(&row),
        }
    }

    /// Every démarche's sync position, by number (`essbot status`).
    ///
    /// # Errors
    /// As [`Store::sync_state`].
    pub async fn sync_states(&self) -> Result<Vec<SyncState>, StoreError> {
        let rows = sqlx::query(SELECT_ALL_STATES).fetch_all(&self.pool).await?;
        rows.iter().map(state_from_row).collect()
    }

    /// Saves a sync position on its own (no data with it): the start of a pass before its
    /// first request, or a success that committed nothing new.
    ///
    /// # Errors
    /// Database failures.
    pub async fn save_sync_state(&self, state: &SyncState) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        write_state(&mut tx, state).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records why this démarche's sync stopped, leaving its position untouched so that the
    /// next cycle resumes where the last commit left it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_sync_error(
        &self,
        demarche: i64,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_state (demarche, last_error, last_error_at) VALUES ($1, $2, $3)
             ON CONFLICT (demarche) DO UPDATE
             SET last_error = excluded.last_error, last_error_at = excluded.last_error_at",
        )
        .bind(demarche)
        .bind(message)
        .bind(format_ts(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

const SELECT_STATE: &str = "SELECT demarche, watermark, deleted_watermark, pending_deleted_watermark, \
     pass_kind, pass_phase, pass_since, pass_cursor, pass_started_at, full_pass_id, \
     last_full_sync, last_success, last_error, last_error_at FROM sync_state WHERE demarche = $1";

const SELECT_ALL_STATES: &str = "SELECT demarche, watermark, deleted_watermark, pending_deleted_watermark, \
     pass_kind, pass_phase, pass_since, pass_cursor, pass_started_at, full_pass_id, \
     last_full_sync, last_success, last_error, last_error_at FROM sync_state ORDER BY demarche";

/// Writes the whole row, inside the caller's transaction.
pub(super) async fn write_state(
    tx: &mut Transaction<'static, Any>,
    s: &SyncState,
) -> Result<(), StoreError> {
    let pass = s.pass.as_ref();
    sqlx::query(
        "INSERT INTO sync_state (demarche, watermark, deleted_watermark, pending_deleted_watermark,
             pass_kind, pass_phase, pass_since, pass_cursor, pass_started_at, full_pass_id,
             last_full_sync, last_success, last_error, last_error_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (demarche) DO UPDATE SET
             watermark = excluded.watermark,
             deleted_watermark = excluded.deleted_watermark,
             pending_deleted_watermark = excluded.pending_deleted_watermark,
             pass_kind = excluded.pass_kind,
             pass_phase = excluded.pass_phase,
             pass_since = excluded.pass_since,
             pass_cursor = excluded.pass_cursor,
             pass_started_at = excluded.pass_started_at,
             full_pass_id = excluded.full_pass_id,
             last_full_sync = excluded.last_full_sync,
             last_success = excluded.last_success,
             last_error = excluded.last_error,
             last_error_at = excluded.last_error_at",
    )
    .bind(s.demarche)
    .bind(s.watermark.map(format_ts))
    .bind(s.deleted_watermark.map(format_ts))
    .bind(s.pending_deleted_watermark.map(format_ts))
    .bind(pass.map(|p| p.kind.as_str()))
    .bind(pass.map(|p| p.phase.as_str()))
    .bind(pass.and_then(|p| p.since).map(format_ts))
    .bind(pass.and_then(|p| p.cursor.clone()))
    .bind(pass.map(|p| format_ts(p.started_at)))
    .bind(s.full_pass_id)
    .bind(s.last_full_sync.map(format_ts))
    .bind(s.last_success.map(format_ts))
    .bind(s.last_error.as_deref())
    .bind(s.last_error_at.map(format_ts))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn state_from_row(row: &sqlx::any::AnyRow) -> Result<SyncState, StoreError> {
    let kind: Option<String> = row.try_get("pass_kind")?;
    let pass = match kind {
        None => None,
        Some(kind) => {
            let kind = match kind.as_str() {
                "incremental" => PassKind::Incremental,
                "full" => PassKind::Full,
                _ => {
                    return Err(StoreError::Corrupt {
                        column: "sync_state.pass_kind",
                        value: kind,
                    });
                }
            };
            let phase: Option<String> = row.try_get("pass_phase")?;
            let phase = match phase.as_deref() {
                Some("dossiers") => PassPhase::Dossiers,
                Some("deleted") => PassPhase::Deleted,
                Some("pending_deleted") => PassPhase::PendingDeleted,
                other => {
                    return Err(StoreError::Corrupt {
                        column: "sync_state.pass_phase",
                        value: other.unwrap_or("NULL").to_owned(),
                    });
                }
            };
            let started: Option<String> = row.try_get("pass_started_at")?;
            let started_at = match started {
                Some(t) => parse_ts("sync_state.pass_started_at", &t)?,
                None => {
                    return Err(StoreError::Corrupt {
                        column: "sync_state.pass_started_at",
                        value: "NULL".into(),
                    });
                }
            };
            Some(Pass {
                kind,
                phase,
                since: parse_opt_ts("sync_state.pass_since", row.try_get("pass_since")?)?,
                cursor: row.try_get("pass_cursor")?,
                started_at,
            })
        }
    };
    Ok(SyncState {
        demarche: row.try_get("demarche")?,
        watermark: parse_opt_ts("sync_state.watermark", row.try_get("watermark")?)?,
        deleted_watermark: parse_opt_ts(
            "sync_state.deleted_watermark",
            row.try_get("deleted_watermark")?,
        )?,
        pending_deleted_watermark: parse_opt_ts(
            "sync_state.pending_deleted_watermark",
            row.try_get("pending_deleted_watermark")?,
        )?,
        pass,
        full_pass_id: row.try_get("full_pass_id")?,
        last_full_sync: parse_opt_ts("sync_state.last_full_sync", row.try_get("last_full_sync")?)?,
        last_success: parse_opt_ts("sync_state.last_success", row.try_get("last_success")?)?,
        last_error: row.try_get("last_error")?,
        last_error_at: parse_opt_ts("sync_state.last_error_at", row.try_get("last_error_at")?)?,
    })
}
