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
/// (`demarches[0].fields.nb_adherents`) and, for a champ not found, the closest labels (empty
/// when every mapping resolves); and, for operators, how each mapped champ and column of each
/// démarche will be read, with the remarks of the mapping and the rules that run without an
/// optional field. A démarche DS does not give (no access, unknown number, DS down) is one
/// problem at `demarches[i]`; no token is one problem at `ds.token`.
pub async fn check_remote(settings: &Settings) -> (Vec<Problem>, String) {
    let client = match DsClient::new(&settings.ds) {
        Ok(c) => c,
        Err(e) => {
            let problem = Problem::new("ds.token", e.to_string());
            return (vec![problem], String::new());
        }
    };
    let mut problems = Vec::new();
    let mut readings = String::new();
    for (index, demarche) in settings.demarches.iter().enumerate() {
        match client.demarche_descriptors(demarche.number).await {
            Ok(descriptors) => match demarche.resolve(&descriptors) {
                Ok(m) => readings.push_str(&render_readings(&m)),
                Err(e) => problems.extend(Problem::from_mapping(index, &e)),
            },
            Err(e) => problems.push(Problem::new(
                format!("demarches[{index}]"),
                format!(
                    "cannot read the champs of démarche {} from DS: {e}",
                    demarche.number
                ),
            )),
        }
    }
    (problems, readings)
}

/// How essbot will read one démarche's dossiers.
fn render_readings(m: &rules::ResolvedMapping) -> String {
    let mut out = format!("démarche {} ({}):\n", m.demarche, m.kind.as_str());
    for line in m.readings() {
        out.push_str(&format!("  {line}\n"));
    }
    for note in &m.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    if !m.not_mapped.is_empty() {
        out.push_str(&format!(
            "  optional fields not mapped: {}; rules that run without them: {}\n",
            m.not_mapped.join(", "),
            m.rules_without_input().join(", ")
        ));
    }
    out
}
