//! The errors of the DS client: [`ApiError`] for a call that failed, [`DecodeError`] for one
//! dossier that could not be read while the rest of its page could.
//!
//! `ApiError`'s `Display` is the short French text `essbot status` and the alerts show to ARS and
//! CPAM staff; callers branch on the variants (and on [`ApiError::is_retryable`]) instead of
//! parsing it. No variant ever holds the DS token: messages that come from DS are scrubbed of it
//! by the client before they are stored here.

use std::fmt;

use chrono::{DateTime, Utc};

/// What a DS call was about, so that an access or lookup error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A démarche, by number.
    Demarche(i64),
    /// A dossier, by number.
    Dossier(i64),
    /// A dossier, by GraphQL id (mutations).
    DossierId(String),
}

impl Subject {
    /// "à la démarche 123" / "au dossier 123": the French needs the article folded in.
    fn a(&self) -> String {
        match self {
            Self::Demarche(n) => format!("à la démarche {n}"),
            Self::Dossier(n) => format!("au dossier {n}"),
            Self::DossierId(id) => format!("au dossier {id}"),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Demarche(n) => write!(f, "démarche {n}"),
            Self::Dossier(n) => write!(f, "dossier {n}"),
            Self::DossierId(id) => write!(f, "dossier {id}"),
        }
    }
}

/// "1 essai" / "4 essais".
fn essais(n: &u32) -> String {
    if *n <= 1 {
        format!("{n} essai")
    } else {
        format!("{n} essais")
    }
}

/// The transport error `detail` (reqwest's and the OS's English) as the few French words staff
/// need; the detail itself goes to the logs, through [`ApiError::operator_text`].
fn cause_fr(detail: &str) -> &'static str {
    let d = detail.to_ascii_lowercase();
    if d.contains("connection refused") {
        "connexion refusée"
    } else if d.contains("dns") || d.contains("lookup") || d.contains("name or service") {
        "nom de serveur introuvable"
    } else if d.contains("certificate") || d.contains("tls") || d.contains("handshake") {
        "échec de la connexion sécurisée"
    } else if d.contains("unreachable") || d.contains("no route") {
        "réseau inaccessible"
    } else if d.contains("reset") {
        "connexion réinitialisée"
    } else if d.contains("closed") || d.contains("incomplete") || d.contains("eof") {
        "connexion fermée avant la fin de la réponse"
    } else {
        "erreur réseau"
    }
}

/// "1 attempt" / "4 attempts".
fn attempts_en(n: u32) -> String {
    if n <= 1 {
        format!("{n} attempt")
    } else {
        format!("{n} attempts")
    }
}

/// A failed DS call. `Display` is the French description shown to staff;
/// [`ApiError::operator_text`] is the English one for logs and the command line.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token source is configured: nothing can be asked of DS.
    #[error(
        "aucun jeton DS configuré (ESSBOT_DS_TOKEN, ds.token_file ou $CREDENTIALS_DIRECTORY/ds-token)"
    )]
    NoToken,
    /// The token cannot be sent in an HTTP header (a control character, typically a stray
    /// newline in a hand-edited file). The token itself is never shown.
    #[error("jeton DS inutilisable : il contient des caractères interdits dans un en-tête HTTP")]
    InvalidToken,
    /// The HTTP client or the rate limiter could not be built from the settings.
    #[error("client DS impossible à construire : {0}")]
    Client(String),
    /// HTTP 401: DS tokens expire (one week by default); an administrator must issue a new one.
    #[error("jeton expiré")]
    TokenExpired,
    /// HTTP 403: unknown or revoked token, or a request from outside the token's networks.
    #[error("accès refusé par DS (HTTP 403) : {message}")]
    Forbidden {
        /// DS's own message, e.g. "Without a token, only persisted queries are allowed".
        message: String,
    },
    /// GraphQL error `unauthorized`: the token is valid but does not cover this démarche.
    #[error("jeton sans accès {}", .subject.a())]
    NoAccess {
        /// The démarche or dossier asked for.
        subject: Subject,
    },
    /// GraphQL error `not_found`.
    #[error("{subject} introuvable sur DS")]
    NotFound {
        /// The démarche or dossier asked for.
        subject: Subject,
    },
    /// HTTP 429, still there after the allowed retries (or with a reset too far away to wait).
    #[error(
        "limite de requêtes DS atteinte (reprise à {}) après {}",
        .reset.format("%H:%M:%S UTC"),
        essais(.attempts)
    )]
    RateLimited {
        /// When DS's rate window ends (`RateLimit-Reset`, else `Retry-After`, else one minute).
        reset: DateTime<Utc>,
        /// Attempts made, the first one included.
        attempts: u32,
    },
    /// HTTP 5xx, still failing after the allowed retries.
    #[error("DS indisponible (HTTP {status}) après {}", essais(.attempts))]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// Attempts made, the first one included.
        attempts: u32,
    },
    /// The request or the response took longer than `ds.timeout_secs`.
    #[error("DS ne répond pas (délai dépassé) après {}", essais(.attempts))]
    Timeout {
        /// Attempts made, the first one included.
        attempts: u32,
    },
    /// DS could not be reached (DNS, refused connection, TLS).
    #[error("DS injoignable ({}) après {}", cause_fr(.detail), essais(.attempts))]
    Connect {
        /// The transport error, without the token (it only travels in a header).
        detail: String,
        /// Attempts made, the first one included.
        attempts: u32,
    },
    /// The connection closed after the request was sent and before a full answer came
    /// back: DS may or may not have executed it, so only calls that are safe to repeat
    /// (queries, annotation writes) are retried.
    #[error("échange avec DS interrompu ({operation} : {}) après {}", cause_fr(.detail), essais(.attempts))]
    Interrupted {
        /// The operation sent.
        operation: &'static str,
        /// The transport error.
        detail: String,
        /// Attempts made, the first one included.
        attempts: u32,
    },
    /// Another HTTP status (400: a request DS could not parse; it is a bug on our side).
    #[error("requête refusée par DS (HTTP {status}) : {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// DS's message when it sent one.
        message: String,
    },
    /// GraphQL errors DS returned instead of data.
    #[error("erreur de DS sur {operation}{} : {message}", .code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    GraphQl {
        /// The operation sent.
        operation: &'static str,
        /// `extensions.code` of the first error (`timeout`, `bad_request`...).
        code: Option<String>,
        /// Every error message, joined.
        message: String,
    },
    /// The response is not the JSON the operation expects: malformed, cut short, or a shape
    /// that does not match the schema.
    #[error("réponse illisible de DS ({operation}) : {detail}")]
    Decode {
        /// The operation sent.
        operation: &'static str,
        /// What was wrong, with the JSON path when known.
        detail: String,
    },
    /// A value essbot was about to send that DS could not accept (a non-finite decimal, too
    /// many rows): refused before any request.
    #[error("valeur refusée avant envoi à DS : {0}")]
    InvalidInput(String),
}

impl ApiError {
    /// True when trying the same call again later may succeed: rate limits, 5xx, timeouts,
    /// connection failures and DS's own execution timeout. Never for 401/403 or bad input.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Unavailable { .. }
            | Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Interrupted { .. } => true,
            Self::GraphQl { code, .. } => code.as_deref() == Some("timeout"),
            _ => false,
        }
    }

    /// True when DS certainly did not execute the request (refused by the rate limiter or
    /// never reached), so that even a call that must not run twice (a message to the
    /// applicant) can be sent again.
    pub fn is_retryable_once_only(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Connect { .. })
            || matches!(self, Self::Unavailable { status, .. } if *status == 502 || *status == 503)
    }

    /// True when the token itself is the problem (expired, revoked, missing, no access):
    /// retrying is pointless until an administrator acts, and `status` should say so.
    pub fn is_token_problem(&self) -> bool {
        matches!(
            self,
            Self::NoToken
                | Self::InvalidToken
                | Self::TokenExpired
                | Self::Forbidden { .. }
                | Self::NoAccess { .. }
        )
    }

    /// The English description for operators (logs, the command line's errors), with what to
    /// do when it is the token's fault. Never holds the token.
    pub fn operator_text(&self) -> String {
        let subject_en = |s: &Subject| match s {
            Subject::Demarche(n) => format!("démarche {n}"),
            Subject::Dossier(n) => format!("dossier {n}"),
            Subject::DossierId(id) => format!("dossier {id}"),
        };
        match self {
            Self::NoToken => "no DS token configured (ESSBOT_DS_TOKEN, ds.token_file or $CREDENTIALS_DIRECTORY/ds-token)".into(),
            Self::InvalidToken => "the DS token cannot be used: it holds characters an HTTP header cannot carry (a stray line break?)".into(),
            Self::Client(e) => format!("cannot build the DS client: {e}"),
            Self::TokenExpired => "the DS token has expired (HTTP 401): issue a new one in DS and install it (/etc/essbot/ds-token, then restart essbot)".into(),
            Self::Forbidden { message } => format!(
                "DS refused the token (HTTP 403: {message}): unknown or revoked token, or a request from outside its allowed networks"
            ),
            Self::NoAccess { subject } => format!("the DS token gives no access to {}", subject_en(subject)),
            Self::NotFound { subject } => format!("{} not found on DS", subject_en(subject)),
            Self::RateLimited { reset, attempts } => format!(
                "DS rate limit reached (window ends {}) after {}",
                reset.format("%H:%M:%S UTC"),
                attempts_en(*attempts)
            ),
            Self::Unavailable { status, attempts } => {
                format!("DS unavailable (HTTP {status}) after {}", attempts_en(*attempts))
            }
            Self::Timeout { attempts } => {
                format!("DS did not answer in time after {}", attempts_en(*attempts))
            }
            Self::Connect { detail, attempts } => {
                format!("DS unreachable ({detail}) after {}", attempts_en(*attempts))
            }
            Self::Interrupted { operation, detail, attempts } => format!(
                "exchange with DS cut off ({operation}: {detail}) after {}",
                attempts_en(*attempts)
            ),
            Self::Http { status, message } => {
                format!("DS refused the request (HTTP {status}): {message}")
            }
            Self::GraphQl { operation, code, message } => format!(
                "DS error on {operation}{}: {message}",
                code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            Self::Decode { operation, detail } => {
                format!("unreadable answer from DS ({operation}): {detail}")
            }
            Self::InvalidInput(e) => format!("value refused before sending it to DS: {e}"),
        }
    }

    /// Records how many attempts a retried call made, for the final error's description.
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Self::RateLimited { attempts, .. }
            | Self::Unavailable { attempts, .. }
            | Self::Timeout { attempts }
            | Self::Connect { attempts, .. }
            | Self::Interrupted { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }
}

/// One dossier that could not be read; the other dossiers of its page are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dossier {} illisible : {path} : {message}", .number.map(|n| n.to_string()).unwrap_or_else(|| "sans numéro".into()))]
pub struct DecodeError {
    /// The dossier's number, when the node had a readable one.
    pub number: Option<i64>,
    /// Where in the dossier: a JSON path, with the champ label when inside a champ
    /// (`champs[3] « Nombre de médecins adhérents ».date`).
    pub path: String,
    /// What was wrong with the value found there.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_short_french_sentences() {
        assert_eq!(ApiError::TokenExpired.to_string(), "jeton expiré");
        assert_eq!(
            ApiError::NoAccess {
                subject: Subject::Demarche(123)
            }
            .to_string(),
            "jeton sans accès à la démarche 123"
        );
        assert_eq!(
            ApiError::Unavailable {
                status: 503,
                attempts: 4
            }
            .to_string(),
            "DS indisponible (HTTP 503) après 4 essais"
        );
        assert_eq!(
            ApiError::Decode {
                operation: "GetDossier",
                detail: "EOF".into()
            }
            .to_string(),
            "réponse illisible de DS (GetDossier) : EOF"
        );
    }

    #[test]
    fn transport_causes_are_said_in_french_and_detailed_in_english_for_operators() {
        let e = ApiError::Connect {
            detail: "error sending request for url (http://127.0.0.1:9/): client error (Connect): tcp connect error: Connection refused (os error 111)".into(),
            attempts: 3,
        };
        assert_eq!(
            e.to_string(),
            "DS injoignable (connexion refusée) après 3 essais"
        );
        assert!(
            e.operator_text()
                .starts_with("DS unreachable (error sending request")
        );
        assert!(e.operator_text().ends_with("after 3 attempts"));
        assert!(
            ApiError::TokenExpired
                .operator_text()
                .starts_with("the DS token has expired (HTTP 401)")
        );
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(ApiError::Timeout { attempts: 1 }.is_retryable());
        assert!(
            ApiError::Unavailable {
                status: 502,
                attempts: 1
            }
            .is_retryable()
        );
        assert!(!ApiError::TokenExpired.is_retryable());
        assert!(
            !ApiError::Forbidden {
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            ApiError::GraphQl {
                operation: "GetDossier",
                code: Some("timeout".into()),
                message: String::new()
            }
            .is_retryable()
        );
    }
}
