//! Test fixtures: the demo démarches' descriptors and mapping (docs/demo-forms.md) and one
//! compliant dossier of each kind, which tests then break one champ at a time.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::ds::model::{
    Champ, ChampDescriptor, ChampValue, CodeName, Demandeur, DemarcheDescriptors, Dossier, File,
    LinkedDossier, Rna, Row,
};

/// base64 of `Champ-<n>`, the demo's stable ids.
pub fn champ_id(n: u32) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("Champ-{n}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn desc(
    n: u32,
    label: &str,
    type_de_champ: &str,
    children: Vec<ChampDescriptor>,
) -> ChampDescriptor {
    ChampDescriptor {
        id: champ_id(n),
        label: label.into(),
        typename: String::new(),
        type_de_champ: type_de_champ.into(),
        required: false,
        options: Vec::new(),
        children,
    }
}

fn with_options(mut d: ChampDescriptor, options: &[&str]) -> ChampDescriptor {
    d.options = options.iter().map(|o| (*o).to_owned()).collect();
    d
}

/// The LI démarche (1001) of the demo.
pub fn li_descriptors() -> DemarcheDescriptors {
    DemarcheDescriptors {
        id: "RGVtYXJjaGUtMTAwMQ==".into(),
        number: 1001,
        title: "Équipes de soins spécialisés — lettre d'intention".into(),
        champs: vec![
            desc(
                101,
                "Porteurs du projet",
                "repetition",
                vec![
                    desc(102, "Nom et prénom", "text", vec![]),
                    desc(103, "Spécialité", "text", vec![]),
                    desc(104, "Numéro RPPS", "text", vec![]),
                ],
            ),
            desc(
                110,
                "Spécialité concernée",
                "multiple_drop_down_list",
                vec![],
            ),
            desc(
                111,
                "Départements couverts",
                "multiple_drop_down_list",
                vec![],
            ),
            desc(112, "Région couverte", "regions", vec![]),
            desc(113, "Périmètre médical", "textarea", vec![]),
            desc(
                114,
                "Nombre de médecins de la spécialité sur le territoire",
                "integer_number",
                vec![],
            ),
            desc(
                115,
                "Nombre de médecins libéraux de la spécialité sur le territoire",
                "integer_number",
                vec![],
            ),
            desc(
                116,
                "Nombre de médecins adhérents",
                "integer_number",
                vec![],
            ),
            desc(117, "Association porteuse (RNA)", "rna", vec![]),
            desc(118, "SIRET de l'association", "siret", vec![]),
            with_options(
                desc(
                    119,
                    "Coopérations prévues",
                    "multiple_drop_down_list",
                    vec![],
                ),
                COOPERATIONS,
            ),
            desc(120, "Coopérations : précisions", "textarea", vec![]),
            desc(
                121,
                "Gouvernance prévue",
                "repetition",
                vec![
                    desc(122, "Nom du membre", "text", vec![]),
                    with_options(desc(123, "Qualité", "drop_down_list", vec![]), QUALITES),
                    with_options(desc(124, "Voix", "drop_down_list", vec![]), VOIX),
                ],
            ),
            desc(
                125,
                "Actions prévues pour la mission socle",
                "textarea",
                vec![],
            ),
            with_options(
                desc(
                    126,
                    "Activités de la mission socle",
                    "multiple_drop_down_list",
                    vec![],
                ),
                MISSION_SOCLE,
            ),
            desc(127, "Demande de dérogation", "yes_no", vec![]),
            desc(128, "Motif de la dérogation", "textarea", vec![]),
        ],
        annotations: vec![
            desc(901, "Pré-contrôle automatique", "textarea", vec![]),
            desc(902, "Pré-contrôle conforme", "checkbox", vec![]),
            desc(903, "Prochaine échéance", "date", vec![]),
            desc(
                904,
                "Date de signature du contrat de crédit d'amorçage",
                "date",
                vec![],
            ),
        ],
        labels: vec![],
    }
}

/// The PS démarche (1002) of the demo.
pub fn ps_descriptors() -> DemarcheDescriptors {
    DemarcheDescriptors {
        id: "RGVtYXJjaGUtMTAwMg==".into(),
        number: 1002,
        title: "Équipes de soins spécialisés — projet de santé".into(),
        champs: vec![
            desc(201, "Lettre d'intention", "dossier_link", vec![]),
            desc(202, "Diagnostic territorial", "textarea", vec![]),
            desc(203, "Missions et actions", "textarea", vec![]),
            desc(
                204,
                "Indicateurs de suivi et d'évaluation",
                "multiple_drop_down_list",
                vec![],
            ),
            desc(205, "Indicateur qualitatif", "textarea", vec![]),
            desc(
                206,
                "Modalités d'actualisation du projet",
                "textarea",
                vec![],
            ),
            desc(
                207,
                "Gouvernance",
                "repetition",
                vec![
                    desc(208, "Nom du membre", "text", vec![]),
                    desc(209, "Qualité", "drop_down_list", vec![]),
                    desc(210, "Voix", "drop_down_list", vec![]),
                ],
            ),
            desc(211, "Plan de déploiement", "piece_justificative", vec![]),
            desc(
                212,
                "Nombre de médecins adhérents",
                "integer_number",
                vec![],
            ),
            desc(
                213,
                "Nombre de médecins libéraux de la spécialité sur le territoire",
                "integer_number",
                vec![],
            ),
        ],
        annotations: vec![
            desc(951, "Pré-contrôle automatique", "textarea", vec![]),
            desc(952, "Pré-contrôle conforme", "checkbox", vec![]),
            desc(953, "Prochaine échéance", "date", vec![]),
            desc(954, "Date de validation du projet de santé", "date", vec![]),
            desc(955, "Date de refus du projet de santé", "date", vec![]),
            desc(956, "Numéro FINESS", "text", vec![]),
            desc(
                957,
                "Date de signature du contrat de dotation annuelle",
                "date",
                vec![],
            ),
            desc(
                958,
                "Date de déploiement de la mission socle",
                "date",
                vec![],
            ),
            desc(
                959,
                "Date de réception des justificatifs annuels",
                "date",
                vec![],
            ),
            desc(
                960,
                "Nombre d'adhérents sur l'année",
                "integer_number",
                vec![],
            ),
        ],
        labels: vec![],
    }
}

fn refs(pairs: &[(&str, &str)]) -> BTreeMap<String, ChampRef> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.parse().unwrap()))
        .collect()
}

fn field_refs(pairs: &[(&str, &str)]) -> BTreeMap<String, FieldRef> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.parse().unwrap()))
        .collect()
}

/// The LI démarche's mapping, as config/demo.toml writes it.
pub fn li_spec() -> MappingSpec {
    MappingSpec {
        fields: field_refs(&[
            ("porteurs", "Porteurs du projet"),
            ("specialites", "Spécialité concernée"),
            ("territoire_departements", "Départements couverts"),
            ("territoire_region", "Région couverte"),
            ("perimetre", "Périmètre médical"),
            (
                "nb_medecins_specialite",
                "Nombre de médecins de la spécialité sur le territoire",
            ),
            (
                "nb_liberaux_specialite",
                "Nombre de médecins libéraux de la spécialité sur le territoire",
            ),
            ("nb_adherents", "id:Q2hhbXAtMTE2"),
            ("association", "Association porteuse (RNA)"),
            ("association_siret", "SIRET de l'association"),
            ("cooperations", "Coopérations prévues"),
            ("cooperations_precisions", "Coopérations : précisions"),
            ("gouvernance", "Gouvernance prévue"),
            ("actions", "Actions prévues pour la mission socle"),
            ("actions_mission_socle", "Activités de la mission socle"),
            ("derogation_demandee", "Demande de dérogation"),
            ("derogation_motif", "Motif de la dérogation"),
        ]),
        annotations: refs(&[
            ("rapport", "Pré-contrôle automatique"),
            ("conforme", "Pré-contrôle conforme"),
            ("prochaine_echeance", "Prochaine échéance"),
        ]),
        suivi: refs(&[(
            "signature_contrat_amorcage",
            "Date de signature du contrat de crédit d'amorçage",
        )]),
    }
}

/// The PS démarche's mapping, as config/demo.toml writes it.
pub fn ps_spec() -> MappingSpec {
    MappingSpec {
        fields: field_refs(&[
            ("lien_lettre_intention", "Lettre d'intention"),
            ("diagnostic_territorial", "Diagnostic territorial"),
            ("missions_actions", "Missions et actions"),
            ("indicateurs", "Indicateurs de suivi et d'évaluation"),
            ("indicateur_qualitatif", "Indicateur qualitatif"),
            (
                "modalites_actualisation",
                "Modalités d'actualisation du projet",
            ),
            ("gouvernance", "Gouvernance"),
            ("plan_deploiement", "Plan de déploiement"),
            ("nb_adherents", "Nombre de médecins adhérents"),
            (
                "nb_liberaux_specialite",
                "Nombre de médecins libéraux de la spécialité sur le territoire",
            ),
        ]),
        annotations: refs(&[
            ("rapport", "Pré-contrôle automatique"),
            ("conforme", "Pré-contrôle conforme"),
            ("prochaine_echeance", "Prochaine échéance"),
        ]),
        suivi: refs(&[
            (
                "validation_projet_sante",
                "Date de validation du projet de santé",
            ),
            ("refus_projet_sante", "Date de refus du projet de santé"),
            ("numero_finess", "Numéro FINESS"),
            (
                "signature_contrat_dotation",
                "Date de signature du contrat de dotation annuelle",
            ),
            (
                "deploiement_mission_socle",
                "Date de déploiement de la mission socle",
            ),
            (
                "justificatifs_recus",
                "Date de réception des justificatifs annuels",
            ),
            ("nb_adherents_annuel", "Nombre d'adhérents sur l'année"),
        ]),
    }
}

/// The LI mapping, resolved.
pub fn li_mapping() -> ResolvedMapping {
    resolve(
        1001,
        DemarcheKind::LettreIntention,
        &li_spec(),
        &li_descriptors(),
    )
    .unwrap()
}

/// The PS mapping, resolved.
pub fn ps_mapping() -> ResolvedMapping {
    resolve(
        1002,
        DemarcheKind::ProjetSante,
        &ps_spec(),
        &ps_descriptors(),
    )
    .unwrap()
}

/// A champ with no meaningful id, for reader tests.
pub fn champ(label: &str, value: ChampValue) -> Champ {
    Champ {
        id: format!("id-{label}"),
        descriptor_id: format!("desc-{label}"),
        label: label.into(),
        string_value: None,
        value,
    }
}

/// A cell of a repetition of the demo form, with its column's descriptor id.
pub fn child_of(d: &DemarcheDescriptors, parent: &str, label: &str, value: ChampValue) -> Champ {
    let p = d
        .champs
        .iter()
        .find(|c| c.label == parent)
        .unwrap_or_else(|| panic!("no descriptor {parent}"));
    let id = &p
        .children
        .iter()
        .find(|c| c.label == label)
        .unwrap_or_else(|| panic!("no column {label} in {parent}"))
        .id;
    cell(id, label, value)
}

/// A champ of descriptor `id`.
fn cell(id: &str, label: &str, value: ChampValue) -> Champ {
    Champ {
        id: format!("{id}-c"),
        descriptor_id: id.to_owned(),
        label: label.into(),
        string_value: None,
        value,
    }
}

/// A cell of one of the demo LI form's repetitions.
pub fn li_child(parent: &str, label: &str, value: ChampValue) -> Champ {
    child_of(&li_descriptors(), parent, label, value)
}

fn champ_of(d: &DemarcheDescriptors, label: &str, value: ChampValue) -> Champ {
    let id = &d
        .champs
        .iter()
        .find(|c| c.label == label)
        .unwrap_or_else(|| panic!("no descriptor {label}"))
        .id;
    cell(id, label, value)
}

/// Replaces the value of a dossier's champ (by label).
pub fn set(d: &mut Dossier, label: &str, value: ChampValue) {
    let c = d
        .champs
        .iter_mut()
        .find(|c| c.label == label)
        .unwrap_or_else(|| panic!("no champ {label}"));
    c.string_value = match &value {
        ChampValue::Text(Some(s)) | ChampValue::Integer(Some(s)) => Some(s.clone()),
        _ => None,
    };
    c.value = value;
}

/// A text value.
pub fn text(s: &str) -> ChampValue {
    ChampValue::Text(Some(s.into()))
}

fn dd(s: &str) -> ChampValue {
    if s.is_empty() {
        ChampValue::DropDown(None)
    } else {
        ChampValue::DropDown(Some(s.into()))
    }
}

/// A multiple choice value.
pub fn multi(items: &[&str]) -> ChampValue {
    ChampValue::MultipleDropDown(items.iter().map(|s| (*s).to_owned()).collect())
}

/// An integer value, as DS sends it.
pub fn int(n: &str) -> ChampValue {
    ChampValue::Integer(Some(n.into()))
}

fn governance_rows_in(
    d: &DemarcheDescriptors,
    parent: &str,
    members: &[(&str, &str, &str)],
) -> ChampValue {
    ChampValue::Repetition(
        members
            .iter()
            .enumerate()
            .map(|(i, (n, q, v))| Row {
                id: format!("row-{i}"),
                champs: vec![
                    child_of(d, parent, "Nom du membre", text(n)),
                    child_of(d, parent, "Qualité", dd(q)),
                    child_of(d, parent, "Voix", dd(v)),
                ],
            })
            .collect(),
    )
}

/// Rows of the LI governance repetition: (name, quality, vote).
pub fn gouvernance_rows(members: &[(&str, &str, &str)]) -> ChampValue {
    governance_rows_in(&li_descriptors(), "Gouvernance prévue", members)
}

/// Rows of the PS governance repetition: (name, quality, vote).
pub fn ps_gouvernance_rows(members: &[(&str, &str, &str)]) -> ChampValue {
    governance_rows_in(&ps_descriptors(), "Gouvernance", members)
}

fn base_dossier(number: i64, champs: Vec<Champ>) -> Dossier {
    let ts = chrono::DateTime::parse_from_rfc3339("2026-01-12T10:00:00+01:00").unwrap();
    Dossier {
        id: format!("RG9zc2llci0{number}"),
        number,
        state: DossierState::EnConstruction,
        date_depot: ts,
        date_derniere_modification: ts,
        date_derniere_modification_champs: ts,
        date_derniere_modification_annotations: ts,
        date_passage_en_instruction: None,
        date_traitement: None,
        motivation: None,
        groupe_instructeur: None,
        demandeur: Demandeur::PersonnePhysique {
            nom: "Martin".into(),
            prenom: "Alice".into(),
        },
        labels: vec![],
        messages: vec![],
        champs,
        annotations: vec![],
    }
}

/// The governance qualities offered by the demo form.
pub const QUALITES: &[&str] = &[
    "Médecin spécialiste libéral",
    "Médecin généraliste",
    "CPTS",
    "DAC",
    "Établissement de santé",
    "Autre",
];

/// The governance voices offered by the demo form.
pub const VOIX: &[&str] = &["Délibérative", "Consultative"];

/// Every LI cooperation option of the demo form.
pub const COOPERATIONS: &[&str] = &[
    "CPTS",
    "MSP / ESP",
    "DAC",
    "Autres ESS",
    "GHT et établissements de santé",
    "Professionnels hospitaliers",
];

/// The two mission socle options of the demo form.
pub const MISSION_SOCLE: &[&str] = &[
    "Structuration de l'offre de second recours avec le premier et le troisième recours",
    "Avis spécialisé ponctuel à la demande des médecins traitants (consultation ou téléexpertise)",
];

/// A compliant lettre d'intention (dossier 501): cardiology, Paris and Hauts-de-Seine,
/// 6 adherents of 52 libéraux.
pub fn li_dossier() -> Dossier {
    let d = li_descriptors();
    let c = |label: &str, v: ChampValue| champ_of(&d, label, v);
    base_dossier(
        501,
        vec![
            c("Porteurs du projet", li_porteurs_value()),
            c("Spécialité concernée", multi(&["Cardiologie"])),
            c(
                "Départements couverts",
                multi(&["75 - Paris", "92 - Hauts-de-Seine"]),
            ),
            c("Région couverte", ChampValue::Region(None)),
            c(
                "Périmètre médical",
                text("Cardiologie et maladies vasculaires de l'adulte"),
            ),
            c(
                "Nombre de médecins de la spécialité sur le territoire",
                ChampValue::Integer(Some("120".into())),
            ),
            c(
                "Nombre de médecins libéraux de la spécialité sur le territoire",
                ChampValue::Integer(Some("52".into())),
            ),
            c(
                "Nombre de médecins adhérents",
                ChampValue::Integer(Some("6".into())),
            ),
            c(
                "Association porteuse (RNA)",
                ChampValue::Rna(Some(Rna {
                    id: "W751000001".into(),
                    title: Some("ESS Cardio Paris Ouest".into()),
                    departement_code: Some("75".into()),
                })),
            ),
            c("SIRET de l'association", ChampValue::Siret(None)),
            c("Coopérations prévues", multi(COOPERATIONS)),
            c(
                "Coopérations : précisions",
                text("Conventions avec les CPTS du territoire et le GHT."),
            ),
            c(
                "Gouvernance prévue",
                gouvernance_rows(&[
                    (
                        "Dr Alice Martin",
                        "Médecin spécialiste libéral",
                        "Délibérative",
                    ),
                    ("CPTS Paris 15", "CPTS", "Consultative"),
                ]),
            ),
            c(
                "Actions prévues pour la mission socle",
                text(
                    "Organiser le second recours avec les CPTS et l'hôpital ; téléexpertise sous 48 heures.",
                ),
            ),
            c("Activités de la mission socle", multi(MISSION_SOCLE)),
            c("Demande de dérogation", ChampValue::YesNo(Some(false))),
            c("Motif de la dérogation", ChampValue::Text(None)),
        ],
    )
}

/// The five national indicators of the demo form.
pub const INDICATEURS: &[&str] = &[
    "Nombre de professionnels de santé adresseurs, dont médecins traitants",
    "Nombre de patients pris en charge",
    "Nombre de téléexpertises réalisées",
    "Nombre de membres proposant des consultations avancées",
    "Nombre de consultations avancées réalisées",
];

/// A compliant projet de santé (dossier 601) linked to lettre 501, filed 01/06/2026.
pub fn ps_dossier() -> Dossier {
    let d = ps_descriptors();
    let c = |label: &str, v: ChampValue| champ_of(&d, label, v);
    let mut dossier = base_dossier(
        601,
        vec![
            c(
                "Lettre d'intention",
                ChampValue::DossierLink(Some(LinkedDossier {
                    number: 501,
                    state: Some(DossierState::Accepte),
                })),
            ),
            c(
                "Diagnostic territorial",
                text("Délais de rendez-vous de cardiologie de 4 mois à l'ouest de Paris."),
            ),
            c(
                "Missions et actions",
                text(
                    "Second recours organisé, téléexpertise sous 48 heures, consultations avancées.",
                ),
            ),
            c("Indicateurs de suivi et d'évaluation", multi(INDICATEURS)),
            c(
                "Indicateur qualitatif",
                text("Satisfaction des médecins traitants adresseurs"),
            ),
            c(
                "Modalités d'actualisation du projet",
                text("Revue annuelle en assemblée générale."),
            ),
            c(
                "Gouvernance",
                governance_rows_in(
                    &d,
                    "Gouvernance",
                    &[(
                        "Dr Alice Martin",
                        "Médecin spécialiste libéral",
                        "Délibérative",
                    )],
                ),
            ),
            c(
                "Plan de déploiement",
                ChampValue::PieceJustificative(vec![File {
                    filename: "plan.pdf".into(),
                    content_type: "application/pdf".into(),
                    byte_size: Some(1000),
                    url: None,
                }]),
            ),
            c(
                "Nombre de médecins adhérents",
                ChampValue::Integer(Some("12".into())),
            ),
            c(
                "Nombre de médecins libéraux de la spécialité sur le territoire",
                ChampValue::Integer(Some("52".into())),
            ),
        ],
    );
    dossier.date_depot = chrono::DateTime::parse_from_rfc3339("2026-06-01T10:00:00+02:00").unwrap();
    dossier
}

/// The lettre 501 as essbot stores it, accepted.
pub fn known_li(etat: DossierState) -> KnownProject {
    KnownProject {
        numero: 501,
        etat,
        date_depot: NaiveDate::from_ymd_opt(2026, 1, 12).unwrap(),
        groupes: vec!["cardiologie".into()],
        departements: vec!["75".into(), "92".into()],
        derogation: false,
    }
}

/// A fixed "today" for the tests.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
}

/// Owns what a [`RuleContext`] borrows.
pub struct Ctx {
    pub reference: ReferenceData,
    pub config: RulesConfig,
    pub projets: KnownProjects,
}

impl Ctx {
    /// Built-in reference data, default configuration, no known project.
    pub fn new() -> Self {
        Self {
            reference: ReferenceData::builtin(),
            config: RulesConfig::default(),
            projets: KnownProjects::default(),
        }
    }

    /// The context the rules take.
    pub fn ctx(&self) -> RuleContext<'_> {
        RuleContext {
            reference: &self.reference,
            config: &self.config,
            today: today(),
            projets: &self.projets,
        }
    }
}

/// Evaluates an LI dossier with the demo mapping.
pub fn run_li(d: &Dossier, ctx: &Ctx) -> Vec<Finding> {
    run_li_with(d, &li_mapping(), ctx)
}

/// Evaluates an LI dossier with a mapping.
pub fn run_li_with(d: &Dossier, m: &ResolvedMapping, ctx: &Ctx) -> Vec<Finding> {
    evaluate_lettre(&extract_lettre(d, m), &ctx.ctx())
}

/// Evaluates a PS dossier with the demo mapping.
pub fn run_ps(d: &Dossier, ctx: &Ctx) -> Vec<Finding> {
    run_ps_with(d, &ps_mapping(), ctx)
}

/// Evaluates a PS dossier with a mapping.
pub fn run_ps_with(d: &Dossier, m: &ResolvedMapping, ctx: &Ctx) -> Vec<Finding> {
    evaluate_projet(&extract_projet(d, m), &ctx.ctx())
}

/// The findings of one rule.
pub fn of(findings: &[Finding], rule: RuleId) -> Vec<&Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

/// Findings that keep a dossier from being compliant.
pub fn blocking(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| {
            matches!(
                f.severity,
                Severity::Bloquant | Severity::Derogation | Severity::AVerifier
            )
        })
        .collect()
}

/// The findings as report lines, for assertion messages.
pub fn lines(fs: &[&Finding]) -> String {
    fs.iter()
        .map(|f| report::finding_line(f))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A département or région value.
pub fn code_name(code: &str, name: &str) -> CodeName {
    CodeName {
        code: code.into(),
        name: name.into(),
    }
}

/// The compliant LI with one champ (by label) replaced.
pub fn li_with(label: &str, v: ChampValue) -> Dossier {
    let mut d = li_dossier();
    set(&mut d, label, v);
    d
}

/// The compliant PS with one champ (by label) replaced.
pub fn ps_with(label: &str, v: ChampValue) -> Dossier {
    let mut d = ps_dossier();
    set(&mut d, label, v);
    d
}

/// A context where lettre 501 is known in this state.
pub fn ps_ctx(etat: DossierState) -> Ctx {
    let mut c = Ctx::new();
    c.projets = KnownProjects::new([known_li(etat)]);
    c
}

/// The dossier asking for a derogation, with its reason.
pub fn asking_derogation(mut d: Dossier) -> Dossier {
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

/// The porteurs of the compliant LI.
pub fn li_porteurs_value() -> ChampValue {
    let p = "Porteurs du projet";
    ChampValue::Repetition(vec![Row {
        id: "p1".into(),
        champs: vec![
            li_child(p, "Nom et prénom", text("Dr Alice Martin")),
            li_child(p, "Spécialité", text("Cardiologie")),
            li_child(p, "Numéro RPPS", text("10003456789")),
        ],
    }])
}

/// The porteurs champ of the compliant LI.
pub fn li_porteurs_champ() -> Champ {
    champ_of(&li_descriptors(), "Porteurs du projet", li_porteurs_value())
}

/// The LI mapping with the territory read from a text champ.
pub fn li_text_territory_mapping() -> ResolvedMapping {
    let mut m = li_mapping();
    m.fields
        .get_mut("territoire_departements")
        .unwrap()
        .type_de_champ = "textarea".into();
    m
}

/// The compliant LI with the territory written in a text.
pub fn li_with_departements_text(written: &str) -> Dossier {
    li_with("Départements couverts", text(written))
}

/// The compliant LI on a form whose territory is a repetition of DS département champs, and
/// that form's mapping.
pub fn li_with_departements_repetition(deps: &[(&str, &str)]) -> (Dossier, ResolvedMapping) {
    let mut desc = li_descriptors();
    let t = desc
        .champs
        .iter_mut()
        .find(|c| c.label == "Départements couverts")
        .unwrap();
    t.type_de_champ = "repetition".into();
    t.children = vec![desc_child(130, "Département", "departements")];
    let m = resolve(1001, DemarcheKind::LettreIntention, &li_spec(), &desc).unwrap();
    let rows = deps
        .iter()
        .enumerate()
        .map(|(i, (code, name))| Row {
            id: format!("r{i}"),
            champs: vec![child_of(
                &desc,
                "Départements couverts",
                "Département",
                ChampValue::Departement(Some(code_name(code, name))),
            )],
        })
        .collect();
    (
        li_with("Départements couverts", ChampValue::Repetition(rows)),
        m,
    )
}

fn desc_child(n: u32, label: &str, type_de_champ: &str) -> ChampDescriptor {
    desc(n, label, type_de_champ, vec![])
}

/// The compliant LI on a form with a seat champ (`siege`, labelled « Siège de l'association »)
/// holding `value`, and that form's mapping.
pub fn li_with_siege(value: ChampValue) -> (Dossier, ResolvedMapping) {
    let mut desc = li_descriptors();
    desc.champs
        .push(desc_child(140, "Siège de l'association", "communes"));
    let mut spec = li_spec();
    spec.fields
        .insert("siege".into(), "Siège de l'association".parse().unwrap());
    let m = resolve(1001, DemarcheKind::LettreIntention, &spec, &desc).unwrap();
    let mut d = li_dossier();
    d.champs
        .push(champ_of(&desc, "Siège de l'association", value));
    (d, m)
}

/// The compliant LI on a form whose governance repetition has these columns (a label, with
/// `:yes_no` for a yes/no column) and rows (one value per column; `true`/`false` in a yes/no
/// column), and that form's mapping (columns found by their labels).
pub fn li_with_governance_columns(
    columns: &[&str],
    rows: &[&[&str]],
) -> (Dossier, ResolvedMapping) {
    let mut desc = li_descriptors();
    let g = desc
        .champs
        .iter_mut()
        .find(|c| c.label == "Gouvernance prévue")
        .unwrap();
    g.children = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (label, t) = c.split_once(':').unwrap_or((c, "text"));
            desc_child(150 + i as u32, label, t)
        })
        .collect();
    let m = resolve(1001, DemarcheKind::LettreIntention, &li_spec(), &desc).unwrap();
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, cells)| Row {
            id: format!("g{i}"),
            champs: columns
                .iter()
                .zip(cells.iter())
                .map(|(c, v)| {
                    let (label, t) = c.split_once(':').unwrap_or((c, "text"));
                    let value = match (t, *v) {
                        ("yes_no", "true") => ChampValue::YesNo(Some(true)),
                        ("yes_no", "false") => ChampValue::YesNo(Some(false)),
                        _ => text(v),
                    };
                    child_of(&desc, "Gouvernance prévue", label, value)
                })
                .collect(),
        })
        .collect();
    (
        li_with("Gouvernance prévue", ChampValue::Repetition(rows)),
        m,
    )
}
