//! `essbot check NUMBER [--json]`: the pre-check of one dossier, fetched live from DS, printed
//! instead of written.
//!
//! An instructor runs it to see what essbot thinks of a dossier right now, and an operator to
//! try a new mapping before the daemon writes anything: so it writes nothing anywhere — no
//! annotation, label or message on DS, no row in the store. The other projects that the overlap
//! (LI-TERR-02) and link (PS-LINK-01, PS-DEL-01) rules compare with come from the local store,
//! opened read-only when the configured database exists; without it the output says that the
//! overlap check is partial.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};

use crate::config::{DemarcheKind, DemarcheSettings, Settings};
use crate::ds::model::{DemarcheDescriptors, Dossier};
use crate::ds::{ApiError, DecodeError, DsClient, decode_dossier};
use crate::precheck::paris_today;
use crate::rules::{
    self, KnownProject, KnownProjects, MappingError, ReferenceData, ReferenceError, Report,
    ResolvedMapping, RuleContext,
};
use crate::store::{DatabaseUrl, Store, StoreError};

/// Why a command could not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// DS refused or failed the call (French text, shown as is).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// DS served the dossier but essbot cannot read it.
    #[error("dossier {number} illisible : {source}")]
    Decode {
        /// The dossier asked for.
        number: i64,
        /// What could not be read.
        source: DecodeError,
    },
    /// The dossier belongs to none of the configured démarches.
    #[error(
        "le dossier {number} n'appartient à aucune des démarches configurées ({})",
        list(.demarches)
    )]
    NotWatched {
        /// The dossier asked for.
        number: i64,
        /// The démarches of the configuration.
        demarches: Vec<i64>,
    },
    /// The démarche is not in the configuration.
    #[error(
        "la démarche {number} n'est pas dans la configuration (démarches configurées : {})",
        list(.demarches)
    )]
    UnknownDemarche {
        /// The démarche asked for.
        number: i64,
        /// The démarches of the configuration.
        demarches: Vec<i64>,
    },
    /// The démarche's mapping does not match its champs: `config check --remote` lists why.
    #[error("configuration : {0}")]
    Mapping(#[from] MappingError),
    /// A reference table could not be loaded.
    #[error("données de référence : {0}")]
    Reference(#[from] ReferenceError),
    /// The local store exists but could not be read.
    #[error("lecture de la base de données {path} impossible : {source}")]
    Store {
        /// The database file (or server, password hidden).
        path: String,
        /// What failed.
        source: StoreError,
    },
}

impl CommandError {
    /// The exit code interface.md asks for: 2 for a configuration problem (no token or one DS
    /// refuses, a mapping that does not match DS, a dossier outside the configured démarches, a
    /// bad reference table), 1 for a runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api(e) if e.is_token_problem() => 2,
            Self::Api(ApiError::NoToken | ApiError::InvalidToken | ApiError::Client(_))
            | Self::NotWatched { .. }
            | Self::UnknownDemarche { .. }
            | Self::Mapping(_)
            | Self::Reference(_) => 2,
            Self::Api(_) | Self::Decode { .. } | Self::Store { .. } => 1,
        }
    }
}

fn list(numbers: &[i64]) -> String {
    if numbers.is_empty() {
        return "aucune".into();
    }
    numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the pre-check of dossier `number` as of today (Europe/Paris): the French report, or
/// with `json` the report's JSON (verdict, findings, fingerprint) plus where the other projects
/// came from. Writes nothing, to DS or to the store.
///
/// # Errors
/// [`CommandError`]: DS failures, a dossier outside the configured démarches, a mapping that
/// does not match the démarche, an unreadable store. See [`CommandError::exit_code`].
pub async fn check(settings: &Settings, number: i64, json: bool) -> Result<String, CommandError> {
    check_on(settings, number, json, paris_today(Utc::now())).await
}

/// [`check`] with "today" given, so that a deadline rule gives the same answer in a test
/// whatever the day it runs.
///
/// # Errors
/// As [`check`].
pub async fn check_on(
    settings: &Settings,
    number: i64,
    json: bool,
    today: NaiveDate,
) -> Result<String, CommandError> {
    let outcome = evaluate(settings, number, today).await?;
    Ok(if json {
        render_json(&outcome)
    } else {
        render_text(&outcome)
    })
}

/// Where the other projects came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projects {
    /// The configured store: how many lettres d'intention it gave.
    Store { path: String, lettres: usize },
    /// No store at the configured place: only what DS gave for this check.
    Absent { path: String },
    /// The database is in memory (or its URL unusable): there is nothing to read.
    NotLocal,
}

/// One dossier's check, before rendering.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The démarche the dossier belongs to.
    pub demarche: i64,
    /// The report, as the daemon would write it.
    pub report: Report,
    /// Where the overlap and link rules found the other projects.
    pub projects: Projects,
    /// Lettres d'intention fetched from DS because the store did not have them (a projet de
    /// santé's linked lettre).
    pub fetched_from_ds: Vec<i64>,
    /// Remarks of the mapping (tolerated types, labels matched loosely, fields not mapped).
    pub mapping_notes: Vec<String>,
}

/// Fetches, resolves and checks one dossier; the part of [`check`] before rendering.
///
/// # Errors
/// As [`check`].
pub async fn evaluate(
    settings: &Settings,
    number: i64,
    today: NaiveDate,
) -> Result<CheckOutcome, CommandError> {
    let client = DsClient::new(&settings.ds)?;
    let reference = ReferenceData::load(&settings.reference)?;
    let dossier = fetch(&client, number).await?;
    let descriptors = configured_descriptors(&client, settings).await?;
    let demarche = owning_demarche(&dossier, settings, &descriptors)?;
    let mapping = demarche.resolve(&descriptors[&demarche.number])?;

    // Mappings of the lettre d'intention démarches, to read the stored lettres. One that does
    // not resolve is left out here: `config check --remote` reports it.
    let li_mappings: BTreeMap<i64, ResolvedMapping> = settings
        .demarches
        .iter()
        .filter(|d| d.kind == DemarcheKind::LettreIntention)
        .filter_map(|d| {
            let m = d.resolve(descriptors.get(&d.number)?).ok()?;
            Some((d.number, m))
        })
        .collect();

    let (mut known, projects) = stored_lettres(settings, &li_mappings, &reference).await?;
    let mut fetched_from_ds = Vec::new();
    if mapping.kind == DemarcheKind::ProjetSante {
        let ps = rules::extract_projet(&dossier, &mapping);
        if let Some(lien) = ps.lien_lettre_intention.value()
            && !known.iter().any(|p| p.numero == lien.numero)
            && let Some(project) =
                linked_lettre(&client, lien.numero, &li_mappings, &reference).await?
        {
            fetched_from_ds.push(project.numero);
            known.push(project);
        }
    }
    let known = KnownProjects::new(known);
    let ctx = RuleContext {
        reference: &reference,
        config: &settings.rules,
        today,
        projets: &known,
    };
    let report = rules::check(&dossier, &mapping, &ctx);
    let mut mapping_notes = mapping.notes.clone();
    mapping_notes.extend(
        mapping
            .rules_without_input()
            .into_iter()
            .map(|effect| format!("not mapped: {effect}")),
    );
    Ok(CheckOutcome {
        demarche: demarche.number,
        report,
        projects,
        fetched_from_ds,
        mapping_notes,
    })
}

async fn fetch(client: &DsClient, number: i64) -> Result<Dossier, CommandError> {
    client
        .dossier(number)
        .await?
        .parsed
        .map_err(|source| CommandError::Decode { number, source })
}

/// The descriptors of every configured démarche, by number.
pub(crate) async fn configured_descriptors(
    client: &DsClient,
    settings: &Settings,
) -> Result<BTreeMap<i64, DemarcheDescriptors>, CommandError> {
    let mut out = BTreeMap::new();
    for d in &settings.demarches {
        out.insert(d.number, client.demarche_descriptors(d.number).await?);
    }
    Ok(out)
}

/// The configured démarche a dossier belongs to. The dossier does not say (the operation does
/// not ask for its démarche), but its champs carry the stable ids of their descriptors, and
/// those are unique across démarches: the démarche whose descriptors hold the most of them.
fn owning_demarche<'a>(
    dossier: &Dossier,
    settings: &'a Settings,
    descriptors: &BTreeMap<i64, DemarcheDescriptors>,
) -> Result<&'a DemarcheSettings, CommandError> {
    let ids: BTreeSet<&str> = dossier
        .champs
        .iter()
        .chain(&dossier.annotations)
        .map(|c| c.descriptor_id.as_str())
        .collect();
    let best = settings
        .demarches
        .iter()
        .filter_map(|d| {
            let desc = descriptors.get(&d.number)?;
            let score = desc
                .champs
                .iter()
                .chain(&desc.annotations)
                .filter(|c| ids.contains(c.id.as_str()))
                .count();
            (score > 0).then_some((score, d))
        })
        .max_by_key(|(score, _)| *score);
    best.map(|(_, d)| d)
        .ok_or_else(|| CommandError::NotWatched {
            number: dossier.number,
            demarches: settings.demarches.iter().map(|d| d.number).collect(),
        })
}

/// The lettres d'intention of the store, read without writing: the database is opened
/// read-only, never created, never migrated.
async fn stored_lettres(
    settings: &Settings,
    li_mappings: &BTreeMap<i64, ResolvedMapping>,
    reference: &ReferenceData,
) -> Result<(Vec<KnownProject>, Projects), CommandError> {
    let url = match DatabaseUrl::parse(&settings.database.url) {
        Ok(url) => url,
        Err(_) => return Ok((Vec::new(), Projects::NotLocal)),
    };
    let shown = match url.sqlite_path() {
        Some(path) => path.display().to_string(),
        None if url.backend() == crate::store::Backend::Sqlite => {
            return Ok((Vec::new(), Projects::NotLocal));
        }
        None => url.redacted(),
    };
    let store_err = |source| CommandError::Store {
        path: shown.clone(),
        source,
    };
    let Some(store) = Store::open_existing(&settings.database.url)
        .await
        .map_err(store_err)?
    else {
        return Ok((Vec::new(), Projects::Absent { path: shown }));
    };
    let mut projects = Vec::new();
    for (demarche, mapping) in li_mappings {
        let snapshots = store.listed_snapshots(*demarche).await.map_err(store_err)?;
        for raw in snapshots {
            // A stored dossier that cannot be read is left out, as the pre-check does.
            let Ok(value) = serde_json::from_str(&raw) else {
                continue;
            };
            let Ok(dossier) = decode_dossier(&value) else {
                continue;
            };
            let li = rules::extract_lettre(&dossier, mapping);
            projects.push(KnownProject::from_lettre(&li, dossier.state, reference));
        }
    }
    store.close().await;
    let lettres = projects.len();
    Ok((
        projects,
        Projects::Store {
            path: shown,
            lettres,
        },
    ))
}

/// A projet de santé's linked lettre, fetched from DS when the store lacks it. `None` when DS
/// does not have it, or it is not a dossier of a configured lettre d'intention démarche: then
/// PS-LINK-01 says the lettre is unknown, as the daemon would.
async fn linked_lettre(
    client: &DsClient,
    number: i64,
    li_mappings: &BTreeMap<i64, ResolvedMapping>,
    reference: &ReferenceData,
) -> Result<Option<KnownProject>, CommandError> {
    let dossier = match client.dossier(number).await {
        Ok(f) => match f.parsed {
            Ok(d) => d,
            Err(_) => return Ok(None),
        },
        Err(ApiError::NotFound { .. } | ApiError::NoAccess { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let ids: BTreeSet<&str> = dossier
        .champs
        .iter()
        .map(|c| c.descriptor_id.as_str())
        .collect();
    let mapping = li_mappings.values().find(|m| {
        m.fields
            .values()
            .any(|c| ids.contains(c.descriptor_id.as_str()))
    });
    Ok(mapping.map(|m| {
        let li = rules::extract_lettre(&dossier, m);
        KnownProject::from_lettre(&li, dossier.state, reference)
    }))
}

/// The French text: the report as the annotation would carry it, then where the other projects
/// came from.
pub fn render_text(outcome: &CheckOutcome) -> String {
    let mut out = format!(
        "Dossier n° {} — démarche {} ({})\n\n",
        outcome.report.dossier,
        outcome.demarche,
        kind_libelle(outcome.report.kind)
    );
    out.push_str(&outcome.report.text());
    out.push_str("\n\n");
    out.push_str(&projects_line(outcome));
    for note in &outcome.mapping_notes {
        out.push_str("\nConfiguration : ");
        out.push_str(note);
    }
    out.push_str("\nRien n'a été écrit (ni sur DS, ni dans la base de données).\n");
    out
}

fn kind_libelle(kind: &str) -> &'static str {
    match kind {
        "projet_sante" => "projet de santé",
        _ => "lettre d'intention",
    }
}

fn projects_line(outcome: &CheckOutcome) -> String {
    let mut line = match &outcome.projects {
        Projects::Store { path, lettres } => format!(
            "Autres projets : {lettres} lettre{s} d'intention lue{s} dans la base de données {path}.",
            s = if *lettres > 1 { "s" } else { "" }
        ),
        Projects::Absent { path } => format!(
            "Base locale absente ({path}) : la vérification des chevauchements (LI-TERR-02) est \
             partielle, faite avec le seul registre des ESS connues."
        ),
        Projects::NotLocal => "Base configurée non lisible par cette commande : la vérification \
             des chevauchements (LI-TERR-02) est partielle, faite avec le seul registre des ESS \
             connues."
            .to_owned(),
    };
    if !outcome.fetched_from_ds.is_empty() {
        line.push_str(&format!(
            " Lettre d'intention lue sur DS : n° {}.",
            list(&outcome.fetched_from_ds)
        ));
    }
    line
}

/// The JSON of `check --json`: [`Report::to_json`] plus `demarche`, `store` (`present`,
/// `absent` or `not_local`), `overlap_check` (`complete` or `partial`) and
/// `lettres_lues_sur_ds`.
pub fn render_json(outcome: &CheckOutcome) -> String {
    let mut v = outcome.report.to_json();
    if let Some(o) = v.as_object_mut() {
        let (store, complete) = match &outcome.projects {
            Projects::Store { .. } => ("present", true),
            Projects::Absent { .. } => ("absent", false),
            Projects::NotLocal => ("not_local", false),
        };
        o.insert("demarche".into(), outcome.demarche.into());
        o.insert("store".into(), store.into());
        o.insert(
            "overlap_check".into(),
            if complete { "complete" } else { "partial" }.into(),
        );
        o.insert(
            "lettres_lues_sur_ds".into(),
            serde_json::to_value(&outcome.fetched_from_ds).unwrap_or_default(),
        );
        o.insert(
            "mapping_notes".into(),
            serde_json::to_value(&outcome.mapping_notes).unwrap_or_default(),
        );
    }
    let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_problems_exit_2() {
        assert_eq!(CommandError::Api(ApiError::NoToken).exit_code(), 2);
        assert_eq!(
            CommandError::NotWatched {
                number: 1,
                demarches: vec![1001]
            }
            .exit_code(),
            2
        );
        // A token DS refuses is the configuration's problem too (an administrator must act),
        // whichever command meets it; DS being down is not.
        assert_eq!(CommandError::Api(ApiError::TokenExpired).exit_code(), 2);
        assert_eq!(
            CommandError::Api(ApiError::Timeout { attempts: 3 }).exit_code(),
            1
        );
    }
}
