//! The governance: LI-GOUV-01 and PS-GOUV-01 (natural persons who are self-employed specialist
//! doctors; other actors with a consultative voice only).
//!
//! The cahier asks for no voice column (IV): a listed member is deliberative unless the dossier
//! says consultative, in a voice column worded however the form words it or in any other cell
//! of the row. A member whose row is explicit about being someone else (a general
//! practitioner, a CPTS) with a deliberative voice is blocking; a member the quality does not
//! establish is for a human to check; a governance in prose is read for what it names.

use super::extract::{Gouvernance, Membre, Voix};
use super::read::says_consultative;
use super::reference::ReferenceData;
use super::text::{normalize, quote};
use super::vocab::{
    ADHERENTS, AUTRES_ACTEURS, DAC, GENERALISTES, HOSPITALIERS, LIBERAL, PREMIER_RECOURS,
    SPECIALISTES,
};
use super::{Finding, RuleContext, RuleId, Severity};

/// What a governance member is, from the quality the dossier gives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Qualite {
    /// A self-employed specialist doctor.
    SpecialisteLiberal,
    /// A general practitioner.
    Generaliste,
    /// Another actor (CPTS, DAC, hospital, salaried doctor…).
    AutreActeur,
    /// A specialist whose mode of practice the dossier does not give.
    SpecialisteSansExercice,
    /// Nothing the vocabularies recognise.
    Inconnue,
}

/// How `config check --remote` says what a quality option is read as.
pub(super) fn quality_reading(folded: &str, reference: &ReferenceData) -> &'static str {
    match qualite_with(folded, reference) {
        Qualite::SpecialisteLiberal => "self-employed specialist",
        Qualite::Generaliste => "general practitioner (deliberative: blocking)",
        Qualite::AutreActeur => "other actor (deliberative: blocking)",
        Qualite::SpecialisteSansExercice => "specialist, mode of practice not said (to check)",
        Qualite::Inconnue => "not placed (to check)",
    }
}

fn qualite(folded: &str, ctx: &RuleContext<'_>) -> Qualite {
    qualite_with(folded, ctx.reference)
}

fn qualite_with(folded: &str, reference: &ReferenceData) -> Qualite {
    if GENERALISTES.in_text(folded) {
        return Qualite::Generaliste;
    }
    let named = reference.specialite_named_in(folded);
    if named.is_some_and(|g| g.exclue) {
        return Qualite::Generaliste;
    }
    let specialist = SPECIALISTES.in_text(folded) || named.is_some() || ADHERENTS.in_text(folded);
    let liberal = LIBERAL.in_text(folded) || ADHERENTS.in_text(folded);
    if specialist && liberal {
        Qualite::SpecialisteLiberal
    } else if [AUTRES_ACTEURS, DAC, HOSPITALIERS, PREMIER_RECOURS]
        .iter()
        .any(|v| v.in_text(folded))
    {
        Qualite::AutreActeur
    } else if specialist {
        Qualite::SpecialisteSansExercice
    } else {
        Qualite::Inconnue
    }
}

/// A member's voice as the rule takes it: deliberative unless said consultative; an unreadable
/// voice cell is deliberative too, but only a doubt.
fn deliberative(m: &Membre) -> (bool, bool) {
    match &m.voix {
        Voix::Deliberative => (true, false),
        Voix::Consultative => (false, false),
        Voix::NonPrecisee => (!says_consultative(&m.reste), false),
        Voix::Illisible(_) => (!says_consultative(&m.reste), true),
    }
}

/// LI-GOUV-01 and PS-GOUV-01 (`rule` says which).
pub(super) fn gouvernance(
    rule: RuleId,
    champ: &str,
    g: &Gouvernance,
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    let membres = match g {
        Gouvernance::Texte(t) => return prose(rule, champ, t, ctx, out),
        Gouvernance::Membres(m) => m,
    };
    let mut specialist = false;
    let mut doubtful = false;
    for (i, m) in membres.iter().enumerate() {
        let nom = m.nom.clone().unwrap_or_else(|| format!("ligne {}", i + 1));
        let shown = quote(&nom);
        let (delib, voice_doubt) = deliberative(m);
        let quality_text = m.qualite.as_deref().unwrap_or_default();
        let q = match &m.qualite {
            Some(q) => qualite(&normalize(q), ctx),
            // No quality given: the whole row may still say who the member is.
            None => qualite(&m.reste, ctx),
        };
        let quoted = if quality_text.is_empty() {
            String::new()
        } else {
            format!(" ({})", quote(quality_text))
        };
        let voice = if voice_doubt {
            match &m.voix {
                Voix::Illisible(v) => format!(" (voix {} non reconnue)", quote(v)),
                _ => String::new(),
            }
        } else {
            String::new()
        };
        let finding = match (q, delib) {
            (Qualite::SpecialisteLiberal, true) => {
                specialist = true;
                None
            }
            (_, false) => None,
            (Qualite::Generaliste, true) if !voice_doubt => Some(Finding::new(
                rule,
                Severity::Bloquant,
                format!(
                    "membre {shown}{quoted} avec voix délibérative ; seuls des médecins spécialistes libéraux, personnes physiques, ont voix délibérative (médecine générale exclue)"
                ),
            )),
            (Qualite::AutreActeur, true) if !voice_doubt => Some(Finding::new(
                rule,
                Severity::Bloquant,
                format!(
                    "membre {shown}{quoted} avec voix délibérative ; les autres acteurs (CPTS, DAC, établissements) n'ont qu'une voix consultative"
                ),
            )),
            (Qualite::SpecialisteSansExercice, true) => {
                doubtful = true;
                Some(Finding::new(
                    rule,
                    Severity::AVerifier,
                    format!(
                        "membre {shown}{quoted} : mode d'exercice non précisé ; seuls des médecins spécialistes libéraux ont voix délibérative"
                    ),
                ))
            }
            (_, true) => {
                doubtful = true;
                Some(Finding::new(
                    rule,
                    Severity::AVerifier,
                    format!(
                        "membre {shown}{}{voice} : qualité à vérifier ; seuls des médecins spécialistes libéraux ont voix délibérative, les autres acteurs une voix consultative",
                        if quoted.is_empty() {
                            " : qualité non renseignée".to_owned()
                        } else {
                            quoted.clone()
                        }
                    ),
                ))
            }
        };
        if let Some(f) = finding {
            out.push(f.champ(champ, Some(nom.clone())));
        }
    }
    if !specialist && !doubtful {
        out.push(
            Finding::new(
                rule,
                Severity::Bloquant,
                "aucun médecin spécialiste libéral avec voix délibérative dans la gouvernance",
            )
            .champ(champ, None),
        );
    }
}

/// A governance described in prose: specialists only establish it; a sentence naming another
/// actor without saying it is consultative is quoted for a human; prose that names no member
/// is for a human too.
fn prose(rule: RuleId, champ: &str, t: &str, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let mut doubtful: Vec<&str> = Vec::new();
    let mut specialists = false;
    for sentence in t
        .split(['.', ';', '\n', '•'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let n = normalize(sentence);
        match qualite(&n, ctx) {
            Qualite::Generaliste | Qualite::AutreActeur | Qualite::SpecialisteSansExercice
                if !says_consultative(&n) =>
            {
                if matches!(qualite(&n, ctx), Qualite::SpecialisteSansExercice) {
                    specialists = true;
                }
                doubtful.push(sentence);
            }
            Qualite::SpecialisteLiberal => specialists = true,
            _ => {}
        }
    }
    let (sev, msg) = if !doubtful.is_empty() {
        let shown: Vec<String> = doubtful.iter().map(|s| quote(s)).collect();
        (
            Severity::AVerifier,
            format!(
                "gouvernance décrite en texte : {} ; seuls des médecins spécialistes libéraux ont voix délibérative, les autres acteurs une voix consultative : à vérifier",
                shown.join(" ; ")
            ),
        )
    } else if specialists {
        return;
    } else {
        (
            Severity::AVerifier,
            "la gouvernance décrite ne dit pas qui la compose ; des médecins spécialistes libéraux avec voix délibérative sont attendus : à vérifier".to_owned(),
        )
    };
    out.push(Finding::new(rule, sev, msg).champ(champ, Some(t.to_owned())));
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::{ChampValue, DossierState};

    const GOUV: &str = "Gouvernance prévue";

    fn gouv(f: &[Finding]) -> Vec<&Finding> {
        of(f, RuleId::LiGouv01)
    }

    #[test]
    fn li_gouv_01_members_with_a_voice_column() {
        let c = Ctx::new();
        let g = |rows: &[(&str, &str, &str)]| run_li(&li_with(GOUV, gouvernance_rows(rows)), &c);
        let f = g(&[
            ("Dr A", "Médecin spécialiste libéral", "Délibérative"),
            ("Dr G", "Médecin généraliste", "Délibérative"),
        ]);
        let x = gouv(&f);
        assert_eq!(x.len(), 1, "{}", lines(&x));
        assert_eq!(x[0].severity, Severity::Bloquant);
        assert!(
            x[0].message
                .starts_with("membre « Dr G » (« Médecin généraliste ») avec voix délibérative")
        );
        let f = g(&[
            ("Dr A", "Médecin spécialiste libéral", "Délibérative"),
            ("CPTS Sud", "CPTS", "Délibérative"),
        ]);
        assert!(
            gouv(&f)[0]
                .message
                .contains("n'ont qu'une voix consultative")
        );
        let f = g(&[
            ("Dr A", "Médecin spécialiste libéral", "Consultative"),
            ("DAC 75", "DAC", "Consultative"),
        ]);
        assert_eq!(
            gouv(&f)[0].message,
            "aucun médecin spécialiste libéral avec voix délibérative dans la gouvernance"
        );
        // An empty voice cell: deliberative, nothing to say for a specialist.
        let f = g(&[("Dr A", "Médecin spécialiste libéral", "")]);
        assert!(gouv(&f).is_empty(), "{}", lines(&gouv(&f)));
        // A quality nobody recognises: to check, not blocking.
        let f = g(&[
            ("Dr A", "Médecin spécialiste libéral", "Délibérative"),
            ("X", "Autre", "Délibérative"),
        ]);
        assert_eq!(gouv(&f)[0].severity, Severity::AVerifier);
    }

    /// The cahier asks for no voice column: "Nom" and "Qualité" only, all specialists, is
    /// compliant; other actors are consultative when their row says so.
    #[test]
    fn li_gouv_01_without_a_voice_column() {
        let c = Ctx::new();
        let (d, m) = li_with_governance_columns(
            &["Nom", "Qualité"],
            &[
                &["Dr A", "Médecin spécialiste libéral"],
                &["Dr B", "Médecin spécialiste libéral"],
            ],
        );
        let f = run_li_with(&d, &m, &c);
        assert!(gouv(&f).is_empty(), "{}", lines(&gouv(&f)));
        let (d, m) = li_with_governance_columns(
            &["Nom", "Qualité"],
            &[
                &["Dr A", "Médecin spécialiste libéral"],
                &["CPTS du pays de Brest", "CPTS (voix consultative)"],
            ],
        );
        assert!(gouv(&run_li_with(&d, &m, &c)).is_empty());
        // Listed without a word of consultation, a CPTS is deliberative: blocking.
        let (d, m) = li_with_governance_columns(
            &["Nom", "Qualité"],
            &[
                &["Dr A", "Médecin spécialiste libéral"],
                &["CPTS du pays de Brest", "CPTS"],
            ],
        );
        let f = run_li_with(&d, &m, &c);
        assert_eq!(
            gouv(&f)[0].severity,
            Severity::Bloquant,
            "{}",
            lines(&gouv(&f))
        );
    }

    /// Voices and qualities in their many forms.
    #[test]
    fn li_gouv_01_voices_and_qualities_as_forms_word_them() {
        let c = Ctx::new();
        // A yes/no "Membre votant".
        let (d, m) = li_with_governance_columns(
            &["Membre", "Qualité", "Membre votant:yes_no"],
            &[
                &["Dr A", "Médecin spécialiste libéral", "true"],
                &["DAC 29", "DAC", "false"],
            ],
        );
        assert!(gouv(&run_li_with(&d, &m, &c)).is_empty());
        // "Voix délibérative" / "Voix consultative".
        let (d, m) = li_with_governance_columns(
            &["Membre", "Qualité", "Voix"],
            &[
                &["Dr A", "Médecin spécialiste libéral", "Voix délibérative"],
                &["Dr G", "Médecin généraliste", "Voix consultative"],
            ],
        );
        assert!(gouv(&run_li_with(&d, &m, &c)).is_empty());
        // The quality split into "Spécialité" and "Mode d'exercice".
        let (d, m) = li_with_governance_columns(
            &["Nom", "Spécialité", "Mode d'exercice"],
            &[
                &["Dr A", "Cardiologie", "Libéral"],
                &["Dr B", "Cardiologie", "Libéral"],
            ],
        );
        let f = run_li_with(&d, &m, &c);
        assert!(gouv(&f).is_empty(), "{}", lines(&gouv(&f)));
        let (d, m) = li_with_governance_columns(
            &["Nom", "Spécialité", "Mode d'exercice"],
            &[
                &["Dr A", "Cardiologie", "Libéral"],
                &["Dr H", "Cardiologie", "Salarié hospitalier"],
            ],
        );
        let f = run_li_with(&d, &m, &c);
        assert_eq!(
            gouv(&f)[0].severity,
            Severity::Bloquant,
            "{}",
            lines(&gouv(&f))
        );
        // A specialty without a mode of practice: to check.
        let (d, m) =
            li_with_governance_columns(&["Nom", "Spécialité"], &[&["Dr A", "Cardiologie"]]);
        let f = run_li_with(&d, &m, &c);
        assert_eq!(gouv(&f).len(), 1, "{}", lines(&gouv(&f)));
        assert_eq!(gouv(&f)[0].severity, Severity::AVerifier);
    }

    #[test]
    fn li_gouv_01_a_governance_in_prose() {
        let c = Ctx::new();
        let t = |s: &str| {
            gouv(&run_li(&li_with(GOUV, text(s)), &c))
                .iter()
                .map(|f| f.severity)
                .collect::<Vec<_>>()
        };
        assert!(
            t("Bureau de trois médecins spécialistes libéraux élus par l'assemblée générale.")
                .is_empty()
        );
        assert!(t("Le conseil d'administration réunit les médecins adhérents ; la CPTS et le DAC y siègent à titre consultatif.").is_empty());
        assert_eq!(
            t(
                "Le bureau associe les médecins spécialistes libéraux et deux médecins généralistes."
            ),
            [Severity::AVerifier]
        );
        assert_eq!(
            t("Une assemblée générale annuelle élit le bureau."),
            [Severity::AVerifier]
        );
    }

    #[test]
    fn ps_gouv_01_is_checked_like_the_lettre() {
        let c = ps_ctx(DossierState::Accepte);
        let f = run_ps(
            &ps_with(
                "Gouvernance",
                ps_gouvernance_rows(&[("Dr G", "Médecin généraliste", "Délibérative")]),
            ),
            &c,
        );
        let g = of(&f, RuleId::PsGouv01);
        assert_eq!(g.len(), 2, "{}", lines(&g));
        assert!(g.iter().all(|f| f.severity == Severity::Bloquant));
        let f = run_ps(&ps_with("Gouvernance", ChampValue::Text(None)), &c);
        assert!(of(&f, RuleId::PsGouv01).is_empty());
    }
}
