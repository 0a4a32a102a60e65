//! `database.url`, parsed once: which backend, which SQLite file, and how to show it without
//! its password. The configuration, the instance lock, `essbot check` and the store all read it
//! from here.

use std::path::{Path, PathBuf};

use super::StoreError;

/// The two databases essbot runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A database URL essbot can open.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path`, `sqlite:path` or `sqlite:///absolute/path`, optionally with sqlx's
    /// query parameters; `sqlite::memory:` has no path.
    Sqlite { url: String, path: Option<PathBuf> },
    /// `postgres://` or `postgresql://`, with libpq's parameters (`sslmode`, `sslrootcert`...).
    Postgres { url: url::Url },
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Reads `url`.
    ///
    /// # Errors
    /// [`StoreError::Url`] naming what is wrong: another scheme, no file name, an unreadable
    /// PostgreSQL URL.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |reason: &str| StoreError::Url {
            url: redact_text(url),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split(['?', '#']).next().unwrap_or("");
            if path.is_empty() {
                return Err(bad(
                    "no file name: write sqlite:///var/lib/essbot/essbot.db (or sqlite::memory:)",
                ));
            }
            let path = (path != ":memory:").then(|| PathBuf::from(path));
            return Ok(Self::Sqlite {
                url: url.to_owned(),
                path,
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).map_err(|e| {
                bad(&format!(
                    "{e}: write postgres://user@host:5432/database (percent-encode special characters of the password)"
                ))
            })?;
            if parsed.host_str().is_none_or(str::is_empty)
                && !parsed.query_pairs().any(|(k, _)| k == "host")
            {
                return Err(bad("no server: write postgres://user@host:5432/database"));
            }
            return Ok(Self::Postgres { url: parsed });
        }
        Err(bad(
            "unsupported scheme: use sqlite:///path/to/essbot.db or postgres://user@host/database",
        ))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite file, when the database is one (not in memory).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite { path, .. } => path.as_deref(),
            Self::Postgres { .. } => None,
        }
    }

    /// The URL as logs and errors may show it: a SQLite URL whole, a PostgreSQL one without
    /// password and parameters (`postgres://essbot@db.example:5432/essbot`).
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite { url, .. } => url.clone(),
            Self::Postgres { url } => {
                let mut shown = url.clone();
                let _ = shown.set_password(None);
                shown.set_query(None);
                shown.set_fragment(None);
                shown.to_string()
            }
        }
    }

    /// The PostgreSQL URL with `application_name` set to `name` (replacing any): it names the
    /// instance's sessions in `pg_stat_activity`, which is how another instance tells whether
    /// this one is still alive.
    pub(super) fn with_application_name(&self, name: &str) -> url::Url {
        match self {
            Self::Postgres { url } => {
                let mut url = url.clone();
                let others: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != "application_name")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                url.query_pairs_mut()
                    .clear()
                    .extend_pairs(others)
                    .append_pair("application_name", name);
                url
            }
            Self::Sqlite { url, .. } => url::Url::parse(url)
                .unwrap_or_else(|_| url::Url::parse("sqlite::memory:").expect("a valid URL")),
        }
    }

    /// The PostgreSQL URL itself (with its password), for the connections the store makes.
    pub(super) fn postgres_url(&self) -> Option<&url::Url> {
        match self {
            Self::Postgres { url } => Some(url),
            Self::Sqlite { .. } => None,
        }
    }
}

/// Best effort for a URL that did not parse: everything between `://` and `@` hidden.
fn redact_text(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://…@{}", &url[..start], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_read_from_the_url() {
        for (url, expected) in [
            (
                "sqlite:///var/lib/essbot/essbot.db",
                Some("/var/lib/essbot/essbot.db"),
            ),
            ("sqlite://essbot.db?mode=rwc", Some("essbot.db")),
            ("sqlite:data/essbot.db", Some("data/essbot.db")),
            ("sqlite::memory:", None),
            ("sqlite://:memory:", None),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.backend(), Backend::Sqlite, "{url}");
            assert_eq!(parsed.sqlite_path(), expected.map(Path::new), "{url}");
        }
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn postgres_urls_are_shown_without_password_or_parameters() {
        let url = DatabaseUrl::parse(
            "postgres://essbot:s3cr%40t@db.example:5432/essbot?sslmode=verify-full&password=x",
        )
        .unwrap();
        assert_eq!(url.backend(), Backend::Postgres);
        assert_eq!(url.sqlite_path(), None);
        assert_eq!(url.redacted(), "postgres://essbot@db.example:5432/essbot");
        assert!(!format!("{url:?}").contains("s3cr"));
        let named = url.with_application_name("essbot");
        assert!(named.as_str().contains("application_name=essbot"));
        assert!(DatabaseUrl::parse("postgresql://db.example/essbot").is_ok());
    }

    #[test]
    fn other_urls_are_refused_without_showing_a_password() {
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/essbot").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unsupported scheme"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = DatabaseUrl::parse("postgres://u:hunter2@/essbot").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
