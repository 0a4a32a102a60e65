//! The store: what essbot knows between cycles, in SQLite (PostgreSQL to follow).
//!
//! Everything the sync learns is committed page by page, in the same transaction as the cursor
//! that says how far it got ([`Store::apply_dossier_page`]), so a crash or a kill at any point
//! resumes at the next page: nothing recorded is lost and nothing is counted twice.
//!
//! # Portability
//! The SQL is written for both backends: runtime queries with `$N` placeholders, `ON CONFLICT`
//! upserts, `RETURNING id`, no SQLite-only functions. Timestamps are TEXT in UTC with six
//! fractional digits and a `Z` (`2026-07-12T08:30:00.000000Z`, see [`format_ts`]): fixed width,
//! so text order is time order in both, and every table (alerts included) spells them alike. Migrations live in `migrations/sqlite/` (and later
//! `migrations/postgres/`, same versions) and are embedded in the binary.
//!
//! # Layout
//! - [`dossiers`](Store::apply_dossier_page): the mirrored dossiers, their history, decode errors.
//! - [`sync_state`](Store::sync_state): per démarche, the watermarks and the pass in progress.
//! - [`cycles`](Store::begin_cycle): one row per cycle, for `essbot status`.

mod backup;
mod cycles;
mod dossiers;
mod sync_state;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::DatabaseSettings;

pub use cycles::{Cycle, CycleOutcome};
pub use dossiers::{
    DecodeErrorRecord, DeletionKind, DossierStatus, HistoryEntry, HistoryKind, Incoming,
    PageCounts, StoredDossier, applicant_content_hash,
};
pub use sync_state::{Pass, PassKind, PassPhase, SyncState};

/// How long a writer waits for SQLite's lock before failing: the daemon, `essbot status` and
/// `essbot milestones record` may touch the file at the same time.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened (bad URL, unwritable folder, not a database).
    #[error("impossible d'ouvrir la base de données {url}: {source}")]
    Open {
        /// The URL with anything after the scheme hidden (it may hold a password).
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed or the database holds a migration this binary does not know.
    #[error("migration de la base de données impossible: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure (I/O, lock timeout, constraint).
    #[error("erreur de base de données: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value this version cannot read back (hand-edited file, newer schema).
    #[error("valeur illisible dans {column}: {value:?}")]
    Corrupt { column: &'static str, value: String },
}

/// Handle on the database; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens the configured database, creating the file if missing, and applies migrations.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the database cannot be opened, [`StoreError::Migrate`] when its
    /// schema cannot be brought up to date.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        Self::open(&settings.url).await
    }

    /// Opens the database at `url` (`sqlite://path/to/file.db`), creating it if missing, with
    /// WAL, foreign keys and a busy timeout, then applies migrations.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redact_url(url),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating it if missing) the SQLite file at `path`: for tests and `essbot demo`.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open_file(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// Applies the embedded migrations not applied yet (`essbot db migrate`, start of `run`).
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// The connection pool, for modules that keep their own tables (the alerts ledger) until
    /// they get methods here.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned (end of `run`, tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Keeps the scheme of a database URL only: PostgreSQL URLs may carry a password.
fn redact_url(url: &str) -> String {
    let scheme = url.split(':').next().unwrap_or("");
    format!("{scheme}:…")
}

/// The one spelling of a timestamp in the store: UTC, microseconds, `Z`, fixed width.
pub fn format_ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads back a timestamp written by [`format_ts`] (any RFC 3339 text is accepted).
///
/// # Errors
/// [`StoreError::Corrupt`] naming `column` when the text is not a timestamp.
pub fn parse_ts(column: &'static str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            column,
            value: text.to_owned(),
        })
}

fn parse_opt_ts(
    column: &'static str,
    text: Option<String>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|t| parse_ts(column, &t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn timestamps_are_fixed_width_utc() {
        let paris = DateTime::parse_from_rfc3339("2026-07-12T10:30:00.123+02:00").unwrap();
        let text = format_ts(paris.to_utc());
        assert_eq!(text, "2026-07-12T08:30:00.123000Z");
        assert_eq!(parse_ts("x", &text).unwrap(), paris.to_utc());
        assert_eq!(
            format_ts(paris.to_utc().with_nanosecond(0).unwrap()).len(),
            text.len()
        );
        assert!(parse_ts("x", "hier").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres:…");
    }
}
