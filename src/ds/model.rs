//! The dossier as essbot sees it, independent of the GraphQL operation that fetched it.
//!
//! The generated graphql_client types belong to one operation each; everything after the DS
//! client (store, rules, milestones, write-back) works on these plain types instead, so that a
//! dossier read from a listing page, from `Query.dossier` or from a stored snapshot is the same
//! value. Values stay as DS typed them: an integer keeps its raw string (DS sends `BigInt` as a
//! string) so that an unreadable value can be reported as a finding rather than lost in parsing.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

/// A DS timestamp: DS renders `ISO8601DateTime` in the Paris zone with its offset.
pub type Timestamp = DateTime<FixedOffset>;

/// `DossierState` of the DS schema; `brouillon` is never listed by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DossierState {
    EnConstruction,
    EnInstruction,
    Accepte,
    Refuse,
    SansSuite,
}

impl DossierState {
    /// The API's spelling, also used in the store and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnConstruction => "en_construction",
            Self::EnInstruction => "en_instruction",
            Self::Accepte => "accepte",
            Self::Refuse => "refuse",
            Self::SansSuite => "sans_suite",
        }
    }

    /// Parses the API's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "en_construction" => Self::EnConstruction,
            "en_instruction" => Self::EnInstruction,
            "accepte" => Self::Accepte,
            "refuse" => Self::Refuse,
            "sans_suite" => Self::SansSuite,
            _ => return None,
        })
    }

    /// French wording for staff-facing text.
    pub fn libelle(self) -> &'static str {
        match self {
            Self::EnConstruction => "en construction",
            Self::EnInstruction => "en instruction",
            Self::Accepte => "accepté",
            Self::Refuse => "refusé",
            Self::SansSuite => "classé sans suite",
        }
    }

    /// True once DS has recorded a decision (accepted, refused or closed).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Accepte | Self::Refuse | Self::SansSuite)
    }
}

/// One dossier, as fetched from DS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dossier {
    /// The GraphQL global id (base64 of `Dossier-<number>`), needed by every mutation.
    pub id: String,
    pub number: i64,
    pub state: DossierState,
    pub date_depot: Timestamp,
    pub date_derniere_modification: Timestamp,
    /// Last change of the applicant's champs: our own annotation writes do not move it.
    pub date_derniere_modification_champs: Timestamp,
    pub date_derniere_modification_annotations: Timestamp,
    pub date_passage_en_instruction: Option<Timestamp>,
    pub date_traitement: Option<Timestamp>,
    /// Motivation of the decision, when DS has one.
    pub motivation: Option<String>,
    pub groupe_instructeur: Option<GroupeInstructeur>,
    pub demandeur: Demandeur,
    pub labels: Vec<Label>,
    pub messages: Vec<Message>,
    pub champs: Vec<Champ>,
    pub annotations: Vec<Champ>,
}

impl Dossier {
    /// The champ (public) whose stable descriptor id is `descriptor_id`.
    pub fn champ(&self, descriptor_id: &str) -> Option<&Champ> {
        self.champs
            .iter()
            .find(|c| c.descriptor_id == descriptor_id)
    }

    /// The private annotation whose stable descriptor id is `descriptor_id`.
    pub fn annotation(&self, descriptor_id: &str) -> Option<&Champ> {
        self.annotations
            .iter()
            .find(|c| c.descriptor_id == descriptor_id)
    }
}

/// The instructeurs' group a dossier is routed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupeInstructeur {
    pub id: String,
    pub number: i64,
    pub label: String,
}

/// Who filed the dossier. Only what essbot reads is kept; no personal data beyond that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Demandeur {
    PersonnePhysique {
        nom: String,
        prenom: String,
    },
    PersonneMorale {
        siret: String,
        /// The `Entreprise.formeJuridique` wording (e.g. "Association déclarée").
        forme_juridique: Option<String>,
        forme_juridique_code: Option<String>,
        /// The RNA number when INSEE links the establishment to an association.
        rna: Option<String>,
        departement_code: Option<String>,
    },
    /// `PersonneMoraleIncomplete`, or a demandeur type this version does not know.
    Other {
        siret: Option<String>,
    },
}

/// A DS label (tag) on a dossier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: String,
    pub name: String,
}

/// A message of the dossier's messagerie; read back to never send one twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub created_at: Timestamp,
    pub email: String,
}

/// A champ or a private annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Champ {
    /// The champ's own id (inside a repetition row it also names the row).
    pub id: String,
    /// Stable across revisions: base64 of `Champ-<stable_id>`.
    pub descriptor_id: String,
    pub label: String,
    /// DS's French display text; shown as evidence, never parsed for a value.
    pub string_value: Option<String>,
    pub value: ChampValue,
}

/// A code and its name, as DS gives départements, régions and communes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeName {
    pub code: String,
    pub name: String,
}

/// The typed value of a champ, one variant per concrete DS champ type essbot reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ChampValue {
    /// `TextChamp` (text, textarea, email, phone and the fallback types).
    Text(Option<String>),
    /// `CheckboxChamp`.
    Checkbox(bool),
    /// `YesNoChamp`: `None` when unanswered.
    YesNo(Option<bool>),
    /// `DateChamp.date`.
    Date(Option<NaiveDate>),
    /// `DatetimeChamp.datetime`.
    Datetime(Option<Timestamp>),
    /// `IntegerNumberChamp.value`: DS's `BigInt`, sent as a string and kept raw.
    Integer(Option<String>),
    /// `DecimalNumberChamp.value`.
    Decimal(Option<f64>),
    /// `DropDownListChamp.value`.
    DropDown(Option<String>),
    /// `MultipleDropDownListChamp.values`.
    MultipleDropDown(Vec<String>),
    /// `LinkedDropDownListChamp`.
    LinkedDropDown {
        primary: Option<String>,
        secondary: Option<String>,
    },
    /// `DepartementChamp.departement`.
    Departement(Option<CodeName>),
    /// `RegionChamp.region`.
    Region(Option<CodeName>),
    /// `CommuneChamp`: the commune and its département.
    Commune {
        commune: Option<CodeName>,
        departement: Option<CodeName>,
    },
    /// `AddressChamp`: the address as written and where it lies (commune INSEE code,
    /// département), as DS geocoded it.
    Address {
        label: Option<String>,
        city_code: Option<String>,
        departement: Option<CodeName>,
    },
    /// `RNAChamp`: the association found in the RNA, if any.
    Rna(Option<Rna>),
    /// `SiretChamp.etablissement`.
    Siret(Option<Etablissement>),
    /// `RepetitionChamp.rows`.
    Repetition(Vec<Row>),
    /// `DossierLinkChamp.dossier`: `None` when empty or not visible to the token.
    DossierLink(Option<LinkedDossier>),
    /// `PieceJustificativeChamp.files`.
    PieceJustificative(Vec<File>),
    /// A champ type essbot does not read (header, explication, carte...), kept by name so a
    /// mapping onto it can be reported instead of ignored.
    Other { typename: String },
}

/// An association as DS's RNA champ returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rna {
    pub id: String,
    pub title: Option<String>,
    pub departement_code: Option<String>,
}

/// An establishment as DS's SIRET champ returns it (`PersonneMorale`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Etablissement {
    pub siret: String,
    pub forme_juridique: Option<String>,
    pub forme_juridique_code: Option<String>,
    pub raison_sociale: Option<String>,
    /// RNA number of the association behind the SIRET, when INSEE knows it.
    pub association_rna: Option<String>,
    pub departement_code: Option<String>,
}

/// One row of a repetition champ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub champs: Vec<Champ>,
}

/// The target of a dossier-link champ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedDossier {
    pub number: i64,
    pub state: Option<DossierState>,
}

/// An attachment's metadata (never its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub filename: String,
    pub content_type: String,
    pub byte_size: Option<i64>,
    pub url: Option<String>,
}

/// What the démarche's active revision declares: the mapping is resolved against this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemarcheDescriptors {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub champs: Vec<ChampDescriptor>,
    pub annotations: Vec<ChampDescriptor>,
    pub labels: Vec<Label>,
}

/// One champ or annotation descriptor of a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChampDescriptor {
    /// Stable id: base64 of `Champ-<stable_id>`.
    pub id: String,
    pub label: String,
    /// The GraphQL `__typename` (e.g. `IntegerNumberChampDescriptor`).
    pub typename: String,
    /// The deprecated `TypeDeChamp` value (e.g. `integer_number`): the key of
    /// `AnnotationValueInput` is its camelCase form.
    pub type_de_champ: String,
    pub required: bool,
    /// Options of drop-down descriptors.
    pub options: Vec<String>,
    /// Children of a repetition descriptor.
    pub children: Vec<ChampDescriptor>,
}

/// A dossier DS deleted, or hidden pending deletion: recorded, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedDossier {
    pub number: i64,
    pub state: Option<DossierState>,
    pub reason: String,
    pub date_suppression: Timestamp,
}

/// A groupe instructeur of a démarche and the instructeurs in it (`config check --remote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupeMembers {
    pub number: i64,
    pub label: String,
    pub closed: bool,
    /// The instructeurs' profile ids and e-mail addresses.
    pub instructeurs: Vec<(String, String)>,
}
