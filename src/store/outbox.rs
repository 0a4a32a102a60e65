//! The write-back outbox (migration 0003): every intended write to DS is recorded before it is
//! sent, claimed (`sending`) just before the call, and its answer recorded after, so that
//! nothing is written twice across cycles, crashes, restarts and failovers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_ts, parse_ts, placeholders};

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Recorded, not sent yet (or sent and cut off before DS could execute it).
    Pending,
    /// Sent; its answer was not recorded yet. Found at start, it means a crash: the dossier is
    /// read back from DS before anything is sent again.
    Sending,
    /// DS applied it (or it was found applied on reading the dossier back).
    Done,
    /// DS refused it; not sent again until the intent changes or the retry delay passed.
    Failed,
    /// Replaced by a newer intent for the same target before it was done.
    Superseded,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "superseded" => Self::Superseded,
            _ => return None,
        })
    }
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub dossier: i64,
    pub demarche: i64,
    pub target: String,
    pub content_hash: String,
    pub payload: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// `SELECT <every column read by [`read`]> FROM outbox o <rest>`, as one literal.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, dossier, demarche, target, content_hash, payload, status, attempts, \
             last_error, updated_at FROM outbox o ",
            $rest
        )
    };
}

fn read(r: &AnyRow) -> Result<OutboxRow, StoreError> {
    let status: String = r.try_get("status")?;
    let updated: String = r.try_get("updated_at")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        dossier: r.try_get("dossier")?,
        demarche: r.try_get("demarche")?,
        target: r.try_get("target")?,
        content_hash: r.try_get("content_hash")?,
        payload: r.try_get("payload")?,
        // An unknown status (a newer version's) is treated as failed: never resent blindly.
        status: OutboxStatus::parse(&status).unwrap_or(OutboxStatus::Failed),
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        updated_at: parse_ts("outbox.updated_at", &updated).unwrap_or(DateTime::<Utc>::MIN_UTC),
    })
}

impl Store {
    /// Rows of `dossier` left `sending`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_sending(&self, dossier: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(select!(
            "WHERE dossier = $1 AND status = 'sending' ORDER BY id"
        ))
        .bind(dossier)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read).collect()
    }

    /// The last intent recorded for each target of `dossier`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_latest(
        &self,
        dossier: i64,
    ) -> Result<BTreeMap<String, OutboxRow>, StoreError> {
        let rows = sqlx::query(select!(
            "WHERE dossier = $1 AND intent_seq =
                 (SELECT MAX(intent_seq) FROM outbox WHERE dossier = o.dossier AND target = o.target)"
        ))
        .bind(dossier)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| read(r).map(|row| (row.target.clone(), row)))
            .collect()
    }

    /// True when this exact intent was ever done (a message body already sent).
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_ever_done(
        &self,
        dossier: i64,
        target: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox
             WHERE dossier = $1 AND target = $2 AND content_hash = $3 AND status = 'done'",
        )
        .bind(dossier)
        .bind(target)
        .bind(hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Records an intent as pending and the newest for its target (re-queuing the row if this
    /// intent was recorded before), and supersedes the target's other open rows. Returns its
    /// id.
    ///
    /// # Errors
    /// Database failures, [`StoreError::NotActive`].
    pub async fn outbox_enqueue(
        &self,
        dossier: i64,
        demarche: i64,
        target: &str,
        hash: &str,
        payload: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let now = format_ts(now);
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (dossier, demarche, target, content_hash, payload, status,
                                 intent_seq, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending',
                     (SELECT COALESCE(MAX(intent_seq), 0) + 1 FROM outbox), $6, $6)
             ON CONFLICT (dossier, target, content_hash) DO UPDATE SET
                 status = 'pending', intent_seq = excluded.intent_seq, payload = excluded.payload,
                 updated_at = excluded.updated_at, last_error = NULL
             RETURNING id",
        )
        .bind(dossier)
        .bind(demarche)
        .bind(target)
        .bind(hash)
        .bind(payload)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET status = 'superseded', updated_at = $4
             WHERE dossier = $1 AND target = $2 AND id <> $3 AND status IN ('pending', 'failed')",
        )
        .bind(dossier)
        .bind(target)
        .bind(id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Supersedes the open (pending or failed) rows of a target whose content DS already shows
    /// by other means, except the intent `keep_hash`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_supersede_others(
        &self,
        dossier: i64,
        target: &str,
        keep_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'superseded', updated_at = $4
             WHERE dossier = $1 AND target = $2 AND content_hash <> $3
               AND status IN ('pending', 'failed')",
        )
        .bind(dossier)
        .bind(target)
        .bind(keep_hash)
        .bind(format_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims rows for sending: marks them `sending`, in one fenced transaction, just before
    /// the call that carries them. After a failover, a row left `sending` is read back from DS
    /// before anything is sent again.
    ///
    /// # Errors
    /// Database failures, [`StoreError::NotActive`] (then nothing is claimed, nothing must be
    /// sent).
    pub async fn outbox_mark_sending(
        &self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, sent_at = $1,
                               updated_at = $1
             WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        // Only placeholders are spliced in: the values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format_ts(now));
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the end of a row: `status` with DS's answer and, for a failure or a deferral,
    /// why. Not fenced: it records what happened to a call already made.
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_finish(
        &self,
        id: i64,
        status: OutboxStatus,
        error: Option<&str>,
        answer: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = format_ts(now);
        sqlx::query(
            "UPDATE outbox SET status = $2, last_error = $3, answer = $4, updated_at = $5,
                               done_at = CASE WHEN $2 = 'done' THEN $5 ELSE done_at END
             WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .bind(answer.to_string())
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Rows not settled yet: pending, or sending (waiting for the read-back).
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_open_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')",
            )
            .fetch_one(&self.pool)
            .await?,
        )
    }

    /// Every row DS refused and that no newer intent replaced.
    ///
    /// # Errors
    /// Database failures.
    pub async fn outbox_failed(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(select!("WHERE status = 'failed' ORDER BY dossier, target"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read).collect()
    }
}
