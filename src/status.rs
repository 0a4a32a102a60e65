//! `essbot status [--json]`: the instances running on the database (which one is active), the
//! last cycle, each démarche's sync position and last error, what waits to be sent; and whether
//! all is well, as an exit code a monitoring check can use.
//!
//! Unhealthy (exit 1) when the last cycle failed, or when the last successful one is older than
//! twice the schedule's period (the schedule fired twice since without a success).
//!
//! The store is read once into a [`StatusReport`]; the French text staff read and the JSON a
//! monitoring script reads are two renderings of it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Settings;
use crate::rules::text::count;
use crate::schedule;
use crate::store::{CycleOutcome, Store, StoreError};

/// The status report and its verdict.
#[derive(Debug, Clone)]
pub struct Status {
    pub text: String,
    pub healthy: bool,
    /// What the text says, for `--json`.
    pub report: StatusReport,
}

impl Status {
    /// The report as pretty JSON (dates in RFC 3339, UTC).
    pub fn json(&self) -> String {
        let mut out = serde_json::to_string_pretty(&self.report).unwrap_or_default();
        out.push('\n');
        out
    }
}

/// Everything `essbot status` says, as data.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Exit code 0 when true, 1 otherwise.
    pub healthy: bool,
    /// Why not, in French (empty when healthy).
    pub problems: Vec<String>,
    /// When the report was made.
    pub now: DateTime<Utc>,
    pub last_cycle: Option<CycleStatus>,
    /// When the last successful cycle ended.
    pub last_success: Option<DateTime<Utc>>,
    pub demarches: Vec<DemarcheStatus>,
    /// Writes to DS not settled yet.
    pub writes_pending: i64,
    /// Writes DS refused, still current (not retried before the retry delay).
    pub writes_refused: Vec<crate::writeback::Failure>,
    /// Alerts waiting to be delivered.
    pub alerts_pending: u64,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The instances seen lately on the database, the active one first.
    pub instances: Vec<InstanceStatus>,
}

/// An essbot process seen lately on the database.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub host: String,
    pub pid: i64,
    pub version: String,
    /// `active` or `standby`.
    pub role: String,
    /// When it became the active one (for the active one).
    pub active_since: Option<DateTime<Utc>>,
    pub seconds_since_heartbeat: i64,
}

/// The last cycle.
#[derive(Debug, Clone, Serialize)]
pub struct CycleStatus {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `ok`, `partial`, `failed` or `interrupted`.
    pub outcome: &'static str,
    pub error: Option<String>,
}

/// One watched démarche.
#[derive(Debug, Clone, Serialize)]
pub struct DemarcheStatus {
    pub number: i64,
    pub kind: &'static str,
    /// The latest `dateDerniereModification` seen.
    pub watermark: Option<DateTime<Utc>>,
    /// When its last sync completed without error.
    pub last_sync: Option<DateTime<Utc>>,
    /// Seconds from `last_sync` to `now`.
    pub seconds_since_last_sync: Option<i64>,
    /// What each optional field the configuration does not map means for the rules.
    pub not_mapped: Vec<String>,
    pub last_error: Option<DemarcheError>,
    /// Dossiers essbot could not read.
    pub unreadable: Vec<Unreadable>,
}

/// A démarche's last sync error.
#[derive(Debug, Clone, Serialize)]
pub struct DemarcheError {
    /// In French.
    pub message: String,
    pub at: Option<DateTime<Utc>>,
    /// False when a successful sync came after it.
    pub current: bool,
}

/// A dossier essbot could not read.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub dossier: String,
    pub field: String,
    pub message: String,
}

/// Reads the store and renders the status at `now`.
///
/// # Errors
/// A store failure.
pub async fn status(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Status, StoreError> {
    let report = read(settings, store, now).await?;
    Ok(Status {
        text: render(&report, settings.schedule.timezone),
        healthy: report.healthy,
        report,
    })
}

async fn read(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<StatusReport, StoreError> {
    let tz = settings.schedule.timezone;
    let mut problems = Vec::new();
    let cycles = store.recent_cycles(50).await?;
    let last_cycle = cycles.first().map(|c| CycleStatus {
        id: c.id,
        started_at: c.started_at,
        finished_at: c.finished_at,
        outcome: c.outcome.as_str(),
        error: c.error.clone(),
    });
    match cycles.first() {
        None => problems.push("aucun cycle n'a encore tourné".to_owned()),
        Some(c) if c.outcome == CycleOutcome::Failed => {
            problems.push("le dernier cycle a échoué".to_owned());
        }
        Some(_) => {}
    }
    let last_success = cycles
        .iter()
        .find(|c| c.outcome == CycleOutcome::Ok)
        .and_then(|c| c.finished_at);
    if schedule::is_stale(last_success, now, &settings.schedule.cron, tz) {
        problems.push("aucun cycle réussi depuis plus de deux périodes du calendrier".to_owned());
    }

    let mut demarches = Vec::new();
    for d in &settings.demarches {
        let s = store.sync_state(d.number).await?;
        let not_mapped = d.not_mapped();
        let last_error = s.last_error.as_ref().map(|e| DemarcheError {
            message: e.clone(),
            at: s.last_error_at,
            current: match (s.last_error_at, s.last_success) {
                (Some(e_at), Some(ok)) => e_at >= ok,
                _ => true,
            },
        });
        let unreadable = store
            .decode_errors(Some(d.number), false)
            .await?
            .into_iter()
            .map(|e| Unreadable {
                dossier: e.dossier_key,
                field: e.field_path,
                message: e.message,
            })
            .collect();
        demarches.push(DemarcheStatus {
            number: d.number,
            kind: d.kind.as_str(),
            watermark: s.watermark,
            last_sync: s.last_success,
            seconds_since_last_sync: s.last_success.map(|w| (now - w).num_seconds().max(0)),
            not_mapped,
            last_error,
            unreadable,
        });
    }
    let writes_pending = crate::writeback::pending_count(store).await.unwrap_or(-1);
    let writes_refused = crate::writeback::failures(store).await.unwrap_or_default();
    let alerts_pending = store.pending_alerts_count().await.unwrap_or(0);
    let state = store.leadership_state(now).await?;
    let mut instances: Vec<InstanceStatus> = state
        .instances
        .iter()
        .filter(|i| i.role != "stopped")
        .map(|i| InstanceStatus {
            host: i.host.clone(),
            pid: i.pid,
            version: i.version.clone(),
            role: i.role.clone(),
            active_since: state
                .since
                .filter(|_| i.role == "active" && state.holder.as_deref() == Some(i.id.as_str())),
            seconds_since_heartbeat: (now - i.heartbeat_at).num_seconds().max(0),
        })
        .collect();
    instances.sort_by_key(|i| (i.role != "active", i.host.clone(), i.pid));
    Ok(StatusReport {
        healthy: problems.is_empty(),
        problems,
        now,
        last_cycle,
        last_success,
        demarches,
        writes_pending,
        writes_refused,
        alerts_pending,
        backend: store.backend().as_str(),
        instances,
    })
}

/// The report as staff read it, in French.
fn render(r: &StatusReport, tz: Tz) -> String {
    let mut out = String::new();
    match &r.last_cycle {
        None => {
            let _ = writeln!(out, "Dernier cycle : aucun cycle n'a encore tourné");
        }
        Some(c) => {
            let _ = writeln!(
                out,
                "Dernier cycle : n° {} commencé {}, {}",
                c.id,
                local(c.started_at, tz),
                match (c.outcome, c.finished_at) {
                    ("running", _) => "en cours".to_owned(),
                    (o, Some(f)) => format!("terminé {} : {}", local(f, tz), outcome_fr(o)),
                    (o, None) => outcome_fr(o).to_owned(),
                }
            );
            if let Some(e) = &c.error {
                let _ = writeln!(out, "  erreur : {e}");
            }
        }
    }
    if r.problems
        .iter()
        .any(|p| p.starts_with("aucun cycle réussi depuis"))
    {
        let _ = writeln!(
            out,
            "Attention : aucun cycle réussi depuis plus de deux périodes du calendrier (dernier réussi : {})",
            r.last_success
                .map_or_else(|| "jamais".to_owned(), |t| local(t, tz))
        );
    }

    render_instances(&mut out, r, tz);

    let _ = writeln!(out, "\nDémarches :");
    for d in &r.demarches {
        let _ = writeln!(out, "  {} ({})", d.number, d.kind);
        let _ = writeln!(
            out,
            "    dernière modification vue : {}",
            d.watermark
                .map_or_else(|| "aucune".to_owned(), |w| local(w, tz))
        );
        let _ = writeln!(
            out,
            "    dernière synchronisation réussie : {}{}",
            d.last_sync
                .map_or_else(|| "jamais".to_owned(), |w| local(w, tz)),
            d.seconds_since_last_sync
                .map(|s| format!(" (il y a {})", ago(s)))
                .unwrap_or_default()
        );
        // What the configuration does not read, said here rather than in every report.
        // Operator-facing detail, in English like the configuration it is about.
        for effect in &d.not_mapped {
            let _ = writeln!(out, "    not mapped: {effect}");
        }
        if let Some(e) = &d.last_error {
            let _ = writeln!(
                out,
                "    {} : {}{}",
                if e.current {
                    "dernière erreur"
                } else {
                    "erreur passée"
                },
                e.message,
                e.at.map(|t| format!(" ({})", local(t, tz)))
                    .unwrap_or_default()
            );
        }
        if !d.unreadable.is_empty() {
            let _ = writeln!(out, "    dossiers illisibles : {}", d.unreadable.len());
            for e in d.unreadable.iter().take(10) {
                let _ = writeln!(
                    out,
                    "      dossier {} — {} : {}",
                    e.dossier, e.field, e.message
                );
            }
        }
    }
    // What waits to be written to DS, and what DS refused (not retried blindly).
    let _ = writeln!(
        out,
        "\nÉcritures vers DS : {}, {}",
        count(
            usize::try_from(r.writes_pending).unwrap_or(0),
            "en attente",
            "en attente"
        ),
        count(r.writes_refused.len(), "refusée", "refusées")
    );
    for f in r.writes_refused.iter().take(20) {
        let _ = writeln!(
            out,
            "  dossier {} ({}) — {} : {} ({}, le dernier {})",
            f.dossier,
            f.demarche,
            f.target,
            f.error,
            count(usize::try_from(f.attempts).unwrap_or(0), "essai", "essais"),
            local(f.at, tz)
        );
    }
    let _ = writeln!(out, "Alertes en attente d'envoi : {}", r.alerts_pending);
    out
}

/// The instances seen lately, the active one first.
fn render_instances(out: &mut String, r: &StatusReport, tz: Tz) {
    let _ = writeln!(out, "\nInstances ({}) :", r.backend);
    if !r.instances.iter().any(|i| i.role == "active") {
        let _ = writeln!(
            out,
            "  aucune instance active (aucun signe de vie d'une instance active depuis 30 s)"
        );
    }
    for i in &r.instances {
        let role = if i.role == "active" {
            format!(
                "active{}",
                i.active_since
                    .map(|t| format!(" depuis {}", local(t, tz)))
                    .unwrap_or_default()
            )
        } else {
            "en attente (prendra le relais si l'instance active s'arrête)".to_owned()
        };
        let _ = writeln!(
            out,
            "  {} (pid {}, essbot {}) : {role} ; dernier signe de vie il y a {}",
            i.host,
            i.pid,
            i.version,
            ago(i.seconds_since_heartbeat)
        );
    }
}

fn outcome_fr(o: &str) -> &str {
    match o {
        "partial" => "partiel (voir les erreurs par démarche)",
        other => crate::cycle::outcome_fr(other),
    }
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("le %d/%m/%Y à %H:%M:%S")
        .to_string()
}

/// "29 secondes", "12 minutes", "3 heures", "2 jours".
fn ago(secs: i64) -> String {
    let n = |v: i64| usize::try_from(v).unwrap_or(0);
    match secs {
        s if s < 120 => count(n(s), "seconde", "secondes"),
        s if s < 7200 => count(n(s / 60), "minute", "minutes"),
        s if s < 172_800 => count(n(s / 3600), "heure", "heures"),
        s => count(n(s / 86_400), "jour", "jours"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_since_the_last_sync_is_said_in_words() {
        assert_eq!(ago(1), "1 seconde");
        assert_eq!(ago(29), "29 secondes");
        assert_eq!(ago(600), "10 minutes");
        assert_eq!(ago(3 * 3600), "3 heures");
        assert_eq!(ago(5 * 86_400), "5 jours");
    }
}
