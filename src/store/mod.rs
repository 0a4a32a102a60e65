//! The store: every table essbot keeps between cycles, in SQLite (the default: demo, tests, a
//! single server) or PostgreSQL (several instances on one database). Nothing outside this
//! module speaks SQL; the rest of essbot calls methods named after what they do.
//!
//! Everything the sync learns is committed page by page, in the same transaction as the cursor
//! that says how far it got ([`Store::apply_dossier_page`]), so a crash or a kill at any point
//! resumes at the next page: nothing recorded is lost and nothing is counted twice.
//!
//! # Two backends, one set of queries
//! The store holds an sqlx `AnyPool`: the same runtime queries run on both backends, with `$N`
//! placeholders (SQLite reads them as positional parameters), `ON CONFLICT` upserts,
//! `RETURNING`, and no backend-only function. What differs is confined to [`Backend`] checks:
//! connection settings, the migrations folder, the online backup, the advisory lock and the
//! fencing of writes ([`leadership`]). Values cross the boundary as `BIGINT`/`INTEGER` and
//! `TEXT` only. Timestamps are TEXT in UTC with six fractional digits and a `Z`
//! (`2026-07-12T08:30:00.000000Z`, see [`format_ts`]): fixed width, so text order is time
//! order in both (PostgreSQL's columns are `COLLATE "C"` for that). Migrations live in
//! `migrations/sqlite/` and `migrations/postgres/`, same versions and names, and are embedded in
//! the binary.
//!
//! # Layout
//! - [`dossiers`](Store::apply_dossier_page): the mirrored dossiers, their history, decode errors.
//! - [`sync_state`](Store::sync_state): per démarche, the watermarks and the pass in progress.
//! - [`cycles`](Store::begin_cycle): one row per cycle, for `essbot status`.
//! - [`checks`](Store::save_checks): pre-check reports and findings; démarche descriptors.
//! - [`outbox`](Store::outbox_enqueue): the write-back outbox.
//! - [`alerts`](Store::enqueue_alerts): the alert ledger and its deliveries.
//! - [`events`](Store::append_events): the append-only milestones ledger.
//! - [`leadership`]: which instance is active, the advisory lock, fencing.
//! - [`copy`](Store::copy_into): `essbot db copy`; [`backup`](Store::backup_to): `essbot db backup`.

mod alerts;
mod backup;
mod checks;
mod copy;
mod cycles;
mod dossiers;
mod events;
pub mod leadership;
mod outbox;
mod sync_state;
mod url;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions as _, Executor as _};

use crate::config::DatabaseSettings;

pub use alerts::{AlertRecord, AlertState, DeliveryRecord, DueDelivery, NewAlert};
pub use backup::Backup;
pub use checks::{NewCheck, NewFinding, StoredCheck};
pub use copy::{CopyReport, TableCount};
pub use cycles::{Cycle, CycleOutcome};
pub use dossiers::{
    DecodeErrorRecord, DeletionKind, DossierStatus, HistoryEntry, HistoryKind, Incoming,
    PageCounts, StoredDossier, applicant_content_hash,
};
pub use leadership::{Instance, InstanceRecord, Leadership, LeadershipState, Role};
pub use outbox::{OutboxRow, OutboxStatus};
pub use sync_state::{Pass, PassKind, PassPhase, SyncState};
pub use url::{Backend, DatabaseUrl};

/// How long a writer waits for a lock before failing (SQLite's busy timeout, PostgreSQL's
/// `lock_timeout`): the daemon, `essbot status` and `essbot milestones record` may touch the
/// database at the same time.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool. The sync commits while its reader fetches ahead, the alerts and
/// the outbox write between DS calls: four is plenty, and PostgreSQL servers count them.
const POOL_SIZE: u32 = 4;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `database.url` is neither a SQLite nor a PostgreSQL URL.
    #[error("database.url {url}: {reason}")]
    Url {
        /// The URL without its password.
        url: String,
        reason: String,
    },
    /// The database could not be opened (unreachable server, refused login, unwritable folder,
    /// not a database).
    #[error("impossible d'ouvrir la base de données {url} : {source}")]
    Open {
        /// The URL without its password.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed or the database holds a migration this binary does not know.
    #[error("migration de la base de données impossible : {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure (I/O, lock timeout, constraint, lost connection).
    #[error("erreur de base de données : {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value this version cannot read back (hand-edited file, newer schema).
    #[error("valeur illisible dans {column} : {value:?}")]
    Corrupt { column: &'static str, value: String },
    /// This instance was the active one and another took over (PostgreSQL): its writes are
    /// refused from then on, and it stops acting.
    #[error(
        "cette instance n'est plus l'instance active (une autre a pris le relais) : elle cesse d'agir"
    )]
    NotActive,
    /// `essbot db copy` refused or failed; the text says why and what to do.
    #[error("database copy: {0}")]
    Copy(String),
    /// A command that reads (or records into) an existing database found none: it never
    /// creates one.
    #[error("no database at {}", path.display())]
    Missing { path: std::path::PathBuf },
    /// The database's schema is older (or newer) than this essbot's: a read command does not
    /// migrate it.
    #[error("the database {url} is not at this essbot's schema")]
    Outdated {
        /// The URL without its password.
        url: String,
        /// The migrations this binary has that the database lacks, or a newer one it has.
        detail: String,
    },
    /// `essbot db backup` could not back the database up; the text says why and what to do.
    #[error("database backup: {0}")]
    Backup(String),
}

impl StoreError {
    /// The failure in English for the command line and the logs: what failed, on which
    /// database, and what to do about it.
    pub fn operator_text(&self) -> String {
        match self {
            Self::Missing { path } => format!(
                "no database at {}: essbot has not run yet, or database.url names another file; \
                 start the service (systemctl start essbot) or run `essbot db migrate` as the \
                 essbot user to create it",
                path.display()
            ),
            Self::Outdated { url, detail } => format!(
                "the database {url} is not at this essbot's schema ({detail}): run `essbot db \
                 migrate` as the essbot user, or restart the service (it migrates at start)"
            ),
            Self::Open { url, source } => open_failure(url, source),
            Self::Migrate(e) => format!("cannot bring the database's schema up to date: {e}"),
            Self::Database(e) if is_busy(e) => format!(
                "the database stayed locked for more than {} s (another essbot writing at \
                 length?): {e}",
                BUSY_TIMEOUT.as_secs()
            ),
            Self::Database(e) => format!("database failure: {e}"),
            Self::Corrupt { column, value } => format!(
                "unreadable value in {column} ({value:?}): the database was changed by hand or \
                 by a newer essbot"
            ),
            Self::NotActive => {
                "another instance took over this database: this one stopped acting".into()
            }
            Self::Url { .. } | Self::Copy(_) | Self::Backup(_) => self.to_string(),
        }
    }
}

/// The code of a database error, when it is one: SQLite's primary result code (its extended
/// codes, such as 1544 for a read-only folder, folded to theirs: 8), or PostgreSQL's SQLSTATE.
fn sqlite_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| match c.parse::<i64>() {
            Ok(n) => (n & 0xff).to_string(),
            Err(_) => c.into_owned(),
        }),
        _ => None,
    }
}

fn is_busy(e: &sqlx::Error) -> bool {
    matches!(sqlite_code(e).as_deref(), Some("5" | "6" | "55P03"))
        || e.to_string().contains("database is locked")
}

/// Why a database could not be opened, and what to do, in English.
fn open_failure(url: &str, source: &sqlx::Error) -> String {
    let cause = source.to_string();
    let permission = cause.contains("ermission denied")
        || matches!(sqlite_code(source).as_deref(), Some("8" | "14"))
        || matches!(source, sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied);
    if matches!(sqlite_code(source).as_deref(), Some("26")) || cause.contains("not a database") {
        format!(
            "{url} is not a SQLite database (damaged, or another file): stop essbot, put back a \
             copy made by `essbot db backup` (or restore the file from your backups) in its \
             place, then start essbot"
        )
    } else if permission {
        format!(
            "cannot open {url}: {cause}; the file and its folder belong to the essbot user: run \
             the command as that user (sudo -u essbot essbot …)"
        )
    } else if url.starts_with("postgres") {
        format!(
            "cannot open the PostgreSQL database {url}: {cause} (is the server up and reachable, \
             the role's password in PGPASSWORD or a pgpass file, the database created?)"
        )
    } else {
        format!("cannot open the database {url}: {cause}")
    }
}

/// Whether a command may change the database it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `status`, `milestones`, `payments`, `check`: reading only, working on a database the
    /// user cannot write.
    Read,
    /// `milestones record`: writes into the existing database.
    Write,
}

/// Handle on the database; cheap to clone (a connection pool and a few shared values).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    url: Arc<DatabaseUrl>,
    /// The leadership term this process acts under (PostgreSQL), 0 for none: see
    /// [`Store::write_tx`].
    fence: Arc<AtomicI64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url.redacted())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the configured database, creating a SQLite file if missing, and applies
    /// migrations.
    ///
    /// # Errors
    /// [`StoreError::Url`] for an unusable URL, [`StoreError::Open`] when the database cannot be
    /// opened, [`StoreError::Migrate`] when its schema cannot be brought up to date.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        Self::open(&settings.url).await
    }

    /// Opens the database at `url` (`sqlite://path/to/file.db`, `postgres://user@host/db`):
    /// SQLite with WAL, foreign keys and a busy timeout, creating the file if missing;
    /// PostgreSQL with a lock timeout and TLS as the URL's `sslmode` asks. Then applies
    /// migrations.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        let pool = connect_pool(&url, false, false).await?;
        let store = Self {
            pool,
            url: Arc::new(url),
            fence: Arc::new(AtomicI64::new(0)),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database at `url` for reading only, without creating or migrating anything:
    /// `None` when it is a SQLite file that does not exist (`essbot check`).
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open_existing(url: &str) -> Result<Option<Self>, StoreError> {
        match Self::open_required(url, Access::Read).await {
            Err(StoreError::Missing { .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Opens an existing database without creating or migrating anything, for the commands
    /// that read it (or record into it): a SQLite file that does not exist is
    /// [`StoreError::Missing`], a schema that is not this binary's [`StoreError::Outdated`]. Read
    /// access works on a file the user cannot write: while essbot runs, SQLite reads through the
    /// daemon's shared-memory file; when it does not, the file is opened as immutable.
    ///
    /// # Errors
    /// As [`Store::connect`], plus [`StoreError::Missing`] and [`StoreError::Outdated`].
    pub async fn open_required(url: &str, access: Access) -> Result<Self, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        match &url {
            DatabaseUrl::Sqlite { path: None, .. } => {
                return Err(StoreError::Missing {
                    path: ":memory:".into(),
                });
            }
            DatabaseUrl::Sqlite { path: Some(p), .. } if !p.is_file() => {
                return Err(StoreError::Missing { path: p.clone() });
            }
            _ => {}
        }
        let read_only = access == Access::Read;
        let mut pool = connect_pool(&url, read_only, false).await?;
        if read_only && url.backend() == Backend::Sqlite {
            // A WAL database nobody has open, in a folder this user cannot write: SQLite
            // cannot create the shared-memory file a reader needs. Nothing writes it then
            // (the daemon would have that file open): read it as immutable.
            if let Err(e) = sqlx::query("SELECT count(*) FROM sqlite_master")
                .fetch_one(&pool)
                .await
            {
                if !matches!(sqlite_code(&e).as_deref(), Some("8" | "14")) {
                    return Err(StoreError::Open {
                        url: url.redacted(),
                        source: e,
                    });
                }
                pool.close().await;
                pool = connect_pool(&url, true, true).await?;
            }
        }
        let store = Self {
            pool,
            url: Arc::new(url),
            fence: Arc::new(AtomicI64::new(0)),
        };
        store.check_schema().await?;
        Ok(store)
    }

    /// Checks that the database has exactly the migrations this binary has.
    async fn check_schema(&self) -> Result<(), StoreError> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let outdated = |detail: String| StoreError::Outdated {
            url: self.url.redacted(),
            detail,
        };
        let applied: Vec<i64> = match sqlx::query_scalar::<_, i64>(
            "SELECT version FROM _sqlx_migrations WHERE success",
        )
        .fetch_all(&self.pool)
        .await
        {
            Ok(v) => v,
            Err(e) if e.to_string().contains("_sqlx_migrations") => {
                return Err(outdated("no essbot schema in it".into()));
            }
            Err(e) => {
                return Err(StoreError::Open {
                    url: self.url.redacted(),
                    source: e,
                });
            }
        };
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        if let Some(v) = applied.iter().find(|v| !known.contains(v)) {
            return Err(outdated(format!(
                "it has migration {v}, which this essbot does not know: a newer essbot wrote it"
            )));
        }
        let missing: Vec<String> = known
            .iter()
            .filter(|v| !applied.contains(v))
            .map(i64::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(outdated(format!(
                "migrations {} not applied",
                missing.join(", ")
            )));
        }
        Ok(())
    }

    /// Opens (creating it if missing) the SQLite file at `path`: for tests and `essbot demo`.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open_file(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// Applies the embedded migrations not applied yet (`essbot db migrate`, start of `run`).
    /// On PostgreSQL, sqlx holds an advisory lock meanwhile, so instances starting together
    /// migrate one after the other.
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The database's URL, parsed.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The connection pool, for tests and diagnostics that need raw SQL. essbot's own code
    /// goes through the methods of [`Store`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned (end of `run`, tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction. While this process is the active instance on PostgreSQL
    /// ([`Leadership`]), the transaction first checks, and share-locks until it ends, that the
    /// leadership term is still ours: a takeover increments the term, so once another instance
    /// is active every write transaction of this one fails with [`StoreError::NotActive`], and
    /// the takeover itself waits for the transactions in flight. (SQLite has a single writer
    /// process: the file lock.)
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let term = self.fence.load(Ordering::Acquire);
        if term != 0 && self.backend() == Backend::Postgres {
            let ours =
                sqlx::query("SELECT term FROM leadership WHERE id = 1 AND term = $1 FOR SHARE")
                    .bind(term)
                    .fetch_optional(&mut *tx)
                    .await?;
            if ours.is_none() {
                return Err(StoreError::NotActive);
            }
        }
        Ok(tx)
    }
}

/// Statements run on every new SQLite connection of a read-write pool.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
];

/// The pool of a database: `read_only` for the commands that only read, `immutable` for a
/// SQLite file that no process writes and this one cannot (see [`Store::open_required`]).
async fn connect_pool(
    url: &DatabaseUrl,
    read_only: bool,
    immutable: bool,
) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let open_err = |source| StoreError::Open {
        url: url.redacted(),
        source,
    };
    let busy_ms = BUSY_TIMEOUT.as_millis();
    match url {
        DatabaseUrl::Sqlite { url: text, .. } => {
            let options = SqliteConnectOptions::from_str(text)
                .map_err(open_err)?
                .create_if_missing(!read_only)
                .read_only(read_only)
                .immutable(immutable);
            let any = AnyConnectOptions::from_url(&options.to_url_lossy()).map_err(open_err)?;
            AnyPoolOptions::new()
                .max_connections(POOL_SIZE)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if read_only {
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA busy_timeout = {busy_ms}"
                            )))
                            .await?;
                        } else {
                            for pragma in SQLITE_PRAGMAS {
                                conn.execute(pragma).await?;
                            }
                        }
                        Ok(())
                    })
                })
                .connect_with(any)
                .await
                .map_err(open_err)
        }
        DatabaseUrl::Postgres { .. } => {
            let name = leadership::session_name(&leadership::Instance::current().id);
            let any =
                AnyConnectOptions::from_url(&url.with_application_name(&name)).map_err(open_err)?;
            AnyPoolOptions::new()
                .max_connections(POOL_SIZE)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        conn.execute(sqlx::AssertSqlSafe(format!("SET lock_timeout = {busy_ms}")))
                            .await?;
                        // The server ends this instance's sessions, and releases what their
                        // transactions lock, soon after it vanishes (~20 s without an answer to
                        // keepalives, 30 s idle in a transaction), so that a standby can take
                        // over (see `leadership`). essbot's own transactions never wait on the
                        // network between their statements.
                        for setting in [
                            "SET tcp_keepalives_idle = 5",
                            "SET tcp_keepalives_interval = 5",
                            "SET tcp_keepalives_count = 3",
                            "SET idle_in_transaction_session_timeout = 30000",
                        ] {
                            conn.execute(setting).await?;
                        }
                        if read_only {
                            conn.execute("SET default_transaction_read_only = on")
                                .await?;
                        }
                        Ok(())
                    })
                })
                .connect_with(any)
                .await
                .map_err(open_err)
        }
    }
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

/// `$first, $first+1, …` for `n` values: the store's statements are built with these, never
/// with values spliced in.
fn placeholders(first: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in first..first + n {
        if i > first {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&i.to_string());
    }
    out
}

/// `($1, …, $width), ($width+1, …), …` for `rows` rows of `width` values.
fn row_placeholders(rows: usize, width: usize) -> String {
    row_placeholders_from(1, rows, width)
}

/// As [`row_placeholders`], numbered from `$first`.
fn row_placeholders_from(first: usize, rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        out.push_str(&placeholders(first + r * width, width));
        out.push(')');
    }
    out
}

/// Bound values per statement, under both backends' limits (SQLite 32766, PostgreSQL 65535).
const MAX_VARIABLES: usize = 32_766;

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
    fn placeholders_are_numbered_in_order() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(row_placeholders(2, 2), "($1, $2), ($3, $4)");
    }
}
