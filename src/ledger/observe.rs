//! From the dossiers DS holds to the events the ledger lacks: pure, so that "re-running appends
//! nothing" and "a changed annotation appends one correction" are tested without a database.
//!
//! DS and the suivi annotations are the *automatic* sources. For each slot, what they say now
//! is compared with the latest automatic event of that slot; only a difference is appended
//! (a new value, a correction, or a retraction when DS no longer says anything). A manual event
//! recorded after the automatic one wins until DS itself changes again, and an automatic
//! retraction never hides a manual event.
//!
//! Where the annotations say less than an event needs, the defaults chosen are:
//! - An annotation names its own date where it has one; the FINESS number and the annual
//!   membership count carry none, so they take the day essbot saw the annotation change: the
//!   dossier's last annotation change in Europe/Paris, or today if that is later.
//! - « Nombre d'adhérents sur l'année » is the count of the contract year in which it was seen:
//!   it is effective from that contract year's start (the signature of the contrat de dotation
//!   or one of its anniversaries), or from the day it was seen before any contract.
//! - « Date de réception des justificatifs annuels » holds one date, overwritten each year: the
//!   date belongs to the contract year whose end (anniversary) is nearest, year 1 at least.
//!   Earlier years stay in the ledger when the date moves on (they are history, never
//!   retracted automatically); the same goes for the membership counts.
//! - The carrier is an association "on file" with an RNA number, or a SIRET whose INSEE legal
//!   form is an association (code 92xx) or unknown; the SIRET of a company does not count.
//! - A projet de santé or a lettre d'intention "classé sans suite" counts as refused, with
//!   that motivation: the project stops.
//! - When both the DS decision and a suivi annotation give the PS decision, the annotation wins;
//!   when both validation and refusal dates are filled, the later one wins (the refusal on a tie).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Paris;

use crate::ds::model::{Champ, ChampValue, Dossier, DossierState};
use crate::milestones::{
    Event, EventKind, EventSlot, EventSource, SocleScope, add_months, format_date_fr as fr,
};
use crate::rules::{ResolvedMapping, extract_lettre};

/// Who automatic events are recorded by.
pub const AUTHOR: &str = "essbot";

/// One project's dossiers as stored: its lettre d'intention and, once linked, its projet de
/// santé, each with the mapping of its démarche.
#[derive(Debug, Clone, Copy)]
pub struct ProjectDossiers<'a> {
    pub li: &'a Dossier,
    pub li_mapping: &'a ResolvedMapping,
    pub ps: Option<(&'a Dossier, &'a ResolvedMapping)>,
}

/// What [`observe`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The events to append, in order.
    pub append: Vec<Event>,
    /// Annotations that could not be read (French), for the cycle report.
    pub warnings: Vec<String>,
}

/// The slots DS and the suivi annotations fill one value at a time.
fn managed(slot: &EventSlot) -> bool {
    matches!(
        slot,
        EventSlot::LiFiled
            | EventSlot::LiDecision
            | EventSlot::PsFiled
            | EventSlot::PsDecision
            | EventSlot::Association
            | EventSlot::AmorcageContract
            | EventSlot::Finess
            | EventSlot::DotationContract
            | EventSlot::MissionSocle {
                scope: SocleScope::PremiereActivite
            }
    )
}

fn is_automatic(e: &Event) -> bool {
    matches!(e.source, EventSource::Ds | EventSource::Annotation)
}

/// The latest event per slot among `events` matching `keep`: the latest recorded wins, ties go
/// to the later one (the rule of [`crate::milestones::derive`]).
fn latest(events: &[Event], keep: impl Fn(&Event) -> bool) -> BTreeMap<EventSlot, &Event> {
    let mut out: BTreeMap<EventSlot, &Event> = BTreeMap::new();
    for e in events.iter().filter(|e| keep(e)) {
        match out.get(&e.slot()) {
            Some(prev) if prev.recorded_at > e.recorded_at => {}
            _ => {
                out.insert(e.slot(), e);
            }
        }
    }
    out
}

/// The latest automatic event among those `pick` accepts (series: justificatifs, membership).
fn latest_where(events: &[Event], pick: impl Fn(&Event) -> bool) -> Option<&Event> {
    events
        .iter()
        .filter(|e| is_automatic(e) && pick(e))
        .fold(None, |best: Option<&Event>, e| match best {
            Some(b) if b.recorded_at > e.recorded_at => Some(b),
            _ => Some(e),
        })
}

/// A suivi annotation found on one of the project's dossiers.
struct Found<'a> {
    champ: &'a Champ,
    label: &'a str,
    dossier: &'a Dossier,
}

struct Ctx<'a> {
    p: ProjectDossiers<'a>,
    today: NaiveDate,
    now: DateTime<Utc>,
    warnings: Vec<String>,
}

impl<'a> Ctx<'a> {
    fn event(
        &self,
        kind: EventKind,
        effective: NaiveDate,
        source: EventSource,
        reason: String,
    ) -> Event {
        Event {
            project: self.p.li.number,
            kind,
            effective,
            source,
            author: AUTHOR.into(),
            recorded_at: self.now,
            reason: Some(reason),
        }
    }

    /// The annotation mapped to `key`, non-empty, from the PS dossier first, then the LI.
    fn suivi(&self, key: &str) -> Option<Found<'a>> {
        let ps = self.p.ps;
        let candidates = ps
            .into_iter()
            .chain(std::iter::once((self.p.li, self.p.li_mapping)));
        for (dossier, mapping) in candidates {
            let Some(resolved) = mapping.suivi.get(key) else {
                continue;
            };
            let Some(champ) = dossier.annotation(&resolved.descriptor_id) else {
                continue;
            };
            if !is_empty(&champ.value) {
                return Some(Found {
                    champ,
                    label: &resolved.label,
                    dossier,
                });
            }
        }
        None
    }

    fn unreadable(&mut self, f: &Found<'_>, expected: &str) {
        self.warnings.push(format!(
            "annotation « {} » du dossier n° {} illisible ({} attendu(e)) : ignorée",
            f.label, f.dossier.number, expected
        ));
    }

    fn suivi_date(&mut self, key: &str) -> Option<(NaiveDate, String)> {
        let f = self.suivi(key)?;
        match date_of(&f.champ.value) {
            Some(d) => Some((d, from_annotation(&f))),
            None => {
                self.unreadable(&f, "une date");
                None
            }
        }
    }

    /// The day essbot saw `dossier`'s annotations as they are: their last change, or today.
    fn seen_on(&self, dossier: &Dossier) -> NaiveDate {
        dossier
            .date_derniere_modification_annotations
            .with_timezone(&Paris)
            .date_naive()
            .min(self.today)
    }
}

fn from_annotation(f: &Found<'_>) -> String {
    format!(
        "annotation « {} » du dossier n° {}",
        f.label, f.dossier.number
    )
}

fn is_empty(v: &ChampValue) -> bool {
    match v {
        ChampValue::Text(s) | ChampValue::Integer(s) | ChampValue::DropDown(s) => {
            s.as_deref().is_none_or(|s| s.trim().is_empty())
        }
        ChampValue::Date(d) => d.is_none(),
        ChampValue::Datetime(d) => d.is_none(),
        ChampValue::Decimal(x) => x.is_none(),
        _ => false,
    }
}

fn date_of(v: &ChampValue) -> Option<NaiveDate> {
    match v {
        ChampValue::Date(Some(d)) => Some(*d),
        ChampValue::Datetime(Some(t)) => Some(t.with_timezone(&Paris).date_naive()),
        ChampValue::Text(Some(s)) => {
            let s = s.trim();
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
                .ok()
        }
        _ => None,
    }
}

fn count_of(v: &ChampValue) -> Option<u32> {
    match v {
        ChampValue::Integer(Some(s)) | ChampValue::Text(Some(s)) => s.trim().parse().ok(),
        ChampValue::Decimal(Some(x))
            if x.fract() == 0.0 && *x >= 0.0 && *x <= f64::from(u32::MAX) =>
        {
            // Exact: a whole number within range.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(*x as u32)
        }
        _ => None,
    }
}

fn paris(t: &crate::ds::model::Timestamp) -> NaiveDate {
    t.with_timezone(&Paris).date_naive()
}

/// The day a dossier was filed, in Europe/Paris.
fn paris_date(dossier: &Dossier) -> NaiveDate {
    paris(&dossier.date_depot)
}

/// Whole years from `start` to the last anniversary on or before `date`.
fn years_elapsed(start: NaiveDate, date: NaiveDate) -> u32 {
    let mut y = 0;
    while y < 200 && add_months(start, (y + 1) * 12) <= date {
        y += 1;
    }
    y
}

/// The contract year whose justificatifs arrive on `received`: the one whose end (the
/// `year`-th anniversary of `signature`) is nearest, 1 at least.
pub fn justificatifs_year(signature: Option<NaiveDate>, received: NaiveDate) -> u32 {
    let Some(s) = signature.filter(|s| *s < received) else {
        return 1;
    };
    let k = years_elapsed(s, received);
    let before = add_months(s, k * 12);
    let after = add_months(s, (k + 1) * 12);
    let year = if (received - before) <= (after - received) {
        k
    } else {
        k + 1
    };
    year.max(1)
}

/// The start of the contract year `seen` falls in, or `seen` itself before the contract.
pub fn contract_year_start(signature: Option<NaiveDate>, seen: NaiveDate) -> NaiveDate {
    match signature.filter(|s| *s <= seen) {
        Some(s) => add_months(s, years_elapsed(s, seen) * 12),
        None => seen,
    }
}

/// The association on file according to the lettre d'intention's RNA and SIRET champs, or
/// `None` when neither champ is mapped (then nothing is claimed either way).
fn association(p: &ProjectDossiers<'_>) -> Option<(Option<String>, Option<String>)> {
    let li = extract_lettre(p.li, p.li_mapping);
    let mapped = p.li_mapping.fields.contains_key("association")
        || p.li_mapping.fields.contains_key("association_siret");
    if !mapped {
        return None;
    }
    let mut rna = None;
    let mut siret = None;
    for a in [li.association.value(), li.association_siret.value()]
        .into_iter()
        .flatten()
    {
        if rna.is_none() {
            rna = a.rna.clone().filter(|s| !s.trim().is_empty());
        }
        let is_association = a
            .forme_juridique_code
            .as_deref()
            .is_none_or(|c| c.starts_with("92"));
        if siret.is_none() && is_association {
            siret = a.siret.clone().filter(|s| !s.trim().is_empty());
        }
    }
    Some((rna, siret))
}

/// The events to append for one project, given what the ledger already holds for it
/// (`existing`, in append order), today in Europe/Paris and the instant to stamp them with.
pub fn observe(
    p: ProjectDossiers<'_>,
    existing: &[Event],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Observed {
    let mut cx = Ctx {
        p,
        today,
        now,
        warnings: Vec::new(),
    };
    let li = p.li;
    let mut desired: BTreeMap<EventSlot, Event> = BTreeMap::new();
    let mut put = |e: Event| {
        desired.insert(e.slot(), e);
    };

    // From DS: the lettre d'intention.
    let d0 = paris_date(li);
    put(cx.event(
        EventKind::LiFiled,
        d0,
        EventSource::Ds,
        format!("dépôt de la lettre d'intention n° {} sur DS", li.number),
    ));
    if let Some(decided) = li.date_traitement.as_ref().map(paris) {
        let motivation = li.motivation.clone().unwrap_or_default();
        match li.state {
            DossierState::Accepte => put(cx.event(
                EventKind::LiAccepted,
                decided,
                EventSource::Ds,
                format!("lettre d'intention n° {} acceptée sur DS", li.number),
            )),
            DossierState::Refuse => put(cx.event(
                EventKind::LiRefused { motivation },
                decided,
                EventSource::Ds,
                format!("lettre d'intention n° {} refusée sur DS", li.number),
            )),
            DossierState::SansSuite => put(cx.event(
                EventKind::LiRefused {
                    motivation: sans_suite(&motivation),
                },
                decided,
                EventSource::Ds,
                format!(
                    "lettre d'intention n° {} classée sans suite sur DS",
                    li.number
                ),
            )),
            DossierState::EnConstruction | DossierState::EnInstruction => {}
        }
    }
    if let Some((rna, siret)) = association(&p) {
        let reason = match (&rna, &siret) {
            (None, None) => format!(
                "aucun RNA ni SIRET d'association sur la lettre d'intention n° {}",
                li.number
            ),
            _ => format!(
                "RNA / SIRET du porteur lus sur la lettre d'intention n° {}",
                li.number
            ),
        };
        put(cx.event(
            EventKind::AssociationOnFile { rna, siret },
            d0,
            EventSource::Ds,
            reason,
        ));
    }

    // From DS: the projet de santé.
    if let Some((ps, _)) = p.ps {
        put(cx.event(
            EventKind::PsFiled {
                dossier: Some(ps.number),
            },
            paris_date(ps),
            EventSource::Ds,
            format!(
                "dépôt du projet de santé n° {} sur DS, lié à la lettre d'intention n° {}",
                ps.number, li.number
            ),
        ));
        if let Some(decided) = ps.date_traitement.as_ref().map(paris) {
            let motivation = ps.motivation.clone().unwrap_or_default();
            let decision = match ps.state {
                DossierState::Accepte => Some((EventKind::PsValidated, "accepté")),
                DossierState::Refuse => Some((EventKind::PsRefused { motivation }, "refusé")),
                DossierState::SansSuite => Some((
                    EventKind::PsRefused {
                        motivation: sans_suite(&motivation),
                    },
                    "classé sans suite",
                )),
                DossierState::EnConstruction | DossierState::EnInstruction => None,
            };
            if let Some((kind, how)) = decision {
                put(cx.event(
                    kind,
                    decided,
                    EventSource::Ds,
                    format!("projet de santé n° {} {how} sur DS", ps.number),
                ));
            }
        }
    }

    // From the suivi annotations.
    if let Some((d, why)) = cx.suivi_date("signature_contrat_amorcage") {
        put(cx.event(
            EventKind::AmorcageContractSigned,
            d,
            EventSource::Annotation,
            why,
        ));
    }
    let validated = cx.suivi_date("validation_projet_sante");
    let refused = cx.suivi_date("refus_projet_sante");
    let refusal_motivation =
        p.ps.and_then(|(ps, _)| ps.motivation.clone())
            .unwrap_or_default();
    match (validated, refused) {
        (Some((v, why)), Some((r, _))) if v > r => {
            put(cx.event(EventKind::PsValidated, v, EventSource::Annotation, why));
        }
        (_, Some((r, why))) => put(cx.event(
            EventKind::PsRefused {
                motivation: refusal_motivation,
            },
            r,
            EventSource::Annotation,
            why,
        )),
        (Some((v, why)), None) => {
            put(cx.event(EventKind::PsValidated, v, EventSource::Annotation, why));
        }
        (None, None) => {}
    }
    if let Some(f) = cx.suivi("numero_finess") {
        let number = match &f.champ.value {
            ChampValue::Text(Some(s)) | ChampValue::Integer(Some(s)) => Some(s.trim().to_owned()),
            _ => None,
        };
        match number {
            Some(finess) => {
                let seen = cx.seen_on(f.dossier);
                let why = from_annotation(&f);
                put(cx.event(
                    EventKind::FinessReceived { finess },
                    seen,
                    EventSource::Annotation,
                    why,
                ));
            }
            None => cx.unreadable(&f, "un numéro"),
        }
    }
    if let Some((d, why)) = cx.suivi_date("signature_contrat_dotation") {
        put(cx.event(
            EventKind::DotationContractSigned,
            d,
            EventSource::Annotation,
            why,
        ));
    }
    if let Some((d, why)) = cx.suivi_date("deploiement_mission_socle") {
        put(cx.event(
            EventKind::MissionSocleDeployed {
                scope: SocleScope::PremiereActivite,
            },
            d,
            EventSource::Annotation,
            why,
        ));
    }

    let mut out = Observed::default();
    reconcile_slots(&mut cx, existing, desired.clone(), &mut out.append);

    // The series: one new point when the annotation's value moves.
    let overall = latest(existing, |_| true);
    let signature = desired
        .get(&EventSlot::DotationContract)
        .map(|e| e.effective)
        .or_else(|| match overall.get(&EventSlot::DotationContract) {
            Some(e) if matches!(e.kind, EventKind::DotationContractSigned) => Some(e.effective),
            _ => None,
        });
    if let Some((received, why)) = cx.suivi_date("justificatifs_recus") {
        let last = latest_where(existing, |e| {
            matches!(e.kind, EventKind::JustificatifsReceived { .. })
        });
        if last.is_none_or(|e| e.effective != received) {
            let year = justificatifs_year(signature, received);
            let why = format!("{why} (justificatifs de l'année {year} du contrat)");
            out.append.push(cx.event(
                EventKind::JustificatifsReceived { year },
                received,
                EventSource::Annotation,
                why,
            ));
        }
    }
    if let Some(f) = cx.suivi("nb_adherents_annuel") {
        match count_of(&f.champ.value) {
            Some(members) => {
                let last = latest_where(existing, |e| {
                    matches!(e.kind, EventKind::MembershipCount { .. })
                });
                let changed = last.is_none_or(|e| {
                    !matches!(e.kind, EventKind::MembershipCount { members: m } if m == members)
                });
                if changed {
                    let from = contract_year_start(signature, cx.seen_on(f.dossier));
                    let why = format!(
                        "{} ({members} adhérents, effectif à compter du {})",
                        from_annotation(&f),
                        fr(from)
                    );
                    out.append.push(cx.event(
                        EventKind::MembershipCount { members },
                        from,
                        EventSource::Annotation,
                        why,
                    ));
                }
            }
            None => cx.unreadable(&f, "un nombre entier"),
        }
    }
    out.warnings = cx.warnings;
    out
}

fn sans_suite(motivation: &str) -> String {
    if motivation.trim().is_empty() {
        "dossier classé sans suite".into()
    } else {
        format!("dossier classé sans suite : {}", motivation.trim())
    }
}

/// Appends what differs between `desired` (what DS says now) and the latest automatic event of
/// each managed slot.
fn reconcile_slots(
    cx: &mut Ctx<'_>,
    existing: &[Event],
    mut desired: BTreeMap<EventSlot, Event>,
    out: &mut Vec<Event>,
) {
    let auto = latest(existing, is_automatic);
    let overall = latest(existing, |_| true);
    let mut slots: Vec<EventSlot> = desired.keys().copied().collect();
    slots.extend(auto.keys().copied().filter(managed));
    slots.sort();
    slots.dedup();
    for slot in slots {
        let previous = auto.get(&slot).copied();
        match desired.remove(&slot) {
            Some(mut wanted) => {
                // The FINESS number carries no date of its own: its date is the day it was
                // seen, which moves with every later annotation change; only the number counts.
                let dated = slot != EventSlot::Finess;
                let same = previous.is_some_and(|p| {
                    p.kind == wanted.kind
                        && (!dated || p.effective == wanted.effective)
                        && p.source == wanted.source
                });
                if same {
                    continue;
                }
                if let Some(p) = previous.filter(|p| !matches!(p.kind, EventKind::Retracted { .. }))
                {
                    wanted.reason = Some(format!(
                        "correction : {} (précédemment : {})",
                        wanted.reason.unwrap_or_default(),
                        summary(p)
                    ));
                }
                out.push(wanted);
            }
            None => {
                let Some(p) = previous else { continue };
                if matches!(p.kind, EventKind::Retracted { .. }) {
                    continue;
                }
                // Never hide what a person recorded after the automatic event.
                if overall.get(&slot).is_some_and(|o| !is_automatic(o)) {
                    continue;
                }
                let reason = format!(
                    "retrait : DS n'indique plus « {} » (dossier n° {})",
                    summary(p),
                    cx.p.li.number
                );
                let effective = cx.today;
                out.push(cx.event(EventKind::Retracted { slot }, effective, p.source, reason));
            }
        }
    }
}

/// An event in a few words, for correction and retraction reasons.
fn summary(e: &Event) -> String {
    let what = match &e.kind {
        EventKind::LiFiled => "dépôt de la lettre d'intention".to_owned(),
        EventKind::LiAccepted => "lettre d'intention acceptée".to_owned(),
        EventKind::LiRefused { .. } => "lettre d'intention refusée".to_owned(),
        EventKind::AmorcageContractSigned => "contrat de crédit d'amorçage signé".to_owned(),
        EventKind::PsFiled { dossier } => match dossier {
            Some(n) => format!("projet de santé n° {n} déposé"),
            None => "projet de santé déposé".to_owned(),
        },
        EventKind::PsValidated => "projet de santé validé".to_owned(),
        EventKind::PsRefused { .. } => "projet de santé refusé".to_owned(),
        EventKind::FinessReceived { finess } => format!("numéro FINESS {finess}"),
        EventKind::DotationContractSigned => "contrat de dotation annuelle signé".to_owned(),
        EventKind::MissionSocleDeployed { .. } => "mission socle déployée".to_owned(),
        EventKind::JustificatifsReceived { year } => {
            format!("justificatifs de l'année {year} reçus")
        }
        EventKind::MembershipCount { members } => format!("{members} adhérents"),
        EventKind::AssociationOnFile { rna, siret } => format!(
            "association RNA {} / SIRET {}",
            rna.as_deref().unwrap_or("—"),
            siret.as_deref().unwrap_or("—")
        ),
        EventKind::PaymentRecorded { milestone, .. } => format!("versement {milestone}"),
        EventKind::TargetMet { milestone } => format!("objectif {milestone} atteint"),
        EventKind::Retracted { .. } => "retrait".to_owned(),
    };
    format!("{what} le {}", fr(e.effective))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn justificatifs_go_to_the_nearest_anniversary() {
        let s = Some(d(2026, 7, 15));
        assert_eq!(justificatifs_year(s, d(2026, 11, 3)), 1);
        assert_eq!(justificatifs_year(s, d(2027, 6, 20)), 1);
        assert_eq!(justificatifs_year(s, d(2027, 9, 1)), 1);
        assert_eq!(justificatifs_year(s, d(2028, 2, 1)), 2);
        assert_eq!(justificatifs_year(s, d(2028, 7, 10)), 2);
        assert_eq!(justificatifs_year(None, d(2028, 7, 10)), 1);
        assert_eq!(justificatifs_year(s, d(2026, 1, 1)), 1);
    }

    #[test]
    fn membership_counts_start_with_their_contract_year() {
        let s = Some(d(2026, 7, 15));
        assert_eq!(contract_year_start(s, d(2026, 11, 25)), d(2026, 7, 15));
        assert_eq!(contract_year_start(s, d(2027, 7, 15)), d(2027, 7, 15));
        assert_eq!(contract_year_start(s, d(2028, 7, 14)), d(2027, 7, 15));
        assert_eq!(contract_year_start(s, d(2026, 7, 1)), d(2026, 7, 1));
        assert_eq!(contract_year_start(None, d(2026, 7, 1)), d(2026, 7, 1));
    }
}
