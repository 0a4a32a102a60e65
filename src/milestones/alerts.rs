//! Alert planning: which alerts a schedule calls for today, each worded in French and keyed so
//! that the sender (the `alerts` module) delivers it once. Pure: the sender's ledger, not this
//! module, remembers what was sent.
//!
//! Kinds (milestones.md, "Alerts"): upcoming at each configured lead time, due, overdue (then
//! every week), done. Planning is tolerant of missed days: on any day inside a lead window the
//! tightest window's alert is planned, so a daemon that was down on the exact day still sends it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

use super::calendar::{days_between, format_date_fr as fr};
use super::derive::{Milestone, ProjectSchedule, Role, State};
use super::event::MilestoneId;
use super::money::format_eur;
use super::render::project_label;

/// Default lead times, in days, of the "upcoming" alerts.
pub const DEFAULT_LEAD_DAYS: [u32; 2] = [30, 7];

/// How long after it happened a milestone still gets its "done" alert, so that importing an
/// old project does not announce years of history.
const DONE_WINDOW_DAYS: i64 = 7;

/// What an alert says about its milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Due in at most `lead_days` days.
    Upcoming { lead_days: u32 },
    /// Due today (or a payment whose trigger happened).
    Due,
    /// Late; `week` counts the weekly reminders from 0 (the first day late).
    Overdue { week: u32 },
    /// It happened.
    Done,
}

impl fmt::Display for AlertKind {
    /// The kind as written in keys: `upcoming-30`, `due`, `overdue-w2`, `done`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upcoming { lead_days } => write!(f, "upcoming-{lead_days}"),
            Self::Due => f.write_str("due"),
            Self::Overdue { week } => write!(f, "overdue-w{week}"),
            Self::Done => f.write_str("done"),
        }
    }
}

/// Where the dossiers are, to link each alert to its dossier: `<base>/<number>`, e.g.
/// `https://demarche.numerique.gouv.fr/procedures/1001/dossiers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DossierLinks {
    /// Base URL of the lettre d'intention dossiers.
    pub lettre_intention: String,
    /// Base URL of the projet de santé dossiers.
    pub projet_sante: String,
}

/// One alert to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAlert {
    /// `<project>/<milestone>/<kind>[/<due date>]`: the due date is part of the key of
    /// upcoming, due and overdue alerts, so that a corrected date is announced again.
    pub key: String,
    pub project: i64,
    pub milestone: MilestoneId,
    pub kind: AlertKind,
    pub recipient: Role,
    pub due: Option<NaiveDate>,
    pub amount_cents: Option<i64>,
    pub dossier_url: Option<String>,
    /// E-mail subject, French.
    pub subject: String,
    /// Plain-text body, French.
    pub body: String,
}

/// The alerts `schedule` calls for on `today`, with `lead_days` the "upcoming" lead times
/// ([`DEFAULT_LEAD_DAYS`] by default).
pub fn plan_alerts(
    schedule: &ProjectSchedule,
    today: NaiveDate,
    lead_days: &[u32],
    links: &DossierLinks,
) -> Vec<PlannedAlert> {
    let mut out = Vec::new();
    for m in &schedule.milestones {
        let Some(kind) = alert_kind(m, today, lead_days) else {
            continue;
        };
        let mut key = format!("{}/{}/{kind}", schedule.project, m.id);
        if let (Some(due), false) = (m.due, kind == AlertKind::Done) {
            key.push_str(&format!("/{due}"));
        }
        let dossier_url = dossier_url(schedule, m.id, links);
        let (subject, body) = wording(schedule, m, kind, today, dossier_url.as_deref());
        out.push(PlannedAlert {
            key,
            project: schedule.project,
            milestone: m.id,
            kind,
            recipient: m.recipient,
            due: m.due,
            amount_cents: m.amount_cents,
            dossier_url,
            subject,
            body,
        });
    }
    out
}

fn alert_kind(m: &Milestone, today: NaiveDate, lead_days: &[u32]) -> Option<AlertKind> {
    if m.blocker.is_some_and(|b| b.prevents_payment()) {
        return None;
    }
    match m.state {
        State::SansObjet => None,
        State::Fait => m
            .done_on
            .filter(|d| (0..=DONE_WINDOW_DAYS).contains(&days_between(*d, today)))
            .map(|_| AlertKind::Done),
        State::Du => Some(AlertKind::Due),
        State::EnRetard => {
            let since = m.overdue_since.or(m.due)?;
            let week = u32::try_from(days_between(since, today).max(0) / 7).unwrap_or(u32::MAX);
            Some(AlertKind::Overdue { week })
        }
        State::AVenir => {
            let left = days_between(today, m.due?);
            lead_days
                .iter()
                .copied()
                .filter(|lead| left > 0 && left <= i64::from(*lead))
                .min()
                .map(|lead_days| AlertKind::Upcoming { lead_days })
        }
    }
}

/// The dossier an alert links to: the PS dossier for what follows the projet de santé, the
/// lettre d'intention otherwise.
fn dossier_url(s: &ProjectSchedule, id: MilestoneId, links: &DossierLinks) -> Option<String> {
    let ps_side = matches!(
        id,
        MilestoneId::PsTacite
            | MilestoneId::Amo2
            | MilestoneId::Finess
            | MilestoneId::Dot(_)
            | MilestoneId::Socle
    );
    let (base, number) = match (ps_side, s.ps_dossier) {
        (true, Some(ps)) => (&links.projet_sante, ps),
        _ => (&links.lettre_intention, s.project),
    };
    (!base.is_empty() && number != 0).then(|| format!("{}/{number}", base.trim_end_matches('/')))
}

fn when(kind: AlertKind, m: &Milestone, today: NaiveDate) -> String {
    let due = m.due.map(fr).unwrap_or_default();
    match kind {
        AlertKind::Upcoming { .. } => {
            let left = m.due.map_or(0, |d| days_between(today, d));
            format!("échéance le {due}, dans {}", super::derive::jours(left))
        }
        AlertKind::Due if m.due == Some(today) => format!("échéance aujourd'hui, {due}"),
        AlertKind::Due => format!("exigible depuis le {due}"),
        AlertKind::Overdue { .. } => {
            let late = m.due.map_or(0, |d| days_between(d, today));
            format!(
                "échéance du {due} dépassée de {}",
                super::derive::jours(late)
            )
        }
        AlertKind::Done => format!("réalisé le {}", m.done_on.map(fr).unwrap_or_default()),
    }
}

fn wording(
    s: &ProjectSchedule,
    m: &Milestone,
    kind: AlertKind,
    today: NaiveDate,
    url: Option<&str>,
) -> (String, String) {
    let headline = match kind {
        AlertKind::Upcoming { .. } => "à venir",
        AlertKind::Due => "à traiter",
        AlertKind::Overdue { .. } => "en retard",
        AlertKind::Done => "réalisé",
    };
    let project = project_label(s);
    let mut subject = format!("[ESS {project}] {} {headline} : {}", m.id, m.id.libelle());
    if let Some(c) = m.amount_cents.filter(|_| m.id.is_payment()) {
        subject.push_str(&format!(" ({})", format_eur(c)));
    }
    let mut body = format!(
        "Pour : {}\nProjet : {project}\nJalon : {} — {}\nSituation : {} ({})\n",
        m.recipient.libelle(),
        m.id,
        m.id.libelle(),
        m.state.libelle(),
        when(kind, m, today),
    );
    if m.id.is_payment() {
        match m.amount_cents {
            Some(c) => body.push_str(&format!("Montant : {}\n", format_eur(c))),
            None => body.push_str("Montant : non calculé (examen manuel nécessaire)\n"),
        }
        if let Some(p) = s.payments.iter().find(|p| p.milestone == m.id) {
            body.push_str(&format!("Calcul : {}\n", p.explanation));
        }
    }
    if let Some(r) = s
        .payments
        .iter()
        .find(|p| p.milestone == m.id && p.kind == super::PaymentKind::Recuperation)
    {
        body.push_str(&format!("Récupération : {}\n", r.explanation));
    }
    body.push_str(&format!("Observations : {}\n", m.note));
    if let Some(url) = url {
        body.push_str(&format!("Dossier : {url}\n"));
    }
    body.push_str("\nMessage envoyé automatiquement par essbot.\n");
    (subject, body)
}

/// The daily digest text per recipient role (CPAM first): what is due, late or coming within
/// the week, project by project. Roles with nothing to report are left out.
pub fn digest(schedules: &[ProjectSchedule], today: NaiveDate) -> Vec<(Role, String)> {
    let mut by_role: BTreeMap<Role, Vec<String>> = BTreeMap::new();
    for s in schedules {
        for m in &s.milestones {
            if m.blocker.is_some_and(|b| b.prevents_payment()) {
                continue;
            }
            let Some(due) = m.due else { continue };
            let line = match m.state {
                State::EnRetard => format!("en retard depuis le {}", fr(due)),
                State::Du => format!("à traiter (échéance du {})", fr(due)),
                State::AVenir if (1..=7).contains(&days_between(today, due)) => {
                    format!("à venir le {}", fr(due))
                }
                _ => continue,
            };
            let amount = m
                .amount_cents
                .filter(|_| m.id.is_payment())
                .map(|c| format!(", {}", format_eur(c)))
                .unwrap_or_default();
            by_role.entry(m.recipient).or_default().push(format!(
                "- {} — {} ({}) : {line}{amount}",
                project_label(s),
                m.id,
                m.id.libelle()
            ));
        }
    }
    by_role
        .into_iter()
        .map(|(role, lines)| {
            let text = format!(
                "Échéances des ESS au {} pour : {}\n\n{}\n",
                fr(today),
                role.libelle(),
                lines.join("\n")
            );
            (role, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milestones::derive_tests::{Timeline, d};
    use crate::milestones::{EventKind, MilestoneId::*};

    fn links() -> DossierLinks {
        DossierLinks {
            lettre_intention: "https://ds.example/procedures/1001/dossiers/".into(),
            projet_sante: "https://ds.example/procedures/1002/dossiers".into(),
        }
    }

    /// AMO-1 due on 15/04/2026 (signature), PS-DUE on 12/07/2026.
    fn timeline() -> Timeline {
        Timeline::standard().add(EventKind::AmorcageContractSigned, d(2026, 4, 15))
    }

    fn plan(t: &Timeline, today: NaiveDate) -> Vec<PlannedAlert> {
        plan_alerts(&t.on(today), today, &DEFAULT_LEAD_DAYS, &links())
    }

    fn keys(alerts: &[PlannedAlert]) -> Vec<&str> {
        alerts.iter().map(|a| a.key.as_str()).collect()
    }

    #[test]
    fn upcoming_alerts_use_the_tightest_lead_window() {
        let t = timeline();
        assert!(plan(&t, d(2026, 3, 15)).is_empty()); // 31 days before AMO-1
        assert_eq!(
            keys(&plan(&t, d(2026, 3, 16))),
            ["1234/AMO-1/upcoming-30/2026-04-15"]
        );
        assert_eq!(
            keys(&plan(&t, d(2026, 4, 7))),
            ["1234/AMO-1/upcoming-30/2026-04-15"]
        );
        // 7 days before, or any later day if the daemon missed it.
        assert_eq!(
            keys(&plan(&t, d(2026, 4, 8))),
            ["1234/AMO-1/upcoming-7/2026-04-15"]
        );
        assert_eq!(
            keys(&plan(&t, d(2026, 4, 14))),
            ["1234/AMO-1/upcoming-7/2026-04-15"]
        );
        let a = &plan(&t, d(2026, 4, 8))[0];
        assert_eq!(a.recipient, Role::Cpam);
        assert_eq!(
            a.subject,
            "[ESS LI 1234] AMO-1 à venir : Crédit d'amorçage, première moitié (40 000,00 €)"
        );
        assert!(
            a.body.contains("Pour : CPAM de rattachement\n"),
            "{}",
            a.body
        );
        assert!(
            a.body.contains("échéance le 15/04/2026, dans 7 jours"),
            "{}",
            a.body
        );
        assert!(a.body.contains("Montant : 40 000,00 €\n"));
        assert!(
            a.body
                .contains("Calcul : première moitié du crédit d'amorçage")
        );
        assert!(
            a.body
                .contains("Dossier : https://ds.example/procedures/1001/dossiers/1234\n")
        );
    }

    #[test]
    fn due_overdue_weekly_and_done() {
        let t = timeline();
        assert_eq!(
            keys(&plan(&t, d(2026, 4, 15))),
            ["1234/AMO-1/due/2026-04-15"]
        );
        assert!(
            plan(&t, d(2026, 4, 15))[0]
                .body
                .contains("échéance aujourd'hui, 15/04/2026")
        );
        // Grace of 30 days, then late from 16/05: week 0, then week 1 from 23/05.
        assert_eq!(
            keys(&plan(&t, d(2026, 5, 15))),
            ["1234/AMO-1/due/2026-04-15"]
        );
        assert_eq!(
            keys(&plan(&t, d(2026, 5, 16))),
            ["1234/AMO-1/overdue-w0/2026-04-15"]
        );
        assert_eq!(
            keys(&plan(&t, d(2026, 5, 22))),
            ["1234/AMO-1/overdue-w0/2026-04-15"]
        );
        assert_eq!(
            keys(&plan(&t, d(2026, 5, 23))),
            ["1234/AMO-1/overdue-w1/2026-04-15"]
        );
        let paid = t.paid(Amo1, 4_000_000, d(2026, 5, 25));
        let alerts = plan(&paid, d(2026, 5, 25));
        assert_eq!(keys(&alerts), ["1234/AMO-1/done"]);
        assert!(alerts[0].body.contains("réalisé le 25/05/2026"));
        assert!(plan(&paid, d(2026, 6, 2)).is_empty()); // done more than a week ago
    }

    #[test]
    fn ars_gets_the_tacit_validation_and_the_ps_link() {
        let t = Timeline::standard().ps_filed(d(2026, 7, 1));
        let alerts = plan(&t, d(2026, 9, 1));
        let tacite = alerts
            .iter()
            .find(|a| a.milestone == PsTacite)
            .expect("alert");
        assert_eq!(tacite.recipient, Role::Ars);
        assert_eq!(tacite.kind, AlertKind::Due);
        assert!(
            tacite
                .body
                .contains("dernier jour pour une décision expresse")
        );
        assert_eq!(
            tacite.dossier_url.as_deref(),
            Some("https://ds.example/procedures/1002/dossiers/5678")
        );
        // PS-DUE was done on 01/07, more than a week before: no alert.
        assert!(alerts.iter().all(|a| a.milestone != PsDue));
    }

    #[test]
    fn blocked_payments_are_not_announced() {
        let t = Timeline::new()
            .add(EventKind::LiFiled, d(2026, 1, 12))
            .add(EventKind::AmorcageContractSigned, d(2026, 4, 15));
        assert!(plan(&t, d(2026, 4, 15)).is_empty());
    }

    #[test]
    fn the_18_month_check_alerts_the_ars_with_the_sums_to_recover() {
        let t = timeline()
            .paid(Amo1, 4_000_000, d(2026, 4, 20))
            .ps_filed(d(2026, 7, 1))
            .add(EventKind::PsValidated, d(2026, 8, 1))
            .paid(Amo2, 4_000_000, d(2026, 8, 10));
        let alerts = plan(&t, d(2027, 7, 13));
        let oper = alerts
            .iter()
            .find(|a| a.milestone == Oper18)
            .expect("alert");
        assert_eq!(oper.recipient, Role::Ars);
        assert_eq!(oper.key, "1234/OPER-18/overdue-w0/2027-07-12");
        assert!(
            oper.body
                .contains("Récupération : récupération de la totalité"),
            "{}",
            oper.body
        );
        assert!(oper.body.contains("= 80 000,00 €"), "{}", oper.body);
    }

    #[test]
    fn the_digest_groups_by_role() {
        let a = timeline().on(d(2026, 7, 10));
        let b = Timeline::standard()
            .ps_filed(d(2026, 5, 1))
            .on(d(2026, 7, 10));
        let digests = digest(&[a, b], d(2026, 7, 10));
        assert_eq!(digests.len(), 2);
        let (role, cpam) = &digests[0];
        assert_eq!(*role, Role::Cpam);
        assert!(cpam.starts_with("Échéances des ESS au 10/07/2026 pour : CPAM de rattachement"));
        assert!(cpam.contains("- LI 1234 — AMO-1 (Crédit d'amorçage, première moitié) : en retard depuis le 15/04/2026, 40 000,00 €"), "{cpam}");
        let (role, ars) = &digests[1];
        assert_eq!(*role, Role::Ars);
        assert!(
            ars.contains("- LI 1234 — PS-DUE (Dépôt du projet de santé) : à venir le 12/07/2026"),
            "{ars}"
        );
        // The PS was tacitly validated on 01/07: AMO-2 is due to the CPAM.
        assert!(cpam.contains("LI 1234 / PS 5678 — AMO-2"), "{cpam}");
    }
}
