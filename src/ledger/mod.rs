//! The I/O side of the financing milestones: the append-only ledger of events in the store, the
//! cycle stage that feeds it from the stored DS dossiers, and the alerts it plans.
//!
//! [`crate::milestones`] is pure: events and today in, schedule out. This module supplies the
//! events and acts on the schedule:
//! - the events themselves live in the store's `milestone_events` table
//!   ([`Store::append_events`]), append-only (its triggers refuse updates and deletes); a
//!   correction is a new row.
//! - [`observe`]: what DS and the suivi annotations say about a project, turned into the events
//!   the ledger lacks. Re-running appends nothing; a changed annotation appends one correction.
//! - [`run`]: the cycle stage. It updates the ledger, derives every project's schedule for
//!   today in Europe/Paris (from the injected clock), returns the next deadline of every dossier
//!   for the "Prochaine échéance" annotation, and hands the planned alerts and the daily digest
//!   to the alerts ledger, which delivers them through the configured channels.
//! - [`record`]: a manual event (`essbot milestones record`), validated first.
//!
//! With no alert channel configured, nothing is enqueued: an alert that can never go would sit
//! "pending" forever and make `essbot status` look unhealthy. The plan is still computed and
//! counted in [`LedgerReport::planned_alerts`], and `essbot milestones` shows the same schedule.

pub mod observe;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Paris;
use serde::Serialize;
use serde_json::json;
use tracing::{info, instrument};

use crate::alerts::{self, Alert, AlertLedger, Channel, DeliveryReport, Recipient};
use crate::config::{DemarcheKind, Settings};
use crate::cycle::{Mappings, Services};
use crate::ds::decode_dossier_text;
use crate::ds::model::{Dossier, DossierState};
use crate::milestones::{
    self, DossierLinks, Event, EventError, MilestonesConfig, PlannedAlert, ProjectSchedule, State,
};
use crate::rules::{ResolvedMapping, extract_projet};
use crate::store::{DossierStatus, Store, StoreError};

pub use observe::{AUTHOR, ProjectDossiers};

/// Why the ledger could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("registre des jalons : {0}")]
    Store(#[from] StoreError),
    #[error("alertes : {0}")]
    Alerts(#[from] alerts::LedgerError),
    #[error("alertes : configuration des canaux invalide : {0}")]
    Channels(#[from] alerts::ChannelSetupError),
    /// A manual event was refused ([`Event::validate`]).
    #[error("{0}")]
    Invalid(#[from] EventError),
    /// A manual event names a project essbot does not know.
    #[error(
        "projet inconnu : aucune lettre d'intention n° {0} dans la base (lancer d'abord un cycle)"
    )]
    UnknownProject(i64),
}

/// What the milestones stage did, for the cycle report, the write-back and `essbot status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerReport {
    /// Events appended this cycle (new facts, corrections, retractions).
    pub appended: usize,
    /// Projects with a schedule.
    pub projects: usize,
    /// Dossier number (lettre d'intention and projet de santé alike) → the date to write into
    /// its "Prochaine échéance" annotation. A dossier without an open deadline is absent.
    pub next_deadlines: BTreeMap<i64, NaiveDate>,
    /// Milestones late today, over every project.
    pub overdue: usize,
    /// Alerts the schedules call for today (enqueued or not).
    pub planned_alerts: usize,
    /// Alerts new to the alerts ledger this cycle (0 when no channel is configured).
    pub enqueued: u64,
    /// What the delivery did; `None` when no channel is configured.
    #[serde(skip)]
    pub delivery: Option<DeliveryReport>,
    /// Things staff or operators should look at (French): unreadable annotations, projets de
    /// santé linked to an unknown lettre d'intention.
    pub warnings: Vec<String>,
}

/// Today in Europe/Paris, the calendar every ESS deadline counts in.
pub fn paris_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Paris).date_naive()
}

/// The milestones stage of a cycle: updates the ledger from the stored dossiers, derives every
/// schedule, plans the alerts and delivers them. Run it after the sync (it reads the store,
/// not DS) and before the write-back (which needs [`LedgerReport::next_deadlines`]).
///
/// # Errors
/// A store failure, an unusable alert channel configuration or an alerts-ledger failure. The
/// events appended before the failure stay (they are true whatever happens next).
#[instrument(skip_all, err)]
pub async fn run(services: &Services, mappings: &Mappings) -> Result<LedgerReport, LedgerError> {
    let settings = &services.settings;
    let store = &services.store;
    let now = services.clock.now();
    let today = paris_today(now);
    let mut report = LedgerReport::default();

    let dossiers = load_dossiers(store, settings, &mappings.resolved).await?;
    let projects = link_projects(&dossiers, &mut report.warnings);
    let existing = store.events().await?;
    let mut append = Vec::new();
    for p in &projects {
        let known = existing.get(&p.li.number).map_or(&[][..], Vec::as_slice);
        let observed = observe::observe(*p, known, today, now);
        append.extend(observed.append);
        report.warnings.extend(observed.warnings);
    }
    store.append_events(&append).await?;
    report.appended = append.len();

    let schedules = derive_all(store, &settings.milestones, today).await?;
    report.projects = schedules.len();
    for s in &schedules {
        if let Some((_, due)) = milestones::next_deadline(s, today) {
            report.next_deadlines.insert(s.project, due);
            if let Some(ps) = s.ps_dossier {
                report.next_deadlines.insert(ps, due);
            }
        }
        report.overdue += s
            .milestones
            .iter()
            .filter(|m| m.state == State::EnRetard)
            .count();
    }

    let alerts = plan(settings, &dossiers, &schedules, today);
    report.planned_alerts = alerts.len();
    let channels = Channel::from_settings(&settings.alerts)?;
    if channels.is_empty() {
        if !alerts.is_empty() {
            info!(
                planned = alerts.len(),
                "no alert channel configured: alerts are planned but not enqueued"
            );
        }
    } else {
        let ledger = AlertLedger::new(store.clone());
        report.enqueued = ledger.enqueue(&alerts, now).await?;
        report.delivery = Some(ledger.deliver_due(&channels, now).await?);
    }
    info!(
        appended = report.appended,
        projects = report.projects,
        overdue = report.overdue,
        planned = report.planned_alerts,
        enqueued = report.enqueued,
        "milestones updated"
    );
    Ok(report)
}

/// Every project's schedule for `today`, by lettre d'intention number, from the ledger alone
/// (no DS call): what `essbot milestones` and `essbot payments` print.
///
/// # Errors
/// A store failure or an unreadable event.
pub async fn derive_all(
    store: &Store,
    cfg: &MilestonesConfig,
    today: NaiveDate,
) -> Result<Vec<ProjectSchedule>, LedgerError> {
    Ok(store
        .events()
        .await?
        .values()
        .map(|evs| milestones::derive(evs, today, cfg))
        .collect())
}

/// Records a manual event after [`Event::validate`] and checks that its project is known (a
/// stored lettre d'intention or a project with events), so that a mistyped number does not
/// start a phantom project.
///
/// # Errors
/// [`LedgerError::Invalid`] with the French reason, [`LedgerError::UnknownProject`], or a
/// store failure.
pub async fn record(store: &Store, settings: &Settings, event: Event) -> Result<(), LedgerError> {
    event.validate()?;
    let has_events = !store.events_of(event.project).await?.is_empty();
    if !has_events {
        let stored = store.dossier(event.project).await?;
        let is_li = stored.is_some_and(|d| {
            settings
                .demarches
                .iter()
                .any(|m| m.number == d.demarche && m.kind == DemarcheKind::LettreIntention)
        });
        if !is_li {
            return Err(LedgerError::UnknownProject(event.project));
        }
    }
    Ok(store.append_events(std::slice::from_ref(&event)).await?)
}

/// A readable, listed dossier of a watched démarche, with the démarche's mapping.
struct Loaded<'a> {
    dossier: Dossier,
    mapping: &'a ResolvedMapping,
}

async fn load_dossiers<'a>(
    store: &Store,
    settings: &Settings,
    mappings: &'a BTreeMap<i64, ResolvedMapping>,
) -> Result<Vec<Loaded<'a>>, LedgerError> {
    let mut out = Vec::new();
    for demarche in &settings.demarches {
        let Some(mapping) = mappings.get(&demarche.number) else {
            continue;
        };
        for stored in store.dossiers_of(demarche.number).await? {
            if stored.status != DossierStatus::Listed {
                continue;
            }
            // Unreadable dossiers are reported by the sync and the pre-check already.
            if let Some(Ok(dossier)) = stored.raw.as_deref().map(decode_dossier_text) {
                out.push(Loaded { dossier, mapping });
            }
        }
    }
    Ok(out)
}

/// Groups the dossiers into projects: each lettre d'intention with the projet de santé that
/// links to it. Several PS linking to one LI: the latest filed one not closed without decision
/// wins (a PS filed again after a duplicate was closed).
fn link_projects<'a>(
    dossiers: &'a [Loaded<'a>],
    warnings: &mut Vec<String>,
) -> Vec<ProjectDossiers<'a>> {
    let mut projects: BTreeMap<i64, ProjectDossiers<'a>> = BTreeMap::new();
    for l in dossiers {
        if l.mapping.kind == DemarcheKind::LettreIntention {
            projects.insert(
                l.dossier.number,
                ProjectDossiers {
                    li: &l.dossier,
                    li_mapping: l.mapping,
                    ps: None,
                },
            );
        }
    }
    for l in dossiers {
        if l.mapping.kind != DemarcheKind::ProjetSante {
            continue;
        }
        let ps = extract_projet(&l.dossier, l.mapping);
        let Some(link) = ps.lien_lettre_intention.value() else {
            continue;
        };
        let Some(project) = projects.get_mut(&link.numero) else {
            warnings.push(format!(
                "projet de santé n° {} lié à la lettre d'intention n° {}, inconnue d'essbot : \
                 aucun jalon suivi",
                l.dossier.number, link.numero
            ));
            continue;
        };
        let rank = |d: &Dossier| (d.state != DossierState::SansSuite, d.date_depot);
        match project.ps {
            Some((current, _)) if rank(current) >= rank(&l.dossier) => {}
            _ => project.ps = Some((&l.dossier, l.mapping)),
        }
    }
    projects.into_values().collect()
}

fn role(r: milestones::Role) -> alerts::Role {
    match r {
        milestones::Role::Cpam => alerts::Role::Cpam,
        milestones::Role::Ars => alerts::Role::Ars,
    }
}

/// The alerts of every schedule for today, then one digest per role.
fn plan(
    settings: &Settings,
    dossiers: &[Loaded<'_>],
    schedules: &[ProjectSchedule],
    today: NaiveDate,
) -> Vec<Alert> {
    let base = settings.alerts.dossier_url_base.trim_end_matches('/');
    let demarche_of: BTreeMap<i64, i64> = dossiers
        .iter()
        .map(|l| (l.dossier.number, l.mapping.demarche))
        .collect();
    let url = |demarche: Option<i64>| {
        demarche
            .filter(|_| !base.is_empty())
            .map(|n| format!("{base}/{n}/dossiers"))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for s in schedules {
        let links = DossierLinks {
            lettre_intention: url(demarche_of.get(&s.project).copied()),
            projet_sante: url(s.ps_dossier.and_then(|ps| demarche_of.get(&ps).copied())),
        };
        for a in milestones::plan_alerts(s, today, &settings.alerts.lead_days, &links) {
            out.push(to_alert(s, a));
        }
    }
    for (r, body) in milestones::digest(schedules, today) {
        let role = role(r);
        out.push(Alert {
            key: alerts::digest::digest_key(role, today),
            recipient: Recipient::Digest(role),
            subject: format!(
                "[ESS] Échéances au {} pour : {}",
                milestones::format_date_fr(today),
                r.libelle()
            ),
            body,
            dossier_url: None,
            payload: json!({
                "type": "digest",
                "date": today.to_string(),
                "recipient": role.as_str(),
            }),
        });
    }
    out
}

fn to_alert(s: &ProjectSchedule, a: PlannedAlert) -> Alert {
    Alert {
        recipient: Recipient::Staff(role(a.recipient)),
        payload: json!({
            "type": "milestone",
            "project": a.project,
            "projet_sante": s.ps_dossier,
            "milestone": a.milestone.to_string(),
            "kind": a.kind.to_string(),
            "due": a.due.map(|d| d.to_string()),
            "amount_cents": a.amount_cents,
            "recipient": role(a.recipient).as_str(),
        }),
        key: a.key,
        subject: a.subject,
        body: a.body,
        dossier_url: a.dossier_url,
    }
}
