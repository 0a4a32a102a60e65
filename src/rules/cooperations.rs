//! The cooperations: LI-COOP-01 (first recourse, DAC, other ESS, établissements de santé) and
//! LI-HOSP-01 (articulation with hospital professionals).

use super::common::{Texts, with_champs};
use super::extract::LettreIntention;
use super::text::{join_et, normalize};
use super::vocab::{AUTRES_ESS, DAC, HOSPITALIERS, PREMIER_RECOURS, Vocab};
use super::{Finding, RuleId, Severity};

use RuleId::*;

fn champs(li: &LettreIntention) -> [Option<&str>; 2] {
    [li.cooperations.champ(), li.cooperations_precisions.champ()]
}

/// The four cooperations LI-COOP-01 looks for: the vocabulary, the name findings give it, and
/// the name `config check --remote` gives it.
const GROUPS: [(&Vocab, &str, &str); 4] = [
    (
        &PREMIER_RECOURS,
        "les acteurs du premier recours (CPTS, MSP, ESP)",
        "first recourse (CPTS, MSP, ESP)",
    ),
    (&DAC, "le DAC", "DAC"),
    (&AUTRES_ESS, "les autres ESS", "other ESS"),
    (
        &HOSPITALIERS,
        "les établissements de santé",
        "health establishments and hospital professionals (LI-HOSP-01)",
    ),
];

/// The cooperations a folded option or text shows, for `config check --remote`.
pub(super) fn cooperations_in(folded: &str) -> Vec<&'static str> {
    GROUPS
        .iter()
        .filter(|(v, _, _)| v.in_text(folded))
        .map(|(_, _, name)| *name)
        .collect()
}

/// LI-COOP-01: cooperation with first-recourse actors, DAC, other ESS and établissements de
/// santé is declared; what is missing is listed (a warning: the cahier asks the articulation,
/// a human weighs it).
pub(super) fn li_coop_01(li: &LettreIntention, texts: &Texts, out: &mut Vec<Finding>) {
    if !li.cooperations.is_ok() && !li.cooperations_precisions.is_ok() {
        return; // LI-CONT-01 already says the cooperations are missing.
    }
    let missing: Vec<String> = GROUPS
        .iter()
        .filter(|(v, _, _)| !v.in_text(&texts.cooperations))
        .map(|(_, name, _)| (*name).to_owned())
        .collect();
    if !missing.is_empty() {
        out.push(with_champs(
            Finding::new(
                LiCoop01,
                Severity::Avertissement,
                format!("coopérations non déclarées avec {}", join_et(&missing)),
            ),
            champs(li),
        ));
    }
}

/// LI-HOSP-01: articulation with hospital professionals is declared, in the cooperations or
/// the actions. A structured answer that offers it and leaves it unticked is blocking; a free
/// text that shows no sign of it is for a human to read.
pub(super) fn li_hosp_01(li: &LettreIntention, texts: &Texts, out: &mut Vec<Finding>) {
    if !li.cooperations.is_ok() && !li.cooperations_precisions.is_ok() {
        return;
    }
    if HOSPITALIERS.in_text(&texts.cooperations) || HOSPITALIERS.in_text(&texts.actions) {
        return;
    }
    let offered = li.cooperations.value().is_some_and(|c| {
        c.structured
            && c.offered
                .iter()
                .any(|o| HOSPITALIERS.in_text(&normalize(o)))
    });
    let f = if offered {
        Finding::new(
            LiHosp01,
            Severity::Bloquant,
            "aucune articulation avec les professionnels hospitaliers n'est déclarée : la coopération avec les établissements de santé proposée par le formulaire n'est pas cochée",
        )
        .a_completer("l'articulation prévue avec les professionnels hospitaliers")
    } else {
        Finding::new(
            LiHosp01,
            Severity::AVerifier,
            "aucune articulation avec les professionnels hospitaliers n'apparaît dans les coopérations ni dans les actions (recherché : hôpital, CH, CHU, CHRU, GHT, établissement de santé, clinique, praticien hospitalier) : à vérifier à la lecture",
        )
    };
    out.push(with_champs(f, champs(li)));
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::ChampValue;

    const COOP: &str = "Coopérations prévues";
    const PREC: &str = "Coopérations : précisions";
    const ACTIONS: &str = "Actions prévues pour la mission socle";

    #[test]
    fn li_coop_01_li_hosp_01_a_structured_answer_decides() {
        let c = Ctx::new();
        let mut d = li_with(COOP, multi(&["CPTS"]));
        set(&mut d, PREC, ChampValue::Text(None));
        set(
            &mut d,
            ACTIONS,
            text("Second recours et téléexpertise avec les CPTS."),
        );
        let f = run_li(&d, &c);
        assert_eq!(
            of(&f, RuleId::LiCoop01)[0].message,
            "coopérations non déclarées avec le DAC, les autres ESS et les établissements de santé"
        );
        let h = of(&f, RuleId::LiHosp01);
        assert_eq!(h[0].severity, Severity::Bloquant);
        set(&mut d, PREC, text("Convention avec le CHU de Paris."));
        assert!(of(&run_li(&d, &c), RuleId::LiHosp01).is_empty());
    }

    /// Hospital articulation in the words forms and applicants use.
    #[test]
    fn li_hosp_01_hospitals_named_many_ways() {
        let c = Ctx::new();
        for written in [
            "Convention avec le GHT Bretagne occidentale.",
            "Lien avec le CHRU de Brest.",
            "Accords avec les établissements de santé du territoire.",
            "Les cliniques privées de l'agglomération.",
            "Avec le CH de Morlaix.",
            "Travail avec les praticiens hospitaliers.",
            "Hôpital Saint-Louis.",
        ] {
            let mut d = li_with(COOP, multi(&["CPTS"]));
            set(&mut d, PREC, text(written));
            set(&mut d, ACTIONS, text("Second recours et téléexpertise."));
            assert!(
                of(&run_li(&d, &c), RuleId::LiHosp01).is_empty(),
                "{written}"
            );
        }
    }

    /// Free text without a sign of it: to check, never blocking.
    #[test]
    fn li_hosp_01_free_text_without_it_is_to_be_checked() {
        let c = Ctx::new();
        let mut m = li_mapping();
        m.fields.get_mut("cooperations").unwrap().type_de_champ = "textarea".into();
        let mut d = li_with(COOP, text("Travail avec la CPTS et le DAC."));
        set(&mut d, PREC, ChampValue::Text(None));
        set(&mut d, ACTIONS, text("Second recours et téléexpertise."));
        let f = run_li_with(&d, &m, &c);
        assert_eq!(of(&f, RuleId::LiHosp01)[0].severity, Severity::AVerifier);
    }

    /// The applicant calling itself "ESS" is not a cooperation with another ESS.
    #[test]
    fn li_coop_01_the_applicant_is_not_another_ess() {
        let c = Ctx::new();
        let mut d = li_with(
            COOP,
            multi(&["CPTS", "DAC", "GHT et établissements de santé"]),
        );
        set(
            &mut d,
            PREC,
            text("L'ESS travaillera avec les CPTS et le CHU."),
        );
        let f = run_li(&d, &c);
        assert_eq!(
            of(&f, RuleId::LiCoop01)[0].message,
            "coopérations non déclarées avec les autres ESS"
        );
        set(
            &mut d,
            PREC,
            text("Coordination avec les ESS voisines de dermatologie."),
        );
        assert!(of(&run_li(&d, &c), RuleId::LiCoop01).is_empty());
    }
}
