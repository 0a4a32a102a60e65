//! The delivery ledger: the store's tables `alert_ledger` (one row per alert key) and
//! `alert_delivery` (one row per alert and channel), and the delivery loop over them.
//!
//! All state lives in the database and every instant comes from the caller's `now`, so a
//! restarted process, a standby taking over, or a test moving its clock, sees exactly what the
//! previous one left.

use chrono::{DateTime, Utc};
use tracing::{Instrument, info, info_span, warn};

use super::channel::{Channel, ChannelKind};
use super::{Alert, Recipient};
use crate::store::{AlertRecord, DeliveryRecord, Store, StoreError};

/// A ledger operation failed; the cycle reports it and tries again next time.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("alert ledger: {0}")]
    Store(#[from] StoreError),
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

/// How long a delivery claimed by one process stays out of another's reach while that process
/// may still be running: three times the channels' timeout (`channel::DEFAULT_TIMEOUT`, 20 s),
/// so that the send of an instance that lost its lock, still running, ends before a successor
/// takes the delivery over. A claim by an instance known to be gone (no session left on the
/// server; with SQLite, any earlier process) is taken over at once. Either way the alert goes
/// again, with the same Message-ID or Idempotency-Key (see the module docs of `alerts`,
/// "exactly once").
pub const CLAIM: chrono::Duration = chrono::Duration::seconds(60);

/// At most this many deliveries per call, so that a long backlog cannot stall a cycle; the
/// rest waits for the next cycle.
const BATCH: i64 = 500;

/// Longest `last_error` kept: error chains can be long, the ledger is not a log.
const MAX_ERROR_CHARS: usize = 1000;

/// The alert ledger over the store.
#[derive(Debug, Clone)]
pub struct AlertLedger {
    store: Store,
    backoff: Backoff,
}

impl AlertRecord {
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

impl AlertLedger {
    /// A ledger with the default [`Backoff`].
    pub fn new(store: Store) -> Self {
        Self {
            store,
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
        let mut records = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let payload =
                serde_json::to_string(&alert.payload).map_err(|source| LedgerError::Payload {
                    key: alert.key.clone(),
                    source,
                })?;
            records.push(AlertRecord {
                key: alert.key.clone(),
                recipient: alert.recipient.to_string(),
                subject: alert.subject.clone(),
                body: alert.body.clone(),
                dossier_url: alert.dossier_url.clone(),
                payload,
            });
        }
        Ok(self.store.enqueue_alerts(&records, now).await?)
    }

    /// Delivers every alert whose next attempt is due at `now` through each of `channels`, and
    /// records the outcome per channel: sent once accepted, otherwise retried after the
    /// backoff. An alert is complete once all of `channels` accepted it; a channel configured
    /// later is used only for alerts not yet complete.
    ///
    /// Each delivery is claimed in the database before it goes out ([`Store::claim_delivery`],
    /// fenced by the leadership term on PostgreSQL): another process, or a successor after a
    /// failover, skips it while the claim holds.
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
    /// leaves that delivery claimed for [`CLAIM`], after which it is sent again.
    pub async fn deliver_due(
        &self,
        channels: &[Channel],
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, LedgerError> {
        let mut kinds: Vec<&'static str> = Vec::new();
        let mut unique: Vec<&Channel> = Vec::new();
        for channel in channels {
            let kind: ChannelKind = channel.kind();
            if kinds.contains(&kind.as_str()) {
                warn!(channel = %kind, "channel configured twice; using the first");
                continue;
            }
            kinds.push(kind.as_str());
            unique.push(channel);
        }
        let mut report = DeliveryReport::default();
        if unique.is_empty() {
            report.pending = self.pending_count().await?;
            return Ok(report);
        }
        let store = &self.store;
        // Route every open alert to each configured channel it has no row for yet.
        store.route_alerts(&kinds).await?;
        let stale_before = now - CLAIM;
        let due = store
            .due_deliveries(&kinds, now, stale_before, BATCH)
            .await?;

        let mut gone: Vec<String> = Vec::new();
        for row in due {
            let Some(channel) = unique.iter().find(|c| c.kind().as_str() == row.channel) else {
                continue;
            };
            let key = row.alert.key.clone();
            // Claimed lately by another instance: taken over only if that one is gone (it died
            // during the send), never while it may still be sending.
            let take_over = match row.claimed_by {
                Some(by) if gone.contains(&by) => Some(by),
                Some(by) if store.instance_alive(&by).await? => continue,
                Some(by) => {
                    gone.push(by.clone());
                    Some(by)
                }
                None => None,
            };
            // Claim the delivery so that a concurrent process skips it while we send.
            if !store
                .claim_delivery(&key, &row.channel, now, stale_before, take_over.as_deref())
                .await?
            {
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
                    store.delivery_sent(&key, &row.channel, now).await?;
                    span.in_scope(|| info!("alert delivered"));
                    report.sent += 1;
                }
                Err(message) => {
                    let attempts = store.delivery_attempts(&key, &row.channel).await?;
                    let failures = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
                    let retry_at = now + self.backoff.delay(failures);
                    store
                        .delivery_failed(&key, &row.channel, &message, retry_at)
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
        store.complete_alerts(&kinds, now).await?;
        report.pending = self.pending_count().await?;
        Ok(report)
    }

    /// Alerts not yet accepted by every channel they were routed to (or not routed yet), for
    /// `essbot status` and the health check.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn pending_count(&self) -> Result<u64, LedgerError> {
        Ok(self.store.pending_alerts_count().await?)
    }

    /// Everything the ledger knows about `key`, or `None` if it was never enqueued.
    ///
    /// # Errors
    /// On a database failure or an unreadable row.
    pub async fn status(&self, key: &str) -> Result<Option<AlertStatus>, LedgerError> {
        let Some(state) = self.store.alert(key).await? else {
            return Ok(None);
        };
        Ok(Some(AlertStatus {
            alert: state.alert.into_alert()?,
            enqueued_at: state.enqueued_at,
            completed_at: state.completed_at,
            deliveries: state.deliveries.into_iter().map(delivery_status).collect(),
        }))
    }
}

fn delivery_status(d: DeliveryRecord) -> DeliveryStatus {
    DeliveryStatus {
        sent: d.status == "sent",
        attempts: u32::try_from(d.attempts).unwrap_or(0),
        last_error: d.last_error,
        next_attempt_at: d.next_attempt_at,
        sent_at: d.sent_at,
        channel: d.channel,
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
}
