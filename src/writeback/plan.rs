//! What a dossier should carry, computed without I/O: one [`Intent`] per target (an annotation,
//! one of our labels, the message to the applicant), each with its deterministic content hash
//! and whether the dossier as we know it already has it.
//!
//! Keeping this pure lets the dry-run diff and the real write share one decision, and lets the
//! read-back after a crash ask the same question ("is it there already?") of a fresh dossier.

use std::fmt::Write as _;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Europe::Paris;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::LabelNames;
use crate::ds::model::{ChampValue, DemarcheDescriptors, Dossier, DossierState, Label};
use crate::ds::{AnnotationValue, AnnotationWrite, annotation_key};
use crate::rules::{Report, ResolvedChamp, ResolvedMapping, RuleId, Severity, Verdict};

/// The labels essbot manages on one démarche, one per verdict: their configured names
/// (`write_back.label_names`) and their ids on DS. Other labels on a dossier are never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedLabels {
    pub names: LabelNames,
    /// Name → DS label id.
    pub ids: std::collections::BTreeMap<String, String>,
}

impl ManagedLabels {
    /// Our labels as the démarche has them, and the names of those it lacks.
    pub fn find(names: &LabelNames, descriptors: &DemarcheDescriptors) -> (Self, Vec<String>) {
        let mut ids = std::collections::BTreeMap::new();
        let mut missing = Vec::new();
        for name in names.all() {
            match descriptors.labels.iter().find(|l| l.name == name) {
                Some(l) => {
                    ids.insert(name.to_owned(), l.id.clone());
                }
                None => missing.push(name.to_owned()),
            }
        }
        (
            Self {
                names: names.clone(),
                ids,
            },
            missing,
        )
    }
}

/// What one outbox row sends, stored as its JSON payload so that a row found `sending` after a
/// crash can be checked against the dossier read back from DS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// One private annotation: its descriptor id, the input key DS expects for its type, and the
    /// value in that key's JSON form (string, boolean, `YYYY-MM-DD`, RFC 3339).
    Annotation {
        id: String,
        label: String,
        key: String,
        value: serde_json::Value,
    },
    /// One of our labels, to be on the dossier (`present`) or off it.
    Label {
        id: String,
        name: String,
        present: bool,
    },
    /// A message to the applicant.
    Message { body: String },
}

impl Payload {
    /// The write for `dossierModifierAnnotations`, or `None` for labels and messages (and for a
    /// stored payload this version cannot read).
    pub fn annotation_write(&self) -> Option<AnnotationWrite> {
        let Self::Annotation { id, key, value, .. } = self else {
            return None;
        };
        let value = match (key.as_str(), value) {
            ("text", serde_json::Value::String(s)) => AnnotationValue::Text(s.clone()),
            ("textarea", serde_json::Value::String(s)) => AnnotationValue::Textarea(s.clone()),
            ("checkbox", serde_json::Value::Bool(b)) => AnnotationValue::Checkbox(*b),
            ("yesNo", serde_json::Value::Bool(b)) => AnnotationValue::YesNo(*b),
            ("date", serde_json::Value::String(s)) => {
                AnnotationValue::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?)
            }
            ("datetime", serde_json::Value::String(s)) => {
                AnnotationValue::Datetime(chrono::DateTime::parse_from_rfc3339(s).ok()?)
            }
            _ => return None,
        };
        Some(AnnotationWrite {
            annotation_id: id.clone(),
            value,
        })
    }

    /// True when `dossier` already shows what this payload writes: the annotation has the
    /// value, the label is on (or off), the message body is among its messages.
    pub fn is_applied(&self, dossier: &Dossier) -> bool {
        match self {
            Self::Annotation { id, .. } => {
                let Some(write) = self.annotation_write() else {
                    return false;
                };
                dossier
                    .annotation(id)
                    .is_some_and(|c| value_matches(&c.value, &write.value))
            }
            Self::Label { id, name, present } => has_label(&dossier.labels, id, name) == *present,
            Self::Message { body } => {
                let want = normalize_text(body);
                dossier
                    .messages
                    .iter()
                    .any(|m| normalize_text(&m.body) == want)
            }
        }
    }
}

fn has_label(labels: &[Label], id: &str, name: &str) -> bool {
    labels.iter().any(|l| l.id == id || l.name == name)
}

/// DS may store a text with `\r\n` and without trailing blanks: compare what a reader sees.
fn normalize_text(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_owned()
}

fn value_matches(current: &ChampValue, want: &AnnotationValue) -> bool {
    match (current, want) {
        (ChampValue::Text(Some(t)), AnnotationValue::Text(s) | AnnotationValue::Textarea(s)) => {
            normalize_text(t) == normalize_text(s)
        }
        (ChampValue::Checkbox(c), AnnotationValue::Checkbox(b) | AnnotationValue::YesNo(b)) => {
            c == b
        }
        (ChampValue::YesNo(Some(c)), AnnotationValue::Checkbox(b) | AnnotationValue::YesNo(b)) => {
            c == b
        }
        (ChampValue::Date(Some(d)), AnnotationValue::Date(w)) => d == w,
        (ChampValue::Datetime(Some(t)), AnnotationValue::Datetime(w)) => t == w,
        _ => false,
    }
}

/// How a current annotation value reads in the diff (French, as staff see it in DS).
fn display_champ(value: Option<&ChampValue>) -> String {
    match value {
        Some(ChampValue::Text(Some(t))) if !t.trim().is_empty() => normalize_text(t),
        Some(ChampValue::Checkbox(b) | ChampValue::YesNo(Some(b))) => oui_non(*b).to_owned(),
        Some(ChampValue::Date(Some(d))) => d.format("%d/%m/%Y").to_string(),
        Some(ChampValue::Datetime(Some(t))) => {
            t.with_timezone(&Paris).format("%d/%m/%Y %H:%M").to_string()
        }
        _ => "(vide)".to_owned(),
    }
}

fn display_value(v: &AnnotationValue) -> String {
    match v {
        AnnotationValue::Text(s) | AnnotationValue::Textarea(s) => normalize_text(s),
        AnnotationValue::Checkbox(b) | AnnotationValue::YesNo(b) => oui_non(*b).to_owned(),
        AnnotationValue::Date(d) => d.format("%d/%m/%Y").to_string(),
        AnnotationValue::Datetime(t) => {
            t.with_timezone(&Paris).format("%d/%m/%Y %H:%M").to_string()
        }
        other => format!("{other:?}"),
    }
}

fn oui_non(b: bool) -> &'static str {
    if b { "oui" } else { "non" }
}

/// One write a dossier should get, whether or not it already has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// `annotation:rapport`, `label:Pré-contrôle : conforme`, `message`.
    pub target: String,
    pub payload: Payload,
    /// SHA-256 of the target and the payload: the outbox key with the dossier.
    pub hash: String,
    /// The dossier as we know it already shows it.
    pub applied: bool,
    /// What is there now, for the diff (`None`: nothing to show, e.g. a label absent).
    pub old: Option<String>,
    /// What would be there after the write (`None`: a label taken off).
    pub new: Option<String>,
}

impl Intent {
    fn new(
        target: String,
        payload: Payload,
        applied: bool,
        old: Option<String>,
        new: Option<String>,
    ) -> Self {
        let hash = content_hash(&target, &payload);
        Self {
            target,
            payload,
            hash,
            applied,
            old,
            new,
        }
    }
}

/// SHA-256 (hex) of a target and its payload's JSON (serde keeps the field order, so equal
/// intents hash equally across runs).
pub fn content_hash(target: &str, payload: &Payload) -> String {
    let json = serde_json::to_string(payload).unwrap_or_default();
    let mut h = Sha256::new();
    h.update((target.len() as u64).to_le_bytes());
    h.update(target.as_bytes());
    h.update(json.as_bytes());
    h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The stored report a dossier's write-back is computed from.
#[derive(Debug, Clone)]
pub struct CheckInput<'a> {
    pub verdict: Verdict,
    pub report_text: &'a str,
    pub report_json: &'a serde_json::Value,
}

/// What to plan beyond the annotations.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions<'a> {
    /// Our labels on the démarche (`None`: labels are not managed).
    pub labels: Option<&'a ManagedLabels>,
    /// Plan the message to the applicant.
    pub message_usager: bool,
    /// The next deadline, when the milestones stage gives one.
    pub next_deadline: Option<NaiveDate>,
    /// Labels we know we put on (or took off) since the snapshot was taken: the outbox's last
    /// done label writes, name → present. Labels do not bump `dateDerniereModification`, so the
    /// snapshot may not show them.
    pub label_overlay: std::collections::BTreeMap<String, bool>,
}

/// Everything `dossier` should carry according to its stored report.
///
/// # Errors
/// A French description when a configured annotation has a type essbot cannot write (the
/// mapping resolution normally refuses it first).
pub fn intents(
    dossier: &Dossier,
    check: &CheckInput<'_>,
    mapping: &ResolvedMapping,
    options: &PlanOptions<'_>,
) -> Result<Vec<Intent>, String> {
    let mut out = Vec::new();
    if let Some(champ) = mapping.annotations.get("rapport") {
        out.push(annotation_intent(
            dossier,
            "rapport",
            champ,
            Wanted::Text(check.report_text.to_owned()),
        )?);
    }
    if let Some(champ) = mapping.annotations.get("conforme") {
        out.push(annotation_intent(
            dossier,
            "conforme",
            champ,
            Wanted::Bool(check.verdict.is_conforme()),
        )?);
    }
    if let (Some(champ), Some(date)) = (
        mapping.annotations.get("prochaine_echeance"),
        options.next_deadline,
    ) {
        out.push(annotation_intent(
            dossier,
            "prochaine_echeance",
            champ,
            Wanted::Date(date),
        )?);
    }
    if let Some(labels) = options.labels {
        let wanted = labels.names.for_verdict(check.verdict);
        for name in labels.names.all() {
            let Some(id) = labels.ids.get(name) else {
                continue;
            };
            let present = options
                .label_overlay
                .get(name)
                .copied()
                .unwrap_or_else(|| has_label(&dossier.labels, id, name));
            let want = name == wanted;
            if !want && !present {
                // Not ours to mention: nothing there, nothing to take off.
                continue;
            }
            let payload = Payload::Label {
                id: id.clone(),
                name: name.to_owned(),
                present: want,
            };
            let (old, new) = match (present, want) {
                (true, true) => (Some(name.to_owned()), Some(name.to_owned())),
                (false, true) => (None, Some(name.to_owned())),
                _ => (Some(name.to_owned()), None),
            };
            out.push(Intent::new(
                format!("label:{name}"),
                payload,
                present == want,
                old,
                new,
            ));
        }
    }
    if options.message_usager
        && dossier.state == DossierState::EnConstruction
        && let Some(body) = message_usager(dossier.number, check)
    {
        let payload = Payload::Message { body: body.clone() };
        let applied = payload.is_applied(dossier);
        out.push(Intent::new(
            "message".to_owned(),
            payload,
            applied,
            None,
            Some(body),
        ));
    }
    Ok(out)
}

enum Wanted {
    Text(String),
    Bool(bool),
    Date(NaiveDate),
}

fn annotation_intent(
    dossier: &Dossier,
    key: &str,
    champ: &ResolvedChamp,
    wanted: Wanted,
) -> Result<Intent, String> {
    let t = champ.type_de_champ.as_str();
    let unwritable = || {
        format!(
            "l'annotation « {} » ({key}) est de type {t}, qu'essbot ne sait pas y écrire",
            champ.label
        )
    };
    let input_key = annotation_key(t).ok_or_else(unwritable)?;
    let (value, json) = match (&wanted, input_key) {
        (Wanted::Text(s), "text") => (AnnotationValue::Text(s.clone()), s.clone().into()),
        (Wanted::Text(s), "textarea") => (AnnotationValue::Textarea(s.clone()), s.clone().into()),
        (Wanted::Bool(b), "checkbox") => (AnnotationValue::Checkbox(*b), (*b).into()),
        (Wanted::Bool(b), "yesNo") => (AnnotationValue::YesNo(*b), (*b).into()),
        (Wanted::Date(d), "date") => (
            AnnotationValue::Date(*d),
            d.format("%Y-%m-%d").to_string().into(),
        ),
        (Wanted::Date(d), "datetime") => {
            // Midnight in Paris: every ESS date is a Paris date.
            let at = Paris
                .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
                .earliest()
                .ok_or_else(unwritable)?
                .fixed_offset();
            (AnnotationValue::Datetime(at), at.to_rfc3339().into())
        }
        _ => return Err(unwritable()),
    };
    let current = dossier.annotation(&champ.descriptor_id).map(|c| &c.value);
    let applied = current.is_some_and(|c| value_matches(c, &value));
    let new = display_value(&value);
    let payload = Payload::Annotation {
        id: champ.descriptor_id.clone(),
        label: champ.label.clone(),
        key: input_key.to_owned(),
        value: json,
    };
    Ok(Intent::new(
        format!("annotation:{key}"),
        payload,
        applied,
        Some(display_champ(current)),
        Some(new),
    ))
}

/// The message to the applicant, from the stored report: the report is rebuilt with only what
/// [`Report::message_usager`] reads (the dossier and the findings' "à compléter" items, in the
/// report's order), so the wording stays the rulebook's own.
pub fn message_usager(dossier: i64, check: &CheckInput<'_>) -> Option<String> {
    let findings = check
        .report_json
        .get("findings")
        .and_then(serde_json::Value::as_array)?
        .iter()
        .filter_map(|f| f.get("a_completer").and_then(serde_json::Value::as_str))
        .map(|what| {
            crate::rules::Finding::new(RuleId::ALL[0], Severity::Bloquant, String::new())
                .a_completer(what)
        })
        .collect::<Vec<_>>();
    if findings.is_empty() {
        return None;
    }
    Report {
        dossier,
        kind: "",
        verdict: check.verdict,
        rulebook_version: "",
        reference: String::new(),
        findings,
    }
    .message_usager()
}

/// What the mapping resolution leaves to the write-back: each configured annotation must have a
/// type essbot writes its value into (a report into text or textarea, the verdict into a
/// checkbox or yes/no, the deadline into a date or datetime). Problems are for operators.
pub fn annotation_problems(mapping: &ResolvedMapping) -> Vec<String> {
    let mut out = Vec::new();
    for (key, champ) in &mapping.annotations {
        let writable: &[&str] = match key.as_str() {
            "rapport" => &["text", "textarea"],
            "conforme" => &["checkbox", "yes_no"],
            "prochaine_echeance" => &["date", "datetime"],
            _ => &[],
        };
        if !writable.contains(&champ.type_de_champ.as_str()) {
            out.push(format!(
                "annotations.{key}: annotation \"{}\" is of type {}, which essbot cannot write its {key} into (expected {})",
                champ.label,
                champ.type_de_champ,
                writable.join(" or ")
            ));
        }
    }
    out
}

/// The dry-run text of one dossier: per target that would change, a title line then `- old` /
/// `+ new` lines (multi-line values get one prefixed line each). Empty when nothing changes.
pub fn diff_text(intents: &[Intent]) -> String {
    let mut out = String::new();
    let mut label_lines = String::new();
    for i in intents.iter().filter(|i| !i.applied) {
        match &i.payload {
            Payload::Annotation { label, .. } => {
                let _ = writeln!(out, "annotation « {label} »");
                push_lines(&mut out, '-', i.old.as_deref());
                push_lines(&mut out, '+', i.new.as_deref());
            }
            Payload::Label { .. } => {
                push_lines(&mut label_lines, '-', i.old.as_deref());
                push_lines(&mut label_lines, '+', i.new.as_deref());
            }
            Payload::Message { .. } => {
                out.push_str("message à l'usager\n");
                push_lines(&mut out, '+', i.new.as_deref());
            }
        }
    }
    if !label_lines.is_empty() {
        out.push_str("labels\n");
        out.push_str(&label_lines);
    }
    out
}

fn push_lines(out: &mut String, sign: char, text: Option<&str>) {
    if let Some(text) = text {
        for line in text.lines() {
            let _ = writeln!(out, "{sign} {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_distinct() {
        let a = Payload::Message { body: "x".into() };
        let b = Payload::Message { body: "y".into() };
        assert_eq!(content_hash("message", &a), content_hash("message", &a));
        assert_ne!(content_hash("message", &a), content_hash("message", &b));
        assert_ne!(content_hash("message", &a), content_hash("messages", &a));
    }

    #[test]
    fn payload_round_trips_to_the_input_key_of_its_type() {
        let p = Payload::Annotation {
            id: "Q2hhbXAtOTAx".into(),
            label: "Pré-contrôle automatique".into(),
            key: "textarea".into(),
            value: "rapport".into(),
        };
        let w = p.annotation_write().expect("write");
        assert_eq!(w.value, AnnotationValue::Textarea("rapport".into()));
        let json = serde_json::to_string(&p).unwrap();
        let back: Payload = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let bad = Payload::Annotation {
            id: "x".into(),
            label: "x".into(),
            key: "checkbox".into(),
            value: "pas un booléen".into(),
        };
        assert!(bad.annotation_write().is_none());
    }

    #[test]
    fn diff_lists_old_and_new_lines() {
        let p = Payload::Annotation {
            id: "a".into(),
            label: "Pré-contrôle conforme".into(),
            key: "checkbox".into(),
            value: true.into(),
        };
        let i = Intent::new(
            "annotation:conforme".into(),
            p,
            false,
            Some("non".into()),
            Some("oui".into()),
        );
        let l = Intent::new(
            "label:x".into(),
            Payload::Label {
                id: "1".into(),
                name: "Pré-contrôle : conforme".into(),
                present: false,
            },
            false,
            Some("Pré-contrôle : conforme".into()),
            None,
        );
        assert_eq!(
            diff_text(&[i, l]),
            "annotation « Pré-contrôle conforme »\n- non\n+ oui\nlabels\n- Pré-contrôle : conforme\n"
        );
    }

    #[test]
    fn message_lists_the_items_to_complete() {
        let json = serde_json::json!({"findings": [
            {"a_completer": "la liste des porteurs"},
            {"rule": "LI-ADH-01"},
            {"a_completer": "le nombre d'adhérents"}
        ]});
        let check = CheckInput {
            verdict: Verdict::NonConforme,
            report_text: "",
            report_json: &json,
        };
        let m = message_usager(18, &check).expect("a message");
        assert!(m.contains("dossier n° 18"), "{m}");
        assert!(
            m.contains("- la liste des porteurs ;\n- le nombre d'adhérents."),
            "{m}"
        );
        let none = serde_json::json!({"findings": []});
        let check = CheckInput {
            verdict: Verdict::Conforme,
            report_text: "",
            report_json: &none,
        };
        assert_eq!(message_usager(1, &check), None);
    }
}
