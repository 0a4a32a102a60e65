//! Incremental, resumable sync of the watched démarches into the [`Store`].
//!
//! # Strategy (ds-api.md §7 and §15)
//! - **Incremental passes** list `dossiers(updatedSince: watermark)`, which DS sorts on
//!   `(updated_at, id)`, following `endCursor`. The watermark is the max
//!   `dateDerniereModification` committed. The bound is inclusive and DS truncates to the
//!   second, so the last dossiers come back every time: the store recognises them (same number,
//!   same `dateDerniereModification`) and counts them as unchanged, not changed.
//! - **Each page is one transaction**: its dossiers, the new watermark and the page cursor are
//!   committed together. A crash, a kill or a dropped future resumes at the next page with the
//!   same query; nothing is lost and nothing is recorded twice.
//! - **Pages are read ahead** by a `Pager` task: page N+1 is asked for as soon as page N has
//!   arrived, and each page is decoded and hashed on a blocking thread while the sync commits
//!   the one before. A page is applied only when it answers the saved position, so reading
//!   ahead never moves the saved cursor past what was committed; an error on a page read
//!   ahead surfaces after every page before it is committed.
//! - **Full reconciliations** (every `full_every`, [`ScheduleSettings::full_sync_every`], daily
//!   by default, and on the very first sync) list every dossier without `updatedSince`, then
//!   `deletedDossiers` and `pendingDeletedDossiers` from their own watermarks. They catch what
//!   `updatedSince` cannot see — label changes (which do not touch `updated_at`), dossiers
//!   hidden, purged or restored, anything a past bug let slip — and mark the dossiers DS no
//!   longer lists without a deletion record as `disappeared`. Since a full pass lists by
//!   `depose_at`, a dossier changed during it may sit behind the highest date seen; the
//!   watermark is therefore set back to the pass's start (minus [`FULL_PASS_OVERLAP`] for clock
//!   skew) so the next incremental pass re-reads those changes.
//! - **Deletions are polled only in full reconciliations**, so that a cycle with nothing
//!   changed costs exactly one request per démarche. The price: a deletion is noticed up to
//!   `full_every` late (a day by default); deleted dossiers stop being listed at once, so
//!   nothing is checked or written for them meanwhile.
//! - **Errors**: an API error stops that démarche's sync and is recorded as its `last_error`
//!   (shown by `essbot status`); the position stays at the last committed page and
//!   [`sync_all`] goes on with the other démarches. A dossier that fails to decode is recorded
//!   as a decode error naming the dossier and the field; the rest of its page is stored.
//!
//! # Cancel safety
//! [`sync_demarche`] and [`sync_all`] may be dropped at any await point: each page is committed
//! atomically or not at all.
//!
//! [`ScheduleSettings::full_sync_every`]: crate::config::ScheduleSettings::full_sync_every

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span, info, info_span, warn};

use crate::clock::Clock;
use crate::config::DemarcheSettings;
use crate::ds::model::{Dossier, Timestamp};
use crate::ds::{ApiError, DossiersPageText, DsClient};
use crate::store::{
    DeletionKind, Incoming, Pass, PassKind, PassPhase, Store, StoreError, SyncState,
    applicant_content_hash,
};

/// How far before its start a full reconciliation sets the watermark back, so that changes
/// made while it ran are re-read by the next incremental pass even if our clock is ahead of
/// DS's by up to this much.
pub const FULL_PASS_OVERLAP: Duration = Duration::from_secs(10 * 60);

/// Why a démarche's sync stopped. Its position stays at the last committed page.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// DS refused or failed (after the client's retries): recorded as the démarche's last error.
    #[error("démarche {demarche}: {source}")]
    Api {
        demarche: i64,
        #[source]
        source: ApiError,
    },
    /// DS answered something the protocol does not allow (a next page without a cursor).
    #[error("démarche {demarche}: réponse incohérente de DS: {message}")]
    Protocol { demarche: i64, message: String },
    /// The task reading pages ahead stopped without a page (a bug: it panicked).
    #[error("démarche {demarche}: la lecture des pages s'est interrompue: {message}")]
    Reader { demarche: i64, message: String },
    /// The store failed: nothing of the page in progress was committed.
    #[error("démarche {demarche}: {source}")]
    Store {
        demarche: i64,
        #[source]
        source: StoreError,
    },
}

impl SyncError {
    /// The failure in English, for the logs (`Display` is the French staff read).
    pub fn operator_text(&self) -> String {
        match self {
            Self::Api { source, .. } => source.operator_text(),
            Self::Protocol { message, .. } => {
                format!("DS answered what its protocol does not allow: {message}")
            }
            Self::Reader { message, .. } => format!("the page reader stopped: {message}"),
            Self::Store { source, .. } => source.to_string(),
        }
    }

    /// The démarche whose sync stopped.
    pub fn demarche(&self) -> i64 {
        match self {
            Self::Api { demarche, .. }
            | Self::Protocol { demarche, .. }
            | Self::Reader { demarche, .. }
            | Self::Store { demarche, .. } => *demarche,
        }
    }
}

/// What one démarche's sync did. Dossier lists hold numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub demarche: i64,
    /// The kind of pass that ran (resumed or started).
    pub pass: PassKind,
    /// Requests sent to DS (listing pages of every kind).
    pub requests: u64,
    /// Dossiers listed, decoded or not.
    pub fetched: u64,
    pub new: Vec<i64>,
    pub changed_by_applicant: Vec<i64>,
    /// Dates moved but the applicant's content did not: state, annotations (ours too), messages.
    pub changed_other: Vec<i64>,
    /// Of the changed, those whose state changed.
    pub state_changed: Vec<i64>,
    pub restored: Vec<i64>,
    pub unchanged: u64,
    pub decode_errors: u64,
    /// Deletion records new to the store.
    pub deleted: Vec<i64>,
    pub pending_deleted: Vec<i64>,
    /// Stored dossiers a full reconciliation did not find, without a deletion record.
    pub disappeared: Vec<i64>,
    /// Every dossier of the démarche waiting for a (re)check after this sync: the new, those
    /// the applicant changed, those whose state changed, and any left over by a cycle that
    /// stopped before its pre-check. Clear each with [`Store::mark_checked`].
    pub to_check: Vec<i64>,
    /// The watermark after the sync.
    pub watermark: Option<DateTime<Utc>>,
}

impl SyncReport {
    fn new(demarche: i64, pass: PassKind) -> Self {
        Self {
            demarche,
            pass,
            requests: 0,
            fetched: 0,
            new: Vec::new(),
            changed_by_applicant: Vec::new(),
            changed_other: Vec::new(),
            state_changed: Vec::new(),
            restored: Vec::new(),
            unchanged: 0,
            decode_errors: 0,
            deleted: Vec::new(),
            pending_deleted: Vec::new(),
            disappeared: Vec::new(),
            to_check: Vec::new(),
            watermark: None,
        }
    }
}

/// Syncs every watched démarche in turn. A démarche that fails does not stop the others: each
/// gets its own result, in the order given.
pub async fn sync_all(
    client: &DsClient,
    store: &Store,
    demarches: &[DemarcheSettings],
    clock: &dyn Clock,
    full_every: Duration,
) -> Vec<Result<SyncReport, SyncError>> {
    let mut results = Vec::with_capacity(demarches.len());
    for demarche in demarches {
        results.push(sync_demarche(client, store, demarche, clock, full_every).await);
    }
    results
}

/// Syncs one démarche: resumes the pass a crash interrupted, or starts an incremental pass
/// (a full reconciliation when the last one is older than `full_every`), and runs it to the end.
///
/// # Errors
/// [`SyncError`] when DS or the store fails; the error is also recorded as the démarche's
/// `last_error`, and everything committed before it stays.
pub async fn sync_demarche(
    client: &DsClient,
    store: &Store,
    demarche: &DemarcheSettings,
    clock: &dyn Clock,
    full_every: Duration,
) -> Result<SyncReport, SyncError> {
    let number = demarche.number;
    let span = info_span!("sync", demarche = number);
    async move {
        let result = run(client, store, number, clock, full_every).await;
        if let Err(e) = &result {
            warn!(error = %e.operator_text(), "sync stopped");
            let message = match e {
                SyncError::Api { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            if let Err(store_err) = store.record_sync_error(number, &message, clock.now()).await {
                warn!(error = %store_err, "could not record the sync error");
            }
        }
        result
    }
    .instrument(span)
    .await
}

async fn run(
    client: &DsClient,
    store: &Store,
    number: i64,
    clock: &dyn Clock,
    full_every: Duration,
) -> Result<SyncReport, SyncError> {
    let store_err = |source| SyncError::Store {
        demarche: number,
        source,
    };
    let api_err = |source| SyncError::Api {
        demarche: number,
        source,
    };
    let mut state = store.sync_state(number).await.map_err(store_err)?;
    let start = clock.now();
    if state.pass.is_none() {
        state.pass = Some(new_pass(&mut state, start, full_every));
    }
    let kind = state
        .pass
        .as_ref()
        .map_or(PassKind::Incremental, |p| p.kind);
    info!(
        pass = kind.as_str(),
        resumed = state.pass.as_ref().is_some_and(|p| p.cursor.is_some()),
        "sync"
    );
    let mut report = SyncReport::new(number, kind);
    // Pages of the current listing read ahead (fetched and decoded while earlier ones are
    // committed); only a page matching the saved position is ever applied.
    let mut pager: Option<Pager> = None;

    while let Some(pass) = state.pass.clone() {
        match pass.phase {
            PassPhase::Dossiers => {
                let ahead = match pager.as_mut() {
                    Some(p) if p.since == pass.since => p.page(pass.cursor.as_deref()).await,
                    _ => None,
                };
                let page = match ahead {
                    Some(page) => page,
                    None => {
                        if let Some(old) = pager.take() {
                            report.requests += old.requests();
                        }
                        let mut fresh =
                            Pager::start(client, number, pass.since, pass.cursor.clone());
                        let page = fresh.page(pass.cursor.as_deref()).await;
                        pager = Some(fresh);
                        page.unwrap_or_else(|| Err(PageError::Reader("aucune page reçue".into())))
                    }
                }
                .map_err(|e| match e {
                    PageError::Api(source) => api_err(source),
                    PageError::Reader(message) => SyncError::Reader {
                        demarche: number,
                        message,
                    },
                })?;
                report.fetched += page.entries.len() as u64;
                state.watermark = max_opt(state.watermark, page.max_modified);
                let next_cursor = next_cursor(
                    number,
                    page.has_next_page,
                    page.end_cursor.clone(),
                    pass.cursor.as_deref(),
                )?;
                let finished = next_cursor.is_none();
                state.pass = Some(Pass {
                    cursor: next_cursor.or(pass.cursor.clone()),
                    ..pass.clone()
                });
                if finished {
                    match pass.kind {
                        PassKind::Incremental => finish_pass(&mut state, clock.now()),
                        PassKind::Full => {
                            state.pass = Some(Pass {
                                phase: PassPhase::Deleted,
                                since: state.deleted_watermark,
                                cursor: None,
                                ..pass.clone()
                            });
                        }
                    }
                }
                let full_pass = (pass.kind == PassKind::Full).then_some(state.full_pass_id);
                let counts = store
                    .apply_dossier_page(number, &page.items(), full_pass, &state, clock.now())
                    .await
                    .map_err(store_err)?;
                report.new.extend(counts.new);
                report
                    .changed_by_applicant
                    .extend(counts.changed_by_applicant);
                report.changed_other.extend(counts.changed_other);
                report.state_changed.extend(counts.state_changed);
                report.restored.extend(counts.restored);
                report.unchanged += counts.unchanged;
                report.decode_errors += counts.decode_errors;
                if finished && let Some(done) = pager.take() {
                    report.requests += done.requests();
                }
            }
            PassPhase::Deleted | PassPhase::PendingDeleted => {
                let pending = pass.phase == PassPhase::PendingDeleted;
                let page = client
                    .deleted_dossiers_page(
                        number,
                        pending,
                        pass.since.map(to_ds),
                        pass.cursor.as_deref(),
                    )
                    .await
                    .map_err(api_err)?;
                report.requests += 1;
                let max_deleted = page
                    .dossiers
                    .iter()
                    .map(|d| d.date_suppression.to_utc())
                    .max();
                let kind = if pending {
                    state.pending_deleted_watermark =
                        max_opt(state.pending_deleted_watermark, max_deleted);
                    DeletionKind::PendingDeleted
                } else {
                    state.deleted_watermark = max_opt(state.deleted_watermark, max_deleted);
                    DeletionKind::Deleted
                };
                let next_cursor = next_cursor(
                    number,
                    page.has_next_page,
                    page.end_cursor,
                    pass.cursor.as_deref(),
                )?;
                let finished = next_cursor.is_none();
                state.pass = Some(Pass {
                    cursor: next_cursor.or(pass.cursor.clone()),
                    ..pass.clone()
                });
                if finished && !pending {
                    state.pass = Some(Pass {
                        phase: PassPhase::PendingDeleted,
                        since: state.pending_deleted_watermark,
                        cursor: None,
                        ..pass.clone()
                    });
                }
                let recorded = store
                    .apply_deleted_page(number, kind, &page.dossiers, &state, clock.now())
                    .await
                    .map_err(store_err)?;
                if pending {
                    report.pending_deleted.extend(recorded);
                } else {
                    report.deleted.extend(recorded);
                }
                if finished && pending {
                    // End of the full reconciliation.
                    let now = clock.now();
                    finish_pass(&mut state, now);
                    state.last_full_sync = Some(now);
                    let rewind = pass.started_at
                        - chrono::Duration::from_std(FULL_PASS_OVERLAP)
                            .unwrap_or(chrono::Duration::zero());
                    state.watermark = state.watermark.map(|w| w.min(rewind));
                    let gone = store
                        .finish_full_pass(number, state.full_pass_id, &state, now)
                        .await
                        .map_err(store_err)?;
                    report.disappeared.extend(gone);
                }
            }
        }
    }

    // A dossier changed again while its pass ran is listed twice (DS moves it to the end).
    for list in [
        &mut report.new,
        &mut report.changed_by_applicant,
        &mut report.changed_other,
        &mut report.state_changed,
        &mut report.restored,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    report.watermark = state.watermark;
    report.to_check = store.pending_checks(number).await.map_err(store_err)?;
    info!(
        requests = report.requests,
        fetched = report.fetched,
        new = report.new.len(),
        changed_by_applicant = report.changed_by_applicant.len(),
        changed_other = report.changed_other.len(),
        unchanged = report.unchanged,
        decode_errors = report.decode_errors,
        deleted = report.deleted.len() + report.pending_deleted.len(),
        disappeared = report.disappeared.len(),
        "sync done"
    );
    Ok(report)
}

/// The pass to start when none is in progress.
fn new_pass(state: &mut SyncState, now: DateTime<Utc>, full_every: Duration) -> Pass {
    let full_due = match state.last_full_sync {
        None => true,
        Some(last) => (now - last)
            .to_std()
            .is_ok_and(|elapsed| elapsed >= full_every),
    };
    if full_due {
        state.full_pass_id += 1;
        Pass {
            kind: PassKind::Full,
            phase: PassPhase::Dossiers,
            since: None,
            cursor: None,
            started_at: now,
        }
    } else {
        Pass {
            kind: PassKind::Incremental,
            phase: PassPhase::Dossiers,
            since: state.watermark,
            cursor: None,
            started_at: now,
        }
    }
}

fn finish_pass(state: &mut SyncState, now: DateTime<Utc>) {
    state.pass = None;
    state.last_success = Some(now);
    state.last_error = None;
    state.last_error_at = None;
}

/// The cursor to continue from, or `None` on the last page. A next page without a cursor, or
/// with the cursor just used, would loop forever: refused.
fn next_cursor(
    demarche: i64,
    has_next_page: bool,
    end_cursor: Option<String>,
    current: Option<&str>,
) -> Result<Option<String>, SyncError> {
    match (has_next_page, end_cursor) {
        (false, _) => Ok(None),
        (true, Some(c)) if current != Some(c.as_str()) => Ok(Some(c)),
        (true, Some(_)) => Err(SyncError::Protocol {
            demarche,
            message: "hasNextPage avec le même endCursor que la page précédente".into(),
        }),
        (true, None) => Err(SyncError::Protocol {
            demarche,
            message: "hasNextPage sans endCursor".into(),
        }),
    }
}

fn max_opt(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn to_ds(at: DateTime<Utc>) -> Timestamp {
    at.fixed_offset()
}

/// Why a page read ahead is not there.
enum PageError {
    Api(ApiError),
    Reader(String),
}

/// Reads the pages of one listing (one `since`, a chain of cursors) ahead of the sync, in a
/// task of its own: each page is asked for as soon as the previous one has arrived, then
/// decoded and hashed on a blocking thread, while the sync commits the pages before it. DS thus
/// never waits for our SQLite writes, and the decoding runs on another core than the commits.
///
/// Nothing it reads is committed by it: the sync takes a page only if it matches the saved
/// position, so the cursor saved never goes past what was committed. At most two pages wait
/// ahead (the channel's one and the one being handed over). Dropping the pager stops its task.
struct Pager {
    since: Option<DateTime<Utc>>,
    pages: mpsc::Receiver<Ahead>,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// A page read ahead: the cursor it was asked with, and its decoding.
struct Ahead {
    cursor: Option<String>,
    page: JoinHandle<Result<DecodedPage, ApiError>>,
}

impl Pager {
    fn start(
        client: &DsClient,
        demarche: i64,
        since: Option<DateTime<Utc>>,
        cursor: Option<String>,
    ) -> Self {
        let (tx, pages) = mpsc::channel(1);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        let client = client.clone();
        let task = tokio::spawn(
            async move {
                let mut cursor = cursor;
                loop {
                    let fetched = client
                        .dossiers_page_text(demarche, since.map(to_ds), cursor.as_deref())
                        .await;
                    counter.fetch_add(1, Ordering::Relaxed);
                    // Going on only along a new cursor: what a page without one means (the
                    // end, or a protocol error) is for the sync to decide.
                    let next = match &fetched {
                        Ok(p) if p.has_next_page => {
                            p.end_cursor.clone().filter(|c| Some(c) != cursor.as_ref())
                        }
                        _ => None,
                    };
                    let span = Span::current();
                    let page = tokio::task::spawn_blocking(move || {
                        span.in_scope(|| fetched.map(DecodedPage::new))
                    });
                    let ahead = Ahead {
                        cursor: cursor.clone(),
                        page,
                    };
                    if tx.send(ahead).await.is_err() {
                        return; // the sync stopped listening
                    }
                    match next {
                        Some(c) => cursor = Some(c),
                        None => return,
                    }
                }
            }
            .instrument(Span::current()),
        );
        Self {
            since,
            pages,
            requests,
            task,
        }
    }

    /// The page asked with `cursor`, if it is the next one read ahead; `None` when the pager
    /// has nothing more or holds another page (the sync then starts a new pager).
    async fn page(&mut self, cursor: Option<&str>) -> Option<Result<DecodedPage, PageError>> {
        let ahead = self.pages.recv().await?;
        if ahead.cursor.as_deref() != cursor {
            return None;
        }
        Some(match ahead.page.await {
            Ok(page) => page.map_err(PageError::Api),
            Err(e) => Err(PageError::Reader(e.to_string())),
        })
    }

    /// Requests it sent, counted when it stops.
    fn requests(self) -> u64 {
        self.task.abort();
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listing page decoded and hashed, owned: ready to be handed to the store as items.
struct DecodedPage {
    entries: Vec<Entry>,
    /// Max `dateDerniereModification` of the page, read from the raw JSON when a dossier did
    /// not decode (it is recorded as an error in the same transaction).
    max_modified: Option<DateTime<Utc>>,
    has_next_page: bool,
    end_cursor: Option<String>,
}

enum Entry {
    Decoded {
        dossier: Box<Dossier>,
        raw: Box<RawValue>,
        hash: String,
    },
    Undecodable {
        number: Option<i64>,
        graphql_id: Option<String>,
        raw: Box<RawValue>,
        field: String,
        message: String,
    },
}

impl DecodedPage {
    /// Decodes every node and hashes what each applicant wrote: the CPU part of a page.
    fn new(page: DossiersPageText) -> Self {
        let page = page.decode();
        let mut max_modified = None;
        let entries = page
            .dossiers
            .into_iter()
            .map(|f| match f.parsed {
                Ok(dossier) => {
                    max_modified = max_opt(
                        max_modified,
                        Some(dossier.date_derniere_modification.to_utc()),
                    );
                    Entry::Decoded {
                        hash: applicant_content_hash(&dossier),
                        dossier: Box::new(dossier),
                        raw: f.raw,
                    }
                }
                Err(e) => {
                    // Rare: the node is read again as a tree for what it still tells.
                    let tree: Value = serde_json::from_str(f.raw.get()).unwrap_or(Value::Null);
                    let modified = tree
                        .get("dateDerniereModification")
                        .and_then(Value::as_str)
                        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                        .map(|t| t.to_utc());
                    max_modified = max_opt(max_modified, modified);
                    Entry::Undecodable {
                        number: f.number,
                        graphql_id: tree.get("id").and_then(Value::as_str).map(str::to_owned),
                        raw: f.raw,
                        field: e.path,
                        message: e.message,
                    }
                }
            })
            .collect();
        Self {
            entries,
            max_modified,
            has_next_page: page.has_next_page,
            end_cursor: page.end_cursor,
        }
    }

    fn items(&self) -> Vec<Incoming<'_>> {
        self.entries
            .iter()
            .map(|e| match e {
                Entry::Decoded { dossier, raw, hash } => Incoming::Decoded {
                    dossier,
                    raw: raw.get(),
                    hash,
                },
                Entry::Undecodable {
                    number,
                    graphql_id,
                    raw,
                    field,
                    message,
                } => Incoming::Undecodable {
                    number: *number,
                    graphql_id: graphql_id.as_deref(),
                    raw: raw.get(),
                    field,
                    message,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_first_sync_and_a_stale_reconciliation_start_a_full_pass() {
        let day = Duration::from_secs(86_400);
        let mut s = SyncState::new(1);
        let p = new_pass(&mut s, at("2026-03-02T08:00:00Z"), day);
        assert_eq!((p.kind, p.since, s.full_pass_id), (PassKind::Full, None, 1));

        s.watermark = Some(at("2026-03-02T07:00:00Z"));
        s.last_full_sync = Some(at("2026-03-02T08:00:00Z"));
        let p = new_pass(&mut s, at("2026-03-02T20:00:00Z"), day);
        assert_eq!(p.kind, PassKind::Incremental);
        assert_eq!(p.since, s.watermark);
        assert_eq!(s.full_pass_id, 1);

        let p = new_pass(&mut s, at("2026-03-03T08:00:00Z"), day);
        assert_eq!((p.kind, s.full_pass_id), (PassKind::Full, 2));
    }

    #[test]
    fn a_next_page_needs_a_new_cursor() {
        assert_eq!(next_cursor(1, false, Some("a".into()), None).unwrap(), None);
        assert_eq!(
            next_cursor(1, true, Some("b".into()), Some("a")).unwrap(),
            Some("b".into())
        );
        assert!(next_cursor(1, true, None, None).is_err());
        assert!(next_cursor(1, true, Some("a".into()), Some("a")).is_err());
    }
}
