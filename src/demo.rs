//! `essbot demo`: the whole job on the built-in DS sandbox, with no token, no network and no
//! setup — the README's first command.
//!
//! It starts the sandbox with the demo data set on a loopback port, opens a SQLite database in a
//! temporary folder, runs one full cycle with the embedded demo configuration, and prints what a
//! CPAM or ARS user would see: each dossier's verdict and main findings, and what was written.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use ds_sandbox::{DEMO_TOKEN, Dataset, Sandbox, SandboxOptions};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, DEMO_CONFIG, Env, Settings, Source};
use crate::cycle::{self, CycleReport, Services};
use crate::milestones;
use crate::precheck;

/// The demo's settings: the embedded configuration pointed at `endpoint` and `db_url`.
///
/// # Errors
/// Only if the embedded configuration is invalid (a test guards against it).
pub fn demo_settings(endpoint: &str, db_url: &str) -> anyhow::Result<Settings> {
    let mut settings = config::load(&Source::Text(DEMO_CONFIG.to_owned()), &Env::default())
        .context("the embedded demo configuration")?;
    settings.ds.endpoint = endpoint.parse().context("the sandbox URL")?;
    settings.ds.token = Some(SecretString::from(DEMO_TOKEN.to_owned()));
    settings.database.url = db_url.to_owned();
    Ok(settings)
}

/// Runs the demo and returns the text to print.
///
/// # Errors
/// When the sandbox, the database or the cycle cannot run.
pub async fn run() -> anyhow::Result<String> {
    let sandbox = Sandbox::start(
        Dataset::demo(),
        SandboxOptions::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .context("starting the DS sandbox")?;
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let db = dir.path().join("essbot-demo.db");
    let settings = demo_settings(&sandbox.url(), &format!("sqlite://{}", db.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let services = Services::open(settings, clock)
        .await
        .context("opening the demo database")?;
    let cancel = CancellationToken::new();
    let report = cycle::run_once(&services, &cancel)
        .await
        .context("running the cycle")?;
    let text = render(&services, &report, sandbox.mutations().len()).await?;
    services.store.close().await;
    sandbox.shutdown().await;
    Ok(text)
}

async fn render(
    services: &Services,
    report: &CycleReport,
    mutations: usize,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "essbot demo — DS sandbox (démarches {}), base SQLite temporaire\n",
        services
            .settings
            .demarches
            .iter()
            .map(|d| format!("{} {}", d.number, d.kind.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    use crate::rules::text::count;
    let _ = writeln!(
        out,
        "Cycle {} : {} — {} en {}, {}, {} à DS, {}",
        report.cycle,
        crate::cycle::outcome_fr(&report.outcome),
        count(
            report.synced as usize,
            "dossier synchronisé",
            "dossiers synchronisés"
        ),
        count(report.requests as usize, "requête", "requêtes"),
        count(report.checked, "dossier vérifié", "dossiers vérifiés"),
        count(mutations, "mutation envoyée", "mutations envoyées"),
        count(
            report.events_appended,
            "événement de financement enregistré",
            "événements de financement enregistrés"
        )
    );
    for (demarche, errors) in &report.errors {
        for e in errors {
            let _ = writeln!(out, "  ! démarche {demarche} : {e}");
        }
    }
    let checks = precheck::stored_checks(&services.store)
        .await
        .context("reading the reports")?;
    let mut rows = Vec::new();
    for c in &checks {
        let stored = services.store.dossier(c.dossier).await?;
        let state = stored.and_then(|d| d.state).map_or("?", |s| s.libelle());
        let kind = services
            .settings
            .demarches
            .iter()
            .find(|d| d.number == c.demarche)
            .map_or("?", |d| match d.kind {
                config::DemarcheKind::LettreIntention => "lettre d'intention",
                config::DemarcheKind::ProjetSante => "projet de santé",
            });
        let written = report
            .writes
            .iter()
            .find(|w| w.dossier == c.dossier)
            .map_or_else(|| "—".to_owned(), written_summary);
        rows.push(vec![
            c.dossier.to_string(),
            kind.to_owned(),
            state.to_owned(),
            verdict_fr(&c.verdict).to_owned(),
            written,
            main_points(&c.report_json),
        ]);
    }
    for n in &report.unreadable {
        rows.push(vec![
            n.to_string(),
            "?".into(),
            "?".into(),
            "NON VÉRIFIÉ".into(),
            "—".into(),
            "dossier illisible (voir essbot status)".into(),
        ]);
    }
    out.push('\n');
    out.push_str(&milestones::text_table(
        &[
            "Dossier",
            "Démarche",
            "État",
            "Verdict",
            "Écrit dans DS",
            "Points principaux",
        ],
        &rows,
    ));
    let example = checks
        .iter()
        .find(|c| c.verdict == "non_conforme")
        .or_else(|| checks.iter().find(|c| c.verdict != "conforme"));
    if let Some(c) = example {
        let _ = writeln!(
            out,
            "\nExemple de rapport écrit en annotation privée (dossier {}) :\n",
            c.dossier
        );
        // Wrapped for a terminal; DS shows the annotation in its own width.
        for line in c.report_text.lines() {
            for (i, part) in milestones::wrap(line, milestones::TABLE_WIDTH - 6)
                .into_iter()
                .enumerate()
            {
                let indent = if i == 0 { "  " } else { "      " };
                let _ = writeln!(out, "{indent}{part}");
            }
        }
    }
    let today = crate::ledger::paris_today(services.clock.now());
    let schedules =
        crate::ledger::derive_all(&services.store, &services.settings.milestones, today)
            .await
            .context("deriving the milestones")?;
    let _ = writeln!(
        out,
        "\nJalons de financement au {} — prochaine échéance de chaque projet :\n",
        milestones::format_date_fr(today)
    );
    let mut rows = Vec::new();
    for sched in &schedules {
        let (label, date) = match milestones::next_deadline(sched, today) {
            Some((id, d)) => (id.libelle(), milestones::format_date_fr(d)),
            None => ("aucune".to_owned(), String::new()),
        };
        let due: Vec<String> = sched
            .payments
            .iter()
            .filter(|p| matches!(p.state, milestones::State::Du | milestones::State::EnRetard))
            .map(|p| {
                format!(
                    "{} {} ({})",
                    p.milestone,
                    p.amount_cents
                        .map_or_else(|| "montant à fixer".to_owned(), milestones::format_eur),
                    p.state.libelle()
                )
            })
            .collect();
        rows.push(vec![
            milestones::project_label(sched),
            label,
            date,
            if due.is_empty() {
                "—".to_owned()
            } else {
                due.join(", ")
            },
        ]);
    }
    out.push_str(&milestones::text_table(
        &[
            "Projet",
            "Prochaine échéance",
            "Date",
            "Versements dus ou en retard",
        ],
        &rows,
    ));
    if let Some(full) = schedules.iter().find(|s| s.ps_dossier.is_some()) {
        let _ = writeln!(
            out,
            "\nCalendrier complet du projet {} (essbot milestones pour tous les projets) :\n",
            milestones::project_label(full)
        );
        out.push_str(&milestones::milestones_table(std::slice::from_ref(full)));
    }
    Ok(out)
}

/// What the write-back did to one dossier, in a few words.
fn written_summary(w: &crate::writeback::DossierOutcome) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for target in &w.written {
        let part = match target.as_str() {
            "annotation:rapport" => "rapport",
            "annotation:conforme" => "case conforme",
            "annotation:prochaine_echeance" => "échéance",
            t if t.starts_with("label:") => "label",
            "message" => "message",
            _ => "autre",
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    if !w.failed.is_empty() {
        parts.push("refusé par DS");
    }
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join(", ")
    }
}

fn verdict_fr(v: &str) -> &'static str {
    match crate::rules::Verdict::parse(v) {
        Some(crate::rules::Verdict::DerogationCpn) => "DÉROGATION CPN",
        Some(v) => v.libelle(),
        None => "?",
    }
}

/// The rule ids of the blocking and derogation findings, then the warnings, in report order.
fn main_points(report: &serde_json::Value) -> String {
    let mut ids: Vec<String> = Vec::new();
    let findings = report
        .get("findings")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for severity in ["bloquant", "derogation", "a_verifier", "avertissement"] {
        for f in &findings {
            if f.get("severity").and_then(serde_json::Value::as_str) == Some(severity)
                && let Some(rule) = f.get("rule").and_then(serde_json::Value::as_str)
            {
                let tag = match severity {
                    "bloquant" => rule.to_owned(),
                    "derogation" => format!("{rule} (CPN)"),
                    "a_verifier" => format!("{rule} (à vérifier)"),
                    _ => format!("{rule} (avert.)"),
                };
                if !ids.contains(&tag) {
                    ids.push(tag);
                }
            }
        }
    }
    if ids.is_empty() {
        "—".to_owned()
    } else {
        ids.join(", ")
    }
}
