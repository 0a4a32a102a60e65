//! The territory: LI-TERR-01 (whole départements or a whole région), LI-TERR-02 (no other ESS
//! of the specialty there) and LI-CAISSE-01 (the competent caisse).

use std::collections::BTreeSet;

use super::common::{broken, unread};
use super::extract::{LettreIntention, Lieu, Read};
use super::reference::{ReferenceData, SpecialtyGroup};
use super::text::{count, join_et, quote};
use super::{Finding, ProjectStatus, RuleContext, RuleId, Severity};
use crate::ds::model::Demandeur;

use RuleId::*;

/// The territory a lettre d'intention declares, read against the reference tables.
#[derive(Debug, Clone, Default)]
pub(super) struct Territory {
    /// Known département codes (from the départements champ, or the whole région when only a
    /// région is given or named).
    pub codes: BTreeSet<String>,
    /// Entries that name no known département or région.
    unknown: Vec<String>,
    /// Entries that name part of a département ("Finistère nord", a commune).
    partial: Vec<String>,
    /// Entries that name a département with words essbot cannot account for ("Brest et
    /// Quimper (Finistère)"): whole or not is for a human to say.
    doubtful: Vec<String>,
}

/// Reads the territory: each entry of the départements champ, else the région champ.
pub(super) fn territory(li: &LettreIntention, reference: &ReferenceData) -> Territory {
    let mut t = Territory::default();
    if let Some(entries) = li.territoire_departements.value() {
        for e in entries {
            match e {
                Lieu::Commune { nom, departement } => {
                    t.partial.push(format!("commune de {nom}"));
                    if let Some(d) = departement
                        .as_deref()
                        .and_then(|d| reference.departement(d))
                    {
                        t.codes.insert(d.code.clone());
                    }
                }
                Lieu::Saisie(s) => {
                    let p = reference.places_in(s);
                    let mut codes: Vec<String> = p.departements.clone();
                    for r in &p.regions {
                        codes.extend(reference.departements_of_region(r));
                    }
                    if codes.is_empty() {
                        t.unknown.push(s.clone());
                        continue;
                    }
                    if !p.partial_words.is_empty() {
                        t.partial.push(s.clone());
                    } else if !p.other_words.is_empty() {
                        t.doubtful.push(s.clone());
                    }
                    t.codes.extend(codes);
                }
            }
        }
    } else if let Some(r) = li
        .territoire_region
        .value()
        .and_then(|r| reference.resolve_region(r))
    {
        t.codes.extend(reference.departements_of_region(&r.code));
    }
    t
}

/// LI-TERR-01: whole départements or a whole région.
pub(super) fn li_terr_01(
    li: &LettreIntention,
    t: &Territory,
    derog: bool,
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    let dep_champ = li
        .territoire_departements
        .champ()
        .unwrap_or_default()
        .to_owned();
    let (sev, suffix) = broken(derog);
    if !t.unknown.is_empty() {
        let shown: Vec<String> = t.unknown.iter().map(|u| quote(u)).collect();
        out.push(
            Finding::new(
                LiTerr01,
                sev,
                format!(
                    "{} : {} ; le territoire se compose de départements entiers (codes INSEE 01 à 95, 2A, 2B, 971 à 976) ou d'une région entière{suffix}",
                    if t.unknown.len() > 1 { "départements inconnus" } else { "département inconnu" },
                    join_et(&shown)
                ),
            )
            .champ(&dep_champ, Some(t.unknown.join(", ")))
            .a_completer("des départements entiers (codes INSEE)"),
        );
    }
    if !t.partial.is_empty() {
        let shown: Vec<String> = t.partial.iter().map(|u| quote(u)).collect();
        out.push(
            Finding::new(
                LiTerr01,
                sev,
                format!(
                    "territoire infra-départemental : {} ; le cahier des charges exige des départements entiers ou une région entière{suffix}",
                    join_et(&shown)
                ),
            )
            .champ(&dep_champ, Some(t.partial.join(", "))),
        );
    }
    if !t.doubtful.is_empty() {
        let shown: Vec<String> = t.doubtful.iter().map(|u| quote(u)).collect();
        out.push(
            Finding::new(
                LiTerr01,
                Severity::AVerifier,
                format!(
                    "territoire à préciser : {} nomme un département avec d'autres mots ; vérifier qu'il s'agit du département entier",
                    join_et(&shown)
                ),
            )
            .champ(&dep_champ, Some(t.doubtful.join(", "))),
        );
    }
    let codes: Vec<String> = t.codes.iter().cloned().collect();
    match &li.territoire_region {
        Read::Ok { champ, value } => match ctx.reference.resolve_region(value) {
            None => out.push(
                Finding::new(
                    LiTerr01,
                    Severity::Avertissement,
                    format!("région inconnue {}", quote(value)),
                )
                .champ(champ, Some(value.clone())),
            ),
            Some(r) => {
                let all = ctx.reference.departements_of_region(&r.code);
                let outside: Vec<String> =
                    codes.iter().filter(|c| !all.contains(c)).cloned().collect();
                let missing: Vec<String> = all
                    .iter()
                    .filter(|c| !t.codes.contains(*c))
                    .cloned()
                    .collect();
                let f = if !li.territoire_departements.is_ok() {
                    Finding::new(
                        LiTerr01,
                        Severity::Info,
                        format!(
                            "le territoire est la région {} entière ({})",
                            r.nom,
                            count(all.len(), "département", "départements")
                        ),
                    )
                    .champ(champ, Some(value.clone()))
                } else if !outside.is_empty() {
                    Finding::new(
                        LiTerr01,
                        Severity::Avertissement,
                        format!(
                            "départements hors de la région {} indiquée : {}",
                            r.nom,
                            join_et(&outside)
                        ),
                    )
                    .champ(champ, Some(value.clone()))
                    .champ(&dep_champ, Some(codes.join(", ")))
                } else if !missing.is_empty() {
                    Finding::new(
                        LiTerr01,
                        Severity::Avertissement,
                        format!(
                            "la région {} est indiquée mais les départements couverts n'en forment qu'une partie (manquent : {}) ; territoire retenu : les départements indiqués",
                            r.nom,
                            join_et(&missing)
                        ),
                    )
                    .champ(champ, Some(value.clone()))
                    .champ(&dep_champ, Some(codes.join(", ")))
                } else {
                    Finding::new(
                        LiTerr01,
                        Severity::Info,
                        format!(
                            "le territoire couvre toute la région {} ({})",
                            r.nom,
                            count(all.len(), "département", "départements")
                        ),
                    )
                    .champ(champ, Some(value.clone()))
                };
                out.push(f);
            }
        },
        other => out.extend(unread(LiTerr01, other, false, "la région couverte")),
    }
    if !li.territoire_region.is_ok() && !codes.is_empty() {
        let regions: BTreeSet<&str> = codes
            .iter()
            .filter_map(|c| ctx.reference.departement(c))
            .map(|d| d.region.as_str())
            .collect();
        let names: Vec<String> = regions
            .iter()
            .filter_map(|r| ctx.reference.region(r))
            .map(|r| r.nom.clone())
            .collect();
        if regions.len() > 1 {
            out.push(
                Finding::new(
                    LiTerr01,
                    Severity::Avertissement,
                    format!("le territoire s'étend sur plusieurs régions ({}) : ARS compétente à déterminer", join_et(&names)),
                )
                .champ(&dep_champ, Some(codes.join(", "))),
            );
        } else if let Some(r) = regions.first()
            && ctx.reference.departements_of_region(r) == codes
            && codes.len() > 1
        {
            out.push(
                Finding::new(
                    LiTerr01,
                    Severity::Info,
                    format!(
                        "le territoire couvre toute la région {} ({})",
                        names.join(""),
                        count(codes.len(), "département", "départements")
                    ),
                )
                .champ(&dep_champ, Some(codes.join(", "))),
            );
        }
    }
}

/// LI-TERR-02: no ESS of the same specialty on these départements.
pub(super) fn li_terr_02(
    li: &LettreIntention,
    t: &Territory,
    groups: &[&SpecialtyGroup],
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    if groups.is_empty() || t.codes.is_empty() {
        return;
    }
    let champ = li
        .territoire_departements
        .champ()
        .or(li.territoire_region.champ())
        .unwrap_or_default()
        .to_owned();
    let libelle = |id: &str| {
        ctx.reference
            .specialite(id)
            .map(|g| g.libelle.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let overlap = |deps: &[String]| -> Vec<String> {
        deps.iter()
            .filter(|d| t.codes.contains(*d))
            .cloned()
            .collect()
    };
    for ess in ctx.reference.ess() {
        if !groups.iter().any(|g| g.id == ess.groupe) {
            continue;
        }
        let common = overlap(&ess.departements);
        if !common.is_empty() {
            out.push(
                Finding::new(
                    LiTerr02,
                    Severity::Bloquant,
                    format!(
                        "l'ESS {} ({}) couvre déjà {} ; une seule ESS par spécialité et par territoire",
                        quote(&ess.nom),
                        libelle(&ess.groupe),
                        join_et(&common)
                    ),
                )
                .champ(&champ, Some(common.join(", "))),
            );
        }
    }
    let mut accepted = Vec::new();
    let mut pending = Vec::new();
    for p in ctx
        .projets
        .overlapping(groups.iter().map(|g| g.id.as_str()), &t.codes)
    {
        if p.numero == li.numero {
            continue;
        }
        let Some(status) = p.status() else { continue };
        // A pending dossier filed after this one does not "already cover" its territory: it is
        // that later dossier's report that names this one.
        if status == ProjectStatus::EnCours && (p.date_depot, p.numero) > (li.date_depot, li.numero)
        {
            continue;
        }
        let Some(shared) = p
            .groupes
            .iter()
            .find(|g| groups.iter().any(|x| &x.id == *g))
        else {
            continue;
        };
        match status {
            ProjectStatus::Accepte => accepted.push((p, shared)),
            ProjectStatus::EnCours => pending.push((p, shared)),
        }
    }
    // One finding per severity, naming every overlapping dossier: a territory contested by many
    // dossiers stays one line for the instructor (and one finding to store), not dozens.
    for (list, status) in [
        (&accepted, ProjectStatus::Accepte),
        (&pending, ProjectStatus::EnCours),
    ] {
        let Some(&(first, shared)) = list.first() else {
            continue;
        };
        let common: Vec<String> = list
            .iter()
            .flat_map(|(p, _)| p.departements.iter().filter(|d| t.codes.contains(*d)))
            .collect::<BTreeSet<&String>>()
            .into_iter()
            .cloned()
            .collect();
        let (sev, msg) = match (status, list.len()) {
            (ProjectStatus::Accepte, 1) => (
                Severity::Bloquant,
                format!(
                    "le dossier n° {} ({}, accepté) couvre déjà {} ; une seule ESS par spécialité et par territoire",
                    first.numero,
                    libelle(shared),
                    join_et(&common)
                ),
            ),
            (ProjectStatus::EnCours, 1) => (
                Severity::Avertissement,
                format!(
                    "le dossier n° {} ({}, {}) vise aussi {} ; à arbitrer avant décision",
                    first.numero,
                    libelle(shared),
                    first.etat.libelle(),
                    join_et(&common)
                ),
            ),
            (ProjectStatus::Accepte, _) => (
                Severity::Bloquant,
                format!(
                    "les dossiers {} ({}, acceptés) couvrent déjà {} ; une seule ESS par spécialité et par territoire",
                    numeros(list.iter().map(|(p, _)| p.numero)),
                    libelle(shared),
                    join_et(&common)
                ),
            ),
            (ProjectStatus::EnCours, _) => (
                Severity::Avertissement,
                format!(
                    "les dossiers {} ({}, en cours) visent aussi {} ; à arbitrer avant décision",
                    numeros(list.iter().map(|(p, _)| p.numero)),
                    libelle(shared),
                    join_et(&common)
                ),
            ),
        };
        out.push(Finding::new(LiTerr02, sev, msg).champ(&champ, Some(common.join(", "))));
    }
}

/// "n° 3, 7 et 12", or the first five and how many more.
fn numeros(list: impl Iterator<Item = i64>) -> String {
    const SHOWN: usize = 5;
    let all: Vec<String> = list.map(|n| n.to_string()).collect();
    if all.len() <= SHOWN {
        format!("n° {}", join_et(&all))
    } else {
        format!(
            "n° {} et {} autres",
            all[..SHOWN].join(", "),
            all.len() - SHOWN
        )
    }
}

/// Where the association's seat is: the seat champ, else the association's RNA or SIRET data,
/// else the filer when it is a legal person. (champ label, département code); the label is
/// `"demandeur"` when it comes from the filer.
pub(super) fn seat(
    li: &LettreIntention,
    from_association: Option<(String, String)>,
    reference: &ReferenceData,
) -> Option<(String, String)> {
    if let Read::Ok { champ, value } = &li.siege {
        let code = value.departement.clone().or_else(|| {
            let p = reference.places_in(&value.texte);
            match p.departements.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        });
        if let Some(c) = code {
            return Some((champ.clone(), c));
        }
    }
    if from_association.is_some() {
        return from_association;
    }
    match &li.demandeur {
        Demandeur::PersonneMorale {
            departement_code: Some(d),
            ..
        } => Some(("demandeur".to_owned(), d.clone())),
        _ => None,
    }
}

/// LI-CAISSE-01: the competent caisse is the one of the association's seat. `seat` is what
/// LI-JUR-01 found of it in the association's data.
pub(super) fn li_caisse_01(
    li: &LettreIntention,
    t: &Territory,
    from_association: Option<(String, String)>,
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    out.extend(unread(
        LiCaisse01,
        &li.siege,
        false,
        "la commune du siège de l'association",
    ));
    if t.codes.is_empty() {
        return;
    }
    let caisses: BTreeSet<&str> = t
        .codes
        .iter()
        .filter_map(|c| ctx.reference.departement(c))
        .map(|d| d.caisse.as_str())
        .collect();
    let list: Vec<String> = caisses.iter().map(|s| (*s).to_owned()).collect();
    let seat_dep = seat(li, from_association, ctx.reference).and_then(|(c, d)| {
        super::reference::canonical_departement_code(&d)
            .and_then(|d| ctx.reference.departement(&d))
            .map(|dep| (c, dep))
    });
    let f = match seat_dep {
        Some((champ, dep)) => {
            let inside = t.codes.contains(&dep.code);
            let msg = if !inside {
                format!(
                    "le siège de l'association ({}, {}) est hors du territoire couvert : caisse compétente à confirmer (caisse du siège : {} ; {} du territoire : {})",
                    dep.nom,
                    dep.code,
                    dep.caisse,
                    if caisses.len() > 1 {
                        "caisses"
                    } else {
                        "caisse"
                    },
                    list.join(" ; ")
                )
            } else if caisses.len() > 1 {
                format!(
                    "le territoire relève de {} ({}) ; la caisse compétente est celle du siège de l'association : {} (siège : {}, {})",
                    count(caisses.len(), "caisse", "caisses"),
                    list.join(" ; "),
                    dep.caisse,
                    dep.nom,
                    dep.code
                )
            } else {
                format!(
                    "caisse compétente : {} (siège de l'association : {}, {})",
                    dep.caisse, dep.nom, dep.code
                )
            };
            let severity = if inside {
                Severity::Info
            } else {
                Severity::Avertissement
            };
            let f = Finding::new(LiCaisse01, severity, msg);
            if champ == "demandeur" {
                f
            } else {
                f.champ(champ, Some(dep.code.clone()))
            }
        }
        None if caisses.len() > 1 => Finding::new(
            LiCaisse01,
            Severity::Info,
            format!(
                "le territoire relève de {} ({}) ; la caisse compétente, celle du siège de l'association, reste à déterminer (siège inconnu)",
                count(caisses.len(), "caisse", "caisses"),
                list.join(" ; ")
            ),
        ),
        None => Finding::new(
            LiCaisse01,
            Severity::Info,
            format!("caisse du territoire : {}", list.join("")),
        ),
    };
    out.push(f);
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::super::testutil::*;
    use super::super::*;
    use crate::ds::model::{ChampValue, DossierState};

    const DEP: &str = "Départements couverts";
    const REG: &str = "Région couverte";

    fn terr(f: &[Finding]) -> Vec<&Finding> {
        of(f, RuleId::LiTerr01)
    }

    /// The territory as people write it, in a text champ: each entry and what LI-TERR-01 makes
    /// of it (no finding, or the severity of the one it gives).
    #[test]
    fn li_terr_01_reads_territories_as_people_write_them() {
        let c = Ctx::new();
        let cases: &[(&str, &[&str], Option<Severity>)] = &[
            ("44, 49", &["44", "49"], None),
            ("Paris (75), Hauts-de-Seine (92)", &["75", "92"], None),
            ("75 – Paris", &["75"], None),
            ("75 - Paris\n92 - Hauts-de-Seine", &["75", "92"], None),
            ("Paris et Hauts-de-Seine", &["75", "92"], None),
            ("Loir-et-Cher", &["41"], None),
            ("Seine-et-Marne ; Val-de-Marne", &["77", "94"], None),
            ("2A, 2B", &["2A", "2B"], None),
            ("Corse-du-Sud et Haute-Corse", &["2A", "2B"], None),
            ("Guadeloupe (971)", &["971"], None),
            ("Réunion", &["974"], None),
            ("Département du Finistère en totalité", &["29"], None),
            (
                "Finistère nord (pays de Brest et de Morlaix)",
                &["29"],
                Some(Severity::Bloquant),
            ),
            ("59 - Nord (partie sud)", &["59"], Some(Severity::Bloquant)),
            ("59 - Nord", &["59"], None),
            ("Nord (59)", &["59"], None),
            ("Nord et Pas-de-Calais", &["59", "62"], None),
            (
                "Brest et Quimper (Finistère)",
                &["29"],
                Some(Severity::AVerifier),
            ),
            ("99 - Inconnu", &[], Some(Severity::Bloquant)),
            ("Pays de Brest", &[], Some(Severity::Bloquant)),
        ];
        for (written, codes, severity) in cases {
            let d = li_with_departements_text(written);
            let li = extract_lettre(&d, &li_text_territory_mapping());
            let t = super::territory(&li, &c.reference);
            let got: Vec<&str> = t.codes.iter().map(String::as_str).collect();
            let mut want: Vec<&str> = codes.to_vec();
            want.sort_unstable();
            assert_eq!(got, want, "{written}");
            let f = evaluate_lettre(&li, &c.ctx());
            let worst = terr(&f)
                .iter()
                .map(|f| f.severity)
                .filter(|s| *s < Severity::Avertissement)
                .min();
            assert_eq!(worst, *severity, "{written}: {}", lines(&terr(&f)));
        }
    }

    #[test]
    fn li_terr_01_a_region_named_among_the_departements_is_the_whole_region() {
        let c = Ctx::new();
        let d = li_with_departements_text("Région Bretagne");
        let li = extract_lettre(&d, &li_text_territory_mapping());
        let t = super::territory(&li, &c.reference);
        assert_eq!(t.codes.len(), 4);
        // With the région champ filled too: the same région, no finding but the info.
        let mut d = li_with_departements_text("Région Bretagne");
        set(
            &mut d,
            REG,
            ChampValue::Region(Some(code_name("53", "Bretagne"))),
        );
        let f = run_li_with(&d, &li_text_territory_mapping(), &c);
        let t = terr(&f);
        assert_eq!(t.len(), 1, "{}", lines(&t));
        assert_eq!(
            t[0].message,
            "le territoire couvre toute la région Bretagne (4 départements)"
        );
    }

    #[test]
    fn li_terr_01_codes_corsica_overseas_and_regions() {
        let c = Ctx::new();
        // Unknown codes.
        let f = run_li(
            &li_with(DEP, multi(&["75 - Paris", "99 - Nulle part", "20"])),
            &c,
        );
        let t = terr(&f);
        assert_eq!(t[0].severity, Severity::Bloquant, "{}", lines(&t));
        assert!(
            t[0].message
                .starts_with("départements inconnus : « 99 - Nulle part » et « 20 »"),
            "{}",
            t[0].message
        );
        // Asked derogation: the CPN decides, not essbot.
        let f = run_li(
            &asking_derogation(li_with(DEP, multi(&["75 - Paris", "Pays de Brest"]))),
            &c,
        );
        assert_eq!(terr(&f)[0].severity, Severity::Derogation);
        // Corsica: 2A and 2B form the whole région.
        let d = li_with(DEP, multi(&["2A - Corse-du-Sud", "2B - Haute-Corse"]));
        let f = run_li(&d, &c);
        let t = terr(&f);
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
            terr(&f)[0].message,
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
        let t = terr(&f);
        assert_eq!(t[0].severity, Severity::Avertissement);
        assert!(
            t[0].message
                .contains("n'en forment qu'une partie (manquent : 77, 78, 91, 93, 94 et 95)"),
            "{}",
            t[0].message
        );
        // Départements of two régions.
        let f = run_li(&li_with(DEP, multi(&["75 - Paris", "60 - Oise"])), &c);
        assert!(
            terr(&f)
                .iter()
                .any(|f| f.severity == Severity::Avertissement
                    && f.message
                        .contains("plusieurs régions (Île-de-France et Hauts-de-France)")),
            "{}",
            lines(&terr(&f))
        );
        // Part of a département, and a derogation asked for it.
        let d = li_with(DEP, multi(&["59 - Nord (partie sud)"]));
        let f = run_li(&d, &c);
        assert_eq!(terr(&f)[0].severity, Severity::Bloquant);
        let f = run_li(&asking_derogation(d), &c);
        assert_eq!(terr(&f)[0].severity, Severity::Derogation);
        // No territory at all.
        let f = run_li(&li_with(DEP, ChampValue::MultipleDropDown(vec![])), &c);
        assert!(of(&f, RuleId::LiCont01).iter().any(
            |f| f.severity == Severity::Bloquant && f.message.contains("le territoire couvert")
        ));
    }

    /// A communes champ gives communes, never whole départements.
    #[test]
    fn li_terr_01_a_communes_champ_is_part_of_a_departement() {
        let c = Ctx::new();
        let mut m = li_mapping();
        let dep = m.fields.get_mut("territoire_departements").unwrap();
        dep.type_de_champ = "communes".into();
        let d = li_with(
            DEP,
            ChampValue::Commune {
                commune: Some(code_name("29019", "Brest")),
                departement: Some(code_name("29", "Finistère")),
            },
        );
        let f = run_li_with(&d, &m, &c);
        let t = terr(&f);
        assert_eq!(t[0].severity, Severity::Bloquant, "{}", lines(&t));
        assert_eq!(
            t[0].message,
            "territoire infra-départemental : « commune de Brest » ; le cahier des charges exige des départements entiers ou une région entière"
        );
    }

    /// DS's départements champ inside a repetition, one per row.
    #[test]
    fn li_terr_01_a_repetition_of_departement_champs() {
        let c = Ctx::new();
        let (d, m) =
            li_with_departements_repetition(&[("29", "Finistère"), ("22", "Côtes-d'Armor")]);
        let li = extract_lettre(&d, &m);
        let t = super::territory(&li, &c.reference);
        assert_eq!(t.codes.iter().collect::<Vec<_>>(), ["22", "29"]);
        assert!(blocking(&evaluate_lettre(&li, &c.ctx())).is_empty());
    }

    #[test]
    fn li_terr_02_overlap_with_accepted_pending_and_registered_ess() {
        let mut c = Ctx::new();
        let other = |numero, etat, groupe: &str, deps: &[&str]| KnownProject {
            numero,
            etat,
            date_depot: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
            groupes: vec![groupe.into()],
            departements: deps.iter().map(|s| (*s).to_owned()).collect(),
            derogation: false,
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
                "specialite,departements,nom\nCardiologie,75,ESS Cardiologie Île-de-France\n"
                    .into(),
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
    fn li_terr_02_many_overlapping_dossiers_make_one_finding_per_severity() {
        let mut c = Ctx::new();
        let other = |numero, etat| KnownProject {
            numero,
            etat,
            date_depot: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
            groupes: vec!["cardiologie".into()],
            departements: vec!["75".into(), "92".into()],
            derogation: false,
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
            t[1].message.starts_with(
                "les dossiers n° 410, 411, 412, 413, 414 et 2 autres (Cardiologie, en cours) visent aussi"
            ),
            "{}",
            t[1].message
        );
    }

    #[test]
    fn li_terr_02_a_pending_dossier_filed_later_does_not_already_cover() {
        // The fixture is filed on 2026-01-12 (number 501).
        let mut c = Ctx::new();
        let pending = |numero, jour| KnownProject {
            numero,
            etat: DossierState::EnConstruction,
            date_depot: NaiveDate::from_ymd_opt(2026, 1, jour).unwrap(),
            groupes: vec!["cardiologie".into()],
            departements: vec!["75".into()],
            derogation: false,
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

    #[test]
    fn li_caisse_01_the_caisse_of_the_seat() {
        let c = Ctx::new();
        let f = run_li(&li_with(DEP, multi(&["75 - Paris"])), &c);
        assert_eq!(
            of(&f, RuleId::LiCaisse01)[0].message,
            "caisse compétente : CPAM de Paris (siège de l'association : Paris, 75)"
        );
        let f = run_li(&li_with(DEP, multi(&["92 - Hauts-de-Seine"])), &c);
        let k = of(&f, RuleId::LiCaisse01);
        assert!(
            k.iter().any(|f| f.severity == Severity::Avertissement
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

    /// The seat's commune given in its own champ decides the caisse, before the association's
    /// registered address.
    #[test]
    fn li_caisse_01_the_seat_champ_decides() {
        let c = Ctx::new();
        let (d, m) = li_with_siege(ChampValue::Commune {
            commune: Some(code_name("92012", "Boulogne-Billancourt")),
            departement: Some(code_name("92", "Hauts-de-Seine")),
        });
        let f = run_li_with(&d, &m, &c);
        let k = of(&f, RuleId::LiCaisse01);
        assert_eq!(
            k[0].message,
            "le territoire relève de 2 caisses (CPAM de Paris ; CPAM des Hauts-de-Seine) ; la caisse compétente est celle du siège de l'association : CPAM des Hauts-de-Seine (siège : Hauts-de-Seine, 92)"
        );
        assert_eq!(k[0].evidence[0].champ, "Siège de l'association");
        // An address geocoded by DS, and a text naming the département.
        let (d, m) = li_with_siege(ChampValue::Address {
            label: Some("1 place de la Mairie 92100 Boulogne-Billancourt".into()),
            city_code: Some("92012".into()),
            departement: None,
        });
        assert!(
            of(&run_li_with(&d, &m, &c), RuleId::LiCaisse01)[0]
                .message
                .contains("CPAM des Hauts-de-Seine (siège")
        );
        let (d, m) = li_with_siege(ChampValue::Text(Some("Boulogne-Billancourt (92)".into())));
        assert!(
            of(&run_li_with(&d, &m, &c), RuleId::LiCaisse01)[0]
                .message
                .contains("CPAM des Hauts-de-Seine (siège")
        );
        // A postal code alone is not a département.
        let (d, m) = li_with_siege(ChampValue::Text(Some("92100 Boulogne".into())));
        assert!(
            of(&run_li_with(&d, &m, &c), RuleId::LiCaisse01)[0]
                .message
                .contains("CPAM de Paris (siège")
        );
    }
}
