//! The data set format (JSON), its loading into the live [`Store`], and the synthetic generator.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::SandboxError;
use crate::geo;
use crate::store::{
    ChampRt, DataError, DeletedRt, DemandeurData, DemarcheRt, Descriptor, DossierRt,
    EtablissementData, FileData, GeoAreaData, GroupeRt, LabelRt, MessageRt, RnaData, RowRt, Store,
    TokenRt, TraitementRt, Val, row_ulid,
};
use crate::types::{
    DeletedDossierReason, DemarcheState, DossierState, LabelColorEnum, TraitementEvent, TypeDeChamp,
};

const DEMO_JSON: &str = include_str!("../data/demo.json");

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDataset {
    instructeurs: Vec<RawInstructeur>,
    tokens: Vec<RawToken>,
    demarches: Vec<RawDemarche>,
    #[serde(default)]
    dossiers: Vec<RawDossier>,
    #[serde(default)]
    deleted_dossiers: Vec<RawDeleted>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawInstructeur {
    id: i64,
    email: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawToken {
    token: String,
    label: String,
    #[serde(default = "yes")]
    write: bool,
    #[serde(default)]
    expired: bool,
    #[serde(default)]
    demarches: Option<Vec<i32>>,
    #[serde(default)]
    owner: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDemarche {
    number: i32,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default = "publiee")]
    state: DemarcheState,
    date_creation: DateTime<Utc>,
    revision: i64,
    champs: Vec<RawDescriptor>,
    annotations: Vec<RawDescriptor>,
    labels: Vec<RawLabel>,
    groupes: Vec<RawGroupe>,
}

fn publiee() -> DemarcheState {
    DemarcheState::Publiee
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDescriptor {
    id: u64,
    label: String,
    #[serde(rename = "type")]
    kind: TypeDeChamp,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    children: Vec<RawDescriptor>,
    /// Level of a `header_section`.
    #[serde(default)]
    level: Option<i32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLabel {
    id: i64,
    name: String,
    color: LabelColorEnum,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGroupe {
    number: i32,
    label: String,
    instructeurs: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDossier {
    number: i32,
    demarche: i32,
    #[serde(default)]
    groupe: Option<i32>,
    state: DossierState,
    #[serde(default)]
    archived: bool,
    date_depot: DateTime<Utc>,
    #[serde(default)]
    date_passage_en_instruction: Option<DateTime<Utc>>,
    #[serde(default)]
    date_traitement: Option<DateTime<Utc>>,
    #[serde(default)]
    motivation: Option<String>,
    #[serde(default)]
    date_derniere_modification: Option<DateTime<Utc>>,
    #[serde(default)]
    date_derniere_modification_champs: Option<DateTime<Utc>>,
    #[serde(default)]
    date_derniere_modification_annotations: Option<DateTime<Utc>>,
    demandeur: DemandeurData,
    usager: String,
    #[serde(default)]
    labels: Vec<i64>,
    #[serde(default)]
    messages: Vec<RawMessage>,
    #[serde(default)]
    champs: Vec<RawChamp>,
    #[serde(default)]
    annotations: Vec<RawChamp>,
    #[serde(default)]
    hidden: Option<RawHidden>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawHidden {
    reason: DeletedDossierReason,
    date: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMessage {
    body: String,
    created_at: DateTime<Utc>,
    email: String,
}

/// One champ value, written compactly and typed by its descriptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawChamp {
    id: u64,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    rows: Option<Vec<Vec<RawChamp>>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

impl RawChamp {
    /// The champ an in-process edit describes: `value` is the compact value, or for a
    /// repetition an array of rows (arrays of `{id, value}`).
    pub(crate) fn from_edit(id: u64, value: &serde_json::Value) -> RawChamp {
        let rows = value
            .as_array()
            .filter(|a| a.iter().all(|r| r.is_array()) && !a.is_empty())
            .and_then(|_| serde_json::from_value(value.clone()).ok());
        RawChamp {
            id,
            value: value.clone(),
            rows,
            updated_at: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDeleted {
    number: i32,
    demarche: i32,
    state: DossierState,
    reason: DeletedDossierReason,
    date_supression: DateTime<Utc>,
}

/// A data set the sandbox serves: démarches (forms, labels, groupes instructeurs),
/// instructeurs, API tokens and dossiers. See the crate documentation for the JSON format.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub(crate) store: Store,
}

impl Dataset {
    pub(crate) fn from_parts(store: Store) -> Dataset {
        Dataset { store }
    }

    /// The demo data set (`sandbox/data/demo.json`): démarches 1001 and 1002 of
    /// `docs/demo-forms.md` and dossiers exercising every rule of the rulebook.
    pub fn demo() -> Dataset {
        // The embedded file is checked by this crate's unit tests; failing here is a build bug.
        Dataset::from_json_str(DEMO_JSON).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded demo data set is invalid");
            Dataset {
                store: Store::default(),
            }
        })
    }

    /// Parses a data set from its JSON text.
    ///
    /// # Errors
    /// [`SandboxError::Json`] when the text does not follow the format,
    /// [`SandboxError::Data`] when it is inconsistent (unknown démarche, champ or label, a
    /// value that does not fit its champ's type, duplicate dossier numbers).
    pub fn from_json_str(json: &str) -> Result<Dataset, SandboxError> {
        let raw: RawDataset = serde_json::from_str(json)?;
        Ok(Dataset {
            store: build(&raw)?,
        })
    }

    /// Reads and parses a data set file.
    ///
    /// # Errors
    /// [`SandboxError::Io`] when the file cannot be read, else as [`Dataset::from_json_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Dataset, SandboxError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Dataset::from_json_str(&text)
    }

    /// A generated data set for benchmarks and paging tests: the demo tokens and
    /// instructeurs, one démarche per number (the lettre d'intention form for even positions,
    /// the projet de santé form for odd ones) and `dossiers_per_demarche` realistic dossiers
    /// of about 30 champs each. Deterministic from `seed`. Dossiers are numbered from 1 across
    /// démarches; deposit and modification times come in groups of three equal instants so
    /// that paging must break ties by id.
    pub fn synthetic(demarche_numbers: &[i32], dossiers_per_demarche: usize, seed: u64) -> Dataset {
        let demo: RawDataset = match serde_json::from_str(DEMO_JSON) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "embedded demo data set is invalid");
                return Dataset {
                    store: Store::default(),
                };
            }
        };
        let mut raw = RawDataset {
            instructeurs: demo.instructeurs.clone(),
            tokens: demo.tokens.clone(),
            demarches: Vec::new(),
            dossiers: Vec::new(),
            deleted_dossiers: Vec::new(),
        };
        let mut rng = Rng(seed);
        let mut number = 0;
        let mut seen = std::collections::HashSet::new();
        for (i, &dem_number) in demarche_numbers.iter().enumerate() {
            if !seen.insert(dem_number) {
                continue;
            }
            let Some(template) = demo.demarches.get(i % 2) else {
                continue;
            };
            let mut dem = template.clone();
            dem.number = dem_number;
            dem.revision = i64::from(dem_number) * 10;
            let base = i64::try_from(i).unwrap_or(0) * 10;
            for (k, l) in dem.labels.iter_mut().enumerate() {
                l.id = base + i64::try_from(k).unwrap_or(0) + 1;
            }
            let groupe = i32::try_from(i).unwrap_or(0) + 1;
            dem.groupes = vec![RawGroupe {
                number: groupe,
                label: "défaut".into(),
                instructeurs: vec![1],
            }];
            for k in 0..dossiers_per_demarche {
                number += 1;
                let d = if i % 2 == 0 {
                    synthetic_li(&mut rng, number, dem_number, groupe, k)
                } else {
                    synthetic_ps(&mut rng, number, dem_number, groupe, k)
                };
                raw.dossiers.push(d);
            }
            raw.demarches.push(dem);
        }
        match build(&raw) {
            Ok(store) => Dataset { store },
            Err(e) => {
                tracing::error!(error = %e, "synthetic data set is invalid");
                Dataset {
                    store: Store::default(),
                }
            }
        }
    }

    /// Exactly `n` dossiers on démarche 1001 (numbers 1..=n), for paging tests.
    pub fn with_dossier_count(n: usize) -> Dataset {
        Dataset::synthetic(&[1001], n, 42)
    }

    /// The numbers of the visible dossiers, in ascending order.
    pub fn dossier_numbers(&self) -> Vec<i32> {
        self.store
            .dossiers
            .values()
            .filter(|d| d.hidden.is_none())
            .map(|d| d.number)
            .collect()
    }
}

/// Turns a compact value into a typed champ, checking it against its descriptor.
pub(crate) fn typed_champ(
    desc: &Descriptor,
    raw: &RawChamp,
    default_time: DateTime<Utc>,
    row_seed: u64,
) -> Result<ChampRt, DataError> {
    let bad = |message: &str| DataError::BadValue {
        id: desc.stable_id,
        message: format!("{message} expected for a {:?} champ", desc.kind),
    };
    let v = &raw.value;
    let updated_at = raw.updated_at.unwrap_or(default_time);
    if desc.kind == TypeDeChamp::Repetition {
        let mut rows = Vec::new();
        for (i, row) in raw.rows.iter().flatten().enumerate() {
            let mut champs = HashMap::new();
            for c in row {
                let child = desc
                    .children
                    .iter()
                    .find(|d| d.stable_id == c.id)
                    .ok_or(DataError::UnknownChamp(c.id))?;
                champs.insert(c.id, typed_champ(child, c, updated_at, row_seed)?);
            }
            let seed = (row_seed << 24) ^ (desc.stable_id << 8) ^ (i as u64);
            rows.push(RowRt {
                id: row_ulid(seed),
                champs,
            });
        }
        return Ok(ChampRt {
            value: Val::Rows(rows),
            updated_at,
        });
    }
    if v.is_null() {
        return Ok(ChampRt {
            value: Val::Empty,
            updated_at,
        });
    }
    let value = match desc.kind {
        TypeDeChamp::Text
        | TypeDeChamp::Textarea
        | TypeDeChamp::Email
        | TypeDeChamp::DropDownList
        | TypeDeChamp::Phone
        | TypeDeChamp::Iban
        | TypeDeChamp::Formatted
        | TypeDeChamp::Referentiel
        | TypeDeChamp::AnnuaireEducation
        | TypeDeChamp::Cnaf
        | TypeDeChamp::Dgfip
        | TypeDeChamp::PoleEmploi
        | TypeDeChamp::Mesri
        | TypeDeChamp::Cojo => Val::Text(v.as_str().ok_or_else(|| bad("a string"))?.into()),
        TypeDeChamp::Civilite => {
            Val::Civilite(serde_json::from_value(v.clone()).map_err(|_| bad("\"M\" or \"Mme\""))?)
        }
        TypeDeChamp::LinkedDropDownList => {
            let pair: Vec<Option<String>> =
                serde_json::from_value(v.clone()).map_err(|_| bad("[primary, secondary]"))?;
            let mut pair = pair.into_iter();
            Val::Linked {
                primary: pair.next().flatten(),
                secondary: pair.next().flatten(),
            }
        }
        TypeDeChamp::Address => Val::Address(Box::new(
            serde_json::from_value(v.clone()).map_err(|e| bad(&e.to_string()))?,
        )),
        TypeDeChamp::Communes => {
            Val::Commune(serde_json::from_value(v.clone()).map_err(|e| bad(&e.to_string()))?)
        }
        TypeDeChamp::Pays => {
            let (code, name) = code_name(v, |c| (c == "FR").then_some("France"))
                .ok_or_else(|| bad("\"FR\" or {code, name}"))?;
            Val::Pays { code, name }
        }
        TypeDeChamp::Epci => {
            Val::Epci(serde_json::from_value(v.clone()).map_err(|e| bad(&e.to_string()))?)
        }
        TypeDeChamp::Rnf => Val::Rnf(Box::new(
            serde_json::from_value::<RnaData>(v.clone()).map_err(|e| bad(&e.to_string()))?,
        )),
        TypeDeChamp::EngagementJuridique => Val::EngagementJuridique(
            serde_json::from_value(v.clone()).map_err(|e| bad(&e.to_string()))?,
        ),
        TypeDeChamp::Carte => Val::GeoAreas(
            serde_json::from_value::<Vec<GeoAreaData>>(v.clone())
                .map_err(|e| bad(&e.to_string()))?,
        ),
        TypeDeChamp::TitreIdentite => {
            Val::Bool(v.as_bool().ok_or_else(|| bad("a boolean (filled)"))?)
        }
        TypeDeChamp::HeaderSection | TypeDeChamp::Explication => Val::Empty,
        TypeDeChamp::Checkbox | TypeDeChamp::YesNo => {
            Val::Bool(v.as_bool().ok_or_else(|| bad("a boolean"))?)
        }
        TypeDeChamp::Date => {
            let s = v.as_str().ok_or_else(|| bad("a YYYY-MM-DD string"))?;
            Val::Date(
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("a YYYY-MM-DD string"))?,
            )
        }
        TypeDeChamp::Datetime => {
            let s = v.as_str().ok_or_else(|| bad("an RFC 3339 string"))?;
            Val::DateTime(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|_| bad("an RFC 3339 string"))?
                    .with_timezone(&Utc),
            )
        }
        TypeDeChamp::IntegerNumber | TypeDeChamp::Number => match v {
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Val::Int(n.to_string()),
            serde_json::Value::String(s) => Val::Int(s.clone()),
            _ => return Err(bad("an integer (or a string)")),
        },
        TypeDeChamp::DecimalNumber => Val::Decimal(v.as_f64().ok_or_else(|| bad("a number"))?),
        TypeDeChamp::MultipleDropDownList => {
            Val::Strings(serde_json::from_value(v.clone()).map_err(|_| bad("an array of strings"))?)
        }
        TypeDeChamp::Departements => {
            let (code, name) = code_name(v, geo::departement_name)
                .ok_or_else(|| bad("a known département code or {code, name}"))?;
            Val::Departement { code, name }
        }
        TypeDeChamp::Regions => {
            let (code, name) = code_name(v, geo::region_name)
                .ok_or_else(|| bad("a known région code or {code, name}"))?;
            Val::Region { code, name }
        }
        TypeDeChamp::Rna => Val::Rna(Box::new(
            serde_json::from_value::<RnaData>(v.clone()).map_err(|e| bad(&e.to_string()))?,
        )),
        TypeDeChamp::Siret => Val::Siret(Box::new(
            serde_json::from_value::<EtablissementData>(v.clone())
                .map_err(|e| bad(&e.to_string()))?,
        )),
        TypeDeChamp::DossierLink => Val::Link(
            v.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| bad("a dossier number"))?,
        ),
        TypeDeChamp::PieceJustificative => Val::Files(
            serde_json::from_value::<Vec<FileData>>(v.clone()).map_err(|e| bad(&e.to_string()))?,
        ),
        TypeDeChamp::Repetition => Val::Empty,
    };
    Ok(ChampRt { value, updated_at })
}

fn code_name(
    v: &serde_json::Value,
    lookup: fn(&str) -> Option<&'static str>,
) -> Option<(String, String)> {
    match v {
        serde_json::Value::String(code) => lookup(code).map(|n| (code.clone(), n.to_owned())),
        serde_json::Value::Object(o) => Some((
            o.get("code")?.as_str()?.to_owned(),
            o.get("name")?.as_str()?.to_owned(),
        )),
        _ => None,
    }
}

fn descriptor(raw: &RawDescriptor) -> Descriptor {
    let options = if raw.options.len() == 1 && raw.options[0] == "@departements" {
        geo::DEPARTEMENTS
            .iter()
            .map(|(c, n, _)| format!("{c} - {n}"))
            .collect()
    } else {
        raw.options.clone()
    };
    Descriptor {
        stable_id: raw.id,
        label: raw.label.clone(),
        kind: raw.kind,
        required: raw.required,
        description: raw.description.clone(),
        options,
        children: raw.children.iter().map(descriptor).collect(),
        level: raw.level.unwrap_or(1),
    }
}

fn build(raw: &RawDataset) -> Result<Store, DataError> {
    let mut store = Store::default();
    for i in &raw.instructeurs {
        store.instructeurs.insert(i.id, i.email.clone());
    }
    for t in &raw.tokens {
        store.tokens.insert(
            t.token.clone(),
            TokenRt {
                label: t.label.clone(),
                write: t.write,
                expired: t.expired,
                demarches: t.demarches.clone(),
            },
        );
    }
    let mut label_owner = HashMap::new();
    for d in &raw.demarches {
        for l in &d.labels {
            if label_owner.insert(l.id, d.number).is_some() {
                return Err(DataError::Invalid(format!("label {} defined twice", l.id)));
            }
        }
        for g in &d.groupes {
            if let Some(i) = g
                .instructeurs
                .iter()
                .find(|i| !store.instructeurs.contains_key(i))
            {
                return Err(DataError::Invalid(format!(
                    "groupe {}: unknown instructeur {i}",
                    g.number
                )));
            }
        }
        if d.groupes.is_empty() {
            return Err(DataError::Invalid(format!(
                "démarche {} has no groupe instructeur",
                d.number
            )));
        }
        let dem = DemarcheRt {
            number: d.number,
            title: d.title.clone(),
            description: d.description.clone(),
            state: d.state,
            date_creation: d.date_creation,
            date_modification: d.date_creation,
            revision_id: d.revision,
            champs: d.champs.iter().map(descriptor).collect(),
            annotations: d.annotations.iter().map(descriptor).collect(),
            labels: d
                .labels
                .iter()
                .map(|l| LabelRt {
                    id: l.id,
                    name: l.name.clone(),
                    color: l.color,
                })
                .collect(),
            groupes: d
                .groupes
                .iter()
                .map(|g| GroupeRt {
                    number: g.number,
                    label: g.label.clone(),
                    instructeurs: g.instructeurs.clone(),
                })
                .collect(),
        };
        if store.demarches.insert(d.number, Arc::new(dem)).is_some() {
            return Err(DataError::Invalid(format!(
                "démarche {} defined twice",
                d.number
            )));
        }
    }
    let mut max_id = 0;
    for d in &raw.dossiers {
        let dossier = build_dossier(&store, d, &label_owner, &mut max_id)?;
        if store.dossiers.insert(d.number, Arc::new(dossier)).is_some() {
            return Err(DataError::Invalid(format!(
                "dossier {} defined twice",
                d.number
            )));
        }
    }
    for d in &raw.deleted_dossiers {
        if store.dossiers.contains_key(&d.number)
            || store.deleted.iter().any(|x| x.number == d.number)
        {
            return Err(DataError::Invalid(format!(
                "dossier {} defined twice",
                d.number
            )));
        }
        store.deleted.push(DeletedRt {
            number: d.number,
            demarche: d.demarche,
            state: d.state,
            reason: d.reason,
            at: d.date_supression,
        });
    }
    store.next_id = max_id.max(10_000);
    Ok(store)
}

fn build_dossier(
    store: &Store,
    d: &RawDossier,
    label_owner: &HashMap<i64, i32>,
    max_id: &mut i64,
) -> Result<DossierRt, DataError> {
    let dem = store
        .demarches
        .get(&d.demarche)
        .ok_or(DataError::UnknownDemarche(d.demarche))?;
    let groupe = match d.groupe {
        Some(g) if dem.groupes.iter().any(|x| x.number == g) => g,
        Some(g) => {
            return Err(DataError::Invalid(format!(
                "dossier {}: unknown groupe {g}",
                d.number
            )));
        }
        None => dem.groupes[0].number,
    };
    for l in &d.labels {
        if label_owner.get(l) != Some(&d.demarche) {
            return Err(DataError::Invalid(format!(
                "dossier {}: label {l} is not on its démarche",
                d.number
            )));
        }
    }
    let seed = u64::from(d.number.unsigned_abs());
    let mut champs = HashMap::new();
    for c in &d.champs {
        let desc = dem
            .champs
            .iter()
            .find(|x| x.stable_id == c.id)
            .ok_or(DataError::UnknownChamp(c.id))?;
        champs.insert(c.id, typed_champ(desc, c, d.date_depot, seed)?);
    }
    let annotations_default = d
        .date_derniere_modification_annotations
        .or(d.date_traitement)
        .or(d.date_passage_en_instruction)
        .unwrap_or(d.date_depot);
    let mut annotations = HashMap::new();
    for c in &d.annotations {
        let desc = dem
            .annotations
            .iter()
            .find(|x| x.stable_id == c.id)
            .ok_or(DataError::UnknownChamp(c.id))?;
        annotations.insert(c.id, typed_champ(desc, c, annotations_default, seed)?);
    }
    let champs_at = d
        .date_derniere_modification_champs
        .or_else(|| champs.values().map(|c: &ChampRt| c.updated_at).max())
        .unwrap_or(d.date_depot)
        .max(d.date_depot);
    let annotations_at = d
        .date_derniere_modification_annotations
        .or_else(|| annotations.values().map(|c: &ChampRt| c.updated_at).max())
        .unwrap_or(d.date_depot);
    let messages: Vec<MessageRt> = d
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| MessageRt {
            id: i64::from(d.number) * 100 + i as i64,
            body: m.body.clone(),
            created_at: m.created_at,
            email: m.email.clone(),
        })
        .collect();
    let updated_at = d.date_derniere_modification.unwrap_or_else(|| {
        [
            Some(champs_at),
            Some(annotations_at),
            d.date_passage_en_instruction,
            d.date_traitement,
        ]
        .into_iter()
        .flatten()
        .chain(messages.iter().map(|m| m.created_at))
        .max()
        .unwrap_or(d.date_depot)
    });
    let base = i64::from(d.number) * 10;
    *max_id = (*max_id).max(i64::from(d.number) * 100 + 99);
    let mut traitements = vec![TraitementRt {
        id: base,
        event: TraitementEvent::Depose,
        state: DossierState::EnConstruction,
        at: d.date_depot,
        email: None,
        motivation: None,
    }];
    if let Some(at) = d.date_passage_en_instruction {
        traitements.push(TraitementRt {
            id: base + 1,
            event: TraitementEvent::PasseEnInstruction,
            state: DossierState::EnInstruction,
            at,
            email: None,
            motivation: None,
        });
    }
    if d.state.is_terminal() {
        let at = d.date_traitement.ok_or_else(|| {
            DataError::Invalid(format!(
                "dossier {}: a decided dossier needs dateTraitement",
                d.number
            ))
        })?;
        let event = match d.state {
            DossierState::Accepte => TraitementEvent::Accepte,
            DossierState::Refuse => TraitementEvent::Refuse,
            _ => TraitementEvent::ClasseSansSuite,
        };
        traitements.push(TraitementRt {
            id: base + 2,
            event,
            state: d.state,
            at,
            email: store.instructeurs.values().next().cloned(),
            motivation: d.motivation.clone(),
        });
    }
    Ok(DossierRt {
        number: d.number,
        demarche: d.demarche,
        groupe,
        state: d.state,
        archived: d.archived,
        date_depot: d.date_depot,
        date_en_instruction: d.date_passage_en_instruction,
        date_traitement: d.date_traitement,
        motivation: d.motivation.clone(),
        updated_at,
        champs_updated_at: champs_at,
        annotations_updated_at: annotations_at,
        demandeur: d.demandeur.clone(),
        usager_email: d.usager.clone(),
        labels: d.labels.clone(),
        messages,
        traitements,
        champs,
        annotations,
        hidden: d.hidden.as_ref().map(|h| (h.date, h.reason)),
    })
}

/// Parses a dossier given in the data set's format, for [`crate::Sandbox::add_dossier`].
pub(crate) fn dossier_from_json(
    store: &Store,
    json: &serde_json::Value,
) -> Result<DossierRt, SandboxError> {
    let raw: RawDossier = serde_json::from_value(json.clone())?;
    let mut label_owner = HashMap::new();
    for dem in store.demarches.values() {
        for l in &dem.labels {
            label_owner.insert(l.id, dem.number);
        }
    }
    let mut max_id = 0;
    Ok(build_dossier(store, &raw, &label_owner, &mut max_id)?)
}

/// A small deterministic generator (splitmix64), so synthetic data needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SPECIALITES: &[&str] = &[
    "Cardiologie",
    "Dermatologie",
    "Endocrinologie",
    "Psychiatrie",
    "Pneumologie",
    "Rhumatologie",
    "Ophtalmologie",
    "Neurologie",
    "Gastro-entérologie",
    "Pédiatrie",
];
const NOMS: &[&str] = &[
    "Martin", "Bernard", "Le Gall", "Dubois", "Moreau", "Laurent", "Simon", "Michel", "Garcia",
    "Lefebvre", "Roux", "Fournier", "Girard", "Bonnet", "Mercier", "Guérin", "Kerjean", "Santoni",
];
const PRENOMS: &[&str] = &[
    "Anne", "Yann", "Sophie", "Marc", "Claire", "Nicolas", "Hélène", "Thomas", "Maëlle", "Julien",
    "Isabelle", "Pierre", "Camille", "Laurent",
];

fn champ(id: u64, value: serde_json::Value) -> RawChamp {
    RawChamp {
        id,
        value,
        rows: None,
        updated_at: None,
    }
}

fn rows(id: u64, rows: Vec<Vec<RawChamp>>) -> RawChamp {
    RawChamp {
        id,
        value: serde_json::Value::Null,
        rows: Some(rows),
        updated_at: None,
    }
}

fn synthetic_times(k: usize) -> (DateTime<Utc>, DateTime<Utc>) {
    let base = Utc
        .with_ymd_and_hms(2026, 1, 5, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let step = i64::try_from(k / 3).unwrap_or(0);
    let depot = base + Duration::minutes(step * 47) + Duration::milliseconds(250);
    let updated = depot + Duration::hours(3) + Duration::nanoseconds(123_456_789);
    (depot, updated)
}

fn synthetic_state(
    k: usize,
    depot: DateTime<Utc>,
) -> (DossierState, Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    match k % 10 {
        0..=3 => (DossierState::EnConstruction, None, None),
        4..=6 => (
            DossierState::EnInstruction,
            Some(depot + Duration::days(3)),
            None,
        ),
        7 | 8 => (
            DossierState::Accepte,
            Some(depot + Duration::days(3)),
            Some(depot + Duration::days(20)),
        ),
        _ => (
            DossierState::Refuse,
            Some(depot + Duration::days(3)),
            Some(depot + Duration::days(20)),
        ),
    }
}

fn person(rng: &mut Rng) -> (String, String) {
    (rng.pick(PRENOMS).to_owned(), rng.pick(NOMS).to_owned())
}

fn synthetic_base(rng: &mut Rng, number: i32, demarche: i32, groupe: i32, k: usize) -> RawDossier {
    let (depot, updated) = synthetic_times(k);
    let (state, instruction, traitement) = synthetic_state(k, depot);
    let (prenom, nom) = person(rng);
    let email = format!(
        "{}.{}{}@exemple.fr",
        deunicode_lower(&prenom),
        deunicode_lower(&nom),
        number
    );
    RawDossier {
        number,
        demarche,
        groupe: Some(groupe),
        state,
        archived: false,
        date_depot: depot,
        date_passage_en_instruction: instruction,
        date_traitement: traitement,
        motivation: (state == DossierState::Refuse)
            .then(|| "Le territoire est déjà couvert par une ESS de la même spécialité.".into()),
        date_derniere_modification: Some(updated.max(traitement.unwrap_or(updated))),
        date_derniere_modification_champs: Some(depot),
        date_derniere_modification_annotations: None,
        demandeur: DemandeurData::PersonnePhysique {
            civilite: None,
            nom: nom.clone(),
            prenom: prenom.clone(),
            email: Some(email.clone()),
        },
        usager: email,
        labels: Vec::new(),
        messages: Vec::new(),
        champs: Vec::new(),
        annotations: Vec::new(),
        hidden: None,
    }
}

fn deunicode_lower(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => Some('e'),
            'à' | 'â' => Some('a'),
            'ï' | 'î' => Some('i'),
            'ô' => Some('o'),
            'ç' => Some('c'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn synthetic_li(rng: &mut Rng, number: i32, demarche: i32, groupe: i32, k: usize) -> RawDossier {
    use serde_json::json;
    let mut d = synthetic_base(rng, number, demarche, groupe, k);
    let specialite = rng.pick(SPECIALITES);
    let regions: BTreeMap<&str, Vec<(&str, &str)>> =
        geo::DEPARTEMENTS
            .iter()
            .fold(BTreeMap::new(), |mut m, (c, n, r)| {
                m.entry(*r).or_default().push((*c, *n));
                m
            });
    let region_codes: Vec<&str> = regions
        .keys()
        .copied()
        .filter(|r| r.len() == 2 && *r > "10")
        .collect();
    let region = rng.pick(&region_codes);
    let deps = &regions[region];
    let take = 1 + rng.below(deps.len());
    let departements: Vec<String> = deps
        .iter()
        .take(take)
        .map(|(c, n)| format!("{c} - {n}"))
        .collect();
    let medecins = 20 + rng.below(200);
    let liberaux = medecins * (50 + rng.below(40)) / 100;
    let adherents = (liberaux / 10).max(1) + rng.below(liberaux / 3 + 1);
    let porteurs = (0..3)
        .map(|_| {
            let (p, n) = person(rng);
            vec![
                champ(102, json!(format!("Dr {p} {n}"))),
                champ(103, json!(specialite)),
                champ(104, json!(format!("10{:09}", rng.next() % 1_000_000_000))),
            ]
        })
        .collect();
    let gouvernance = (0..3)
        .map(|i| {
            let (p, n) = person(rng);
            let (qualite, voix) = if i < 2 {
                ("Médecin spécialiste libéral", "Délibérative")
            } else {
                ("CPTS", "Consultative")
            };
            vec![
                champ(122, json!(format!("Dr {p} {n}"))),
                champ(123, json!(qualite)),
                champ(124, json!(voix)),
            ]
        })
        .collect();
    d.champs = vec![
        rows(101, porteurs),
        champ(110, json!([specialite])),
        champ(111, json!(departements)),
        champ(
            112,
            if take == deps.len() {
                json!(region)
            } else {
                serde_json::Value::Null
            },
        ),
        champ(
            113,
            json!(format!(
                "{specialite} : avis spécialisés et consultations avancées pour les patients adressés par les médecins traitants du territoire."
            )),
        ),
        champ(114, json!(medecins)),
        champ(115, json!(liberaux)),
        champ(116, json!(adherents)),
        champ(
            117,
            json!({"id": format!("W{:09}", rng.next() % 1_000_000_000), "title": format!("ESS {specialite}"), "address": null}),
        ),
        champ(118, serde_json::Value::Null),
        champ(
            119,
            json!([
                "CPTS",
                "MSP / ESP",
                "DAC",
                "Autres ESS",
                "GHT et établissements de santé",
                "Professionnels hospitaliers"
            ]),
        ),
        champ(
            120,
            json!("Conventions en cours avec les CPTS et le GHT du territoire."),
        ),
        rows(121, gouvernance),
        champ(
            125,
            json!("Téléexpertise sous 7 jours, consultations avancées mensuelles en MSP."),
        ),
        champ(
            126,
            json!([
                "Structuration de l'offre de second recours avec le premier et le troisième recours",
                "Avis spécialisé ponctuel à la demande des médecins traitants (consultation ou téléexpertise)"
            ]),
        ),
        champ(127, json!(false)),
        champ(128, serde_json::Value::Null),
    ];
    d
}

fn synthetic_ps(rng: &mut Rng, number: i32, demarche: i32, groupe: i32, k: usize) -> RawDossier {
    use serde_json::json;
    let mut d = synthetic_base(rng, number, demarche, groupe, k);
    let liberaux = 40 + rng.below(150);
    let adherents = liberaux / 10 + rng.below(liberaux / 2);
    let gouvernance = (0..3)
        .map(|_| {
            let (p, n) = person(rng);
            vec![
                champ(208, json!(format!("Dr {p} {n}"))),
                champ(209, json!("Médecin spécialiste libéral")),
                champ(210, json!("Délibérative")),
            ]
        })
        .collect();
    d.champs = vec![
        champ(201, json!(1)),
        champ(
            202,
            json!("Territoire semi-rural, délais de rendez-vous supérieurs à quatre mois."),
        ),
        champ(
            203,
            json!("Téléexpertise, consultations avancées, formation des médecins traitants."),
        ),
        champ(
            204,
            json!([
                "Nombre de professionnels de santé adresseurs, dont médecins traitants",
                "Nombre de patients pris en charge",
                "Nombre de téléexpertises réalisées",
                "Nombre de membres proposant des consultations avancées",
                "Nombre de consultations avancées réalisées"
            ]),
        ),
        champ(
            205,
            json!("Satisfaction des médecins traitants adresseurs (questionnaire annuel)."),
        ),
        champ(206, json!("Revue annuelle en assemblée générale.")),
        rows(207, gouvernance),
        champ(
            211,
            json!([{"filename": "plan-deploiement.pdf", "contentType": "application/pdf", "byteSize": 182_044 + rng.below(1000), "checksum": "q1F0c3R4dWI5cGxhbg=="}]),
        ),
        champ(212, json!(adherents)),
        champ(213, json!(liberaux)),
    ];
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(dem: &DemarcheRt, id: u64) -> &Descriptor {
        Descriptor::find(&dem.champs, id)
            .or_else(|| Descriptor::find(&dem.annotations, id))
            .unwrap_or_else(|| panic!("descriptor {id} missing"))
    }

    /// The demo data set matches docs/demo-forms.md: ids, labels, types, options, instructeurs,
    /// tokens and labels.
    #[test]
    fn demo_matches_demo_forms() {
        let raw: RawDataset = serde_json::from_str(DEMO_JSON).expect("demo.json parses");
        let store = build(&raw).expect("demo.json is consistent");
        let li = &store.demarches[&1001];
        let ps = &store.demarches[&1002];
        let expected_li = [
            (101, "Porteurs du projet", TypeDeChamp::Repetition),
            (102, "Nom et prénom", TypeDeChamp::Text),
            (103, "Spécialité", TypeDeChamp::Text),
            (104, "Numéro RPPS", TypeDeChamp::Text),
            (
                110,
                "Spécialité concernée",
                TypeDeChamp::MultipleDropDownList,
            ),
            (
                111,
                "Départements couverts",
                TypeDeChamp::MultipleDropDownList,
            ),
            (112, "Région couverte", TypeDeChamp::Regions),
            (113, "Périmètre médical", TypeDeChamp::Textarea),
            (
                114,
                "Nombre de médecins de la spécialité sur le territoire",
                TypeDeChamp::IntegerNumber,
            ),
            (
                115,
                "Nombre de médecins libéraux de la spécialité sur le territoire",
                TypeDeChamp::IntegerNumber,
            ),
            (
                116,
                "Nombre de médecins adhérents",
                TypeDeChamp::IntegerNumber,
            ),
            (117, "Association porteuse (RNA)", TypeDeChamp::Rna),
            (118, "SIRET de l'association", TypeDeChamp::Siret),
            (
                119,
                "Coopérations prévues",
                TypeDeChamp::MultipleDropDownList,
            ),
            (120, "Coopérations : précisions", TypeDeChamp::Textarea),
            (121, "Gouvernance prévue", TypeDeChamp::Repetition),
            (122, "Nom du membre", TypeDeChamp::Text),
            (123, "Qualité", TypeDeChamp::DropDownList),
            (124, "Voix", TypeDeChamp::DropDownList),
            (
                125,
                "Actions prévues pour la mission socle",
                TypeDeChamp::Textarea,
            ),
            (
                126,
                "Activités de la mission socle",
                TypeDeChamp::MultipleDropDownList,
            ),
            (127, "Demande de dérogation", TypeDeChamp::YesNo),
            (128, "Motif de la dérogation", TypeDeChamp::Textarea),
            (901, "Pré-contrôle automatique", TypeDeChamp::Textarea),
            (902, "Pré-contrôle conforme", TypeDeChamp::Checkbox),
            (903, "Prochaine échéance", TypeDeChamp::Date),
            (
                904,
                "Date de signature du contrat de crédit d'amorçage",
                TypeDeChamp::Date,
            ),
        ];
        for (id, label, kind) in expected_li {
            let d = desc(li, id);
            assert_eq!((d.label.as_str(), d.kind), (label, kind), "champ {id}");
        }
        assert_eq!(li.champs.len(), 17, "1001 has 17 top-level champs");
        assert_eq!(li.annotations.len(), 4);
        let expected_ps = [
            (201, "Lettre d'intention", TypeDeChamp::DossierLink),
            (202, "Diagnostic territorial", TypeDeChamp::Textarea),
            (203, "Missions et actions", TypeDeChamp::Textarea),
            (
                204,
                "Indicateurs de suivi et d'évaluation",
                TypeDeChamp::MultipleDropDownList,
            ),
            (205, "Indicateur qualitatif", TypeDeChamp::Textarea),
            (
                206,
                "Modalités d'actualisation du projet",
                TypeDeChamp::Textarea,
            ),
            (207, "Gouvernance", TypeDeChamp::Repetition),
            (208, "Nom du membre", TypeDeChamp::Text),
            (209, "Qualité", TypeDeChamp::DropDownList),
            (210, "Voix", TypeDeChamp::DropDownList),
            (211, "Plan de déploiement", TypeDeChamp::PieceJustificative),
            (
                212,
                "Nombre de médecins adhérents",
                TypeDeChamp::IntegerNumber,
            ),
            (
                213,
                "Nombre de médecins libéraux de la spécialité sur le territoire",
                TypeDeChamp::IntegerNumber,
            ),
            (951, "Pré-contrôle automatique", TypeDeChamp::Textarea),
            (952, "Pré-contrôle conforme", TypeDeChamp::Checkbox),
            (953, "Prochaine échéance", TypeDeChamp::Date),
            (
                954,
                "Date de validation du projet de santé",
                TypeDeChamp::Date,
            ),
            (955, "Date de refus du projet de santé", TypeDeChamp::Date),
            (956, "Numéro FINESS", TypeDeChamp::Text),
            (
                957,
                "Date de signature du contrat de dotation annuelle",
                TypeDeChamp::Date,
            ),
            (
                958,
                "Date de déploiement de la mission socle",
                TypeDeChamp::Date,
            ),
            (
                959,
                "Date de réception des justificatifs annuels",
                TypeDeChamp::Date,
            ),
            (
                960,
                "Nombre d'adhérents sur l'année",
                TypeDeChamp::IntegerNumber,
            ),
        ];
        for (id, label, kind) in expected_ps {
            let d = desc(ps, id);
            assert_eq!((d.label.as_str(), d.kind), (label, kind), "champ {id}");
        }
        assert_eq!(ps.annotations.len(), 10);
        // Options named by the forms.
        assert_eq!(desc(li, 111).options.len(), 101);
        assert!(desc(li, 111).options.contains(&"01 - Ain".to_owned()));
        assert_eq!(
            desc(li, 119).options,
            [
                "CPTS",
                "MSP / ESP",
                "DAC",
                "Autres ESS",
                "GHT et établissements de santé",
                "Professionnels hospitaliers"
            ]
        );
        assert_eq!(desc(li, 124).options, ["Délibérative", "Consultative"]);
        assert_eq!(desc(ps, 209).options, desc(li, 123).options);
        assert_eq!(desc(li, 126).options.len(), 2);
        assert_eq!(desc(ps, 204).options.len(), 5);
        for s in [
            "Cardiologie",
            "Dermatologie",
            "Endocrinologie",
            "Psychiatrie",
            "Pneumologie",
            "Rhumatologie",
            "Médecine générale",
        ] {
            assert!(desc(li, 110).options.iter().any(|o| o == s), "{s}");
        }
        // Labels and groupes.
        for dem in [li, ps] {
            let names: Vec<&str> = dem.labels.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "Pré-contrôle : conforme",
                    "Pré-contrôle : à vérifier",
                    "Pré-contrôle : à compléter",
                    "Pré-contrôle : dérogation CPN"
                ]
            );
            assert!(dem.groupes.iter().any(|g| g.instructeurs.contains(&1)));
            assert!(dem.groupes.iter().all(|g| !g.instructeurs.contains(&2)));
        }
        assert!(store.instructeurs.contains_key(&2));
        assert_eq!(crate::store::gid("Instructeur", 1), "SW5zdHJ1Y3RldXItMQ==");
        assert_eq!(crate::store::gid("Champ", 116), "Q2hhbXAtMTE2");
        let t = &store.tokens[crate::DEMO_TOKEN];
        assert!(t.write && !t.expired && t.demarches.is_none());
        assert!(!store.tokens["essbot-demo-readonly"].write);
        assert!(store.tokens["essbot-demo-expired"].expired);
        // At least 12 dossiers, over every state, numbers unique across démarches.
        assert!(store.dossiers.len() >= 12);
        for s in [
            DossierState::EnConstruction,
            DossierState::EnInstruction,
            DossierState::Accepte,
            DossierState::Refuse,
            DossierState::SansSuite,
        ] {
            assert!(store.dossiers.values().any(|d| d.state == s), "{s:?}");
        }
    }

    #[test]
    fn synthetic_is_deterministic_and_sized() {
        let a = Dataset::synthetic(&[1001, 1002], 25, 7);
        let b = Dataset::synthetic(&[1001, 1002], 25, 7);
        assert_eq!(a.dossier_numbers(), (1..=50).collect::<Vec<_>>());
        let da = &a.store.dossiers[&3];
        let db = &b.store.dossiers[&3];
        assert_eq!(format!("{:?}", da.demandeur), format!("{:?}", db.demandeur));
        let champs: usize = da
            .champs
            .values()
            .map(|c| match &c.value {
                Val::Rows(r) => 1 + r.iter().map(|r| r.champs.len()).sum::<usize>(),
                _ => 1,
            })
            .sum();
        assert!((28..=40).contains(&champs), "{champs} champs");
        assert_eq!(Dataset::with_dossier_count(0).dossier_numbers().len(), 0);
    }

    #[test]
    fn bad_values_are_reported_not_panicking() {
        let text = DEMO_JSON.replacen(
            "\"id\": 114, \"value\": ",
            "\"id\": 114, \"value\": true, \"x\": ",
            1,
        );
        assert!(Dataset::from_json_str(&text).is_err());
        assert!(Dataset::from_json_str("{").is_err());
        assert!(
            Dataset::from_json_str(
                "{\"instructeurs\":[],\"tokens\":[],\"demarches\":[],\"dossiers\":[{}]}"
            )
            .is_err()
        );
    }
}
