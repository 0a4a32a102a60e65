//! The mandatory content: LI-CONT-01 (the six mentions of the lettre d'intention) and
//! PS-CONT-01 (the parts of the projet de santé).

use super::common::{too_short, unread};
use super::extract::{Choix, Contenu, Gouvernance, LettreIntention, Porteurs, ProjetSante, Read};
use super::text::{normalize, quote};
use super::vocab::GENERALISTES;
use super::{Finding, RuleContext, RuleId, Severity};

use RuleId::*;

/// LI-CONT-01: the porteurs, the territory, the specialty, the cooperations, the governance and
/// the actions are stated.
pub(super) fn li_cont_01(li: &LettreIntention, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let min = ctx.config.min_text_length;
    porteurs(li, ctx, out);
    out.extend(unread(
        LiCont01,
        &li.specialites,
        true,
        "la spécialité concernée",
    ));
    if !li.territoire_departements.is_ok() && !li.territoire_region.is_ok() {
        const WHAT: &str = "le territoire couvert (départements ou région)";
        out.extend(match &li.territoire_departements {
            Read::NotMapped { .. } => unread(LiCont01, &li.territoire_region, true, WHAT),
            d => unread(LiCont01, d, true, WHAT),
        });
    }
    either(
        out,
        &li.cooperations,
        &li.cooperations_precisions,
        min,
        "les coopérations prévues",
    );
    match &li.gouvernance {
        Read::Ok {
            champ,
            value: Gouvernance::Texte(t),
        } => out.extend(too_short(
            LiCont01,
            champ,
            t,
            min,
            "la gouvernance envisagée",
        )),
        Read::Ok { .. } => {}
        other => out.extend(unread(LiCont01, other, true, "la gouvernance envisagée")),
    }
    either(
        out,
        &li.actions_mission_socle,
        &li.actions,
        min,
        "les actions prévues",
    );
}

fn porteurs(li: &LettreIntention, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    const WHAT: &str = "l'identité des porteurs du projet";
    match &li.porteurs {
        Read::Ok {
            champ,
            value: Porteurs::Texte(t),
        } => {
            out.extend(too_short(
                LiCont01,
                champ,
                t,
                ctx.config.min_text_length.min(5),
                WHAT,
            ));
            // Porteurs in prose are read for what they say, as rows are.
            let n = normalize(t);
            if let Some(words) = GENERALISTES.find(&n) {
                out.push(
                    Finding::new(
                        LiCont01,
                        Severity::Avertissement,
                        format!("les porteurs décrits mentionnent « {words} » ; une ESS réunit des médecins spécialistes, hors médecine générale"),
                    )
                    .champ(champ, Some(t.clone())),
                );
            }
        }
        Read::Ok {
            champ,
            value: Porteurs::Lignes(rows),
        } => {
            if rows.iter().all(|p| p.nom.is_none()) {
                out.push(
                    Finding::new(
                        LiCont01,
                        Severity::Bloquant,
                        format!("aucun porteur n'est nommé ; le cahier des charges exige {WHAT}"),
                    )
                    .champ(champ, None)
                    .a_completer(WHAT),
                );
            }
            for (i, p) in rows.iter().enumerate() {
                let who = p.nom.clone().unwrap_or_else(|| format!("ligne {}", i + 1));
                if let Some(rpps) = &p.rpps {
                    let digits: String = rpps.chars().filter(|c| !c.is_whitespace()).collect();
                    if digits.len() != 11 || !digits.chars().all(|c| c.is_ascii_digit()) {
                        out.push(
                            Finding::new(
                                LiCont01,
                                Severity::Avertissement,
                                format!(
                                    "numéro RPPS {} du porteur {} : 11 chiffres attendus",
                                    quote(rpps),
                                    quote(&who)
                                ),
                            )
                            .champ(champ, Some(rpps.clone())),
                        );
                    }
                }
                if let Some(s) = &p.specialite
                    && ctx
                        .reference
                        .specialites_in(s)
                        .groups
                        .iter()
                        .any(|g| g.exclue)
                {
                    out.push(
                        Finding::new(
                            LiCont01,
                            Severity::Avertissement,
                            format!("le porteur {} est déclaré en {} ; une ESS réunit des médecins spécialistes, hors médecine générale", quote(&who), quote(s)),
                        )
                        .champ(champ, Some(s.clone())),
                    );
                }
            }
        }
        other => out.extend(unread(LiCont01, other, true, WHAT)),
    }
}

/// A mention given by a list champ and/or a text champ: stated when the list has an item or
/// the text is long enough; otherwise one finding about the most telling of the two.
fn either(out: &mut Vec<Finding>, list: &Read<Choix>, text: &Read<String>, min: usize, what: &str) {
    if list.is_ok() {
        return;
    }
    let worst = match (list, text) {
        (_, Read::Ok { champ, value }) => {
            out.extend(too_short(LiCont01, champ, value, min, what));
            return;
        }
        (Read::Unreadable { .. }, _) => unread(LiCont01, list, true, what),
        (_, Read::Unreadable { .. }) => unread(LiCont01, text, true, what),
        (Read::Missing { .. }, _) => unread(LiCont01, list, true, what),
        (Read::NotMapped { .. }, Read::NotMapped { .. }) => unread(LiCont01, list, true, what),
        _ => unread(LiCont01, text, true, what),
    };
    out.extend(worst);
}

/// A text the cahier requires: present and long enough.
pub(super) fn text_item(
    rule: RuleId,
    read: &Read<String>,
    min: usize,
    what: &str,
    out: &mut Vec<Finding>,
) {
    match read {
        Read::Ok { champ, value } => out.extend(too_short(rule, champ, value, min, what)),
        other => out.extend(unread(rule, other, true, what)),
    }
}

/// A part of the projet de santé: a document attached is there; a text must be long enough.
fn contenu_item(
    rule: RuleId,
    read: &Read<Contenu>,
    min: usize,
    what: &str,
    out: &mut Vec<Finding>,
) {
    match read {
        Read::Ok {
            value: Contenu::Document(_),
            ..
        } => {}
        Read::Ok {
            champ,
            value: Contenu::Texte(t),
        } => out.extend(too_short(rule, champ, t, min, what)),
        other => out.extend(unread(rule, other, true, what)),
    }
}

/// PS-CONT-01: the detail of missions and actions, the follow-up and evaluation indicators, the
/// update procedure, a territorial diagnosis, the governance and the deployment document.
pub(super) fn ps_cont_01(ps: &ProjetSante, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let min = ctx.config.min_text_length;
    contenu_item(
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
    contenu_item(
        PsCont01,
        &ps.modalites_actualisation,
        min,
        "les modalités d'actualisation du projet",
        out,
    );
    contenu_item(
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
        } => out.extend(too_short(PsCont01, champ, t, min, "la gouvernance")),
        Read::Ok { .. } => {}
        other => out.extend(unread(PsCont01, other, true, "la gouvernance")),
    }
    out.extend(unread(
        PsCont01,
        &ps.plan_deploiement,
        true,
        "le document de déploiement",
    ));
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::{ChampValue, DossierState, Row};

    #[test]
    fn li_cont_01_mandatory_mentions() {
        let c = Ctx::new();
        let f = run_li(
            &li_with("Porteurs du projet", ChampValue::Repetition(vec![])),
            &c,
        );
        assert!(
            of(&f, RuleId::LiCont01)
                .iter()
                .any(|f| f.severity == Severity::Bloquant
                    && f.message.contains("l'identité des porteurs"))
        );
        let f = run_li(&li_with("Gouvernance prévue", text("Un bureau.")), &c);
        let g = of(&f, RuleId::LiCont01);
        assert!(g.iter().any(|f| f.message == "texte trop court pour établir la gouvernance envisagée : 10 caractères, 20 au moins attendus"), "{}", lines(&g));
        let mut d = li_with("Coopérations prévues", ChampValue::MultipleDropDown(vec![]));
        set(&mut d, "Coopérations : précisions", ChampValue::Text(None));
        let f = run_li(&d, &c);
        assert!(
            of(&f, RuleId::LiCont01)
                .iter()
                .any(|f| f.message.contains("les coopérations prévues"))
        );
        assert!(of(&f, RuleId::LiCoop01).is_empty() && of(&f, RuleId::LiHosp01).is_empty());
        let mut d = li_with(
            "Activités de la mission socle",
            ChampValue::MultipleDropDown(vec![]),
        );
        set(
            &mut d,
            "Actions prévues pour la mission socle",
            ChampValue::Text(None),
        );
        let f = run_li(&d, &c);
        assert!(
            of(&f, RuleId::LiCont01)
                .iter()
                .any(|f| f.message.contains("les actions prévues"))
        );
        assert!(of(&f, RuleId::LiMiss01).is_empty());
        // A derogation asked without a reason.
        let f = run_li(
            &li_with("Demande de dérogation", ChampValue::YesNo(Some(true))),
            &c,
        );
        assert!(
            of(&f, RuleId::LiCont01)
                .iter()
                .any(|f| f.message == "dérogation demandée sans motif")
        );
        // A malformed RPPS.
        let d = li_with(
            "Porteurs du projet",
            ChampValue::Repetition(vec![Row {
                id: "p".into(),
                champs: vec![
                    li_child("Porteurs du projet", "Nom et prénom", text("Dr B")),
                    li_child("Porteurs du projet", "Numéro RPPS", text("1234")),
                ],
            }]),
        );
        assert!(
            of(&run_li(&d, &c), RuleId::LiCont01)
                .iter()
                .any(|f| f.message.contains("11 chiffres attendus"))
        );
        // Porteurs given as a text.
        let f = run_li(
            &li_with("Porteurs du projet", text("Dr Alice Martin (cardiologue)")),
            &c,
        );
        assert!(
            of(&f, RuleId::LiCont01).is_empty(),
            "{}",
            lines(&of(&f, RuleId::LiCont01))
        );
    }

    /// An optional field that the form does not have says nothing in the report.
    #[test]
    fn li_cont_01_an_unmapped_optional_field_is_not_in_the_report() {
        let c = Ctx::new();
        let mut m = li_mapping();
        for key in [
            "derogation_demandee",
            "derogation_motif",
            "association_siret",
            "perimetre",
            "territoire_region",
        ] {
            m.fields.remove(key);
        }
        let r = check(&li_dossier(), &m, &c.ctx());
        assert_eq!(r.verdict, Verdict::Conforme, "{}", r.text());
        assert!(!r.text().contains("non vérifié"), "{}", r.text());
        assert!(!r.text().contains("configuration"), "{}", r.text());
    }

    /// A part of the projet given as a document is there, whatever its length.
    #[test]
    fn ps_cont_01_a_document_stands_for_a_text() {
        let c = ps_ctx(DossierState::Accepte);
        let mut m = ps_mapping();
        m.fields
            .get_mut("diagnostic_territorial")
            .unwrap()
            .type_de_champ = "piece_justificative".into();
        let file = |name: &str| crate::ds::model::File {
            filename: name.into(),
            content_type: "application/pdf".into(),
            byte_size: Some(10),
            url: None,
        };
        let d = ps_with(
            "Diagnostic territorial",
            ChampValue::PieceJustificative(vec![file("d.pdf")]),
        );
        assert!(of(&run_ps_with(&d, &m, &c), RuleId::PsCont01).is_empty());
        let d = ps_with(
            "Diagnostic territorial",
            ChampValue::PieceJustificative(vec![]),
        );
        let f = run_ps_with(&d, &m, &c);
        assert_eq!(of(&f, RuleId::PsCont01)[0].severity, Severity::Bloquant);
    }

    #[test]
    fn ps_cont_01_content() {
        let c = ps_ctx(DossierState::Accepte);
        for label in [
            "Diagnostic territorial",
            "Missions et actions",
            "Modalités d'actualisation du projet",
        ] {
            let f = run_ps(&ps_with(label, ChampValue::Text(None)), &c);
            assert_eq!(of(&f, RuleId::PsCont01).len(), 1, "{label}");
            assert_eq!(of(&f, RuleId::PsCont01)[0].evidence[0].champ, label);
        }
        let f = run_ps(
            &ps_with(
                "Plan de déploiement",
                ChampValue::PieceJustificative(vec![]),
            ),
            &c,
        );
        assert!(
            of(&f, RuleId::PsCont01)[0]
                .message
                .contains("le document de déploiement")
        );
        let f = run_ps(&ps_with("Gouvernance", ChampValue::Repetition(vec![])), &c);
        assert!(
            of(&f, RuleId::PsCont01)[0]
                .message
                .contains("la gouvernance")
        );
        assert!(of(&f, RuleId::PsGouv01).is_empty());
        let f = run_ps(
            &ps_with(
                "Indicateurs de suivi et d'évaluation",
                ChampValue::MultipleDropDown(vec![]),
            ),
            &c,
        );
        assert!(
            of(&f, RuleId::PsCont01)[0]
                .message
                .contains("indicateurs de suivi")
        );
    }
}
