//! The mapping between a démarche's champs and the domain fields of rules.md.
//!
//! A démarche's configuration names each champ by label or by stable id; [`resolve`] checks
//! those names once against the démarche's descriptors, so that a renamed or retyped champ is a
//! configuration error naming the closest labels, reported before any dossier is checked,
//! instead of every dossier failing for the same reason. [`describe`] helps write a mapping.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::text::normalize;
use crate::config::{
    ANNOTATION_KEYS, ChampRef, DemarcheKind, DemarcheSettings, LI_FIELDS, PS_FIELDS, Problem,
    SUIVI_KEYS,
};
use crate::ds::model::{ChampDescriptor, DemarcheDescriptors};

/// A configured champ, found on the démarche.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedChamp {
    /// Stable descriptor id, the key to find the champ in a dossier.
    pub descriptor_id: String,
    /// Label as the démarche writes it, used as evidence in findings.
    pub label: String,
    /// The `TypeDeChamp` (`integer_number`), which also names the annotation input key.
    pub type_de_champ: String,
    /// The type is accepted but not the expected one (e.g. a number in a text champ), so the
    /// value is parsed and may turn out unreadable.
    pub tolerated: bool,
}

/// A démarche's mapping, checked against its descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMapping {
    /// Démarche number.
    pub demarche: i64,
    /// Which rules apply to its dossiers.
    pub kind: DemarcheKind,
    /// Domain field → champ.
    pub fields: BTreeMap<String, ResolvedChamp>,
    /// `rapport`, `conforme`, `prochaine_echeance` → annotation.
    pub annotations: BTreeMap<String, ResolvedChamp>,
    /// Follow-up key → annotation.
    pub suivi: BTreeMap<String, ResolvedChamp>,
    /// Domain fields of this kind that no champ gives: the rules needing them say "non vérifié".
    pub not_checked: Vec<&'static str>,
    /// Accepted with a remark (tolerated type, label matched ignoring case or accents).
    pub notes: Vec<String>,
}

/// One problem of a mapping, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    /// `fields.nb_adherents`, `annotations.rapport`…
    pub key: String,
    pub message: String,
}

/// Every problem of a démarche's mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("démarche {demarche}: {} mapping problem(s): {}", problems.len(), problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
pub struct MappingError {
    /// Démarche number.
    pub demarche: i64,
    /// Every problem found, not just the first.
    pub problems: Vec<MappingProblem>,
}

impl MappingError {
    /// The problems as `config check` lists them, under `demarches[index]`.
    pub fn to_problems(&self, index: usize) -> Vec<Problem> {
        self.problems
            .iter()
            .map(|p| Problem {
                path: format!("demarches[{index}].{}", p.key),
                message: p.message.clone(),
            })
            .collect()
    }
}

/// What a key accepts: the champ types that give it directly, those tolerated (parsed), and
/// label wordings to recognise it by in [`describe`].
struct Spec {
    key: &'static str,
    expected: &'static str,
    strict: &'static [&'static str],
    tolerated: &'static [&'static str],
    hints: &'static [&'static str],
}

const TEXT: &[&str] = &["text", "textarea"];
const TEXT_TOLERATED: &[&str] = &[
    "drop_down_list",
    "multiple_drop_down_list",
    "linked_drop_down_list",
];
const INTEGER: &[&str] = &["integer_number", "number"];
const INTEGER_TOLERATED: &[&str] = &["decimal_number", "text"];
const CHOICES: &[&str] = &["multiple_drop_down_list", "drop_down_list"];
const CHOICES_TOLERATED: &[&str] = &["text", "textarea", "linked_drop_down_list"];
const DATE: &[&str] = &["date"];

fn spec(key: &str) -> Option<Spec> {
    let s = |key, expected, strict, tolerated, hints| Spec {
        key,
        expected,
        strict,
        tolerated,
        hints,
    };
    Some(match key {
        "porteurs" => s(
            "porteurs",
            "a repetition",
            &["repetition"],
            TEXT,
            &["porteurs du projet", "porteurs", "medecins porteurs"],
        ),
        "specialites" => s(
            "specialites",
            "a (multiple) drop-down list",
            CHOICES,
            CHOICES_TOLERATED,
            &[
                "specialite concernee",
                "specialites concernees",
                "specialite",
            ],
        ),
        "territoire_departements" => s(
            "territoire_departements",
            "a département champ or a (multiple) drop-down list",
            &["multiple_drop_down_list", "drop_down_list", "departements"],
            &["text", "textarea", "communes"],
            &[
                "departements couverts",
                "departements concernes",
                "departements",
                "territoire",
            ],
        ),
        "territoire_region" => s(
            "territoire_region",
            "a région champ",
            &["regions", "drop_down_list"],
            &["text"],
            &["region couverte", "region concernee", "region"],
        ),
        "perimetre" => s(
            "perimetre",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &["perimetre medical", "perimetre"],
        ),
        "nb_medecins_specialite" => s(
            "nb_medecins_specialite",
            "an integer",
            INTEGER,
            INTEGER_TOLERATED,
            &[
                "nombre de medecins de la specialite sur le territoire",
                "nombre de medecins de la specialite",
            ],
        ),
        "nb_liberaux_specialite" => s(
            "nb_liberaux_specialite",
            "an integer",
            INTEGER,
            INTEGER_TOLERATED,
            &[
                "nombre de medecins liberaux de la specialite sur le territoire",
                "nombre de liberaux de la specialite",
                "nombre de medecins liberaux",
            ],
        ),
        "nb_adherents" => s(
            "nb_adherents",
            "an integer",
            INTEGER,
            INTEGER_TOLERATED,
            &[
                "nombre de medecins adherents",
                "nombre d adherents",
                "adherents",
            ],
        ),
        "association" => s(
            "association",
            "an RNA or SIRET champ",
            &["rna", "siret"],
            &["text"],
            &[
                "association porteuse rna",
                "association porteuse",
                "numero rna",
                "rna",
            ],
        ),
        "association_siret" => s(
            "association_siret",
            "a SIRET champ",
            &["siret"],
            &["text"],
            &["siret de l association", "siret"],
        ),
        "cooperations" => s(
            "cooperations",
            "a (multiple) drop-down list",
            CHOICES,
            CHOICES_TOLERATED,
            &["cooperations prevues", "cooperations"],
        ),
        "cooperations_precisions" => s(
            "cooperations_precisions",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &["cooperations precisions", "precisions sur les cooperations"],
        ),
        "gouvernance" => s(
            "gouvernance",
            "a repetition or a text",
            &["repetition", "textarea", "text"],
            &[],
            &["gouvernance prevue", "gouvernance"],
        ),
        "actions" => s(
            "actions",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &[
                "actions prevues pour la mission socle",
                "actions prevues",
                "actions",
            ],
        ),
        "actions_mission_socle" => s(
            "actions_mission_socle",
            "a multiple drop-down list",
            CHOICES,
            CHOICES_TOLERATED,
            &["activites de la mission socle", "mission socle"],
        ),
        "derogation_demandee" => s(
            "derogation_demandee",
            "a yes/no champ",
            &["yes_no", "checkbox"],
            &["drop_down_list", "text"],
            &["demande de derogation", "derogation demandee"],
        ),
        "derogation_motif" => s(
            "derogation_motif",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &["motif de la derogation", "motif"],
        ),
        "lien_lettre_intention" => s(
            "lien_lettre_intention",
            "a dossier link",
            &["dossier_link"],
            &["integer_number", "number", "text"],
            &["lettre d intention", "dossier de lettre d intention"],
        ),
        "diagnostic_territorial" => s(
            "diagnostic_territorial",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &["diagnostic territorial", "diagnostic"],
        ),
        "missions_actions" => s(
            "missions_actions",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &["missions et actions", "missions"],
        ),
        "indicateurs" => s(
            "indicateurs",
            "a multiple drop-down list",
            CHOICES,
            CHOICES_TOLERATED,
            &["indicateurs de suivi et d evaluation", "indicateurs"],
        ),
        "indicateur_qualitatif" => s(
            "indicateur_qualitatif",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &["indicateur qualitatif", "indicateurs qualitatifs"],
        ),
        "modalites_actualisation" => s(
            "modalites_actualisation",
            "a text",
            TEXT,
            TEXT_TOLERATED,
            &[
                "modalites d actualisation du projet",
                "modalites d actualisation",
            ],
        ),
        "plan_deploiement" => s(
            "plan_deploiement",
            "an attachment",
            &["piece_justificative"],
            &[],
            &["plan de deploiement"],
        ),
        "rapport" => s(
            "rapport",
            "a textarea annotation",
            &["textarea", "text"],
            &[],
            &[
                "pre controle automatique",
                "rapport de pre controle",
                "pre controle",
            ],
        ),
        "conforme" => s(
            "conforme",
            "a checkbox annotation",
            &["checkbox", "yes_no"],
            &[],
            &["pre controle conforme", "conforme"],
        ),
        "prochaine_echeance" => s(
            "prochaine_echeance",
            "a date annotation",
            DATE,
            &["datetime"],
            &["prochaine echeance"],
        ),
        "signature_contrat_amorcage" => s(
            "signature_contrat_amorcage",
            "a date annotation",
            DATE,
            &["datetime"],
            &["date de signature du contrat de credit d amorcage"],
        ),
        "validation_projet_sante" => s(
            "validation_projet_sante",
            "a date annotation",
            DATE,
            &["datetime"],
            &["date de validation du projet de sante"],
        ),
        "refus_projet_sante" => s(
            "refus_projet_sante",
            "a date annotation",
            DATE,
            &["datetime"],
            &["date de refus du projet de sante"],
        ),
        "numero_finess" => s(
            "numero_finess",
            "a text annotation",
            &["text"],
            &["textarea"],
            &["numero finess", "finess"],
        ),
        "signature_contrat_dotation" => s(
            "signature_contrat_dotation",
            "a date annotation",
            DATE,
            &["datetime"],
            &["date de signature du contrat de dotation annuelle"],
        ),
        "deploiement_mission_socle" => s(
            "deploiement_mission_socle",
            "a date annotation",
            DATE,
            &["datetime"],
            &["date de deploiement de la mission socle"],
        ),
        "justificatifs_recus" => s(
            "justificatifs_recus",
            "a date annotation",
            DATE,
            &["datetime"],
            &["date de reception des justificatifs annuels"],
        ),
        "nb_adherents_annuel" => s(
            "nb_adherents_annuel",
            "an integer annotation",
            INTEGER,
            &["text"],
            &["nombre d adherents sur l annee"],
        ),
        _ => return None,
    })
}

/// The `TypeDeChamp` of a descriptor, from `type_de_champ` or, when absent, from `__typename`.
fn kind_of(d: &ChampDescriptor) -> String {
    if !d.type_de_champ.trim().is_empty() {
        return d.type_de_champ.trim().to_owned();
    }
    let name = d.typename.trim_end_matches("ChampDescriptor");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "departement" => "departements".into(),
        "region" => "regions".into(),
        "commune" => "communes".into(),
        "r_n_a" => "rna".into(),
        _ => out,
    }
}

/// Checks a démarche's mapping against its descriptors, gathering every problem.
///
/// # Errors
/// [`MappingError`] listing each key whose champ is absent (with the closest labels), ambiguous
/// or of a type that cannot give the field.
pub fn resolve(
    settings: &DemarcheSettings,
    descriptors: &DemarcheDescriptors,
) -> Result<ResolvedMapping, MappingError> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut section = |name: &str, map: &BTreeMap<String, ChampRef>, pool: &[ChampDescriptor]| {
        let mut out = BTreeMap::new();
        for (key, reference) in map {
            let at = format!("{name}.{key}");
            let Some(spec) = spec(key) else {
                problems.push(MappingProblem {
                    key: at,
                    message: "unknown key".into(),
                });
                continue;
            };
            match find(reference, pool) {
                Err(message) => problems.push(MappingProblem { key: at, message }),
                Ok((d, note)) => {
                    if let Some(note) = note {
                        notes.push(format!("{at}: {note}"));
                    }
                    let t = kind_of(d);
                    let tolerated = spec.tolerated.contains(&t.as_str());
                    if !spec.strict.contains(&t.as_str()) && !tolerated {
                        problems.push(MappingProblem {
                            key: at,
                            message: format!(
                                "champ \"{}\" is of type {t}; {key} needs {}",
                                d.label, spec.expected
                            ),
                        });
                        continue;
                    }
                    if tolerated {
                        notes.push(format!(
                            "{at}: champ \"{}\" is of type {t}, not {}; its value will be parsed and may be unreadable",
                            d.label, spec.expected
                        ));
                    }
                    out.insert(
                        key.clone(),
                        ResolvedChamp {
                            descriptor_id: d.id.clone(),
                            label: d.label.clone(),
                            type_de_champ: t,
                            tolerated,
                        },
                    );
                }
            }
        }
        out
    };
    let fields = section("fields", &settings.fields, &descriptors.champs);
    let annotations = section(
        "annotations",
        &settings.annotations,
        &descriptors.annotations,
    );
    let suivi = section("suivi", &settings.suivi, &descriptors.annotations);
    if !problems.is_empty() {
        return Err(MappingError {
            demarche: settings.number,
            problems,
        });
    }
    let not_checked = settings
        .kind
        .fields()
        .iter()
        .copied()
        .filter(|f| !fields.contains_key(*f))
        .collect();
    Ok(ResolvedMapping {
        demarche: settings.number,
        kind: settings.kind,
        fields,
        annotations,
        suivi,
        not_checked,
        notes,
    })
}

/// Finds the descriptor a reference names; by label, an exact match first, then one ignoring
/// case, accents and punctuation (with a note).
fn find<'a>(
    reference: &ChampRef,
    pool: &'a [ChampDescriptor],
) -> Result<(&'a ChampDescriptor, Option<String>), String> {
    match reference {
        ChampRef::Id(id) => pool
            .iter()
            .find(|d| &d.id == id)
            .map(|d| (d, None))
            .ok_or_else(|| {
                format!(
                    "no champ with id {id} on this démarche{}",
                    closest_hint(id, pool, true)
                )
            }),
        ChampRef::Label(label) => {
            let exact: Vec<&ChampDescriptor> = pool.iter().filter(|d| &d.label == label).collect();
            let candidates = if exact.is_empty() {
                let n = normalize(label);
                pool.iter().filter(|d| normalize(&d.label) == n).collect()
            } else {
                exact
            };
            match candidates.as_slice() {
                [] => Err(format!(
                    "no champ labelled \"{label}\" on this démarche{}",
                    closest_hint(label, pool, false)
                )),
                [one] => {
                    let note = (one.label != *label).then(|| {
                        format!("\"{label}\" matched the champ labelled \"{}\"", one.label)
                    });
                    Ok((one, note))
                }
                many => Err(format!(
                    "{} champs are labelled \"{label}\"; name one by id: {}",
                    many.len(),
                    many.iter()
                        .map(|d| format!("id:{}", d.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
    }
}

fn closest_hint(wanted: &str, pool: &[ChampDescriptor], by_id: bool) -> String {
    let w = normalize(wanted);
    let mut scored: Vec<(f64, &ChampDescriptor)> = pool
        .iter()
        .map(|d| {
            let score = if by_id {
                strsim::normalized_levenshtein(wanted, &d.id)
            } else {
                strsim::normalized_levenshtein(&w, &normalize(&d.label))
            };
            (score, d)
        })
        .filter(|(s, _)| *s >= 0.3)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.label.cmp(&b.1.label)));
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, d)| format!("\"{}\" (id:{})", d.label, d.id))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; closest: {}", names.join(", "))
    }
}

/// How well a descriptor's label fits a key's wordings, 0 to 1.
fn label_score(label: &str, hints: &[&str]) -> f64 {
    let l = normalize(label);
    hints
        .iter()
        .map(|h| {
            if l == *h {
                1.0
            } else {
                let lev = strsim::normalized_levenshtein(&l, h);
                let contained = if super::text::contains_words(&l, h) {
                    0.6 + 0.3 * (h.len() as f64 / l.len().max(1) as f64)
                } else {
                    0.0
                };
                lev.max(contained)
            }
        })
        .fold(0.0, f64::max)
}

/// Best champ per key: highest score first, each champ used once, only types that can give the
/// key, and only above a threshold.
fn suggest(keys: &[&str], pool: &[ChampDescriptor]) -> BTreeMap<String, String> {
    let mut pairs: Vec<(f64, &str, &ChampDescriptor)> = Vec::new();
    for key in keys {
        let Some(spec) = spec(key) else { continue };
        for d in pool {
            let t = kind_of(d);
            if spec.strict.contains(&t.as_str()) || spec.tolerated.contains(&t.as_str()) {
                let mut score = label_score(&d.label, spec.hints);
                if spec.strict.contains(&t.as_str()) {
                    score += 0.01;
                }
                if score >= 0.6 {
                    pairs.push((score, spec.key, d));
                }
            }
        }
    }
    pairs.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.cmp(b.1))
            .then_with(|| a.2.id.cmp(&b.2.id))
    });
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (_, key, d) in pairs {
        if out.contains_key(key) || used.contains(&d.id) {
            continue;
        }
        used.insert(d.id.clone());
        out.insert(key.to_owned(), d.label.clone());
    }
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Guesses the kind of a démarche from how many fields of each kind its labels match.
fn guess_kind(descriptors: &DemarcheDescriptors) -> DemarcheKind {
    let li = suggest(LI_FIELDS, &descriptors.champs).len();
    let ps = suggest(PS_FIELDS, &descriptors.champs).len();
    if ps > li {
        DemarcheKind::ProjetSante
    } else {
        DemarcheKind::LettreIntention
    }
}

fn list_descriptors(out: &mut String, pool: &[ChampDescriptor], indent: usize) {
    for d in pool {
        let _ = writeln!(
            out,
            "{:indent$}- {}  [{}{}]  id:{}",
            "",
            d.label,
            kind_of(d),
            if d.required { ", required" } else { "" },
            d.id
        );
        if !d.children.is_empty() {
            list_descriptors(out, &d.children, indent + 4);
        }
    }
}

/// The text of `essbot demarche describe`: the démarche's champs and annotations (label, type,
/// stable id), then a TOML mapping skeleton where each key is filled with the champ whose label
/// fits best, or left commented out when none fits. `kind` is guessed when not given.
pub fn describe(descriptors: &DemarcheDescriptors, kind: Option<DemarcheKind>) -> String {
    let kind = kind.unwrap_or_else(|| guess_kind(descriptors));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Démarche {} — {}",
        descriptors.number, descriptors.title
    );
    let _ = writeln!(out, "\nChamps ({}):", descriptors.champs.len());
    list_descriptors(&mut out, &descriptors.champs, 2);
    let _ = writeln!(
        out,
        "\nAnnotations privées ({}):",
        descriptors.annotations.len()
    );
    list_descriptors(&mut out, &descriptors.annotations, 2);
    let _ = writeln!(out, "\n# Mapping skeleton: check every line before use.");
    let _ = writeln!(out, "[[demarches]]");
    let _ = writeln!(out, "number = {}", descriptors.number);
    let _ = writeln!(out, "kind = \"{}\"", kind.as_str());
    let sections: [(&str, &[&str], &[ChampDescriptor]); 3] = [
        ("fields", kind.fields(), &descriptors.champs),
        ("annotations", ANNOTATION_KEYS, &descriptors.annotations),
        ("suivi", SUIVI_KEYS, &descriptors.annotations),
    ];
    let mut used_annotations = BTreeSet::new();
    for (name, keys, pool) in sections {
        let _ = writeln!(out, "[demarches.{name}]");
        let pool: Vec<ChampDescriptor> = pool
            .iter()
            .filter(|d| !used_annotations.contains(&d.id))
            .cloned()
            .collect();
        let found = suggest(keys, &pool);
        for key in keys {
            match found.get(*key) {
                Some(label) => {
                    if let Some(d) = pool.iter().find(|d| &d.label == label) {
                        used_annotations.insert(d.id.clone());
                    }
                    let _ = writeln!(out, "{key} = {}", toml_string(label));
                }
                None => {
                    let _ = writeln!(out, "# {key} = \"\"   # no champ found");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn the_demo_mapping_resolves() {
        let m = resolve(&li_settings(), &li_descriptors()).unwrap();
        assert_eq!(
            m.fields["nb_adherents"].label,
            "Nombre de médecins adhérents"
        );
        assert_eq!(m.fields["nb_adherents"].type_de_champ, "integer_number");
        assert!(m.not_checked.is_empty(), "{:?}", m.not_checked);
        assert_eq!(m.annotations["conforme"].type_de_champ, "checkbox");
        let m = resolve(&ps_settings(), &ps_descriptors()).unwrap();
        assert_eq!(
            m.fields["lien_lettre_intention"].type_de_champ,
            "dossier_link"
        );
    }

    #[test]
    fn a_missing_champ_names_the_closest_labels() {
        let mut s = li_settings();
        s.fields.insert(
            "nb_adherents".into(),
            ChampRef::Label("Nombre de médecins adhérant".into()),
        );
        s.fields
            .insert("perimetre".into(), ChampRef::Id("Q2hhbXAtOTk5".into()));
        let err = resolve(&s, &li_descriptors()).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let p = &err
            .problems
            .iter()
            .find(|p| p.key == "fields.nb_adherents")
            .unwrap()
            .message;
        assert!(
            p.contains("closest: \"Nombre de médecins adhérents\""),
            "{p}"
        );
        assert!(
            err.problems
                .iter()
                .any(|p| p.key == "fields.perimetre" && p.message.contains("no champ with id"))
        );
        let problems = err.to_problems(3);
        assert_eq!(problems[0].path, "demarches[3].fields.nb_adherents");
    }

    #[test]
    fn types_are_checked_and_tolerated_ones_noted() {
        let mut s = li_settings();
        // An integer field on a text champ is tolerated (parsed), on a yes/no champ refused.
        let mut d = li_descriptors();
        d.champs
            .iter_mut()
            .find(|c| c.label == "Périmètre médical")
            .unwrap()
            .type_de_champ = "text".into();
        s.fields.insert(
            "nb_adherents".into(),
            ChampRef::Label("Périmètre médical".into()),
        );
        s.fields.insert(
            "nb_medecins_specialite".into(),
            ChampRef::Label("Demande de dérogation".into()),
        );
        let err = resolve(&s, &d).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0]
                .message
                .contains("is of type yes_no; nb_medecins_specialite needs an integer")
        );
        s.fields.remove("nb_medecins_specialite");
        let m = resolve(&s, &d).unwrap();
        assert!(m.fields["nb_adherents"].tolerated);
        assert!(m.notes.iter().any(|n| n.contains("will be parsed")));
        assert_eq!(m.not_checked, ["nb_medecins_specialite"]);
        // A textarea cannot hold a count.
        let err = resolve(&s, &li_descriptors()).unwrap_err();
        assert!(
            err.problems[0].message.contains("is of type textarea"),
            "{err}"
        );
    }

    #[test]
    fn labels_match_ignoring_case_and_accents_but_not_ambiguously() {
        let mut s = li_settings();
        s.fields.insert(
            "perimetre".into(),
            ChampRef::Label("perimetre MEDICAL".into()),
        );
        let m = resolve(&s, &li_descriptors()).unwrap();
        assert_eq!(m.fields["perimetre"].label, "Périmètre médical");
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("matched the champ labelled"))
        );
        let mut d = li_descriptors();
        let mut twin = d
            .champs
            .iter()
            .find(|c| c.label == "Périmètre médical")
            .unwrap()
            .clone();
        twin.id = "dHdpbg==".into();
        d.champs.push(twin);
        let err = resolve(&li_settings(), &d).unwrap_err();
        assert!(err.problems[0].message.contains("name one by id"), "{err}");
    }

    #[test]
    fn unknown_keys_are_problems() {
        let mut s = li_settings();
        s.annotations
            .insert("pas_une_cle".into(), ChampRef::Label("X".into()));
        let err = resolve(&s, &li_descriptors()).unwrap_err();
        assert_eq!(err.problems[0].key, "annotations.pas_une_cle");
    }

    #[test]
    fn typenames_stand_in_for_a_missing_type_de_champ() {
        let mut d = li_descriptors().champs[0].clone();
        d.type_de_champ.clear();
        for (typename, kind) in [
            ("IntegerNumberChampDescriptor", "integer_number"),
            ("DepartementChampDescriptor", "departements"),
            ("RNAChampDescriptor", "rna"),
            (
                "MultipleDropDownListChampDescriptor",
                "multiple_drop_down_list",
            ),
            ("YesNoChampDescriptor", "yes_no"),
        ] {
            d.typename = typename.into();
            assert_eq!(kind_of(&d), kind);
        }
    }

    #[test]
    fn describe_lists_champs_and_suggests_the_demo_mapping() {
        for (desc, settings) in [
            (li_descriptors(), li_settings()),
            (ps_descriptors(), ps_settings()),
        ] {
            let text = describe(&desc, None);
            assert!(
                text.contains(&format!("kind = \"{}\"", settings.kind.as_str())),
                "{text}"
            );
            assert!(text.contains("id:Q2hhbXAtMTE2") || settings.kind == DemarcheKind::ProjetSante);
            for (key, r) in &settings.fields {
                let ChampRef::Label(label) = r else { continue };
                assert!(
                    text.contains(&format!("{key} = {}", toml_string(label))),
                    "{key} not suggested as {label}:\n{text}"
                );
            }
            for (key, r) in settings.annotations.iter().chain(&settings.suivi) {
                let ChampRef::Label(label) = r else { continue };
                assert!(
                    text.contains(&format!("{key} = {}", toml_string(label))),
                    "{key}:\n{text}"
                );
            }
        }
        let empty = DemarcheDescriptors {
            id: "x".into(),
            number: 1,
            title: "Vide".into(),
            champs: vec![],
            annotations: vec![],
            labels: vec![],
        };
        let text = describe(&empty, Some(DemarcheKind::ProjetSante));
        assert!(
            text.contains("# nb_adherents = \"\"   # no champ found"),
            "{text}"
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
        assert_eq!(toml_string("l\u{1}"), "\"l\\u0001\"");
    }
}
