//! The ways an alert reaches staff: e-mail over SMTP and a JSON webhook.
//!
//! A channel only answers one question: did the other side accept this alert? `Ok` means it
//! did (SMTP `250` after `DATA`, HTTP `2xx`) and the ledger may record it as sent; any error
//! means it did not and the ledger retries later. Channels keep no state between calls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::Alert;
use crate::config::{AlertsSettings, EmailSettings, WebhookSettings};

/// How long one SMTP conversation or webhook call may take before it counts as failed, so that
/// a stuck server delays a cycle by seconds rather than forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Which channel a delivery went through; stored in the ledger, one row per alert and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    Email,
    Webhook,
}

impl ChannelKind {
    /// The name stored in the ledger's `channel` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel could not be built from the configuration. Messages never include the SMTP URL,
/// which may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum ChannelSetupError {
    #[error("alerts.email.smtp_url is not a usable SMTP URL: {0}")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("{field} is not a valid e-mail address: {value:?}")]
    Address { field: String, value: String },
    #[error("alerts.email.to has no recipient")]
    NoRecipient,
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// One failed delivery attempt: the reason is stored in the ledger's `last_error` and logged.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The SMTP server refused the message or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// The SMTP conversation did not finish in time (a server that stops answering).
    #[error("SMTP: no answer within {0:?}")]
    SmtpTimeout(Duration),
    /// The message could not be built (should not happen once the channel is set up).
    #[error("building the e-mail: {0}")]
    Message(#[source] lettre::error::Error),
    /// The webhook could not be reached, or timed out.
    #[error("webhook: {0}")]
    Http(#[source] reqwest::Error),
    /// The webhook answered with a status other than 2xx.
    #[error("webhook answered HTTP {0}")]
    Status(reqwest::StatusCode),
}

/// A configured delivery channel. An enum rather than a trait object: there are two kinds,
/// both async, and the ledger needs each one's [`ChannelKind`] to key its rows.
#[derive(Debug, Clone)]
pub enum Channel {
    Email(EmailChannel),
    Webhook(WebhookChannel),
}

impl Channel {
    /// Every channel `[alerts]` configures (none when neither e-mail nor webhook is set).
    ///
    /// # Errors
    /// When an SMTP URL, an address or the HTTP client is unusable.
    pub fn from_settings(settings: &AlertsSettings) -> Result<Vec<Self>, ChannelSetupError> {
        let mut out = Vec::new();
        if let Some(email) = &settings.email {
            out.push(Self::Email(EmailChannel::new(email)?));
        }
        if let Some(webhook) = &settings.webhook {
            out.push(Self::Webhook(WebhookChannel::new(webhook)?));
        }
        Ok(out)
    }

    /// The kind under which the ledger records this channel's deliveries.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Email(_) => ChannelKind::Email,
            Self::Webhook(_) => ChannelKind::Webhook,
        }
    }

    /// Hands `alert` to the channel; `Ok` only once the other side accepted it.
    ///
    /// # Errors
    /// When the alert was not accepted; it may be retried.
    pub async fn send(&self, alert: &Alert) -> Result<(), DeliveryError> {
        match self {
            Self::Email(c) => c.send(alert).await,
            Self::Webhook(c) => c.send(alert).await,
        }
    }
}

/// A stable identifier derived from the alert key, so that a message sent twice after a crash
/// can be recognised as the same by its receiver.
pub fn key_digest(key: &str) -> String {
    let hash = Sha256::digest(key.as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// E-mail delivery through an SMTP relay. Cheap to clone: clones share one transport.
#[derive(Clone)]
pub struct EmailChannel(Arc<EmailInner>);

struct EmailInner {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Domain of the sender, for Message-IDs.
    domain: String,
    /// `scheme://host:port` without credentials, for logs.
    endpoint: String,
    /// Limit on a whole SMTP conversation. lettre's own timeout covers connecting but not
    /// every read, so a server that stops answering mid-conversation would hold the cycle.
    timeout: Duration,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("endpoint", &self.0.endpoint)
            .field("from", &self.0.from.to_string())
            .field("to", &self.0.to.len())
            .finish()
    }
}

impl EmailChannel {
    /// Builds the channel from `[alerts.email]`: `smtp://host:port` is plain SMTP (a local
    /// relay, tests), `smtp://…?tls=required` uses STARTTLS, `smtps://` implicit TLS; a user
    /// and password in the URL are used for AUTH and never logged.
    ///
    /// # Errors
    /// When the URL or an address cannot be used.
    pub fn new(settings: &EmailSettings) -> Result<Self, ChannelSetupError> {
        Self::with_timeout(settings, DEFAULT_TIMEOUT)
    }

    /// Like [`EmailChannel::new`], with a different limit on one SMTP conversation.
    ///
    /// # Errors
    /// When the URL or an address cannot be used.
    pub fn with_timeout(
        settings: &EmailSettings,
        timeout: Duration,
    ) -> Result<Self, ChannelSetupError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .map_err(ChannelSetupError::SmtpUrl)?
            .timeout(Some(timeout))
            .build();
        let address = |field: String, value: &str| {
            value
                .parse::<Mailbox>()
                .map_err(|_| ChannelSetupError::Address {
                    field,
                    value: value.to_owned(),
                })
        };
        let from = address("alerts.email.from".into(), &settings.from)?;
        let to = settings
            .to
            .iter()
            .enumerate()
            .map(|(i, to)| address(format!("alerts.email.to[{i}]"), to))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(ChannelSetupError::NoRecipient);
        }
        Ok(Self(Arc::new(EmailInner {
            transport,
            domain: from.email.domain().to_owned(),
            from,
            to,
            endpoint: redacted_endpoint(&settings.smtp_url),
            timeout,
        })))
    }

    /// The message for `alert`: plain text, UTF-8, with the dossier link and a short footer.
    fn message(&self, alert: &Alert) -> Result<Message, lettre::error::Error> {
        let inner = &self.0;
        let mut builder = Message::builder()
            .from(inner.from.clone())
            .subject(alert.subject.clone())
            .message_id(Some(format!(
                "<{}.essbot@{}>",
                key_digest(&alert.key),
                inner.domain
            )))
            .header(ContentType::TEXT_PLAIN);
        for to in &inner.to {
            builder = builder.to(to.clone());
        }
        let mut body = alert.body.trim_end().to_owned();
        if let Some(url) = &alert.dossier_url {
            body.push_str("\n\nDossier : ");
            body.push_str(url);
        }
        body.push_str(
            "\n\n-- \nMessage automatique envoyé par essbot ; merci de ne pas y répondre.\n",
        );
        builder.body(body)
    }

    /// Sends `alert` to every configured address in one SMTP transaction.
    ///
    /// # Errors
    /// When the server is unreachable or answers anything but success, up to and including
    /// the reply to the end of `DATA`.
    pub async fn send(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = self.message(alert).map_err(DeliveryError::Message)?;
        let timeout = self.0.timeout;
        match tokio::time::timeout(timeout, self.0.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(DeliveryError::Smtp(e)),
            // Dropping the future closes the connection: the server sees the transaction
            // abandoned and does not deliver it.
            Err(_) => Err(DeliveryError::SmtpTimeout(timeout)),
        }
    }
}

/// `scheme://host:port` of an SMTP URL, without user, password or query.
fn redacted_endpoint(smtp_url: &str) -> String {
    match url::Url::parse(smtp_url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "[invalid SMTP URL]".into(),
    }
}

/// The JSON a webhook receives, one call per alert.
#[derive(serde::Serialize)]
struct WebhookBody<'a> {
    key: &'a str,
    recipient: String,
    subject: &'a str,
    body: &'a str,
    dossier_url: Option<&'a str>,
    payload: &'a serde_json::Value,
}

/// Delivery as a JSON `POST` to a URL (a chat bridge, a ticketing system…).
#[derive(Debug, Clone)]
pub struct WebhookChannel {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl WebhookChannel {
    /// Builds the channel from `[alerts.webhook]`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(settings: &WebhookSettings) -> Result<Self, ChannelSetupError> {
        Self::with_timeout(settings, DEFAULT_TIMEOUT)
    }

    /// Like [`WebhookChannel::new`], with a different limit on one call.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn with_timeout(
        settings: &WebhookSettings,
        timeout: Duration,
    ) -> Result<Self, ChannelSetupError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("essbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ChannelSetupError::HttpClient)?;
        Ok(Self {
            client,
            url: settings.url.clone(),
        })
    }

    /// Posts `alert` as JSON with an `Idempotency-Key` header (the key's digest).
    ///
    /// # Errors
    /// When the call fails or the answer is not 2xx.
    pub async fn send(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let body = WebhookBody {
            key: &alert.key,
            recipient: alert.recipient.to_string(),
            subject: &alert.subject,
            body: &alert.body,
            dossier_url: alert.dossier_url.as_deref(),
            payload: &alert.payload,
        };
        let response = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", key_digest(&alert.key))
            .json(&body)
            .send()
            .await
            // The URL may carry a token in its path or query: keep it out of stored errors.
            .map_err(|e| DeliveryError::Http(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_shown_in_logs_has_no_credentials() {
        assert_eq!(
            redacted_endpoint("smtps://alice:s3cret@smtp.example.org:465?tls=required"),
            "smtps://smtp.example.org:465"
        );
        assert_eq!(redacted_endpoint("smtp://localhost"), "smtp://localhost");
    }

    #[test]
    fn the_debug_form_of_an_email_channel_has_no_credentials() {
        let channel = EmailChannel::new(&EmailSettings {
            smtp_url: "smtps://alice:s3cret@smtp.example.org:465".into(),
            from: "essbot@ars.example".into(),
            to: vec!["cpam-ess@example.org".into()],
        })
        .unwrap();
        let debug = format!("{channel:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("smtp.example.org"), "{debug}");
    }

    #[test]
    fn a_bad_address_names_its_key() {
        let err = EmailChannel::new(&EmailSettings {
            smtp_url: "smtp://localhost:25".into(),
            from: "essbot@ars.example".into(),
            to: vec!["pas une adresse".into()],
        })
        .unwrap_err();
        assert!(err.to_string().contains("alerts.email.to[0]"), "{err}");
    }
}
