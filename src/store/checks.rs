//! The pre-check's tables: the last report of each dossier (`checks`), its findings per
//! (dossier, rule) with when each was first and last seen (`findings`), and the cached
//! descriptors of each démarche (`demarche_descriptors`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{
    Store, StoreError, format_ts, parse_ts, placeholders, row_placeholders, row_placeholders_from,
};
use crate::ds::model::DemarcheDescriptors;

/// A report to save, as the pre-check hands it over (spelled as the store keeps it).
#[derive(Debug, Clone)]
pub struct NewCheck {
    pub dossier: i64,
    pub demarche: i64,
    /// What the report was computed from (see `precheck`): checked again only when it changes.
    pub key: String,
    /// `conforme`, `non_conforme`, `derogation_cpn`.
    pub verdict: &'static str,
    pub report_text: String,
    pub report_json: String,
    pub fingerprint: String,
    pub rulebook: String,
    /// One per rule that fired; the dossier's other open findings are resolved.
    pub findings: Vec<NewFinding>,
    /// The check request this report answers, cleared with it unless a newer one arrived.
    pub requested_at: Option<DateTime<Utc>>,
}

/// The findings of one rule on one dossier.
#[derive(Debug, Clone)]
pub struct NewFinding {
    pub rule: String,
    /// The most severe of the rule's findings: `bloquant`, `derogation`, `avertissement`, `info`.
    pub severity: &'static str,
    /// JSON array of the rule's findings (message and evidence).
    pub details: String,
}

/// A stored report, as the write-back and the CLI read it.
#[derive(Debug, Clone)]
pub struct StoredCheck {
    pub dossier: i64,
    pub demarche: i64,
    pub verdict: String,
    pub report_text: String,
    pub report_json: serde_json::Value,
    pub checked_at: String,
}

/// Rows per multi-row statement (and per padded list): a fixed size, so that the statements
/// repeat and their prepared form is reused; a statement of a new shape is prepared anew, and a
/// large one costs more to prepare than to run.
const ROWS: usize = 64;

impl Store {
    /// The check key of every stored report, by dossier.
    ///
    /// # Errors
    /// Database failures.
    pub async fn check_keys(&self) -> Result<HashMap<i64, String>, StoreError> {
        let rows = sqlx::query("SELECT dossier, check_key FROM checks")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("dossier")?, r.try_get("check_key")?)))
            .collect()
    }

    /// Saves `checks` in one transaction: each report replaces the dossier's last one, each
    /// rule that fired is upserted (its `first_seen` kept while it stays open), the dossier's
    /// other open findings are resolved (never deleted), and the check requests answered are
    /// cleared. Returns the dossiers whose request could not be cleared because a newer one
    /// arrived meanwhile (changed again while being checked: checked again next cycle).
    ///
    /// # Errors
    /// Database failures; nothing of the batch is saved then.
    pub async fn save_checks(
        &self,
        checks: &[NewCheck],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let now = format_ts(now);
        let mut tx = self.write_tx().await?;
        let mut cleared = std::collections::HashSet::new();
        // Statements of a few fixed shapes, so that their prepared form is reused: padding
        // rows (dossier -1, which DS never hands out) fill the lists that vary.
        for chunk in checks.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO checks (dossier, demarche, check_key, verdict, report_text,
                     report_json, fingerprint, rulebook, checked_at)
                 VALUES {}
                 ON CONFLICT (dossier) DO UPDATE SET
                     demarche = excluded.demarche, check_key = excluded.check_key,
                     verdict = excluded.verdict, report_text = excluded.report_text,
                     report_json = excluded.report_json, fingerprint = excluded.fingerprint,
                     rulebook = excluded.rulebook, checked_at = excluded.checked_at",
                row_placeholders(chunk.len(), 9)
            );
            // Only placeholders are spliced in: the values are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                q = q
                    .bind(c.dossier)
                    .bind(c.demarche)
                    .bind(&c.key)
                    .bind(c.verdict)
                    .bind(&c.report_text)
                    .bind(&c.report_json)
                    .bind(&c.fingerprint)
                    .bind(&c.rulebook)
                    .bind(&now);
            }
            q.execute(&mut *tx).await?;

            let fired: Vec<(i64, &NewFinding)> = chunk
                .iter()
                .flat_map(|c| c.findings.iter().map(move |f| (c.dossier, f)))
                .collect();
            for rows in fired.chunks(ROWS) {
                let sql = format!(
                    "INSERT INTO findings (dossier, rule, severity, details, first_seen,
                         last_seen)
                     VALUES {}
                     ON CONFLICT (dossier, rule) DO UPDATE SET
                         severity = excluded.severity, details = excluded.details,
                         last_seen = excluded.last_seen,
                         first_seen = CASE WHEN findings.resolved_at IS NULL
                                           THEN findings.first_seen ELSE excluded.first_seen END,
                         resolved_at = NULL",
                    row_placeholders(rows.len(), 6)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (dossier, f) in rows {
                    q = q
                        .bind(*dossier)
                        .bind(&f.rule)
                        .bind(f.severity)
                        .bind(&f.details)
                        .bind(&now)
                        .bind(&now);
                }
                q.execute(&mut *tx).await?;
            }

            // Rules that no longer fire on these dossiers are resolved, not deleted.
            let pairs = fired.len().div_ceil(ROWS).max(1) * ROWS;
            let sql = format!(
                "UPDATE findings SET resolved_at = $1
                 WHERE resolved_at IS NULL AND dossier IN ({})
                   AND (dossier, rule) NOT IN (VALUES {})",
                placeholders(2, ROWS),
                row_placeholders_from(2 + ROWS, pairs, 2)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&now);
            for i in 0..ROWS {
                q = q.bind(chunk.get(i).map_or(-1, |c| c.dossier));
            }
            for i in 0..pairs {
                q = match fired.get(i) {
                    Some((dossier, f)) => q.bind(*dossier).bind(f.rule.as_str()),
                    None => q.bind(-1_i64).bind(""),
                };
            }
            q.execute(&mut *tx).await?;

            // The check requests answered, unless a newer one arrived since it was read.
            let requested: Vec<(i64, String)> = chunk
                .iter()
                .filter_map(|c| c.requested_at.map(|at| (c.dossier, format_ts(at))))
                .collect();
            if !requested.is_empty() {
                let sql = format!(
                    "UPDATE dossiers SET check_requested_at = NULL
                     FROM (VALUES {}) AS r
                     WHERE dossiers.number = r.column1
                       AND dossiers.check_requested_at <= r.column2
                     RETURNING dossiers.number",
                    row_placeholders(ROWS, 2)
                );
                let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
                for i in 0..ROWS {
                    q = match requested.get(i) {
                        Some((number, at)) => q.bind(*number).bind(at.as_str()),
                        None => q.bind(-1_i64).bind(""),
                    };
                }
                cleared.extend(q.fetch_all(&mut *tx).await?);
            }
        }
        let requested: Vec<i64> = checks
            .iter()
            .filter(|c| c.requested_at.is_some())
            .map(|c| c.dossier)
            .collect();
        tx.commit().await?;
        Ok(requested
            .into_iter()
            .filter(|n| !cleared.contains(n))
            .collect())
    }

    /// The dossiers with an open finding of each rule (the rules with none are absent).
    ///
    /// # Errors
    /// Database failures.
    pub async fn open_findings_by_rule(
        &self,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, count(*) AS n FROM findings WHERE resolved_at IS NULL GROUP BY rule",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = std::collections::BTreeMap::new();
        for r in rows {
            out.insert(r.try_get("rule")?, r.try_get("n")?);
        }
        Ok(out)
    }

    /// Every stored report, by dossier number.
    ///
    /// # Errors
    /// Database failures.
    pub async fn stored_checks(&self) -> Result<Vec<StoredCheck>, StoreError> {
        let rows = sqlx::query(
            "SELECT dossier, demarche, verdict, report_text, report_json, checked_at
             FROM checks ORDER BY dossier",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let json: String = r.try_get("report_json")?;
            out.push(StoredCheck {
                dossier: r.try_get("dossier")?,
                demarche: r.try_get("demarche")?,
                verdict: r.try_get("verdict")?,
                report_text: r.try_get("report_text")?,
                report_json: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
                checked_at: r.try_get("checked_at")?,
            });
        }
        Ok(out)
    }

    /// The descriptors of `demarche` as last fetched, and when; `None` when none are cached or
    /// the cache cannot be read by this version (it is then simply fetched again).
    ///
    /// # Errors
    /// Database failures.
    pub async fn descriptors(
        &self,
        demarche: i64,
    ) -> Result<Option<(DemarcheDescriptors, DateTime<Utc>)>, StoreError> {
        let row = sqlx::query(
            "SELECT descriptors, fetched_at FROM demarche_descriptors WHERE demarche = $1",
        )
        .bind(demarche)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let json: String = row.try_get("descriptors")?;
        let at: String = row.try_get("fetched_at")?;
        Ok(serde_json::from_str(&json)
            .ok()
            .zip(parse_ts("demarche_descriptors.fetched_at", &at).ok()))
    }

    /// Caches the descriptors of `demarche`, fetched at `now`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn save_descriptors(
        &self,
        demarche: i64,
        descriptors: &DemarcheDescriptors,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO demarche_descriptors (demarche, descriptors, fetched_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (demarche) DO UPDATE SET descriptors = excluded.descriptors,
                                                  fetched_at = excluded.fetched_at",
        )
        .bind(demarche)
        .bind(serde_json::to_string(descriptors).unwrap_or_default())
        .bind(format_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
