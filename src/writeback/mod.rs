//! The write-back stage: puts each checked dossier's pre-check on DS (private annotations
//! `rapport`, `conforme`, `prochaine_echeance`; one of our three labels; optionally one message
//! to the applicant), exactly once.
//!
//! # How "exactly once" holds
//! - **Diff first.** What a dossier should carry is compared with what it has (the stored
//!   snapshot, or the dossier read back from DS after a crash): nothing changed, no mutation.
//! - **Outbox.** Every intended write is recorded in table `outbox` under a deterministic key
//!   (dossier, target, content hash) *before* it is sent, marked `sending` just before the call,
//!   then `done` or `failed` with DS's answer. The last intent done for a target is trusted
//!   even when the snapshot is stale (labels never bump `dateDerniereModification`, so the sync
//!   does not fetch a dossier again after a label write), and a message body done once is never
//!   sent again.
//! - **Crash recovery.** A row found `sending` means the process stopped between the call and
//!   the recording of its answer: the dossier is read back from DS, and what is already there
//!   (the annotation value, the label, the message body among its messages) is marked done
//!   without being sent again.
//! - **Refusals are data.** DS reports a read-only token, an instructeur without rights or a
//!   refused value in the payload's `errors`: the row becomes `failed` with the message, the
//!   stage reports it, and it is not sent again until the intent changes (a new report, a new
//!   verdict) or [`Options::retry_failed_after`] has passed (one day by default: long enough not
//!   to hammer DS with a request it refuses, short enough that a token fixed by an administrator
//!   is picked up without anyone touching essbot). Transport failures leave the row pending
//!   for the next cycle (or `sending`, read back first, when DS may have executed the call).
//!
//! # Our writes and the sync
//! Annotation writes bump the dossier's `dateDerniereModification`, so the next incremental sync
//! fetches it again; but the sync asks for a new check only when the applicant's content hash or
//! the state changes, and the pre-check's key ignores annotations, labels and messages. The
//! refreshed snapshot then shows our values, and the diff finds nothing to write: no
//! recheck → rewrite loop.
//!
//! # Staff edits
//! When an instructeur overwrites one of our annotations, essbot does not fight back: the last
//! intent for that target is done, so it is written again only when the report itself changes.

mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{DemarcheSettings, WriteMode};
use crate::cycle::{Mappings, Services};
use crate::ds::model::{DemarcheDescriptors, Dossier};
use crate::ds::{ApiError, MutationOutcome, decode_dossier_text};
use crate::precheck::{self, PrecheckError, StoredCheck};
use crate::rules::{ResolvedMapping, Verdict};
use crate::store::{DossierStatus, StoreError};

pub use crate::store::OutboxStatus;
pub use plan::ManagedLabels;

use crate::store::OutboxRow;
use plan::{CheckInput, Intent, Payload, PlanOptions};

/// Why the stage stopped (a dossier's or a démarche's own failure is in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum WritebackError {
    #[error("write-back: store failure")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Precheck(#[from] PrecheckError),
}

/// Tuning of the stage; [`Options::default`] is what [`run`] uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a write DS refused waits before being tried again with the same content (a
    /// changed content is tried at once).
    pub retry_failed_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retry_failed_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// A write that did not go through, for the cycle report and `essbot status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetFailure {
    /// `annotation:rapport`, `label:Pré-contrôle : conforme`, `message`.
    pub target: String,
    /// DS's refusal or the failure, in French, without the token.
    pub error: String,
}

/// What the stage did to one dossier (dossiers left as they were are only counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DossierOutcome {
    /// DS dossier number.
    pub dossier: i64,
    /// Its démarche, so that `status` can group failures as the configuration does.
    pub demarche: i64,
    /// Targets written this cycle.
    pub written: Vec<String>,
    /// Targets found `sending` after a crash and already applied on DS: marked done, not sent.
    pub recovered: Vec<String>,
    /// Targets DS refused this cycle.
    pub failed: Vec<TargetFailure>,
    /// Targets refused earlier and not tried again yet (same content, retry delay not over).
    pub held: Vec<TargetFailure>,
    /// Why the dossier's writes were put off to the next cycle (transport failure).
    pub deferred: Option<String>,
    /// `dry-run`: what would be written, as `- old` / `+ new` lines.
    pub diff: Option<String>,
}

impl DossierOutcome {
    fn is_empty(&self) -> bool {
        self.written.is_empty()
            && self.recovered.is_empty()
            && self.failed.is_empty()
            && self.held.is_empty()
            && self.deferred.is_none()
            && self.diff.is_none()
    }
}

/// What the stage did, for the cycle report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WritebackReport {
    /// Dossiers with something to say, by démarche then number.
    pub dossiers: Vec<DossierOutcome>,
    /// Dossiers that already carried everything.
    pub unchanged: usize,
    /// Mutations sent to DS.
    pub mutations: u64,
    /// Per démarche: configuration problems, refusals and failures of this cycle, in plain
    /// words (for `CycleReport::errors`).
    pub errors: BTreeMap<i64, Vec<String>>,
}

/// A write DS refused and that no newer intent replaced, for `essbot status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// DS dossier number.
    pub dossier: i64,
    /// Its démarche.
    pub demarche: i64,
    /// `annotation:rapport`, `label:Pré-contrôle : conforme`, `message`.
    pub target: String,
    /// DS's refusal, in French, as staff can act on it.
    pub error: String,
    /// Calls made for this content so far.
    pub attempts: i64,
    /// When it was last tried.
    pub at: DateTime<Utc>,
}

/// Writes not settled yet (pending, or sent without a recorded answer), for `essbot status`.
///
/// # Errors
/// A database failure.
pub async fn pending_count(store: &crate::store::Store) -> Result<i64, WritebackError> {
    Ok(store.outbox_open_count().await?)
}

/// Writes DS refused, still current, for `essbot status`.
///
/// # Errors
/// A database failure.
pub async fn failures(store: &crate::store::Store) -> Result<Vec<Failure>, WritebackError> {
    Ok(store
        .outbox_failed()
        .await?
        .into_iter()
        .map(|r| Failure {
            dossier: r.dossier,
            demarche: r.demarche,
            target: r.target,
            error: r.last_error.unwrap_or_default(),
            attempts: r.attempts,
            at: r.updated_at,
        })
        .collect())
}

/// Checks, per démarche that writes back, what the mapping resolution does not: that each
/// configured annotation has a type essbot can write its value into, and (with
/// `write_back.labels`) that the démarche has our three labels. Call it after
/// [`crate::cycle::mappings`]; [`run`] runs the same check and skips what it refuses.
///
/// Returns démarche → problems (empty when all is well).
///
/// # Errors
/// A database failure reading the cached descriptors.
pub async fn check_config(
    services: &Services,
    mappings: &Mappings,
) -> Result<BTreeMap<i64, Vec<String>>, WritebackError> {
    let mut out = BTreeMap::new();
    for demarche in &services.settings.demarches {
        let Some(mapping) = mappings.resolved.get(&demarche.number) else {
            continue;
        };
        if demarche.write_back.mode == WriteMode::Off {
            continue;
        }
        let config = demarche_config(services, demarche, mapping).await?;
        if !config.problems.is_empty() {
            out.insert(demarche.number, config.problems);
        }
    }
    Ok(out)
}

/// What one démarche's write-back works with.
struct DemarcheConfig {
    /// `None` when labels are off or one of ours is missing.
    labels: Option<ManagedLabels>,
    /// The annotations cannot be written at all: the démarche is skipped.
    fatal: bool,
    /// In English, for the logs and `check_config`.
    problems: Vec<String>,
    /// The same, in French, for the cycle's report and `essbot status`.
    staff: Vec<String>,
}

async fn demarche_config(
    services: &Services,
    demarche: &DemarcheSettings,
    mapping: &ResolvedMapping,
) -> Result<DemarcheConfig, WritebackError> {
    let mut problems = plan::annotation_problems(mapping);
    let fatal = !problems.is_empty();
    let mut staff = Vec::new();
    if fatal {
        staff.push(format!(
            "annotations non écrites : leur configuration est à revoir ({} ; détail : essbot config check --remote)",
            crate::rules::text::count(problems.len(), "problème", "problèmes")
        ));
    }
    let mut labels = None;
    if demarche.write_back.labels {
        match descriptors(services, demarche.number).await? {
            Ok(d) => {
                let (found, missing) = ManagedLabels::find(&demarche.write_back.label_names, &d);
                if missing.is_empty() {
                    labels = Some(found);
                } else {
                    for name in missing {
                        problems.push(format!(
                            "write_back.labels: label \"{name}\" does not exist on démarche {}: create it in DS or set write_back.labels = false",
                            demarche.number
                        ));
                        staff.push(format!(
                            "labels non posés : le label « {name} » n'existe pas sur la démarche (le créer dans DS, ou mettre write_back.labels = false)"
                        ));
                    }
                }
            }
            Err(e) => {
                problems.push(format!(
                    "write_back.labels: cannot read the démarche's labels from DS: {}",
                    e.operator_text()
                ));
                staff.push(format!(
                    "labels non posés : labels de la démarche illisibles sur DS : {e}"
                ));
            }
        }
    }
    Ok(DemarcheConfig {
        labels,
        fatal,
        problems,
        staff,
    })
}

/// The démarche's descriptors as the cycle cached them, or from DS when not cached yet.
async fn descriptors(
    services: &Services,
    demarche: i64,
) -> Result<Result<DemarcheDescriptors, ApiError>, WritebackError> {
    if let Some((d, _)) = services.store.descriptors(demarche).await? {
        return Ok(Ok(d));
    }
    Ok(services.client.demarche_descriptors(demarche).await)
}

/// Runs the stage with [`Options::default`]: for every watched démarche with a resolved
/// mapping and `write_back.mode` other than `off`, every dossier with a stored report.
///
/// `next_deadlines` (dossier → date) feeds the `prochaine_echeance` annotation; a dossier absent
/// from it keeps whatever that annotation holds.
///
/// Cancel safety: `cancel` is looked at only between dossiers, never between a call to DS and
/// the recording of its answer.
///
/// # Errors
/// A store failure; what DS refuses or fails is in the report.
pub async fn run(
    services: &Services,
    mappings: &Mappings,
    next_deadlines: &BTreeMap<i64, NaiveDate>,
    cancel: &CancellationToken,
) -> Result<WritebackReport, WritebackError> {
    run_with(
        services,
        mappings,
        next_deadlines,
        &Options::default(),
        cancel,
    )
    .await
}

/// As [`run`], with explicit [`Options`].
///
/// # Errors
/// As [`run`].
pub async fn run_with(
    services: &Services,
    mappings: &Mappings,
    next_deadlines: &BTreeMap<i64, NaiveDate>,
    options: &Options,
    cancel: &CancellationToken,
) -> Result<WritebackReport, WritebackError> {
    let mut report = WritebackReport::default();
    // A read-only token refuses every write of every démarche: once DS said so, nothing is
    // sent until the retry delay has passed (an administrator may have changed the token).
    if let Some(since) = read_only_since(services, options).await?
        && let Some(first) = writing_demarches(services, mappings).next()
    {
        let until =
            since + chrono::Duration::from_std(options.retry_failed_after).unwrap_or_default();
        info!(
            refused_at = %since,
            retry_after = %until,
            "write-back suspended: DS said the token is read-only"
        );
        report.errors.entry(first).or_default().push(format!(
            "écritures vers DS suspendues : le jeton DS est en lecture seule (refus du {}) ; nouvel essai à partir du {}",
            crate::milestones::format_date_fr(paris_date(since)),
            crate::milestones::format_date_fr(paris_date(until))
        ));
        return Ok(report);
    }
    let mut checks: BTreeMap<i64, Vec<StoredCheck>> = BTreeMap::new();
    for c in precheck::stored_checks(&services.store).await? {
        checks.entry(c.demarche).or_default().push(c);
    }
    'demarches: for demarche in &services.settings.demarches {
        let Some(mapping) = mappings.resolved.get(&demarche.number) else {
            continue;
        };
        let mode = demarche.write_back.mode;
        if mode == WriteMode::Off {
            continue;
        }
        let config = demarche_config(services, demarche, mapping).await?;
        if !config.problems.is_empty() {
            for p in &config.problems {
                warn!(demarche = demarche.number, problem = %p, "write-back configuration");
            }
            report
                .errors
                .entry(demarche.number)
                .or_default()
                .extend(config.staff.iter().cloned());
        }
        if config.fatal {
            continue;
        }
        let ctx = Ctx {
            services,
            demarche,
            mapping,
            labels: config.labels.as_ref(),
            options,
            dry_run: mode == WriteMode::DryRun,
        };
        for check in checks.get(&demarche.number).into_iter().flatten() {
            if cancel.is_cancelled() {
                break 'demarches;
            }
            let span = info_span!(
                "writeback",
                demarche = demarche.number,
                dossier = check.dossier
            );
            let deadline = next_deadlines.get(&check.dossier).copied();
            let (outcome, flow) = ctx.dossier(check, deadline).instrument(span).await?;
            report.mutations += outcome.mutations;
            let o = outcome.outcome;
            let errors = report.errors.entry(demarche.number).or_default();
            if flow == Flow::StopAll {
                // Said once for the whole stage, not once per refused target.
                warn!(
                    demarche = demarche.number,
                    dossier = o.dossier,
                    "DS refused a write because the token is read-only: no other write is sent this cycle"
                );
                errors.push(format!(
                    "écritures vers DS arrêtées : le jeton DS est en lecture seule (« {} », dossier {}) ; aucune autre écriture tentée avant le prochain essai",
                    o.failed.first().map(|f| f.error.as_str()).unwrap_or_default(),
                    o.dossier
                ));
            } else {
                for f in &o.failed {
                    errors.push(format!(
                        "dossier {} : {} refusée par DS : {}",
                        o.dossier,
                        target_fr(&f.target),
                        f.error
                    ));
                }
            }
            if let Some(why) = &o.deferred {
                errors.push(format!(
                    "dossier {} : écritures reportées au prochain cycle : {why}",
                    o.dossier
                ));
            }
            if errors.is_empty() {
                report.errors.remove(&demarche.number);
            }
            if o.is_empty() {
                report.unchanged += 1;
            } else {
                report.dossiers.push(o);
            }
            match flow {
                Flow::Continue => {}
                // DS is unreachable or the token is refused: the other dossiers would fail the
                // same way; their writes stay pending for the next cycle.
                Flow::StopDemarche => break,
                // A read-only token: every other write, of every démarche, would be refused.
                Flow::StopAll => break 'demarches,
            }
        }
    }
    info!(
        mutations = report.mutations,
        changed = report.dossiers.len(),
        unchanged = report.unchanged,
        "write-back done"
    );
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    StopDemarche,
    /// DS refused a write because the token is read-only.
    StopAll,
}

/// DS's refusal of any mutation made with a read-only token ("Le jeton utilisé est configuré
/// seulement en lecture", `base_mutation.rb#ready?`).
fn is_read_only_refusal(error: &str) -> bool {
    error.contains("seulement en lecture")
}

/// When DS last refused a write because the token is read-only, if that is more recent than
/// the retry delay: the write-back is suspended until then.
async fn read_only_since(
    services: &Services,
    options: &Options,
) -> Result<Option<DateTime<Utc>>, WritebackError> {
    let now = services.clock.now();
    Ok(services
        .store
        .outbox_failed()
        .await?
        .into_iter()
        .filter(|r| r.last_error.as_deref().is_some_and(is_read_only_refusal))
        .map(|r| r.updated_at)
        .max()
        .filter(|at| {
            now.signed_duration_since(*at).to_std().unwrap_or_default() < options.retry_failed_after
        }))
}

/// The démarches the stage writes to, in configuration order.
fn writing_demarches<'a>(
    services: &'a Services,
    mappings: &'a Mappings,
) -> impl Iterator<Item = i64> + 'a {
    services
        .settings
        .demarches
        .iter()
        .filter(|d| {
            d.write_back.mode != WriteMode::Off && mappings.resolved.contains_key(&d.number)
        })
        .map(|d| d.number)
}

fn paris_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&chrono_tz::Europe::Paris).date_naive()
}

/// A target as staff read it: `annotation « rapport »`, `label « Pré-contrôle : conforme »`.
fn target_fr(target: &str) -> String {
    match target.split_once(':') {
        Some(("annotation", name)) => format!("annotation « {name} »"),
        Some(("label", name)) => format!("label « {name} »"),
        _ if target == "message" => "message à l'usager".to_owned(),
        _ => target.to_owned(),
    }
}

struct Step {
    outcome: DossierOutcome,
    mutations: u64,
}

struct Ctx<'a> {
    services: &'a Services,
    demarche: &'a DemarcheSettings,
    mapping: &'a ResolvedMapping,
    labels: Option<&'a ManagedLabels>,
    options: &'a Options,
    dry_run: bool,
}

/// How a call that failed leaves its rows.
enum CallError {
    /// DS may have executed it: read the dossier back before sending again.
    Unsure(String),
    /// DS certainly did not execute it: send again next cycle.
    NotSent(String),
    /// DS cannot take it (a bug on our side or a value it rejects outright): failed.
    Refused(String),
}

fn classify(e: &ApiError) -> (CallError, Flow) {
    let text = e.to_string();
    if e.is_token_problem() || e.is_retryable_once_only() {
        (CallError::NotSent(text), Flow::StopDemarche)
    } else if e.is_retryable() {
        (CallError::Unsure(text), Flow::StopDemarche)
    } else {
        (CallError::Refused(text), Flow::Continue)
    }
}

impl Ctx<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.services.clock.now()
    }

    async fn dossier(
        &self,
        check: &StoredCheck,
        deadline: Option<NaiveDate>,
    ) -> Result<(Step, Flow), WritebackError> {
        let store = &self.services.store;
        let number = check.dossier;
        let mut step = Step {
            outcome: DossierOutcome {
                dossier: number,
                demarche: self.demarche.number,
                ..Default::default()
            },
            mutations: 0,
        };
        let Some(verdict) = Verdict::parse(&check.verdict) else {
            warn!(verdict = %check.verdict, "stored verdict unreadable: not written");
            return Ok((step, Flow::Continue));
        };
        let Some(stored) = store.dossier(number).await? else {
            return Ok((step, Flow::Continue));
        };
        if stored.status != DossierStatus::Listed {
            return Ok((step, Flow::Continue));
        }
        let Some(mut current) = stored
            .raw
            .as_deref()
            .and_then(|raw| decode_dossier_text(raw).ok())
        else {
            debug!("stored dossier unreadable: not written");
            return Ok((step, Flow::Continue));
        };

        // A crash between a call and the recording of its answer: read the dossier back first.
        let mut fresh = false;
        if !self.dry_run {
            let sending = store.outbox_sending(number).await?;
            if !sending.is_empty() {
                match self.services.client.dossier(number).await {
                    Ok(fetched) => match fetched.parsed {
                        Ok(d) => {
                            self.recover(&sending, &d, &mut step.outcome).await?;
                            current = d;
                            fresh = true;
                        }
                        Err(e) => {
                            step.outcome.deferred =
                                Some(format!("relecture du dossier impossible : {e}"));
                            return Ok((step, Flow::Continue));
                        }
                    },
                    Err(e) => {
                        let flow = classify(&e).1;
                        step.outcome.deferred = Some(format!("relecture du dossier : {e}"));
                        return Ok((step, flow));
                    }
                }
            }
        }

        let latest = store.outbox_latest(number).await?;
        let mut overlay = BTreeMap::new();
        if !fresh {
            for (target, row) in &latest {
                if row.status != OutboxStatus::Done || !target.starts_with("label:") {
                    continue;
                }
                if let Ok(Payload::Label { name, present, .. }) = serde_json::from_str(&row.payload)
                {
                    overlay.insert(name, present);
                }
            }
        }
        let input = CheckInput {
            verdict,
            report_text: &check.report_text,
            report_json: &check.report_json,
        };
        let plan_options = PlanOptions {
            labels: self.labels,
            message_usager: self.demarche.write_back.message_usager,
            next_deadline: deadline,
            label_overlay: overlay,
        };
        let intents = match plan::intents(&current, &input, self.mapping, &plan_options) {
            Ok(i) => i,
            Err(e) => {
                step.outcome.failed.push(TargetFailure {
                    target: "annotations".into(),
                    error: e,
                });
                return Ok((step, Flow::Continue));
            }
        };

        // Decide, intent by intent, against the outbox.
        let now = self.now();
        let mut to_send: Vec<(i64, Intent)> = Vec::new();
        let mut shown = Vec::new();
        for intent in intents {
            let last = latest.get(&intent.target);
            let same = last.filter(|r| r.content_hash == intent.hash);
            let already_done = intent.applied
                || same.is_some_and(|r| r.status == OutboxStatus::Done)
                || (matches!(intent.payload, Payload::Message { .. })
                    && store
                        .outbox_ever_done(number, &intent.target, &intent.hash)
                        .await?);
            if already_done {
                if !self.dry_run {
                    // Older intents for this target are moot: what it should hold is there.
                    store
                        .outbox_supersede_others(number, &intent.target, &intent.hash, now)
                        .await?;
                    if let Some(row) = same.filter(|r| {
                        matches!(r.status, OutboxStatus::Pending | OutboxStatus::Failed)
                    }) {
                        let answer = serde_json::json!({ "constate": "déjà présent sur DS" });
                        store
                            .outbox_finish(row.id, OutboxStatus::Done, None, &answer, now)
                            .await?;
                    }
                }
                continue;
            }
            if let Some(row) = same.filter(|r| r.status == OutboxStatus::Failed) {
                let due = now
                    .signed_duration_since(row.updated_at)
                    .to_std()
                    .unwrap_or_default()
                    >= self.options.retry_failed_after;
                if !due {
                    step.outcome.held.push(TargetFailure {
                        target: intent.target.clone(),
                        error: row.last_error.clone().unwrap_or_default(),
                    });
                    continue;
                }
            }
            if self.dry_run {
                shown.push(intent);
                continue;
            }
            let payload = serde_json::to_string(&intent.payload).unwrap_or_default();
            let id = store
                .outbox_enqueue(
                    number,
                    self.demarche.number,
                    &intent.target,
                    &intent.hash,
                    &payload,
                    now,
                )
                .await?;
            to_send.push((id, intent));
        }
        if self.dry_run {
            let diff = plan::diff_text(&shown);
            if !diff.is_empty() {
                info!(diff = %diff, "dry-run: would write");
                step.outcome.diff = Some(diff);
            }
            return Ok((step, Flow::Continue));
        }
        let flow = self.send(&current, to_send, &mut step).await?;
        Ok((step, flow))
    }

    /// Settles the rows left `sending`, against the dossier read back from DS.
    async fn recover(
        &self,
        rows: &[OutboxRow],
        dossier: &Dossier,
        outcome: &mut DossierOutcome,
    ) -> Result<(), WritebackError> {
        let store = &self.services.store;
        let now = self.now();
        for row in rows {
            let applied =
                serde_json::from_str::<Payload>(&row.payload).is_ok_and(|p| p.is_applied(dossier));
            if applied {
                info!(target = %row.target, "found applied on reading back: not sent again");
                let answer = serde_json::json!({ "constate": "présent à la relecture" });
                store
                    .outbox_finish(row.id, OutboxStatus::Done, None, &answer, now)
                    .await?;
                outcome.recovered.push(row.target.clone());
            } else {
                let answer = serde_json::json!({ "constate": "absent à la relecture" });
                store
                    .outbox_finish(
                        row.id,
                        OutboxStatus::Pending,
                        row.last_error.as_deref(),
                        &answer,
                        now,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends the annotations in one call, then each label, then the message; stops at the first
    /// transport failure (the rest stays pending).
    async fn send(
        &self,
        dossier: &Dossier,
        to_send: Vec<(i64, Intent)>,
        step: &mut Step,
    ) -> Result<Flow, WritebackError> {
        let client = &self.services.client;
        let (annotations, others): (Vec<_>, Vec<_>) = to_send
            .into_iter()
            .partition(|(_, i)| matches!(i.payload, Payload::Annotation { .. }));
        if !annotations.is_empty() {
            let writes: Vec<_> = annotations
                .iter()
                .filter_map(|(_, i)| i.payload.annotation_write())
                .collect();
            let ids: Vec<i64> = annotations.iter().map(|(id, _)| *id).collect();
            self.services
                .store
                .outbox_mark_sending(&ids, self.now())
                .await?;
            let result = client.modify_annotations(&dossier.id, &writes).await;
            step.mutations += 1;
            let flow = self.record(&annotations, result, step).await?;
            if flow != Flow::Continue {
                return Ok(flow);
            }
        }
        for (id, intent) in others {
            self.services
                .store
                .outbox_mark_sending(&[id], self.now())
                .await?;
            let result = match &intent.payload {
                Payload::Label {
                    id: label, present, ..
                } => {
                    if *present {
                        client.add_label(&dossier.id, label).await
                    } else {
                        client.remove_label(&dossier.id, label).await
                    }
                }
                Payload::Message { body } => client.send_message(&dossier.id, body).await,
                Payload::Annotation { .. } => continue,
            };
            step.mutations += 1;
            let flow = self.record(&[(id, intent)], result, step).await?;
            if flow != Flow::Continue {
                return Ok(flow);
            }
        }
        Ok(Flow::Continue)
    }

    /// Records the answer of one call carrying `rows`.
    async fn record(
        &self,
        rows: &[(i64, Intent)],
        result: Result<MutationOutcome, ApiError>,
        step: &mut Step,
    ) -> Result<Flow, WritebackError> {
        let store = &self.services.store;
        let now = self.now();
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                let operator = e.operator_text();
                let (kind, flow) = classify(&e);
                let (status, why) = match kind {
                    CallError::Unsure(w) => (OutboxStatus::Sending, w),
                    CallError::NotSent(w) => (OutboxStatus::Pending, w),
                    CallError::Refused(w) => (OutboxStatus::Failed, w),
                };
                let answer = serde_json::json!({ "erreur": why });
                for (id, intent) in rows {
                    store
                        .outbox_finish(*id, status, Some(&why), &answer, now)
                        .await?;
                    if status == OutboxStatus::Failed {
                        step.outcome.failed.push(TargetFailure {
                            target: intent.target.clone(),
                            error: why.clone(),
                        });
                    }
                }
                if status != OutboxStatus::Failed {
                    warn!(error = %operator, "write put off to the next cycle");
                    step.outcome.deferred = Some(why);
                }
                return Ok(flow);
            }
        };
        let answer = serde_json::json!({ "errors": outcome.errors });
        let batch_ids: Vec<String> = rows
            .iter()
            .filter_map(|(_, i)| match &i.payload {
                Payload::Annotation { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        let read_only = outcome.errors.iter().any(|e| is_read_only_refusal(e));
        for (id, intent) in rows {
            let errors = errors_for(intent, &outcome, &batch_ids);
            if errors.is_empty() {
                store
                    .outbox_finish(*id, OutboxStatus::Done, None, &answer, now)
                    .await?;
                step.outcome.written.push(intent.target.clone());
            } else {
                let error = errors.join(" ; ");
                if !read_only {
                    warn!(target = %intent.target, refusal = %error, "DS refused the write");
                }
                store
                    .outbox_finish(*id, OutboxStatus::Failed, Some(&error), &answer, now)
                    .await?;
                step.outcome.failed.push(TargetFailure {
                    target: intent.target.clone(),
                    error,
                });
            }
        }
        Ok(if read_only {
            Flow::StopAll
        } else {
            Flow::Continue
        })
    }
}

/// The errors of `outcome` that concern `intent`. DS names the annotation in its per-annotation
/// errors; an error naming none of the call's annotations concerns them all (a read-only
/// token, an instructeur without rights). A label already there, or already gone, is what we
/// wanted.
fn errors_for(intent: &Intent, outcome: &MutationOutcome, batch_ids: &[String]) -> Vec<String> {
    outcome
        .errors
        .iter()
        .filter(|e| match &intent.payload {
            Payload::Label { present: true, .. } => !e.contains("déjà associé"),
            Payload::Label { present: false, .. } => {
                !(e.contains("n’est pas associé") || e.contains("n'est pas associé"))
            }
            Payload::Annotation { id, .. } => {
                e.contains(id.as_str()) || !batch_ids.iter().any(|b| e.contains(b.as_str()))
            }
            Payload::Message { .. } => true,
        })
        .cloned()
        .collect()
}
