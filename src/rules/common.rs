//! What the rules of several families share: the finding for an input without a value, the
//! minimum length of a text, the derogation the lettre asks for, the exact ratio arithmetic,
//! and the lettre's free texts folded once.

use super::extract::{Choix, LettreIntention, Read};
use super::text::{char_len, count, fr_int, fr_percent, normalize, quote};
use super::{Finding, RuleId, Severity};

use RuleId::*;

/// The finding for an input without a usable value, or `None` when it has one. A required
/// input gives a `bloquant`; an optional one an `avertissement` when unreadable and nothing
/// when simply empty or not mapped (an unmapped field is said by `config check`, never in a
/// dossier's report; a required one cannot be unmapped once the mapping resolved). `what`
/// completes "le cahier des charges exige …".
pub(super) fn unread<T>(
    rule: RuleId,
    read: &Read<T>,
    required: bool,
    what: &str,
) -> Option<Finding> {
    match read {
        Read::Ok { .. } => None,
        Read::Missing { champ } => required.then(|| {
            Finding::new(
                rule,
                Severity::Bloquant,
                format!("champ vide ; le cahier des charges exige {what}"),
            )
            .champ(champ, None)
            .a_completer(what)
        }),
        Read::Unreadable { champ, raw, why } => Some(
            Finding::new(
                rule,
                if required {
                    Severity::Bloquant
                } else {
                    Severity::Avertissement
                },
                format!(
                    "valeur illisible {} : {why}{}",
                    quote(raw),
                    if required {
                        format!(" ; le cahier des charges exige {what}")
                    } else {
                        String::new()
                    }
                ),
            )
            .champ(champ, Some(raw.clone()))
            .a_completer(what),
        ),
        Read::NotMapped { .. } => required.then(|| {
            Finding::new(
                rule,
                Severity::Bloquant,
                format!("le formulaire ne demande pas {what}, que le cahier des charges exige"),
            )
        }),
    }
}

/// A text present but shorter than the configured minimum counts as absent.
pub(super) fn too_short(
    rule: RuleId,
    champ: &str,
    text: &str,
    min: usize,
    what: &str,
) -> Option<Finding> {
    let n = char_len(text);
    (n < min).then(|| {
        Finding::new(
            rule,
            Severity::Bloquant,
            format!(
                "texte trop court pour établir {what} : {}, {} au moins attendus",
                count(n, "caractère", "caractères"),
                fr_int(min as u64)
            ),
        )
        .champ(champ, Some(text.trim().to_owned()))
        .a_completer(what)
    })
}

const DEROGATION_SUFFIX: &str = " ; dérogation demandée, à soumettre à la CPN";

/// The severity of a threshold not met, and what the message adds: a derogation when one is
/// asked (the CPN may grant it), else a blocking point.
pub(super) fn broken(derog: bool) -> (Severity, &'static str) {
    if derog {
        (Severity::Derogation, DEROGATION_SUFFIX)
    } else {
        (Severity::Bloquant, "")
    }
}

/// Whether the lettre asks for a derogation; reports an unreadable answer or a missing reason.
pub(super) fn derogation(li: &LettreIntention, out: &mut Vec<Finding>) -> bool {
    match &li.derogation_demandee {
        Read::Ok { value: true, champ } => {
            match &li.derogation_motif {
                Read::Ok { .. } | Read::NotMapped { .. } => {}
                other => out.push(
                    Finding::new(
                        LiCont01,
                        Severity::Avertissement,
                        "dérogation demandée sans motif",
                    )
                    .champ(other.champ().unwrap_or(champ), None)
                    .a_completer("le motif de la demande de dérogation"),
                ),
            }
            true
        }
        Read::Unreadable { champ, raw, why } => {
            out.push(
                Finding::new(
                    LiCont01,
                    Severity::Avertissement,
                    format!(
                        "demande de dérogation illisible {} : {why} ; traitée comme non demandée",
                        quote(raw)
                    ),
                )
                .champ(champ, Some(raw.clone())),
            );
            false
        }
        // A form without a yes/no for it: a reason given is a request.
        Read::NotMapped { .. } => li.derogation_motif.is_ok(),
        _ => false,
    }
}

/// `6 adhérents pour 52 libéraux (11,5 %)`.
pub(super) fn ratio_text(adherents: u32, liberaux: u32, failed: bool) -> String {
    format!(
        "{} pour {} ({})",
        count(adherents as usize, "adhérent", "adhérents"),
        count(liberaux as usize, "libéral", "libéraux"),
        fr_percent(
            u64::from(adherents),
            u64::from(liberaux),
            failed.then_some(10)
        )
    )
}

/// The threshold test, exact: 100 × adhérents ≥ pct × libéraux.
pub(super) fn meets(adherents: u32, liberaux: u32, pct: u32) -> bool {
    u64::from(adherents) * 100 >= u64::from(pct) * u64::from(liberaux)
}

/// Adherents needed to reach `pct` % of `liberaux`, rounded up.
pub(super) fn needed(liberaux: u32, pct: u32) -> u64 {
    (u64::from(pct) * u64::from(liberaux)).div_ceil(100)
}

/// The champ and the value shown of an input that has one.
pub(super) fn evidence<T>(
    read: &Read<T>,
    shown: impl Fn(&T) -> String,
) -> Option<(String, Option<String>)> {
    match read {
        Read::Ok { champ, value } => Some((champ.clone(), Some(shown(value)))),
        _ => None,
    }
}

/// The lettre's texts that the vocabulary rules search, folded once per dossier.
pub(super) struct Texts {
    /// The actions champ.
    pub actions: String,
    /// The mission-socle options ticked (or its text's items).
    pub socle: String,
    /// The cooperation options ticked (or its text's items) and the précisions.
    pub cooperations: String,
}

fn folded_items(c: &Read<Choix>) -> String {
    c.value()
        .map(|c| normalize(&c.items.join(" ; ")))
        .unwrap_or_default()
}

impl Texts {
    pub(super) fn of(li: &LettreIntention) -> Self {
        let mut cooperations = folded_items(&li.cooperations);
        if let Some(t) = li.cooperations_precisions.value() {
            cooperations.push(' ');
            cooperations.push_str(&normalize(t));
        }
        Self {
            actions: li.actions.value().map(|t| normalize(t)).unwrap_or_default(),
            socle: folded_items(&li.actions_mission_socle),
            cooperations,
        }
    }
}

/// The champs a finding about several inputs names: those that are mapped.
pub(super) fn with_champs<'a>(
    f: Finding,
    champs: impl IntoIterator<Item = Option<&'a str>>,
) -> Finding {
    champs
        .into_iter()
        .flatten()
        .fold(f, |f, c| f.champ(c, None))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;

    /// A form without a yes/no for the derogation: a reason given is a request.
    #[test]
    fn li_cont_01_a_reason_given_is_a_derogation_asked() {
        let c = Ctx::new();
        let mut m = li_mapping();
        m.fields.remove("derogation_demandee");
        let d = asking_derogation(li_with("Nombre de médecins adhérents", int("4")));
        let f = run_li_with(&d, &m, &c);
        assert_eq!(of(&f, RuleId::LiAdh01)[0].severity, Severity::Derogation);
        // Without the reason either, nothing says a derogation is asked.
        m.fields.remove("derogation_motif");
        let f = run_li_with(&d, &m, &c);
        assert_eq!(of(&f, RuleId::LiAdh01)[0].severity, Severity::Bloquant);
    }
}
