//! `essbot demarche describe NUMBER` and `essbot config check --remote`: the démarche side of
//! a mapping.
//!
//! Writing a `[[demarches]]` section means knowing each champ's exact label, type and stable
//! id, which DS's own interface does not show together; `describe` prints them with a
//! skeleton whose keys are filled by label where it can. `check_remote` then tells, before the
//! daemon runs, every key whose champ the démarche lacks (renamed, retyped or removed), with
//! the closest labels, so that a form change on DS is a configuration error and not a wave of
//! findings on every dossier.

use crate::config::{Problem, Settings};
use crate::ds::DsClient;
use crate::rules;

use super::check::CommandError;

/// The démarche's champs and annotations (label, type, stable id), then a TOML mapping
/// skeleton. The kind (lettre d'intention or projet de santé) is the configured one when the
/// démarche is configured, else guessed from its labels. Reads DS only.
///
/// # Errors
/// [`CommandError::Api`] when DS does not give the démarche (unknown number, token without
/// access).
pub async fn describe(settings: &Settings, number: i64) -> Result<String, CommandError> {
    let client = DsClient::new(&settings.ds)?;
    let descriptors = client.demarche_descriptors(number).await?;
    let kind = settings
        .demarches
        .iter()
        .find(|d| d.number == number)
        .map(|d| d.kind);
    Ok(rules::describe(&descriptors, kind))
}

/// Every problem of every configured démarche's mapping against DS, each with its key path
/// (`demarches[0].fields.nb_adherents`) and, for a champ not found, the closest labels. Empty
/// when every mapping resolves. A démarche DS does not give (no access, unknown number, DS
/// down) is one problem at `demarches[i]`; no token is one problem at `ds.token`.
pub async fn check_remote(settings: &Settings) -> Vec<Problem> {
    let client = match DsClient::new(&settings.ds) {
        Ok(c) => c,
        Err(e) => {
            return vec![Problem {
                path: "ds.token".into(),
                message: e.to_string(),
            }];
        }
    };
    let mut problems = Vec::new();
    for (index, demarche) in settings.demarches.iter().enumerate() {
        match client.demarche_descriptors(demarche.number).await {
            Ok(descriptors) => {
                if let Err(e) = rules::resolve(demarche, &descriptors) {
                    problems.extend(e.to_problems(index));
                }
            }
            Err(e) => problems.push(Problem {
                path: format!("demarches[{index}]"),
                message: format!(
                    "cannot read the champs of démarche {} from DS: {e}",
                    demarche.number
                ),
            }),
        }
    }
    problems
}
