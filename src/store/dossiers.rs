//! The mirrored dossiers, their history and their decode errors.
//!
//! A page from DS is applied in one transaction together with the sync position it leads to.
//! Each dossier is compared with what is stored: the same `dateDerniereModification` means
//! nothing happened (DS's `updatedSince` is inclusive at second precision, so the last dossiers
//! of a pass come back every time); otherwise the applicant's content hash tells an applicant's
//! edit from a bump caused by annotations (ours included), messages or a state change.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::sync_state::write_state;
use super::{
    MAX_VARIABLES, Store, StoreError, SyncState, format_ts, parse_opt_ts, parse_ts, placeholders,
    row_placeholders,
};
use crate::ds::model::{DeletedDossier, Dossier, DossierState};

/// One item of a listing page, as the sync hands it to the store.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// A dossier that decoded: stored, compared, its snapshot kept.
    Decoded {
        dossier: &'a Dossier,
        /// The node's JSON text, stored as the dossier's snapshot.
        raw: &'a str,
        /// [`applicant_content_hash`] of `dossier`, computed by the caller (the sync does it
        /// on the thread that decodes the page, not in the transaction).
        hash: &'a str,
    },
    /// A dossier that did not decode: recorded as a decode error naming it and the field, never
    /// dropped silently; whatever was stored for it before is left as it was.
    Undecodable {
        number: Option<i64>,
        graphql_id: Option<&'a str>,
        /// The node's JSON text, kept with the error.
        raw: &'a str,
        /// Path of the offending field in the dossier (`champs[3].value`).
        field: &'a str,
        message: &'a str,
    },
}

/// What applying a page changed. The lists hold dossier numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// Never seen before (or only known from a deletion record).
    pub new: Vec<i64>,
    /// The applicant's content (champs, demandeur) changed.
    pub changed_by_applicant: Vec<i64>,
    /// DS moved the dossier's dates but the applicant's content is the same: a state change,
    /// annotations (ours too), messages.
    pub changed_other: Vec<i64>,
    /// Of those changed, the ones whose state changed.
    pub state_changed: Vec<i64>,
    /// Listed again after having been recorded as deleted, pending deletion or gone.
    pub restored: Vec<i64>,
    /// Listed with the same `dateDerniereModification` as stored (the inclusive boundary, or a
    /// full reconciliation).
    pub unchanged: u64,
    /// Items that failed to decode.
    pub decode_errors: u64,
}

/// DS's two deletion listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionKind {
    /// `deletedDossiers`: purged for good.
    Deleted,
    /// `pendingDeletedDossiers`: hidden by the user or the administration, not yet purged.
    PendingDeleted,
}

impl DeletionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::PendingDeleted => "pending_deleted",
        }
    }
}

/// Whether DS still lists a dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DossierStatus {
    Listed,
    Deleted,
    PendingDeleted,
    /// Absent from a full reconciliation without a deletion record explaining why.
    Disappeared,
}

/// A dossier as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDossier {
    pub number: i64,
    pub demarche: i64,
    pub graphql_id: Option<String>,
    /// `None` only for a dossier known from a deletion record that gave no state.
    pub state: Option<DossierState>,
    pub date_depot: Option<DateTime<Utc>>,
    pub date_derniere_modification: Option<DateTime<Utc>>,
    pub date_derniere_modification_champs: Option<DateTime<Utc>>,
    pub date_derniere_modification_annotations: Option<DateTime<Utc>>,
    pub date_passage_en_instruction: Option<DateTime<Utc>>,
    pub date_traitement: Option<DateTime<Utc>>,
    /// The dossier's JSON text as DS listed it last; decode it with
    /// `ds::decode_dossier_text` (a corrupt text is that dossier's decode error, not the
    /// listing's).
    pub raw: Option<String>,
    /// See [`applicant_content_hash`].
    pub content_hash: Option<String>,
    pub champs_changed_at: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
    pub last_synced: DateTime<Utc>,
    pub status: DossierStatus,
    pub deletion_reason: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// When a sync asked for a (re)check that has not been done yet.
    pub check_requested_at: Option<DateTime<Utc>>,
}

/// What kind of change a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// First seen: `to_state` is its state then.
    Depose,
    /// DS state changed (`from_state` → `to_state`).
    State,
    /// The applicant's content changed.
    Champs,
    Deleted,
    PendingDeleted,
    Disappeared,
    /// Listed again after a deletion record or a disappearance.
    Restored,
}

impl HistoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depose => "depose",
            Self::State => "state",
            Self::Champs => "champs",
            Self::Deleted => "deleted",
            Self::PendingDeleted => "pending_deleted",
            Self::Disappeared => "disappeared",
            Self::Restored => "restored",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "depose" => Self::Depose,
            "state" => Self::State,
            "champs" => Self::Champs,
            "deleted" => Self::Deleted,
            "pending_deleted" => Self::PendingDeleted,
            "disappeared" => Self::Disappeared,
            "restored" => Self::Restored,
            _ => return None,
        })
    }
}

/// One history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: i64,
    pub number: i64,
    pub demarche: i64,
    pub kind: HistoryKind,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    /// When it happened according to DS (when we noticed, for a disappearance).
    pub at: DateTime<Utc>,
    pub observed_at: DateTime<Utc>,
}

/// A recorded decode error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeErrorRecord {
    pub demarche: i64,
    pub number: Option<i64>,
    /// The dossier number as text, or `id:<graphql id>` / `inconnu` when unreadable.
    pub dossier_key: String,
    pub field_path: String,
    pub message: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: i64,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// SHA-256 (hex) of what the applicant wrote: champs and demandeur. Annotations, messages,
/// labels, state and dates are left out, and so are file URLs, which DS signs anew on every
/// request. Equal hashes mean the pre-check has nothing new to look at.
pub fn applicant_content_hash(dossier: &Dossier) -> String {
    let mut content = serde_json::json!({
        "champs": dossier.champs,
        "demandeur": dossier.demandeur,
    });
    strip_volatile(&mut content);
    sha256_hex(&content)
}

/// SHA-256 (lowercase hex) of `value.to_string()`, serialized straight into the hasher.
fn sha256_hex(value: &Value) -> String {
    let content = value;
    let mut hasher = HashWriter(Sha256::new());
    if serde_json::to_writer(&mut hasher, &content).is_err() {
        // A `Value` always serializes; never reached.
        hasher.0.update(content.to_string().as_bytes());
    }
    let digest = hasher.0.finalize();
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

/// Feeds what is written to a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("url");
            map.values_mut().for_each(strip_volatile);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// The DS date a state change happened at.
fn transition_date(d: &Dossier) -> DateTime<Utc> {
    let at = match d.state {
        DossierState::EnInstruction => d.date_passage_en_instruction,
        s if s.is_terminal() => d.date_traitement,
        _ => None,
    };
    at.unwrap_or(d.date_derniere_modification).to_utc()
}

struct Existing {
    state: Option<String>,
    ddm: Option<String>,
    hash: Option<String>,
    deletion: Option<String>,
}

impl Store {
    /// Applies one page of `dossiers(...)` and saves `next` (the watermark and cursor that page
    /// leads to) in the same transaction: either both are committed or neither.
    ///
    /// `full_pass` is the number of the full reconciliation in progress, if it is one: the
    /// dossiers listed are marked as seen by it, including those that failed to decode.
    ///
    /// # Errors
    /// Database failures; nothing of the page is committed then.
    pub async fn apply_dossier_page(
        &self,
        demarche: i64,
        items: &[Incoming<'_>],
        full_pass: Option<i64>,
        next: &SyncState,
        observed_at: DateTime<Utc>,
    ) -> Result<PageCounts, StoreError> {
        let now = format_ts(observed_at);
        let mut counts = PageCounts::default();
        let mut tx = self.write_tx().await?;
        // Read in one query what is stored for the page's dossiers, and clear the decode
        // errors of those that decode, instead of two statements per dossier. A number listed
        // twice in the page, or also listed as undecodable, is looked up alone, in order.
        let decoded: Vec<i64> = items
            .iter()
            .filter_map(|i| match i {
                Incoming::Decoded { dossier, .. } => Some(dossier.number),
                Incoming::Undecodable { .. } => None,
            })
            .collect();
        let mut prefetched = if items
            .iter()
            .any(|i| matches!(i, Incoming::Undecodable { .. }))
        {
            None
        } else {
            clear_decode_errors(&mut tx, &decoded, &now).await?;
            Some(existing_rows(&mut tx, &decoded).await?)
        };
        // The page's dossier upserts and history rows, written in multi-row statements.
        let mut pending = PageWrites::default();
        for item in items {
            match *item {
                Incoming::Decoded { dossier, raw, hash } => {
                    let known = match prefetched.as_mut() {
                        // `remove`: a second occurrence of the number is looked up alone.
                        Some(rows) => match rows.remove(&dossier.number) {
                            Some(row) => Known::Read(row),
                            None if rows.seen.insert(dossier.number) => Known::Read(None),
                            None => Known::Unread,
                        },
                        None => Known::Unread,
                    };
                    if matches!(known, Known::Unread) {
                        // Read after what the page wrote so far.
                        pending.flush(&mut tx, full_pass).await?;
                    }
                    apply_decoded(
                        &mut tx,
                        &mut pending,
                        demarche,
                        dossier,
                        raw,
                        hash,
                        known,
                        full_pass,
                        &now,
                        &mut counts,
                    )
                    .await?;
                }
                Incoming::Undecodable {
                    number,
                    graphql_id,
                    raw,
                    field,
                    message,
                } => {
                    pending.flush(&mut tx, full_pass).await?;
                    counts.decode_errors += 1;
                    let key = match (number, graphql_id) {
                        (Some(n), _) => n.to_string(),
                        (None, Some(id)) => format!("id:{id}"),
                        (None, None) => "inconnu".to_owned(),
                    };
                    sqlx::query(
                        "INSERT INTO decode_errors (demarche, dossier_key, number, field_path,
                             message, raw_json, first_seen, last_seen, occurrences, resolved_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, NULL)
                         ON CONFLICT (demarche, dossier_key, field_path) DO UPDATE SET
                             message = excluded.message, raw_json = excluded.raw_json,
                             last_seen = excluded.last_seen,
                             occurrences = decode_errors.occurrences + 1, resolved_at = NULL",
                    )
                    .bind(demarche)
                    .bind(&key)
                    .bind(number)
                    .bind(field)
                    .bind(message)
                    .bind(raw)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                    // Another field failing before means that one was fixed.
                    sqlx::query(
                        "UPDATE decode_errors SET resolved_at = $4
                         WHERE demarche = $1 AND dossier_key = $2 AND field_path <> $3
                           AND resolved_at IS NULL",
                    )
                    .bind(demarche)
                    .bind(&key)
                    .bind(field)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                    if let (Some(n), Some(pass)) = (number, full_pass) {
                        // Still listed by DS: not to be taken for a disappearance.
                        sqlx::query("UPDATE dossiers SET full_pass_seen = $2 WHERE number = $1")
                            .bind(n)
                            .bind(pass)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        pending.flush(&mut tx, full_pass).await?;
        write_state(&mut tx, next).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Applies one page of `deletedDossiers` or `pendingDeletedDossiers` and saves `next` with
    /// it. A dossier never seen is recorded too, from the deletion record alone. Returns the
    /// dossiers whose deletion is new (a record already stored is not counted again).
    ///
    /// # Errors
    /// Database failures; nothing of the page is committed then.
    pub async fn apply_deleted_page(
        &self,
        demarche: i64,
        kind: DeletionKind,
        items: &[DeletedDossier],
        next: &SyncState,
        observed_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let now = format_ts(observed_at);
        let mut recorded = Vec::new();
        let mut tx = self.write_tx().await?;
        for d in items {
            let deleted_at = format_ts(d.date_suppression.to_utc());
            let row =
                sqlx::query("SELECT state, deletion, deleted_at FROM dossiers WHERE number = $1")
                    .bind(d.number)
                    .fetch_optional(&mut *tx)
                    .await?;
            let from_state = match row {
                None => {
                    sqlx::query(
                        "INSERT INTO dossiers (number, demarche, state, first_seen, last_synced,
                             deletion, deletion_reason, deleted_at)
                         VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
                    )
                    .bind(d.number)
                    .bind(demarche)
                    .bind(d.state.map(DossierState::as_str))
                    .bind(&now)
                    .bind(kind.as_str())
                    .bind(&d.reason)
                    .bind(&deleted_at)
                    .execute(&mut *tx)
                    .await?;
                    d.state.map(|s| s.as_str().to_owned())
                }
                Some(row) => {
                    let state: Option<String> = row.try_get("state")?;
                    let deletion: Option<String> = row.try_get("deletion")?;
                    let at: Option<String> = row.try_get("deleted_at")?;
                    if deletion.as_deref() == Some(kind.as_str())
                        && at.as_deref() == Some(deleted_at.as_str())
                    {
                        continue;
                    }
                    sqlx::query(
                        "UPDATE dossiers SET deletion = $2, deletion_reason = $3, deleted_at = $4,
                             last_synced = $5, check_requested_at = NULL
                         WHERE number = $1",
                    )
                    .bind(d.number)
                    .bind(kind.as_str())
                    .bind(&d.reason)
                    .bind(&deleted_at)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                    state
                }
            };
            let kind_h = match kind {
                DeletionKind::Deleted => HistoryKind::Deleted,
                DeletionKind::PendingDeleted => HistoryKind::PendingDeleted,
            };
            insert_history(
                &mut tx,
                d.number,
                demarche,
                kind_h,
                from_state.as_deref(),
                None,
                &deleted_at,
                &now,
            )
            .await?;
            recorded.push(d.number);
        }
        write_state(&mut tx, next).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Ends full reconciliation `pass_id`: the démarche's dossiers it did not list, and that
    /// no deletion record explains, are marked `disappeared` (with a history row). Saves
    /// `next` in the same transaction and returns the dossiers marked.
    ///
    /// # Errors
    /// Database failures; nothing is committed then.
    pub async fn finish_full_pass(
        &self,
        demarche: i64,
        pass_id: i64,
        next: &SyncState,
        observed_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let now = format_ts(observed_at);
        let mut tx = self.write_tx().await?;
        let gone: Vec<i64> = sqlx::query_scalar(
            "SELECT number FROM dossiers
             WHERE demarche = $1 AND deletion IS NULL AND full_pass_seen < $2
             ORDER BY number",
        )
        .bind(demarche)
        .bind(pass_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO dossier_history (number, demarche, kind, from_state, to_state, at,
                 observed_at)
             SELECT number, demarche, 'disappeared', state, NULL, $3, $3 FROM dossiers
             WHERE demarche = $1 AND deletion IS NULL AND full_pass_seen < $2",
        )
        .bind(demarche)
        .bind(pass_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE dossiers SET deletion = 'disappeared',
                 deletion_reason = 'absent de la liste complète de DS', deleted_at = $3,
                 check_requested_at = NULL
             WHERE demarche = $1 AND deletion IS NULL AND full_pass_seen < $2",
        )
        .bind(demarche)
        .bind(pass_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        write_state(&mut tx, next).await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// One stored dossier.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn dossier(&self, number: i64) -> Result<Option<StoredDossier>, StoreError> {
        let row = sqlx::query(SELECT_DOSSIER)
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dossier_from_row).transpose()
    }

    /// Every stored dossier of a démarche, by number.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn dossiers_of(&self, demarche: i64) -> Result<Vec<StoredDossier>, StoreError> {
        let rows = sqlx::query(SELECT_DOSSIERS_OF)
            .bind(demarche)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dossier_from_row).collect()
    }

    /// The JSON snapshots of the dossiers of `demarche` that DS still lists, by number.
    ///
    /// # Errors
    /// Database failures.
    pub async fn listed_snapshots(&self, demarche: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT raw_json FROM dossiers
             WHERE demarche = $1 AND deletion IS NULL AND raw_json IS NOT NULL
             ORDER BY number",
        )
        .bind(demarche)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Dossiers of `demarche` whose (re)check was requested by a sync and not done yet,
    /// including requests left over by a cycle that stopped before its pre-check.
    ///
    /// # Errors
    /// Database failures.
    pub async fn pending_checks(&self, demarche: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT number FROM dossiers
             WHERE demarche = $1 AND check_requested_at IS NOT NULL AND deletion IS NULL
             ORDER BY number",
        )
        .bind(demarche)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Clears the check request of `number`, unless a newer one arrived since `requested_at`
    /// (the value read before checking): a change synced meanwhile is then checked next cycle.
    /// Returns whether the request was cleared.
    ///
    /// # Errors
    /// Database failures.
    pub async fn mark_checked(
        &self,
        number: i64,
        requested_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE dossiers SET check_requested_at = NULL
             WHERE number = $1 AND check_requested_at <= $2",
        )
        .bind(number)
        .bind(format_ts(requested_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The history of one dossier, oldest first.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn history(&self, number: i64) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, number, demarche, kind, from_state, to_state, at, observed_at
             FROM dossier_history WHERE number = $1 ORDER BY id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(history_from_row).collect()
    }

    /// The history of every dossier of a démarche, oldest first.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn demarche_history(&self, demarche: i64) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, number, demarche, kind, from_state, to_state, at, observed_at
             FROM dossier_history WHERE demarche = $1 ORDER BY id",
        )
        .bind(demarche)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(history_from_row).collect()
    }

    /// Decode errors of a démarche (`None`: all), unresolved only unless `include_resolved`.
    ///
    /// # Errors
    /// Database failures, [`StoreError::Corrupt`].
    pub async fn decode_errors(
        &self,
        demarche: Option<i64>,
        include_resolved: bool,
    ) -> Result<Vec<DecodeErrorRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT demarche, number, dossier_key, field_path, message, first_seen, last_seen,
                 occurrences, resolved_at
             FROM decode_errors
             WHERE ($1 IS NULL OR demarche = $1) AND ($2 OR resolved_at IS NULL)
             ORDER BY demarche, dossier_key, field_path",
        )
        .bind(demarche)
        .bind(include_resolved)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DecodeErrorRecord {
                    demarche: row.try_get("demarche")?,
                    number: row.try_get("number")?,
                    dossier_key: row.try_get("dossier_key")?,
                    field_path: row.try_get("field_path")?,
                    message: row.try_get("message")?,
                    first_seen: parse_ts("decode_errors.first_seen", row.try_get("first_seen")?)?,
                    last_seen: parse_ts("decode_errors.last_seen", row.try_get("last_seen")?)?,
                    occurrences: row.try_get("occurrences")?,
                    resolved_at: parse_opt_ts(
                        "decode_errors.resolved_at",
                        row.try_get("resolved_at")?,
                    )?,
                })
            })
            .collect()
    }
}

/// What is stored for a dossier, if it was read with the rest of its page.
enum Known {
    /// Read for the page (`None`: not stored), and its decode errors cleared.
    Read(Option<Existing>),
    /// To be read now (and its decode errors cleared), in page order.
    Unread,
}

/// The stored rows of a page's dossiers, by number.
struct PageRows {
    rows: std::collections::HashMap<i64, Existing>,
    /// Numbers already handed out: a second occurrence is looked up alone.
    seen: std::collections::HashSet<i64>,
}

impl PageRows {
    fn remove(&mut self, number: &i64) -> Option<Option<Existing>> {
        let row = self.rows.remove(number)?;
        self.seen.insert(*number);
        Some(Some(row))
    }
}

/// Clears the unresolved decode errors of `numbers` (dossiers that decode again).
async fn clear_decode_errors(
    tx: &mut Transaction<'static, Any>,
    numbers: &[i64],
    now: &str,
) -> Result<(), StoreError> {
    if numbers.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE decode_errors SET resolved_at = $1
         WHERE resolved_at IS NULL AND number IN ({})",
        placeholders(2, numbers.len())
    );
    // Only placeholders are spliced in: the values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
    for n in numbers {
        query = query.bind(n);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// What is stored for `numbers`, in one query.
async fn existing_rows(
    tx: &mut Transaction<'static, Any>,
    numbers: &[i64],
) -> Result<PageRows, StoreError> {
    let mut rows = std::collections::HashMap::with_capacity(numbers.len());
    if !numbers.is_empty() {
        let sql = format!(
            "SELECT number, state, date_derniere_modification, content_hash, deletion
             FROM dossiers WHERE number IN ({})",
            placeholders(1, numbers.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for n in numbers {
            query = query.bind(n);
        }
        for row in query.fetch_all(&mut **tx).await? {
            rows.insert(row.try_get("number")?, existing_from_row(&row)?);
        }
    }
    Ok(PageRows {
        rows,
        seen: std::collections::HashSet::new(),
    })
}

fn existing_from_row(row: &sqlx::any::AnyRow) -> Result<Existing, StoreError> {
    Ok(Existing {
        state: row.try_get("state")?,
        ddm: row.try_get("date_derniere_modification")?,
        hash: row.try_get("content_hash")?,
        deletion: row.try_get("deletion")?,
    })
}

#[allow(clippy::too_many_arguments)]
async fn apply_decoded(
    tx: &mut Transaction<'static, Any>,
    pending: &mut PageWrites,
    demarche: i64,
    d: &Dossier,
    raw: &str,
    hash: &str,
    known: Known,
    full_pass: Option<i64>,
    now: &str,
    counts: &mut PageCounts,
) -> Result<(), StoreError> {
    let ddm = format_ts(d.date_derniere_modification.to_utc());
    let ddm_champs = format_ts(d.date_derniere_modification_champs.to_utc());
    let state = d.state.as_str();
    let existing = match known {
        Known::Read(existing) => existing,
        Known::Unread => {
            let existing = sqlx::query(
                "SELECT state, date_derniere_modification, content_hash, deletion
                 FROM dossiers WHERE number = $1",
            )
            .bind(d.number)
            .fetch_optional(&mut **tx)
            .await?
            .as_ref()
            .map(existing_from_row)
            .transpose()?;
            // A dossier that decodes again clears its decode errors.
            clear_decode_errors(tx, &[d.number], now).await?;
            existing
        }
    };

    // A row without a hash was only known from a deletion record: new as far as content goes.
    let Some(e) = existing.filter(|e| e.hash.is_some()) else {
        let fields = Upsert {
            request_check: true,
            champs_changed_at: Some(&ddm_champs),
        };
        pending.upsert(demarche, d, raw, hash, full_pass, now, fields);
        let depose = format_ts(d.date_depot.to_utc());
        pending.history(
            d.number,
            demarche,
            HistoryKind::Depose,
            None,
            Some(state),
            depose,
            now,
        );
        counts.new.push(d.number);
        return Ok(());
    };

    let same_state = e.state.as_deref() == Some(state);
    let same_hash = e.hash.as_deref() == Some(hash);
    if e.ddm.as_deref() == Some(ddm.as_str()) && same_state && same_hash && e.deletion.is_none() {
        // Nothing happened: the boundary duplicate of updatedSince, or a full pass.
        sqlx::query(
            "UPDATE dossiers SET last_synced = $2, full_pass_seen = COALESCE($3, full_pass_seen),
                 raw_json = $4
             WHERE number = $1",
        )
        .bind(d.number)
        .bind(now)
        .bind(full_pass)
        .bind(raw)
        .execute(&mut **tx)
        .await?;
        counts.unchanged += 1;
        return Ok(());
    }

    let fields = Upsert {
        request_check: !same_hash || !same_state,
        champs_changed_at: (!same_hash).then_some(ddm_champs.as_str()),
    };
    pending.upsert(demarche, d, raw, hash, full_pass, now, fields);
    if e.deletion.is_some() {
        pending.history(
            d.number,
            demarche,
            HistoryKind::Restored,
            e.state.as_deref(),
            Some(state),
            ddm,
            now,
        );
        counts.restored.push(d.number);
    }
    if !same_state {
        let at = format_ts(transition_date(d));
        pending.history(
            d.number,
            demarche,
            HistoryKind::State,
            e.state.as_deref(),
            Some(state),
            at,
            now,
        );
        counts.state_changed.push(d.number);
    }
    if same_hash {
        counts.changed_other.push(d.number);
    } else {
        pending.history(
            d.number,
            demarche,
            HistoryKind::Champs,
            None,
            None,
            ddm_champs,
            now,
        );
        counts.changed_by_applicant.push(d.number);
    }
    Ok(())
}

/// What [`upsert_full`] sets besides the listed columns.
struct Upsert<'a> {
    /// Ask the pre-check to (re)check the dossier.
    request_check: bool,
    /// New `champs_changed_at`; `None` keeps the stored one.
    champs_changed_at: Option<&'a str>,
}

/// A dossier row to write: every listed column of the dossier.
struct DossierRow {
    number: i64,
    demarche: i64,
    graphql_id: String,
    state: &'static str,
    date_depot: String,
    ddm: String,
    ddm_champs: String,
    ddm_annotations: String,
    date_passage_en_instruction: Option<String>,
    date_traitement: Option<String>,
    raw_json: String,
    hash: String,
    champs_changed_at: Option<String>,
    now: String,
    full_pass: Option<i64>,
    check_requested_at: Option<String>,
}

/// A history row to write.
struct HistoryRow {
    number: i64,
    demarche: i64,
    kind: HistoryKind,
    from_state: Option<String>,
    to_state: Option<String>,
    at: String,
    observed_at: String,
}

/// The writes of a page not yet sent: dossier upserts and history rows, in page order, sent as
/// multi-row statements by [`PageWrites::flush`] (before anything reads what they write, and
/// before the transaction commits).
#[derive(Default)]
struct PageWrites {
    dossiers: Vec<DossierRow>,
    history: Vec<HistoryRow>,
}

impl PageWrites {
    /// Queues the write of every listed column of `d`, clearing any deletion status.
    #[allow(clippy::too_many_arguments)]
    fn upsert(
        &mut self,
        demarche: i64,
        d: &Dossier,
        raw: &str,
        hash: &str,
        full_pass: Option<i64>,
        now: &str,
        fields: Upsert<'_>,
    ) {
        self.dossiers.push(DossierRow {
            number: d.number,
            demarche,
            graphql_id: d.id.clone(),
            state: d.state.as_str(),
            date_depot: format_ts(d.date_depot.to_utc()),
            ddm: format_ts(d.date_derniere_modification.to_utc()),
            ddm_champs: format_ts(d.date_derniere_modification_champs.to_utc()),
            ddm_annotations: format_ts(d.date_derniere_modification_annotations.to_utc()),
            date_passage_en_instruction: d
                .date_passage_en_instruction
                .map(|t| format_ts(t.to_utc())),
            date_traitement: d.date_traitement.map(|t| format_ts(t.to_utc())),
            raw_json: raw.to_owned(),
            hash: hash.to_owned(),
            champs_changed_at: fields.champs_changed_at.map(str::to_owned),
            now: now.to_owned(),
            full_pass,
            check_requested_at: fields.request_check.then(|| now.to_owned()),
        });
    }

    /// Queues a history row.
    #[allow(clippy::too_many_arguments)]
    fn history(
        &mut self,
        number: i64,
        demarche: i64,
        kind: HistoryKind,
        from_state: Option<&str>,
        to_state: Option<&str>,
        at: String,
        observed_at: &str,
    ) {
        self.history.push(HistoryRow {
            number,
            demarche,
            kind,
            from_state: from_state.map(str::to_owned),
            to_state: to_state.map(str::to_owned),
            at,
            observed_at: observed_at.to_owned(),
        });
    }

    /// Sends what is queued: the dossiers first, then their history rows, each in page order.
    async fn flush(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        full_pass: Option<i64>,
    ) -> Result<(), StoreError> {
        const DOSSIER_VARS: usize = 17;
        while !self.dossiers.is_empty() {
            let n = self.dossiers.len().min((MAX_VARIABLES - 1) / DOSSIER_VARS);
            let full_pass_var = n * DOSSIER_VARS + 1;
            let sql = format!(
                "INSERT INTO dossiers (number, demarche, graphql_id, state, date_depot,
                     date_derniere_modification, date_derniere_modification_champs,
                     date_derniere_modification_annotations, date_passage_en_instruction,
                     date_traitement, raw_json, content_hash, champs_changed_at, first_seen,
                     last_synced, full_pass_seen, check_requested_at)
                 VALUES {}
                 ON CONFLICT (number) DO UPDATE SET
                     demarche = excluded.demarche,
                     graphql_id = excluded.graphql_id,
                     state = excluded.state,
                     date_depot = excluded.date_depot,
                     date_derniere_modification = excluded.date_derniere_modification,
                     date_derniere_modification_champs =
                         excluded.date_derniere_modification_champs,
                     date_derniere_modification_annotations =
                         excluded.date_derniere_modification_annotations,
                     date_passage_en_instruction = excluded.date_passage_en_instruction,
                     date_traitement = excluded.date_traitement,
                     raw_json = excluded.raw_json,
                     content_hash = excluded.content_hash,
                     champs_changed_at =
                         COALESCE(excluded.champs_changed_at, dossiers.champs_changed_at),
                     last_synced = excluded.last_synced,
                     full_pass_seen = COALESCE(${full_pass_var}, dossiers.full_pass_seen),
                     deletion = NULL,
                     deletion_reason = NULL,
                     deleted_at = NULL,
                     check_requested_at =
                         COALESCE(excluded.check_requested_at, dossiers.check_requested_at)",
                row_placeholders(n, DOSSIER_VARS)
            );
            // Only placeholders are spliced in: the values are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in self.dossiers.drain(..n) {
                q = q
                    .bind(r.number)
                    .bind(r.demarche)
                    .bind(r.graphql_id)
                    .bind(r.state)
                    .bind(r.date_depot)
                    .bind(r.ddm)
                    .bind(r.ddm_champs)
                    .bind(r.ddm_annotations)
                    .bind(r.date_passage_en_instruction)
                    .bind(r.date_traitement)
                    .bind(r.raw_json)
                    .bind(r.hash)
                    .bind(r.champs_changed_at)
                    .bind(r.now.clone())
                    .bind(r.now)
                    .bind(r.full_pass.unwrap_or(0))
                    .bind(r.check_requested_at);
            }
            q.bind(full_pass).execute(&mut **tx).await?;
        }
        const HISTORY_VARS: usize = 7;
        while !self.history.is_empty() {
            let n = self.history.len().min(MAX_VARIABLES / HISTORY_VARS);
            let sql = format!(
                "INSERT INTO dossier_history (number, demarche, kind, from_state, to_state, at,
                     observed_at) VALUES {}",
                row_placeholders(n, HISTORY_VARS)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in self.history.drain(..n) {
                q = q
                    .bind(r.number)
                    .bind(r.demarche)
                    .bind(r.kind.as_str())
                    .bind(r.from_state)
                    .bind(r.to_state)
                    .bind(r.at)
                    .bind(r.observed_at);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_history(
    tx: &mut Transaction<'static, Any>,
    number: i64,
    demarche: i64,
    kind: HistoryKind,
    from_state: Option<&str>,
    to_state: Option<&str>,
    at: &str,
    observed_at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dossier_history (number, demarche, kind, from_state, to_state, at,
             observed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(number)
    .bind(demarche)
    .bind(kind.as_str())
    .bind(from_state)
    .bind(to_state)
    .bind(at)
    .bind(observed_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const SELECT_DOSSIER: &str = "SELECT number, demarche, graphql_id, state, date_depot,
     date_derniere_modification, date_derniere_modification_champs,
     date_derniere_modification_annotations, date_passage_en_instruction, date_traitement,
     raw_json, content_hash, champs_changed_at, first_seen, last_synced, deletion,
     deletion_reason, deleted_at, check_requested_at
     FROM dossiers WHERE number = $1";

const SELECT_DOSSIERS_OF: &str = "SELECT number, demarche, graphql_id, state, date_depot,
     date_derniere_modification, date_derniere_modification_champs,
     date_derniere_modification_annotations, date_passage_en_instruction, date_traitement,
     raw_json, content_hash, champs_changed_at, first_seen, last_synced, deletion,
     deletion_reason, deleted_at, check_requested_at
     FROM dossiers WHERE demarche = $1 ORDER BY number";

fn dossier_from_row(row: &sqlx::any::AnyRow) -> Result<StoredDossier, StoreError> {
    let state: Option<String> = row.try_get("state")?;
    let state = state
        .map(|s| {
            DossierState::parse(&s).ok_or(StoreError::Corrupt {
                column: "dossiers.state",
                value: s,
            })
        })
        .transpose()?;
    let deletion: Option<String> = row.try_get("deletion")?;
    let status = match deletion.as_deref() {
        None => DossierStatus::Listed,
        Some("deleted") => DossierStatus::Deleted,
        Some("pending_deleted") => DossierStatus::PendingDeleted,
        Some("disappeared") => DossierStatus::Disappeared,
        Some(other) => {
            return Err(StoreError::Corrupt {
                column: "dossiers.deletion",
                value: other.to_owned(),
            });
        }
    };
    let raw: Option<String> = row.try_get("raw_json")?;
    let ts = |col: &'static str| -> Result<Option<DateTime<Utc>>, StoreError> {
        parse_opt_ts(col, row.try_get(col)?)
    };
    Ok(StoredDossier {
        number: row.try_get("number")?,
        demarche: row.try_get("demarche")?,
        graphql_id: row.try_get("graphql_id")?,
        state,
        date_depot: ts("date_depot")?,
        date_derniere_modification: ts("date_derniere_modification")?,
        date_derniere_modification_champs: ts("date_derniere_modification_champs")?,
        date_derniere_modification_annotations: ts("date_derniere_modification_annotations")?,
        date_passage_en_instruction: ts("date_passage_en_instruction")?,
        date_traitement: ts("date_traitement")?,
        raw,
        content_hash: row.try_get("content_hash")?,
        champs_changed_at: ts("champs_changed_at")?,
        first_seen: parse_ts("dossiers.first_seen", row.try_get("first_seen")?)?,
        last_synced: parse_ts("dossiers.last_synced", row.try_get("last_synced")?)?,
        status,
        deletion_reason: row.try_get("deletion_reason")?,
        deleted_at: ts("deleted_at")?,
        check_requested_at: ts("check_requested_at")?,
    })
}

fn history_from_row(row: &sqlx::any::AnyRow) -> Result<HistoryEntry, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(HistoryEntry {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        demarche: row.try_get("demarche")?,
        kind: HistoryKind::parse(&kind).ok_or(StoreError::Corrupt {
            column: "dossier_history.kind",
            value: kind.clone(),
        })?,
        from_state: row.try_get("from_state")?,
        to_state: row.try_get("to_state")?,
        at: parse_ts("dossier_history.at", row.try_get("at")?)?,
        observed_at: parse_ts("dossier_history.observed_at", row.try_get("observed_at")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_that_of_the_json_text() {
        let v = serde_json::json!({"champs": [{"label": "Nom « é »", "url": null, "n": 1.5}],
            "demandeur": {"siret": "123"}});
        let text: String = Sha256::digest(v.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha256_hex(&v), text);
    }
}
