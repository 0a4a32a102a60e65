//! Test fixtures: the demo démarches' descriptors and mapping (docs/demo-forms.md) and one
//! compliant dossier of each kind, which tests then break one champ at a time.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::config::{ChampRef, DemarcheSettings};
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
            desc(
                119,
                "Coopérations prévues",
                "multiple_drop_down_list",
                vec![],
            ),
            desc(120, "Coopérations : précisions", "textarea", vec![]),
            desc(
                121,
                "Gouvernance prévue",
                "repetition",
                vec![
                    desc(122, "Nom du membre", "text", vec![]),
                    desc(123, "Qualité", "drop_down_list", vec![]),
                    desc(124, "Voix", "drop_down_list", vec![]),
                ],
            ),
            desc(
                125,
                "Actions prévues pour la mission socle",
                "textarea",
                vec![],
            ),
            desc(
                126,
                "Activités de la mission socle",
                "multiple_drop_down_list",
                vec![],
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

/// The LI démarche's mapping, as config/demo.toml writes it.
pub fn li_settings() -> DemarcheSettings {
    DemarcheSettings {
        number: 1001,
        kind: DemarcheKind::LettreIntention,
        fields: refs(&[
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
        write_back: Default::default(),
    }
}

/// The PS démarche's mapping, as config/demo.toml writes it.
pub fn ps_settings() -> DemarcheSettings {
    DemarcheSettings {
        number: 1002,
        kind: DemarcheKind::ProjetSante,
        fields: refs(&[
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
        write_back: Default::default(),
    }
}

/// The LI mapping, resolved.
pub fn li_mapping() -> ResolvedMapping {
    resolve(&li_settings(), &li_descriptors()).unwrap()
}

/// The PS mapping, resolved.
pub fn ps_mapping() -> ResolvedMapping {
    resolve(&ps_settings(), &ps_descriptors()).unwrap()
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

fn champ_of(d: &DemarcheDescriptors, label: &str, value: ChampValue) -> Champ {
    let id = d
        .champs
        .iter()
        .find(|c| c.label == label)
        .unwrap_or_else(|| panic!("no descriptor {label}"))
        .id
        .clone();
    Champ {
        id: format!("{id}-c"),
        descriptor_id: id,
        label: label.into(),
        string_value: None,
        value,
    }
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

fn text(s: &str) -> ChampValue {
    ChampValue::Text(Some(s.into()))
}

fn dd(s: &str) -> ChampValue {
    ChampValue::DropDown(Some(s.into()))
}

fn multi(items: &[&str]) -> ChampValue {
    ChampValue::MultipleDropDown(items.iter().map(|s| (*s).to_owned()).collect())
}

/// Rows of a governance repetition: (name, quality, vote).
pub fn gouvernance_rows(members: &[(&str, &str, &str)]) -> ChampValue {
    ChampValue::Repetition(
        members
            .iter()
            .enumerate()
            .map(|(i, (n, q, v))| Row {
                id: format!("row-{i}"),
                champs: vec![
                    champ("Nom du membre", text(n)),
                    champ("Qualité", dd(q)),
                    champ("Voix", dd(v)),
                ],
            })
            .collect(),
    )
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
            c(
                "Porteurs du projet",
                ChampValue::Repetition(vec![Row {
                    id: "p1".into(),
                    champs: vec![
                        champ("Nom et prénom", text("Dr Alice Martin")),
                        champ("Spécialité", text("Cardiologie")),
                        champ("Numéro RPPS", text("10003456789")),
                    ],
                }]),
            ),
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
                gouvernance_rows(&[(
                    "Dr Alice Martin",
                    "Médecin spécialiste libéral",
                    "Délibérative",
                )]),
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
    evaluate_lettre(&extract_lettre(d, &li_mapping()), &ctx.ctx())
}

/// Evaluates a PS dossier with the demo mapping.
pub fn run_ps(d: &Dossier, ctx: &Ctx) -> Vec<Finding> {
    evaluate_projet(&extract_projet(d, &ps_mapping()), &ctx.ctx())
}

/// The findings of one rule.
pub fn of(findings: &[Finding], rule: RuleId) -> Vec<&Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

/// Findings that keep a dossier from being compliant.
pub fn blocking(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| matches!(f.severity, Severity::Bloquant | Severity::Derogation))
        .collect()
}

/// Unused-import guard for CodeName in fixtures built by other test modules.
pub fn code_name(code: &str, name: &str) -> CodeName {
    CodeName {
        code: code.into(),
        name: name.into(),
    }
}
