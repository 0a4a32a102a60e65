//! The domain fields of rules.md ("Inputs"), each defined once: its key, the kind of démarche
//! it belongs to, whether a rule cannot run without it, the shape of value it gives (and so the
//! champ types that can give it and how each is read), the repetition columns it reads, the
//! wordings `demarche describe` recognises it by, and the rules that read it.
//!
//! Everything else derives from this table: the configuration's list of keys, the mapping's
//! type checks and column resolution, the extraction of each field, `config check`'s account of
//! how each champ will be read and which rules cannot run. A new field is one more row here.

use serde::Deserialize;

use super::RuleId;
use super::RuleId::*;

/// The two kinds of ESS démarche.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemarcheKind {
    LettreIntention,
    ProjetSante,
}

impl DemarcheKind {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LettreIntention => "lettre_intention",
            Self::ProjetSante => "projet_sante",
        }
    }

    /// The configuration's spelling, parsed.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lettre_intention" => Some(Self::LettreIntention),
            "projet_sante" => Some(Self::ProjetSante),
            _ => None,
        }
    }

    /// The domain fields a démarche of this kind may map, in rules.md's order.
    pub fn fields(self) -> impl Iterator<Item = &'static FieldDef> {
        FIELDS.iter().filter(move |f| f.kind == self)
    }

    /// The keys of [`DemarcheKind::fields`].
    pub fn field_keys(self) -> Vec<&'static str> {
        self.fields().map(|f| f.key).collect()
    }

    /// The definition of one of this kind's fields.
    pub fn field(self, key: &str) -> Option<&'static FieldDef> {
        self.fields().find(|f| f.key == key)
    }
}

/// Whether the rules can run without a field being mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A rule of the cahier cannot be checked without it: `config check` fails when it is not
    /// mapped.
    Required,
    /// One field of the named group must be mapped (e.g. the territory by départements or by
    /// région): `config check` fails when none is.
    OneOf(&'static str),
    /// The rules use it when it is there.
    Optional,
}

/// The shape of value a field gives, which decides the champ types that can give it and how
/// each is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A free text (a text, or the cells of any champ that holds words).
    Text,
    /// A part of the projet de santé: written in a text, or attached as a document.
    Contenu,
    /// A headcount: a non-negative integer, in a number champ or written in a text
    /// ("34 adhérents").
    Count,
    /// A list of items: the options ticked in a choice champ (a structured answer, read with
    /// certainty), or a free text.
    Choices,
    /// Départements: a département or choice champ, a repetition of département champs, a free
    /// text ("Paris (75), Hauts-de-Seine (92)", "Région Bretagne"), or a communes champ (which
    /// says the territory is part of a département).
    Departements,
    /// A région: a région champ, a drop-down or a text.
    Region,
    /// Specialty names, as chosen or as written (two in one text count as two).
    Specialites,
    /// The carrying association: an RNA or SIRET champ, or a number typed in a text.
    Association,
    /// The association's seat: a commune or address champ, or a text holding a commune's
    /// INSEE code.
    Siege,
    /// The project leaders: a repetition (name, specialty, RPPS) or a text.
    Porteurs,
    /// The governance: a repetition (name, quality, voice) or a text.
    Gouvernance,
    /// A yes/no answer: yes/no, checkbox, or a drop-down or text saying oui/non.
    OuiNon,
    /// The lettre d'intention a projet de santé follows: a dossier link, a number, or a text
    /// holding the number or the dossier's DS address.
    Lien,
    /// Attachments (their metadata only).
    Fichiers,
}

/// One column of a repetition a field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// The key under `columns = { … }` in the configuration.
    pub key: &'static str,
    /// The field cannot be read from a repetition without it.
    pub required: bool,
    /// Several columns may be given (their values are read together).
    pub many: bool,
    /// Folded label words that recognise the column when the configuration names none.
    pub hints: &'static [&'static str],
}

const PORTEURS_COLUMNS: &[ColumnDef] = &[
    ColumnDef {
        key: "nom",
        required: true,
        many: true,
        hints: &["nom", "identite", "prenom", "porteur", "medecin"],
    },
    ColumnDef {
        key: "specialite",
        required: false,
        many: false,
        hints: &["specialite", "discipline", "qualification"],
    },
    ColumnDef {
        key: "rpps",
        required: false,
        many: false,
        hints: &["rpps"],
    },
];

const GOUVERNANCE_COLUMNS: &[ColumnDef] = &[
    ColumnDef {
        key: "nom",
        required: false,
        many: true,
        hints: &["nom", "membre", "identite", "prenom", "structure"],
    },
    ColumnDef {
        key: "qualite",
        required: true,
        many: true,
        hints: &[
            "qualite",
            "statut",
            "fonction",
            "role",
            "specialite",
            "discipline",
            "profession",
            "exercice",
            "categorie",
            "college",
            "type",
        ],
    },
    ColumnDef {
        key: "voix",
        required: false,
        many: false,
        hints: &[
            "voix",
            "vote",
            "votant",
            "votante",
            "deliberative",
            "consultative",
        ],
    },
];

const DEPARTEMENTS_COLUMNS: &[ColumnDef] = &[ColumnDef {
    key: "departement",
    required: true,
    many: false,
    hints: &["departement", "departements", "territoire", "code"],
}];

/// Champ types whose answer is one or more of the form's options: a structured answer.
pub const CHOICE_TYPES: &[&str] = &[
    "drop_down_list",
    "multiple_drop_down_list",
    "linked_drop_down_list",
    "checkbox",
    "yes_no",
];

impl Shape {
    /// The champ types that give this shape directly.
    pub fn strict(self) -> &'static [&'static str] {
        match self {
            Self::Text => &["text", "textarea"],
            Self::Contenu => &["text", "textarea", "piece_justificative"],
            Self::Count => &["integer_number", "number"],
            Self::Choices => &["multiple_drop_down_list", "drop_down_list"],
            Self::Departements => &[
                "departements",
                "multiple_drop_down_list",
                "drop_down_list",
                "repetition",
            ],
            Self::Region => &["regions", "drop_down_list"],
            Self::Specialites => &["multiple_drop_down_list", "drop_down_list"],
            Self::Association => &["rna", "siret"],
            Self::Siege => &["communes", "address"],
            Self::Porteurs => &["repetition"],
            Self::Gouvernance => &["repetition", "textarea", "text"],
            Self::OuiNon => &["yes_no", "checkbox"],
            Self::Lien => &["dossier_link"],
            Self::Fichiers => &["piece_justificative"],
        }
    }

    /// The champ types that can give this shape once their value is parsed (the value may then
    /// turn out unreadable: that is a finding on the dossier, never a crash).
    pub fn tolerated(self) -> &'static [&'static str] {
        match self {
            Self::Text | Self::Contenu => &[
                "drop_down_list",
                "multiple_drop_down_list",
                "linked_drop_down_list",
                "repetition",
            ],
            Self::Count => &["decimal_number", "text", "textarea"],
            Self::Choices => &["text", "textarea", "linked_drop_down_list", "repetition"],
            Self::Departements => &["text", "textarea", "communes", "linked_drop_down_list"],
            Self::Region => &["text"],
            Self::Specialites => &["text", "textarea", "linked_drop_down_list", "repetition"],
            Self::Association => &["text"],
            Self::Siege => &["text"],
            Self::Porteurs => &["text", "textarea"],
            Self::Gouvernance => &[],
            Self::OuiNon => &["drop_down_list", "multiple_drop_down_list", "text"],
            Self::Lien => &["integer_number", "number", "text"],
            Self::Fichiers => &[],
        }
    }

    /// True when a champ of this type can give this shape.
    pub fn accepts(self, type_de_champ: &str) -> bool {
        self.strict().contains(&type_de_champ) || self.tolerated().contains(&type_de_champ)
    }

    /// The columns this shape reads from a repetition (empty: every cell is read as text).
    pub fn columns(self) -> &'static [ColumnDef] {
        match self {
            Self::Porteurs => PORTEURS_COLUMNS,
            Self::Gouvernance => GOUVERNANCE_COLUMNS,
            Self::Departements => DEPARTEMENTS_COLUMNS,
            _ => &[],
        }
    }

    /// What this shape expects, for configuration messages.
    pub fn expected(self) -> &'static str {
        match self {
            Self::Text => "a text",
            Self::Contenu => "a text or an attachment",
            Self::Count => "an integer",
            Self::Choices => "a (multiple) drop-down list or a text",
            Self::Departements => "a département champ, a (multiple) drop-down list or a text",
            Self::Region => "a région champ",
            Self::Specialites => "a (multiple) drop-down list or a text",
            Self::Association => "an RNA or SIRET champ",
            Self::Siege => "a commune or address champ",
            Self::Porteurs => "a repetition or a text",
            Self::Gouvernance => "a repetition or a text",
            Self::OuiNon => "a yes/no champ",
            Self::Lien => "a dossier link",
            Self::Fichiers => "an attachment",
        }
    }

    /// How a champ of this type is read, for `essbot config check --remote` (operators).
    pub fn reading(self, type_de_champ: &str) -> &'static str {
        let choice = CHOICE_TYPES.contains(&type_de_champ);
        match (self, type_de_champ) {
            (Self::Text | Self::Contenu, "repetition") => "every cell of every row, as one text",
            (Self::Text | Self::Contenu, _) if choice => "the options chosen, as text",
            (Self::Contenu, "piece_justificative") => {
                "the documents attached: given when a file is there (no minimum length)"
            }
            (Self::Text | Self::Contenu, _) => "as written",
            (Self::Count, "integer_number" | "number") => "the number",
            (Self::Count, "decimal_number") => "the number; a fraction is unreadable",
            (Self::Count, _) => {
                "the one number written (\"34 adhérents\" gives 34); none, several or words (\"douze\") are unreadable"
            }
            (Self::Choices, "repetition") => {
                "every cell of every row; a structured answer when a column is a choice list"
            }
            (Self::Choices, _) if choice => {
                "the options ticked: a structured answer, read with certainty against the options offered"
            }
            (Self::Choices, _) => {
                "free text, searched by vocabulary: what it does not show is to be checked by a human"
            }
            (Self::Departements, "departements") => "the département chosen",
            (Self::Departements, "repetition") => "the département of each row",
            (Self::Departements, "communes") => {
                "the commune chosen: the territory is then part of a département"
            }
            (Self::Departements, _) if choice => {
                "each option chosen, by code or name (\"75 - Paris\")"
            }
            (Self::Departements, _) => {
                "codes and names as people write them (\"44, 49\", \"Paris (75)\", \"75 – Paris\", \"Région Bretagne\"), with words that limit a département (\"nord\", \"communes de\") kept as a partial territory"
            }
            (Self::Region, "regions") => "the région chosen",
            (Self::Region, _) => "a région code or name",
            (Self::Specialites, _) if choice => {
                "each option chosen, matched to the reference specialties"
            }
            (Self::Specialites, _) => {
                "the specialty names written, matched to the reference specialties (\"Cardiologie, pneumologie\" is two, \"Cardiologie et maladies vasculaires\" one)"
            }
            (Self::Association, "rna") => "the RNA number and the seat's département",
            (Self::Association, "siret") => {
                "the SIRET, legal form and seat's département (INSEE data)"
            }
            (Self::Association, _) => {
                "an RNA number (W + 9 characters) or a SIRET typed in, else a register reference"
            }
            (Self::Siege, "communes") => "the commune's département",
            (Self::Siege, "address") => "the address's département (from its INSEE commune code)",
            (Self::Siege, _) => {
                "a commune's INSEE code or a département code in the text (never a postal code)"
            }
            (Self::Porteurs, "repetition") => "one porteur per row: name, specialty, RPPS",
            (Self::Porteurs, _) => "free text naming the porteurs",
            (Self::Gouvernance, "repetition") => {
                "one member per row: name, quality (one or more columns) and voice; a member is deliberative unless a cell says consultative"
            }
            (Self::Gouvernance, _) => {
                "free text, read for the members it names; a doubtful member is to be checked by a human"
            }
            (Self::OuiNon, "yes_no" | "checkbox") => "the answer (an unticked box is no)",
            (Self::OuiNon, "multiple_drop_down_list" | "drop_down_list") => {
                "yes when an option other than \"aucune\" / \"non\" / \"sans objet\" is chosen"
            }
            (Self::OuiNon, _) => "oui/non (and words starting with them)",
            (Self::Lien, "dossier_link") => "the linked dossier and its state",
            (Self::Lien, _) => "a dossier number, \"Dossier n° 58\" or the dossier's DS address",
            (Self::Fichiers, _) => "the files attached (metadata only)",
        }
    }
}

/// One domain field of rules.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// The key under `[demarches.fields]`.
    pub key: &'static str,
    /// The kind of démarche it belongs to.
    pub kind: DemarcheKind,
    /// Whether the rules can run without it.
    pub need: Need,
    /// The shape of value it gives.
    pub shape: Shape,
    /// Folded label wordings `demarche describe` recognises it by.
    pub hints: &'static [&'static str],
    /// The rules that read it.
    pub rules: &'static [RuleId],
    /// For an optional field, what the rules do when no champ gives it (operators read it in
    /// `config check`, `status` and the logs).
    pub without: &'static str,
}

use DemarcheKind::{LettreIntention as LI, ProjetSante as PS};

macro_rules! field {
    ($key:literal, $kind:expr, $need:expr, $shape:ident, [$($hint:literal),*], [$($rule:ident),*]) => {
        field!($key, $kind, $need, $shape, [$($hint),*], [$($rule),*], "")
    };
    ($key:literal, $kind:expr, $need:expr, $shape:ident, [$($hint:literal),*], [$($rule:ident),*], $without:literal) => {
        FieldDef {
            key: $key,
            kind: $kind,
            need: $need,
            shape: Shape::$shape,
            hints: &[$($hint),*],
            rules: &[$($rule),*],
            without: $without,
        }
    };
}

/// Every domain field, lettre d'intention first, in rules.md's order.
pub const FIELDS: &[FieldDef] = &[
    field!(
        "porteurs",
        LI,
        Need::Required,
        Porteurs,
        [
            "porteurs du projet",
            "porteurs",
            "medecins porteurs",
            "porteur"
        ],
        [LiCont01]
    ),
    field!(
        "specialites",
        LI,
        Need::Required,
        Specialites,
        [
            "specialite concernee",
            "specialites concernees",
            "specialite",
            "specialites"
        ],
        [LiSpec01, LiTerr02, LiAdh02, LiCont01]
    ),
    field!(
        "territoire_departements",
        LI,
        Need::OneOf("territory"),
        Departements,
        [
            "departements couverts",
            "departements concernes",
            "departements",
            "territoire"
        ],
        [LiTerr01, LiTerr02, LiCaisse01, LiAdh02, LiCont01],
        "the territory is the région given, all its départements"
    ),
    field!(
        "territoire_region",
        LI,
        Need::OneOf("territory"),
        Region,
        ["region couverte", "region concernee", "region"],
        [LiTerr01],
        "the territory is the départements given; a région named alone cannot be read"
    ),
    field!(
        "perimetre",
        LI,
        Need::Optional,
        Text,
        ["perimetre medical", "perimetre", "champ d intervention"],
        [LiSpec02],
        "LI-SPEC-02 does not run: no perimeter is read"
    ),
    field!(
        "nb_medecins_specialite",
        LI,
        Need::Required,
        Count,
        [
            "nombre de medecins de la specialite sur le territoire",
            "nombre de medecins de la specialite",
            "medecins de la specialite"
        ],
        [LiDemo01, LiAdh02]
    ),
    field!(
        "nb_liberaux_specialite",
        LI,
        Need::Required,
        Count,
        [
            "nombre de medecins liberaux de la specialite sur le territoire",
            "nombre de liberaux de la specialite",
            "nombre de medecins liberaux",
            "liberaux",
            "liberal",
            "en liberal",
            "exercant en liberal"
        ],
        [LiAdh01, LiAdh02]
    ),
    field!(
        "nb_adherents",
        LI,
        Need::Required,
        Count,
        [
            "nombre de medecins adherents",
            "nombre d adherents",
            "adherents",
            "formulaire d adhesion",
            "adhesion"
        ],
        [LiAdh01, LiAdh02]
    ),
    field!(
        "association",
        LI,
        Need::Optional,
        Association,
        [
            "association porteuse rna",
            "association porteuse",
            "numero rna",
            "rna"
        ],
        [LiJur01, LiCaisse01],
        "the carrier is identified from its SIRET or the filer only; without any, LI-JUR-01 warns and no payment is proposed"
    ),
    field!(
        "association_siret",
        LI,
        Need::Optional,
        Association,
        ["siret de l association", "siret"],
        [LiJur01, LiCaisse01],
        "the carrier is identified from its RNA champ or the filer only"
    ),
    field!(
        "siege",
        LI,
        Need::Optional,
        Siege,
        [
            "siege de l association",
            "siege social",
            "siege",
            "commune du siege",
            "adresse du siege"
        ],
        [LiCaisse01],
        "the competent caisse is that of the association's registered address (RNA or SIRET data) or of the filer"
    ),
    field!(
        "cooperations",
        LI,
        Need::OneOf("cooperations"),
        Choices,
        [
            "cooperations prevues",
            "cooperations",
            "partenaires",
            "cooperent",
            "coopere",
            "partenariats",
            "acteurs"
        ],
        [LiCoop01, LiHosp01, LiCont01],
        "cooperations are read from the précisions text only: a hospital cooperation not found there is to check, never blocking"
    ),
    field!(
        "cooperations_precisions",
        LI,
        Need::OneOf("cooperations"),
        Text,
        ["cooperations precisions", "precisions sur les cooperations"],
        [LiCoop01, LiHosp01, LiCont01],
        "cooperations are read from the choice list only"
    ),
    field!(
        "gouvernance",
        LI,
        Need::Required,
        Gouvernance,
        [
            "gouvernance prevue",
            "gouvernance",
            "composition du bureau",
            "instances"
        ],
        [LiGouv01, LiCont01]
    ),
    field!(
        "actions",
        LI,
        Need::OneOf("actions"),
        Text,
        [
            "actions prevues pour la mission socle",
            "actions prevues",
            "actions"
        ],
        [LiMiss01, LiHosp01, LiCont01],
        "actions are read from the activities list only"
    ),
    field!(
        "actions_mission_socle",
        LI,
        Need::OneOf("actions"),
        Choices,
        [
            "activites de la mission socle",
            "mission socle",
            "missions",
            "engage a assurer"
        ],
        [LiMiss01, LiCont01],
        "the mission socle is read from the actions text only: an activity not found there is to check, never blocking"
    ),
    field!(
        "derogation_demandee",
        LI,
        Need::Optional,
        OuiNon,
        ["demande de derogation", "derogation demandee", "derogation"],
        [LiTerr01, LiSpec01, LiDemo01, LiAdh01],
        "no derogation can be read unless a reason is mapped and given: thresholds not met are blocking, never submitted to the CPN"
    ),
    field!(
        "derogation_motif",
        LI,
        Need::Optional,
        Text,
        ["motif de la derogation", "motif"],
        [LiCont01],
        "a derogation asked without its reason is not flagged"
    ),
    field!(
        "lien_lettre_intention",
        PS,
        Need::Required,
        Lien,
        [
            "lettre d intention",
            "dossier de lettre d intention",
            "numero de la lettre d intention"
        ],
        [PsLink01, PsDel01, PsAdh01]
    ),
    field!(
        "diagnostic_territorial",
        PS,
        Need::Required,
        Contenu,
        ["diagnostic territorial", "diagnostic"],
        [PsCont01]
    ),
    field!(
        "missions_actions",
        PS,
        Need::Required,
        Contenu,
        ["missions et actions", "missions", "actions"],
        [PsCont01]
    ),
    field!(
        "indicateurs",
        PS,
        Need::Required,
        Choices,
        [
            "indicateurs de suivi et d evaluation",
            "indicateurs de suivi",
            "indicateurs"
        ],
        [PsCont01, PsInd02]
    ),
    field!(
        "indicateur_qualitatif",
        PS,
        Need::Required,
        Text,
        ["indicateur qualitatif", "indicateurs qualitatifs"],
        [PsInd01]
    ),
    field!(
        "modalites_actualisation",
        PS,
        Need::Required,
        Contenu,
        [
            "modalites d actualisation du projet",
            "modalites d actualisation",
            "actualisation"
        ],
        [PsCont01]
    ),
    field!(
        "gouvernance",
        PS,
        Need::Required,
        Gouvernance,
        ["gouvernance", "composition du bureau", "instances"],
        [PsGouv01, PsCont01]
    ),
    field!(
        "plan_deploiement",
        PS,
        Need::Required,
        Fichiers,
        [
            "plan de deploiement",
            "document de deploiement",
            "deploiement"
        ],
        [PsCont01]
    ),
    field!(
        "nb_adherents",
        PS,
        Need::Required,
        Count,
        [
            "nombre de medecins adherents",
            "nombre d adherents",
            "adherents",
            "formulaire d adhesion",
            "adhesion"
        ],
        [PsAdh01]
    ),
    field!(
        "nb_liberaux_specialite",
        PS,
        Need::Required,
        Count,
        [
            "nombre de medecins liberaux de la specialite sur le territoire",
            "nombre de liberaux de la specialite",
            "nombre de medecins liberaux",
            "liberaux",
            "liberal",
            "en liberal",
            "exercant en liberal"
        ],
        [PsAdh01]
    ),
];

impl FieldDef {
    /// What leaving this optional field unmapped means, for operators: `siege (LI-CAISSE-01):
    /// the competent caisse is …`.
    pub fn unmapped_effect(&self) -> String {
        format!(
            "{} ({}): {}",
            self.key,
            rules_of([self]).join(", "),
            self.without
        )
    }
}

/// The rules that read any of these fields, by id, each once, sorted.
pub fn rules_of<'a>(fields: impl IntoIterator<Item = &'a FieldDef>) -> Vec<&'static str> {
    let mut rules: Vec<&str> = fields
        .into_iter()
        .flat_map(|f| f.rules.iter().map(|r| r.as_str()))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}

/// One annotation key: what essbot writes back (`rapport`…) or reads from the instructors
/// (`suivi`), with the annotation types that can hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnotationDef {
    /// The key under `[demarches.annotations]` or `[demarches.suivi]`.
    pub key: &'static str,
    /// What it needs, for configuration messages.
    pub expected: &'static str,
    /// Types that hold it directly.
    pub strict: &'static [&'static str],
    /// Types that hold it once parsed.
    pub tolerated: &'static [&'static str],
    /// Folded label wordings `demarche describe` recognises it by.
    pub hints: &'static [&'static str],
    /// The kind of démarche whose instructors fill it (`None`: both).
    pub kind: Option<DemarcheKind>,
}

const DATE: &[&str] = &["date"];

/// Annotations essbot writes (interface.md, `[demarches.annotations]`).
pub const ANNOTATIONS: &[AnnotationDef] = &[
    AnnotationDef {
        key: "rapport",
        expected: "a textarea annotation",
        strict: &["textarea", "text"],
        tolerated: &[],
        hints: &[
            "pre controle automatique",
            "rapport de pre controle",
            "pre controle",
            "analyse automatique",
            "recevabilite",
        ],
        kind: None,
    },
    AnnotationDef {
        key: "conforme",
        expected: "a checkbox annotation",
        strict: &["checkbox", "yes_no"],
        tolerated: &[],
        hints: &["pre controle conforme", "conforme", "recevable"],
        kind: None,
    },
    AnnotationDef {
        key: "prochaine_echeance",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &["prochaine echeance", "echeance"],
        kind: None,
    },
];

/// Annotations instructors fill and essbot reads for the milestones (milestones.md).
pub const SUIVI: &[AnnotationDef] = &[
    AnnotationDef {
        key: "signature_contrat_amorcage",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &[
            "date de signature du contrat de credit d amorcage",
            "contrat d amorcage",
            "credit d amorcage",
        ],
        kind: Some(LI),
    },
    AnnotationDef {
        key: "validation_projet_sante",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &[
            "date de validation du projet de sante",
            "decision de validation",
            "validation",
        ],
        kind: Some(PS),
    },
    AnnotationDef {
        key: "refus_projet_sante",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &[
            "date de refus du projet de sante",
            "decision de refus",
            "refus",
        ],
        kind: Some(PS),
    },
    AnnotationDef {
        key: "numero_finess",
        expected: "a text annotation",
        strict: &["text"],
        tolerated: &["textarea"],
        hints: &["numero finess", "finess"],
        kind: Some(PS),
    },
    AnnotationDef {
        key: "signature_contrat_dotation",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &[
            "date de signature du contrat de dotation annuelle",
            "contrat de dotation",
        ],
        kind: Some(PS),
    },
    AnnotationDef {
        key: "deploiement_mission_socle",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &["date de deploiement de la mission socle", "mission socle"],
        kind: Some(PS),
    },
    AnnotationDef {
        key: "justificatifs_recus",
        expected: "a date annotation",
        strict: DATE,
        tolerated: &["datetime"],
        hints: &[
            "date de reception des justificatifs annuels",
            "justificatifs",
        ],
        kind: Some(PS),
    },
    AnnotationDef {
        key: "nb_adherents_annuel",
        expected: "an integer annotation",
        strict: &["integer_number", "number"],
        tolerated: &["text"],
        hints: &["nombre d adherents sur l annee", "adherents"],
        kind: Some(PS),
    },
];

/// The keys of [`ANNOTATIONS`].
pub fn annotation_keys() -> impl Iterator<Item = &'static str> {
    ANNOTATIONS.iter().map(|a| a.key)
}

/// The keys of [`SUIVI`].
pub fn suivi_keys() -> impl Iterator<Item = &'static str> {
    SUIVI.iter().map(|a| a.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_field_is_defined_once_per_kind_and_read_by_a_rule() {
        for kind in [LI, PS] {
            let keys: Vec<&str> = kind.field_keys();
            let unique: BTreeSet<&str> = keys.iter().copied().collect();
            assert_eq!(keys.len(), unique.len(), "{kind:?}");
        }
        for f in FIELDS {
            assert!(!f.rules.is_empty(), "{} is read by no rule", f.key);
            assert!(!f.hints.is_empty(), "{}", f.key);
            for h in f.hints {
                assert_eq!(*h, super::super::text::normalize(h), "{}: hint {h}", f.key);
            }
        }
    }

    #[test]
    fn every_rule_reads_at_least_one_field() {
        for rule in RuleId::ALL {
            assert!(
                FIELDS.iter().any(|f| f.rules.contains(rule)),
                "{} reads no field",
                rule.as_str()
            );
        }
    }

    #[test]
    fn every_type_a_shape_accepts_has_a_reading() {
        for f in FIELDS {
            for t in f.shape.strict().iter().chain(f.shape.tolerated()) {
                assert!(!f.shape.reading(t).is_empty(), "{}: {t}", f.key);
            }
        }
    }
}
