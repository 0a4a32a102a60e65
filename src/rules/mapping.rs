//! The mapping between a démarche's champs and the domain fields of rules.md.
//!
//! A démarche's configuration names each champ by label or by stable id, and for a repetition
//! the columns a field reads; [`resolve`] checks those names once against the démarche's
//! descriptors, so that a renamed or retyped champ, a field no champ gives, or a repetition
//! whose columns cannot be told apart is a configuration error naming the closest labels,
//! reported before any dossier is checked, instead of every dossier failing for the same
//! reason. [`describe`] writes a mapping; [`ResolvedMapping::readings`] says how each mapped
//! champ will be read. What a champ may give is defined once, in [`super::fields`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use serde::Deserialize;

use super::fields::{
    ANNOTATIONS, AnnotationDef, CHOICE_TYPES, ColumnDef, DemarcheKind, FieldDef, Need, SUIVI, Shape,
};
use super::text::normalize;
use crate::ds::model::{ChampDescriptor, DemarcheDescriptors};

/// How a mapping names a champ: by label, or by its stable descriptor id (`id:Q2hhbXAtMTA0MQ==`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChampRef {
    Label(String),
    Id(String),
}

impl FromStr for ChampRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty champ reference".into());
        }
        match s.strip_prefix("id:") {
            Some("") => Err("`id:` needs a champ descriptor id after it".into()),
            Some(id) => Ok(Self::Id(id.trim().to_owned())),
            None => Ok(Self::Label(s.to_owned())),
        }
    }
}

impl fmt::Display for ChampRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(l) => write!(f, "\"{l}\""),
            Self::Id(id) => write!(f, "id:{id}"),
        }
    }
}

/// A field's champ and, for a repetition, the columns it reads (column key → one or more child
/// champs). Written `"Label"` or `{ champ = "Label", columns = { nom = "Nom", qualite = ["A",
/// "B"] } }` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    pub champ: ChampRef,
    pub columns: BTreeMap<String, Vec<ChampRef>>,
}

impl From<ChampRef> for FieldRef {
    fn from(champ: ChampRef) -> Self {
        Self {
            champ,
            columns: BTreeMap::new(),
        }
    }
}

impl FromStr for FieldRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<ChampRef>().map(Self::from)
    }
}

/// A field reference as the configuration file writes it, before its names are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawFieldRef {
    /// `"Label"` or `"id:…"`.
    Champ(String),
    /// `{ champ = "Label", columns = { … } }`.
    Table(RawFieldTable),
}

/// The table form of a [`RawFieldRef`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldTable {
    pub champ: String,
    #[serde(default)]
    pub columns: BTreeMap<String, RawColumns>,
}

/// One column or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawColumns {
    One(String),
    Many(Vec<String>),
}

impl RawFieldRef {
    /// Checks the names' syntax and the column keys against the field's definition (`field` is
    /// `None` for a key the kind does not know: its columns are then not checked).
    ///
    /// # Errors
    /// Every problem, each with the sub-key it is about (`columns.qualite`) or `""` for the
    /// champ itself.
    pub fn parse(self, field: Option<&FieldDef>) -> Result<FieldRef, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let (champ, raw_columns) = match self {
            Self::Champ(s) => (s, BTreeMap::new()),
            Self::Table(t) => (t.champ, t.columns),
        };
        let champ = match champ.parse::<ChampRef>() {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push((String::new(), e));
                None
            }
        };
        let mut columns = BTreeMap::new();
        for (key, raw) in raw_columns {
            let at = format!("columns.{key}");
            let def = field.and_then(|f| f.shape.columns().iter().find(|c| c.key == key));
            if let Some(f) = field
                && def.is_none()
            {
                let known: Vec<&str> = f.shape.columns().iter().map(|c| c.key).collect();
                problems.push((
                    at.clone(),
                    if known.is_empty() {
                        format!(
                            "{} reads every cell of a repetition: it takes no columns",
                            f.key
                        )
                    } else {
                        format!("unknown column; {} reads {}", f.key, known.join(", "))
                    },
                ));
                continue;
            }
            let names = match raw {
                RawColumns::One(s) => vec![s],
                RawColumns::Many(v) => v,
            };
            if names.is_empty() {
                problems.push((at, "empty list of columns".into()));
                continue;
            }
            if names.len() > 1 && def.is_some_and(|d| !d.many) {
                problems.push((at, "takes one column".into()));
                continue;
            }
            let mut refs = Vec::new();
            for n in names {
                match n.parse::<ChampRef>() {
                    Ok(r) => refs.push(r),
                    Err(e) => problems.push((at.clone(), e)),
                }
            }
            columns.insert(key, refs);
        }
        match champ {
            Some(champ) if problems.is_empty() => Ok(FieldRef { champ, columns }),
            _ => Err(problems),
        }
    }
}

/// What a démarche's configuration maps: domain fields, the annotations essbot writes, and the
/// follow-up annotations it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingSpec {
    /// Domain field (rules.md) → champ.
    pub fields: BTreeMap<String, FieldRef>,
    /// `rapport`, `conforme`, `prochaine_echeance` → annotation.
    pub annotations: BTreeMap<String, ChampRef>,
    /// Follow-up annotations filled by staff (milestones.md) → annotation.
    pub suivi: BTreeMap<String, ChampRef>,
}

/// One child champ of a repetition, as the mapping found it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedColumn {
    /// Stable descriptor id: the key to find the cell in each row.
    pub descriptor_id: String,
    pub label: String,
    pub type_de_champ: String,
    /// Options of a choice column.
    pub options: Vec<String>,
}

/// A configured champ, found on the démarche.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedChamp {
    /// Stable descriptor id, the key to find the champ in a dossier.
    pub descriptor_id: String,
    /// Label as the démarche writes it, used as evidence in findings.
    pub label: String,
    /// The `TypeDeChamp` (`integer_number`), which also names the annotation input key.
    pub type_de_champ: String,
    /// The type is accepted but not the expected one (e.g. a number in a text champ), so the
    /// value is parsed and may turn out unreadable.
    pub tolerated: bool,
    /// The options a choice champ offers (a structured answer is read against them).
    pub options: Vec<String>,
    /// Every child of a repetition, in the form's order.
    pub children: Vec<ResolvedColumn>,
    /// For a repetition: column key of the field's shape → the children that give it.
    pub columns: BTreeMap<&'static str, Vec<ResolvedColumn>>,
}

impl ResolvedChamp {
    /// True when the champ's answer is one of the form's options (a structured answer), or a
    /// repetition with such a column.
    pub fn is_structured(&self) -> bool {
        CHOICE_TYPES.contains(&self.type_de_champ.as_str())
            || self
                .children
                .iter()
                .any(|c| CHOICE_TYPES.contains(&c.type_de_champ.as_str()))
    }

    /// The options offered: the champ's, or those of its choice columns.
    pub fn offered(&self) -> Vec<String> {
        let mut out = self.options.clone();
        for c in &self.children {
            out.extend(c.options.iter().cloned());
        }
        out
    }

    /// The children that give a column, by descriptor id.
    pub fn column_ids(&self, key: &str) -> Vec<&str> {
        self.columns
            .get(key)
            .map(|cs| cs.iter().map(|c| c.descriptor_id.as_str()).collect())
            .unwrap_or_default()
    }
}

/// A démarche's mapping, checked against its descriptors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedMapping {
    /// Démarche number.
    pub demarche: i64,
    /// Which rules apply to its dossiers.
    pub kind: DemarcheKind,
    /// Domain field → champ.
    pub fields: BTreeMap<String, ResolvedChamp>,
    /// `rapport`, `conforme`, `prochaine_echeance` → annotation.
    pub annotations: BTreeMap<String, ResolvedChamp>,
    /// Follow-up key → annotation.
    pub suivi: BTreeMap<String, ResolvedChamp>,
    /// Optional fields of this kind that no champ gives: said once by `config check` and at
    /// start, never in a dossier's report.
    pub not_mapped: Vec<&'static str>,
    /// Accepted with a remark (tolerated type, label matched ignoring case or accents, columns
    /// found by their labels).
    pub notes: Vec<String>,
}

impl ResolvedMapping {
    /// How each mapped field will be read, one line each, for `essbot config check --remote`.
    pub fn readings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.kind.fields() {
            let Some(c) = self.fields.get(f.key) else {
                continue;
            };
            let mut line = format!(
                "fields.{} <- \"{}\" ({}): {}",
                f.key,
                c.label,
                c.type_de_champ,
                f.shape.reading(&c.type_de_champ)
            );
            if !c.columns.is_empty() {
                let cols: Vec<String> = f
                    .shape
                    .columns()
                    .iter()
                    .filter_map(|def| {
                        c.columns.get(def.key).map(|cs| {
                            let labels: Vec<String> =
                                cs.iter().map(|x| format!("\"{}\"", x.label)).collect();
                            format!("{} <- {}", def.key, labels.join(" + "))
                        })
                    })
                    .collect();
                let _ = write!(line, "; columns: {}", cols.join(", "));
            }
            out.push(line);
        }
        for (section, map) in [("annotations", &self.annotations), ("suivi", &self.suivi)] {
            for (key, c) in map {
                out.push(format!(
                    "{section}.{key} <- \"{}\" ({})",
                    c.label, c.type_de_champ
                ));
            }
        }
        out
    }

    /// What each optional field not mapped means for the rules: `siege (LI-CAISSE-01): the
    /// competent caisse is …`.
    pub fn rules_without_input(&self) -> Vec<String> {
        self.not_mapped
            .iter()
            .filter_map(|key| self.kind.field(key))
            .map(FieldDef::unmapped_effect)
            .collect()
    }
}

/// One problem of a mapping, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    /// `fields.nb_adherents`, `annotations.rapport`…
    pub key: String,
    pub message: String,
}

/// Every problem of a démarche's mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("démarche {demarche}: {}", problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
pub struct MappingError {
    /// Démarche number.
    pub demarche: i64,
    /// Every problem found, not just the first.
    pub problems: Vec<MappingProblem>,
}

/// The problems of a kind's mapping that need no descriptor: a required field, or every field
/// of a one-of group, left unmapped. Each names the rules that cannot run without it.
pub fn unmapped_required<'a>(
    kind: DemarcheKind,
    mapped: impl IntoIterator<Item = &'a str>,
) -> Vec<MappingProblem> {
    let mapped: BTreeSet<&str> = mapped.into_iter().collect();
    let mut out = Vec::new();
    let mut groups: BTreeMap<&str, Vec<&FieldDef>> = BTreeMap::new();
    for f in kind.fields() {
        match f.need {
            Need::Required if !mapped.contains(f.key) => out.push(MappingProblem {
                key: format!("fields.{}", f.key),
                message: format!(
                    "not mapped, and {} cannot run without it: map it to the champ that gives {} (`essbot demarche describe` suggests one)",
                    rule_list(f),
                    f.key
                ),
            }),
            Need::OneOf(group) => groups.entry(group).or_default().push(f),
            _ => {}
        }
    }
    for fields in groups.values() {
        if fields.iter().any(|f| mapped.contains(f.key)) {
            continue;
        }
        let keys: Vec<&str> = fields.iter().map(|f| f.key).collect();
        let rules = super::fields::rules_of(fields.iter().copied());
        out.push(MappingProblem {
            key: format!("fields.{}", keys[0]),
            message: format!(
                "none of {} is mapped, and {} cannot run without one of them",
                keys.join(", "),
                rules.join(", ")
            ),
        });
    }
    out
}

fn rule_list(f: &FieldDef) -> String {
    super::fields::rules_of([f]).join(", ")
}

/// A descriptor as the mapping keeps it.
fn column_of(d: &ChampDescriptor) -> ResolvedColumn {
    ResolvedColumn {
        descriptor_id: d.id.clone(),
        label: d.label.clone(),
        type_de_champ: kind_of(d),
        options: d.options.clone(),
    }
}

/// The columns of a repetition a shape reads: those the configuration names, else those whose
/// labels say what they are.
fn resolve_columns(
    shape: Shape,
    at: &str,
    configured: &BTreeMap<String, Vec<ChampRef>>,
    repetition: &ChampDescriptor,
    problems: &mut Vec<MappingProblem>,
    notes: &mut Vec<String>,
) -> BTreeMap<&'static str, Vec<ResolvedColumn>> {
    let mut out: BTreeMap<&'static str, Vec<ResolvedColumn>> = BTreeMap::new();
    let defs = shape.columns();
    // Configured columns first.
    for def in defs {
        let Some(refs) = configured.get(def.key) else {
            continue;
        };
        let mut found = Vec::new();
        for r in refs {
            match find(r, &repetition.children) {
                Ok((d, _)) => found.push(column_of(d)),
                Err(message) => problems.push(MappingProblem {
                    key: format!("{at}.columns.{}", def.key),
                    message: format!("{message} (among the columns of \"{}\")", repetition.label),
                }),
            }
        }
        if !found.is_empty() {
            out.insert(def.key, found);
        }
    }
    // The others from the children's labels, each child used once, the most specific column
    // first (a "Membre votant" column is the voice, not a name).
    let mut used: BTreeSet<String> = out
        .values()
        .flatten()
        .map(|c| c.descriptor_id.clone())
        .collect();
    for def in defs.iter().rev() {
        if configured.contains_key(def.key) {
            continue;
        }
        let found: Vec<ResolvedColumn> = guess_columns(def, &repetition.children, &used, shape);
        if found.is_empty() {
            if def.required {
                let labels: Vec<String> = repetition
                    .children
                    .iter()
                    .map(|c| format!("\"{}\"", c.label))
                    .collect();
                problems.push(MappingProblem {
                    key: format!("{at}.columns.{}", def.key),
                    message: format!(
                        "no column of \"{}\" is recognisably its {}; name it: columns = {{ {} = \"…\" }} (columns: {})",
                        repetition.label,
                        def.key,
                        def.key,
                        labels.join(", ")
                    ),
                });
            }
            continue;
        }
        let labels: Vec<String> = found.iter().map(|c| format!("\"{}\"", c.label)).collect();
        notes.push(format!(
            "{at}.columns.{}: read from {} (found by its label; name it to be sure)",
            def.key,
            labels.join(" + ")
        ));
        used.extend(found.iter().map(|c| c.descriptor_id.clone()));
        out.insert(def.key, found);
    }
    out
}

/// The children whose label fits a column's wordings (all of them for a column that takes
/// several, else the first), skipping those already used. A département column is also
/// recognised by its type.
fn guess_columns(
    def: &ColumnDef,
    children: &[ChampDescriptor],
    used: &BTreeSet<String>,
    shape: Shape,
) -> Vec<ResolvedColumn> {
    let free = children.iter().filter(|c| !used.contains(&c.id));
    if shape == Shape::Departements
        && let Some(d) = free.clone().find(|c| kind_of(c) == "departements")
    {
        return vec![column_of(d)];
    }
    let fits = |c: &&ChampDescriptor| {
        let l = normalize(&c.label);
        def.hints.iter().any(|h| super::text::contains_words(&l, h))
    };
    let found: Vec<ResolvedColumn> = free.filter(fits).map(column_of).collect();
    if def.many {
        found
    } else {
        found.into_iter().take(1).collect()
    }
}

/// Checks a démarche's mapping against its descriptors, gathering every problem.
///
/// # Errors
/// [`MappingError`] listing each key whose champ is absent (with the closest labels), ambiguous
/// or of a type that cannot give the field, each repetition whose columns cannot be told
/// apart, and each required field left unmapped.
pub fn resolve(
    demarche: i64,
    kind: DemarcheKind,
    spec: &MappingSpec,
    descriptors: &DemarcheDescriptors,
) -> Result<ResolvedMapping, MappingError> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut fields = BTreeMap::new();
    for (key, r) in &spec.fields {
        let at = format!("fields.{key}");
        let Some(def) = kind.field(key) else {
            problems.push(MappingProblem {
                key: at,
                message: format!("not a field of a {} démarche", kind.as_str()),
            });
            continue;
        };
        let Some(d) = locate(
            &at,
            &r.champ,
            &descriptors.champs,
            &mut problems,
            &mut notes,
        ) else {
            continue;
        };
        let t = kind_of(d);
        let tolerated = def.shape.tolerated().contains(&t.as_str());
        if !def.shape.strict().contains(&t.as_str()) && !tolerated {
            problems.push(MappingProblem {
                key: at,
                message: format!(
                    "champ \"{}\" is of type {t}; {} needs {}",
                    d.label,
                    def.key,
                    def.shape.expected()
                ),
            });
            continue;
        }
        if tolerated {
            notes.push(format!(
                "{at}: champ \"{}\" is of type {t}; its value is parsed: {}",
                d.label,
                def.shape.reading(&t)
            ));
        }
        let columns = if t == "repetition" {
            resolve_columns(def.shape, &at, &r.columns, d, &mut problems, &mut notes)
        } else {
            if !r.columns.is_empty() {
                problems.push(MappingProblem {
                    key: format!("{at}.columns"),
                    message: format!(
                        "champ \"{}\" is of type {t}, not a repetition: it has no columns",
                        d.label
                    ),
                });
            }
            BTreeMap::new()
        };
        fields.insert(
            def.key.to_owned(),
            ResolvedChamp {
                descriptor_id: d.id.clone(),
                label: d.label.clone(),
                type_de_champ: t,
                tolerated,
                options: d.options.clone(),
                children: d.children.iter().map(column_of).collect(),
                columns,
            },
        );
    }
    problems.extend(unmapped_required(
        kind,
        spec.fields.keys().map(String::as_str),
    ));
    let annotations = annotation_section(
        "annotations",
        &spec.annotations,
        ANNOTATIONS,
        &descriptors.annotations,
        &mut problems,
        &mut notes,
    );
    let suivi = annotation_section(
        "suivi",
        &spec.suivi,
        SUIVI,
        &descriptors.annotations,
        &mut problems,
        &mut notes,
    );
    if !problems.is_empty() {
        return Err(MappingError { demarche, problems });
    }
    let not_mapped = kind
        .fields()
        .map(|f| f.key)
        .filter(|k| !fields.contains_key(*k))
        .collect();
    Ok(ResolvedMapping {
        demarche,
        kind,
        fields,
        annotations,
        suivi,
        not_mapped,
        notes,
    })
}

/// The descriptor a reference names, or a problem at `at`.
fn locate<'a>(
    at: &str,
    r: &ChampRef,
    pool: &'a [ChampDescriptor],
    problems: &mut Vec<MappingProblem>,
    notes: &mut Vec<String>,
) -> Option<&'a ChampDescriptor> {
    match find(r, pool) {
        Err(message) => {
            problems.push(MappingProblem {
                key: at.to_owned(),
                message,
            });
            None
        }
        Ok((d, note)) => {
            if let Some(note) = note {
                notes.push(format!("{at}: {note}"));
            }
            Some(d)
        }
    }
}

/// The annotations of one section (`annotations` or `suivi`), checked against their types.
fn annotation_section(
    name: &str,
    map: &BTreeMap<String, ChampRef>,
    defs: &[AnnotationDef],
    pool: &[ChampDescriptor],
    problems: &mut Vec<MappingProblem>,
    notes: &mut Vec<String>,
) -> BTreeMap<String, ResolvedChamp> {
    let mut out = BTreeMap::new();
    for (key, r) in map {
        let at = format!("{name}.{key}");
        let Some(def) = defs.iter().find(|a| a.key == key) else {
            problems.push(MappingProblem {
                key: at,
                message: "unknown key".into(),
            });
            continue;
        };
        let Some(d) = locate(&at, r, pool, problems, notes) else {
            continue;
        };
        let t = kind_of(d);
        let tolerated = def.tolerated.contains(&t.as_str());
        if !def.strict.contains(&t.as_str()) && !tolerated {
            problems.push(MappingProblem {
                key: at,
                message: format!(
                    "annotation \"{}\" is of type {t}; {key} needs {}",
                    d.label, def.expected
                ),
            });
            continue;
        }
        out.insert(
            key.clone(),
            ResolvedChamp {
                descriptor_id: d.id.clone(),
                label: d.label.clone(),
                type_de_champ: t,
                tolerated,
                options: d.options.clone(),
                children: Vec::new(),
                columns: BTreeMap::new(),
            },
        );
    }
    out
}

/// The `TypeDeChamp` of a descriptor, from `type_de_champ` or, when absent, from `__typename`.
fn kind_of(d: &ChampDescriptor) -> String {
    if !d.type_de_champ.trim().is_empty() {
        return d.type_de_champ.trim().to_owned();
    }
    let name = d.typename.trim_end_matches("ChampDescriptor");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "departement" => "departements".into(),
        "region" => "regions".into(),
        "commune" => "communes".into(),
        "r_n_a" => "rna".into(),
        _ => out,
    }
}

/// Finds the descriptor a reference names; by label, an exact match first, then one ignoring
/// case, accents and punctuation (with a note).
fn find<'a>(
    reference: &ChampRef,
    pool: &'a [ChampDescriptor],
) -> Result<(&'a ChampDescriptor, Option<String>), String> {
    match reference {
        ChampRef::Id(id) => pool
            .iter()
            .find(|d| &d.id == id)
            .map(|d| (d, None))
            .ok_or_else(|| {
                format!(
                    "no champ with id {id} on this démarche{}",
                    closest_hint(id, pool, true)
                )
            }),
        ChampRef::Label(label) => {
            let exact: Vec<&ChampDescriptor> = pool.iter().filter(|d| &d.label == label).collect();
            let candidates = if exact.is_empty() {
                let n = normalize(label);
                pool.iter().filter(|d| normalize(&d.label) == n).collect()
            } else {
                exact
            };
            match candidates.as_slice() {
                [] => Err(format!(
                    "no champ labelled \"{label}\" on this démarche{}",
                    closest_hint(label, pool, false)
                )),
                [one] => {
                    let note = (one.label != *label).then(|| {
                        format!("\"{label}\" matched the champ labelled \"{}\"", one.label)
                    });
                    Ok((one, note))
                }
                many => Err(format!(
                    "{} champs are labelled \"{label}\"; name one by id: {}",
                    many.len(),
                    many.iter()
                        .map(|d| format!("id:{}", d.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
    }
}

fn closest_hint(wanted: &str, pool: &[ChampDescriptor], by_id: bool) -> String {
    let w = normalize(wanted);
    let mut scored: Vec<(f64, &ChampDescriptor)> = pool
        .iter()
        // Section headers and explanations hold no value: never a champ to map.
        .filter(|d| !matches!(kind_of(d).as_str(), "header_section" | "explication"))
        .map(|d| {
            let score = if by_id {
                strsim::normalized_levenshtein(wanted, &d.id)
            } else {
                strsim::normalized_levenshtein(&w, &normalize(&d.label))
            };
            (score, d)
        })
        .filter(|(s, _)| *s >= 0.3)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.label.cmp(&b.1.label)));
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, d)| format!("\"{}\" (id:{})", d.label, d.id))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; closest: {}", names.join(", "))
    }
}

/// How well a descriptor's label fits a key's wordings, 0 to 1.
fn label_score(label: &str, hints: &[&str]) -> f64 {
    let l = normalize(label);
    hints
        .iter()
        .map(|h| {
            if l == *h {
                1.0
            } else {
                let lev = strsim::normalized_levenshtein(&l, h);
                let contained = if super::text::contains_words(&l, h) {
                    0.6 + 0.3 * (h.len() as f64 / l.len().max(1) as f64)
                } else {
                    0.0
                };
                lev.max(contained)
            }
        })
        .fold(0.0, f64::max)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list_descriptors(out: &mut String, pool: &[ChampDescriptor], indent: usize) {
    for d in pool {
        let _ = writeln!(
            out,
            "{:indent$}- {}  [{}{}]  id:{}",
            "",
            d.label,
            kind_of(d),
            if d.required { ", required" } else { "" },
            d.id
        );
        if !d.children.is_empty() {
            list_descriptors(out, &d.children, indent + 4);
        }
    }
}

/// A key `describe` looks for a champ for: its wordings and the types that can give it.
struct Wanted<'a> {
    key: &'a str,
    hints: &'a [&'a str],
    strict: &'a [&'a str],
    tolerated: &'a [&'a str],
}

/// Best champ per key: highest score first, each champ used once, only types that can give the
/// key (those that give it directly slightly preferred), and only above a threshold.
fn suggest<'a>(
    keys: &[Wanted<'a>],
    pool: &[ChampDescriptor],
) -> BTreeMap<&'a str, ChampDescriptor> {
    let mut pairs: Vec<(f64, &str, &ChampDescriptor)> = Vec::new();
    for w in keys {
        for d in pool {
            let t = kind_of(d);
            let strict = w.strict.contains(&t.as_str());
            if strict || w.tolerated.contains(&t.as_str()) {
                // A champ of the type that gives the key directly is worth more than a text
                // whose label merely looks alike ("Nom de l'association" is no SIRET).
                let score = label_score(&d.label, w.hints) + if strict { 0.15 } else { 0.0 };
                if score >= 0.6 {
                    pairs.push((score, w.key, d));
                }
            }
        }
    }
    pairs.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.cmp(b.1))
            .then_with(|| a.2.id.cmp(&b.2.id))
    });
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (_, key, d) in pairs {
        if out.contains_key(key) || used.contains(&d.id) {
            continue;
        }
        used.insert(d.id.clone());
        out.insert(key, d.clone());
    }
    out
}

fn field_suggestions(
    kind: DemarcheKind,
    pool: &[ChampDescriptor],
) -> BTreeMap<&'static str, ChampDescriptor> {
    let keys: Vec<Wanted<'static>> = kind
        .fields()
        .map(|f| Wanted {
            key: f.key,
            hints: f.hints,
            strict: f.shape.strict(),
            tolerated: f.shape.tolerated(),
        })
        .collect();
    suggest(&keys, pool)
}

fn annotation_suggestions(
    defs: &[AnnotationDef],
    pool: &[ChampDescriptor],
) -> BTreeMap<&'static str, ChampDescriptor> {
    let keys: Vec<Wanted<'static>> = defs
        .iter()
        .map(|a| Wanted {
            key: a.key,
            hints: a.hints,
            strict: a.strict,
            tolerated: a.tolerated,
        })
        .collect();
    suggest(&keys, pool)
}

/// Guesses the kind of a démarche from how many fields of each kind its labels match.
fn guess_kind(descriptors: &DemarcheDescriptors) -> DemarcheKind {
    let li = field_suggestions(DemarcheKind::LettreIntention, &descriptors.champs).len();
    let ps = field_suggestions(DemarcheKind::ProjetSante, &descriptors.champs).len();
    if ps > li {
        DemarcheKind::ProjetSante
    } else {
        DemarcheKind::LettreIntention
    }
}

/// The TOML value of a field: its champ's label, with the columns found for a repetition.
fn field_value(def: &FieldDef, d: &ChampDescriptor) -> String {
    let champ = toml_string(&d.label);
    if kind_of(d) != "repetition" || def.shape.columns().is_empty() {
        return champ;
    }
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let columns = resolve_columns(
        def.shape,
        "",
        &BTreeMap::new(),
        d,
        &mut problems,
        &mut notes,
    );
    let cols: Vec<String> = def
        .shape
        .columns()
        .iter()
        .filter_map(|c| {
            columns.get(c.key).map(|found| {
                let labels: Vec<String> = found.iter().map(|x| toml_string(&x.label)).collect();
                if c.many {
                    format!("{} = [{}]", c.key, labels.join(", "))
                } else {
                    format!("{} = {}", c.key, labels.join(", "))
                }
            })
        })
        .collect();
    format!("{{ champ = {champ}, columns = {{ {} }} }}", cols.join(", "))
}

/// The text of `essbot demarche describe`: the démarche's champs and annotations (label, type,
/// stable id), then a TOML mapping skeleton where each key is filled with the champ whose label
/// fits best (with the columns of a repetition), or left commented out when none fits. `kind`
/// is guessed when not given.
pub fn describe(descriptors: &DemarcheDescriptors, kind: Option<DemarcheKind>) -> String {
    let kind = kind.unwrap_or_else(|| guess_kind(descriptors));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Démarche {} — {}",
        descriptors.number, descriptors.title
    );
    let _ = writeln!(out, "\nChamps ({}):", descriptors.champs.len());
    list_descriptors(&mut out, &descriptors.champs, 2);
    let _ = writeln!(
        out,
        "\nAnnotations privées ({}):",
        descriptors.annotations.len()
    );
    list_descriptors(&mut out, &descriptors.annotations, 2);
    let _ = writeln!(out, "\n# Mapping skeleton: check every line before use.");
    let _ = writeln!(out, "[[demarches]]");
    let _ = writeln!(out, "number = {}", descriptors.number);
    let _ = writeln!(out, "kind = \"{}\"", kind.as_str());
    let _ = writeln!(out, "[demarches.fields]");
    let found = field_suggestions(kind, &descriptors.champs);
    for def in kind.fields() {
        let need = match def.need {
            Need::Required => "   # required",
            Need::OneOf(_) => "   # required unless its alternative is mapped",
            Need::Optional => "",
        };
        match found.get(def.key) {
            Some(d) => {
                let _ = writeln!(out, "{} = {}", def.key, field_value(def, d));
            }
            None => {
                let _ = writeln!(out, "# {} = \"\"   # no champ found{need}", def.key);
            }
        }
    }
    let annotations = annotation_suggestions(ANNOTATIONS, &descriptors.annotations);
    let used: BTreeSet<String> = annotations.values().map(|d| d.id.clone()).collect();
    let rest: Vec<ChampDescriptor> = descriptors
        .annotations
        .iter()
        .filter(|d| !used.contains(&d.id))
        .cloned()
        .collect();
    let suivi_defs: Vec<AnnotationDef> = SUIVI
        .iter()
        .filter(|a| a.kind.is_none_or(|k| k == kind))
        .copied()
        .collect();
    let suivi = annotation_suggestions(&suivi_defs, &rest);
    for (name, defs, found) in [
        ("annotations", ANNOTATIONS, &annotations),
        ("suivi", &suivi_defs[..], &suivi),
    ] {
        let _ = writeln!(out, "[demarches.{name}]");
        for a in defs {
            match found.get(a.key) {
                Some(d) => {
                    let _ = writeln!(out, "{} = {}", a.key, toml_string(&d.label));
                }
                None => {
                    let _ = writeln!(out, "# {} = \"\"   # no annotation found", a.key);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;

    fn li(spec: &MappingSpec, d: &DemarcheDescriptors) -> Result<ResolvedMapping, MappingError> {
        resolve(1001, DemarcheKind::LettreIntention, spec, d)
    }

    #[test]
    fn the_demo_mapping_resolves() {
        let m = li(&li_spec(), &li_descriptors()).unwrap();
        assert_eq!(
            m.fields["nb_adherents"].label,
            "Nombre de médecins adhérents"
        );
        assert_eq!(m.fields["nb_adherents"].type_de_champ, "integer_number");
        assert_eq!(m.not_mapped, ["siege"]);
        assert_eq!(m.annotations["conforme"].type_de_champ, "checkbox");
        // The governance's columns were found by their labels, and said so.
        let g = &m.fields["gouvernance"];
        assert_eq!(g.columns["qualite"][0].label, "Qualité");
        assert_eq!(g.columns["voix"][0].label, "Voix");
        assert_eq!(g.columns["nom"][0].label, "Nom du membre");
        assert!(
            m.notes
                .iter()
                .any(|n| n.starts_with("fields.gouvernance.columns.qualite"))
        );
        let m = resolve(
            1002,
            DemarcheKind::ProjetSante,
            &ps_spec(),
            &ps_descriptors(),
        )
        .unwrap();
        assert_eq!(
            m.fields["lien_lettre_intention"].type_de_champ,
            "dossier_link"
        );
        assert!(m.not_mapped.is_empty());
    }

    #[test]
    fn a_missing_champ_names_the_closest_labels() {
        let mut s = li_spec();
        s.fields.insert(
            "nb_adherents".into(),
            "Nombre de médecins adhérant".parse().unwrap(),
        );
        s.fields
            .insert("perimetre".into(), "id:Q2hhbXAtOTk5".parse().unwrap());
        let err = li(&s, &li_descriptors()).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let p = &err
            .problems
            .iter()
            .find(|p| p.key == "fields.nb_adherents")
            .unwrap()
            .message;
        assert!(
            p.contains("closest: \"Nombre de médecins adhérents\""),
            "{p}"
        );
        assert!(
            err.problems
                .iter()
                .any(|p| p.key == "fields.perimetre" && p.message.contains("no champ with id"))
        );
    }

    #[test]
    fn types_are_checked_and_tolerated_ones_noted() {
        let mut s = li_spec();
        // An integer field on a text champ is tolerated (parsed), on a yes/no champ refused.
        let mut d = li_descriptors();
        d.champs
            .iter_mut()
            .find(|c| c.label == "Périmètre médical")
            .unwrap()
            .type_de_champ = "text".into();
        s.fields
            .insert("nb_adherents".into(), "Périmètre médical".parse().unwrap());
        s.fields.insert(
            "nb_medecins_specialite".into(),
            "Demande de dérogation".parse().unwrap(),
        );
        let err = li(&s, &d).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0]
                .message
                .contains("is of type yes_no; nb_medecins_specialite needs an integer"),
            "{err}"
        );
        s.fields.insert(
            "nb_medecins_specialite".into(),
            "Nombre de médecins de la spécialité sur le territoire"
                .parse()
                .unwrap(),
        );
        let m = li(&s, &d).unwrap();
        assert!(m.fields["nb_adherents"].tolerated);
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("its value is parsed: the one number written"))
        );
        // A région champ cannot hold a count.
        s.fields
            .insert("nb_adherents".into(), "Région couverte".parse().unwrap());
        let err = li(&s, &li_descriptors()).unwrap_err();
        assert!(
            err.problems[0].message.contains("is of type regions"),
            "{err}"
        );
    }

    #[test]
    fn a_required_field_left_unmapped_fails_and_names_its_rules() {
        let mut s = li_spec();
        s.fields.remove("nb_adherents");
        s.fields.remove("actions");
        s.fields.remove("actions_mission_socle");
        let err = li(&s, &li_descriptors()).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["fields.nb_adherents", "fields.actions"], "{err}");
        assert!(err.problems[0].message.contains("LI-ADH-01, LI-ADH-02"));
        assert!(
            err.problems[1]
                .message
                .contains("none of actions, actions_mission_socle is mapped")
        );
        // An optional one is only noted, with the rules that lose an input.
        let mut s = li_spec();
        s.fields.remove("association_siret");
        let m = li(&s, &li_descriptors()).unwrap();
        assert_eq!(m.not_mapped, ["association_siret", "siege"]);
        assert_eq!(
            m.rules_without_input(),
            [
                "association_siret (LI-CAISSE-01, LI-JUR-01): the carrier is identified from its RNA champ or the filer only",
                "siege (LI-CAISSE-01): the competent caisse is that of the association's registered address (RNA or SIRET data) or of the filer"
            ]
        );
    }

    #[test]
    fn columns_named_in_the_configuration_win_over_labels() {
        let mut d = li_descriptors();
        // A form whose governance says « Spécialité » and « Mode d'exercice », and « Membre
        // votant » as a yes/no.
        let g = d
            .champs
            .iter_mut()
            .find(|c| c.label == "Gouvernance prévue")
            .unwrap();
        g.children[1].label = "Spécialité".into();
        g.children[2].label = "Membre votant".into();
        g.children[2].type_de_champ = "yes_no".into();
        let mut extra = g.children[1].clone();
        extra.id = "bW9kZQ==".into();
        extra.label = "Mode d'exercice".into();
        g.children.push(extra);
        let mut s = li_spec();
        s.fields.insert(
            "gouvernance".into(),
            FieldRef {
                champ: "Gouvernance prévue".parse().unwrap(),
                columns: BTreeMap::from([
                    (
                        "qualite".to_owned(),
                        vec![
                            "Spécialité".parse().unwrap(),
                            "Mode d'exercice".parse().unwrap(),
                        ],
                    ),
                    ("voix".to_owned(), vec!["Membre votant".parse().unwrap()]),
                ]),
            },
        );
        let m = li(&s, &d).unwrap();
        let g = &m.fields["gouvernance"];
        let labels: Vec<&str> = g.columns["qualite"]
            .iter()
            .map(|c| c.label.as_str())
            .collect();
        assert_eq!(labels, ["Spécialité", "Mode d'exercice"]);
        assert_eq!(g.columns["voix"][0].type_de_champ, "yes_no");
        assert!(
            m.readings()
                .iter()
                .any(|r| r.contains("qualite <- \"Spécialité\" + \"Mode d'exercice\""))
        );
        // A column the repetition lacks is a problem naming the closest.
        s.fields
            .get_mut("gouvernance")
            .unwrap()
            .columns
            .insert("voix".into(), vec!["Membre votants".parse().unwrap()]);
        let err = li(&s, &d).unwrap_err();
        assert_eq!(err.problems[0].key, "fields.gouvernance.columns.voix");
        assert!(
            err.problems[0]
                .message
                .contains("closest: \"Membre votant\"")
        );
    }

    #[test]
    fn a_repetition_whose_quality_column_cannot_be_told_is_a_problem() {
        let mut d = li_descriptors();
        let g = d
            .champs
            .iter_mut()
            .find(|c| c.label == "Gouvernance prévue")
            .unwrap();
        g.children[1].label = "Colonne B".into();
        let err = li(&li_spec(), &d).unwrap_err();
        assert_eq!(err.problems[0].key, "fields.gouvernance.columns.qualite");
        assert!(err.problems[0].message.contains("name it"), "{err}");
        // Columns on a champ that is not a repetition.
        let mut s = li_spec();
        s.fields.insert(
            "perimetre".into(),
            FieldRef {
                champ: "Périmètre médical".parse().unwrap(),
                columns: BTreeMap::from([("nom".to_owned(), vec!["x".parse().unwrap()])]),
            },
        );
        let err = li(&s, &li_descriptors()).unwrap_err();
        assert_eq!(err.problems[0].key, "fields.perimetre.columns");
    }

    #[test]
    fn raw_references_are_checked_against_the_field() {
        let def = DemarcheKind::LettreIntention.field("gouvernance");
        let raw: RawFieldRef = toml::from_str::<BTreeMap<String, RawFieldRef>>(
            r#"g = { champ = "Bureau", columns = { qualite = ["A", "B"], voix = "V", taille = "T" } }"#,
        )
        .unwrap()
        .remove("g")
        .unwrap();
        let problems = raw.parse(def).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "columns.taille");
        assert!(problems[0].1.contains("nom, qualite, voix"));
        let raw = RawFieldRef::Table(RawFieldTable {
            champ: "Bureau".into(),
            columns: BTreeMap::from([(
                "voix".into(),
                RawColumns::Many(vec!["a".into(), "b".into()]),
            )]),
        });
        assert_eq!(raw.parse(def).unwrap_err()[0].1, "takes one column");
        let raw = RawFieldRef::Champ("id:".into());
        assert!(
            raw.parse(def).unwrap_err()[0]
                .1
                .contains("needs a champ descriptor id")
        );
    }

    #[test]
    fn labels_match_ignoring_case_and_accents_but_not_ambiguously() {
        let mut s = li_spec();
        s.fields
            .insert("perimetre".into(), "perimetre MEDICAL".parse().unwrap());
        let m = li(&s, &li_descriptors()).unwrap();
        assert_eq!(m.fields["perimetre"].label, "Périmètre médical");
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("matched the champ labelled"))
        );
        let mut d = li_descriptors();
        let mut twin = d
            .champs
            .iter()
            .find(|c| c.label == "Périmètre médical")
            .unwrap()
            .clone();
        twin.id = "dHdpbg==".into();
        d.champs.push(twin);
        let err = li(&li_spec(), &d).unwrap_err();
        assert!(err.problems[0].message.contains("name one by id"), "{err}");
    }

    #[test]
    fn unknown_keys_are_problems() {
        let mut s = li_spec();
        s.annotations
            .insert("pas_une_cle".into(), "X".parse().unwrap());
        s.fields
            .insert("diagnostic_territorial".into(), "X".parse().unwrap());
        let err = li(&s, &li_descriptors()).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["fields.diagnostic_territorial", "annotations.pas_une_cle"]
        );
        assert!(
            err.problems[0]
                .message
                .contains("not a field of a lettre_intention")
        );
    }

    #[test]
    fn typenames_stand_in_for_a_missing_type_de_champ() {
        let mut d = li_descriptors().champs[0].clone();
        d.type_de_champ.clear();
        for (typename, kind) in [
            ("IntegerNumberChampDescriptor", "integer_number"),
            ("DepartementChampDescriptor", "departements"),
            ("RNAChampDescriptor", "rna"),
            (
                "MultipleDropDownListChampDescriptor",
                "multiple_drop_down_list",
            ),
            ("YesNoChampDescriptor", "yes_no"),
        ] {
            d.typename = typename.into();
            assert_eq!(kind_of(&d), kind);
        }
    }

    #[test]
    fn describe_lists_champs_and_suggests_the_demo_mapping() {
        for (desc, spec, kind) in [
            (li_descriptors(), li_spec(), DemarcheKind::LettreIntention),
            (ps_descriptors(), ps_spec(), DemarcheKind::ProjetSante),
        ] {
            let text = describe(&desc, None);
            assert!(
                text.contains(&format!("kind = \"{}\"", kind.as_str())),
                "{text}"
            );
            for (key, r) in &spec.fields {
                let ChampRef::Label(label) = &r.champ else {
                    continue;
                };
                assert!(
                    text.contains(&format!("{key} = {}", toml_string(label)))
                        || text.contains(&format!("{key} = {{ champ = {}", toml_string(label))),
                    "{key} not suggested as {label}:\n{text}"
                );
            }
            for (key, r) in spec.annotations.iter().chain(&spec.suivi) {
                let ChampRef::Label(label) = r else { continue };
                assert!(
                    text.contains(&format!("{key} = {}", toml_string(label))),
                    "{key}:\n{text}"
                );
            }
        }
        let text = describe(&li_descriptors(), None);
        assert!(
            text.contains(
                "gouvernance = { champ = \"Gouvernance prévue\", columns = { nom = [\"Nom du membre\"], qualite = [\"Qualité\"], voix = \"Voix\" } }"
            ),
            "{text}"
        );
        let empty = DemarcheDescriptors {
            id: "x".into(),
            number: 1,
            title: "Vide".into(),
            champs: vec![],
            annotations: vec![],
            labels: vec![],
        };
        let text = describe(&empty, Some(DemarcheKind::ProjetSante));
        assert!(
            text.contains("# nb_adherents = \"\"   # no champ found   # required"),
            "{text}"
        );
    }

    /// What `describe` writes resolves: its skeleton is a working mapping of the démarche.
    #[test]
    fn the_skeleton_describe_writes_resolves() {
        for (desc, kind) in [
            (li_descriptors(), DemarcheKind::LettreIntention),
            (ps_descriptors(), DemarcheKind::ProjetSante),
        ] {
            let text = describe(&desc, Some(kind));
            let toml_part = &text[text.find("[[demarches]]").unwrap()..];
            #[derive(Deserialize)]
            struct File {
                demarches: Vec<Section>,
            }
            #[derive(Deserialize)]
            struct Section {
                fields: BTreeMap<String, RawFieldRef>,
                annotations: BTreeMap<String, String>,
                suivi: BTreeMap<String, String>,
            }
            let file: File = toml::from_str(toml_part).unwrap();
            let section = file.demarches.into_iter().next().unwrap();
            let spec = MappingSpec {
                fields: section
                    .fields
                    .into_iter()
                    .map(|(k, v)| {
                        let def = kind.field(&k);
                        (k, v.parse(def).unwrap())
                    })
                    .collect(),
                annotations: section
                    .annotations
                    .into_iter()
                    .map(|(k, v)| (k, v.parse().unwrap()))
                    .collect(),
                suivi: section
                    .suivi
                    .into_iter()
                    .map(|(k, v)| (k, v.parse().unwrap()))
                    .collect(),
            };
            resolve(desc.number, kind, &spec, &desc).unwrap();
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
        assert_eq!(toml_string("l\u{1}"), "\"l\\u0001\"");
    }
}
