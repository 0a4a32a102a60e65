//! The mission socle: LI-MISS-01 (the actions address both of its activities).
//!
//! A structured answer (the activities as options to tick) decides with certainty: an offered
//! activity left unticked is blocking. Free text is read by vocabulary ([`super::vocab`]): an
//! activity it shows no sign of is for a human to look for (`a_verifier`), never blocking.

use super::common::Texts;
use super::extract::{LettreIntention, Read};
use super::text::normalize;
use super::vocab::{AVIS, AVIS_SPECIALISE, DEMANDEURS, MISSION_A};
use super::{Finding, RuleId, Severity};

use RuleId::*;

/// The two activities of the mission socle (II).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activite {
    /// (a) Structuring the second-recourse offer with the first and third recourse.
    Structuration,
    /// (b) A specialised opinion on request of the médecins traitants, within short delays.
    Avis,
}

impl Activite {
    fn libelle(self) -> &'static str {
        match self {
            Self::Structuration => {
                "(a) la structuration de l'offre de second recours avec le premier et le troisième recours"
            }
            Self::Avis => {
                "(b) l'avis spécialisé ponctuel à la demande des médecins traitants, dans des délais courts (consultation ou téléexpertise)"
            }
        }
    }

    fn cherche(self) -> &'static str {
        match self {
            Self::Structuration => {
                "second ou troisième recours, gradation des soins, structuration de l'offre, parcours de soins, filière"
            }
            Self::Avis => {
                "téléexpertise, avis spécialisé, demande d'avis, ou un avis ou une consultation demandés par les médecins traitants"
            }
        }
    }

    /// Whether a folded text shows this activity. "Médecins traitants" alone is not an
    /// opinion: activity (b) needs an opinion, named as such or asked for by a requester.
    fn in_text(self, folded: &str) -> bool {
        match self {
            Self::Structuration => MISSION_A.in_text(folded),
            Self::Avis => {
                AVIS_SPECIALISE.in_text(folded)
                    || (AVIS.in_text(folded) && DEMANDEURS.in_text(folded))
            }
        }
    }
}

/// The activities a folded option or text shows, for `config check --remote`.
pub(super) fn activities_in(folded: &str) -> Vec<&'static str> {
    [
        (
            Activite::Structuration,
            "activity (a), structuring the second recourse",
        ),
        (Activite::Avis, "activity (b), specialised opinion"),
    ]
    .into_iter()
    .filter(|(a, _)| a.in_text(folded))
    .map(|(_, name)| name)
    .collect()
}

/// LI-MISS-01: both activities of the mission socle.
pub(super) fn li_miss_01(li: &LettreIntention, texts: &Texts, out: &mut Vec<Finding>) {
    if !li.actions.is_ok() && !li.actions_mission_socle.is_ok() {
        return; // LI-CONT-01 already says the actions are missing.
    }
    let structured = li.actions_mission_socle.value().filter(|c| c.structured);
    for activite in [Activite::Structuration, Activite::Avis] {
        if activite.in_text(&texts.socle) || activite.in_text(&texts.actions) {
            continue;
        }
        let offered =
            structured.is_some_and(|c| c.offered.iter().any(|o| activite.in_text(&normalize(o))));
        let f = if offered {
            Finding::new(
                LiMiss01,
                Severity::Bloquant,
                format!(
                    "{} n'est pas cochée parmi les activités de la mission socle ; la mission socle comprend les deux activités",
                    activite.libelle()
                ),
            )
            .a_completer(format!(
                "les actions prévues pour l'activité {}",
                activite.libelle()
            ))
        } else {
            Finding::new(
                LiMiss01,
                Severity::AVerifier,
                format!(
                    "{} n'apparaît pas dans les actions prévues (recherché : {}) ; la mission socle comprend les deux activités : à vérifier à la lecture",
                    activite.libelle(),
                    activite.cherche()
                ),
            )
        };
        let f = [&li.actions_mission_socle]
            .into_iter()
            .filter_map(|r| r.champ().map(|c| (c, None)))
            .chain(match &li.actions {
                Read::Ok { champ, value } => Some((champ.as_str(), Some(value.clone()))),
                other => other.champ().map(|c| (c, None)),
            })
            .fold(f, |f, (c, v)| f.champ(c, v));
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::Activite;
    use crate::ds::model::ChampValue;

    const SOCLE: &str = "Activités de la mission socle";
    const ACTIONS: &str = "Actions prévues pour la mission socle";

    /// Free texts and what each activity finds in them.
    #[test]
    fn li_miss_01_activities_written_in_other_words() {
        let cases: &[(&str, bool, bool)] = &[
            (
                "Organisation du parcours avec le CHU (troisième recours) et les CPTS ; téléexpertise sous 7 jours.",
                true,
                true,
            ),
            (
                "Répondre aux demandes d'avis des généralistes sous 72 heures ; organiser la gradation des soins avec l'hôpital.",
                true,
                true,
            ),
            (
                "Des créneaux de consultation réservés aux médecins traitants.",
                false,
                true,
            ),
            (
                "Travail avec les médecins traitants du territoire.",
                false,
                false,
            ),
            (
                "Structurer l'offre de soins de second recours.",
                true,
                false,
            ),
            ("Des consultations avancées dans les MSP.", false, false),
        ];
        for (t, a, b) in cases {
            let n = crate::rules::text::normalize(t);
            assert_eq!(Activite::Structuration.in_text(&n), *a, "(a) {t}");
            assert_eq!(Activite::Avis.in_text(&n), *b, "(b) {t}");
        }
    }

    /// An offered activity left unticked is certain: blocking.
    #[test]
    fn li_miss_01_a_structured_answer_decides() {
        let c = Ctx::new();
        let mut d = li_with(SOCLE, multi(&[MISSION_SOCLE[0]]));
        set(
            &mut d,
            ACTIONS,
            text("Organisation du parcours et réunions."),
        );
        let f = run_li(&d, &c);
        let m = of(&f, RuleId::LiMiss01);
        assert_eq!(m.len(), 1, "{}", lines(&m));
        assert_eq!(m[0].severity, Severity::Bloquant);
        assert!(m[0].message.starts_with("(b) l'avis spécialisé ponctuel"));
        assert!(m[0].message.contains("n'est pas cochée"));
        // The text may establish what the list leaves unticked.
        set(
            &mut d,
            ACTIONS,
            text("Réponse en téléexpertise sous 48 heures."),
        );
        assert!(of(&run_li(&d, &c), RuleId::LiMiss01).is_empty());
    }

    /// Free text only: what the vocabulary does not find is for a human to read, never
    /// blocking.
    #[test]
    fn li_miss_01_free_text_is_to_be_checked_never_blocking() {
        let c = Ctx::new();
        let mut d = li_with(SOCLE, ChampValue::MultipleDropDown(vec![]));
        set(
            &mut d,
            ACTIONS,
            text("Des avis spécialisés pour les médecins traitants."),
        );
        let m = run_li(&d, &c);
        let m = of(&m, RuleId::LiMiss01);
        assert_eq!(m.len(), 1);
        assert!(m[0].message.starts_with("(a)"));
        assert_eq!(m[0].severity, Severity::AVerifier);
        assert!(
            m[0].message
                .contains("recherché : second ou troisième recours")
        );
        // It quotes the text it looked at.
        assert_eq!(m[0].evidence.last().unwrap().champ, ACTIONS);
        assert!(m[0].evidence.last().unwrap().valeur.is_some());
        // "Médecins traitants" alone is not the opinion activity.
        set(
            &mut d,
            ACTIONS,
            text("Structurer le second recours avec les médecins traitants."),
        );
        let r = check(&d, &li_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::AVerifier, "{}", r.text());
        // A list whose options do not name an activity cannot say it was not chosen.
        let mut m = li_mapping();
        m.fields.get_mut("actions_mission_socle").unwrap().options =
            vec!["Activité 1".into(), "Activité 2".into()];
        let mut d = li_with(SOCLE, multi(&["Activité 1"]));
        set(&mut d, ACTIONS, text("Réunions de coordination."));
        let f = run_li_with(&d, &m, &c);
        assert!(
            of(&f, RuleId::LiMiss01)
                .iter()
                .all(|f| f.severity == Severity::AVerifier)
        );
    }
}
