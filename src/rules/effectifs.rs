//! The headcounts: LI-DEMO-01 (at least 10 doctors on the territory), LI-ADH-01 and PS-ADH-01
//! (at least 10 % of the libéraux are members, in exact integer arithmetic), LI-ADH-02 (the
//! figures are consistent, and plausible next to the reference demography).

use super::common::{broken, evidence, meets, needed, ratio_text, unread};
use super::extract::{LettreIntention, ProjetSante, Read};
use super::reference::SpecialtyGroup;
use super::territoire::Territory;
use super::text::{count, fr_int, fr_percent, join_et};
use super::{Finding, KnownProject, RuleContext, RuleId, Severity};

use RuleId::*;

/// LI-DEMO-01: at least 10 doctors of the specialty on the territory.
pub(super) fn li_demo_01(li: &LettreIntention, derog: bool, out: &mut Vec<Finding>) {
    match &li.nb_medecins_specialite {
        Read::Ok { champ, value } if *value < 10 => {
            let (sev, suffix) = broken(derog);
            out.push(
                Finding::new(
                    LiDemo01,
                    sev,
                    format!(
                        "{} de la spécialité sur le territoire ; le cahier des charges en exige au moins 10{suffix}",
                        count(*value as usize, "médecin", "médecins")
                    ),
                )
                .champ(champ, Some(value.to_string())),
            );
        }
        Read::Ok { .. } => {}
        other => out.extend(unread(
            LiDemo01,
            other,
            true,
            "le nombre de médecins de la spécialité sur le territoire",
        )),
    }
}

/// The ratio finding shared by LI-ADH-01 and PS-ADH-01: `None` when a figure is missing (the
/// missing figure is its own finding), else the blocking or derogation finding below 10 %, or
/// the information with `reached` appended.
fn ratio(
    rule: RuleId,
    adherents: &Read<u32>,
    liberaux: &Read<u32>,
    derogation: Option<String>,
    reached: impl Fn(u32, u32) -> String,
    out: &mut Vec<Finding>,
) {
    out.extend(unread(
        rule,
        adherents,
        true,
        "le nombre de médecins adhérents",
    ));
    out.extend(unread(
        rule,
        liberaux,
        true,
        "le nombre de médecins libéraux de la spécialité sur le territoire",
    ));
    let (Some(&adh), Some(&lib)) = (adherents.value(), liberaux.value()) else {
        return;
    };
    let ev = |f: Finding| {
        [
            evidence(adherents, |v| v.to_string()),
            evidence(liberaux, |v| v.to_string()),
        ]
        .into_iter()
        .flatten()
        .fold(f, |f, (c, v)| f.champ(c, v))
    };
    if lib == 0 {
        out.push(ev(Finding::new(
            rule,
            Severity::Bloquant,
            "aucun médecin libéral de la spécialité déclaré sur le territoire : le taux d'adhésion ne peut pas être calculé",
        )));
    } else if meets(adh, lib, 10) {
        out.push(ev(Finding::new(
            rule,
            Severity::Info,
            format!("{} ; {}", ratio_text(adh, lib, false), reached(adh, lib)),
        )));
    } else {
        let (sev, suffix) = match derogation {
            Some(s) => (Severity::Derogation, s),
            None => (Severity::Bloquant, String::new()),
        };
        out.push(ev(Finding::new(
            rule,
            sev,
            format!(
                "{} ; le cahier des charges exige au moins 10 % ({} au moins){suffix}",
                ratio_text(adh, lib, true),
                count(needed(lib, 10) as usize, "adhérent", "adhérents")
            ),
        )));
    }
}

/// LI-ADH-01: adherents ≥ 10 % of the libéraux.
pub(super) fn li_adh_01(li: &LettreIntention, derog: bool, out: &mut Vec<Finding>) {
    ratio(
        LiAdh01,
        &li.nb_adherents,
        &li.nb_liberaux_specialite,
        derog.then(|| broken(true).1.to_owned()),
        |_, _| "seuil de 10 % atteint".to_owned(),
        out,
    );
}

/// PS-ADH-01: the lettre's ratio on the projet's figures, with the way to the five-year
/// targets of 30 % and 50 % (information, never a requirement at filing); a derogation the
/// lettre asked for carries over (rules.md, principle 5).
pub(super) fn ps_adh_01(ps: &ProjetSante, li: Option<&KnownProject>, out: &mut Vec<Finding>) {
    let derogation = li.filter(|l| l.derogation).map(|l| {
        format!(
            " ; dérogation demandée dans la lettre d'intention n° {}, à soumettre à la CPN",
            l.numero
        )
    });
    ratio(
        PsAdh01,
        &ps.nb_adherents,
        &ps.nb_liberaux_specialite,
        derogation,
        |adh, lib| {
            let ahead: Vec<String> = [30, 50]
                .into_iter()
                .filter(|p| !meets(adh, lib, *p))
                .map(|p| {
                    let n = needed(lib, p);
                    format!(
                        "{p} % ({}, encore {})",
                        count(n as usize, "adhérent", "adhérents"),
                        fr_int(n - u64::from(adh))
                    )
                })
                .collect();
            match ahead.len() {
                0 => "seuil de 10 % atteint ; objectifs à cinq ans de 30 % et 50 % déjà atteints"
                    .to_owned(),
                1 => format!(
                    "seuil de 10 % atteint ; objectif à cinq ans de 30 % déjà atteint ; objectif à cinq ans, non exigé au dépôt : {}",
                    ahead[0]
                ),
                _ => format!(
                    "seuil de 10 % atteint ; objectifs à cinq ans, non exigés au dépôt : {}",
                    join_et(&ahead)
                ),
            }
        },
        out,
    );
}

/// LI-ADH-02: consistent figures, and plausible next to the reference demography.
pub(super) fn li_adh_02(
    li: &LettreIntention,
    t: &Territory,
    groups: &[&SpecialtyGroup],
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    let adh = li.nb_adherents.value().copied();
    let lib = li.nb_liberaux_specialite.value().copied();
    let med = li.nb_medecins_specialite.value().copied();
    let champ = |r: &Read<u32>| r.champ().unwrap_or_default().to_owned();
    if adh == Some(0) {
        out.push(
            Finding::new(
                LiAdh02,
                Severity::Avertissement,
                "aucun médecin adhérent déclaré",
            )
            .champ(champ(&li.nb_adherents), Some("0".into())),
        );
    }
    if let (Some(a), Some(l)) = (adh, lib)
        && a > l
    {
        out.push(
            Finding::new(
                LiAdh02,
                Severity::Avertissement,
                format!("plus d'adhérents ({}) que de médecins libéraux de la spécialité sur le territoire ({})", fr_int(a.into()), fr_int(l.into())),
            )
            .champ(champ(&li.nb_adherents), Some(a.to_string()))
            .champ(champ(&li.nb_liberaux_specialite), Some(l.to_string())),
        );
    }
    if let (Some(l), Some(m)) = (lib, med)
        && l > m
    {
        out.push(
            Finding::new(
                LiAdh02,
                Severity::Avertissement,
                format!("plus de médecins libéraux ({}) que de médecins de la spécialité sur le territoire ({})", fr_int(l.into()), fr_int(m.into())),
            )
            .champ(champ(&li.nb_liberaux_specialite), Some(l.to_string()))
            .champ(champ(&li.nb_medecins_specialite), Some(m.to_string())),
        );
    }
    let (Some(demo), Some(l), [group]) = (ctx.reference.demographie(), lib, groups) else {
        return;
    };
    if t.codes.is_empty() {
        return;
    }
    let codes: Vec<String> = t.codes.iter().cloned().collect();
    let lib_champ = champ(&li.nb_liberaux_specialite);
    match demo.total(&group.id, &codes) {
        None => out.push(
            Finding::new(
                LiAdh02,
                Severity::Info,
                format!("démographie de référence {} incomplète pour ce territoire et cette spécialité : non comparé", demo.annee),
            )
            .champ(lib_champ, Some(l.to_string())),
        ),
        Some(reference) => {
            let declared = u64::from(l);
            let diff = declared.abs_diff(reference);
            let tol = u64::from(ctx.config.demography_tolerance_pct);
            if reference == 0 || diff * 100 > tol * reference {
                let ecart = if reference == 0 {
                    String::new()
                } else {
                    format!(" (écart de {}, tolérance {} %)", fr_percent(diff, reference, None), tol)
                };
                out.push(
                    Finding::new(
                        LiAdh02,
                        Severity::Avertissement,
                        format!(
                            "{} déclarés ; la démographie de référence {} en compte {} pour {} sur ces départements{ecart}",
                            count(l as usize, "libéral", "libéraux"),
                            demo.annee,
                            fr_int(reference),
                            group.libelle
                        ),
                    )
                    .champ(lib_champ, Some(l.to_string())),
                );
            } else {
                out.push(
                    Finding::new(
                        LiAdh02,
                        Severity::Info,
                        format!(
                            "{} déclarés, cohérent avec la démographie de référence {} ({})",
                            count(l as usize, "libéral", "libéraux"),
                            demo.annee,
                            fr_int(reference)
                        ),
                    )
                    .champ(lib_champ, Some(l.to_string())),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::{ChampValue, DossierState};

    const ADH: &str = "Nombre de médecins adhérents";
    const LIB: &str = "Nombre de médecins libéraux de la spécialité sur le territoire";
    const MED: &str = "Nombre de médecins de la spécialité sur le territoire";
    const DEP: &str = "Départements couverts";

    #[test]
    fn li_adh_01_ten_percent_boundary_in_integer_arithmetic() {
        let c = Ctx::new();
        for (adh, lib, ok) in [
            ("5", "50", true),
            ("4", "50", false),
            ("5", "51", false),
            ("6", "52", true),
            ("1", "10", true),
            ("0", "1", false),
            ("10", "100", true),
            ("9", "91", false),
        ] {
            let mut d = li_with(ADH, int(adh));
            set(&mut d, LIB, int(lib));
            let f = run_li(&d, &c);
            let adh01 = of(&f, RuleId::LiAdh01);
            assert_eq!(adh01.len(), 1, "{adh}/{lib}");
            assert_eq!(
                adh01[0].severity == Severity::Info,
                ok,
                "{adh}/{lib}: {}",
                lines(&adh01)
            );
        }
        let mut d = li_with(ADH, int("4"));
        set(&mut d, LIB, int("52"));
        let f = run_li(&d, &c);
        assert_eq!(
            report::finding_line(of(&f, RuleId::LiAdh01)[0]),
            "[LI-ADH-01] bloquant — 4 adhérents pour 52 libéraux (7,7 %) ; le cahier des charges exige au moins 10 % (6 adhérents au moins) (champs « Nombre de médecins adhérents », « Nombre de médecins libéraux de la spécialité sur le territoire »)."
        );
        // Just under 10 % is never shown as 10,0 %.
        let mut d = li_with(ADH, int("99"));
        set(&mut d, LIB, int("991"));
        set(&mut d, MED, int("1000"));
        let f = run_li(&d, &c);
        assert!(
            of(&f, RuleId::LiAdh01)[0]
                .message
                .starts_with("99 adhérents pour 991 libéraux (9,9 %)")
        );
        // Asked derogation turns it into a derogation.
        let f = run_li(&asking_derogation(li_with(ADH, int("4"))), &c);
        assert_eq!(of(&f, RuleId::LiAdh01)[0].severity, Severity::Derogation);
        // Zero libéraux: no ratio.
        let f = run_li(&li_with(LIB, int("0")), &c);
        assert_eq!(of(&f, RuleId::LiAdh01)[0].severity, Severity::Bloquant);
    }

    #[test]
    fn li_adh_01_unreadable_or_missing_counts_are_blocking_never_conforme() {
        let c = Ctx::new();
        let r = check(&li_with(ADH, text("douze")), &li_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::NonConforme);
        let line = r
            .text()
            .lines()
            .find(|l| l.starts_with("[LI-ADH-01]"))
            .unwrap()
            .to_owned();
        assert_eq!(
            line,
            "[LI-ADH-01] bloquant — valeur illisible « douze » : ce n'est pas un nombre entier écrit en chiffres ; le cahier des charges exige le nombre de médecins adhérents (champ « Nombre de médecins adhérents »)."
        );
        let r = check(
            &li_with(ADH, ChampValue::Integer(None)),
            &li_mapping(),
            &c.ctx(),
        );
        assert_eq!(r.verdict, Verdict::NonConforme);
        assert!(
            r.elements_manquants()
                .contains(&"le nombre de médecins adhérents".to_owned())
        );
        // Counts written in words around a number are read.
        let r = check(&li_with(ADH, text("6 adhérents")), &li_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::Conforme, "{}", r.text());
    }

    #[test]
    fn li_demo_01_at_least_ten_doctors_on_the_territory() {
        let c = Ctx::new();
        let f = run_li(&li_with(MED, int("9")), &c);
        let d = of(&f, RuleId::LiDemo01);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Bloquant);
        assert!(d[0].message.starts_with(
            "9 médecins de la spécialité sur le territoire ; le cahier des charges en exige au moins 10"
        ));
        let mut dd = li_with(MED, int("10"));
        set(&mut dd, LIB, int("10"));
        set(&mut dd, ADH, int("1"));
        let f = run_li(&dd, &c);
        assert!(of(&f, RuleId::LiDemo01).is_empty());
        assert_eq!(
            check(&dd, &li_mapping(), &c.ctx()).verdict,
            Verdict::Conforme
        );
        let f = run_li(&asking_derogation(li_with(MED, int("9"))), &c);
        assert_eq!(of(&f, RuleId::LiDemo01)[0].severity, Severity::Derogation);
        assert!(
            of(&f, RuleId::LiDemo01)[0]
                .message
                .ends_with("dérogation demandée, à soumettre à la CPN")
        );
        let f = run_li(&li_with(MED, text("10 médecins")), &c);
        assert!(
            of(&f, RuleId::LiDemo01).is_empty(),
            "{}",
            lines(&of(&f, RuleId::LiDemo01))
        );
        let f = run_li(&li_with(MED, ChampValue::YesNo(Some(true))), &c);
        assert!(
            of(&f, RuleId::LiDemo01)[0]
                .message
                .starts_with("valeur illisible")
        );
    }

    #[test]
    fn li_adh_02_figures_consistency_and_demography() {
        let c = Ctx::new();
        let mut d = li_with(ADH, int("60"));
        set(&mut d, MED, int("50"));
        let f = run_li(&d, &c);
        let a = of(&f, RuleId::LiAdh02);
        assert_eq!(a.len(), 2, "{}", lines(&a));
        let f = run_li(&li_with(ADH, int("0")), &c);
        assert!(
            of(&f, RuleId::LiAdh02)
                .iter()
                .any(|f| f.message == "aucun médecin adhérent déclaré")
        );
        let demo = |n: u32| {
            let mut c = Ctx::new();
            c.reference = ReferenceData::from_sources(&ReferenceSources {
                demographie: Some(format!("annee,departement,specialite,effectif\n2024,75,cardiologie,{n}\n2024,92,cardiologie,0\n")),
                ..Default::default()
            })
            .unwrap();
            c
        };
        // 52 declared, 25 % tolerance: within it next to 65 (13/65 = 20 %), beyond it next to 70
        // (18/70 = 25,7 %).
        let f = run_li(&li_dossier(), &demo(65));
        assert_eq!(of(&f, RuleId::LiAdh02)[0].severity, Severity::Info);
        assert!(
            of(&f, RuleId::LiAdh02)[0]
                .message
                .contains("démographie de référence 2024 (65)")
        );
        let f = run_li(&li_dossier(), &demo(70));
        let a = of(&f, RuleId::LiAdh02);
        assert_eq!(a[0].severity, Severity::Avertissement);
        assert!(
            a[0].message.contains("(écart de 25,7 %, tolérance 25 %)"),
            "{}",
            a[0].message
        );
        // Exactly 25 % apart (50 declared, 40 in the table) is within tolerance; 51 is not.
        let f = run_li(&li_with(LIB, int("50")), &demo(40));
        assert_eq!(of(&f, RuleId::LiAdh02)[0].severity, Severity::Info);
        let f = run_li(&li_with(LIB, int("51")), &demo(40));
        assert_eq!(of(&f, RuleId::LiAdh02)[0].severity, Severity::Avertissement);
        let report = check(&li_dossier(), &li_mapping(), &demo(65).ctx());
        assert!(
            report
                .text()
                .ends_with("données de référence : COG 2024, démographie 2024.")
        );
        // A territory the table does not fully cover is not compared.
        let f = run_li(
            &li_with(DEP, multi(&["75 - Paris", "93 - Seine-Saint-Denis"])),
            &demo(65),
        );
        assert!(of(&f, RuleId::LiAdh02)[0].message.contains("incomplète"));
    }

    fn ps_ctx_derog(derogation: bool) -> Ctx {
        let mut c = Ctx::new();
        let mut li = known_li(DossierState::Accepte);
        li.derogation = derogation;
        c.projets = KnownProjects::new([li]);
        c
    }

    #[test]
    fn ps_adh_01_ratio_and_five_year_targets() {
        let c = ps_ctx_derog(false);
        let with = |adh: &str, lib: &str| {
            let mut d = ps_with("Nombre de médecins adhérents", int(adh));
            set(&mut d, LIB, int(lib));
            run_ps(&d, &c)
        };
        let f = with("4", "52");
        assert_eq!(of(&f, RuleId::PsAdh01)[0].severity, Severity::Bloquant);
        let f = with("5", "50");
        assert_eq!(
            of(&f, RuleId::PsAdh01)[0].message,
            "5 adhérents pour 50 libéraux (10,0 %) ; seuil de 10 % atteint ; objectifs à cinq ans, non exigés au dépôt : 30 % (15 adhérents, encore 10) et 50 % (25 adhérents, encore 20)"
        );
        let f = with("15", "50");
        assert!(
            of(&f, RuleId::PsAdh01)[0].message.ends_with(
                "objectif à cinq ans de 30 % déjà atteint ; objectif à cinq ans, non exigé au dépôt : 50 % (25 adhérents, encore 10)"
            ),
            "{}",
            of(&f, RuleId::PsAdh01)[0].message
        );
        let f = with("26", "52");
        assert!(
            of(&f, RuleId::PsAdh01)[0]
                .message
                .ends_with("objectifs à cinq ans de 30 % et 50 % déjà atteints")
        );
        // The targets are never requirements: above 10 % the finding is information.
        assert!(f.iter().all(|f| f.severity != Severity::Bloquant));
        let f = with("3", "0");
        assert_eq!(of(&f, RuleId::PsAdh01)[0].severity, Severity::Bloquant);
        let f = run_ps(&ps_with("Nombre de médecins adhérents", text("douze")), &c);
        assert_eq!(of(&f, RuleId::PsAdh01)[0].severity, Severity::Bloquant);
    }

    /// A derogation asked in the lettre carries over to the projet's threshold.
    #[test]
    fn ps_adh_01_a_derogation_of_the_lettre_carries_over() {
        let c = ps_ctx_derog(true);
        let mut d = ps_with("Nombre de médecins adhérents", int("4"));
        set(&mut d, LIB, int("52"));
        let f = run_ps(&d, &c);
        let a = of(&f, RuleId::PsAdh01);
        assert_eq!(a[0].severity, Severity::Derogation);
        assert!(
            a[0].message.ends_with(
                "dérogation demandée dans la lettre d'intention n° 501, à soumettre à la CPN"
            ),
            "{}",
            a[0].message
        );
        let r = check(&d, &ps_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::DerogationCpn, "{}", r.text());
    }
}
