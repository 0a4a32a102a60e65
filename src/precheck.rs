//! The pre-check stage of a cycle: runs the rulebook over the stored dossiers that need it and
//! records each report and its findings.
//!
//! A dossier is checked again only when something its report depends on changed: its content or
//! state (the sync requests a check), or the rulebook version, the rules configuration, the
//! mapping, the reference data or the other known projects (folded into a check key compared with
//! the stored one). An unchanged dossier is not re-evaluated, so its report — byte-identical for
//! the same input — never causes a new annotation.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Paris;
use sha2::{Digest, Sha256};
use tracing::{debug, info_span, warn};

use crate::config::{DemarcheKind, Settings};
use crate::ds::decode_dossier_text;
use crate::ds::model::Dossier;
use crate::rules::{
    self, KnownProject, KnownProjects, ReferenceData, Report, ResolvedMapping, RuleContext,
    Severity, Verdict,
};
use crate::store::{DossierStatus, NewCheck, NewFinding, Store, StoreError};

/// Why the pre-check stage stopped.
#[derive(Debug, thiserror::Error)]
pub enum PrecheckError {
    #[error("pre-check: store failure")]
    Store(#[from] StoreError),
}

/// What the stage did, for the cycle report and `essbot status`.
#[derive(Debug, Default, Clone)]
pub struct PrecheckReport {
    /// Dossiers evaluated this cycle, with their verdict.
    pub checked: Vec<(i64, Verdict)>,
    /// Dossiers whose stored report was still valid.
    pub unchanged: usize,
    /// Stored dossiers that could not be read back (number, why): recorded by the sync as
    /// decode errors, and not annotated until DS serves them readable again.
    pub unreadable: Vec<(i64, String)>,
    /// Findings counted by rule id, over the reports written this cycle.
    pub findings_by_rule: BTreeMap<String, u64>,
}

/// A stored, readable dossier of a watched démarche.
struct Candidate {
    dossier: Dossier,
    content_hash: String,
    check_requested_at: Option<DateTime<Utc>>,
}

/// Runs the pre-check over every watched démarche that has a resolved mapping.
///
/// `today` is the date in Europe/Paris of the cycle (from the injected clock); `now` stamps
/// the findings.
///
/// # Errors
/// A store failure; the reports committed before it stay.
pub async fn run(
    store: &Store,
    settings: &Settings,
    reference: &ReferenceData,
    mappings: &BTreeMap<i64, ResolvedMapping>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<PrecheckReport, PrecheckError> {
    let mut report = PrecheckReport::default();
    let mut candidates: BTreeMap<i64, Vec<Candidate>> = BTreeMap::new();
    for demarche in &settings.demarches {
        if !mappings.contains_key(&demarche.number) {
            continue;
        }
        let mut list = Vec::new();
        for stored in store.dossiers_of(demarche.number).await? {
            if stored.status != DossierStatus::Listed {
                continue;
            }
            let Some(raw) = stored.raw.as_ref() else {
                continue;
            };
            match decode_dossier_text(raw) {
                Ok(dossier) => list.push(Candidate {
                    dossier,
                    content_hash: stored.content_hash.clone().unwrap_or_default(),
                    check_requested_at: stored.check_requested_at,
                }),
                Err(e) => report.unreadable.push((stored.number, e.to_string())),
            }
        }
        candidates.insert(demarche.number, list);
    }

    let projects = known_projects(settings, reference, mappings, &candidates);
    let ctx = RuleContext {
        reference,
        config: &settings.rules,
        today,
        projets: &projects,
    };
    let context_key = context_key(settings, reference, &projects);
    let stored_keys = store.check_keys().await?;
    let mut batch: Vec<Checked> = Vec::with_capacity(BATCH);

    for (demarche, list) in &candidates {
        let mapping = &mappings[demarche];
        let mapping_key = digest(&[&context_key, &format!("{mapping:?}")]);
        for c in list {
            let key = digest(&[
                &mapping_key,
                &c.content_hash,
                c.dossier.state.as_str(),
                &c.dossier.date_depot.to_rfc3339(),
            ]);
            let number = c.dossier.number;
            if c.check_requested_at.is_none() && stored_keys.get(&number) == Some(&key) {
                report.unchanged += 1;
                continue;
            }
            let r = {
                let _guard = info_span!("check", dossier = number).entered();
                rules::check(&c.dossier, mapping, &ctx)
            };
            for f in &r.findings {
                *report
                    .findings_by_rule
                    .entry(f.rule.as_str().to_owned())
                    .or_default() += 1;
            }
            report.checked.push((number, r.verdict));
            batch.push(Checked {
                demarche: *demarche,
                key,
                report: r,
                requested_at: c.check_requested_at,
            });
            if batch.len() >= BATCH {
                flush(store, &mut batch, now).await?;
            }
        }
    }
    flush(store, &mut batch, now).await?;
    for (number, why) in &report.unreadable {
        warn!(dossier = number, error = %why, "stored dossier unreadable: not checked");
    }
    Ok(report)
}

/// The lettres d'intention of every watched LI démarche, as the overlap and link rules see them.
fn known_projects(
    settings: &Settings,
    reference: &ReferenceData,
    mappings: &BTreeMap<i64, ResolvedMapping>,
    candidates: &BTreeMap<i64, Vec<Candidate>>,
) -> KnownProjects {
    let mut projects = Vec::new();
    for demarche in &settings.demarches {
        if demarche.kind != DemarcheKind::LettreIntention {
            continue;
        }
        let (Some(mapping), Some(list)) = (
            mappings.get(&demarche.number),
            candidates.get(&demarche.number),
        ) else {
            continue;
        };
        for c in list {
            let li = rules::extract_lettre(&c.dossier, mapping);
            projects.push(KnownProject::from_lettre(&li, c.dossier.state, reference));
        }
    }
    KnownProjects::new(projects)
}

/// What every report of this cycle depends on besides the dossier itself.
fn context_key(settings: &Settings, reference: &ReferenceData, projects: &KnownProjects) -> String {
    let projects: Vec<&KnownProject> = projects.iter().collect();
    digest(&[
        rules::RULEBOOK_VERSION,
        &format!("{:?}", settings.rules),
        &format!("{reference:?}"),
        &format!("{projects:?}"),
    ])
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// Reports saved per transaction: one transaction per dossier would make a first check of
/// thousands of dossiers wait on thousands of commits.
const BATCH: usize = 256;

/// A report waiting to be saved.
struct Checked {
    demarche: i64,
    key: String,
    report: Report,
    requested_at: Option<DateTime<Utc>>,
}

/// Saves the batch in one transaction, with the check requests it answers.
async fn flush(
    store: &Store,
    batch: &mut Vec<Checked>,
    now: DateTime<Utc>,
) -> Result<(), PrecheckError> {
    if batch.is_empty() {
        return Ok(());
    }
    let checks: Vec<NewCheck> = batch
        .drain(..)
        .map(|c| save(c.demarche, &c.key, &c.report, c.requested_at))
        .collect();
    for dossier in store.save_checks(&checks, now).await? {
        debug!(
            dossier,
            "changed again while being checked: checked again next cycle"
        );
    }
    Ok(())
}

/// One report and its findings (one row per rule, with the most severe severity), as the
/// store saves them.
fn save(
    demarche: i64,
    key: &str,
    report: &Report,
    requested_at: Option<DateTime<Utc>>,
) -> NewCheck {
    let mut by_rule: BTreeMap<&str, (Severity, Vec<serde_json::Value>)> = BTreeMap::new();
    for f in &report.findings {
        let entry = by_rule
            .entry(f.rule.as_str())
            .or_insert((f.severity, Vec::new()));
        entry.0 = entry.0.min(f.severity);
        entry
            .1
            .push(serde_json::to_value(f).unwrap_or(serde_json::Value::Null));
    }
    NewCheck {
        dossier: report.dossier,
        demarche,
        key: key.to_owned(),
        verdict: verdict_str(report.verdict),
        report_text: report.text(),
        report_json: report.to_json().to_string(),
        fingerprint: report.fingerprint(),
        rulebook: report.rulebook_version.to_owned(),
        findings: by_rule
            .into_iter()
            .map(|(rule, (severity, details))| NewFinding {
                rule: rule.to_owned(),
                severity: severity_str(severity),
                details: serde_json::Value::Array(details).to_string(),
            })
            .collect(),
        requested_at,
    }
}

/// The store's spelling of a verdict.
pub fn verdict_str(v: Verdict) -> &'static str {
    v.as_str()
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Bloquant => "bloquant",
        Severity::Derogation => "derogation",
        Severity::AVerifier => "a_verifier",
        Severity::Avertissement => "avertissement",
        Severity::Info => "info",
    }
}

pub use crate::store::StoredCheck;

/// Every stored report, by dossier number.
///
/// # Errors
/// Database failures.
pub async fn stored_checks(store: &Store) -> Result<Vec<StoredCheck>, PrecheckError> {
    Ok(store.stored_checks().await?)
}

/// Today in Europe/Paris: every ESS date is a Paris date.
pub fn paris_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Paris).date_naive()
}
