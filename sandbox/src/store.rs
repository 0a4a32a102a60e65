//! The sandbox's live state: démarches, dossiers and typed champ values, and the operations
//! (as the applicant, the instructeur or the administration) that change them the way DS does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::types::{
    AddressType, Civilite, DeletedDossierReason, DemarcheState, DossierState, LabelColorEnum,
    TraitementEvent, TypeDeChamp,
};

/// A field of a démarche's form (public champ or private annotation).
#[derive(Clone, Debug)]
pub(crate) struct Descriptor {
    pub stable_id: u64,
    pub label: String,
    pub kind: TypeDeChamp,
    pub required: bool,
    pub description: Option<String>,
    pub options: Vec<String>,
    pub children: Vec<Descriptor>,
    /// Level of a `header_section` (1 when not given).
    pub level: i32,
}

impl Descriptor {
    /// Finds a descriptor by stable id, among these and their repetition children.
    pub(crate) fn find(list: &[Descriptor], stable_id: u64) -> Option<&Descriptor> {
        list.iter().find_map(|d| {
            if d.stable_id == stable_id {
                Some(d)
            } else {
                d.children.iter().find(|c| c.stable_id == stable_id)
            }
        })
    }

    /// The repetition this stable id is a child of, if any.
    pub(crate) fn parent_of(list: &[Descriptor], stable_id: u64) -> Option<&Descriptor> {
        list.iter()
            .find(|d| d.children.iter().any(|c| c.stable_id == stable_id))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct LabelRt {
    pub id: i64,
    pub name: String,
    pub color: LabelColorEnum,
}

#[derive(Clone, Debug)]
pub(crate) struct GroupeRt {
    pub number: i32,
    pub label: String,
    pub instructeurs: Vec<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct DemarcheRt {
    pub number: i32,
    pub title: String,
    pub description: String,
    pub state: DemarcheState,
    pub date_creation: DateTime<Utc>,
    pub date_modification: DateTime<Utc>,
    pub revision_id: i64,
    pub champs: Vec<Descriptor>,
    pub annotations: Vec<Descriptor>,
    pub labels: Vec<LabelRt>,
    pub groupes: Vec<GroupeRt>,
}

/// Postal address, as DS's `Address` type.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AddressData {
    pub label: String,
    #[serde(default)]
    pub street_address: Option<String>,
    #[serde(default)]
    pub street_number: Option<String>,
    #[serde(default)]
    pub street_name: Option<String>,
    pub postal_code: String,
    pub city_name: String,
    pub city_code: String,
    #[serde(default)]
    pub department_code: Option<String>,
    #[serde(default)]
    pub department_name: Option<String>,
    #[serde(default)]
    pub region_code: Option<String>,
    #[serde(default)]
    pub region_name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<AddressType>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EntrepriseData {
    pub siren: String,
    pub raison_sociale: String,
    pub siret_siege_social: String,
    #[serde(default)]
    pub forme_juridique: Option<String>,
    #[serde(default)]
    pub forme_juridique_code: Option<String>,
    #[serde(default)]
    pub nom_commercial: String,
    pub inline_adresse: String,
    #[serde(default)]
    pub date_creation: Option<NaiveDate>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AssociationData {
    pub rna: String,
    pub titre: String,
    #[serde(default)]
    pub objet: Option<String>,
    #[serde(default)]
    pub date_creation: Option<NaiveDate>,
    #[serde(default)]
    pub date_declaration: Option<NaiveDate>,
    #[serde(default)]
    pub date_publication: Option<NaiveDate>,
}

/// An établissement (SIRET), as DS's `PersonneMorale`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EtablissementData {
    pub siret: String,
    #[serde(default = "yes")]
    pub siege_social: bool,
    #[serde(default)]
    pub naf: Option<String>,
    #[serde(default)]
    pub libelle_naf: String,
    pub address: AddressData,
    #[serde(default)]
    pub entreprise: Option<EntrepriseData>,
    #[serde(default)]
    pub association: Option<AssociationData>,
}

fn yes() -> bool {
    true
}

/// An RNA record, as DS's `RNA`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RnaData {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub address: Option<AddressData>,
}

/// A commune, as DS's `Commune` (`code` is the INSEE code).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CommuneData {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// An EPCI, as DS's `Epci`, with the département it lies in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EpciData {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub departement: Option<String>,
}

/// A legal commitment (Chorus), as DS's `EngagementJuridique`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EngagementJuridiqueData {
    #[serde(default)]
    pub montant_engage: Option<String>,
    #[serde(default)]
    pub montant_paye: Option<String>,
}

/// A GeoJSON geometry, kept as given.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GeometryData {
    #[serde(rename = "type")]
    pub kind: String,
    pub coordinates: serde_json::Value,
}

/// An area drawn on a carte champ (a cadastral parcel when `source` is `cadastre`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GeoAreaData {
    #[serde(default)]
    pub source: Option<crate::types::GeoAreaSource>,
    #[serde(default)]
    pub description: Option<String>,
    pub geometry: GeometryData,
    #[serde(default)]
    pub commune: String,
    #[serde(default)]
    pub prefixe: String,
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub numero: String,
    #[serde(default)]
    pub surface: String,
}

/// An attached file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileData {
    pub filename: String,
    pub content_type: String,
    pub byte_size: u64,
    pub checksum: String,
}

/// Who filed the dossier.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum DemandeurData {
    PersonnePhysique {
        #[serde(default)]
        civilite: Option<Civilite>,
        nom: String,
        prenom: String,
        #[serde(default)]
        email: Option<String>,
    },
    PersonneMorale(Box<EtablissementData>),
    PersonneMoraleIncomplete {
        siret: String,
    },
}

/// A typed champ value.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Empty,
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    /// Raw text of an integer; may be malformed on purpose ("douze").
    Int(String),
    Decimal(f64),
    Strings(Vec<String>),
    Departement {
        code: String,
        name: String,
    },
    Region {
        code: String,
        name: String,
    },
    Rna(Box<RnaData>),
    Siret(Box<EtablissementData>),
    Rows(Vec<RowRt>),
    Link(i32),
    Files(Vec<FileData>),
    Civilite(Civilite),
    Linked {
        primary: Option<String>,
        secondary: Option<String>,
    },
    Address(Box<AddressData>),
    Commune(CommuneData),
    Pays {
        code: String,
        name: String,
    },
    Epci(EpciData),
    Rnf(Box<RnaData>),
    EngagementJuridique(EngagementJuridiqueData),
    GeoAreas(Vec<GeoAreaData>),
}

#[derive(Clone, Debug)]
pub(crate) struct ChampRt {
    pub value: Val,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct RowRt {
    pub id: String,
    pub champs: HashMap<u64, ChampRt>,
}

#[derive(Clone, Debug)]
pub(crate) struct MessageRt {
    pub id: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub email: String,
}

#[derive(Clone, Debug)]
pub(crate) struct TraitementRt {
    pub id: i64,
    pub event: TraitementEvent,
    pub state: DossierState,
    pub at: DateTime<Utc>,
    pub email: Option<String>,
    pub motivation: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct DossierRt {
    pub number: i32,
    pub demarche: i32,
    pub groupe: i32,
    pub state: DossierState,
    pub archived: bool,
    pub date_depot: DateTime<Utc>,
    pub date_en_instruction: Option<DateTime<Utc>>,
    pub date_traitement: Option<DateTime<Utc>>,
    pub motivation: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub champs_updated_at: DateTime<Utc>,
    pub annotations_updated_at: DateTime<Utc>,
    pub demandeur: DemandeurData,
    pub usager_email: String,
    pub labels: Vec<i64>,
    pub messages: Vec<MessageRt>,
    pub traitements: Vec<TraitementRt>,
    pub champs: HashMap<u64, ChampRt>,
    pub annotations: HashMap<u64, ChampRt>,
    pub hidden: Option<(DateTime<Utc>, DeletedDossierReason)>,
}

#[derive(Clone, Debug)]
pub(crate) struct DeletedRt {
    pub number: i32,
    pub demarche: i32,
    pub state: DossierState,
    pub reason: DeletedDossierReason,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct TokenRt {
    pub label: String,
    pub write: bool,
    pub expired: bool,
    pub demarches: Option<Vec<i32>>,
}

/// Everything the sandbox serves. Dossiers and démarches sit behind `Arc`s so that GraphQL
/// resolvers work on cheap snapshots while writes copy on write.
#[derive(Clone, Debug, Default)]
pub(crate) struct Store {
    pub demarches: BTreeMap<i32, Arc<DemarcheRt>>,
    pub instructeurs: BTreeMap<i64, String>,
    pub tokens: HashMap<String, TokenRt>,
    pub dossiers: BTreeMap<i32, Arc<DossierRt>>,
    pub deleted: Vec<DeletedRt>,
    pub next_id: i64,
}

/// Why a data operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No such dossier (or it was deleted).
    #[error("dossier {0} not found")]
    UnknownDossier(i32),
    /// No such démarche.
    #[error("démarche {0} not found")]
    UnknownDemarche(i32),
    /// No champ or annotation with that stable id on the dossier's démarche.
    #[error("no champ with stable id {0}")]
    UnknownChamp(u64),
    /// The value does not fit the champ's type.
    #[error("champ {id}: {message}")]
    BadValue {
        /// Stable id of the champ.
        id: u64,
        /// What is wrong.
        message: String,
    },
    /// Anything else inconsistent in the data set.
    #[error("{0}")]
    Invalid(String),
}

impl Store {
    pub(crate) fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// A visible (not hidden, not deleted) dossier.
    pub(crate) fn visible_dossier(&self, number: i32) -> Option<&Arc<DossierRt>> {
        self.dossiers.get(&number).filter(|d| d.hidden.is_none())
    }

    fn dossier_mut(&mut self, number: i32) -> Result<&mut DossierRt, DataError> {
        self.dossiers
            .get_mut(&number)
            .filter(|d| d.hidden.is_none())
            .map(Arc::make_mut)
            .ok_or(DataError::UnknownDossier(number))
    }

    fn demarche_of(&self, number: i32) -> Result<Arc<DemarcheRt>, DataError> {
        let d = self
            .visible_dossier(number)
            .ok_or(DataError::UnknownDossier(number))?;
        self.demarches
            .get(&d.demarche)
            .cloned()
            .ok_or(DataError::UnknownDemarche(d.demarche))
    }

    /// Edits a public champ as the applicant: bumps `dateDerniereModification` and
    /// `dateDerniereModificationChamps`, as a champ save does in DS.
    pub(crate) fn edit_champ(
        &mut self,
        number: i32,
        stable_id: u64,
        raw: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), DataError> {
        let dem = self.demarche_of(number)?;
        let desc = dem
            .champs
            .iter()
            .find(|d| d.stable_id == stable_id)
            .ok_or(DataError::UnknownChamp(stable_id))?;
        let seed = crate::data::RawChamp::from_edit(stable_id, raw);
        let champ = crate::data::typed_champ(desc, &seed, now, u64::from(number.unsigned_abs()))?;
        let d = self.dossier_mut(number)?;
        d.champs.insert(stable_id, champ);
        d.updated_at = now;
        d.champs_updated_at = now;
        Ok(())
    }

    /// Changes a dossier's state as an instructeur would, recording the traitement.
    pub(crate) fn set_state(
        &mut self,
        number: i32,
        state: DossierState,
        motivation: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), DataError> {
        let id = self.next_id();
        let d = self.dossier_mut(number)?;
        let event = match (d.state, state) {
            (_, DossierState::Accepte) => TraitementEvent::Accepte,
            (_, DossierState::Refuse) => TraitementEvent::Refuse,
            (_, DossierState::SansSuite) => TraitementEvent::ClasseSansSuite,
            (DossierState::EnConstruction, DossierState::EnInstruction) => {
                TraitementEvent::PasseEnInstruction
            }
            (_, DossierState::EnInstruction) => TraitementEvent::RepasseEnInstruction,
            (_, DossierState::EnConstruction) => TraitementEvent::RepasseEnConstruction,
        };
        d.state = state;
        match state {
            DossierState::EnConstruction => {
                d.date_en_instruction = None;
                d.date_traitement = None;
                d.motivation = None;
            }
            DossierState::EnInstruction => {
                d.date_en_instruction = Some(now);
                d.date_traitement = None;
                d.motivation = None;
            }
            _ => {
                if d.date_en_instruction.is_none() {
                    d.date_en_instruction = Some(now);
                }
                d.date_traitement = Some(now);
                d.motivation = motivation.clone();
            }
        }
        d.traitements.push(TraitementRt {
            id,
            event,
            state,
            at: now,
            email: None,
            motivation,
        });
        d.updated_at = now;
        Ok(())
    }

    /// Purges a dossier: it leaves every listing and appears in `deletedDossiers`.
    pub(crate) fn delete_dossier(
        &mut self,
        number: i32,
        reason: DeletedDossierReason,
        now: DateTime<Utc>,
    ) -> Result<(), DataError> {
        let d = self
            .dossiers
            .remove(&number)
            .ok_or(DataError::UnknownDossier(number))?;
        self.deleted.push(DeletedRt {
            number,
            demarche: d.demarche,
            state: d.state,
            reason,
            at: now,
        });
        Ok(())
    }

    /// Hides a dossier (applicant or administration): it leaves the listings and appears in
    /// `pendingDeletedDossiers` until purged.
    pub(crate) fn hide_dossier(
        &mut self,
        number: i32,
        reason: DeletedDossierReason,
        now: DateTime<Utc>,
    ) -> Result<(), DataError> {
        let d = self.dossier_mut(number)?;
        d.hidden = Some((now, reason));
        Ok(())
    }

    /// Removes a champ (or annotation) descriptor from a démarche's active revision, and the
    /// champ from its dossiers, as when an administrator publishes a revision without it.
    pub(crate) fn remove_descriptor(
        &mut self,
        demarche: i32,
        stable_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), DataError> {
        let dem = self
            .demarches
            .get_mut(&demarche)
            .ok_or(DataError::UnknownDemarche(demarche))?;
        let dem = Arc::make_mut(dem);
        let before = count(&dem.champs) + count(&dem.annotations);
        for list in [&mut dem.champs, &mut dem.annotations] {
            list.retain(|d| d.stable_id != stable_id);
            for d in list.iter_mut() {
                d.children.retain(|c| c.stable_id != stable_id);
            }
        }
        if before == count(&dem.champs) + count(&dem.annotations) {
            return Err(DataError::UnknownChamp(stable_id));
        }
        dem.revision_id += 1;
        dem.date_modification = now;
        for d in self
            .dossiers
            .values_mut()
            .filter(|d| d.demarche == demarche)
        {
            let d = Arc::make_mut(d);
            d.champs.remove(&stable_id);
            d.annotations.remove(&stable_id);
        }
        Ok(())
    }
}

fn count(list: &[Descriptor]) -> usize {
    list.iter().map(|d| 1 + d.children.len()).sum()
}

/// `Base64.strict_encode64("<Class>-<id>")`, DS's global ids.
pub(crate) fn gid(class: &str, id: impl std::fmt::Display) -> String {
    STANDARD.encode(format!("{class}-{id}"))
}

/// Decodes a global id (standard or URL-safe alphabet) into `(class, rest)`.
pub(crate) fn decode_gid(id: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(id).or_else(|_| URL_SAFE.decode(id)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (class, rest) = text.split_once('-')?;
    Some((class.to_owned(), rest.to_owned()))
}

/// A deterministic ULID-looking row id (26 Crockford base32 characters).
pub(crate) fn row_ulid(seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    // Timestamp part fixed in 2026, random part from a splitmix of the seed.
    let mut out = String::from("01KA");
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    for _ in 0..22 {
        x ^= x >> 30;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 27;
        out.push(char::from(ALPHABET[(x % 32) as usize]));
    }
    out
}
