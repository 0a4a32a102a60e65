//! `essbot status`: the instances running on the database (which one is active), the last
//! cycle, each démarche's sync position and last error, what waits to be sent; and whether all
//! is well, as an exit code a monitoring check can use.
//!
//! Unhealthy (exit 1) when the last cycle failed, or when the last successful one is older than
//! twice the schedule's period (the schedule fired twice since without a success).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::schedule;
use crate::store::{CycleOutcome, Store, StoreError};

/// The status report and its verdict.
#[derive(Debug, Clone)]
pub struct Status {
    pub text: String,
    pub healthy: bool,
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
    let tz = settings.schedule.timezone;
    let mut out = String::new();
    let mut healthy = true;
    let cycles = store.recent_cycles(50).await?;
    match cycles.first() {
        None => {
            healthy = false;
            let _ = writeln!(out, "Dernier cycle : aucun cycle n'a encore tourné");
        }
        Some(c) => {
            let _ = writeln!(
                out,
                "Dernier cycle : n° {} commencé {}, {}",
                c.id,
                local(c.started_at, tz),
                match (c.outcome, c.finished_at) {
                    (CycleOutcome::Running, _) => "en cours".to_owned(),
                    (o, Some(f)) => format!("terminé {} : {}", local(f, tz), outcome_fr(o)),
                    (o, None) => outcome_fr(o).to_owned(),
                }
            );
            if let Some(e) = &c.error {
                let _ = writeln!(out, "  erreur : {e}");
            }
            if c.outcome == CycleOutcome::Failed {
                healthy = false;
            }
        }
    }
    let last_success = cycles
        .iter()
        .find(|c| c.outcome == CycleOutcome::Ok)
        .and_then(|c| c.finished_at);
    if schedule::is_stale(last_success, now, &settings.schedule.cron, tz) {
        healthy = false;
        let _ = writeln!(
            out,
            "Attention : aucun cycle réussi depuis plus de deux périodes du calendrier ({})",
            last_success.map_or_else(|| "jamais".to_owned(), |t| local(t, tz))
        );
    }

    instances(&mut out, store, now, tz).await?;

    let _ = writeln!(out, "\nDémarches :");
    for d in &settings.demarches {
        let s = store.sync_state(d.number).await?;
        let _ = writeln!(out, "  {} ({})", d.number, d.kind.as_str());
        let _ = writeln!(
            out,
            "    dernière modification vue : {}",
            s.watermark
                .map_or_else(|| "aucune".to_owned(), |w| local(w, tz))
        );
        let _ = writeln!(
            out,
            "    dernière synchronisation réussie : {}{}",
            s.last_success
                .map_or_else(|| "jamais".to_owned(), |w| local(w, tz)),
            s.last_success
                .map(|w| format!(" (retard : {})", lag(now, w)))
                .unwrap_or_default()
        );
        if let Some(e) = &s.last_error {
            let recent = match (s.last_error_at, s.last_success) {
                (Some(e_at), Some(ok)) => e_at >= ok,
                _ => true,
            };
            let _ = writeln!(
                out,
                "    {} : {e}{}",
                if recent {
                    "dernière erreur"
                } else {
                    "erreur passée"
                },
                s.last_error_at
                    .map(|t| format!(" ({})", local(t, tz)))
                    .unwrap_or_default()
            );
        }
        let decode = store.decode_errors(Some(d.number), false).await?;
        if !decode.is_empty() {
            let _ = writeln!(out, "    dossiers illisibles : {}", decode.len());
            for e in decode.iter().take(10) {
                let _ = writeln!(
                    out,
                    "      dossier {} — {} : {}",
                    e.dossier_key, e.field_path, e.message
                );
            }
        }
    }
    // What waits to be written to DS, and what DS refused (not retried blindly).
    let pending = crate::writeback::pending_count(store).await.unwrap_or(-1);
    let failures = crate::writeback::failures(store).await.unwrap_or_default();
    let _ = writeln!(
        out,
        "\nÉcritures vers DS : {pending} en attente, {} refusée(s)",
        failures.len()
    );
    for f in failures.iter().take(20) {
        let _ = writeln!(
            out,
            "  dossier {} ({}) — {} : {} ({} essai(s), dernier {})",
            f.dossier,
            f.demarche,
            f.target,
            f.error,
            f.attempts,
            local(f.at, tz)
        );
    }
    let alerts = store.pending_alerts_count().await.unwrap_or(0);
    let _ = writeln!(out, "Alertes en attente d'envoi : {alerts}");
    Ok(Status { text: out, healthy })
}

/// The instances seen lately, the active one first.
async fn instances(
    out: &mut String,
    store: &Store,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<(), StoreError> {
    let state = store.leadership_state(now).await?;
    let _ = writeln!(out, "\nInstances ({}) :", store.backend().as_str());
    let mut live: Vec<_> = state
        .instances
        .iter()
        .filter(|i| i.role != "stopped")
        .collect();
    live.sort_by_key(|i| (i.role != "active", i.id.clone()));
    if !live.iter().any(|i| i.role == "active") {
        let _ = writeln!(
            out,
            "  aucune instance active (aucun signe de vie d'une instance active depuis 30 s)"
        );
    }
    for i in live {
        let role = if i.role == "active" {
            format!(
                "active{}",
                state
                    .since
                    .filter(|_| state.holder.as_deref() == Some(i.id.as_str()))
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
            lag(now, i.heartbeat_at)
        );
    }
    Ok(())
}

fn outcome_fr(o: CycleOutcome) -> &'static str {
    match o {
        CycleOutcome::Running => "en cours",
        CycleOutcome::Ok => "réussi",
        CycleOutcome::Partial => "partiel (voir les erreurs par démarche)",
        CycleOutcome::Failed => "en échec",
        CycleOutcome::Interrupted => "interrompu",
    }
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("le %d/%m/%Y à %H:%M:%S")
        .to_string()
}

fn lag(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} jours", s / 86_400),
    }
}
