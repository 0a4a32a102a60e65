//! One cycle of the daemon: sync → pre-check → write back → milestones → alerts.
//!
//! [`Services`] holds what every stage needs (settings, DS client, store, clock, reference
//! data); [`run_once`] runs the stages in order and records the cycle in the store, so that
//! `essbot status` can tell when the daemon last ran and how it went. A stage that fails for one
//! démarche does not stop the others: the cycle ends `partial` and says which and why.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::clock::Clock;
use crate::config::{Problem, Settings};
use crate::ds::DsClient;
use crate::ds::model::DemarcheDescriptors;
use crate::precheck;
use crate::rules::{self, ReferenceData, ResolvedMapping};
use crate::store::{CycleOutcome, Store, StoreError};
use crate::sync;

/// Why a cycle could not run at all (a démarche's own failure only makes it `partial`).
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Precheck(#[from] precheck::PrecheckError),
    #[error("cannot create the DS client: {0}")]
    Client(#[from] crate::ds::ApiError),
    #[error("reference data: {0}")]
    Reference(#[from] rules::ReferenceError),
    #[error(transparent)]
    Writeback(#[from] crate::writeback::WritebackError),
}

/// What every stage of a cycle works with.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub client: DsClient,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub reference: Arc<ReferenceData>,
}

impl Services {
    /// Opens the store (applying migrations), loads the reference data and builds the DS client.
    ///
    /// # Errors
    /// A store, reference-data or client failure (no token, for instance).
    pub async fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, CycleError> {
        let store = Store::connect(&settings.database).await?;
        Self::with_store(settings, store, clock)
    }

    /// As [`Services::open`], on a store already open.
    ///
    /// # Errors
    /// A reference-data or client failure.
    pub fn with_store(
        settings: Settings,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CycleError> {
        let reference = ReferenceData::load(&settings.reference)?;
        let client = DsClient::new(&settings.ds)?;
        Ok(Self {
            settings: Arc::new(settings),
            client,
            store,
            clock,
            reference: Arc::new(reference),
        })
    }
}

/// Each watched démarche's mapping, resolved against its descriptors, or why it could not be.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    pub resolved: BTreeMap<i64, ResolvedMapping>,
    /// Démarche → configuration problems (for operators): that démarche is synced but neither
    /// checked nor written to until the configuration is fixed.
    pub errors: BTreeMap<i64, Vec<String>>,
    /// Démarche → why its descriptors could not be read from DS (and none were cached): not a
    /// configuration error, the next cycle tries again.
    pub unavailable: BTreeMap<i64, Unavailable>,
}

/// Why a démarche's descriptors could not be read from DS.
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// In French, for the cycle's report and `essbot status`.
    pub staff: String,
    /// In English, for the logs and the command line.
    pub operator: String,
    /// The token itself was refused (expired, revoked, invalid): no démarche can be read.
    pub token_refused: bool,
}

/// Resolves every démarche's mapping, from the cached descriptors when they are fresh enough
/// (younger than the full-reconciliation period) or `refresh` is false, else from DS.
///
/// # Errors
/// A store failure. DS failures are per démarche, in [`Mappings::errors`].
pub async fn mappings(services: &Services, refresh: bool) -> Result<Mappings, CycleError> {
    let mut out = Mappings::default();
    let now = services.clock.now();
    for (index, demarche) in services.settings.demarches.iter().enumerate() {
        let cached = cached_descriptors(&services.store, demarche.number).await?;
        let fresh = cached.as_ref().is_some_and(|(_, at)| {
            !refresh
                && now.signed_duration_since(*at).to_std().unwrap_or_default()
                    < services.settings.schedule.full_sync_every
        });
        let descriptors = match cached {
            Some((d, _)) if fresh => d,
            _ => match services.client.demarche_descriptors(demarche.number).await {
                Ok(d) => {
                    save_descriptors(&services.store, demarche.number, &d, now).await?;
                    d
                }
                Err(e) => {
                    out.unavailable.insert(
                        demarche.number,
                        Unavailable {
                            staff: format!("champs de la démarche illisibles sur DS : {e}"),
                            operator: e.operator_text(),
                            token_refused: e.is_token_problem()
                                && !matches!(e, crate::ds::ApiError::NoAccess { .. }),
                        },
                    );
                    continue;
                }
            },
        };
        match demarche.resolve(&descriptors) {
            Ok(m) => {
                out.resolved.insert(demarche.number, m);
            }
            Err(e) => {
                out.errors.insert(
                    demarche.number,
                    Problem::from_mapping(index, &e)
                        .into_iter()
                        .map(|p| p.to_string())
                        .collect(),
                );
            }
        }
    }
    Ok(out)
}

async fn cached_descriptors(
    store: &Store,
    demarche: i64,
) -> Result<Option<(DemarcheDescriptors, DateTime<Utc>)>, CycleError> {
    // A cache this version cannot read is simply fetched again.
    Ok(store.descriptors(demarche).await?)
}

async fn save_descriptors(
    store: &Store,
    demarche: i64,
    descriptors: &DemarcheDescriptors,
    now: DateTime<Utc>,
) -> Result<(), CycleError> {
    Ok(store.save_descriptors(demarche, descriptors, now).await?)
}

/// What one cycle did, stored as the cycle's summary and printed by `run --once` and `demo`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleReport {
    pub cycle: i64,
    pub outcome: String,
    /// Per démarche: what went wrong (sync, configuration, write-back), in plain words.
    pub errors: BTreeMap<i64, Vec<String>>,
    pub synced: u64,
    pub requests: u64,
    pub checked: usize,
    pub unchanged: usize,
    pub unreadable: Vec<i64>,
    pub findings_by_rule: BTreeMap<String, u64>,
    /// Mutations sent to DS by the write-back, and writes still waiting.
    pub mutations: u64,
    pub outbox_pending: i64,
    /// The write-back's per-dossier outcomes worth reporting (written, refused, dry-run diffs).
    pub writes: Vec<crate::writeback::DossierOutcome>,
    /// Milestones: events appended, overdue milestones, alerts enqueued and delivered.
    pub events_appended: usize,
    pub overdue: usize,
    pub alerts_enqueued: u64,
    pub alerts_sent: u64,
    pub alerts_failed: u64,
}

/// Runs one cycle. Cancellation is honoured between stages and, inside them, between dossiers.
///
/// # Errors
/// Only when the cycle cannot run or be recorded at all; a démarche's failure is in the
/// report (outcome `partial`).
pub async fn run_once(
    services: &Services,
    cancel: &CancellationToken,
) -> Result<CycleReport, CycleError> {
    let store = &services.store;
    let started = services.clock.now();
    let id = store.begin_cycle(started).await?;
    let span = info_span!("cycle", cycle = id);
    let result = stages(services, cancel, id).instrument(span).await;
    let now = services.clock.now();
    match result {
        Ok(mut report) => {
            let outcome = if cancel.is_cancelled() {
                CycleOutcome::Interrupted
            } else if report.errors.is_empty() {
                CycleOutcome::Ok
            } else {
                CycleOutcome::Partial
            };
            report.outcome = outcome.as_str().to_owned();
            let summary = serde_json::to_value(&report).ok();
            let error = (!report.errors.is_empty()).then(|| summarize_errors(&report.errors));
            store
                .finish_cycle(id, now, outcome, error.as_deref(), summary.as_ref())
                .await?;
            info!(
                cycle = id,
                outcome = outcome.as_str(),
                checked = report.checked,
                "cycle finished"
            );
            Ok(report)
        }
        Err(e) => {
            // With its causes: "the database failed" alone would not tell the operator why.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                source = cause.source();
            }
            if let Err(store_err) = store
                .finish_cycle(id, now, CycleOutcome::Failed, Some(&message), None)
                .await
            {
                warn!(error = %store_err, "could not record the failed cycle");
            }
            Err(e)
        }
    }
}

fn summarize_errors(errors: &BTreeMap<i64, Vec<String>>) -> String {
    errors
        .iter()
        .map(|(d, list)| format!("démarche {d}: {}", list.join("; ")))
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn stages(
    services: &Services,
    cancel: &CancellationToken,
    id: i64,
) -> Result<CycleReport, CycleError> {
    let settings = &services.settings;
    let mut report = CycleReport {
        cycle: id,
        ..Default::default()
    };

    // 1. Sync.
    let results = sync::sync_all(
        &services.client,
        &services.store,
        &settings.demarches,
        services.clock.as_ref(),
        settings.schedule.full_sync_every,
    )
    .await;
    let mut full_pass = false;
    for (demarche, result) in settings.demarches.iter().zip(results) {
        match result {
            Ok(r) => {
                report.synced += r.fetched;
                report.requests += r.requests;
                full_pass |= r.pass == crate::store::PassKind::Full;
            }
            Err(e) => {
                report
                    .errors
                    .entry(demarche.number)
                    .or_default()
                    .push(format!("synchronisation : {}", sync_staff_text(&e)));
            }
        }
    }
    if cancel.is_cancelled() {
        return Ok(report);
    }

    // 2. Mappings (descriptors re-read at each full reconciliation), then the pre-check.
    let mappings = mappings(services, full_pass).await?;
    for (demarche, problems) in &mappings.errors {
        for p in problems {
            warn!(demarche, problem = %p, "mapping problem: démarche synced but neither checked nor written to");
        }
        report.errors.entry(*demarche).or_default().push(format!(
            "configuration : les champs configurés ne correspondent plus à la démarche ({} ; détail : essbot config check --remote)",
            crate::rules::text::count(problems.len(), "problème", "problèmes")
        ));
    }
    for (demarche, why) in &mappings.unavailable {
        report
            .errors
            .entry(*demarche)
            .or_default()
            .push(why.staff.clone());
    }
    let now = services.clock.now();
    let pre = precheck::run(
        &services.store,
        settings,
        &services.reference,
        &mappings.resolved,
        precheck::paris_today(now),
        now,
    )
    .await?;
    report.checked = pre.checked.len();
    report.unchanged = pre.unchanged;
    report.unreadable = pre.unreadable.iter().map(|(n, _)| *n).collect();
    report.findings_by_rule = pre.findings_by_rule;
    if cancel.is_cancelled() {
        return Ok(report);
    }

    // 3. Milestones and alerts: they read the store, and give the write-back its deadlines.
    let next_deadlines = match crate::ledger::run(services, &mappings).await {
        Ok(l) => {
            report.events_appended = l.appended;
            report.overdue = l.overdue;
            report.alerts_enqueued = l.enqueued;
            if let Some(d) = &l.delivery {
                report.alerts_sent = d.sent;
                report.alerts_failed = d.failed;
            }
            for w in &l.warnings {
                warn!(warning = %w, "milestones");
            }
            l.next_deadlines
        }
        Err(e) => {
            // The ledger's failure must not keep the pre-check's results from DS: the
            // write-back goes on without deadlines, and the cycle is partial.
            warn!(error = %e, "milestones stage failed");
            report.errors.entry(0).or_default().push(e.to_string());
            BTreeMap::new()
        }
    };
    if cancel.is_cancelled() {
        return Ok(report);
    }

    // 4. Write-back.
    let wb = crate::writeback::run(services, &mappings, &next_deadlines, cancel).await?;
    report.mutations = wb.mutations;
    for (demarche, errors) in wb.errors {
        report.errors.entry(demarche).or_default().extend(errors);
    }
    report.writes = wb.dossiers;
    report.outbox_pending = crate::writeback::pending_count(&services.store).await?;
    Ok(report)
}

/// A cycle's outcome (`ok`, `partial`...) as staff read it.
pub fn outcome_fr(outcome: &str) -> &str {
    match outcome {
        "ok" => "réussi",
        "partial" => "partiel",
        "failed" => "en échec",
        "interrupted" => "interrompu",
        "running" => "en cours",
        other => other,
    }
}

/// A sync failure in the words of the cycle's report, which is already per démarche.
fn sync_staff_text(e: &sync::SyncError) -> String {
    match e {
        sync::SyncError::Api { source, .. } => source.to_string(),
        sync::SyncError::Protocol { message, .. } => {
            format!("réponse incohérente de DS : {message}")
        }
        sync::SyncError::Reader { message, .. } => {
            format!("la lecture des pages s'est interrompue : {message}")
        }
        sync::SyncError::Store { source, .. } => format!("base de données : {source}"),
    }
}

/// Timestamp of the last cycle that finished, for the daemon's "run at once at start" rule.
///
/// # Errors
/// A store failure.
pub async fn last_finished(store: &Store) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(store.last_cycle().await?.and_then(|c| c.finished_at))
}
