//! The carrier: LI-JUR-01 (an association loi 1901, with an RNA number or a SIRET; local-law
//! associations of Moselle and Alsace without RNA).

use super::common::unread;
use super::extract::{Association, LettreIntention, Read};
use super::text::{normalize, quote};
use super::{Finding, RuleId, Severity};
use crate::ds::model::Demandeur;

use RuleId::*;

/// Luhn check of a SIRET, with La Poste's exception (sum of digits divisible by 5).
pub(super) fn siret_valide(siret: &str) -> bool {
    if siret.len() != 14 || !siret.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = siret.chars().filter_map(|c| c.to_digit(10)).collect();
    let luhn: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    luhn.is_multiple_of(10)
        || (siret.starts_with("356000000") && digits.iter().sum::<u32>().is_multiple_of(5))
}

fn rna_valide(rna: &str) -> bool {
    let r = rna.trim();
    r.len() == 10 && r.starts_with(['W', 'w']) && r[1..].chars().all(|c| c.is_ascii_alphanumeric())
}

const DROIT_LOCAL: &[(&str, &str)] = &[("57", "Moselle"), ("67", "Bas-Rhin"), ("68", "Haut-Rhin")];

/// LI-JUR-01: the carrier is an association loi 1901. Returns the seat's département as the
/// association's data give it (champ label, code), for LI-CAISSE-01.
pub(super) fn li_jur_01(li: &LettreIntention, out: &mut Vec<Finding>) -> Option<(String, String)> {
    out.extend(unread(
        LiJur01,
        &li.association,
        false,
        "l'association porteuse (numéro RNA ou SIRET)",
    ));
    out.extend(unread(
        LiJur01,
        &li.association_siret,
        false,
        "le SIRET de l'association",
    ));
    let reads = [&li.association, &li.association_siret];
    let found: Vec<(&str, &Association)> = reads
        .iter()
        .filter_map(|r| match r {
            Read::Ok { champ, value } => Some((champ.as_str(), value)),
            _ => None,
        })
        .collect();
    let pick = |f: fn(&Association) -> Option<&String>| {
        found
            .iter()
            .find_map(|(c, a)| f(a).map(|v| (c.to_string(), v.clone())))
    };
    let rna = pick(|a| a.rna.as_ref());
    let siret = pick(|a| a.siret.as_ref());
    let registre = pick(|a| a.registre.as_ref());
    let mut forme = pick(|a| a.forme_juridique.as_ref());
    let mut code = pick(|a| a.forme_juridique_code.as_ref());
    let mut seat = pick(|a| a.departement_siege.as_ref());
    if found.is_empty()
        && let Demandeur::PersonneMorale {
            forme_juridique,
            forme_juridique_code,
            departement_code,
            ..
        } = &li.demandeur
    {
        // The filer is a legal person: it is presumably the association itself.
        forme = forme_juridique.clone().map(|f| ("demandeur".to_owned(), f));
        code = forme_juridique_code
            .clone()
            .map(|c| ("demandeur".to_owned(), c));
        seat = departement_code
            .clone()
            .map(|d| ("demandeur".to_owned(), d));
    }
    let any_champ = found
        .first()
        .map(|(c, _)| c.to_string())
        .or_else(|| li.association.champ().map(str::to_owned))
        .unwrap_or_default();
    // Legal form.
    let is_asso = match (&code, &forme) {
        (Some((_, c)), _) => Some(c.trim().starts_with("92")),
        (None, Some((_, f))) => Some(normalize(f).contains("association")),
        (None, None) => None,
    };
    if is_asso == Some(false) {
        let (c, shown) = match (&forme, &code) {
            (Some((c, f)), Some((_, k))) => (c.clone(), format!("{} (code {k})", quote(f))),
            (Some((c, f)), None) => (c.clone(), quote(f)),
            (None, Some((c, k))) => (c.clone(), format!("de code {k}")),
            (None, None) => (any_champ.clone(), String::new()),
        };
        out.push(
            Finding::new(
                LiJur01,
                Severity::Bloquant,
                format!("la forme juridique de la structure porteuse est {shown} ; le cahier des charges exige une association loi 1901"),
            )
            .champ(c, forme.as_ref().map(|(_, f)| f.clone())),
        );
    }
    if let Some((c, s)) = &siret
        && !siret_valide(s)
    {
        out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!(
                    "SIRET {} invalide : 14 chiffres avec une clé de contrôle attendus",
                    quote(s)
                ),
            )
            .champ(c, Some(s.clone())),
        );
    }
    if let Some((c, r)) = &rna
        && !rna_valide(r)
    {
        out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!(
                    "numéro RNA {} mal formé : W suivi de 9 caractères attendu",
                    quote(r)
                ),
            )
            .champ(c, Some(r.clone())),
        );
    }
    let local = seat
        .as_ref()
        .and_then(|(_, d)| DROIT_LOCAL.iter().find(|(code, _)| code == d))
        .map(|(_, nom)| *nom);
    match (local, &rna, &siret, &registre) {
        (_, Some(_), _, _) => {}
        (Some(nom), None, Some((c, v)), _) | (Some(nom), None, None, Some((c, v))) => out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!(
                    "siège en {nom} : association de droit local, sans numéro RNA ; {} tient lieu d'identification, à confirmer par un instructeur",
                    if siret.is_some() { "le SIRET" } else { "la référence au registre" }
                ),
            )
            .champ(c, Some(v.clone())),
        ),
        (None, None, Some((c, v)), _) => {
            if is_asso.is_none() {
                out.push(
                    Finding::new(
                        LiJur01,
                        Severity::Avertissement,
                        "SIRET sans numéro RNA ni forme juridique connue : vérifier qu'il s'agit d'une association loi 1901",
                    )
                    .champ(c, Some(v.clone())),
                );
            }
        }
        (None, None, None, Some((c, v))) => out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!("{} n'est ni un numéro RNA (W suivi de 9 caractères) ni un SIRET (14 chiffres)", quote(v)),
            )
            .champ(c, Some(v.clone()))
            .a_completer("le numéro RNA ou le SIRET de l'association porteuse"),
        ),
        (_, None, None, None) => {
            if is_asso != Some(false) {
                out.push(
                    Finding::new(
                        LiJur01,
                        Severity::Avertissement,
                        "aucune association identifiée (ni numéro RNA ni SIRET) ; elle devra exister avant tout paiement",
                    )
                    .champ(any_champ, None)
                    .a_completer("le numéro RNA ou le SIRET de l'association porteuse"),
                );
            }
        }
    }
    seat.and_then(|(c, d)| super::reference::canonical_departement_code(&d).map(|d| (c, d)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::siret_valide;
    use crate::ds::model::{ChampValue, Etablissement, Rna};

    const DEP: &str = "Départements couverts";
    const RNA: &str = "Association porteuse (RNA)";
    const SIRET: &str = "SIRET de l'association";

    fn siret(code: &str, forme: &str, dep: &str, rna: Option<&str>) -> ChampValue {
        ChampValue::Siret(Some(Etablissement {
            siret: "73282932000074".into(),
            forme_juridique: Some(forme.into()),
            forme_juridique_code: Some(code.into()),
            raison_sociale: Some("Structure".into()),
            association_rna: rna.map(str::to_owned),
            departement_code: Some(dep.into()),
        }))
    }

    #[test]
    fn li_jur_01_the_carrier_is_an_association() {
        let c = Ctx::new();
        let no_rna = li_with(RNA, ChampValue::Rna(None));
        let f = run_li(&no_rna, &c);
        let j = of(&f, RuleId::LiJur01);
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].severity, Severity::Avertissement);
        assert!(j[0].message.starts_with("aucune association identifiée"));
        let mut d = no_rna.clone();
        set(
            &mut d,
            SIRET,
            siret("5710", "SAS, société par actions simplifiée", "75", None),
        );
        let f = run_li(&d, &c);
        let j = of(&f, RuleId::LiJur01);
        assert_eq!(j[0].severity, Severity::Bloquant, "{}", lines(&j));
        assert!(
            j[0].message
                .contains("(code 5710) ; le cahier des charges exige une association loi 1901")
        );
        let mut d = no_rna.clone();
        set(
            &mut d,
            SIRET,
            siret("9220", "Association déclarée", "75", Some("W751000001")),
        );
        assert!(of(&run_li(&d, &c), RuleId::LiJur01).is_empty());
        // Alsace-Moselle: no RNA, a SIRET stands in, a human confirms.
        let mut d = no_rna.clone();
        set(
            &mut d,
            SIRET,
            siret("9260", "Association de droit local", "57", None),
        );
        set(&mut d, DEP, multi(&["57 - Moselle"]));
        let j = run_li(&d, &c);
        let j = of(&j, RuleId::LiJur01);
        assert_eq!(j.len(), 1, "{}", lines(&j));
        assert_eq!(j[0].severity, Severity::Avertissement);
        assert!(
            j[0].message
                .starts_with("siège en Moselle : association de droit local")
        );
        // A malformed RNA typed by hand.
        let mut d = li_dossier();
        set(
            &mut d,
            RNA,
            ChampValue::Rna(Some(Rna {
                id: "W12".into(),
                title: None,
                departement_code: None,
            })),
        );
        assert!(
            of(&run_li(&d, &c), RuleId::LiJur01)[0]
                .message
                .contains("mal formé")
        );
        assert!(siret_valide("73282932000074"));
        assert!(siret_valide("35600000000048"));
        assert!(!siret_valide("73282932000075"));
        assert!(!siret_valide("7328293200007"));
    }

    /// The RNA typed in a text champ reads as an RNA champ does.
    #[test]
    fn li_jur_01_an_rna_typed_in_a_text() {
        let c = Ctx::new();
        let mut m = li_mapping();
        m.fields.get_mut("association").unwrap().type_de_champ = "text".into();
        for written in ["W751000001", "RNA : W751000001", "w751000001"] {
            let d = li_with(RNA, text(written));
            let f = run_li_with(&d, &m, &c);
            assert!(
                of(&f, RuleId::LiJur01).is_empty(),
                "{written}: {}",
                lines(&of(&f, RuleId::LiJur01))
            );
        }
        let d = li_with(RNA, text("en cours de création"));
        let f = run_li_with(&d, &m, &c);
        assert_eq!(of(&f, RuleId::LiJur01)[0].severity, Severity::Avertissement);
    }
}
