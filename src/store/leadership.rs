//! Several `essbot run` on one database: one active, the others on standby.
//!
//! **PostgreSQL.** The active instance holds a session advisory lock (sqlx's `PgAdvisoryLock`,
//! named `essbot`) on a connection of its own, outside the pool. The server drops the lock with
//! the session: at once when the process dies (the kernel closes its socket), within about 20 s
//! when the network to it is lost (the lock session asks the server for TCP keepalives every
//! 5 s, 3 probes). A standby tries the lock every [`STANDBY_POLL`]; the one that gets it
//! increments `leadership.term` and acts under that term from then on.
//!
//! **Fencing.** The active instance checks its lock connection every [`CHECK_EVERY`] and stops
//! acting when it fails, but between the loss and that check another instance may already be
//! active. So every write transaction of the active instance starts by share-locking the
//! `leadership` row at its own term (`Store::write_tx`): once a successor has incremented the
//! term, the old instance's writes fail ([`StoreError::NotActive`]), including the claims that
//! come before a DS write or an alert goes out; and the successor's increment waits for the old
//! instance's transactions in flight. Those cannot hold it for long: the pooled sessions too ask
//! for keepalives, and end after 30 s idle in a transaction. Recording the outcome of a call
//! already made is not fenced: it is a fact.
//!
//! **SQLite.** One process at a time: the file lock (`crate::lock`) is the leadership; the term
//! is still incremented at each start, and `status` reads the same tables.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgAdvisoryLock, PgAdvisoryLockGuard, PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Connection as _, Either, Executor as _, Row};

use super::{Backend, Store, StoreError, format_ts, parse_opt_ts, parse_ts};

/// How often a standby tries to become active.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);
/// How often the active instance checks its lock connection, and every instance writes its
/// heartbeat.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long a check of the lock connection may take before the lock counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// An instance whose heartbeat is older than this is shown as gone.
pub const HEARTBEAT_STALE: chrono::Duration = chrono::Duration::seconds(30);

/// The advisory lock every essbot instance of a database competes for (advisory locks are per
/// database: two essbot databases on one server do not interfere).
fn advisory_lock() -> &'static PgAdvisoryLock {
    static LOCK: OnceLock<PgAdvisoryLock> = OnceLock::new();
    LOCK.get_or_init(|| PgAdvisoryLock::new("essbot"))
}

/// The `application_name` of an instance's pooled sessions (PostgreSQL keeps 63 bytes).
pub(super) fn session_name(instance: &str) -> String {
    let mut name = format!("essbot {instance}");
    name.truncate(63);
    name
}

/// The `application_name` of an instance's lock session.
fn lock_session_name(instance: &str) -> String {
    let mut name = format!("essbot-lock {instance}");
    name.truncate(63);
    name
}

/// This process, as the `instances` table and `essbot status` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `host:pid:start`, unique across restarts.
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub version: &'static str,
    pub started_at: DateTime<Utc>,
}

impl Instance {
    /// This process.
    pub fn current() -> &'static Instance {
        static CURRENT: OnceLock<Instance> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            let pid = std::process::id();
            let started_at = Utc::now();
            Instance {
                id: format!("{host}:{pid}:{}", started_at.timestamp_millis()),
                host,
                pid,
                version: env!("CARGO_PKG_VERSION"),
                started_at,
            }
        })
    }
}

/// An instance's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Active,
    Standby,
    /// Stopped cleanly.
    Stopped,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Standby => "standby",
            Self::Stopped => "stopped",
        }
    }
}

/// An instance as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    /// `active`, `standby` or `stopped`, as the instance last wrote it.
    pub role: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

/// Who is active, for `essbot status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadershipState {
    pub term: i64,
    /// The instance that became active last, and when.
    pub holder: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Instances whose heartbeat is recent, most recent first.
    pub instances: Vec<InstanceRecord>,
}

impl Store {
    /// Records this instance's role and heartbeat.
    ///
    /// # Errors
    /// Database failures.
    pub async fn heartbeat(&self, role: Role, now: DateTime<Utc>) -> Result<(), StoreError> {
        let me = Instance::current();
        sqlx::query(
            "INSERT INTO instances (id, host, pid, version, role, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET role = excluded.role,
                                            heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&me.id)
        .bind(&me.host)
        .bind(i64::from(me.pid))
        .bind(me.version)
        .bind(role.as_str())
        .bind(format_ts(me.started_at))
        .bind(format_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The current term and holder, and the instances seen within [`HEARTBEAT_STALE`] of `now`.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn leadership_state(
        &self,
        now: DateTime<Utc>,
    ) -> Result<LeadershipState, StoreError> {
        let row = sqlx::query("SELECT term, holder, since FROM leadership WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT id, host, pid, version, role, started_at, heartbeat_at FROM instances
             WHERE heartbeat_at >= $1 ORDER BY heartbeat_at DESC",
        )
        .bind(format_ts(now - HEARTBEAT_STALE))
        .fetch_all(&self.pool)
        .await?;
        let instances = rows
            .iter()
            .map(|r| {
                Ok(InstanceRecord {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    pid: r.try_get("pid")?,
                    version: r.try_get("version")?,
                    role: r.try_get("role")?,
                    started_at: parse_ts(
                        "instances.started_at",
                        &r.try_get::<String, _>("started_at")?,
                    )?,
                    heartbeat_at: parse_ts(
                        "instances.heartbeat_at",
                        &r.try_get::<String, _>("heartbeat_at")?,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(LeadershipState {
            term: row.try_get("term")?,
            holder: row.try_get("holder")?,
            since: parse_opt_ts("leadership.since", row.try_get("since")?)?,
            instances,
        })
    }

    /// Whether instance `id` still runs: PostgreSQL, it has a session open on the server
    /// (`pg_stat_activity`, where every instance's sessions carry its id); SQLite, it is this
    /// process (the file lock lets only one run).
    ///
    /// # Errors
    /// Database failures.
    pub async fn instance_alive(&self, id: &str) -> Result<bool, StoreError> {
        if id == Instance::current().id {
            return Ok(true);
        }
        if self.backend() == Backend::Sqlite {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name IN ($1, $2))",
        )
        .bind(session_name(id))
        .bind(lock_session_name(id))
        .fetch_one(&self.pool)
        .await?)
    }

    /// Becomes the active instance: increments the term, records this instance as its holder
    /// and (PostgreSQL) fences this store's write transactions with it. Returns the term.
    async fn take_term(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let me = Instance::current();
        let mut tx = self.pool.begin().await?;
        let term: i64 = sqlx::query_scalar(
            "UPDATE leadership SET term = term + 1, holder = $1, since = $2 WHERE id = 1
             RETURNING term",
        )
        .bind(&me.id)
        .bind(format_ts(now))
        .fetch_one(&mut *tx)
        .await?;
        // Instances that have not been heard of for a week are forgotten.
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(format_ts(now - chrono::Duration::days(7)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.fence.store(term, Ordering::Release);
        self.heartbeat(Role::Active, now).await?;
        Ok(term)
    }

    /// Stops fencing writes with a term (this instance is no longer active).
    fn drop_term(&self) {
        self.fence.store(0, Ordering::Release);
    }
}

/// This instance's claim to be the active one on its database.
pub struct Leadership {
    store: Store,
    /// PostgreSQL: the lock connection, holding the advisory lock once active.
    lock: LockConnection,
    term: Option<i64>,
}

enum LockConnection {
    /// SQLite (the file lock is held by the caller), or PostgreSQL before the first attempt or
    /// after losing the connection.
    None,
    Waiting(PgConnection),
    Held(PgAdvisoryLockGuard<PgConnection>),
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("backend", &self.store.backend())
            .field("term", &self.term)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// A candidate on `store`'s database, not active yet.
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
            lock: LockConnection::None,
            term: None,
        }
    }

    /// The term this instance acts under, while active.
    pub fn term(&self) -> Option<i64> {
        self.term
    }

    /// One attempt to become the active instance: true when it is (or already was). With
    /// SQLite the caller holds the file lock, so the first attempt succeeds.
    ///
    /// # Errors
    /// Database failures (server unreachable: the caller retries at its next attempt).
    pub async fn try_acquire(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if self.term.is_some() {
            return Ok(true);
        }
        if self.store.backend() == Backend::Sqlite {
            self.term = Some(self.store.take_term(now).await?);
            return Ok(true);
        }
        let conn = match std::mem::replace(&mut self.lock, LockConnection::None) {
            LockConnection::Waiting(conn) => conn,
            LockConnection::Held(guard) => {
                // Held without a term: the term could not be taken last time; try again.
                self.lock = LockConnection::Held(guard);
                return self.take_term_or_release(now).await;
            }
            LockConnection::None => self.connect().await?,
        };
        match advisory_lock().try_acquire(conn).await {
            Ok(Either::Left(guard)) => {
                self.lock = LockConnection::Held(guard);
                self.take_term_or_release(now).await
            }
            Ok(Either::Right(conn)) => {
                self.lock = LockConnection::Waiting(conn);
                self.store.heartbeat(Role::Standby, now).await?;
                Ok(false)
            }
            // The connection is unusable: a new one at the next attempt.
            Err(e) => Err(e.into()),
        }
    }

    async fn take_term_or_release(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        match self.store.take_term(now).await {
            Ok(term) => {
                self.term = Some(term);
                Ok(true)
            }
            Err(e) => {
                // Do not keep a lock this instance cannot act under.
                if let LockConnection::Held(guard) =
                    std::mem::replace(&mut self.lock, LockConnection::None)
                    && let Ok(conn) = guard.release_now().await
                {
                    self.lock = LockConnection::Waiting(conn);
                }
                Err(e)
            }
        }
    }

    /// Checks that this instance still holds the lock (PostgreSQL: its lock connection
    /// answers), and records its heartbeat.
    ///
    /// # Errors
    /// [`StoreError::NotActive`] when the lock connection failed or did not answer within a
    /// few seconds: the lock must be taken as lost, and this instance must stop acting. (A
    /// heartbeat that cannot be written is not an error here: the lock is what counts.)
    pub async fn check(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        if self.term.is_none() {
            return Err(StoreError::NotActive);
        }
        if let LockConnection::Held(guard) = &mut self.lock {
            let ping = tokio::time::timeout(CHECK_TIMEOUT, guard.as_mut().ping()).await;
            if !matches!(ping, Ok(Ok(()))) {
                self.lose();
                return Err(StoreError::NotActive);
            }
        }
        if let Err(e) = self.store.heartbeat(Role::Active, now).await {
            tracing::warn!(error = %e, "cannot record the heartbeat");
        }
        Ok(())
    }

    /// Gives the lock up (a failed check, or a stop): the term is dropped, the lock connection
    /// closed (which releases the lock on the server, if it still has the session).
    pub fn lose(&mut self) {
        self.term = None;
        self.store.drop_term();
        // Dropping the guard queues the unlock; dropping the connection closes it.
        self.lock = LockConnection::None;
    }

    /// Releases the lock on a clean stop and records this instance as stopped.
    pub async fn release(mut self, now: DateTime<Utc>) {
        if let LockConnection::Held(guard) = std::mem::replace(&mut self.lock, LockConnection::None)
            && let Ok(conn) = guard.release_now().await
        {
            let _ = conn.close().await;
        }
        self.term = None;
        self.store.drop_term();
        let _ = self.store.heartbeat(Role::Stopped, now).await;
    }

    /// Opens the lock connection: outside the pool, named `essbot-lock <instance>` in
    /// `pg_stat_activity`, with server-side TCP keepalives so that the server notices a lost
    /// client (and releases the lock) within about 20 s.
    async fn connect(&self) -> Result<PgConnection, StoreError> {
        let url = self.store.url();
        let open_err = |source| StoreError::Open {
            url: url.redacted(),
            source,
        };
        let Some(pg) = url.postgres_url() else {
            return Err(StoreError::NotActive);
        };
        let mut options = PgConnectOptions::from_url(pg).map_err(open_err)?;
        options = options.application_name(&lock_session_name(&Instance::current().id));
        let mut conn = tokio::time::timeout(Duration::from_secs(30), options.connect())
            .await
            .map_err(|_| open_err(sqlx::Error::PoolTimedOut))?
            .map_err(open_err)?;
        for setting in [
            "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 5",
            "SET tcp_keepalives_count = 3",
        ] {
            conn.execute(setting).await?;
        }
        Ok(conn)
    }
}
