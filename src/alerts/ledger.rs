//! The delivery ledger: SQLite tables `alert_ledger` (one row per alert key) and
//! `alert_delivery` (one row per alert and channel), created by `0004_alerts.sql`.
//!
//! All state lives in the database and every instant comes from the caller's `now`, so a
//! restarted process, or a test moving its clock, sees exactly what the previous one left.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::SqlitePool;
use tracing::{Instrument, info, info_span, warn};

use super::channel::{Channel, ChannelKind};
use super::{Alert, Recipient};

/// A ledger operation failed; the cycle reports it and tries again next time.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("alert ledger: {0}")]
    Database(#[from] sqlx::Error),
    #[error("alert ledger: payload of {key} is not valid JSON: {source}")]
    Payload {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("alert ledger: row of {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
}

/// How long to wait before retrying a failed delivery: `first`, then doubling after each
/// further failure, never more than `max`. Retries happen in later cycles, when `now` has
/// passed the recorded `next_attempt_at`; there is no sleeping in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: chrono::Duration,
    pub max: chrono::Duration,
}

impl Default for Backoff {
    /// Five minutes, doubling up to six hours: a relay down for a few minutes costs one cycle,
    /// one down for a day is tried four times a day without flooding the logs.
    fn default() -> Self {
        Self {
            first: chrono::Duration::minutes(5),
            max: chrono::Duration::hours(6),
        }
    }
}

impl Backoff {
    /// The delay after the `failures`-th consecutive failure (1 for the first).
    pub fn delay(&self, failures: u32) -> chrono::Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first
            .checked_mul(1_i32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// What one call to [`AlertLedger::deliver_due`] did. `sent` and `failed` count deliveries
/// (one alert on one channel); `pending` counts alerts still awaiting a channel afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    pub failed: u64,
    pub pending: u64,
}

/// Where one alert stands on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub channel: String,
    pub sent: bool,
    /// Every attempt made, the successful one included.
    pub attempts: u32,
    /// The reason of the most recent failure, kept after a later success for diagnosis.
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Where one alert stands: for `essbot status` and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStatus {
    pub alert: Alert,
    pub enqueued_at: DateTime<Utc>,
    /// Set once every channel configured at the time has accepted the alert.
    pub completed_at: Option<DateTime<Utc>>,
    pub deliveries: Vec<DeliveryStatus>,
}

/// How long a delivery claimed by one process stays out of another's reach: longer than any
/// SMTP or webhook call may take, so two processes sharing the database (the daemon and a
/// manual `run --once`) never send the same alert at the same time.
const CLAIM: chrono::Duration = chrono::Duration::minutes(10);

/// At most this many deliveries per call, so that a long backlog cannot stall a cycle; the
/// rest waits for the next cycle.
const BATCH: i64 = 500;

/// Longest `last_error` kept: error chains can be long, the ledger is not a log.
const MAX_ERROR_CHARS: usize = 1000;

/// The alert ledger over a SQLite pool whose migrations have run.
#[derive(Debug, Clone)]
pub struct AlertLedger {
    pool: SqlitePool,
    backoff: Backoff,
}

/// Fixed-width UTC text, so that SQL compares instants by comparing strings.
fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(key: &str, text: &str) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| LedgerError::Corrupt {
            key: key.to_owned(),
            message: format!("instant {text:?}: {e}"),
        })
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    key: String,
    recipient: String,
    subject: String,
    body: String,
    dossier_url: Option<String>,
    payload: String,
}

impl AlertRow {
    fn into_alert(self) -> Result<Alert, LedgerError> {
        let recipient =
            self.recipient
                .parse::<Recipient>()
                .map_err(|message| LedgerError::Corrupt {
                    key: self.key.clone(),
                    message,
                })?;
        let payload =
            serde_json::from_str(&self.payload).map_err(|source| LedgerError::Payload {
                key: self.key.clone(),
                source,
            })?;
        Ok(Alert {
            key: self.key,
            recipient,
            subject: self.subject,
            body: self.body,
            dossier_url: self.dossier_url,
            payload,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    channel: String,
    #[sqlx(flatten)]
    alert: AlertRow,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    channel: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    next_attempt_at: String,
    sent_at: Option<String>,
}

impl AlertLedger {
    /// A ledger with the default [`Backoff`].
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            backoff: Backoff::default(),
        }
    }

    /// The same ledger, retrying failures on another schedule.
    pub fn with_backoff(self, backoff: Backoff) -> Self {
        Self { backoff, ..self }
    }

    /// Records `alerts` for delivery and returns how many were new. A key already in the ledger,
    /// pending or sent, is left as it is: this is what makes an alert go out once however many
    /// cycles find it due.
    ///
    /// # Errors
    /// On a database failure; then none of `alerts` is recorded.
    pub async fn enqueue(&self, alerts: &[Alert], now: DateTime<Utc>) -> Result<u64, LedgerError> {
        let now = ts(now);
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for alert in alerts {
            let payload =
                serde_json::to_string(&alert.payload).map_err(|source| LedgerError::Payload {
                    key: alert.key.clone(),
                    source,
                })?;
            added += sqlx::query(
                "INSERT INTO alert_ledger
                     (key, recipient, subject, body, dossier_url, payload, enqueued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&alert.key)
            .bind(alert.recipient.to_string())
            .bind(&alert.subject)
            .bind(&alert.body)
            .bind(&alert.dossier_url)
            .bind(payload)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Delivers every alert whose next attempt is due at `now` through each of `channels`, and
    /// records the outcome per channel: sent once accepted, otherwise retried after the
    /// backoff. An alert is complete once all of `channels` accepted it; a channel configured
    /// later is used only for alerts not yet complete.
    ///
    /// Channels are tried one after the other; a failing channel does not hold back another.
    /// With no channel, nothing is sent and every alert stays pending.
    ///
    /// # Errors
    /// On a database failure. Delivery failures are not errors: they are counted in the
    /// report and recorded in the ledger.
    ///
    /// # Cancel safety
    /// Dropping the future between two deliveries loses nothing; dropping it during a delivery
    /// leaves that delivery claimed for a few minutes, after which it is retried.
    pub async fn deliver_due(
        &self,
        channels: &[Channel],
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, LedgerError> {
        let mut kinds: Vec<ChannelKind> = Vec::new();
        let mut unique: Vec<&Channel> = Vec::new();
        for channel in channels {
            if kinds.contains(&channel.kind()) {
                warn!(channel = %channel.kind(), "channel configured twice; using the first");
                continue;
            }
            kinds.push(channel.kind());
            unique.push(channel);
        }
        let mut report = DeliveryReport::default();
        if unique.is_empty() {
            report.pending = self.pending_count().await?;
            return Ok(report);
        }
        let now_text = ts(now);
        // Two placeholders cover every set of kinds: with one kind, it is bound twice.
        let (first, second) = (kinds[0].as_str(), kinds[kinds.len() - 1].as_str());

        // Route every open alert to each configured channel it has no row for yet.
        for kind in &kinds {
            sqlx::query(
                "INSERT INTO alert_delivery (alert_key, channel, next_attempt_at)
                 SELECT key, $1, enqueued_at FROM alert_ledger WHERE completed_at IS NULL
                 ON CONFLICT (alert_key, channel) DO NOTHING",
            )
            .bind(kind.as_str())
            .execute(&self.pool)
            .await?;
        }

        let due: Vec<DueRow> = sqlx::query_as(
            "SELECT d.channel, l.key, l.recipient, l.subject, l.body, l.dossier_url, l.payload
             FROM alert_delivery d JOIN alert_ledger l ON l.key = d.alert_key
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND d.channel IN ($2, $3)
             ORDER BY l.enqueued_at, l.key, d.channel
             LIMIT $4",
        )
        .bind(&now_text)
        .bind(first)
        .bind(second)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;

        for row in due {
            let Some(channel) = unique.iter().find(|c| c.kind().as_str() == row.channel) else {
                continue;
            };
            let key = row.alert.key.clone();
            // Claim the delivery so that a concurrent process skips it while we send.
            let claimed = sqlx::query(
                "UPDATE alert_delivery SET next_attempt_at = $1
                 WHERE alert_key = $2 AND channel = $3 AND status = 'pending'
                   AND next_attempt_at <= $4",
            )
            .bind(ts(now + CLAIM))
            .bind(&key)
            .bind(&row.channel)
            .bind(&now_text)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if claimed == 0 {
                continue;
            }
            let span = info_span!("deliver_alert", key = %key, channel = %row.channel);
            // An unreadable row fails its own delivery, not the whole batch.
            let outcome = match row.alert.into_alert() {
                Ok(alert) => channel
                    .send(&alert)
                    .instrument(span.clone())
                    .await
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(error_chain(&e)),
            };
            match outcome {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE alert_delivery
                         SET status = 'sent', sent_at = $1, attempts = attempts + 1
                         WHERE alert_key = $2 AND channel = $3",
                    )
                    .bind(&now_text)
                    .bind(&key)
                    .bind(&row.channel)
                    .execute(&self.pool)
                    .await?;
                    span.in_scope(|| info!("alert delivered"));
                    report.sent += 1;
                }
                Err(message) => {
                    let attempts: i64 = sqlx::query_scalar(
                        "SELECT attempts FROM alert_delivery WHERE alert_key = $1 AND channel = $2",
                    )
                    .bind(&key)
                    .bind(&row.channel)
                    .fetch_one(&self.pool)
                    .await?;
                    let failures = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
                    let retry_at = now + self.backoff.delay(failures);
                    sqlx::query(
                        "UPDATE alert_delivery
                         SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2
                         WHERE alert_key = $3 AND channel = $4 AND status = 'pending'",
                    )
                    .bind(&message)
                    .bind(ts(retry_at))
                    .bind(&key)
                    .bind(&row.channel)
                    .execute(&self.pool)
                    .await?;
                    span.in_scope(|| {
                        warn!(error = %message, attempts = failures, retry_at = %retry_at,
                            "alert delivery failed; will retry");
                    });
                    report.failed += 1;
                }
            }
        }

        // An alert is complete once every configured channel accepted it. Requiring one sent
        // row keeps open an alert another process enqueued after the routing step above.
        sqlx::query(
            "UPDATE alert_ledger SET completed_at = $1
             WHERE completed_at IS NULL
               AND NOT EXISTS (
                 SELECT 1 FROM alert_delivery d
                 WHERE d.alert_key = alert_ledger.key AND d.channel IN ($2, $3)
                   AND d.status <> 'sent')
               AND EXISTS (
                 SELECT 1 FROM alert_delivery d
                 WHERE d.alert_key = alert_ledger.key AND d.channel IN ($2, $3)
                   AND d.status = 'sent')",
        )
        .bind(&now_text)
        .bind(first)
        .bind(second)
        .execute(&self.pool)
        .await?;

        report.pending = self.pending_count().await?;
        Ok(report)
    }

    /// Alerts not yet accepted by every channel they were routed to (or not routed yet), for
    /// `essbot status` and the health check.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn pending_count(&self) -> Result<u64, LedgerError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM alert_ledger WHERE completed_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Everything the ledger knows about `key`, or `None` if it was never enqueued.
    ///
    /// # Errors
    /// On a database failure or an unreadable row.
    pub async fn status(&self, key: &str) -> Result<Option<AlertStatus>, LedgerError> {
        #[derive(sqlx::FromRow)]
        struct LedgerRow {
            #[sqlx(flatten)]
            alert: AlertRow,
            enqueued_at: String,
            completed_at: Option<String>,
        }
        let row: Option<LedgerRow> = sqlx::query_as(
            "SELECT key, recipient, subject, body, dossier_url, payload, enqueued_at, completed_at
             FROM alert_ledger WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let deliveries: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT channel, status, attempts, last_error, next_attempt_at, sent_at
             FROM alert_delivery WHERE alert_key = $1 ORDER BY channel",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        let deliveries = deliveries
            .into_iter()
            .map(|d| {
                Ok(DeliveryStatus {
                    sent: d.status == "sent",
                    attempts: u32::try_from(d.attempts).unwrap_or(0),
                    last_error: d.last_error,
                    next_attempt_at: parse_ts(key, &d.next_attempt_at)?,
                    sent_at: d.sent_at.as_deref().map(|s| parse_ts(key, s)).transpose()?,
                    channel: d.channel,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(Some(AlertStatus {
            enqueued_at: parse_ts(key, &row.enqueued_at)?,
            completed_at: row
                .completed_at
                .as_deref()
                .map(|s| parse_ts(key, s))
                .transpose()?,
            alert: row.alert.into_alert()?,
            deliveries,
        }))
    }
}

/// The error and its sources on one line, cut to [`MAX_ERROR_CHARS`].
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    if out.chars().count() > MAX_ERROR_CHARS {
        out = out.chars().take(MAX_ERROR_CHARS).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), chrono::Duration::minutes(5));
        assert_eq!(b.delay(2), chrono::Duration::minutes(10));
        assert_eq!(b.delay(4), chrono::Duration::minutes(40));
        assert_eq!(b.delay(8), chrono::Duration::hours(6));
        assert_eq!(b.delay(u32::MAX), chrono::Duration::hours(6));
    }

    #[test]
    fn instants_are_fixed_width_so_text_order_is_time_order() {
        let a = DateTime::parse_from_rfc3339("2026-11-05T09:00:00Z")
            .unwrap()
            .to_utc();
        let b = a + chrono::Duration::microseconds(1);
        assert_eq!(ts(a), "2026-11-05T09:00:00.000000Z");
        assert_eq!(ts(a).len(), ts(b).len());
        assert!(ts(a) < ts(b));
        assert_eq!(parse_ts("k", &ts(b)).unwrap(), b);
    }
}
