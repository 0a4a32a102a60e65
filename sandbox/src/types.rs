//! GraphQL enums and scalars whose names and values are exactly DS's.

use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A dossier's state as DS names it (`brouillon` is never served by the API).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DossierState {
    /// Filed, editable by the applicant.
    EnConstruction,
    /// Frozen, being examined.
    EnInstruction,
    /// Accepted.
    Accepte,
    /// Refused.
    Refuse,
    /// Closed without decision.
    SansSuite,
}

impl DossierState {
    /// Whether a decision was taken (the states that carry a `dateTraitement`).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Accepte | Self::Refuse | Self::SansSuite)
    }
}

/// Why a dossier was deleted or hidden, as DS reports it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DeletedDossierReason {
    /// Expired after its retention period.
    Expired,
    /// Deleted at an instructeur's request.
    InstructeurRequest,
    /// Deleted by a manager.
    ManagerRequest,
    /// The démarche was removed.
    ProcedureRemoved,
    /// The applicant's account expired.
    UserExpired,
    /// The applicant's account was removed.
    UserRemoved,
    /// The applicant deleted it.
    UserRequest,
}

/// A démarche's publication state.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum DemarcheState {
    Brouillon,
    Close,
    Depubliee,
    Publiee,
}

/// Sort order of a connection (deprecated in DS in favour of `last`).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    #[graphql(name = "ASC")]
    Asc,
    #[graphql(name = "DESC")]
    Desc,
}

/// Colours DS offers for labels.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum LabelColorEnum {
    BeigeGrisGalet,
    BlueEcume,
    BrownCafeCreme,
    GreenBourgeon,
    GreenEmeraude,
    GreenMenthe,
    GreenTilleulVerveine,
    PinkMacaron,
    PurpleGlycine,
    YellowTournesol,
}

/// Civility of a natural person.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "PascalCase")]
pub(crate) enum Civilite {
    M,
    Mme,
}

/// What happened in a dossier's history.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum TraitementEvent {
    Accepte,
    AccepteAutomatiquement,
    ClasseSansSuite,
    Depose,
    DeposeCorrectionInstructeur,
    DeposeCorrectionUsager,
    PasseEnInstruction,
    PasseEnInstructionAutomatiquement,
    Refuse,
    RefuseAutomatiquement,
    RepasseEnConstruction,
    RepasseEnInstruction,
}

/// Kind of a geocoded address.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum AddressType {
    Housenumber,
    Locality,
    Municipality,
    Street,
}

/// How the applicant signs in.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub(crate) enum ConnectionUsager {
    Deleted,
    FranceConnect,
    Password,
}

/// Reason of a correction request sent with a message.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum CorrectionReason {
    Incomplete,
    Incorrect,
    Outdated,
}

/// DS's field types (the deprecated `ChampDescriptor.type`), all of them.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum TypeDeChamp {
    Address,
    AnnuaireEducation,
    Carte,
    Checkbox,
    Civilite,
    Cnaf,
    Cojo,
    Communes,
    Date,
    Datetime,
    DecimalNumber,
    Departements,
    Dgfip,
    DossierLink,
    DropDownList,
    Email,
    EngagementJuridique,
    Epci,
    Explication,
    Formatted,
    HeaderSection,
    Iban,
    IntegerNumber,
    LinkedDropDownList,
    Mesri,
    MultipleDropDownList,
    Number,
    Pays,
    Phone,
    PieceJustificative,
    PoleEmploi,
    Referentiel,
    Regions,
    Repetition,
    Rna,
    Rnf,
    Siret,
    Text,
    Textarea,
    TitreIdentite,
    YesNo,
}

/// How an identity document was provided.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum TitreIdentiteGrantType {
    FranceConnect,
    PieceJustificative,
}

/// Where a geographic area of a carte champ comes from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum GeoAreaSource {
    Cadastre,
    Rpg,
    SelectionUtilisateur,
}

impl TypeDeChamp {
    /// The `AnnotationValueInput` key writing this type, when annotations of it can be written.
    pub(crate) fn annotation_key(self) -> Option<&'static str> {
        Some(match self {
            Self::Text => "text",
            Self::Textarea => "textarea",
            Self::Email => "email",
            Self::Checkbox => "checkbox",
            Self::YesNo => "yesNo",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::IntegerNumber => "integerNumber",
            Self::DecimalNumber => "decimalNumber",
            Self::DropDownList => "dropDownList",
            Self::MultipleDropDownList => "multipleDropDownList",
            Self::Repetition => "repetition",
            _ => return None,
        })
    }
}

/// Renders an instant as DS does: second precision, Europe/Paris, with its offset.
pub(crate) fn paris(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Paris)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `ISO8601DateTime`: an instant, rendered at 1-second precision in Europe/Paris.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DateTimeScalar(pub DateTime<Utc>);

#[Scalar(name = "ISO8601DateTime")]
impl ScalarType for DateTimeScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|d| Self(d.with_timezone(&Utc)))
                .map_err(|_| {
                    InputValueError::custom(format!("\"{s}\" is not an ISO 8601 datetime"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(paris(self.0))
    }
}

/// `ISO8601Date`: a calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DateScalar(pub NaiveDate);

#[Scalar(name = "ISO8601Date")]
impl ScalarType for DateScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Self)
                .map_err(|_| InputValueError::custom(format!("\"{s}\" is not an ISO 8601 date"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// `BigInt`: an integer that travels as a JSON string. The sandbox keeps the raw text, so a
/// malformed value stored in the data set ("douze") reaches the client as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BigIntScalar(pub String);

#[Scalar(name = "BigInt")]
impl ScalarType for BigIntScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) if s.parse::<i128>().is_ok() => Ok(Self(s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Self(n.to_string())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `URL`: an absolute URL, as a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UrlScalar(pub String);

#[Scalar(name = "URL")]
impl ScalarType for UrlScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) if s.contains("://") => Ok(Self(s.clone())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `Coordinates`: GeoJSON coordinates (nested arrays of numbers), passed through as JSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CoordinatesScalar(pub Value);

#[Scalar(name = "Coordinates")]
impl ScalarType for CoordinatesScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        Ok(Self(value))
    }

    fn to_value(&self) -> Value {
        self.0.clone()
    }
}

/// Formats an instant with nanoseconds in UTC, as DS cursors and logs keep it.
pub(crate) fn utc_nanos(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}
