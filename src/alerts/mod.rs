//! Alert delivery: getting each milestone alert to CPAM and ARS staff exactly once.
//!
//! The milestones module decides *what* is due; this module makes sure it *arrives*. Alerts are
//! written to a ledger in the store before anything is sent ([`AlertLedger::enqueue`]), keyed by a
//! stable key such as `"<project>/<milestone>/<kind>"`: enqueuing the same key again is a no-op,
//! so a cycle that sees the same due milestone every 15 minutes still produces one alert.
//! [`AlertLedger::deliver_due`] then hands each alert to every configured [`Channel`] and records
//! it as sent on that channel only once the channel accepted it (SMTP `250` after `DATA`, or a
//! webhook `2xx`). A failure is recorded with its error and retried in a later cycle after a
//! growing delay ([`Backoff`]); nothing lives in memory between cycles, so a restart resumes
//! where the previous process stopped.
//!
//! Each delivery is claimed in the ledger before it goes out (fenced by the leadership term on
//! PostgreSQL, see `store::leadership`): another instance, or a standby that took over, leaves a
//! claim alone while the instance that made it is still connected (up to [`ledger::CLAIM`]).
//!
//! What "exactly once" can and cannot promise: if the process dies after the server accepted a
//! message but before the ledger recorded it, nobody can tell whether the message arrived; the
//! claim it left is taken over (at once when its instance has no session left on the database,
//! after [`ledger::CLAIM`] otherwise) and the message is sent again, the ledger noting the
//! interrupted attempt. To let the receiving side drop such a duplicate, e-mails carry a
//! `Message-ID` and webhook calls an `Idempotency-Key` header, both derived from the alert key
//! ([`channel::key_digest`]). Sending again rather than never is deliberate: a duplicate reminder
//! is better than a deadline nobody heard of.
//!
//! [`daily_digests`] groups the alerts due on a day into one message per role, itself an
//! [`Alert`] keyed `digest/<role>/<date>` and delivered through the same ledger.
//!
//! # Layout
//! - [`ledger`]: the delivery loop over the store's ledger (migrations `0004_alerts.sql`,
//!   `0006_instances.sql`).
//! - [`channel`]: the e-mail and webhook channels.
//! - [`digest`]: the daily digest.

pub mod channel;
pub mod digest;
pub mod ledger;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use channel::{
    Channel, ChannelKind, ChannelSetupError, DeliveryError, EmailChannel, WebhookChannel,
};
pub use digest::daily_digests;
pub use ledger::{AlertLedger, AlertStatus, Backoff, DeliveryReport, DeliveryStatus, LedgerError};

/// Who an alert is meant for: payments and justificatifs concern the CPAM, deadlines and
/// validations the ARS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Cpam,
    Ars,
}

impl Role {
    /// The stable lower-case name used in keys, the ledger and webhook payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpam => "cpam",
            Self::Ars => "ars",
        }
    }

    /// The organisation as staff write it, with its article ("la CPAM", "l'ARS").
    pub fn with_article(self) -> &'static str {
        match self {
            Self::Cpam => "la CPAM",
            Self::Ars => "l'ARS",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The addressee of one alert: the staff of a role for a single milestone alert, or the same
/// staff for the daily digest. Keeping digests distinct lets a receiver route or filter them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Recipient {
    Staff(Role),
    Digest(Role),
}

impl Recipient {
    /// The role behind the recipient, digest or not.
    pub fn role(self) -> Role {
        match self {
            Self::Staff(role) | Self::Digest(role) => role,
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Staff(role) => write!(f, "{role}"),
            Self::Digest(role) => write!(f, "digest/{role}"),
        }
    }
}

impl FromStr for Recipient {
    type Err = String;

    /// Reads the form [`Display`](fmt::Display) writes: `cpam`, `ars`, `digest/cpam`, `digest/ars`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let role = |r: &str| match r {
            "cpam" => Ok(Role::Cpam),
            "ars" => Ok(Role::Ars),
            other => Err(format!("unknown alert recipient {other:?}")),
        };
        match s.strip_prefix("digest/") {
            Some(r) => role(r).map(Self::Digest),
            None => role(s).map(Self::Staff),
        }
    }
}

impl From<Recipient> for String {
    fn from(r: Recipient) -> Self {
        r.to_string()
    }
}

impl TryFrom<String> for Recipient {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// One message to deliver, as the rest of essbot hands it over: already worded in French, with
/// a key that identifies it across cycles and restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity, e.g. `"<project>/<milestone>/<kind>"` or `"digest/<role>/<date>"`.
    /// An alert is delivered once per key, whatever its other fields say on later cycles.
    pub key: String,
    pub recipient: Recipient,
    /// E-mail subject (French, UTF-8).
    pub subject: String,
    /// Plain-text body (French, UTF-8).
    pub body: String,
    /// Link to the dossier in the DS instructeur interface, appended to e-mails.
    pub dossier_url: Option<String>,
    /// Structured data for webhook consumers (dates, amounts, dossier number…).
    pub payload: serde_json::Value,
}
