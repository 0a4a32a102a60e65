//! The rules of the projet de santé (rules.md, "Rules for the projet de santé").

use chrono::{Months, NaiveDate};

use super::extract::{Gouvernance, ProjetSante, Read};
use super::lettre::{gouvernance, meets, needed, ratio_text, too_short, unread};
use super::text::{contains_words, count, fr_date, join_et, normalize};
use super::{Finding, RuleContext, RuleId, Severity};
use crate::ds::model::DossierState;

use RuleId::*;

/// Months a projet de santé may come after its lettre d'intention (VI.B.3).
pub(super) const DELAI_MOIS: u32 = 6;

/// Applies every PS rule.
pub(super) fn evaluate(ps: &ProjetSante, ctx: &RuleContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    link_and_delay(ps, ctx, &mut out);
    contenu(ps, ctx, &mut out);
    indicateurs(ps, ctx, &mut out);
    adh_01(ps, &mut out);
    if let Read::Ok { champ, value } = &ps.gouvernance {
        gouvernance(PsGouv01, champ, value, &mut out);
    }
    out
}

/// Last day a projet de santé may be filed: the same day `DELAI_MOIS` calendar months later,
/// clamped to the end of a shorter month (31 August → 28 or 29 February), inclusive.
pub(super) fn echeance(date_depot_li: NaiveDate) -> NaiveDate {
    date_depot_li
        .checked_add_months(Months::new(DELAI_MOIS))
        .unwrap_or(NaiveDate::MAX)
}

/// PS-LINK-01 and PS-DEL-01.
fn link_and_delay(ps: &ProjetSante, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Read::Ok { champ, value: lien } = &ps.lien_lettre_intention else {
        out.extend(unread(
            PsLink01,
            &ps.lien_lettre_intention,
            true,
            "le lien vers la lettre d'intention",
        ));
        return;
    };
    let shown = Some(lien.numero.to_string());
    let Some(li) = ctx.projets.get(lien.numero) else {
        out.push(
            Finding::new(
                PsLink01,
                Severity::Bloquant,
                format!(
                    "la lettre d'intention n° {} n'est pas connue d'essbot (absente des démarches suivies) ; elle doit être connue et acceptée",
                    lien.numero
                ),
            )
            .champ(champ, shown.clone()),
        );
        out.push(
            Finding::new(
                PsDel01,
                Severity::Info,
                "délai de dépôt non vérifiable : lettre d'intention inconnue",
            )
            .champ(champ, shown),
        );
        return;
    };
    if li.etat == DossierState::Accepte {
        out.push(
            Finding::new(
                PsLink01,
                Severity::Info,
                format!(
                    "lettre d'intention n° {} acceptée, déposée le {}",
                    li.numero,
                    fr_date(li.date_depot)
                ),
            )
            .champ(champ, shown.clone()),
        );
    } else {
        out.push(
            Finding::new(
                PsLink01,
                Severity::Bloquant,
                format!(
                    "la lettre d'intention n° {} est {} ; elle doit être acceptée",
                    li.numero,
                    li.etat.libelle()
                ),
            )
            .champ(champ, shown.clone()),
        );
    }
    let limite = echeance(li.date_depot);
    if ps.date_depot > limite {
        out.push(
            Finding::new(
                PsDel01,
                Severity::Bloquant,
                format!(
                    "projet de santé déposé le {}, plus de {DELAI_MOIS} mois après la lettre d'intention du {} (échéance le {})",
                    fr_date(ps.date_depot),
                    fr_date(li.date_depot),
                    fr_date(limite)
                ),
            )
            .champ(champ, shown),
        );
    } else {
        out.push(
            Finding::new(
                PsDel01,
                Severity::Info,
                format!(
                    "projet de santé déposé le {}, dans les {DELAI_MOIS} mois de la lettre d'intention du {} (échéance le {})",
                    fr_date(ps.date_depot),
                    fr_date(li.date_depot),
                    fr_date(limite)
                ),
            )
            .champ(champ, shown),
        );
    }
}

fn text_item(rule: RuleId, read: &Read<String>, min: usize, what: &str, out: &mut Vec<Finding>) {
    match read {
        Read::Ok { champ, value } => out.extend(too_short(rule, champ, value, min, what)),
        other => out.extend(unread(rule, other, true, what)),
    }
}

/// PS-CONT-01 and PS-IND-01: the mandatory content.
fn contenu(ps: &ProjetSante, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let min = ctx.config.min_text_length;
    text_item(
        PsCont01,
        &ps.missions_actions,
        min,
        "le détail des missions et des actions",
        out,
    );
    out.extend(unread(
        PsCont01,
        &ps.indicateurs,
        true,
        "les indicateurs de suivi et d'évaluation",
    ));
    text_item(
        PsCont01,
        &ps.modalites_actualisation,
        min,
        "les modalités d'actualisation du projet",
        out,
    );
    text_item(
        PsCont01,
        &ps.diagnostic_territorial,
        min,
        "le diagnostic territorial",
        out,
    );
    match &ps.gouvernance {
        Read::Ok {
            champ,
            value: Gouvernance::Texte(t),
        } => {
            out.extend(too_short(PsCont01, champ, t, min, "la gouvernance"));
        }
        Read::Ok { .. } => {}
        other => out.extend(unread(PsCont01, other, true, "la gouvernance")),
    }
    out.extend(unread(
        PsCont01,
        &ps.plan_deploiement,
        true,
        "le document de déploiement",
    ));
    // A qualitative indicator may be short ("Satisfaction des adresseurs"): half the minimum.
    text_item(
        PsInd01,
        &ps.indicateur_qualitatif,
        min.div_ceil(2),
        "au moins un indicateur qualitatif",
        out,
    );
}

/// The five national indicators (VI.E), each with the words that recognise it.
const NATIONAUX: [(&str, &[&str]); 5] = [
    (
        "nombre de professionnels de santé adresseurs, dont médecins traitants",
        &[
            "adresseur",
            "adresseurs",
            "medecins traitants",
            "medecin traitant",
            "adressant",
            "adressants",
        ],
    ),
    (
        "nombre de patients pris en charge",
        &[
            "patients pris en charge",
            "patient pris en charge",
            "patients",
            "file active",
        ],
    ),
    (
        "nombre de téléexpertises réalisées",
        &[
            "teleexpertise",
            "teleexpertises",
            "tele expertise",
            "tele expertises",
        ],
    ),
    (
        "nombre de membres proposant des consultations avancées",
        &[],
    ),
    ("nombre de consultations avancées réalisées", &[]),
];

/// PS-IND-02: the five national indicators.
fn indicateurs(ps: &ProjetSante, _ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Read::Ok { champ, value } = &ps.indicateurs else {
        return; // PS-CONT-01 already reports it.
    };
    let items: Vec<String> = value.iter().map(|v| normalize(v)).collect();
    let avancee = |n: &str| {
        ["consultation avancee", "consultations avancees"]
            .iter()
            .any(|w| contains_words(n, w))
    };
    let membre = |n: &str| {
        ["membre", "membres", "proposant", "medecins proposant"]
            .iter()
            .any(|w| contains_words(n, w))
    };
    let found = |i: usize| -> bool {
        items.iter().any(|n| match i {
            3 => avancee(n) && membre(n),
            4 => avancee(n) && !membre(n),
            _ => NATIONAUX[i].1.iter().any(|w| contains_words(n, w)) && !avancee(n),
        })
    };
    let missing: Vec<String> = (0..NATIONAUX.len())
        .filter(|i| !found(*i))
        .map(|i| NATIONAUX[i].0.to_owned())
        .collect();
    if !missing.is_empty() {
        out.push(
            Finding::new(
                PsInd02,
                Severity::Avertissement,
                format!(
                    "{} non repris : {}",
                    if missing.len() > 1 {
                        "indicateurs nationaux"
                    } else {
                        "indicateur national"
                    },
                    join_et(&missing)
                ),
            )
            .champ(champ, None),
        );
    }
}

/// PS-ADH-01: the LI's ratio on the PS figures, with the way to 30 % and 50 %.
fn adh_01(ps: &ProjetSante, out: &mut Vec<Finding>) {
    out.extend(unread(
        PsAdh01,
        &ps.nb_adherents,
        true,
        "le nombre de médecins adhérents",
    ));
    out.extend(unread(
        PsAdh01,
        &ps.nb_liberaux_specialite,
        true,
        "le nombre de médecins libéraux de la spécialité sur le territoire",
    ));
    let (
        Read::Ok {
            champ: ca,
            value: adh,
        },
        Read::Ok {
            champ: cl,
            value: lib,
        },
    ) = (&ps.nb_adherents, &ps.nb_liberaux_specialite)
    else {
        return;
    };
    let (adh, lib) = (*adh, *lib);
    let ev = |f: Finding| {
        f.champ(ca, Some(adh.to_string()))
            .champ(cl, Some(lib.to_string()))
    };
    if lib == 0 {
        out.push(ev(Finding::new(
            PsAdh01,
            Severity::Bloquant,
            "aucun médecin libéral de la spécialité déclaré sur le territoire : le taux d'adhésion ne peut pas être calculé",
        )));
        return;
    }
    if !meets(adh, lib, 10) {
        out.push(ev(Finding::new(
            PsAdh01,
            Severity::Bloquant,
            format!(
                "{} ; le cahier des charges exige au moins 10 % ({} au moins)",
                ratio_text(adh, lib, true),
                count(needed(lib, 10) as usize, "adhérent", "adhérents")
            ),
        )));
        return;
    }
    let steps: Vec<String> = [30, 50]
        .into_iter()
        .filter(|p| !meets(adh, lib, *p))
        .map(|p| {
            let n = needed(lib, p);
            format!(
                "{p} % : {} requis (encore {})",
                count(n as usize, "adhérent", "adhérents"),
                n - u64::from(adh)
            )
        })
        .collect();
    let reached = match steps.len() {
        0 => "seuils de 10 %, 30 % et 50 % atteints".to_owned(),
        1 => "seuils de 10 % et 30 % atteints".to_owned(),
        _ => "seuil de 10 % atteint".to_owned(),
    };
    let tail = if steps.is_empty() {
        String::new()
    } else {
        format!(" ; {}", steps.join(" ; "))
    };
    out.push(ev(Finding::new(
        PsAdh01,
        Severity::Info,
        format!("{} ; {reached}{tail}", ratio_text(adh, lib, false)),
    )));
}
