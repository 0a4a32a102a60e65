//! From a DS dossier to the domain inputs of rules.md.
//!
//! Every value comes from the champ's typed field, never from `stringValue` (which is display
//! text, used here only as evidence of what an unreadable champ held). Each input is a
//! [`Read`]: the value, or why there is none — so that a missing champ, a champ of an unexpected
//! type or a number written "douze" reaches the rules as a fact they report, never as a panic
//! nor as a silent default.

use chrono::NaiveDate;

use super::mapping::ResolvedMapping;
use super::reference::canonical_departement_code;
use super::text::normalize;
use crate::ds::model::{Champ, ChampValue, Demandeur, Dossier, DossierState, Etablissement, Row};

/// One domain input as read from a dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    /// The champ held a readable value.
    Ok { champ: String, value: T },
    /// The champ is mapped but empty, or absent from this dossier.
    Missing { champ: String },
    /// The champ holds something that cannot be this input.
    Unreadable {
        champ: String,
        /// What the champ held, as DS displays it.
        raw: String,
        /// Why it cannot be read, in French.
        why: String,
    },
    /// The démarche's configuration maps no champ to this input.
    NotMapped { field: &'static str },
}

impl<T> Read<T> {
    /// The value, when there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Ok { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The label of the champ the input comes from (`None` when not mapped).
    pub fn champ(&self) -> Option<&str> {
        match self {
            Self::Ok { champ, .. } | Self::Missing { champ } | Self::Unreadable { champ, .. } => {
                Some(champ)
            }
            Self::NotMapped { .. } => None,
        }
    }

    /// True when a value was read.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

/// A porteur (project leader), from one row of the porteurs repetition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Porteur {
    /// Name as typed.
    pub nom: Option<String>,
    /// Specialty as typed (checked against the reference list).
    pub specialite: Option<String>,
    /// RPPS number as typed (11 digits expected).
    pub rpps: Option<String>,
}

/// The porteurs, as rows of a repetition or as a free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Porteurs {
    Lignes(Vec<Porteur>),
    Texte(String),
}

/// A member of the planned governance, from one row of a repetition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membre {
    /// Name as typed, quoted in findings.
    pub nom: Option<String>,
    /// "Médecin spécialiste libéral", "CPTS"… as the form words it.
    pub qualite: Option<String>,
    /// "Délibérative" or "Consultative", as the form words it.
    pub voix: Option<String>,
}

/// The governance, as rows of a repetition or as a free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gouvernance {
    Membres(Vec<Membre>),
    Texte(String),
}

/// The carrying association as an RNA champ, a SIRET champ or a typed number shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Association {
    /// RNA number (`W` + 9 characters), as given.
    pub rna: Option<String>,
    /// SIRET (14 digits), as given.
    pub siret: Option<String>,
    /// A register reference typed in place of a number (local-law associations of 57, 67, 68).
    pub registre: Option<String>,
    /// Name of the association, when DS knows it.
    pub nom: Option<String>,
    /// INSEE legal-form wording, from the SIRET data.
    pub forme_juridique: Option<String>,
    /// INSEE legal-form code (`9220`), from the SIRET data.
    pub forme_juridique_code: Option<String>,
    /// Département of the seat.
    pub departement_siege: Option<String>,
}

/// The target of the projet de santé's link to its lettre d'intention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lien {
    /// Number of the linked lettre d'intention.
    pub numero: i64,
    /// As DS shows it through the link (`None` when typed as a number or not visible).
    pub etat: Option<DossierState>,
}

/// A lettre d'intention's inputs (rules.md, "Inputs").
#[derive(Debug, Clone, PartialEq)]
pub struct LettreIntention {
    /// DS dossier number.
    pub numero: i64,
    /// `dateDepot` in Europe/Paris.
    pub date_depot: NaiveDate,
    /// Who filed it: a legal person's data stand in for a missing association champ.
    pub demandeur: Demandeur,
    /// LI-CONT-01.
    pub porteurs: Read<Porteurs>,
    /// Specialty names as written (matching to groups is the rules' job).
    pub specialites: Read<Vec<String>>,
    /// Département entries as written (`75 - Paris`, `2A`, a name).
    pub territoire_departements: Read<Vec<String>>,
    pub territoire_region: Read<String>,
    pub perimetre: Read<String>,
    pub nb_medecins_specialite: Read<u32>,
    pub nb_liberaux_specialite: Read<u32>,
    pub nb_adherents: Read<u32>,
    pub association: Read<Association>,
    pub association_siret: Read<Association>,
    pub cooperations: Read<Vec<String>>,
    pub cooperations_precisions: Read<String>,
    pub gouvernance: Read<Gouvernance>,
    pub actions: Read<String>,
    pub actions_mission_socle: Read<Vec<String>>,
    pub derogation_demandee: Read<bool>,
    pub derogation_motif: Read<String>,
}

/// A projet de santé's inputs (rules.md, "Inputs").
#[derive(Debug, Clone, PartialEq)]
pub struct ProjetSante {
    /// DS dossier number.
    pub numero: i64,
    /// `dateDepot` in Europe/Paris.
    pub date_depot: NaiveDate,
    pub lien_lettre_intention: Read<Lien>,
    pub diagnostic_territorial: Read<String>,
    pub missions_actions: Read<String>,
    pub indicateurs: Read<Vec<String>>,
    pub indicateur_qualitatif: Read<String>,
    pub modalites_actualisation: Read<String>,
    pub gouvernance: Read<Gouvernance>,
    /// File names of the deployment document.
    pub plan_deploiement: Read<Vec<String>>,
    pub nb_adherents: Read<u32>,
    pub nb_liberaux_specialite: Read<u32>,
}

/// Reads a lettre d'intention.
pub fn extract_lettre(dossier: &Dossier, mapping: &ResolvedMapping) -> LettreIntention {
    let s = Source { dossier, mapping };
    LettreIntention {
        numero: dossier.number,
        date_depot: paris_date(dossier),
        demandeur: dossier.demandeur.clone(),
        porteurs: s.read("porteurs", porteurs),
        specialites: s.read("specialites", |c| list(c, &[';', '\n'])),
        territoire_departements: s.read("territoire_departements", departements),
        territoire_region: s.read("territoire_region", region),
        perimetre: s.read("perimetre", text),
        nb_medecins_specialite: s.read("nb_medecins_specialite", integer),
        nb_liberaux_specialite: s.read("nb_liberaux_specialite", integer),
        nb_adherents: s.read("nb_adherents", integer),
        association: s.read("association", association),
        association_siret: s.read("association_siret", association),
        cooperations: s.read("cooperations", |c| list(c, &[';', '\n', ','])),
        cooperations_precisions: s.read("cooperations_precisions", text),
        gouvernance: s.read("gouvernance", gouvernance),
        actions: s.read("actions", text),
        actions_mission_socle: s.read("actions_mission_socle", |c| list(c, &[';', '\n'])),
        derogation_demandee: s.read("derogation_demandee", yes_no),
        derogation_motif: s.read("derogation_motif", text),
    }
}

/// Reads a projet de santé.
pub fn extract_projet(dossier: &Dossier, mapping: &ResolvedMapping) -> ProjetSante {
    let s = Source { dossier, mapping };
    ProjetSante {
        numero: dossier.number,
        date_depot: paris_date(dossier),
        lien_lettre_intention: s.read("lien_lettre_intention", lien),
        diagnostic_territorial: s.read("diagnostic_territorial", text),
        missions_actions: s.read("missions_actions", text),
        indicateurs: s.read("indicateurs", |c| list(c, &[';', '\n'])),
        indicateur_qualitatif: s.read("indicateur_qualitatif", text),
        modalites_actualisation: s.read("modalites_actualisation", text),
        gouvernance: s.read("gouvernance", gouvernance),
        plan_deploiement: s.read("plan_deploiement", fichiers),
        nb_adherents: s.read("nb_adherents", integer),
        nb_liberaux_specialite: s.read("nb_liberaux_specialite", integer),
    }
}

/// The day a dossier was filed, in Europe/Paris (DS sends the offset; the calendar day is
/// what the deadlines of the cahier count in).
pub fn paris_date(dossier: &Dossier) -> NaiveDate {
    dossier
        .date_depot
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

/// What a reader makes of one champ.
enum Parsed<T> {
    Value(T),
    Empty,
    Bad(String),
}

struct Source<'a> {
    dossier: &'a Dossier,
    mapping: &'a ResolvedMapping,
}

impl Source<'_> {
    fn read<T>(&self, field: &'static str, reader: impl Fn(&Champ) -> Parsed<T>) -> Read<T> {
        let Some(resolved) = self.mapping.fields.get(field) else {
            return Read::NotMapped { field };
        };
        let champ = resolved.label.clone();
        let Some(c) = self.dossier.champ(&resolved.descriptor_id) else {
            return Read::Missing { champ };
        };
        match reader(c) {
            Parsed::Value(value) => Read::Ok { champ, value },
            Parsed::Empty => Read::Missing { champ },
            Parsed::Bad(why) => Read::Unreadable {
                champ,
                raw: shown(c),
                why,
            },
        }
    }
}

/// What DS displays for a champ, or a description of its value when it displays nothing.
fn shown(c: &Champ) -> String {
    match c.string_value.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => match &c.value {
            ChampValue::Text(Some(s))
            | ChampValue::Integer(Some(s))
            | ChampValue::DropDown(Some(s)) => s.clone(),
            ChampValue::Decimal(Some(f)) => f.to_string(),
            other => type_name(other).to_owned(),
        },
    }
}

/// A French name for a champ's type, for "type inattendu" explanations.
fn type_name(v: &ChampValue) -> &'static str {
    match v {
        ChampValue::Text(_) => "texte",
        ChampValue::Checkbox(_) => "case à cocher",
        ChampValue::YesNo(_) => "oui/non",
        ChampValue::Date(_) => "date",
        ChampValue::Datetime(_) => "date et heure",
        ChampValue::Integer(_) => "nombre entier",
        ChampValue::Decimal(_) => "nombre décimal",
        ChampValue::DropDown(_) => "liste déroulante",
        ChampValue::MultipleDropDown(_) => "choix multiple",
        ChampValue::LinkedDropDown { .. } => "listes liées",
        ChampValue::Departement(_) => "département",
        ChampValue::Region(_) => "région",
        ChampValue::Commune { .. } => "commune",
        ChampValue::Rna(_) => "RNA",
        ChampValue::Siret(_) => "SIRET",
        ChampValue::Repetition(_) => "bloc répétable",
        ChampValue::DossierLink(_) => "lien vers un dossier",
        ChampValue::PieceJustificative(_) => "pièce justificative",
        ChampValue::Other { .. } => "type non lu par essbot",
    }
}

fn wrong_type<T>(v: &ChampValue, expected: &str) -> Parsed<T> {
    Parsed::Bad(format!(
        "champ de type {} ; {expected} attendu",
        type_name(v)
    ))
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn text(c: &Champ) -> Parsed<String> {
    let joined = |items: Vec<String>| {
        if items.is_empty() {
            Parsed::Empty
        } else {
            Parsed::Value(items.join(" ; "))
        }
    };
    match &c.value {
        ChampValue::Text(s) | ChampValue::DropDown(s) => {
            non_blank(s).map_or(Parsed::Empty, Parsed::Value)
        }
        ChampValue::MultipleDropDown(v) => joined(
            v.iter()
                .filter_map(|s| non_blank(&Some(s.clone())))
                .collect(),
        ),
        ChampValue::LinkedDropDown { primary, secondary } => joined(
            [primary, secondary]
                .into_iter()
                .filter_map(non_blank)
                .collect(),
        ),
        other => wrong_type(other, "texte"),
    }
}

fn integer(c: &Champ) -> Parsed<u32> {
    let parse = |raw: &str| -> Parsed<u32> {
        let digits: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
            .collect();
        if digits.is_empty() {
            return Parsed::Empty;
        }
        if let Some(rest) = digits.strip_prefix('-')
            && !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_digit())
        {
            return Parsed::Bad("nombre négatif ; un effectif est positif".into());
        }
        let plain = digits.strip_prefix('+').unwrap_or(&digits);
        if plain.is_empty() || !plain.chars().all(|c| c.is_ascii_digit()) {
            return Parsed::Bad("ce n'est pas un nombre entier écrit en chiffres".into());
        }
        match plain.parse::<u32>() {
            Ok(n) => Parsed::Value(n),
            Err(_) => Parsed::Bad("nombre trop grand pour un effectif".into()),
        }
    };
    match &c.value {
        ChampValue::Integer(Some(s)) | ChampValue::Text(Some(s)) => parse(s),
        ChampValue::Integer(None) | ChampValue::Text(None) | ChampValue::Decimal(None) => {
            Parsed::Empty
        }
        ChampValue::Decimal(Some(f)) => {
            if !f.is_finite() {
                Parsed::Bad("nombre invalide".into())
            } else if *f < 0.0 {
                Parsed::Bad("nombre négatif ; un effectif est positif".into())
            } else if f.fract() != 0.0 {
                Parsed::Bad("nombre décimal ; un effectif est un nombre entier".into())
            } else if *f > f64::from(u32::MAX) {
                Parsed::Bad("nombre trop grand pour un effectif".into())
            } else {
                Parsed::Value(*f as u32)
            }
        }
        other => wrong_type(other, "nombre entier"),
    }
}

fn list(c: &Champ, separators: &[char]) -> Parsed<Vec<String>> {
    let items: Vec<String> = match &c.value {
        ChampValue::MultipleDropDown(v) => v.clone(),
        ChampValue::DropDown(s) => s.iter().cloned().collect(),
        ChampValue::Text(Some(s)) => s
            .split(|ch| separators.contains(&ch))
            .map(str::to_owned)
            .collect(),
        ChampValue::Text(None) => Vec::new(),
        ChampValue::LinkedDropDown { primary, secondary } => [primary, secondary]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        other => return wrong_type(other, "liste de choix ou texte"),
    };
    let items: Vec<String> = items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        Parsed::Empty
    } else {
        Parsed::Value(items)
    }
}

fn code_name(code: &str, name: &str) -> String {
    format!("{} - {}", code.trim(), name.trim())
}

fn departements(c: &Champ) -> Parsed<Vec<String>> {
    match &c.value {
        ChampValue::Departement(Some(d)) => Parsed::Value(vec![code_name(&d.code, &d.name)]),
        ChampValue::Departement(None)
        | ChampValue::Commune {
            departement: None, ..
        } => Parsed::Empty,
        ChampValue::Commune {
            departement: Some(d),
            ..
        } => Parsed::Value(vec![code_name(&d.code, &d.name)]),
        ChampValue::Text(Some(s)) => {
            // Free text: "75, 92 et 93" or one entry per line.
            let items: Vec<String> = s
                .split([',', ';', '\n', '/'])
                .flat_map(|part| part.split(" et "))
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
            if items.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(items)
            }
        }
        _ => list(c, &[]),
    }
}

fn region(c: &Champ) -> Parsed<String> {
    match &c.value {
        ChampValue::Region(Some(r)) => Parsed::Value(code_name(&r.code, &r.name)),
        ChampValue::Region(None) => Parsed::Empty,
        ChampValue::Text(_) | ChampValue::DropDown(_) => text(c),
        other => wrong_type(other, "région"),
    }
}

fn yes_no(c: &Champ) -> Parsed<bool> {
    match &c.value {
        ChampValue::YesNo(Some(b)) | ChampValue::Checkbox(b) => Parsed::Value(*b),
        ChampValue::YesNo(None) | ChampValue::Text(None) | ChampValue::DropDown(None) => {
            Parsed::Empty
        }
        ChampValue::Text(Some(s)) | ChampValue::DropDown(Some(s)) => match normalize(s).as_str() {
            "" => Parsed::Empty,
            "oui" | "true" | "1" => Parsed::Value(true),
            "non" | "false" | "0" => Parsed::Value(false),
            _ => Parsed::Bad("ni « oui » ni « non »".into()),
        },
        other => wrong_type(other, "oui/non"),
    }
}

fn from_etablissement(e: &Etablissement) -> Association {
    Association {
        rna: non_blank(&e.association_rna),
        siret: Some(e.siret.trim().to_owned()),
        registre: None,
        nom: non_blank(&e.raison_sociale),
        forme_juridique: non_blank(&e.forme_juridique),
        forme_juridique_code: non_blank(&e.forme_juridique_code),
        departement_siege: e
            .departement_code
            .as_deref()
            .and_then(canonical_departement_code),
    }
}

fn association(c: &Champ) -> Parsed<Association> {
    match &c.value {
        ChampValue::Rna(Some(r)) => Parsed::Value(Association {
            rna: Some(r.id.trim().to_owned()),
            nom: non_blank(&r.title),
            departement_siege: r
                .departement_code
                .as_deref()
                .and_then(canonical_departement_code),
            ..Default::default()
        }),
        ChampValue::Siret(Some(e)) => Parsed::Value(from_etablissement(e)),
        ChampValue::Rna(None) | ChampValue::Siret(None) | ChampValue::Text(None) => Parsed::Empty,
        ChampValue::Text(Some(s)) => {
            let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.is_empty() {
                return Parsed::Empty;
            }
            let upper = compact.to_ascii_uppercase();
            let mut a = Association::default();
            if upper.starts_with('W') && upper.len() == 10 {
                a.rna = Some(upper);
            } else if compact.len() == 14 && compact.chars().all(|c| c.is_ascii_digit()) {
                a.siret = Some(compact);
            } else {
                a.registre = Some(s.trim().to_owned());
            }
            Parsed::Value(a)
        }
        other => wrong_type(other, "RNA ou SIRET"),
    }
}

/// Which slot of a row a child champ fills, from its folded label, remembered per label:
/// every row of a repetition repeats the same labels, folded once instead of once a row.
struct LabelSlots<'r, F> {
    classify: F,
    known: Vec<(&'r str, Option<usize>)>,
}

impl<'r, F: Fn(&str) -> Option<usize>> LabelSlots<'r, F> {
    fn new(classify: F) -> Self {
        Self {
            classify,
            known: Vec::new(),
        }
    }

    fn slot(&mut self, label: &'r str) -> Option<usize> {
        if let Some((_, slot)) = self.known.iter().find(|(l, _)| *l == label) {
            return *slot;
        }
        let slot = (self.classify)(&normalize(label));
        self.known.push((label, slot));
        slot
    }
}

/// Classifies a repetition row's children by their labels.
fn row_values<'r>(
    row: &'r Row,
    labels: &mut LabelSlots<'r, impl Fn(&str) -> Option<usize>>,
    slots: usize,
) -> Vec<Option<String>> {
    let mut out = vec![None; slots];
    for child in &row.champs {
        if let Some(i) = labels.slot(&child.label)
            && out[i].is_none()
        {
            out[i] = match text(child) {
                Parsed::Value(v) => Some(v),
                Parsed::Empty => None,
                Parsed::Bad(_) => Some(shown(child)),
            };
        }
    }
    out
}

fn porteurs(c: &Champ) -> Parsed<Porteurs> {
    match &c.value {
        ChampValue::Repetition(rows) => {
            let mut labels = LabelSlots::new(|l: &str| {
                if l.contains("rpps") {
                    Some(2)
                } else if l.contains("specialit") {
                    Some(1)
                } else if l.contains("nom") || l.contains("identite") {
                    Some(0)
                } else {
                    None
                }
            });
            let lignes: Vec<Porteur> = rows
                .iter()
                .map(|row| {
                    let v = row_values(row, &mut labels, 3);
                    Porteur {
                        nom: v[0].clone(),
                        specialite: v[1].clone(),
                        rpps: v[2].clone(),
                    }
                })
                .filter(|p| p != &Porteur::default())
                .collect();
            if lignes.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(Porteurs::Lignes(lignes))
            }
        }
        ChampValue::Text(_) => match text(c) {
            Parsed::Value(t) => Parsed::Value(Porteurs::Texte(t)),
            Parsed::Empty => Parsed::Empty,
            Parsed::Bad(w) => Parsed::Bad(w),
        },
        other => wrong_type(other, "bloc répétable ou texte"),
    }
}

fn gouvernance(c: &Champ) -> Parsed<Gouvernance> {
    match &c.value {
        ChampValue::Repetition(rows) => {
            let mut labels = LabelSlots::new(|l: &str| {
                if l.contains("voix") || l.contains("vote") {
                    Some(2)
                } else if l.contains("qualit")
                    || l.contains("statut")
                    || l.contains("fonction")
                    || l.contains("role")
                {
                    Some(1)
                } else if l.contains("nom") || l.contains("membre") || l.contains("identite") {
                    Some(0)
                } else {
                    None
                }
            });
            let membres: Vec<Membre> = rows
                .iter()
                .map(|row| {
                    let v = row_values(row, &mut labels, 3);
                    Membre {
                        nom: v[0].clone(),
                        qualite: v[1].clone(),
                        voix: v[2].clone(),
                    }
                })
                .filter(|m| m != &Membre::default())
                .collect();
            if membres.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(Gouvernance::Membres(membres))
            }
        }
        ChampValue::Text(_) => match text(c) {
            Parsed::Value(t) => Parsed::Value(Gouvernance::Texte(t)),
            Parsed::Empty => Parsed::Empty,
            Parsed::Bad(w) => Parsed::Bad(w),
        },
        other => wrong_type(other, "bloc répétable ou texte"),
    }
}

fn lien(c: &Champ) -> Parsed<Lien> {
    match &c.value {
        ChampValue::DossierLink(Some(l)) => Parsed::Value(Lien {
            numero: l.number,
            etat: l.state,
        }),
        ChampValue::DossierLink(None) | ChampValue::Integer(None) | ChampValue::Text(None) => {
            Parsed::Empty
        }
        ChampValue::Integer(Some(s)) | ChampValue::Text(Some(s)) => {
            let t = s
                .trim()
                .trim_start_matches(['n', 'N', '°', 'º', ' '])
                .trim();
            if t.is_empty() {
                return Parsed::Empty;
            }
            match t.parse::<i64>() {
                Ok(n) if n > 0 => Parsed::Value(Lien {
                    numero: n,
                    etat: None,
                }),
                _ => Parsed::Bad("ce n'est pas un numéro de dossier".into()),
            }
        }
        other => wrong_type(other, "lien vers un dossier"),
    }
}

fn fichiers(c: &Champ) -> Parsed<Vec<String>> {
    match &c.value {
        ChampValue::PieceJustificative(files) if files.is_empty() => Parsed::Empty,
        ChampValue::PieceJustificative(files) => {
            Parsed::Value(files.iter().map(|f| f.filename.clone()).collect())
        }
        other => wrong_type(other, "pièce justificative"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ds::model::{CodeName, File, LinkedDossier, Rna};
    use crate::rules::testutil::*;

    fn read_one<T>(value: ChampValue, reader: impl Fn(&Champ) -> Parsed<T>) -> Parsed<T> {
        reader(&champ("X", value))
    }

    fn ok<T: std::fmt::Debug>(p: Parsed<T>) -> T {
        match p {
            Parsed::Value(v) => v,
            Parsed::Empty => panic!("empty"),
            Parsed::Bad(w) => panic!("bad: {w}"),
        }
    }

    fn bad<T>(p: Parsed<T>) -> String {
        match p {
            Parsed::Bad(w) => w,
            _ => panic!("expected unreadable"),
        }
    }

    fn empty<T>(p: Parsed<T>) -> bool {
        matches!(p, Parsed::Empty)
    }

    #[test]
    fn integers_come_from_typed_values_and_tolerate_text() {
        assert_eq!(
            ok(read_one(ChampValue::Integer(Some("52".into())), integer)),
            52
        );
        assert_eq!(
            ok(read_one(
                ChampValue::Integer(Some(" 1 200 ".into())),
                integer
            )),
            1200
        );
        assert_eq!(
            ok(read_one(ChampValue::Text(Some("12".into())), integer)),
            12
        );
        assert_eq!(ok(read_one(ChampValue::Decimal(Some(12.0)), integer)), 12);
        assert_eq!(
            ok(read_one(ChampValue::Integer(Some("0".into())), integer)),
            0
        );
        assert!(empty(read_one(ChampValue::Integer(None), integer)));
        assert!(empty(read_one(
            ChampValue::Integer(Some("  ".into())),
            integer
        )));
        assert!(
            bad(read_one(ChampValue::Text(Some("douze".into())), integer))
                .contains("pas un nombre entier")
        );
        assert!(bad(read_one(ChampValue::Integer(Some("-3".into())), integer)).contains("négatif"));
        assert!(
            bad(read_one(
                ChampValue::Integer(Some("99999999999".into())),
                integer
            ))
            .contains("trop grand")
        );
        assert!(bad(read_one(ChampValue::Decimal(Some(12.5)), integer)).contains("décimal"));
        assert!(bad(read_one(ChampValue::Decimal(Some(f64::NAN)), integer)).contains("invalide"));
        assert!(bad(read_one(ChampValue::Decimal(Some(-1.0)), integer)).contains("négatif"));
        assert!(
            bad(read_one(ChampValue::Integer(Some("12.5".into())), integer))
                .contains("pas un nombre")
        );
        assert!(bad(read_one(ChampValue::YesNo(Some(true)), integer)).contains("oui/non"));
    }

    #[test]
    fn departements_come_from_lists_champs_and_text() {
        assert_eq!(
            ok(read_one(
                ChampValue::MultipleDropDown(vec![
                    "75 - Paris".into(),
                    " ".into(),
                    "2A - Corse-du-Sud".into()
                ]),
                departements
            )),
            ["75 - Paris", "2A - Corse-du-Sud"]
        );
        assert_eq!(
            ok(read_one(
                ChampValue::Departement(Some(CodeName {
                    code: "971".into(),
                    name: "Guadeloupe".into()
                })),
                departements
            )),
            ["971 - Guadeloupe"]
        );
        assert_eq!(
            ok(read_one(
                ChampValue::Text(Some("75, 92 et 93".into())),
                departements
            )),
            ["75", "92", "93"]
        );
        assert!(empty(read_one(
            ChampValue::MultipleDropDown(vec![]),
            departements
        )));
        assert!(empty(read_one(ChampValue::Departement(None), departements)));
        assert!(
            bad(read_one(
                ChampValue::Integer(Some("75".into())),
                departements
            ))
            .contains("nombre entier")
        );
    }

    #[test]
    fn yes_no_reads_booleans_and_french_words() {
        assert!(ok(read_one(ChampValue::YesNo(Some(true)), yes_no)));
        assert!(!ok(read_one(ChampValue::Checkbox(false), yes_no)));
        assert!(ok(read_one(
            ChampValue::DropDown(Some("Oui".into())),
            yes_no
        )));
        assert!(!ok(read_one(ChampValue::Text(Some("NON".into())), yes_no)));
        assert!(empty(read_one(ChampValue::YesNo(None), yes_no)));
        assert!(
            bad(read_one(ChampValue::Text(Some("peut-être".into())), yes_no))
                .contains("ni « oui »")
        );
    }

    #[test]
    fn associations_from_rna_siret_and_text() {
        let a = ok(read_one(
            ChampValue::Rna(Some(Rna {
                id: "W751000001".into(),
                title: Some("ESS".into()),
                departement_code: Some("75".into()),
            })),
            association,
        ));
        assert_eq!(a.rna.as_deref(), Some("W751000001"));
        assert_eq!(a.departement_siege.as_deref(), Some("75"));
        let a = ok(read_one(
            ChampValue::Siret(Some(Etablissement {
                siret: "73282932000074".into(),
                forme_juridique: Some("Association déclarée".into()),
                forme_juridique_code: Some("9220".into()),
                raison_sociale: None,
                association_rna: Some("W751000001".into()),
                departement_code: Some("2a".into()),
            })),
            association,
        ));
        assert_eq!(a.forme_juridique_code.as_deref(), Some("9220"));
        assert_eq!(a.departement_siege.as_deref(), Some("2A"));
        assert_eq!(
            ok(read_one(
                ChampValue::Text(Some("w 751000001".into())),
                association
            ))
            .rna
            .as_deref(),
            Some("W751000001")
        );
        assert_eq!(
            ok(read_one(
                ChampValue::Text(Some("732 829 320 00074".into())),
                association
            ))
            .siret
            .as_deref(),
            Some("73282932000074")
        );
        assert!(
            ok(read_one(
                ChampValue::Text(Some("TJ Strasbourg vol. 12".into())),
                association
            ))
            .registre
            .is_some()
        );
        assert!(empty(read_one(ChampValue::Rna(None), association)));
        assert!(bad(read_one(ChampValue::Checkbox(true), association)).contains("RNA ou SIRET"));
    }

    #[test]
    fn repetitions_are_read_by_child_labels() {
        let rows = vec![
            Row {
                id: "r1".into(),
                champs: vec![
                    champ("Nom du membre", ChampValue::Text(Some("Dr Martin".into()))),
                    champ(
                        "Qualité",
                        ChampValue::DropDown(Some("Médecin spécialiste libéral".into())),
                    ),
                    champ("Voix", ChampValue::DropDown(Some("Délibérative".into()))),
                ],
            },
            Row {
                id: "r2".into(),
                champs: vec![champ("Nom du membre", ChampValue::Text(None))],
            },
        ];
        let Gouvernance::Membres(m) = ok(read_one(ChampValue::Repetition(rows), gouvernance))
        else {
            panic!()
        };
        assert_eq!(
            m,
            [Membre {
                nom: Some("Dr Martin".into()),
                qualite: Some("Médecin spécialiste libéral".into()),
                voix: Some("Délibérative".into())
            }]
        );
        let rows = vec![Row {
            id: "r1".into(),
            champs: vec![
                champ("Nom et prénom", ChampValue::Text(Some("Dr A".into()))),
                champ("Spécialité", ChampValue::Text(Some("Cardiologie".into()))),
                champ("Numéro RPPS", ChampValue::Text(Some("10003456789".into()))),
            ],
        }];
        let Porteurs::Lignes(p) = ok(read_one(ChampValue::Repetition(rows), porteurs)) else {
            panic!()
        };
        assert_eq!(p[0].rpps.as_deref(), Some("10003456789"));
        assert!(empty(read_one(ChampValue::Repetition(vec![]), porteurs)));
        assert!(matches!(
            ok(read_one(
                ChampValue::Text(Some("Dr A, Dr B".into())),
                porteurs
            )),
            Porteurs::Texte(_)
        ));
    }

    #[test]
    fn links_files_and_text() {
        let l = ok(read_one(
            ChampValue::DossierLink(Some(LinkedDossier {
                number: 123,
                state: Some(DossierState::Accepte),
            })),
            lien,
        ));
        assert_eq!((l.numero, l.etat), (123, Some(DossierState::Accepte)));
        assert_eq!(
            ok(read_one(ChampValue::Text(Some("n° 123".into())), lien)).numero,
            123
        );
        assert!(
            bad(read_one(ChampValue::Text(Some("la lettre".into())), lien))
                .contains("numéro de dossier")
        );
        assert!(empty(read_one(ChampValue::DossierLink(None), lien)));
        assert!(empty(read_one(
            ChampValue::PieceJustificative(vec![]),
            fichiers
        )));
        let f = File {
            filename: "plan.pdf".into(),
            content_type: "application/pdf".into(),
            byte_size: Some(10),
            url: None,
        };
        assert_eq!(
            ok(read_one(ChampValue::PieceJustificative(vec![f]), fichiers)),
            ["plan.pdf"]
        );
        assert_eq!(
            ok(read_one(
                ChampValue::MultipleDropDown(vec!["a".into(), "b".into()]),
                text
            )),
            "a ; b"
        );
        assert!(empty(read_one(ChampValue::Text(Some("   ".into())), text)));
        assert!(
            bad(read_one(
                ChampValue::Other {
                    typename: "CarteChamp".into()
                },
                text
            ))
            .contains("non lu")
        );
    }

    #[test]
    fn unmapped_absent_and_unreadable_champs_are_distinguished() {
        let mapping = li_mapping();
        let mut d = li_dossier();
        d.champs.retain(|c| c.label != "Périmètre médical");
        set(
            &mut d,
            "Nombre de médecins adhérents",
            ChampValue::Text(Some("douze".into())),
        );
        let mut m = mapping.clone();
        m.fields.remove("territoire_region");
        let li = extract_lettre(&d, &m);
        assert!(matches!(
            li.territoire_region,
            Read::NotMapped {
                field: "territoire_region"
            }
        ));
        assert!(matches!(&li.perimetre, Read::Missing { champ } if champ == "Périmètre médical"));
        assert!(matches!(&li.nb_adherents, Read::Unreadable { raw, .. } if raw == "douze"));
        assert_eq!(li.nb_liberaux_specialite.value(), Some(&52));
    }

    #[test]
    fn the_filing_date_is_the_paris_calendar_day() {
        let mut d = li_dossier();
        // 23:30 UTC on 31 January is already 1 February in Paris.
        d.date_depot = chrono::DateTime::parse_from_rfc3339("2026-01-31T23:30:00+00:00").unwrap();
        assert_eq!(paris_date(&d), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
    }
}
