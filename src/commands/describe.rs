//! `essbot demarche describe NUMBER` and `essbot config check --remote`: the démarche side of
//! a mapping.
//!
//! Writing a `[[demarches]]` section means knowing each champ's exact label, type and stable
//! id, which DS's own interface does not show together; `describe` prints them with a
//! skeleton whose keys are filled by label where it can. `check_remote` then tells, before the
//! daemon runs, every key whose champ the démarche lacks (renamed, retyped or removed), with
//! the closest labels, so that a form change on DS is a configuration error and not a wave of
//! findings on every dossier.

use crate::config::{DsSettings, Problem, Settings, WriteMode};
use crate::ds::model::GroupeMembers;
use crate::ds::{ApiError, DsClient};
use crate::rules::{self, ReferenceData};

use super::check::CommandError;

/// The démarche's champs and annotations (label, type, stable id), then a TOML mapping
/// skeleton. The kind (lettre d'intention or projet de santé) is the configured one when the
/// démarche is configured, else guessed from its labels. Reads DS only.
///
/// # Errors
/// [`CommandError::Api`] when DS does not give the démarche (unknown number, token without
/// access).
pub async fn describe(settings: &Settings, number: i64) -> Result<String, CommandError> {
    let kind = settings
        .demarches
        .iter()
        .find(|d| d.number == number)
        .map(|d| d.kind);
    describe_with(&settings.ds, kind, number).await
}

/// As [`describe`], with only the `[ds]` settings (the rest of the configuration may not be
/// filled in yet) and the kind when known; ends with the instructeurs of the démarche's
/// groupes, one of whom `ds.instructeur_id` must name.
///
/// # Errors
/// As [`describe`].
pub async fn describe_with(
    ds: &DsSettings,
    kind: Option<rules::DemarcheKind>,
    number: i64,
) -> Result<String, CommandError> {
    let client = DsClient::new(ds)?;
    let descriptors = client.demarche_descriptors(number).await?;
    let mut out = rules::describe(&descriptors, kind);
    let groupes = client.groupes_instructeurs(number).await?;
    out.push_str(&render_instructeurs(&groupes, &ds.instructeur_id));
    Ok(out)
}

/// The groupes' instructeurs as TOML comments, to pick `ds.instructeur_id` from.
fn render_instructeurs(groupes: &[GroupeMembers], configured: &str) -> String {
    let mut out = String::from(
        "\n# The instructeurs of its groupes instructeurs: ds.instructeur_id names the one essbot\n# writes as (it must be in the groupe of every dossier essbot writes to).\n",
    );
    for g in groupes.iter().filter(|g| !g.closed) {
        out.push_str(&format!("#   groupe {} « {} »:\n", g.number, g.label));
        if g.instructeurs.is_empty() {
            out.push_str("#     (nobody)\n");
        }
        for (id, email) in &g.instructeurs {
            let mark = if id == configured {
                "  <- ds.instructeur_id"
            } else {
                ""
            };
            out.push_str(&format!(
                "#     instructeur_id = \"{id}\"   # {email}{mark}\n"
            ));
        }
    }
    out
}

/// What `essbot config check --remote` found.
#[derive(Debug, Default)]
pub struct RemoteCheck {
    /// Configuration problems (exit 2): every mapping problem with its key path
    /// (`demarches[0].fields.nb_adherents`) and, for a champ not found, the closest labels; a
    /// `ds.instructeur_id` in none of a démarche's groupes instructeurs; a token DS refuses
    /// (once, at `ds.token`); a démarche the token does not reach or DS does not know.
    pub problems: Vec<Problem>,
    /// For operators: how each mapped champ and column of each démarche will be read, with the
    /// remarks of the mapping and the rules that run without an optional field.
    pub readings: String,
    /// What could not be checked because DS could not be reached or failed (exit 1, not a
    /// configuration problem), at `demarches[i]`.
    pub unreachable: Vec<Problem>,
}

/// [`remote_check`]'s problems, those of DS being unreachable included, and its readings.
pub async fn check_remote(settings: &Settings) -> (Vec<Problem>, String) {
    let mut check = remote_check(settings).await;
    check.problems.append(&mut check.unreachable);
    (check.problems, check.readings)
}

/// Checks every configured démarche against DS: its mapping, and that the instructeur essbot
/// writes as belongs to one of its groupes instructeurs (for démarches it writes to).
pub async fn remote_check(settings: &Settings) -> RemoteCheck {
    let mut out = RemoteCheck::default();
    let client = match DsClient::new(&settings.ds) {
        Ok(c) => c,
        Err(e) => {
            out.problems
                .push(Problem::new("ds.token", e.operator_text()));
            return out;
        }
    };
    let reference = match ReferenceData::load(&settings.reference) {
        Ok(r) => r,
        Err(e) => {
            out.problems.push(Problem::new("reference", e.to_string()));
            return out;
        }
    };
    for (index, demarche) in settings.demarches.iter().enumerate() {
        let descriptors = match client.demarche_descriptors(demarche.number).await {
            Ok(d) => d,
            Err(e) => {
                if refused_token(&e) {
                    // The same for every démarche: said once.
                    out.problems
                        .push(Problem::new("ds.token", e.operator_text()));
                    return out;
                }
                let line = format!(
                    "cannot read the champs of démarche {} from DS: {}",
                    demarche.number,
                    e.operator_text()
                );
                let problem = Problem::new(format!("demarches[{index}]"), line);
                if e.is_retryable() {
                    out.unreachable.push(problem);
                } else {
                    out.problems.push(problem);
                }
                continue;
            }
        };
        match demarche.resolve(&descriptors) {
            Ok(m) => out.readings.push_str(&render_readings(&m, &reference)),
            Err(e) => out.problems.extend(Problem::from_mapping(index, &e)),
        }
        if demarche.write_back.mode == WriteMode::Off {
            continue;
        }
        match client.groupes_instructeurs(demarche.number).await {
            Ok(groupes) => {
                if let Some(p) =
                    instructeur_problem(&settings.ds.instructeur_id, demarche.number, &groupes)
                {
                    out.problems.push(p);
                }
            }
            Err(e) if e.is_retryable() => out.unreachable.push(Problem::new(
                format!("demarches[{index}]"),
                format!(
                    "cannot read the groupes instructeurs of démarche {} from DS: {}",
                    demarche.number,
                    e.operator_text()
                ),
            )),
            Err(e) => out.problems.push(Problem::new(
                format!("demarches[{index}]"),
                format!(
                    "cannot read the groupes instructeurs of démarche {} from DS: {}",
                    demarche.number,
                    e.operator_text()
                ),
            )),
        }
    }
    out
}

/// True when DS refuses the token itself (not one démarche): no point asking for the others.
fn refused_token(e: &ApiError) -> bool {
    e.is_token_problem() && !matches!(e, ApiError::NoAccess { .. })
}

/// The problem with `ds.instructeur_id` for démarche `number`, if it is in none of its open
/// groupes: DS refuses annotations and messages written as an instructeur outside them. The
/// problem lists the instructeurs the groupes have, to pick from.
fn instructeur_problem(
    instructeur_id: &str,
    number: i64,
    groupes: &[GroupeMembers],
) -> Option<Problem> {
    let open = || groupes.iter().filter(|g| !g.closed);
    if !instructeur_id.is_empty()
        && open().any(|g| g.instructeurs.iter().any(|(id, _)| id == instructeur_id))
    {
        return None;
    }
    let mut known: Vec<String> = open()
        .flat_map(|g| {
            g.instructeurs
                .iter()
                .map(move |(id, email)| format!("{id} ({email}, groupe « {} »)", g.label))
        })
        .collect();
    known.sort();
    known.dedup();
    let what = if instructeur_id.is_empty() {
        "not set, and essbot writes to this démarche".to_owned()
    } else {
        format!(
            "instructeur {instructeur_id} is in no groupe instructeur of démarche {number}: DS would refuse every annotation essbot writes"
        )
    };
    Some(Problem::new(
        "ds.instructeur_id",
        format!(
            "{what}; the instructeurs of its groupes: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
    ))
}

/// How essbot will read one démarche's dossiers: each mapped champ and column, each option of
/// its choice champs, the remarks of the mapping, and what runs without an unmapped field.
fn render_readings(m: &rules::ResolvedMapping, reference: &ReferenceData) -> String {
    let mut out = format!("démarche {} ({}):\n", m.demarche, m.kind.as_str());
    for line in m.readings() {
        out.push_str(&format!("  {line}\n"));
    }
    for line in rules::explain::option_readings(m, reference) {
        out.push_str(&format!("  {line}\n"));
    }
    // A tolerated type is already said by its reading line.
    for note in m
        .notes
        .iter()
        .filter(|n| !n.contains("its value is parsed"))
    {
        out.push_str(&format!("  note: {note}\n"));
    }
    for effect in m.rules_without_input() {
        out.push_str(&format!("  not mapped: {effect}\n"));
    }
    out
}
