//! What `essbot config check --remote` tells an operator about a démarche's choice champs: how
//! each option the form offers will be read (which specialty, which cooperation, which activity
//! of the mission socle, which national indicator, which voice or quality), and which options
//! the rules cannot place. A structured answer is read with certainty only through its options,
//! so an option nothing recognises is worth knowing before the first dossier is checked.

use super::extract::Voix;
use super::fields::Shape;
use super::mapping::{ResolvedChamp, ResolvedMapping};
use super::read::{says_none, voix_in_text};
use super::reference::ReferenceData;
use super::text::normalize;
use super::{cooperations, gouvernance, indicateurs, mission};

/// One line per option of each mapped choice champ (or choice column of a repetition), and how
/// it reads: `fields.cooperations "GHT et établissements de santé" -> health establishments…`.
pub fn option_readings(m: &ResolvedMapping, reference: &ReferenceData) -> Vec<String> {
    let mut out = Vec::new();
    for f in m.kind.fields() {
        let Some(c) = m.fields.get(f.key) else {
            continue;
        };
        for (at, column, options) in options_of(f.key, c) {
            // Départements: every option is a département; only those that are not are said.
            if f.shape == Shape::Departements {
                let unknown: Vec<&String> = options
                    .iter()
                    .filter(|o| reference.places_in(o).departements.is_empty())
                    .collect();
                if !unknown.is_empty() {
                    out.push(format!(
                        "{at}: options naming no département: {}",
                        unknown
                            .iter()
                            .map(|o| format!("\"{o}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                continue;
            }
            for o in options {
                if let Some(reading) = read_option(f.key, f.shape, column, o, reference) {
                    out.push(format!("{at} \"{o}\" -> {reading}"));
                }
            }
        }
    }
    out
}

/// The options of a champ, or of each choice column of a repetition: (where, column key, options).
fn options_of<'c>(key: &str, c: &'c ResolvedChamp) -> Vec<(String, Option<&'c str>, &'c [String])> {
    let mut out = Vec::new();
    if !c.options.is_empty() {
        out.push((format!("fields.{key}"), None, &c.options[..]));
    }
    for child in c.children.iter().filter(|x| !x.options.is_empty()) {
        let column = c
            .columns
            .iter()
            .find(|(_, cols)| cols.iter().any(|x| x.descriptor_id == child.descriptor_id))
            .map(|(k, _)| *k);
        let at = match column {
            Some(k) => format!("fields.{key}.columns.{k}"),
            None => format!("fields.{key} column \"{}\"", child.label),
        };
        out.push((at, column, &child.options[..]));
    }
    out
}

/// How one option reads, or `None` when the field reads options as plain text.
fn read_option(
    key: &str,
    shape: Shape,
    column: Option<&str>,
    option: &str,
    reference: &ReferenceData,
) -> Option<String> {
    let n = normalize(option);
    let named = |found: Vec<String>| {
        if found.is_empty() {
            "not placed: no rule reads it (a human will)".to_owned()
        } else {
            found.join(", ")
        }
    };
    Some(match (shape, key, column) {
        (Shape::Specialites, _, _) => {
            let m = reference.specialites_in(option);
            match (m.groups.as_slice(), m.unknown.is_empty()) {
                ([], _) => "not a specialty of the reference list (blocking when chosen)".into(),
                ([g], true) if g.exclue => "general practice (excluded: blocking)".into(),
                ([g], true) => format!("specialty {}", g.libelle),
                (gs, _) => format!(
                    "{} specialties ({})",
                    gs.len(),
                    gs.iter()
                        .map(|g| g.libelle.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        (Shape::Choices, "cooperations", _) => named(
            cooperations::cooperations_in(&n)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        (Shape::Choices, "actions_mission_socle", _) => named(
            mission::activities_in(&n)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        (Shape::Choices, "indicateurs", _) => named(indicateurs::indicators_in(&n)),
        (Shape::OuiNon, _, _) => if says_none(option) {
            "no derogation asked"
        } else {
            "a derogation asked"
        }
        .into(),
        (Shape::Gouvernance, _, Some("voix")) => match voix_in_text(option, "") {
            Voix::Deliberative | Voix::NonPrecisee => "deliberative voice".into(),
            Voix::Consultative => "consultative voice".into(),
            Voix::Illisible(_) => "neither voice: read as deliberative, to check".into(),
        },
        (Shape::Gouvernance, _, Some("qualite")) => {
            gouvernance::quality_reading(&n, reference).into()
        }
        (Shape::Region, _, _) => match reference.resolve_region(option) {
            Some(r) => format!("région {}", r.nom),
            None => "no région (a warning when chosen)".into(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn the_demo_options_are_each_placed() {
        let r = ReferenceData::builtin();
        let lines = option_readings(&li_mapping(), &r);
        let find = |s: &str| {
            lines
                .iter()
                .find(|l| l.contains(s))
                .unwrap_or_else(|| panic!("no line for {s}: {lines:#?}"))
                .clone()
        };
        assert!(find("\"GHT et établissements de santé\"").contains("health establishments"));
        assert!(find("\"Autres ESS\"").ends_with("-> other ESS"));
        assert!(find(MISSION_SOCLE[1]).contains("activity (b)"));
        // The governance's choice columns, by the column they give.
        assert!(
            find("fields.gouvernance.columns.qualite \"Médecin généraliste\"")
                .contains("general practitioner")
        );
        assert!(
            find("fields.gouvernance.columns.voix \"Consultative\"")
                .ends_with("consultative voice")
        );
        let m = crate::rules::resolve(
            1002,
            crate::rules::DemarcheKind::ProjetSante,
            &ps_spec(),
            &ps_descriptors(),
        )
        .unwrap();
        let _ = option_readings(&m, &r);
    }

    #[test]
    fn an_option_no_rule_reads_is_said() {
        let r = ReferenceData::builtin();
        let mut m = li_mapping();
        m.fields.get_mut("cooperations").unwrap().options = vec!["Autre".into()];
        let lines = option_readings(&m, &r);
        assert!(
            lines.iter().any(|l| l
                == "fields.cooperations \"Autre\" -> not placed: no rule reads it (a human will)"),
            "{lines:#?}"
        );
    }
}
