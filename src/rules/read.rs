//! How a champ gives each shape of value (see [`super::fields::Shape`]): one reader per shape,
//! taking the champ's typed value and what the mapping knows of it (options, columns).
//!
//! Every value comes from the champ's typed field, never from `stringValue` (which is display
//! text, used here only as evidence of what an unreadable champ held). A reader answers a
//! value, "empty", or why the champ cannot give it, in French: a number written "douze" or a
//! checkbox where a count was expected reaches the rules as a fact they report, never as a
//! panic nor as a silent default. Values are read as a careful instructor would read them
//! (rules.md, "How essbot reads a dossier"): "34 adhérents" is 34, "Dossier n° 58" or the
//! dossier's DS address is 58, an en dash is a dash.

use super::fields::Shape;
use super::mapping::ResolvedChamp;
use super::reference::canonical_departement_code;
use super::text::normalize;
use crate::ds::model::{Champ, ChampValue, CodeName, DossierState, Etablissement, Row};

/// What a reader makes of one champ.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Parsed<T> {
    Value(T),
    Empty,
    Bad(String),
}

/// A reader of one shape: its function, and the shape it gives (checked against the field's
/// definition when a field is read, so that a field is never read as something it is not).
pub(super) struct Reader<T> {
    pub shape: Shape,
    pub read: fn(&Champ, &ResolvedChamp) -> Parsed<T>,
}

// ---------------------------------------------------------------------------------------------
// Value types.

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

/// A governance member's voice, as the dossier gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voix {
    Deliberative,
    Consultative,
    /// The form has no voice column, or the cell is empty: deliberative, unless another cell of
    /// the row says consultative (rules.md, LI-GOUV-01).
    NonPrecisee,
    /// A cell that says neither, as written.
    Illisible(String),
}

/// A member of the governance, from one row of a repetition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membre {
    /// Name as typed, quoted in findings.
    pub nom: Option<String>,
    /// "Médecin spécialiste libéral", or "Cardiologie ; Libéral" when the quality is split over
    /// several columns, as the form words it.
    pub qualite: Option<String>,
    pub voix: Voix,
    /// The row's other cells, folded: a member said consultative there is consultative.
    pub reste: String,
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

/// The association's seat, as a commune or address champ or a text gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Siege {
    /// The département's INSEE code, when the champ gives it (or its commune's INSEE code does).
    pub departement: Option<String>,
    /// What the champ shows (commune name, address), for evidence and for reading a text.
    pub texte: String,
}

/// The target of the projet de santé's link to its lettre d'intention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lien {
    /// Number of the linked lettre d'intention.
    pub numero: i64,
    /// As DS shows it through the link (`None` when typed as a number or not visible).
    pub etat: Option<DossierState>,
}

/// A list of items: the options chosen, or the lines of a text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Choix {
    /// The options ticked, or the items of a text.
    pub items: Vec<String>,
    /// A choice champ: what is not ticked was not chosen (rules.md, principle 3).
    pub structured: bool,
    /// Every option the form offers (empty for a text).
    pub offered: Vec<String>,
}

/// One entry of a territory, before it is matched to the reference tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lieu {
    /// A code, a name, "75 - Paris", "Paris (75)", "Région Bretagne", "Finistère nord"…
    Saisie(String),
    /// A commune chosen in a communes champ: part of a département, never a whole one.
    Commune {
        nom: String,
        departement: Option<String>,
    },
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/// What DS displays for a champ, or a description of its value when it displays nothing.
pub(super) fn shown(c: &Champ) -> String {
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
        ChampValue::Address { .. } => "adresse",
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

fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn list_or_empty<T>(items: Vec<T>) -> Parsed<Vec<T>> {
    if items.is_empty() {
        Parsed::Empty
    } else {
        Parsed::Value(items)
    }
}

/// "code - name", the way DS writes a département or région option.
fn code_name(cn: &CodeName) -> String {
    format!("{} - {}", cn.code.trim(), cn.name.trim())
}

/// The words of any champ that holds some: its text, options, names, or `None` for types that
/// hold no words (numbers, dates, files…).
fn words_of(c: &Champ) -> Option<Vec<String>> {
    let v = match &c.value {
        ChampValue::Text(s) | ChampValue::DropDown(s) => s.iter().cloned().collect(),
        ChampValue::MultipleDropDown(v) => v.clone(),
        ChampValue::LinkedDropDown { primary, secondary } => [primary, secondary]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        ChampValue::Departement(d) | ChampValue::Region(d) => d.iter().map(code_name).collect(),
        ChampValue::Commune { commune, .. } => commune.iter().map(|c| c.name.clone()).collect(),
        ChampValue::Address { label, .. } => label.iter().cloned().collect(),
        ChampValue::Integer(s) => s.iter().cloned().collect(),
        _ => return None,
    };
    Some(v.into_iter().filter_map(|s| non_blank(Some(&s))).collect())
}

/// Every cell of every row that holds words, in order.
fn cells(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .flat_map(|r| r.champs.iter())
        .filter_map(words_of)
        .flatten()
        .collect()
}

/// The values of a row's cells whose descriptor is one of `ids`, read as text and joined by
/// `sep` (a name split into "Prénom" and "Nom" reads "Anne Le Gall").
fn row_text(row: &Row, ids: &[&str], sep: &str) -> Option<String> {
    let parts: Vec<String> = ids
        .iter()
        .filter_map(|id| row.champs.iter().find(|c| c.descriptor_id == *id))
        .filter_map(|c| match words_of(c) {
            Some(w) => Some(w),
            // A yes/no or checkbox cell in a quality column reads as its display text.
            None => non_blank(c.string_value.as_deref()).map(|s| vec![s]),
        })
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(sep))
}

/// Splits a text at its top-level separators (comma, semicolon, line break, bullet), keeping
/// what is inside parentheses whole: "Finistère nord (pays de Brest et de Morlaix), 22" is two
/// entries.
pub(super) fn split_entries(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' | ';' | '\n' | '\r' | '•' if depth == 0 => {
                out.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|e| {
            e.trim()
                .trim_start_matches(['-', '*', '–', '—'])
                .trim()
                .to_owned()
        })
        .filter(|e| !e.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Text.

fn text(c: &Champ, _: &ResolvedChamp) -> Parsed<String> {
    match &c.value {
        ChampValue::Repetition(rows) => {
            let all = cells(rows);
            if all.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(all.join(" ; "))
            }
        }
        v => match words_of(c) {
            Some(words) if words.is_empty() => Parsed::Empty,
            Some(words) => Parsed::Value(words.join(" ; ")),
            None => wrong_type(v, "texte"),
        },
    }
}

/// A free text.
pub(super) const TEXT: Reader<String> = Reader {
    shape: Shape::Text,
    read: text,
};

/// A part of the projet de santé, written or attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contenu {
    Texte(String),
    /// The file names of the documents attached.
    Document(Vec<String>),
}

fn contenu(c: &Champ, m: &ResolvedChamp) -> Parsed<Contenu> {
    match &c.value {
        ChampValue::PieceJustificative(files) => {
            let names: Vec<String> = files.iter().map(|f| f.filename.clone()).collect();
            if names.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(Contenu::Document(names))
            }
        }
        _ => match text(c, m) {
            Parsed::Value(t) => Parsed::Value(Contenu::Texte(t)),
            Parsed::Empty => Parsed::Empty,
            Parsed::Bad(w) => Parsed::Bad(w),
        },
    }
}

/// A part of the projet de santé.
pub(super) const CONTENU: Reader<Contenu> = Reader {
    shape: Shape::Contenu,
    read: contenu,
};

// ---------------------------------------------------------------------------------------------
// Counts.

/// The headcount a text states: exactly one number written in digits (thousands may be
/// separated by spaces), words around it allowed ("34 adhérents", "soit 1 200 médecins").
pub(super) fn count_in_text(raw: &str) -> Parsed<u32> {
    let s = raw.trim();
    if s.is_empty() {
        return Parsed::Empty;
    }
    let n = normalize(s);
    if [
        "moins de",
        "inferieur",
        "environ",
        "plus de",
        "superieur",
        "au moins",
        "pres de",
        "approximativement",
        "une dizaine",
        "une douzaine",
        "une vingtaine",
        "une trentaine",
        "une quarantaine",
        "une cinquantaine",
        "une centaine",
    ]
    .iter()
    .any(|w| super::text::contains_words(&n, w))
        || s.contains(['~', '≈', '<', '>'])
    {
        return Parsed::Bad("nombre approximatif ; un effectif exact est attendu".into());
    }
    // Tokens of the text, thousands groups merged: "1 200" is one number.
    let tokens: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == '\u{a0}' || c == '\u{202f}')
        .filter(|t| !t.is_empty())
        .collect();
    let mut numbers: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].trim_matches(|c: char| {
            matches!(
                c,
                '(' | ')' | '[' | ']' | ':' | '.' | ',' | ';' | '«' | '»' | '"' | '+'
            )
        });
        if t.starts_with('-') && t[1..].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return Parsed::Bad("nombre négatif ; un effectif est positif".into());
        }
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            i += 1;
            continue;
        }
        let rest = &t[digits..];
        if rest.starts_with([',', '.'])
            && rest[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
        {
            return Parsed::Bad("nombre décimal ; un effectif est un nombre entier".into());
        }
        // A word glued to the number ("34adhérents") is allowed; more digits are not.
        if rest.chars().any(|c| c.is_ascii_digit()) {
            return Parsed::Bad("ce n'est pas un nombre entier écrit en chiffres".into());
        }
        let mut number = t[..digits].to_owned();
        // Thousands written apart: "1 200" (a first group of at most three digits, then groups
        // of exactly three).
        if rest.is_empty() && number.len() <= 3 {
            while let Some(next) = tokens.get(i + 1) {
                let next = next.trim_end_matches(|c: char| {
                    matches!(c, ')' | ']' | ':' | '.' | ',' | ';' | '»' | '"')
                });
                let nd = next.chars().take_while(char::is_ascii_digit).count();
                if nd != 3 || next[3..].chars().any(|c| c.is_ascii_digit()) {
                    break;
                }
                number.push_str(&next[..3]);
                i += 1;
                if !next[3..].is_empty() {
                    break;
                }
            }
        }
        numbers.push(number);
        i += 1;
    }
    match numbers.as_slice() {
        [] => Parsed::Bad("ce n'est pas un nombre entier écrit en chiffres".into()),
        [one] => one.parse::<u32>().map_or_else(
            |_| Parsed::Bad("nombre trop grand pour un effectif".into()),
            Parsed::Value,
        ),
        _ => Parsed::Bad(format!(
            "{} nombres écrits ; un seul effectif est attendu",
            numbers.len()
        )),
    }
}

fn count(c: &Champ, _: &ResolvedChamp) -> Parsed<u32> {
    match &c.value {
        ChampValue::Integer(Some(s)) => {
            let digits: String = s
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
            plain.parse::<u32>().map_or_else(
                |_| Parsed::Bad("nombre trop grand pour un effectif".into()),
                Parsed::Value,
            )
        }
        ChampValue::Text(Some(s)) => count_in_text(s),
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

/// A headcount.
pub(super) const COUNT: Reader<u32> = Reader {
    shape: Shape::Count,
    read: count,
};

// ---------------------------------------------------------------------------------------------
// Choices.

fn choices(c: &Champ, m: &ResolvedChamp) -> Parsed<Choix> {
    let structured = m.is_structured();
    let items: Vec<String> = match &c.value {
        ChampValue::Repetition(rows) => cells(rows),
        ChampValue::Text(Some(s)) => s
            .split(['\n', ';', '•'])
            .map(|l| {
                l.trim()
                    .trim_start_matches(['-', '*', '–', '—'])
                    .trim()
                    .to_owned()
            })
            .filter(|l| !l.is_empty())
            .collect(),
        v => match words_of(c) {
            Some(w) => w,
            None => return wrong_type(v, "liste de choix ou texte"),
        },
    };
    if items.is_empty() {
        return Parsed::Empty;
    }
    Parsed::Value(Choix {
        items,
        structured,
        offered: if structured { m.offered() } else { Vec::new() },
    })
}

/// Options chosen or the items of a text.
pub(super) const CHOICES: Reader<Choix> = Reader {
    shape: Shape::Choices,
    read: choices,
};

// ---------------------------------------------------------------------------------------------
// Territory.

fn lieux_of_cell(c: &Champ) -> Option<Vec<Lieu>> {
    Some(match &c.value {
        ChampValue::Departement(d) => d.iter().map(|d| Lieu::Saisie(code_name(d))).collect(),
        ChampValue::Commune {
            commune,
            departement,
        } => commune
            .iter()
            .map(|cn| Lieu::Commune {
                nom: cn.name.clone(),
                departement: departement
                    .as_ref()
                    .map(|d| d.code.clone())
                    .or_else(|| departement_of_commune(&cn.code)),
            })
            .collect(),
        ChampValue::Text(Some(s)) => split_entries(s).into_iter().map(Lieu::Saisie).collect(),
        ChampValue::MultipleDropDown(v) => v
            .iter()
            .filter_map(|s| non_blank(Some(s)))
            .map(Lieu::Saisie)
            .collect(),
        ChampValue::DropDown(s) => non_blank(s.as_deref())
            .map(Lieu::Saisie)
            .into_iter()
            .collect(),
        // A linked list goes from the wider choice to the narrower: the second one is the
        // territory when it is given.
        ChampValue::LinkedDropDown { primary, secondary } => {
            non_blank(secondary.as_deref().or(primary.as_deref()))
                .map(Lieu::Saisie)
                .into_iter()
                .collect()
        }
        ChampValue::Text(None) => Vec::new(),
        _ => return None,
    })
}

fn departements(c: &Champ, m: &ResolvedChamp) -> Parsed<Vec<Lieu>> {
    match &c.value {
        ChampValue::Repetition(rows) => {
            let ids = m.column_ids("departement");
            let mut out = Vec::new();
            for row in rows {
                for cell in row
                    .champs
                    .iter()
                    .filter(|x| ids.contains(&x.descriptor_id.as_str()))
                {
                    match lieux_of_cell(cell) {
                        Some(l) => out.extend(l),
                        None => return wrong_type(&cell.value, "département"),
                    }
                }
            }
            list_or_empty(out)
        }
        v => match lieux_of_cell(c) {
            Some(l) => list_or_empty(l),
            None => wrong_type(v, "liste de départements ou texte"),
        },
    }
}

/// The INSEE département of an INSEE commune code: `29019` → `29`, `2A004` → `2A`, `97105` →
/// `971`. Never from a postal code (20xxx covers both Corsican départements).
pub(super) fn departement_of_commune(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 5 {
        return None;
    }
    let head = if code.starts_with("97") || code.starts_with("98") {
        &code[..3]
    } else {
        &code[..2]
    };
    canonical_departement_code(head)
}

/// Territory entries.
pub(super) const DEPARTEMENTS: Reader<Vec<Lieu>> = Reader {
    shape: Shape::Departements,
    read: departements,
};

fn region(c: &Champ, _: &ResolvedChamp) -> Parsed<String> {
    match &c.value {
        ChampValue::Region(Some(r)) => Parsed::Value(code_name(r)),
        ChampValue::Region(None) => Parsed::Empty,
        ChampValue::Text(s) | ChampValue::DropDown(s) => {
            non_blank(s.as_deref()).map_or(Parsed::Empty, Parsed::Value)
        }
        other => wrong_type(other, "région"),
    }
}

/// A région.
pub(super) const REGION: Reader<String> = Reader {
    shape: Shape::Region,
    read: region,
};

// ---------------------------------------------------------------------------------------------
// Specialties.

fn specialites(c: &Champ, _: &ResolvedChamp) -> Parsed<Vec<String>> {
    let items = match &c.value {
        ChampValue::Repetition(rows) => cells(rows),
        v => match words_of(c) {
            Some(w) => w,
            None => return wrong_type(v, "liste de choix ou texte"),
        },
    };
    list_or_empty(items)
}

/// Specialty names, as chosen or written (the rules match them to the reference list).
pub(super) const SPECIALITES: Reader<Vec<String>> = Reader {
    shape: Shape::Specialites,
    read: specialites,
};

// ---------------------------------------------------------------------------------------------
// Association and seat.

fn from_etablissement(e: &Etablissement) -> Association {
    Association {
        rna: non_blank(e.association_rna.as_deref()),
        siret: Some(e.siret.trim().to_owned()),
        registre: None,
        nom: non_blank(e.raison_sociale.as_deref()),
        forme_juridique: non_blank(e.forme_juridique.as_deref()),
        forme_juridique_code: non_blank(e.forme_juridique_code.as_deref()),
        departement_siege: e
            .departement_code
            .as_deref()
            .and_then(canonical_departement_code),
    }
}

/// An RNA number or a SIRET found in a typed text: "RNA : W294001234", "732 829 320 00074";
/// anything else is kept as a register reference.
fn association_in_text(s: &str) -> Association {
    let mut a = Association::default();
    if let Some(r) = rna_in_text(s) {
        a.rna = Some(r);
        return a;
    }
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    let run = digits
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 14);
    match run {
        Some(siret) => a.siret = Some(siret.to_owned()),
        None => a.registre = Some(s.trim().to_owned()),
    }
    a
}

/// An RNA number in a text, as people type it: `W294001234`, `RNA : W294001234`, `W 332 006
/// 789`, `w332-006-789` — a W at a word's start, then 9 letters or digits (at least one digit),
/// which spaces, dots or dashes may separate, and nothing more glued after them.
fn rna_in_text(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        if !matches!(c, 'W' | 'w') || !at_word_start {
            continue;
        }
        let mut body = String::new();
        let mut j = i + 1;
        while j < chars.len() && body.len() < 9 {
            match chars[j] {
                d if d.is_ascii_alphanumeric() => body.push(d.to_ascii_uppercase()),
                ' ' | '.' | '-' | '\u{a0}' => {}
                _ => break,
            }
            j += 1;
        }
        let ends = chars.get(j).is_none_or(|n| !n.is_alphanumeric());
        if body.len() == 9 && ends && body.chars().any(|d| d.is_ascii_digit()) {
            return Some(format!("W{body}"));
        }
    }
    None
}

fn association(c: &Champ, _: &ResolvedChamp) -> Parsed<Association> {
    match &c.value {
        ChampValue::Rna(Some(r)) => Parsed::Value(Association {
            rna: Some(r.id.trim().to_owned()),
            nom: non_blank(r.title.as_deref()),
            departement_siege: r
                .departement_code
                .as_deref()
                .and_then(canonical_departement_code),
            ..Default::default()
        }),
        ChampValue::Siret(Some(e)) => Parsed::Value(from_etablissement(e)),
        ChampValue::Rna(None) | ChampValue::Siret(None) | ChampValue::Text(None) => Parsed::Empty,
        ChampValue::Text(Some(s)) if s.trim().is_empty() => Parsed::Empty,
        ChampValue::Text(Some(s)) => Parsed::Value(association_in_text(s)),
        other => wrong_type(other, "RNA ou SIRET"),
    }
}

/// The carrying association.
pub(super) const ASSOCIATION: Reader<Association> = Reader {
    shape: Shape::Association,
    read: association,
};

fn siege(c: &Champ, _: &ResolvedChamp) -> Parsed<Siege> {
    match &c.value {
        ChampValue::Commune {
            commune: Some(cn),
            departement,
        } => Parsed::Value(Siege {
            departement: departement
                .as_ref()
                .and_then(|d| canonical_departement_code(&d.code))
                .or_else(|| departement_of_commune(&cn.code)),
            texte: cn.name.clone(),
        }),
        ChampValue::Address {
            label,
            city_code,
            departement,
        } if label.is_some() || city_code.is_some() => Parsed::Value(Siege {
            departement: departement
                .as_ref()
                .and_then(|d| canonical_departement_code(&d.code))
                .or_else(|| city_code.as_deref().and_then(departement_of_commune)),
            texte: label.clone().unwrap_or_default(),
        }),
        ChampValue::Commune { commune: None, .. }
        | ChampValue::Address { .. }
        | ChampValue::Text(None) => Parsed::Empty,
        ChampValue::Text(Some(s)) if s.trim().is_empty() => Parsed::Empty,
        ChampValue::Text(Some(s)) => Parsed::Value(Siege {
            departement: None,
            texte: s.trim().to_owned(),
        }),
        other => wrong_type(other, "commune ou adresse"),
    }
}

/// The association's seat.
pub(super) const SIEGE: Reader<Siege> = Reader {
    shape: Shape::Siege,
    read: siege,
};

// ---------------------------------------------------------------------------------------------
// Porteurs and governance.

fn porteurs(c: &Champ, m: &ResolvedChamp) -> Parsed<Porteurs> {
    match &c.value {
        ChampValue::Repetition(rows) => {
            let (nom, spec, rpps) = (
                m.column_ids("nom"),
                m.column_ids("specialite"),
                m.column_ids("rpps"),
            );
            let lignes: Vec<Porteur> = rows
                .iter()
                .map(|row| Porteur {
                    nom: row_text(row, &nom, " "),
                    specialite: row_text(row, &spec, " ; "),
                    rpps: row_text(row, &rpps, " "),
                })
                .filter(|p| p != &Porteur::default())
                .collect();
            if lignes.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(Porteurs::Lignes(lignes))
            }
        }
        ChampValue::Text(s) => {
            non_blank(s.as_deref()).map_or(Parsed::Empty, |t| Parsed::Value(Porteurs::Texte(t)))
        }
        other => wrong_type(other, "bloc répétable ou texte"),
    }
}

/// The porteurs.
pub(super) const PORTEURS: Reader<Porteurs> = Reader {
    shape: Shape::Porteurs,
    read: porteurs,
};

/// Whether a folded text says "consultative" (voix consultative, à titre consultatif, non
/// votant, sans droit de vote…).
pub(super) fn says_consultative(n: &str) -> bool {
    n.contains("consultati")
        || [
            "non votant",
            "non votante",
            "sans voix deliberative",
            "sans droit de vote",
            "sans voix",
            "observateur",
            "invite permanent",
        ]
        .iter()
        .any(|w| super::text::contains_words(n, w))
}

/// A voice cell: a yes/no answers the column's question ("Membre votant" yes is deliberative;
/// "Voix consultative" yes is consultative), a text says which voice.
fn voix_of(cell: &Champ, column_label: &str) -> Voix {
    let asks_consultative = normalize(column_label).contains("consultati");
    let yes = |b: bool| {
        if b != asks_consultative {
            Voix::Deliberative
        } else {
            Voix::Consultative
        }
    };
    match &cell.value {
        ChampValue::YesNo(Some(b)) | ChampValue::Checkbox(b) => yes(*b),
        ChampValue::YesNo(None) => Voix::NonPrecisee,
        _ => match words_of(cell)
            .map(|w| w.join(" "))
            .filter(|s| !s.trim().is_empty())
        {
            Some(raw) => voix_in_text(&raw, column_label),
            None => Voix::NonPrecisee,
        },
    }
}

/// The voice a written cell (or a voice column's option) says.
pub(super) fn voix_in_text(raw: &str, column_label: &str) -> Voix {
    let asks_consultative = normalize(column_label).contains("consultati");
    let n = normalize(raw);
    let has = |w: &str| super::text::contains_words(&n, w);
    if says_consultative(&n) {
        Voix::Consultative
    } else if n.contains("deliberati") || has("votant") || has("votante") || has("vote") {
        Voix::Deliberative
    } else if n.starts_with("oui") {
        if asks_consultative {
            Voix::Consultative
        } else {
            Voix::Deliberative
        }
    } else if n.starts_with("non") {
        if asks_consultative {
            Voix::Deliberative
        } else {
            Voix::Consultative
        }
    } else {
        Voix::Illisible(raw.to_owned())
    }
}

fn gouvernance(c: &Champ, m: &ResolvedChamp) -> Parsed<Gouvernance> {
    match &c.value {
        ChampValue::Repetition(rows) => {
            let nom = m.column_ids("nom");
            let qualite = m.column_ids("qualite");
            let voix_col = m.columns.get("voix").and_then(|v| v.first());
            let membres: Vec<Membre> = rows
                .iter()
                .filter_map(|row| {
                    let voix = voix_col
                        .and_then(|col| {
                            row.champs
                                .iter()
                                .find(|x| x.descriptor_id == col.descriptor_id)
                                .map(|cell| voix_of(cell, &col.label))
                        })
                        .unwrap_or(Voix::NonPrecisee);
                    let voix_id = voix_col.map(|c| c.descriptor_id.as_str());
                    let reste: Vec<String> = row
                        .champs
                        .iter()
                        .filter(|x| Some(x.descriptor_id.as_str()) != voix_id)
                        .filter_map(words_of)
                        .flatten()
                        .collect();
                    let membre = Membre {
                        nom: row_text(row, &nom, " "),
                        qualite: row_text(row, &qualite, " ; "),
                        voix,
                        reste: normalize(&reste.join(" ")),
                    };
                    let empty = membre.nom.is_none()
                        && membre.qualite.is_none()
                        && membre.reste.is_empty()
                        && membre.voix == Voix::NonPrecisee;
                    (!empty).then_some(membre)
                })
                .collect();
            if membres.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Value(Gouvernance::Membres(membres))
            }
        }
        ChampValue::Text(s) => {
            non_blank(s.as_deref()).map_or(Parsed::Empty, |t| Parsed::Value(Gouvernance::Texte(t)))
        }
        other => wrong_type(other, "bloc répétable ou texte"),
    }
}

/// The governance.
pub(super) const GOUVERNANCE: Reader<Gouvernance> = Reader {
    shape: Shape::Gouvernance,
    read: gouvernance,
};

// ---------------------------------------------------------------------------------------------
// Yes/no, links, files.

/// Options of a choice list that mean "none".
pub(super) fn says_none(option: &str) -> bool {
    let n = normalize(option);
    [
        "aucune",
        "aucun",
        "non",
        "sans objet",
        "pas de derogation",
        "neant",
    ]
    .iter()
    .any(|w| n == *w || n.starts_with(&format!("{w} ")))
}

fn oui_non(c: &Champ, _: &ResolvedChamp) -> Parsed<bool> {
    match &c.value {
        // A list of the cases asked for ("Dérogation(s) sollicitée(s)"): asked when an option
        // other than "aucune" is ticked.
        ChampValue::MultipleDropDown(options) if options.is_empty() => Parsed::Empty,
        ChampValue::MultipleDropDown(options) => {
            Parsed::Value(options.iter().any(|o| !says_none(o)))
        }
        ChampValue::YesNo(Some(b)) | ChampValue::Checkbox(b) => Parsed::Value(*b),
        ChampValue::YesNo(None) | ChampValue::Text(None) | ChampValue::DropDown(None) => {
            Parsed::Empty
        }
        ChampValue::Text(Some(s)) | ChampValue::DropDown(Some(s)) => {
            let n = normalize(s);
            let first = n.split(' ').next().unwrap_or_default();
            match first {
                "" => Parsed::Empty,
                "oui" | "true" | "vrai" | "1" => Parsed::Value(true),
                "non" | "false" | "faux" | "0" | "aucune" => Parsed::Value(false),
                // A drop-down naming the case asked for ("Pluri-spécialités").
                _ if matches!(c.value, ChampValue::DropDown(_)) => Parsed::Value(!says_none(s)),
                _ => Parsed::Bad("ni « oui » ni « non »".into()),
            }
        }
        other => wrong_type(other, "oui/non"),
    }
}

/// A yes/no answer.
pub(super) const OUI_NON: Reader<bool> = Reader {
    shape: Shape::OuiNon,
    read: oui_non,
};

/// The dossier number a text gives: the number in a DS address (`…/dossiers/58`), the number
/// after "n°" or "dossier", or the one number of the text.
pub(super) fn dossier_number_in_text(s: &str) -> Parsed<i64> {
    let t = s.trim();
    if t.is_empty() {
        return Parsed::Empty;
    }
    let lower = t.to_lowercase();
    if let Some(i) = lower.find("/dossiers/") {
        let digits: String = lower[i + "/dossiers/".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return digits.parse::<i64>().ok().filter(|n| *n > 0).map_or_else(
            || Parsed::Bad("adresse sans numéro de dossier".into()),
            Parsed::Value,
        );
    }
    // Numbers of the text, with the word before each ("n°" folds to "ndeg": the sign is a
    // separator here).
    let n = normalize(&t.replace(['°', 'º', '#'], " "));
    let words: Vec<&str> = n.split(' ').collect();
    let mut numbers: Vec<(i64, &str)> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) {
            let Ok(v) = w.parse::<i64>() else {
                return Parsed::Bad("numéro de dossier trop grand".into());
            };
            numbers.push((v, if i > 0 { words[i - 1] } else { "" }));
        }
    }
    let after_marker = numbers
        .iter()
        .filter(|(_, before)| matches!(*before, "n" | "no" | "numero" | "dossier"))
        .map(|(v, _)| *v)
        .collect::<Vec<_>>();
    let picked = match (after_marker.as_slice(), numbers.as_slice()) {
        ([one], _) => Some(*one),
        ([], [(one, _)]) => Some(*one),
        _ => None,
    };
    match picked {
        Some(v) if v > 0 => Parsed::Value(v),
        _ if numbers.is_empty() => Parsed::Bad("ce n'est pas un numéro de dossier".into()),
        _ => Parsed::Bad("plusieurs nombres : numéro de dossier incertain".into()),
    }
}

fn lien(c: &Champ, _: &ResolvedChamp) -> Parsed<Lien> {
    match &c.value {
        ChampValue::DossierLink(Some(l)) => Parsed::Value(Lien {
            numero: l.number,
            etat: l.state,
        }),
        ChampValue::DossierLink(None) | ChampValue::Integer(None) | ChampValue::Text(None) => {
            Parsed::Empty
        }
        ChampValue::Integer(Some(s)) | ChampValue::Text(Some(s)) => {
            match dossier_number_in_text(s) {
                Parsed::Value(numero) => Parsed::Value(Lien { numero, etat: None }),
                Parsed::Empty => Parsed::Empty,
                Parsed::Bad(w) => Parsed::Bad(w),
            }
        }
        other => wrong_type(other, "lien vers un dossier"),
    }
}

/// The link to the lettre d'intention.
pub(super) const LIEN: Reader<Lien> = Reader {
    shape: Shape::Lien,
    read: lien,
};

fn fichiers(c: &Champ, _: &ResolvedChamp) -> Parsed<Vec<String>> {
    match &c.value {
        ChampValue::PieceJustificative(files) => {
            list_or_empty(files.iter().map(|f| f.filename.clone()).collect())
        }
        other => wrong_type(other, "pièce justificative"),
    }
}

/// Attachments.
pub(super) const FICHIERS: Reader<Vec<String>> = Reader {
    shape: Shape::Fichiers,
    read: fichiers,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ds::model::{File, LinkedDossier, Rna};
    use crate::rules::testutil::*;

    fn plain_champ(type_de_champ: &str) -> ResolvedChamp {
        ResolvedChamp {
            descriptor_id: "desc-X".into(),
            label: "X".into(),
            type_de_champ: type_de_champ.into(),
            tolerated: false,
            options: Vec::new(),
            children: Vec::new(),
            columns: Default::default(),
        }
    }

    fn read_one<T>(value: ChampValue, reader: Reader<T>) -> Parsed<T> {
        let t = match &value {
            ChampValue::MultipleDropDown(_) => "multiple_drop_down_list",
            ChampValue::DropDown(_) => "drop_down_list",
            ChampValue::YesNo(_) => "yes_no",
            ChampValue::Checkbox(_) => "checkbox",
            _ => "text",
        };
        (reader.read)(&champ("X", value), &plain_champ(t))
    }

    fn ok<T: std::fmt::Debug>(p: Parsed<T>) -> T {
        match p {
            Parsed::Value(v) => v,
            Parsed::Empty => panic!("empty"),
            Parsed::Bad(w) => panic!("bad: {w}"),
        }
    }

    fn bad<T: std::fmt::Debug>(p: Parsed<T>) -> String {
        match p {
            Parsed::Bad(w) => w,
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    fn text_v(s: &str) -> ChampValue {
        ChampValue::Text(Some(s.into()))
    }

    #[test]
    fn counts_come_from_typed_values_and_from_text_as_written() {
        let n = |v| ok(read_one(v, COUNT));
        assert_eq!(n(ChampValue::Integer(Some("52".into()))), 52);
        assert_eq!(n(ChampValue::Integer(Some(" 1 200 ".into()))), 1200);
        assert_eq!(n(ChampValue::Decimal(Some(12.0))), 12);
        assert_eq!(n(ChampValue::Integer(Some("0".into()))), 0);
        // Counts typed in a text, as people write them.
        for (written, value) in [
            ("12", 12),
            ("10 médecins", 10),
            ("214 médecins", 214),
            ("34 adhérents", 34),
            ("soit 1 200 médecins libéraux", 1200),
            ("1\u{a0}200", 1200),
            ("(52)", 52),
            ("52.", 52),
            ("34adhérents", 34),
        ] {
            assert_eq!(n(text_v(written)), value, "{written}");
        }
        assert!(matches!(
            read_one(ChampValue::Integer(None), COUNT),
            Parsed::Empty
        ));
        assert!(matches!(read_one(text_v("  "), COUNT), Parsed::Empty));
        for (written, why) in [
            ("douze", "pas un nombre entier"),
            ("une douzaine", "approximatif"),
            ("environ 40", "approximatif"),
            ("moins de 10", "approximatif"),
            ("10 à 12", "2 nombres"),
            ("34 adhérents en 2026", "2 nombres"),
            ("12,5", "décimal"),
            ("-3", "négatif"),
            ("99999999999", "trop grand"),
        ] {
            assert!(
                bad(read_one(text_v(written), COUNT)).contains(why),
                "{written}"
            );
        }
        assert!(bad(read_one(ChampValue::Integer(Some("-3".into())), COUNT)).contains("négatif"));
        assert!(bad(read_one(ChampValue::Decimal(Some(12.5)), COUNT)).contains("décimal"));
        assert!(bad(read_one(ChampValue::Decimal(Some(f64::NAN)), COUNT)).contains("invalide"));
        assert!(bad(read_one(ChampValue::YesNo(Some(true)), COUNT)).contains("oui/non"));
    }

    #[test]
    fn dossier_numbers_from_links_numbers_text_and_addresses() {
        let l = ok(read_one(
            ChampValue::DossierLink(Some(LinkedDossier {
                number: 123,
                state: Some(DossierState::Accepte),
            })),
            LIEN,
        ));
        assert_eq!((l.numero, l.etat), (123, Some(DossierState::Accepte)));
        for (written, n) in [
            ("58", 58),
            ("n° 58", 58),
            ("N°58", 58),
            ("Dossier n° 58", 58),
            ("dossier 58 déposé le 12", 58),
            ("https://demarche.numerique.gouv.fr/dossiers/58", 58),
            (
                "https://www.demarches-simplifiees.fr/procedures/1001/dossiers/58/messagerie",
                58,
            ),
            ("#58", 58),
        ] {
            assert_eq!(ok(read_one(text_v(written), LIEN)).numero, n, "{written}");
        }
        assert!(bad(read_one(text_v("la lettre"), LIEN)).contains("numéro de dossier"));
        assert!(bad(read_one(text_v("déposée le 12/03/2026"), LIEN)).contains("plusieurs"));
        assert!(matches!(
            read_one(ChampValue::DossierLink(None), LIEN),
            Parsed::Empty
        ));
        assert_eq!(
            ok(read_one(ChampValue::Integer(Some("58".into())), LIEN)).numero,
            58
        );
    }

    #[test]
    fn yes_no_reads_booleans_checkboxes_and_french_words() {
        assert!(ok(read_one(ChampValue::YesNo(Some(true)), OUI_NON)));
        assert!(!ok(read_one(ChampValue::Checkbox(false), OUI_NON)));
        assert!(ok(read_one(
            ChampValue::DropDown(Some("Oui".into())),
            OUI_NON
        )));
        assert!(ok(read_one(
            ChampValue::DropDown(Some("Oui, une dérogation est demandée".into())),
            OUI_NON
        )));
        assert!(!ok(read_one(text_v("NON"), OUI_NON)));
        // A list of the cases a derogation is asked for.
        assert!(ok(read_one(
            ChampValue::MultipleDropDown(vec!["Équipe pluri-spécialités".into()]),
            OUI_NON
        )));
        assert!(!ok(read_one(
            ChampValue::MultipleDropDown(vec!["Aucune dérogation".into()]),
            OUI_NON
        )));
        assert!(ok(read_one(
            ChampValue::DropDown(Some("Seuil de 10 % non atteint".into())),
            OUI_NON
        )));
        assert!(!ok(read_one(text_v("Non."), OUI_NON)));
        assert!(matches!(
            read_one(ChampValue::YesNo(None), OUI_NON),
            Parsed::Empty
        ));
        assert!(bad(read_one(text_v("peut-être"), OUI_NON)).contains("ni « oui »"));
    }

    #[test]
    fn territory_entries_keep_parentheses_whole() {
        assert_eq!(
            split_entries("Paris (75), Hauts-de-Seine (92)"),
            ["Paris (75)", "Hauts-de-Seine (92)"]
        );
        assert_eq!(
            split_entries("Finistère nord (pays de Brest et de Morlaix) ; 22"),
            ["Finistère nord (pays de Brest et de Morlaix)", "22"]
        );
        assert_eq!(split_entries("- 44\n- 49\n"), ["44", "49"]);
        let lieux = ok(read_one(
            ChampValue::Departement(Some(code_name_cn("971", "Guadeloupe"))),
            DEPARTEMENTS,
        ));
        assert_eq!(lieux, [Lieu::Saisie("971 - Guadeloupe".into())]);
        let lieux = ok(read_one(
            ChampValue::Commune {
                commune: Some(code_name_cn("29019", "Brest")),
                departement: None,
            },
            DEPARTEMENTS,
        ));
        assert_eq!(
            lieux,
            [Lieu::Commune {
                nom: "Brest".into(),
                departement: Some("29".into())
            }]
        );
        assert!(matches!(
            read_one(ChampValue::MultipleDropDown(vec![]), DEPARTEMENTS),
            Parsed::Empty
        ));
        assert!(
            bad(read_one(
                ChampValue::Integer(Some("75".into())),
                DEPARTEMENTS
            ))
            .contains("nombre entier")
        );
    }

    fn code_name_cn(code: &str, name: &str) -> CodeName {
        CodeName {
            code: code.into(),
            name: name.into(),
        }
    }

    #[test]
    fn communes_give_their_departement_never_a_postal_code() {
        assert_eq!(departement_of_commune("29019").as_deref(), Some("29"));
        assert_eq!(departement_of_commune("2A004").as_deref(), Some("2A"));
        assert_eq!(departement_of_commune("2b033").as_deref(), Some("2B"));
        assert_eq!(departement_of_commune("97105").as_deref(), Some("971"));
        assert_eq!(departement_of_commune("2900"), None);
        let s = ok(read_one(
            ChampValue::Address {
                label: Some("12 rue de Siam 29200 Brest".into()),
                city_code: Some("29019".into()),
                departement: None,
            },
            SIEGE,
        ));
        assert_eq!(s.departement.as_deref(), Some("29"));
        // A text keeps its words; the rule reads a département out of it, not a postal code.
        let s = ok(read_one(text_v("12 rue de Siam 29200 Brest"), SIEGE));
        assert_eq!(s.departement, None);
    }

    #[test]
    fn associations_from_rna_siret_and_text() {
        let a = ok(read_one(
            ChampValue::Rna(Some(Rna {
                id: "W751000001".into(),
                title: Some("ESS".into()),
                departement_code: Some("75".into()),
            })),
            ASSOCIATION,
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
            ASSOCIATION,
        ));
        assert_eq!(a.forme_juridique_code.as_deref(), Some("9220"));
        assert_eq!(a.departement_siege.as_deref(), Some("2A"));
        for written in [
            "w751000001",
            "RNA : W751000001",
            "W751000001 (préfecture de Paris)",
            "W 751 000 001",
            "w751-000-001",
            "N° RNA W751.000.001",
        ] {
            assert_eq!(
                ok(read_one(text_v(written), ASSOCIATION)).rna.as_deref(),
                Some("W751000001"),
                "{written}"
            );
        }
        assert_eq!(
            ok(read_one(text_v("732 829 320 00074"), ASSOCIATION))
                .siret
                .as_deref(),
            Some("73282932000074")
        );
        assert!(
            ok(read_one(text_v("TJ Strasbourg vol. 12"), ASSOCIATION))
                .registre
                .is_some()
        );
        assert!(matches!(
            read_one(ChampValue::Rna(None), ASSOCIATION),
            Parsed::Empty
        ));
        assert!(bad(read_one(ChampValue::Checkbox(true), ASSOCIATION)).contains("RNA ou SIRET"));
    }

    #[test]
    fn voices_in_their_many_forms() {
        let cell = |v: ChampValue| champ("V", v);
        let dd = |s: &str| ChampValue::DropDown(Some(s.into()));
        for (v, label, expected) in [
            (dd("Délibérative"), "Voix", Voix::Deliberative),
            (dd("Voix délibérative"), "Voix", Voix::Deliberative),
            (dd("Consultative"), "Voix", Voix::Consultative),
            (dd("Voix consultative"), "Voix", Voix::Consultative),
            (dd("à titre consultatif"), "Voix", Voix::Consultative),
            (dd("Non votant"), "Statut", Voix::Consultative),
            (dd("Votant"), "Statut", Voix::Deliberative),
            (
                ChampValue::YesNo(Some(true)),
                "Membre votant",
                Voix::Deliberative,
            ),
            (
                ChampValue::YesNo(Some(false)),
                "Membre votant",
                Voix::Consultative,
            ),
            (
                ChampValue::Checkbox(true),
                "Voix consultative",
                Voix::Consultative,
            ),
            (
                ChampValue::Checkbox(false),
                "Voix consultative",
                Voix::Deliberative,
            ),
            (dd("Oui"), "Droit de vote", Voix::Deliberative),
            (dd("Non"), "Droit de vote", Voix::Consultative),
            (ChampValue::DropDown(None), "Voix", Voix::NonPrecisee),
            (dd("peut-être"), "Voix", Voix::Illisible("peut-être".into())),
        ] {
            assert_eq!(
                voix_of(&cell(v.clone()), label),
                expected,
                "{v:?} under {label}"
            );
        }
    }

    #[test]
    fn repetitions_are_read_by_their_mapped_columns() {
        let m = li_mapping();
        let g = &m.fields["gouvernance"];
        let rows = gouvernance_rows(&[
            ("Dr Martin", "Médecin spécialiste libéral", "Délibérative"),
            ("CPTS Ouest", "CPTS (voix consultative)", ""),
        ]);
        let c = champ("Gouvernance prévue", rows);
        let Gouvernance::Membres(membres) = ok((GOUVERNANCE.read)(&c, g)) else {
            panic!()
        };
        assert_eq!(membres.len(), 2);
        assert_eq!(membres[0].nom.as_deref(), Some("Dr Martin"));
        assert_eq!(membres[0].voix, Voix::Deliberative);
        assert_eq!(membres[1].voix, Voix::NonPrecisee);
        assert!(says_consultative(&membres[1].reste));
        // An empty repetition is empty; a text is a text.
        assert!(matches!(
            (GOUVERNANCE.read)(&champ("G", ChampValue::Repetition(vec![])), g),
            Parsed::Empty
        ));
        let p = &m.fields["porteurs"];
        let Porteurs::Lignes(lignes) = ok((PORTEURS.read)(&li_porteurs_champ(), p)) else {
            panic!()
        };
        assert_eq!(lignes[0].rpps.as_deref(), Some("10003456789"));
        assert!(matches!(
            ok(read_one(text_v("Dr A, Dr B"), PORTEURS)),
            Porteurs::Texte(_)
        ));
    }

    #[test]
    fn choices_know_whether_they_are_structured() {
        let mut m = plain_champ("multiple_drop_down_list");
        m.options = vec!["CPTS".into(), "DAC".into()];
        let c = champ("C", ChampValue::MultipleDropDown(vec!["CPTS".into()]));
        let v = ok((CHOICES.read)(&c, &m));
        assert!(v.structured);
        assert_eq!(v.offered, ["CPTS", "DAC"]);
        let v = ok(read_one(
            text_v("- CPTS du Pays de Brest\n- DAC 29 ; GHT"),
            CHOICES,
        ));
        assert!(!v.structured);
        assert_eq!(v.items, ["CPTS du Pays de Brest", "DAC 29", "GHT"]);
    }

    #[test]
    fn files_and_text() {
        assert!(matches!(
            read_one(ChampValue::PieceJustificative(vec![]), FICHIERS),
            Parsed::Empty
        ));
        let f = File {
            filename: "plan.pdf".into(),
            content_type: "application/pdf".into(),
            byte_size: Some(10),
            url: None,
        };
        assert_eq!(
            ok(read_one(ChampValue::PieceJustificative(vec![f]), FICHIERS)),
            ["plan.pdf"]
        );
        assert_eq!(
            ok(read_one(
                ChampValue::MultipleDropDown(vec!["a".into(), "b".into()]),
                TEXT
            )),
            "a ; b"
        );
        assert!(matches!(read_one(text_v("   "), TEXT), Parsed::Empty));
        assert!(
            bad(read_one(
                ChampValue::Other {
                    typename: "CarteChamp".into()
                },
                TEXT
            ))
            .contains("non lu")
        );
    }
}
