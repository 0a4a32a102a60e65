//! The specialty: LI-SPEC-01 (exactly one, not general practice) and LI-SPEC-02 (a specialty,
//! not one disease).

use super::common::{broken, unread};
use super::extract::{LettreIntention, Read};
use super::reference::SpecialtyGroup;
use super::text::{count, join_et, normalize, quote};
use super::vocab::RESTRICTION;
use super::{Finding, RuleContext, RuleId, Severity};

use RuleId::*;

/// LI-SPEC-01: exactly one specialty of the list, not general practice. Returns the groups
/// read (general practice left out), for the territory and demography rules.
pub(super) fn li_spec_01<'r>(
    li: &LettreIntention,
    derog: bool,
    ctx: &RuleContext<'r>,
    out: &mut Vec<Finding>,
) -> Vec<&'r SpecialtyGroup> {
    let Read::Ok { champ, value } = &li.specialites else {
        return Vec::new();
    };
    let mut groups: Vec<&SpecialtyGroup> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for item in value {
        let m = ctx.reference.specialites_in(item);
        unknown.extend(m.unknown);
        for g in m.groups {
            if g.exclue {
                out.push(
                    Finding::new(
                        LiSpec01,
                        Severity::Bloquant,
                        format!(
                            "la médecine générale est exclue des ESS (spécialité {})",
                            quote(item)
                        ),
                    )
                    .champ(champ, Some(item.clone())),
                );
            } else if !groups.iter().any(|x| x.id == g.id) {
                groups.push(g);
            }
        }
    }
    for u in &unknown {
        // Nothing recognised at all: the specialty cannot be read. Next to a recognised one,
        // an unknown word may be a sub-specialty or a second specialty: a human says which.
        let (sev, tail) = if groups.is_empty() {
            (Severity::Bloquant, "")
        } else {
            (
                Severity::AVerifier,
                " : sous-spécialité ou seconde spécialité ?",
            )
        };
        let f = Finding::new(
            LiSpec01,
            sev,
            format!(
                "spécialité {} absente de la liste de référence des spécialités médicales{tail}",
                quote(u)
            ),
        )
        .champ(champ, Some(u.clone()));
        out.push(if groups.is_empty() {
            f.a_completer("une spécialité médicale de la liste de référence")
        } else {
            f
        });
    }
    if groups.len() > 1 {
        let names: Vec<String> = groups.iter().map(|g| g.libelle.clone()).collect();
        let (sev, suffix) = broken(derog);
        out.push(
            Finding::new(
                LiSpec01,
                sev,
                format!(
                    "{} ({}) ; une ESS réunit une seule spécialité, plusieurs spécialités relèvent d'une dérogation accordée par la CPN{}",
                    count(groups.len(), "spécialité", "spécialités"),
                    join_et(&names),
                    match (&li.derogation_demandee, derog) {
                        (_, true) => suffix,
                        // The form cannot say: nothing to add.
                        (Read::NotMapped { .. }, false) => "",
                        (_, false) => " (aucune dérogation n'est demandée)",
                    }
                ),
            )
            .champ(champ, Some(value.join(", "))),
        );
    }
    groups
}

/// LI-SPEC-02: the perimeter is a specialty, not one disease. A perimeter that names no
/// specialty but a disease of the configured list, or that restricts its specialty
/// ("Ophtalmologie : glaucome exclusivement"), is for a human to read; a specialty listing
/// the diseases it covers is fine.
pub(super) fn li_spec_02(li: &LettreIntention, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Read::Ok { champ, value } = &li.perimetre else {
        out.extend(unread(
            LiSpec02,
            &li.perimetre,
            false,
            "le périmètre médical",
        ));
        return;
    };
    let n = normalize(value);
    let names_specialty = ctx
        .reference
        .specialite_named_in(&n)
        .is_some_and(|g| !g.exclue);
    let found: Vec<String> = ctx
        .config
        .pathology_keywords
        .iter()
        .filter(|k| super::text::contains_words(&n, &normalize(k)))
        .map(|k| quote(k.trim()))
        .collect();
    let restriction = RESTRICTION.find(&n);
    let message = match (names_specialty, found.is_empty(), restriction) {
        (false, false, _) => format!(
            "le périmètre médical cite {} {} sans nommer de spécialité ; une ESS couvre toute sa spécialité, pas une seule pathologie",
            if found.len() > 1 {
                "les pathologies"
            } else {
                "la pathologie"
            },
            join_et(&found)
        ),
        (true, _, Some(word)) => format!(
            "le périmètre médical paraît restreint (« {word} »){} ; une ESS couvre toute sa spécialité, pas une seule pathologie",
            if found.is_empty() {
                String::new()
            } else {
                format!(" à {}", join_et(&found))
            }
        ),
        _ => return,
    };
    out.push(
        Finding::new(LiSpec02, Severity::AVerifier, message).champ(champ, Some(value.clone())),
    );
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::ChampValue;

    const SPE: &str = "Spécialité concernée";
    const PER: &str = "Périmètre médical";

    #[test]
    fn li_spec_01_one_specialty_not_general_practice() {
        let c = Ctx::new();
        let f = run_li(&li_with(SPE, multi(&["Médecine générale"])), &c);
        let s = of(&f, RuleId::LiSpec01);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].severity, Severity::Bloquant);
        assert_eq!(
            s[0].message,
            "la médecine générale est exclue des ESS (spécialité « Médecine générale »)"
        );
        let f = run_li(
            &li_with(
                SPE,
                multi(&[
                    "Cardiologie et maladies vasculaires",
                    "Médecine cardiovasculaire",
                ]),
            ),
            &c,
        );
        assert!(of(&f, RuleId::LiSpec01).is_empty());
        let f = run_li(&li_with(SPE, multi(&["Cardiopathies"])), &c);
        assert_eq!(of(&f, RuleId::LiSpec01)[0].severity, Severity::Bloquant);
        assert!(
            of(&f, RuleId::LiSpec01)[0]
                .message
                .contains("absente de la liste de référence")
        );
        let f = run_li(&li_with(SPE, ChampValue::MultipleDropDown(vec![])), &c);
        assert!(
            of(&f, RuleId::LiCont01)
                .iter()
                .any(|f| f.message.contains("la spécialité concernée"))
        );
    }

    /// Several specialties: a derogation when one is asked, blocking otherwise; never
    /// compliant.
    #[test]
    fn li_spec_01_several_specialties() {
        let c = Ctx::new();
        let d = li_with(SPE, multi(&["Cardiologie", "Pneumologie"]));
        let r = check(&d, &li_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::NonConforme, "{}", r.text());
        assert!(
            r.text().contains(
                "[LI-SPEC-01] bloquant — 2 spécialités (Cardiologie et Pneumologie) ; une ESS réunit une seule spécialité, plusieurs spécialités relèvent d'une dérogation accordée par la CPN (aucune dérogation n'est demandée)"
            ),
            "{}",
            r.text()
        );
        let r = check(&asking_derogation(d), &li_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::DerogationCpn, "{}", r.text());
        assert!(
            r.text()
                .contains("dérogation demandée, à soumettre à la CPN")
        );
    }

    /// Specialties typed in a text, read as an instructor reads them.
    #[test]
    fn li_spec_01_specialties_written_in_a_text() {
        let c = Ctx::new();
        let cases: &[(&str, &[&str], usize)] = &[
            ("Cardiologie", &["cardiologie"], 0),
            ("Cardiologie et maladies vasculaires", &["cardiologie"], 0),
            (
                "Cardiologie, pneumologie",
                &["cardiologie", "pneumologie"],
                0,
            ),
            (
                "Cardiologie et pneumologie",
                &["cardiologie", "pneumologie"],
                0,
            ),
            (
                "Cardiologie / Pneumologie",
                &["cardiologie", "pneumologie"],
                0,
            ),
            ("O.R.L.", &["orl"], 0),
            ("ORL", &["orl"], 0),
            ("o r l", &["orl"], 0),
            (
                "Endocrinologie, diabétologie et nutrition",
                &["endocrinologie"],
                0,
            ),
            ("Cardiologie interventionnelle", &["cardiologie"], 0),
            ("Dermatologie et vénéréologie", &["dermatologie"], 0),
            ("SM04", &["cardiologie"], 0),
            ("Spécialités : cardiologie", &["cardiologie"], 0),
            ("Chronobiologie", &[], 1),
        ];
        for (written, groups, unknown) in cases {
            let m = c.reference.specialites_in(written);
            let ids: Vec<&str> = m.groups.iter().map(|g| g.id.as_str()).collect();
            assert_eq!(ids, *groups, "{written}");
            assert_eq!(m.unknown.len(), *unknown, "{written}: {:?}", m.unknown);
        }
        // Two in one text: never compliant; with a derogation asked, the CPN is named.
        let d = li_with(SPE, text("Cardiologie, pneumologie"));
        let r = check(&asking_derogation(d), &li_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::DerogationCpn, "{}", r.text());
        // A known specialty next to an unknown word: a human says what it is.
        let f = run_li(&li_with(SPE, text("Cardiologie et rythmologie")), &c);
        assert_eq!(of(&f, RuleId::LiSpec01)[0].severity, Severity::AVerifier);
    }

    #[test]
    fn li_spec_02_a_pathology_is_not_a_specialty() {
        let c = Ctx::new();
        let cases: &[(&str, bool)] = &[
            (
                "Prise en charge de l'insuffisance cardiaque et du Diabète",
                true,
            ),
            ("Dépistage et suivi du glaucome.", true),
            ("Ophtalmologie : glaucome exclusivement", true),
            ("Ophtalmologie, uniquement la rétine", true),
            ("Diabétologie générale de l'adulte", false),
            (
                "Neurologie : épilepsie, maladie de Parkinson, sclérose en plaques, céphalées.",
                false,
            ),
            (
                "Cardiologie : insuffisance cardiaque, rythmologie, prévention cardiovasculaire.",
                false,
            ),
        ];
        for (perimetre, flagged) in cases {
            let f = run_li(&li_with(PER, text(perimetre)), &c);
            let s = of(&f, RuleId::LiSpec02);
            assert_eq!(!s.is_empty(), *flagged, "{perimetre}: {}", lines(&s));
            if *flagged {
                assert_eq!(s[0].severity, Severity::AVerifier);
            }
        }
        let f = run_li(
            &li_with(
                PER,
                text("Prise en charge de l'insuffisance cardiaque et du Diabète"),
            ),
            &c,
        );
        assert!(
            of(&f, RuleId::LiSpec02)[0].message.starts_with(
                "le périmètre médical cite les pathologies « diabète » et « insuffisance cardiaque »"
            ),
            "{}",
            of(&f, RuleId::LiSpec02)[0].message
        );
        let f = run_li(
            &li_with(PER, text("Ophtalmologie : glaucome exclusivement")),
            &c,
        );
        assert_eq!(
            of(&f, RuleId::LiSpec02)[0].message,
            "le périmètre médical paraît restreint (« exclusivement ») à « glaucome » ; une ESS couvre toute sa spécialité, pas une seule pathologie"
        );
        // An empty perimeter says nothing: it is optional.
        let f = run_li(&li_with(PER, ChampValue::Text(None)), &c);
        assert!(of(&f, RuleId::LiSpec02).is_empty());
    }
}
