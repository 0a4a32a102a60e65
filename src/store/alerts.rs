//! The alert ledger's tables (migrations `0004_alerts.sql`, `0006_instances.sql`):
//! `alert_ledger`, one row per alert key, and `alert_delivery`, one row per alert and channel.
//! The delivery loop itself is `alerts::AlertLedger`; this is its storage, in its terms.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::leadership::Instance;
use super::{Store, StoreError, format_ts, parse_opt_ts, parse_ts, placeholders};

/// An alert as the ledger stores it (the alerts module turns it back into an `Alert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub key: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub dossier_url: Option<String>,
    /// JSON.
    pub payload: String,
}

/// An alert to record; a key already recorded is left as it is.
pub type NewAlert = AlertRecord;

/// A delivery due on a channel.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub channel: String,
    pub alert: AlertRecord,
    /// The instance that claimed it less than a lease ago and never recorded the outcome
    /// (another one: see [`Store::due_deliveries`]); `None` when it is free to claim.
    pub claimed_by: Option<String>,
}

/// Where one alert stands on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub channel: String,
    /// `pending` or `sent`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The instance sending it right now (or that died sending it), and since when.
    pub claimed_by: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
}

/// Everything the ledger knows about one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub alert: AlertRecord,
    pub enqueued_at: DateTime<Utc>,
    /// Set once every channel it was routed to accepted it.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its deliveries, by channel.
    pub deliveries: Vec<DeliveryRecord>,
}

/// What `last_error` says of a delivery claimed by an instance that never recorded its outcome.
const INTERRUPTED: &str = "envoi précédent interrompu sans réponse enregistrée (instance arrêtée \
     pendant l'envoi) : renvoyé avec le même identifiant";

impl Store {
    /// Records `alerts` (one transaction) and returns how many keys were new.
    ///
    /// # Errors
    /// A database failure, [`StoreError::NotActive`]; then none is recorded.
    pub async fn enqueue_alerts(
        &self,
        alerts: &[NewAlert],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now = format_ts(now);
        let mut tx = self.write_tx().await?;
        let mut added = 0;
        for alert in alerts {
            added += sqlx::query(
                "INSERT INTO alert_ledger
                     (key, recipient, subject, body, dossier_url, payload, enqueued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&alert.key)
            .bind(&alert.recipient)
            .bind(&alert.subject)
            .bind(&alert.body)
            .bind(&alert.dossier_url)
            .bind(&alert.payload)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Routes every open alert to each of `channels` it has no delivery row for yet.
    ///
    /// # Errors
    /// Database failures.
    pub async fn route_alerts(&self, channels: &[&str]) -> Result<(), StoreError> {
        for channel in channels {
            sqlx::query(
                "INSERT INTO alert_delivery (alert_key, channel, next_attempt_at)
                 SELECT key, $1, enqueued_at FROM alert_ledger WHERE completed_at IS NULL
                 ON CONFLICT (alert_key, channel) DO NOTHING",
            )
            .bind(*channel)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Deliveries on `channels` due at `now`, oldest alert first, at most `limit`: those not
    /// claimed, or claimed before `stale_before` by an instance that never recorded the
    /// outcome, and those claimed since by another instance ([`DueDelivery::claimed_by`]: the
    /// caller takes them over only if that instance is gone, [`Store::instance_alive`]).
    ///
    /// # Errors
    /// Database failures.
    pub async fn due_deliveries(
        &self,
        channels: &[&str],
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT d.channel, l.key, l.recipient, l.subject, l.body, l.dossier_url, l.payload,
                    CASE WHEN d.claimed_at IS NULL OR d.claimed_at <= $2 THEN NULL
                         ELSE d.claimed_by END AS live_claim
             FROM alert_delivery d JOIN alert_ledger l ON l.key = d.alert_key
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1
               AND (d.claimed_at IS NULL OR d.claimed_at <= $2 OR d.claimed_by <> $4)
               AND d.channel IN ({})
             ORDER BY l.enqueued_at, l.key, d.channel
             LIMIT $3",
            placeholders(5, channels.len())
        );
        // Only placeholders are spliced in: the values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format_ts(now))
            .bind(format_ts(stale_before))
            .bind(limit)
            .bind(&Instance::current().id);
        for c in channels {
            q = q.bind(*c);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DueDelivery {
                    channel: r.try_get("channel")?,
                    alert: alert_from_row(r)?,
                    claimed_by: r.try_get("live_claim")?,
                })
            })
            .collect()
    }

    /// Claims the delivery of `key` on `channel` for this instance, in the database, before it
    /// goes out: false when another process claimed it (or it was sent) meanwhile. A claim
    /// older than `stale_before`, or one of `take_over` (an instance known to be gone), was
    /// left by an instance that died during the send: it is taken over, counted as an attempt
    /// and noted in `last_error`.
    ///
    /// # Errors
    /// Database failures, [`StoreError::NotActive`] (then nothing may be sent).
    pub async fn claim_delivery(
        &self,
        key: &str,
        channel: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        take_over: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = format_ts(now);
        let mut tx = self.write_tx().await?;
        let claimed = sqlx::query(
            "UPDATE alert_delivery
             SET attempts = attempts + CASE WHEN claimed_at IS NULL THEN 0 ELSE 1 END,
                 last_error = CASE WHEN claimed_at IS NULL THEN last_error ELSE $6 END,
                 claimed_by = $4, claimed_at = $3
             WHERE alert_key = $1 AND channel = $2 AND status = 'pending'
               AND next_attempt_at <= $3
               AND (claimed_at IS NULL OR claimed_at <= $5 OR claimed_by = $7)",
        )
        .bind(key)
        .bind(channel)
        .bind(&now)
        .bind(&Instance::current().id)
        .bind(format_ts(stale_before))
        .bind(INTERRUPTED)
        .bind(take_over)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(claimed == 1)
    }

    /// Records that `channel` accepted the alert `key`, releasing the claim. Not fenced: it
    /// records what happened to a send already made.
    ///
    /// # Errors
    /// Database failures.
    pub async fn delivery_sent(
        &self,
        key: &str,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_delivery
             SET status = 'sent', sent_at = $1, attempts = attempts + 1,
                 claimed_by = NULL, claimed_at = NULL
             WHERE alert_key = $2 AND channel = $3",
        )
        .bind(format_ts(now))
        .bind(key)
        .bind(channel)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Attempts recorded for the delivery of `key` on `channel`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn delivery_attempts(&self, key: &str, channel: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT attempts FROM alert_delivery WHERE alert_key = $1 AND channel = $2",
        )
        .bind(key)
        .bind(channel)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records a failed attempt: why, and when to try again; releases the claim.
    ///
    /// # Errors
    /// Database failures.
    pub async fn delivery_failed(
        &self,
        key: &str,
        channel: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_delivery
             SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,
                 claimed_by = NULL, claimed_at = NULL
             WHERE alert_key = $3 AND channel = $4 AND status = 'pending'",
        )
        .bind(error)
        .bind(format_ts(retry_at))
        .bind(key)
        .bind(channel)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes every open alert that all of `channels` accepted (at least one delivery row sent,
    /// so that an alert enqueued after the routing step stays open).
    ///
    /// # Errors
    /// Database failures.
    pub async fn complete_alerts(
        &self,
        channels: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if channels.is_empty() {
            return Ok(());
        }
        let list = placeholders(2, channels.len());
        let sql = format!(
            "UPDATE alert_ledger SET completed_at = $1
             WHERE completed_at IS NULL
               AND NOT EXISTS (
                 SELECT 1 FROM alert_delivery d
                 WHERE d.alert_key = alert_ledger.key AND d.channel IN ({list})
                   AND d.status <> 'sent')
               AND EXISTS (
                 SELECT 1 FROM alert_delivery d
                 WHERE d.alert_key = alert_ledger.key AND d.channel IN ({list})
                   AND d.status = 'sent')"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format_ts(now));
        for c in channels {
            q = q.bind(*c);
        }
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// Alerts not yet accepted by every channel they were routed to (or not routed yet).
    ///
    /// # Errors
    /// Database failures.
    pub async fn pending_alerts_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM alert_ledger WHERE completed_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Everything the ledger knows about `key`; `None` if it was never enqueued.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`] for an unreadable instant.
    pub async fn alert(&self, key: &str) -> Result<Option<AlertState>, StoreError> {
        let row = sqlx::query(
            "SELECT key, recipient, subject, body, dossier_url, payload, enqueued_at, completed_at
             FROM alert_ledger WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let deliveries = sqlx::query(
            "SELECT channel, status, attempts, last_error, next_attempt_at, sent_at, claimed_by,
                    claimed_at
             FROM alert_delivery WHERE alert_key = $1 ORDER BY channel",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|d| {
            Ok(DeliveryRecord {
                channel: d.try_get("channel")?,
                status: d.try_get("status")?,
                attempts: d.try_get("attempts")?,
                last_error: d.try_get("last_error")?,
                next_attempt_at: parse_ts(
                    "alert_delivery.next_attempt_at",
                    &d.try_get::<String, _>("next_attempt_at")?,
                )?,
                sent_at: parse_opt_ts("alert_delivery.sent_at", d.try_get("sent_at")?)?,
                claimed_by: d.try_get("claimed_by")?,
                claimed_at: parse_opt_ts("alert_delivery.claimed_at", d.try_get("claimed_at")?)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let enqueued: String = row.try_get("enqueued_at")?;
        Ok(Some(AlertState {
            alert: alert_from_row(&row)?,
            enqueued_at: parse_ts("alert_ledger.enqueued_at", &enqueued)?,
            completed_at: parse_opt_ts("alert_ledger.completed_at", row.try_get("completed_at")?)?,
            deliveries,
        }))
    }
}

fn alert_from_row(r: &AnyRow) -> Result<AlertRecord, StoreError> {
    Ok(AlertRecord {
        key: r.try_get("key")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        dossier_url: r.try_get("dossier_url")?,
        payload: r.try_get("payload")?,
    })
}
