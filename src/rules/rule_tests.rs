//! Rule-by-rule tests at every boundary rules.md names, on the demo forms: each test starts
//! from a compliant dossier and breaks one thing.

use chrono::NaiveDate;

use super::testutil::*;
use super::*;
use crate::ds::model::{ChampValue, Etablissement, Rna, Row};

fn li_with(label: &str, v: ChampValue) -> Dossier {
    let mut d = li_dossier();
    set(&mut d, label, v);
    d
}

fn int(n: &str) -> ChampValue {
    ChampValue::Integer(Some(n.into()))
}

fn multi(items: &[&str]) -> ChampValue {
    ChampValue::MultipleDropDown(items.iter().map(|s| (*s).to_owned()).collect())
}

fn text(s: &str) -> ChampValue {
    ChampValue::Text(Some(s.into()))
}

fn lines(fs: &[&Finding]) -> String {
    fs.iter()
        .map(|f| report::finding_line(f))
        .collect::<Vec<_>>()
        .join("\n")
}

fn report_li(d: &Dossier, c: &Ctx) -> Report {
    check(d, &li_mapping(), &c.ctx())
}

fn asking_derogation(mut d: Dossier) -> Dossier {
    set(
        &mut d,
        "Demande de dérogation",
        ChampValue::YesNo(Some(true)),
    );
    set(
        &mut d,
        "Motif de la dérogation",
        text("Zone en tension : très peu de cardiologues."),
    );
    d
}

const ADH: &str = "Nombre de médecins adhérents";
const LIB: &str = "Nombre de médecins libéraux de la spécialité sur le territoire";
const MED: &str = "Nombre de médecins de la spécialité sur le territoire";
const DEP: &str = "Départements couverts";
const REG: &str = "Région couverte";
const SPE: &str = "Spécialité concernée";

#[test]
fn the_demo_lettre_is_compliant_and_its_report_is_stable() {
    let c = Ctx::new();
    let r = report_li(&li_dossier(), &c);
    assert_eq!(r.verdict, Verdict::Conforme, "{}", r.text());
    assert_eq!(r.count(Severity::Avertissement), 0, "{}", r.text());
    let text = r.text();
    assert!(
        text.starts_with("Pré-contrôle essbot : CONFORME\n"),
        "{text}"
    );
    assert!(text.contains(
        "[LI-ADH-01] info — 6 adhérents pour 52 libéraux (11,5 %) ; seuil de 10 % atteint (champs « Nombre de médecins adhérents », « Nombre de médecins libéraux de la spécialité sur le territoire »)."
    ), "{text}");
    assert!(text.contains(
        "[LI-CAISSE-01] info — le territoire relève de 2 caisses (CPAM de Paris ; CPAM des Hauts-de-Seine) ; la caisse compétente est celle du siège de l'association : CPAM de Paris (siège : Paris, 75) (champ « Association porteuse (RNA) »)."
    ), "{text}");
    assert_eq!(text, report_li(&li_dossier(), &c).text());
}

#[test]
fn adherents_ten_percent_boundary_in_integer_arithmetic() {
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
fn unreadable_or_missing_counts_are_blocking_never_conforme() {
    let c = Ctx::new();
    let r = report_li(&li_with(ADH, text("douze")), &c);
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
    let r = report_li(&li_with(ADH, ChampValue::Integer(None)), &c);
    assert_eq!(r.verdict, Verdict::NonConforme);
    assert!(
        r.elements_manquants()
            .contains(&"le nombre de médecins adhérents".to_owned())
    );
    let r = report_li(&li_with(MED, ChampValue::YesNo(Some(true))), &c);
    assert!(
        r.text()
            .contains("[LI-DEMO-01] bloquant — valeur illisible"),
        "{}",
        r.text()
    );
    // Not mapped at all: blocking "non vérifié".
    let mut m = li_mapping();
    m.fields.remove("nb_adherents");
    let r = check(&li_dossier(), &m, &c.ctx());
    assert_eq!(r.verdict, Verdict::NonConforme);
    assert!(r.text().contains("non vérifié : aucun champ de la démarche ne donne le nombre de médecins adhérents (clé fields.nb_adherents de la configuration)"), "{}", r.text());
}

#[test]
fn at_least_ten_doctors_on_the_territory() {
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
    assert_eq!(report_li(&dd, &c).verdict, Verdict::Conforme);
    let f = run_li(&asking_derogation(li_with(MED, int("9"))), &c);
    assert_eq!(of(&f, RuleId::LiDemo01)[0].severity, Severity::Derogation);
    assert!(
        of(&f, RuleId::LiDemo01)[0]
            .message
            .ends_with("dérogation demandée, à soumettre à la CPN")
    );
}

#[test]
fn territory_codes_corsica_overseas_and_regions() {
    let c = Ctx::new();
    // Unknown codes.
    let f = run_li(
        &li_with(DEP, multi(&["75 - Paris", "99 - Nulle part", "20"])),
        &c,
    );
    let t = of(&f, RuleId::LiTerr01);
    assert_eq!(t[0].severity, Severity::Bloquant, "{}", lines(&t));
    assert!(
        t[0].message
            .starts_with("départements inconnus : « 99 - Nulle part » et « 20 »"),
        "{}",
        t[0].message
    );
    // Corsica: 2A and 2B form the whole région.
    let d = li_with(DEP, multi(&["2A - Corse-du-Sud", "2B - Haute-Corse"]));
    let f = run_li(&d, &c);
    let t = of(&f, RuleId::LiTerr01);
    assert_eq!(t.len(), 1, "{}", lines(&t));
    assert_eq!(
        t[0].message,
        "le territoire couvre toute la région Corse (2 départements)"
    );
    // An overseas département alone.
    let d = li_with(DEP, multi(&["971 - Guadeloupe"]));
    let f = run_li(&d, &c);
    assert!(blocking(&f).is_empty(), "{}", lines(&blocking(&f)));
    assert!(
        of(&f, RuleId::LiCaisse01)
            .iter()
            .any(|f| f.message.contains("CGSS de la Guadeloupe"))
    );
    // A whole région without départements.
    let mut d = li_with(DEP, ChampValue::MultipleDropDown(vec![]));
    set(
        &mut d,
        REG,
        ChampValue::Region(Some(code_name("53", "Bretagne"))),
    );
    let f = run_li(&d, &c);
    assert!(blocking(&f).is_empty(), "{}", lines(&blocking(&f)));
    assert_eq!(
        of(&f, RuleId::LiTerr01)[0].message,
        "le territoire est la région Bretagne entière (4 départements)"
    );
    let li = extract_lettre(&d, &li_mapping());
    assert_eq!(
        KnownProject::from_lettre(&li, DossierState::Accepte, &c.reference).departements,
        ["22", "29", "35", "56"]
    );
    // A région given with only part of its départements.
    let mut d = li_dossier();
    set(
        &mut d,
        REG,
        ChampValue::Region(Some(code_name("11", "Île-de-France"))),
    );
    let f = run_li(&d, &c);
    let t = of(&f, RuleId::LiTerr01);
    assert_eq!(t[0].severity, Severity::Avertissement);
    assert!(
        t[0].message
            .contains("n'en forment qu'une partie (manquent : 77, 78, 91, 93, 94 et 95)"),
        "{}",
        t[0].message
    );
    // Départements of two régions.
    let f = run_li(&li_with(DEP, multi(&["75 - Paris", "60 - Oise"])), &c);
    let t = of(&f, RuleId::LiTerr01);
    assert!(
        t.iter().any(|f| f.severity == Severity::Avertissement
            && f.message
                .contains("plusieurs régions (Île-de-France et Hauts-de-France)")),
        "{}",
        lines(&t)
    );
    // Part of a département.
    let d = li_with(DEP, multi(&["59 - Nord (partie sud)"]));
    let f = run_li(&d, &c);
    assert_eq!(of(&f, RuleId::LiTerr01)[0].severity, Severity::Bloquant);
    let f = run_li(&asking_derogation(d), &c);
    assert_eq!(of(&f, RuleId::LiTerr01)[0].severity, Severity::Derogation);
    // No territory at all.
    let f = run_li(&li_with(DEP, ChampValue::MultipleDropDown(vec![])), &c);
    assert!(
        of(&f, RuleId::LiCont01).iter().any(
            |f| f.severity == Severity::Bloquant && f.message.contains("le territoire couvert")
        )
    );
}

#[test]
fn one_specialty_not_general_practice() {
    let c = Ctx::new();
    let f = run_li(&li_with(SPE, multi(&["Médecine générale"])), &c);
    let s = of(&f, RuleId::LiSpec01);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].severity, Severity::Bloquant);
    assert_eq!(
        s[0].message,
        "la médecine générale est exclue des ESS (spécialité « Médecine générale »)"
    );
    let r = report_li(&li_with(SPE, multi(&["Cardiologie", "Pneumologie"])), &c);
    assert_eq!(r.verdict, Verdict::DerogationCpn, "{}", r.text());
    assert!(
        r.text()
            .contains("[LI-SPEC-01] dérogation — 2 spécialités (Cardiologie et Pneumologie)"),
        "{}",
        r.text()
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

#[test]
fn a_pathology_is_not_a_specialty() {
    let c = Ctx::new();
    let f = run_li(
        &li_with(
            "Périmètre médical",
            text("Prise en charge de l'insuffisance cardiaque et du Diabète"),
        ),
        &c,
    );
    let s = of(&f, RuleId::LiSpec02);
    assert_eq!(s[0].severity, Severity::Avertissement);
    assert!(
        s[0].message.starts_with(
            "le périmètre médical cite les pathologies « diabète » et « insuffisance cardiaque »"
        ),
        "{}",
        s[0].message
    );
    let f = run_li(
        &li_with(
            "Périmètre médical",
            text("Diabétologie générale de l'adulte"),
        ),
        &c,
    );
    assert!(of(&f, RuleId::LiSpec02).is_empty());
}

#[test]
fn overlap_with_accepted_pending_and_registered_ess() {
    let mut c = Ctx::new();
    let other = |numero, etat, groupe: &str, deps: &[&str]| KnownProject {
        numero,
        etat,
        date_depot: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
        groupes: vec![groupe.into()],
        departements: deps.iter().map(|s| (*s).to_owned()).collect(),
    };
    c.projets = KnownProjects::new([
        other(400, DossierState::Accepte, "cardiologie", &["92", "93"]),
        other(401, DossierState::EnInstruction, "cardiologie", &["75"]),
        other(402, DossierState::Refuse, "cardiologie", &["75"]),
        other(403, DossierState::Accepte, "pneumologie", &["75"]),
        other(501, DossierState::Accepte, "cardiologie", &["75"]),
    ]);
    let f = run_li(&li_dossier(), &c);
    let t = of(&f, RuleId::LiTerr02);
    assert_eq!(t.len(), 2, "{}", lines(&t));
    assert_eq!(t[0].severity, Severity::Bloquant);
    assert_eq!(
        t[0].message,
        "le dossier n° 400 (Cardiologie, accepté) couvre déjà 92 ; une seule ESS par spécialité et par territoire"
    );
    assert_eq!(t[1].severity, Severity::Avertissement);
    assert_eq!(
        t[1].message,
        "le dossier n° 401 (Cardiologie, en instruction) vise aussi 75 ; à arbitrer avant décision"
    );
    let mut c = Ctx::new();
    c.reference = ReferenceData::from_sources(&ReferenceSources {
        ess: Some(
            "specialite,departements,nom\nCardiologie,75,ESS Cardiologie Île-de-France\n".into(),
        ),
        ..Default::default()
    })
    .unwrap();
    let f = run_li(&li_dossier(), &c);
    assert_eq!(
        of(&f, RuleId::LiTerr02)[0].message,
        "l'ESS « ESS Cardiologie Île-de-France » (Cardiologie) couvre déjà 75 ; une seule ESS par spécialité et par territoire"
    );
}

#[test]
fn many_overlapping_dossiers_make_one_finding_per_severity() {
    let mut c = Ctx::new();
    let other = |numero, etat| KnownProject {
        numero,
        etat,
        date_depot: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
        groupes: vec!["cardiologie".into()],
        departements: vec!["75".into(), "92".into()],
    };
    c.projets = KnownProjects::new(
        (410..417)
            .map(|n| other(n, DossierState::EnInstruction))
            .chain([
                other(420, DossierState::Accepte),
                other(421, DossierState::Accepte),
            ]),
    );
    let f = run_li(&li_dossier(), &c);
    let t = of(&f, RuleId::LiTerr02);
    assert_eq!(t.len(), 2, "{}", lines(&t));
    assert_eq!(t[0].severity, Severity::Bloquant);
    assert!(
        t[0].message
            .starts_with("les dossiers n° 420 et 421 (Cardiologie, acceptés) couvrent déjà 75"),
        "{}",
        t[0].message
    );
    assert_eq!(t[1].severity, Severity::Avertissement);
    assert!(
        t[1]
            .message
            .starts_with("les dossiers n° 410, 411, 412, 413, 414 et 2 autres (Cardiologie, en cours) visent aussi"),
        "{}",
        t[1].message
    );
}

#[test]
fn figures_consistency_and_demography() {
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
    let report = report_li(&li_dossier(), &demo(65));
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
fn the_carrier_is_an_association() {
    let c = Ctx::new();
    let no_rna = li_with("Association porteuse (RNA)", ChampValue::Rna(None));
    let f = run_li(&no_rna, &c);
    let j = of(&f, RuleId::LiJur01);
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].severity, Severity::Avertissement);
    assert!(j[0].message.starts_with("aucune association identifiée"));
    let mut d = no_rna.clone();
    set(
        &mut d,
        "SIRET de l'association",
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
        "SIRET de l'association",
        siret("9220", "Association déclarée", "75", Some("W751000001")),
    );
    assert!(of(&run_li(&d, &c), RuleId::LiJur01).is_empty());
    // Alsace-Moselle: no RNA, a SIRET stands in, a human confirms.
    let mut d = no_rna.clone();
    set(
        &mut d,
        "SIRET de l'association",
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
        "Association porteuse (RNA)",
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
    assert!(lettre::siret_valide("73282932000074"));
    assert!(lettre::siret_valide("35600000000048"));
    assert!(!lettre::siret_valide("73282932000075"));
    assert!(!lettre::siret_valide("7328293200007"));
}

#[test]
fn mandatory_mentions() {
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
                champ("Nom et prénom", text("Dr B")),
                champ("Numéro RPPS", text("1234")),
            ],
        }]),
    );
    assert!(
        of(&run_li(&d, &c), RuleId::LiCont01)
            .iter()
            .any(|f| f.message.contains("11 chiffres attendus"))
    );
}

#[test]
fn both_activities_of_the_mission_socle() {
    let c = Ctx::new();
    let mut d = li_with("Activités de la mission socle", multi(&[MISSION_SOCLE[0]]));
    set(
        &mut d,
        "Actions prévues pour la mission socle",
        text("Organisation du parcours et réunions."),
    );
    let f = run_li(&d, &c);
    let m = of(&f, RuleId::LiMiss01);
    assert_eq!(m.len(), 1, "{}", lines(&m));
    assert!(m[0].message.starts_with("(b) l'avis spécialisé ponctuel"));
    set(
        &mut d,
        "Actions prévues pour la mission socle",
        text("Réponse en téléexpertise sous 48 heures."),
    );
    assert!(of(&run_li(&d, &c), RuleId::LiMiss01).is_empty());
    let mut d = li_with(
        "Activités de la mission socle",
        ChampValue::MultipleDropDown(vec![]),
    );
    set(
        &mut d,
        "Actions prévues pour la mission socle",
        text("Des avis spécialisés pour les médecins traitants."),
    );
    let m = run_li(&d, &c);
    let m = of(&m, RuleId::LiMiss01);
    assert_eq!(m.len(), 1);
    assert!(m[0].message.starts_with("(a)"));
}

#[test]
fn governance_members() {
    let c = Ctx::new();
    let g = |rows: &[(&str, &str, &str)]| {
        run_li(&li_with("Gouvernance prévue", gouvernance_rows(rows)), &c)
    };
    let f = g(&[
        ("Dr A", "Médecin spécialiste libéral", "Délibérative"),
        ("Dr G", "Médecin généraliste", "Délibérative"),
    ]);
    let x = of(&f, RuleId::LiGouv01);
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
        of(&f, RuleId::LiGouv01)[0]
            .message
            .contains("n'ont qu'une voix consultative")
    );
    let f = g(&[
        ("Dr A", "Médecin spécialiste libéral", "Consultative"),
        ("DAC 75", "DAC", "Consultative"),
    ]);
    assert_eq!(
        of(&f, RuleId::LiGouv01)[0].message,
        "aucun médecin spécialiste libéral avec voix délibérative dans la gouvernance"
    );
    let f = g(&[("Dr A", "Médecin spécialiste libéral", "")]);
    assert!(of(&f, RuleId::LiGouv01).iter().any(
        |f| f.severity == Severity::Avertissement && f.message.contains("voix non renseignée")
    ));
    let f = g(&[
        ("Dr A", "Médecin spécialiste libéral", "Délibérative"),
        ("X", "Autre", "Délibérative"),
    ]);
    assert_eq!(
        of(&f, RuleId::LiGouv01)[0].severity,
        Severity::Avertissement
    );
    let f = run_li(
        &li_with(
            "Gouvernance prévue",
            text("Bureau de trois médecins spécialistes libéraux élus."),
        ),
        &c,
    );
    assert_eq!(
        of(&f, RuleId::LiGouv01)[0].severity,
        Severity::Avertissement
    );
}

#[test]
fn cooperations_and_hospital_articulation() {
    let c = Ctx::new();
    let mut d = li_with("Coopérations prévues", multi(&["CPTS"]));
    set(&mut d, "Coopérations : précisions", ChampValue::Text(None));
    set(
        &mut d,
        "Actions prévues pour la mission socle",
        text("Second recours et téléexpertise avec les CPTS."),
    );
    let f = run_li(&d, &c);
    assert_eq!(
        of(&f, RuleId::LiCoop01)[0].message,
        "coopérations non déclarées avec le DAC, les autres ESS et les établissements de santé"
    );
    let h = of(&f, RuleId::LiHosp01);
    assert_eq!(h[0].severity, Severity::Bloquant);
    set(
        &mut d,
        "Coopérations : précisions",
        text("Convention avec le CHU de Paris."),
    );
    assert!(of(&run_li(&d, &c), RuleId::LiHosp01).is_empty());
}

#[test]
fn competent_caisse() {
    let c = Ctx::new();
    let f = run_li(&li_with(DEP, multi(&["75 - Paris"])), &c);
    assert_eq!(
        of(&f, RuleId::LiCaisse01)[0].message,
        "caisse compétente : CPAM de Paris (siège de l'association : Paris, 75)"
    );
    let f = run_li(&li_with(DEP, multi(&["92 - Hauts-de-Seine"])), &c);
    let k = of(&f, RuleId::LiCaisse01);
    assert!(
        k.iter()
            .any(|f| f.severity == Severity::Avertissement
                && f.message.contains("hors du territoire")),
        "{}",
        lines(&k)
    );
    let mut d = li_with("Association porteuse (RNA)", ChampValue::Rna(None));
    set(&mut d, DEP, multi(&["75", "92"]));
    let f = run_li(&d, &c);
    assert!(
        of(&f, RuleId::LiCaisse01)[0]
            .message
            .contains("reste à déterminer (siège inconnu)")
    );
}

// ---------------------------------------------------------------------------------------------
// Projet de santé

fn ps_ctx(etat: DossierState) -> Ctx {
    let mut c = Ctx::new();
    c.projets = KnownProjects::new([known_li(etat)]);
    c
}

fn ps_with(label: &str, v: ChampValue) -> Dossier {
    let mut d = ps_dossier();
    set(&mut d, label, v);
    d
}

#[test]
fn the_demo_projet_is_compliant() {
    let c = ps_ctx(DossierState::Accepte);
    let r = check(&ps_dossier(), &ps_mapping(), &c.ctx());
    assert_eq!(r.verdict, Verdict::Conforme, "{}", r.text());
    assert_eq!(r.count(Severity::Avertissement), 0, "{}", r.text());
    let text = r.text();
    assert!(text.contains("[PS-LINK-01] info — lettre d'intention n° 501 acceptée, déposée le 12/01/2026 (champ « Lettre d'intention »)."), "{text}");
    assert!(text.contains("[PS-DEL-01] info — projet de santé déposé le 01/06/2026, dans les 6 mois de la lettre d'intention du 12/01/2026 (échéance le 12/07/2026)"), "{text}");
    assert!(text.contains("12 adhérents pour 52 libéraux (23,1 %) ; seuil de 10 % atteint ; 30 % : 16 adhérents requis (encore 4) ; 50 % : 26 adhérents requis (encore 14)"), "{text}");
}

#[test]
fn the_linked_lettre_must_be_known_and_accepted() {
    let f = run_ps(&ps_dossier(), &Ctx::new());
    assert!(
        of(&f, RuleId::PsLink01)[0]
            .message
            .contains("n'est pas connue d'essbot")
    );
    assert_eq!(of(&f, RuleId::PsDel01)[0].severity, Severity::Info);
    let f = run_ps(&ps_dossier(), &ps_ctx(DossierState::EnInstruction));
    assert_eq!(
        of(&f, RuleId::PsLink01)[0].message,
        "la lettre d'intention n° 501 est en instruction ; elle doit être acceptée"
    );
    let f = run_ps(
        &ps_with("Lettre d'intention", ChampValue::DossierLink(None)),
        &ps_ctx(DossierState::Accepte),
    );
    assert_eq!(of(&f, RuleId::PsLink01)[0].severity, Severity::Bloquant);
    assert!(of(&f, RuleId::PsDel01).is_empty());
}

#[test]
fn six_calendar_months_clamped_to_month_end_in_paris() {
    let ts = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    assert_eq!(projet::echeance(ymd(2026, 1, 12)), ymd(2026, 7, 12));
    assert_eq!(projet::echeance(ymd(2025, 8, 31)), ymd(2026, 2, 28));
    assert_eq!(projet::echeance(ymd(2027, 8, 31)), ymd(2028, 2, 29));
    assert_eq!(projet::echeance(ymd(2026, 3, 31)), ymd(2026, 9, 30));
    for (depot, late) in [
        ("2026-07-12T10:00:00+02:00", false),
        ("2026-07-12T23:59:00+02:00", false),
        ("2026-07-12T21:30:00+00:00", false), // 23:30 in Paris
        ("2026-07-12T22:30:00+00:00", true),  // 00:30 on the 13th in Paris
        ("2026-07-13T08:00:00+02:00", true),
    ] {
        let mut d = ps_dossier();
        d.date_depot = ts(depot);
        let f = run_ps(&d, &ps_ctx(DossierState::Accepte));
        let del = of(&f, RuleId::PsDel01);
        assert_eq!(
            del[0].severity == Severity::Bloquant,
            late,
            "{depot}: {}",
            lines(&del)
        );
    }
    let mut c = Ctx::new();
    let mut li = known_li(DossierState::Accepte);
    li.date_depot = ymd(2025, 8, 31);
    c.projets = KnownProjects::new([li]);
    let mut d = ps_dossier();
    d.date_depot = ts("2026-03-01T09:00:00+01:00");
    let f = run_ps(&d, &c);
    assert_eq!(
        of(&f, RuleId::PsDel01)[0].message,
        "projet de santé déposé le 01/03/2026, plus de 6 mois après la lettre d'intention du 31/08/2025 (échéance le 28/02/2026)"
    );
    d.date_depot = ts("2026-02-28T18:00:00+01:00");
    assert_eq!(
        of(&run_ps(&d, &c), RuleId::PsDel01)[0].severity,
        Severity::Info
    );
}

#[test]
fn projet_content_and_indicators() {
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
        &ps_with("Indicateur qualitatif", ChampValue::Text(None)),
        &c,
    );
    assert_eq!(of(&f, RuleId::PsInd01)[0].severity, Severity::Bloquant);
    let f = run_ps(&ps_with("Indicateur qualitatif", text("Satisfaction")), &c);
    assert!(of(&f, RuleId::PsInd01).is_empty());
    let f = run_ps(
        &ps_with(
            "Indicateurs de suivi et d'évaluation",
            multi(&INDICATEURS[..3]),
        ),
        &c,
    );
    assert_eq!(
        of(&f, RuleId::PsInd02)[0].message,
        "indicateurs nationaux non repris : nombre de membres proposant des consultations avancées et nombre de consultations avancées réalisées"
    );
    let f = run_ps(
        &ps_with(
            "Indicateurs de suivi et d'évaluation",
            multi(&INDICATEURS[3..]),
        ),
        &c,
    );
    assert!(
        of(&f, RuleId::PsInd02)[0]
            .message
            .starts_with("indicateurs nationaux non repris : nombre de professionnels")
    );
    let f = run_ps(
        &ps_with(
            "Indicateurs de suivi et d'évaluation",
            ChampValue::MultipleDropDown(vec![]),
        ),
        &c,
    );
    assert!(of(&f, RuleId::PsInd02).is_empty());
    assert!(
        of(&f, RuleId::PsCont01)[0]
            .message
            .contains("indicateurs de suivi")
    );
}

#[test]
fn projet_ratio_and_progress() {
    let c = ps_ctx(DossierState::Accepte);
    let with = |adh: &str, lib: &str| {
        let mut d = ps_with("Nombre de médecins adhérents", int(adh));
        set(&mut d, LIB, int(lib));
        run_ps(&d, &c)
    };
    let f = with("4", "52");
    assert_eq!(of(&f, RuleId::PsAdh01)[0].severity, Severity::Bloquant);
    let f = with("5", "50");
    assert!(of(&f, RuleId::PsAdh01)[0].message.ends_with(
        "30 % : 15 adhérents requis (encore 10) ; 50 % : 25 adhérents requis (encore 20)"
    ));
    let f = with("15", "50");
    assert!(
        of(&f, RuleId::PsAdh01)[0]
            .message
            .contains("seuils de 10 % et 30 % atteints ; 50 % : 25 adhérents requis (encore 10)")
    );
    let f = with("26", "52");
    assert!(
        of(&f, RuleId::PsAdh01)[0]
            .message
            .ends_with("seuils de 10 %, 30 % et 50 % atteints")
    );
    let f = with("3", "0");
    assert_eq!(of(&f, RuleId::PsAdh01)[0].severity, Severity::Bloquant);
    let f = run_ps(&ps_with("Nombre de médecins adhérents", text("douze")), &c);
    assert_eq!(of(&f, RuleId::PsAdh01)[0].severity, Severity::Bloquant);
}

#[test]
fn projet_governance_is_checked_like_the_lettre() {
    let c = ps_ctx(DossierState::Accepte);
    let f = run_ps(
        &ps_with(
            "Gouvernance",
            gouvernance_rows(&[("Dr G", "Médecin généraliste", "Délibérative")]),
        ),
        &c,
    );
    let g = of(&f, RuleId::PsGouv01);
    assert_eq!(g.len(), 2, "{}", lines(&g));
    assert!(g.iter().all(|f| f.severity == Severity::Bloquant));
}

#[test]
fn batch_check_and_known_projects() {
    let c = Ctx::new();
    let reports = check_batch(
        &[li_dossier(), li_with(ADH, int("1"))],
        &li_mapping(),
        &c.ctx(),
    );
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].verdict, Verdict::Conforme);
    assert_eq!(reports[1].verdict, Verdict::NonConforme);
    let li = extract_lettre(&li_dossier(), &li_mapping());
    let p = KnownProject::from_lettre(&li, DossierState::Accepte, &c.reference);
    assert_eq!(p.groupes, ["cardiologie"]);
    assert_eq!(p.departements, ["75", "92"]);
    assert_eq!(p.date_depot, NaiveDate::from_ymd_opt(2026, 1, 12).unwrap());
    assert_eq!(p.status(), Some(ProjectStatus::Accepte));
    assert_eq!(RuleId::ALL.len(), 21);
}

#[test]
fn a_perimeter_naming_its_specialty_may_list_diseases() {
    let c = Ctx::new();
    // The demo's neurology and pneumology ESS list diseases within their specialty.
    for perimetre in [
        "Neurologie : épilepsie, maladie de Parkinson, sclérose en plaques, céphalées.",
        "Cardiologie : insuffisance cardiaque, rythmologie, prévention cardiovasculaire.",
    ] {
        let f = run_li(&li_with("Périmètre médical", text(perimetre)), &c);
        assert!(of(&f, RuleId::LiSpec02).is_empty(), "{perimetre}");
    }
    let f = run_li(
        &li_with("Périmètre médical", text("Dépistage et suivi du glaucome.")),
        &c,
    );
    assert_eq!(of(&f, RuleId::LiSpec02).len(), 1);
}

#[test]
fn a_pending_dossier_filed_later_does_not_already_cover() {
    // The fixture is filed on 2026-01-12 (number 501).
    let mut c = Ctx::new();
    let pending = |numero, jour| KnownProject {
        numero,
        etat: DossierState::EnConstruction,
        date_depot: NaiveDate::from_ymd_opt(2026, 1, jour).unwrap(),
        groupes: vec!["cardiologie".into()],
        departements: vec!["75".into()],
    };
    c.projets = KnownProjects::new([pending(600, 13), pending(601, 11), pending(502, 12)]);
    let f = run_li(&li_dossier(), &c);
    let t = of(&f, RuleId::LiTerr02);
    assert_eq!(t.len(), 1, "{}", lines(&t));
    assert!(
        t[0].message.starts_with("le dossier n° 601 "),
        "{}",
        t[0].message
    );
    // Accepted, it blocks whatever the filing order.
    c.projets = KnownProjects::new([KnownProject {
        etat: DossierState::Accepte,
        ..pending(600, 13)
    }]);
    let f = run_li(&li_dossier(), &c);
    assert_eq!(of(&f, RuleId::LiTerr02)[0].severity, Severity::Bloquant);
}
