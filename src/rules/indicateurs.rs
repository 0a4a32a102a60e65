//! The indicators: PS-IND-01 (at least one qualitative indicator) and PS-IND-02 (the five
//! national indicators, VI.E).

use super::contenu::text_item;
use super::extract::{ProjetSante, Read};
use super::text::{contains_words, join_et, normalize};
use super::vocab::{IND_ADRESSEURS, IND_AVANCEES, IND_MEMBRES, IND_PATIENTS, IND_TELEEXPERTISES};
use super::{Finding, RuleContext, RuleId, Severity};

use RuleId::*;

/// PS-IND-01: at least one qualitative indicator. One may be short ("Satisfaction des
/// adresseurs"): half the minimum length of a text.
pub(super) fn ps_ind_01(ps: &ProjetSante, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    text_item(
        PsInd01,
        &ps.indicateur_qualitatif,
        ctx.config.min_text_length.div_ceil(2),
        "au moins un indicateur qualitatif",
        out,
    );
}

/// Whether a folded item states an indicator.
type Recognise = fn(&str) -> bool;

/// The five national indicators (VI.E), each recognised in one item (an option chosen, or a
/// line of a text).
const NATIONAUX: [(&str, Recognise); 5] = [
    (
        "nombre de professionnels de santé adresseurs, dont médecins traitants",
        |n| IND_ADRESSEURS.in_text(n) && !IND_AVANCEES.in_text(n),
    ),
    ("nombre de patients pris en charge", |n| {
        IND_PATIENTS.in_text(n) && !IND_AVANCEES.in_text(n)
    }),
    ("nombre de téléexpertises réalisées", |n| {
        IND_TELEEXPERTISES.in_text(n)
    }),
    (
        "nombre de membres proposant des consultations avancées",
        |n| IND_AVANCEES.in_text(n) && IND_MEMBRES.in_text(n),
    ),
    ("nombre de consultations avancées réalisées", |n| {
        IND_AVANCEES.in_text(n)
            && (!IND_MEMBRES.in_text(n)
                || ["realisees", "tenues", "nombre de consultations"]
                    .iter()
                    .any(|w| contains_words(n, w)))
    }),
];

/// The national indicators a folded option or line states, for `config check --remote`.
pub(super) fn indicators_in(folded: &str) -> Vec<String> {
    NATIONAUX
        .iter()
        .enumerate()
        .filter(|(_, (_, found))| found(folded))
        .map(|(i, (name, _))| format!("national indicator {} ({name})", i + 1))
        .collect()
}

/// PS-IND-02: the five national indicators are committed to; lists those missing.
pub(super) fn ps_ind_02(ps: &ProjetSante, out: &mut Vec<Finding>) {
    let Read::Ok { champ, value } = &ps.indicateurs else {
        return; // PS-CONT-01 already reports it.
    };
    let items: Vec<String> = value.items.iter().map(|v| normalize(v)).collect();
    let missing: Vec<String> = NATIONAUX
        .iter()
        .filter(|(_, found)| !items.iter().any(|n| found(n)))
        .map(|(name, _)| (*name).to_owned())
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

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::{ChampValue, DossierState};

    const IND: &str = "Indicateurs de suivi et d'évaluation";

    #[test]
    fn ps_ind_01_a_qualitative_indicator() {
        let c = ps_ctx(DossierState::Accepte);
        let f = run_ps(
            &ps_with("Indicateur qualitatif", ChampValue::Text(None)),
            &c,
        );
        assert_eq!(of(&f, RuleId::PsInd01)[0].severity, Severity::Bloquant);
        let f = run_ps(&ps_with("Indicateur qualitatif", text("Satisfaction")), &c);
        assert!(of(&f, RuleId::PsInd01).is_empty());
    }

    #[test]
    fn ps_ind_02_the_five_national_indicators() {
        let c = ps_ctx(DossierState::Accepte);
        let f = run_ps(&ps_with(IND, multi(&INDICATEURS[..3])), &c);
        assert_eq!(
            of(&f, RuleId::PsInd02)[0].message,
            "indicateurs nationaux non repris : nombre de membres proposant des consultations avancées et nombre de consultations avancées réalisées"
        );
        let f = run_ps(&ps_with(IND, multi(&INDICATEURS[3..])), &c);
        assert!(
            of(&f, RuleId::PsInd02)[0]
                .message
                .starts_with("indicateurs nationaux non repris : nombre de professionnels")
        );
        let f = run_ps(&ps_with(IND, ChampValue::MultipleDropDown(vec![])), &c);
        assert!(of(&f, RuleId::PsInd02).is_empty());
    }

    /// The five written in other words, one per line of a text.
    #[test]
    fn ps_ind_02_in_other_words() {
        let c = ps_ctx(DossierState::Accepte);
        let mut m = ps_mapping();
        m.fields.get_mut("indicateurs").unwrap().type_de_champ = "textarea".into();
        let written = "- Nombre de médecins demandeurs (dont médecins traitants)\n\
                       - File active de l'ESS\n\
                       - Nombre d'avis rendus à distance\n\
                       - Nombre de spécialistes assurant des consultations délocalisées\n\
                       - Nombre de consultations délocalisées tenues dans l'année";
        let f = run_ps_with(&ps_with(IND, text(written)), &m, &c);
        assert!(
            of(&f, RuleId::PsInd02).is_empty(),
            "{}",
            lines(&of(&f, RuleId::PsInd02))
        );
        let f = run_ps_with(
            &ps_with(IND, text("Nombre de patients ; délai de réponse")),
            &m,
            &c,
        );
        assert_eq!(of(&f, RuleId::PsInd02).len(), 1);
    }
}
