//! Reference tables the rules compare dossiers with: specialties, départements and régions, the
//! registry of known ESS and, optionally, the demography of libéral specialists.
//!
//! The tables are ours (config/reference/, format in its README.md) and built into the binary;
//! a path configured in `[reference]` replaces a table. Parsing works on text so that it stays
//! pure and testable; [`ReferenceData::load`] is the one place that reads files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::text::normalize;

/// Reference data files (`[reference]` in the configuration); `None` means the table built
/// into the binary (config/reference/).
#[derive(Debug, Clone, Default)]
pub struct ReferenceSettings {
    pub specialites: Option<PathBuf>,
    pub ess_existantes: Option<PathBuf>,
    pub demographie: Option<PathBuf>,
}

/// Built-in specialty groups (config/reference/specialites.csv).
pub const SPECIALITES_CSV: &str = include_str!("../../config/reference/specialites.csv");
/// Built-in départements, COG 2024 (config/reference/departements.csv).
pub const DEPARTEMENTS_CSV: &str = include_str!("../../config/reference/departements.csv");
/// Built-in régions, COG 2024 (config/reference/regions.csv).
pub const REGIONS_CSV: &str = include_str!("../../config/reference/regions.csv");
/// Built-in registry of known ESS: a header only (config/reference/ess.csv).
pub const ESS_CSV: &str = include_str!("../../config/reference/ess.csv");
/// Year of the INSEE geographic code the built-in territory tables follow, stated in reports.
pub const COG_YEAR: u16 = 2024;

/// Why a reference table could not be used; names the file and the line so that an operator can
/// fix it.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The configured file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The configured path.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content is not the documented format.
    #[error("{table}, line {line}: {message}")]
    Format {
        /// Which table (file name).
        table: &'static str,
        /// 1-based line of the file.
        line: usize,
        /// What is wrong there.
        message: String,
    },
}

/// One specialty as an ESS is built on it: a group of RPPS codes under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialtyGroup {
    /// Stable identifier (`cardiologie`), the key other tables and the store use.
    pub id: String,
    /// Canonical French name, shown in reports.
    pub libelle: String,
    /// TRE_R38 codes (`SM04`…).
    pub codes: Vec<String>,
    /// Other accepted names, as written in the table.
    pub aliases: Vec<String>,
    /// General practice: an ESS cannot be built on it (LI-SPEC-01).
    pub exclue: bool,
    /// `libelle` then `aliases`, folded by [`normalize`] once at load: LI-SPEC-02 looks for
    /// each of them in every perimeter it reads.
    folded_names: Vec<String>,
}

impl SpecialtyGroup {
    /// The canonical name and the aliases, folded by [`normalize`] (ready for
    /// [`super::text::contains_words`]).
    pub fn folded_names(&self) -> &[String] {
        &self.folded_names
    }
}

/// A département of the INSEE geographic code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departement {
    /// INSEE code, a string: `01`, `2A`, `971`.
    pub code: String,
    /// Name with its accents, for reports.
    pub nom: String,
    /// Code of its région.
    pub region: String,
    /// Competent health-insurance fund for a seat in this département (LI-CAISSE-01).
    pub caisse: String,
}

/// A région of the INSEE geographic code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// INSEE code, a string: `01`, `84`.
    pub code: String,
    /// Name with its accents, for reports.
    pub nom: String,
}

/// An ESS already in place, from the registry file (LI-TERR-02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredEss {
    /// Quoted in LI-TERR-02 findings.
    pub nom: String,
    /// Specialty group identifier.
    pub groupe: String,
    pub departements: Vec<String>,
}

/// Libéral specialists per département and specialty group, for one year (LI-ADH-02).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Demography {
    /// Year of the counts, stated in reports.
    pub annee: u16,
    /// (group id, département code) → headcount.
    pub effectifs: BTreeMap<(String, String), u64>,
    /// Rows skipped because no specialty group recognised their profession.
    pub skipped_rows: usize,
}

impl Demography {
    /// Headcount of a group over several départements; `None` when one of them has no figure,
    /// so that a partial sum is never compared with a whole territory.
    pub fn total(&self, groupe: &str, departements: &[String]) -> Option<u64> {
        departements.iter().try_fold(0u64, |acc, d| {
            self.effectifs
                .get(&(groupe.to_owned(), d.clone()))
                .map(|n| acc.saturating_add(*n))
        })
    }
}

/// Texts of the reference tables; `None` takes the built-in table.
#[derive(Debug, Clone, Default)]
pub struct ReferenceSources {
    /// `specialites.csv` format.
    pub specialites: Option<String>,
    /// `departements.csv` format.
    pub departements: Option<String>,
    /// `regions.csv` format.
    pub regions: Option<String>,
    /// `ess.csv` format.
    pub ess: Option<String>,
    /// Demography format; `None` means no demography (there is no built-in table).
    pub demographie: Option<String>,
}

/// Every reference table, parsed and indexed.
#[derive(Debug, Clone)]
pub struct ReferenceData {
    specialites: Vec<SpecialtyGroup>,
    by_name: BTreeMap<String, usize>,
    by_code: BTreeMap<String, usize>,
    departements: BTreeMap<String, Departement>,
    departements_by_name: BTreeMap<String, String>,
    regions: BTreeMap<String, Region>,
    regions_by_name: BTreeMap<String, String>,
    /// Folded names of départements and régions (and without their article: "reunion"), for
    /// reading a territory written in words.
    places: BTreeMap<String, Place>,
    /// Most words in one of those names.
    place_words: usize,
    ess: Vec<RegisteredEss>,
    demographie: Option<Demography>,
}

impl ReferenceData {
    /// The tables built into the binary, without demography.
    pub fn builtin() -> Self {
        Self::from_sources(&ReferenceSources::default())
            .expect("the built-in reference tables are valid (tested)")
    }

    /// Parses the given texts, taking the built-in table for each one left `None`.
    ///
    /// # Errors
    /// [`ReferenceError::Format`] on the first malformed line.
    pub fn from_sources(src: &ReferenceSources) -> Result<Self, ReferenceError> {
        let specialites = parse_specialites(src.specialites.as_deref().unwrap_or(SPECIALITES_CSV))?;
        let regions = parse_regions(src.regions.as_deref().unwrap_or(REGIONS_CSV))?;
        let departements = parse_departements(
            src.departements.as_deref().unwrap_or(DEPARTEMENTS_CSV),
            &regions,
        )?;
        let mut data = Self {
            by_name: BTreeMap::new(),
            by_code: BTreeMap::new(),
            departements_by_name: departements
                .values()
                .map(|d| (normalize(&d.nom), d.code.clone()))
                .collect(),
            regions_by_name: regions
                .values()
                .map(|r| (normalize(&r.nom), r.code.clone()))
                .collect(),
            places: BTreeMap::new(),
            place_words: 1,
            specialites,
            departements,
            regions,
            ess: Vec::new(),
            demographie: None,
        };
        for (i, g) in data.specialites.iter().enumerate() {
            data.by_name.insert(normalize(&g.id), i);
            data.by_name.insert(normalize(&g.libelle), i);
            for a in &g.aliases {
                data.by_name.insert(normalize(a), i);
            }
            for c in &g.codes {
                data.by_code.insert(c.clone(), i);
            }
        }
        let names = data
            .regions
            .values()
            .map(|r| (normalize(&r.nom), Place::Region(r.code.clone())))
            .chain(
                data.departements
                    .values()
                    .map(|d| (normalize(&d.nom), Place::Departement(d.code.clone()))),
            );
        for (name, place) in names {
            for article in ["la ", "le ", "les ", "l "] {
                if let Some(bare) = name.strip_prefix(article) {
                    data.places.entry(bare.to_owned()).or_insert(place.clone());
                }
            }
            data.place_words = data.place_words.max(name.split(' ').count());
            // A département named like its région (La Réunion, Guadeloupe…) reads as the
            // département: the same territory.
            data.places.insert(name, place);
        }
        data.ess = parse_ess(src.ess.as_deref().unwrap_or(ESS_CSV), &data)?;
        if let Some(text) = src.demographie.as_deref() {
            data.demographie = Some(parse_demographie(text, &data)?);
        }
        Ok(data)
    }

    /// Reads the files configured in `[reference]` (the built-in table for each one not set) and
    /// parses them. The only function of the rulebook that touches the file system.
    ///
    /// # Errors
    /// [`ReferenceError::Io`] when a configured file cannot be read, [`ReferenceError::Format`]
    /// when its content is malformed.
    pub fn load(settings: &ReferenceSettings) -> Result<Self, ReferenceError> {
        fn read(path: Option<&PathBuf>) -> Result<Option<String>, ReferenceError> {
            path.map(|p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|source| ReferenceError::Io {
                    path: p.clone(),
                    source,
                })
            })
            .transpose()
        }
        Self::from_sources(&ReferenceSources {
            specialites: read(settings.specialites.as_ref())?,
            ess: read(settings.ess_existantes.as_ref())?,
            demographie: read(settings.demographie.as_ref())?,
            departements: None,
            regions: None,
        })
    }

    /// Every specialty group, in table order.
    pub fn specialites(&self) -> &[SpecialtyGroup] {
        &self.specialites
    }

    /// The group with this identifier.
    pub fn specialite(&self, id: &str) -> Option<&SpecialtyGroup> {
        self.specialites.iter().find(|g| g.id == id)
    }

    /// The group a specialty name (as a form or an applicant words it) or an `SMxx` code
    /// belongs to. Tolerant: case, accents and punctuation are ignored, and a name made of a
    /// known name followed by more words ("Cardiologie et maladies vasculaires") matches the
    /// longest known name it starts with.
    pub fn match_specialite(&self, name: &str) -> Option<&SpecialtyGroup> {
        let trimmed = name.trim();
        let code = trimmed.to_ascii_uppercase();
        if let Some(i) = self.by_code.get(&code) {
            return Some(&self.specialites[*i]);
        }
        let mut n = normalize(trimmed);
        if let Some(stripped) = n.strip_suffix(" sm") {
            n = stripped.to_owned();
        }
        if n.is_empty() {
            return None;
        }
        if let Some(i) = self.by_name.get(&n) {
            return Some(&self.specialites[*i]);
        }
        // Initials written with dots or spaces ("O.R.L.", "o r l") read as the acronym.
        if let Some(acronym) = collapse_initials(&n)
            && let Some(i) = self.by_name.get(&acronym)
        {
            return Some(&self.specialites[*i]);
        }
        // Longest known name that is a whole-word prefix of the input: the folded text up to
        // one of its spaces, the last space first.
        n.rmatch_indices(' ')
            .find_map(|(space, _)| self.by_name.get(&n[..space]))
            .map(|i| &self.specialites[*i])
    }

    /// The specialties a text names, as an instructor reads them: "Cardiologie, pneumologie"
    /// and "Cardiologie et pneumologie" are two, "Cardiologie et maladies vasculaires" one (a
    /// known name is taken whole before the text is cut at its "et", commas, slashes…), and
    /// "Cardiologie interventionnelle" is cardiology. A part that names no specialty is
    /// returned as written, in `unknown`.
    pub fn specialites_in(&self, text: &str) -> SpecialtyMatch<'_> {
        let parts = cut_at_separators(text);
        let mut out = SpecialtyMatch::default();
        let mut i = 0;
        while i < parts.len() {
            // The longest run of parts that is exactly a known name; a single part may be a
            // known name followed by more words.
            let mut matched = None;
            for j in (i + 1..parts.len()).rev() {
                let joined = normalize(&text[parts[i].0..parts[j].1]);
                if let Some(g) = self.by_name.get(&joined) {
                    matched = Some((j, &self.specialites[*g]));
                    break;
                }
            }
            let part = &text[parts[i].0..parts[i].1];
            let (end, group) = match matched {
                Some((j, g)) => (j, Some(g)),
                None => (i, self.match_specialite(part)),
            };
            match group {
                Some(g) if !out.groups.iter().any(|x| x.id == g.id) => out.groups.push(g),
                Some(_) => {}
                None if !is_filler(&normalize(part)) => out.unknown.push(part.trim().to_owned()),
                None => {}
            }
            i = end + 1;
        }
        out
    }

    /// The first specialty whose name a folded text contains as words ("médecin cardiologue
    /// libéral" names cardiology), general practice included.
    pub fn specialite_named_in(&self, folded: &str) -> Option<&SpecialtyGroup> {
        self.specialites.iter().find(|g| {
            g.folded_names()
                .iter()
                .any(|name| super::text::contains_words(folded, name))
        })
    }

    /// The départements and régions a territory entry names, read as people write them: codes
    /// (`75`, `2A`, `971`), names (`Paris`, `Hauts-de-Seine`, `Région Bretagne`), both (`75 –
    /// Paris`, `Paris (75)`), several joined by "et"; with the words left over, split into
    /// those that limit a département (`nord`, `communes de`, `pays de`) and the others.
    pub fn places_in(&self, entry: &str) -> Places {
        let folded = normalize(entry);
        let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        let mut out = Places::default();
        let mut i = 0;
        while i < words.len() {
            let longest = (1..=self.place_words.min(words.len() - i))
                .rev()
                .find_map(|n| {
                    let name = words[i..i + n].join(" ");
                    self.places.get(&name).map(|p| (n, p))
                });
            // "Finistère nord": after another département, "nord" is a direction, not the Nord
            // ("59 - Nord" names it twice).
            let direction = words[i] == "nord"
                && matches!(longest, Some((1, Place::Departement(c))) if !out.departements.contains(c))
                && !out.departements.is_empty();
            if let Some((n, place)) = longest.filter(|_| !direction) {
                match place {
                    Place::Departement(c) => push_unique(&mut out.departements, c),
                    Place::Region(c) => push_unique(&mut out.regions, c),
                }
                i += n;
                continue;
            }
            let w = words[i];
            if let Some(code) = canonical_departement_code(w)
                && self.departements.contains_key(&code)
            {
                push_unique(&mut out.departements, &code);
            } else if PARTIAL_WORDS.contains(&w) {
                out.partial_words.push(w.to_owned());
            } else if !PLACE_FILLERS.contains(&w) {
                out.other_words.push(w.to_owned());
            }
            i += 1;
        }
        out
    }

    /// Every département, by code.
    pub fn departements(&self) -> impl Iterator<Item = &Departement> {
        self.departements.values()
    }

    /// The département with this INSEE code (`01`, `2A`, `971`).
    pub fn departement(&self, code: &str) -> Option<&Departement> {
        self.departements.get(code)
    }

    /// A département from what a form holds: a code (`75`, `2a`, `1`), `75 - Paris`, or a name.
    pub fn resolve_departement(&self, saisie: &str) -> Option<&Departement> {
        let s = saisie.trim();
        let head = s.split(" - ").next().unwrap_or(s).trim();
        if let Some(code) = canonical_departement_code(head)
            && let Some(d) = self.departements.get(&code)
        {
            return Some(d);
        }
        self.departements_by_name
            .get(&normalize(s))
            .and_then(|c| self.departements.get(c))
    }

    /// Every région, by code.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    /// The région with this INSEE code.
    pub fn region(&self, code: &str) -> Option<&Region> {
        self.regions.get(code)
    }

    /// A région from a code, `84 - Auvergne-Rhône-Alpes`, or a name.
    pub fn resolve_region(&self, saisie: &str) -> Option<&Region> {
        let s = saisie.trim();
        let head = s.split(" - ").next().unwrap_or(s).trim();
        if let Some(r) = self.regions.get(head) {
            return Some(r);
        }
        if head.len() == 1
            && let Some(r) = self.regions.get(&format!("0{head}"))
        {
            return Some(r);
        }
        if let Some(r) = self
            .regions_by_name
            .get(&normalize(s))
            .and_then(|c| self.regions.get(c))
        {
            return Some(r);
        }
        // "Région Centre-Val de Loire", "la région Bretagne": one région named in words.
        let p = self.places_in(s);
        match (p.regions.as_slice(), p.departements.is_empty()) {
            ([one], true) => self.regions.get(one),
            _ => None,
        }
    }

    /// Codes of the départements of a région, sorted.
    pub fn departements_of_region(&self, region: &str) -> Vec<String> {
        self.departements
            .values()
            .filter(|d| d.region == region)
            .map(|d| d.code.clone())
            .collect()
    }

    /// Known ESS of the registry.
    pub fn ess(&self) -> &[RegisteredEss] {
        &self.ess
    }

    /// The demography table, when one is configured.
    pub fn demographie(&self) -> Option<&Demography> {
        self.demographie.as_ref()
    }
}

/// A département or a région, by code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Departement(String),
    Region(String),
}

/// What [`ReferenceData::places_in`] read in one territory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    /// Codes of the départements named, in order.
    pub departements: Vec<String>,
    /// Codes of the régions named, in order.
    pub regions: Vec<String>,
    /// Words that make the entry part of a département ("nord", "communes", "pays").
    pub partial_words: Vec<String>,
    /// Words that are neither a place, nor a connective, nor a limit ("Brest").
    pub other_words: Vec<String>,
}

/// What [`ReferenceData::specialites_in`] read in one text.
#[derive(Debug, Clone, Default)]
pub struct SpecialtyMatch<'a> {
    /// The specialty groups named, in order, each once.
    pub groups: Vec<&'a SpecialtyGroup>,
    /// The parts that name no known specialty, as written.
    pub unknown: Vec<String>,
}

/// Folded words that limit a territory to part of a département.
const PARTIAL_WORDS: &[&str] = &[
    "partie",
    "partiel",
    "partielle",
    "partiellement",
    "sauf",
    "hors",
    "excepte",
    "exception",
    "uniquement",
    "seulement",
    "arrondissement",
    "arrondissements",
    "canton",
    "cantons",
    "commune",
    "communes",
    "bassin",
    "bassins",
    "secteur",
    "secteurs",
    "agglomeration",
    "metropole",
    "pays",
    "communaute",
    "communautes",
    "epci",
    "ville",
    "villes",
    "quartier",
    "quartiers",
    "littoral",
    "nord",
    "sud",
    "est",
    "ouest",
    "centre",
    "septentrional",
    "meridional",
];

/// Folded words a territory entry may hold besides places without changing what it says.
const PLACE_FILLERS: &[&str] = &[
    "departement",
    "departements",
    "dept",
    "dpt",
    "dep",
    "du",
    "de",
    "des",
    "d",
    "la",
    "le",
    "les",
    "l",
    "et",
    "ou",
    "en",
    "entier",
    "entiers",
    "entiere",
    "entieres",
    "totalite",
    "integralite",
    "tout",
    "toute",
    "tous",
    "toutes",
    "ensemble",
    "territoire",
    "region",
    "regions",
    "n",
    "no",
    "numero",
    "code",
    "insee",
    "soit",
    "a",
    "au",
    "aux",
    "y",
    "compris",
    "inclus",
    "collectivite",
    "unique",
    "ess",
    "couvert",
    "couverts",
    "concerne",
    "concernes",
];

/// Connective words a specialty text may hold between names.
fn is_filler(folded: &str) -> bool {
    folded.split(' ').all(|w| {
        w.is_empty()
            || matches!(
                w,
                "et" | "ou"
                    | "la"
                    | "le"
                    | "les"
                    | "l"
                    | "de"
                    | "des"
                    | "du"
                    | "d"
                    | "specialite"
                    | "specialites"
                    | "medecine"
            )
    })
}

/// The spans of a text between its separators: commas, semicolons, colons, slashes, "+", "&",
/// line breaks, and the word "et" (so that "Cardiologie et pneumologie" is two parts, which
/// [`ReferenceData::specialites_in`] joins back when together they are one known name).
fn cut_at_separators(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        let len = c.len_utf8();
        let sep_len = if matches!(c, ',' | ';' | ':' | '/' | '+' | '&' | '\n' | '\r' | '|') {
            len
        } else if text
            .get(i..i + 2)
            .is_some_and(|w| w.eq_ignore_ascii_case("et"))
            && text[..i]
                .chars()
                .next_back()
                .is_none_or(|p| !p.is_alphanumeric())
            && text[i + 2..]
                .chars()
                .next()
                .is_none_or(|n| !n.is_alphanumeric())
        {
            2
        } else {
            0
        };
        if sep_len > 0 {
            if !text[start..i].trim().is_empty() {
                spans.push((start, i));
            }
            start = i + sep_len;
            i += sep_len;
        } else {
            i += len;
        }
    }
    if !text[start..].trim().is_empty() {
        spans.push((start, text.len()));
    }
    spans
}

/// "o r l" → "orl": initials written apart read as one word; `None` when the folded text is
/// not made of single letters only.
fn collapse_initials(folded: &str) -> Option<String> {
    let letters: Vec<&str> = folded.split(' ').collect();
    (letters.len() > 1 && letters.iter().all(|w| w.len() == 1)).then(|| letters.concat())
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

/// Puts a département code in its INSEE form: `1` → `01`, `2a` → `2A`; `None` when it cannot
/// be one (no check that it exists).
pub fn canonical_departement_code(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_uppercase();
    match s.len() {
        1 if s.chars().all(|c| c.is_ascii_digit()) => Some(format!("0{s}")),
        2 if s == "2A" || s == "2B" || s.chars().all(|c| c.is_ascii_digit()) => Some(s),
        3 if s.chars().all(|c| c.is_ascii_digit()) => Some(s),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// One parsed table: its header and its rows with the 1-based line number of each.
struct Table {
    name: &'static str,
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn parse(name: &'static str, text: &str) -> Result<Self, ReferenceError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header_line)) = lines.next() else {
            return Err(ReferenceError::Format {
                table: name,
                line: 1,
                message: "empty file: a header line is required".into(),
            });
        };
        let delimiter = if header_line.contains(';') && !header_line.contains(',') {
            ';'
        } else {
            ','
        };
        let header: Vec<String> = split_csv_line(header_line, delimiter)
            .map_err(|message| ReferenceError::Format {
                table: name,
                line: 1,
                message,
            })?
            .into_iter()
            .map(|h| h.trim().to_lowercase())
            .collect();
        let mut rows = Vec::new();
        for (i, line) in lines {
            let fields =
                split_csv_line(line, delimiter).map_err(|message| ReferenceError::Format {
                    table: name,
                    line: i + 1,
                    message,
                })?;
            if fields.len() != header.len() {
                return Err(ReferenceError::Format {
                    table: name,
                    line: i + 1,
                    message: format!(
                        "{} fields where the header has {}",
                        fields.len(),
                        header.len()
                    ),
                });
            }
            rows.push((i + 1, fields));
        }
        Ok(Self { name, header, rows })
    }

    fn column(&self, names: &[&str]) -> Result<usize, ReferenceError> {
        names
            .iter()
            .find_map(|n| self.header.iter().position(|h| h == n))
            .ok_or_else(|| ReferenceError::Format {
                table: self.name,
                line: 1,
                message: format!("missing column `{}`", names[0]),
            })
    }

    fn err(&self, line: usize, message: impl Into<String>) -> ReferenceError {
        ReferenceError::Format {
            table: self.name,
            line,
            message: message.into(),
        }
    }
}

/// Splits one CSV line; fields may be quoted with `"`, a doubled quote standing for one.
fn split_csv_line(line: &str, delimiter: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.trim().is_empty() && !was_quoted {
            field.clear();
            quoted = true;
            was_quoted = true;
        } else if c == delimiter {
            out.push(std::mem::take(&mut field));
            was_quoted = false;
        } else if c == '\r' {
        } else {
            field.push(c);
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(field);
    Ok(out)
}

fn parse_specialites(text: &str) -> Result<Vec<SpecialtyGroup>, ReferenceError> {
    let t = Table::parse("specialites.csv", text)?;
    let (gi, li, ci, ai, ei) = (
        t.column(&["groupe"])?,
        t.column(&["libelle"])?,
        t.column(&["codes"])?,
        t.column(&["alias"])?,
        t.column(&["exclue"])?,
    );
    let mut seen_ids = BTreeSet::new();
    let mut seen_codes = BTreeSet::new();
    let mut out = Vec::new();
    for (line, r) in &t.rows {
        let id = r[gi].trim().to_owned();
        if id.is_empty() || !seen_ids.insert(id.clone()) {
            return Err(t.err(*line, format!("empty or repeated group `{id}`")));
        }
        let codes: Vec<String> = r[ci]
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        if codes.is_empty() {
            return Err(t.err(*line, format!("group `{id}` has no code")));
        }
        for c in &codes {
            if !seen_codes.insert(c.clone()) {
                return Err(t.err(*line, format!("code {c} is in two groups")));
            }
        }
        let exclue = match r[ei].trim().to_lowercase().as_str() {
            "oui" | "yes" | "true" => true,
            "non" | "no" | "false" | "" => false,
            other => {
                return Err(t.err(*line, format!("`exclue` must be oui or non, not `{other}`")));
            }
        };
        let libelle = r[li].trim().to_owned();
        let aliases: Vec<String> = r[ai]
            .split('|')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let folded_names = std::iter::once(&libelle)
            .chain(&aliases)
            .map(|name| normalize(name))
            .collect();
        out.push(SpecialtyGroup {
            id,
            libelle,
            codes,
            aliases,
            exclue,
            folded_names,
        });
    }
    Ok(out)
}

fn parse_regions(text: &str) -> Result<BTreeMap<String, Region>, ReferenceError> {
    let t = Table::parse("regions.csv", text)?;
    let (ci, ni) = (t.column(&["code"])?, t.column(&["nom"])?);
    let mut out = BTreeMap::new();
    for (line, r) in &t.rows {
        let code = r[ci].trim().to_owned();
        if code.is_empty() || out.contains_key(&code) {
            return Err(t.err(*line, format!("empty or repeated région code `{code}`")));
        }
        out.insert(
            code.clone(),
            Region {
                code,
                nom: r[ni].trim().to_owned(),
            },
        );
    }
    Ok(out)
}

fn parse_departements(
    text: &str,
    regions: &BTreeMap<String, Region>,
) -> Result<BTreeMap<String, Departement>, ReferenceError> {
    let t = Table::parse("departements.csv", text)?;
    let (ci, ni, ri, ki) = (
        t.column(&["code"])?,
        t.column(&["nom"])?,
        t.column(&["region"])?,
        t.column(&["caisse"])?,
    );
    let mut out = BTreeMap::new();
    for (line, r) in &t.rows {
        let code = r[ci].trim().to_owned();
        if canonical_departement_code(&code).as_deref() != Some(code.as_str())
            || out.contains_key(&code)
        {
            return Err(t.err(
                *line,
                format!("invalid or repeated département code `{code}`"),
            ));
        }
        let region = r[ri].trim().to_owned();
        if !regions.contains_key(&region) {
            return Err(t.err(*line, format!("unknown région `{region}`")));
        }
        out.insert(
            code.clone(),
            Departement {
                code,
                nom: r[ni].trim().to_owned(),
                region,
                caisse: r[ki].trim().to_owned(),
            },
        );
    }
    Ok(out)
}

fn parse_ess(text: &str, data: &ReferenceData) -> Result<Vec<RegisteredEss>, ReferenceError> {
    let t = Table::parse("ess.csv", text)?;
    let (si, di, ni) = (
        t.column(&["specialite"])?,
        t.column(&["departements"])?,
        t.column(&["nom"])?,
    );
    let mut out = Vec::new();
    for (line, r) in &t.rows {
        let groupe = data
            .specialite(r[si].trim())
            .or_else(|| data.match_specialite(&r[si]))
            .ok_or_else(|| t.err(*line, format!("unknown specialty `{}`", r[si].trim())))?
            .id
            .clone();
        let mut departements = Vec::new();
        for code in r[di]
            .split(|c: char| c == ';' || c.is_whitespace())
            .filter(|c| !c.is_empty())
        {
            let d = data
                .resolve_departement(code)
                .ok_or_else(|| t.err(*line, format!("unknown département `{code}`")))?;
            departements.push(d.code.clone());
        }
        if departements.is_empty() {
            return Err(t.err(*line, "no département"));
        }
        out.push(RegisteredEss {
            nom: r[ni].trim().to_owned(),
            groupe,
            departements,
        });
    }
    Ok(out)
}

fn parse_demographie(text: &str, data: &ReferenceData) -> Result<Demography, ReferenceError> {
    let t = Table::parse("demographie", text)?;
    let (yi, di, si, ei) = (
        t.column(&["annee"])?,
        t.column(&["departement"])?,
        t.column(&["specialite", "profession_sante"])?,
        t.column(&["effectif"])?,
    );
    let totals_only = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| t.header.iter().position(|h| h == n))
    };
    let age = totals_only(&["libelle_classe_age"]);
    let sexe = totals_only(&["libelle_sexe"]);
    let mut by_year: BTreeMap<u16, BTreeMap<(String, String), u64>> = BTreeMap::new();
    let mut skipped = 0;
    for (line, r) in &t.rows {
        if [age, sexe]
            .into_iter()
            .flatten()
            .any(|i| !normalize(&r[i]).starts_with("tout"))
        {
            continue;
        }
        let annee: u16 = r[yi]
            .trim()
            .parse()
            .map_err(|_| t.err(*line, format!("`annee` is not a year: `{}`", r[yi].trim())))?;
        let Some(groupe) = data
            .specialite(r[si].trim())
            .or_else(|| data.match_specialite(&r[si]))
        else {
            skipped += 1;
            continue;
        };
        let Some(dep) = data.resolve_departement(&r[di]) else {
            // Totals (France entière, région rows) have no département: skip them too.
            skipped += 1;
            continue;
        };
        let effectif: u64 = r[ei]
            .trim()
            .replace(['\u{a0}', '\u{202f}', ' '], "")
            .parse()
            .map_err(|_| {
                t.err(
                    *line,
                    format!("`effectif` is not a count: `{}`", r[ei].trim()),
                )
            })?;
        let slot = by_year
            .entry(annee)
            .or_default()
            .entry((groupe.id.clone(), dep.code.clone()))
            .or_default();
        *slot = slot.saturating_add(effectif);
    }
    let Some((annee, effectifs)) = by_year.pop_last() else {
        return Err(t.err(1, "no usable row"));
    };
    Ok(Demography {
        annee,
        effectifs,
        skipped_rows: skipped,
    })
}

/// Where the shared INSEE/ANS exports live relative to the crate, for the cross-check tests.
#[cfg(test)]
fn shared_ref(name: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("ref")
        .join(name);
    std::fs::read_to_string(&path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_tables_parse() {
        let r = ReferenceData::builtin();
        assert_eq!(r.departements().count(), 101);
        assert_eq!(r.regions().count(), 18);
        assert!(r.ess().is_empty());
        assert!(r.demographie().is_none());
    }

    #[test]
    fn every_sm_code_is_in_exactly_one_group() {
        let r = ReferenceData::builtin();
        let mut all: Vec<&String> = r.specialites().iter().flat_map(|g| &g.codes).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a code is in two groups");
        for i in 1..=95 {
            let code = format!("SM{i:02}");
            assert!(r.match_specialite(&code).is_some(), "{code} has no group");
        }
        assert_eq!(n, 95);
    }

    #[test]
    fn general_practice_is_the_only_excluded_group() {
        let r = ReferenceData::builtin();
        let excluded: Vec<&str> = r
            .specialites()
            .iter()
            .filter(|g| g.exclue)
            .map(|g| g.id.as_str())
            .collect();
        assert_eq!(excluded, ["medecine-generale"]);
        let g = r.specialite("medecine-generale").unwrap();
        assert_eq!(g.codes, ["SM26", "SM53", "SM54"]);
    }

    #[test]
    fn specialty_names_match_tolerantly() {
        let r = ReferenceData::builtin();
        let id = |s: &str| r.match_specialite(s).map(|g| g.id.clone());
        for (name, group) in [
            ("Cardiologie", "cardiologie"),
            ("cardiologie", "cardiologie"),
            ("CARDIOLOGIE ET MALADIES VASCULAIRES", "cardiologie"),
            ("Cardiologie et Maladies vasculaires (SM)", "cardiologie"),
            ("Médecine cardiovasculaire", "cardiologie"),
            ("Medecine cardio-vasculaire", "cardiologie"),
            (
                "Méd cardiovasculaire opt card interventionnelle (SM)",
                "cardiologie",
            ),
            ("sm73", "cardiologie"),
            ("Endocrinologie, diabétologie, nutrition", "endocrinologie"),
            ("Dermatologie et vénéréologie", "dermatologie"),
            ("Psychiatrie de l'enfant et de l'adolescent", "psychiatrie"),
            ("Psychiatrie", "psychiatrie"),
            ("Médecine générale", "medecine-generale"),
            ("Qualifié en Médecine générale (SM)", "medecine-generale"),
            ("Oncologie radiothérapique", "radiotherapie"),
            ("Oncologie, option Onco-hématologie (SM)", "oncologie"),
            ("Hématologie, option Onco-hématologie (SM)", "hematologie"),
            ("ORL", "orl"),
            ("Pneumologie", "pneumologie"),
            ("Rhumatologie", "rhumatologie"),
        ] {
            assert_eq!(id(name).as_deref(), Some(group), "{name}");
        }
        for unknown in [
            "",
            "  ",
            "Plomberie",
            "Médecine",
            "Chirurgie",
            "SM99",
            "(SM)",
        ] {
            assert_eq!(id(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn departements_resolve_from_codes_labels_and_names() {
        let r = ReferenceData::builtin();
        let code = |s: &str| r.resolve_departement(s).map(|d| d.code.clone());
        assert_eq!(code("75").as_deref(), Some("75"));
        assert_eq!(code("75 - Paris").as_deref(), Some("75"));
        assert_eq!(code("1").as_deref(), Some("01"));
        assert_eq!(code("2a").as_deref(), Some("2A"));
        assert_eq!(code("2B - Haute-Corse").as_deref(), Some("2B"));
        assert_eq!(code("971").as_deref(), Some("971"));
        assert_eq!(code("976 - Mayotte").as_deref(), Some("976"));
        assert_eq!(code("Côtes d'Armor").as_deref(), Some("22"));
        assert_eq!(code("20"), None);
        assert_eq!(code("975"), None);
        assert_eq!(code("99"), None);
        assert_eq!(code("Paris 15e"), None);
        assert_eq!(r.departement("2A").unwrap().region, "94");
        assert_eq!(r.departements_of_region("94"), ["2A", "2B"]);
        assert_eq!(r.departements_of_region("11").len(), 8);
        assert_eq!(
            r.resolve_region("84 - Auvergne-Rhône-Alpes").unwrap().code,
            "84"
        );
        assert_eq!(r.resolve_region("ile de france").unwrap().code, "11");
        assert_eq!(r.resolve_region("1").unwrap().code, "01");
        assert!(r.resolve_region("99").is_none());
    }

    #[test]
    fn registry_and_demography_parse() {
        let src = ReferenceSources {
            ess: Some("specialite,departements,nom\ncardiologues,75 92;93,\"ESS Cardio, Paris\"\n".into()),
            demographie: Some(
                "annee;departement;specialite;effectif\n2023;75;Cardiologie;10\n2024;75;Cardiologie;400\n2024;75 - Paris;Médecine cardiovasculaire;2\n2024;92;cardiologie;1 200\n2024;75;Infirmiers;9000\n".into(),
            ),
            ..Default::default()
        };
        let r = ReferenceData::from_sources(&src).unwrap();
        assert_eq!(
            r.ess(),
            [RegisteredEss {
                nom: "ESS Cardio, Paris".into(),
                groupe: "cardiologie".into(),
                departements: vec!["75".into(), "92".into(), "93".into()],
            }]
        );
        let d = r.demographie().unwrap();
        assert_eq!(d.annee, 2024);
        assert_eq!(d.skipped_rows, 1);
        assert_eq!(d.total("cardiologie", &["75".into()]), Some(402));
        assert_eq!(
            d.total("cardiologie", &["75".into(), "92".into()]),
            Some(1602)
        );
        assert_eq!(d.total("cardiologie", &["75".into(), "93".into()]), None);
    }

    #[test]
    fn cnam_exports_keep_only_totals() {
        let src = ReferenceSources {
            demographie: Some(
                "annee;profession_sante;departement;libelle_classe_age;libelle_sexe;effectif\n\
                 2024;Cardiologues;75;Tout âge;tout sexe;400\n\
                 2024;Cardiologues;75;moins de 40 ans;tout sexe;50\n\
                 2024;Cardiologues;75;Tout âge;femmes;120\n"
                    .into(),
            ),
            ..Default::default()
        };
        let r = ReferenceData::from_sources(&src).unwrap();
        assert_eq!(
            r.demographie()
                .unwrap()
                .total("cardiologie", &["75".into()]),
            Some(400)
        );
    }

    #[test]
    fn malformed_tables_are_errors_with_their_line() {
        for (src, needle) in [
            (
                ReferenceSources {
                    ess: Some("specialite,departements,nom\nPlomberie,75,X\n".into()),
                    ..Default::default()
                },
                "ess.csv, line 2: unknown specialty",
            ),
            (
                ReferenceSources {
                    ess: Some("specialite,departements,nom\ncardiologie,99,X\n".into()),
                    ..Default::default()
                },
                "unknown département `99`",
            ),
            (
                ReferenceSources {
                    ess: Some("specialite,nom\n".into()),
                    ..Default::default()
                },
                "missing column `departements`",
            ),
            (
                ReferenceSources {
                    specialites: Some(
                        "groupe,libelle,codes,alias,exclue\na,A,SM01,,non\nb,B,SM01,,non\n".into(),
                    ),
                    ..Default::default()
                },
                "line 3: code SM01 is in two groups",
            ),
            (
                ReferenceSources {
                    demographie: Some(
                        "annee,departement,specialite,effectif\n2024,75,cardiologie,douze\n".into(),
                    ),
                    ..Default::default()
                },
                "`effectif` is not a count",
            ),
            (
                ReferenceSources {
                    demographie: Some(
                        "annee,departement,specialite,effectif\n2024,75,\"cardiologie,12\n".into(),
                    ),
                    ..Default::default()
                },
                "unterminated quoted field",
            ),
            (
                ReferenceSources {
                    demographie: Some(String::new()),
                    ..Default::default()
                },
                "empty file",
            ),
        ] {
            let err = ReferenceData::from_sources(&src).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_configured_file_that_is_missing_is_an_io_error() {
        let settings = ReferenceSettings {
            specialites: Some(PathBuf::from("/nonexistent/essbot/specialites.csv")),
            ..Default::default()
        };
        assert!(matches!(
            ReferenceData::load(&settings),
            Err(ReferenceError::Io { .. })
        ));
        assert!(ReferenceData::load(&ReferenceSettings::default()).is_ok());
    }

    /// Our territory tables against the INSEE COG export kept next to the repository.
    #[test]
    fn territory_tables_match_the_insee_export() {
        let (Some(deps), Some(regs)) = (shared_ref("departements.csv"), shared_ref("regions.csv"))
        else {
            println!("skipped: ../shared/ref/departements.csv or regions.csv is absent");
            return;
        };
        let r = ReferenceData::builtin();
        let t = Table::parse("insee departements", &deps).unwrap();
        let (ci, ri, li) = (
            t.column(&["dep"]).unwrap(),
            t.column(&["reg"]).unwrap(),
            t.column(&["libelle"]).unwrap(),
        );
        assert_eq!(t.rows.len(), r.departements().count());
        for (_, row) in &t.rows {
            let d = r
                .departement(&row[ci])
                .unwrap_or_else(|| panic!("{} missing", row[ci]));
            assert_eq!(d.region, row[ri], "{}", row[ci]);
            assert_eq!(d.nom, row[li], "{}", row[ci]);
        }
        let t = Table::parse("insee regions", &regs).unwrap();
        let (ci, li) = (t.column(&["reg"]).unwrap(), t.column(&["libelle"]).unwrap());
        assert_eq!(t.rows.len(), r.regions().count());
        for (_, row) in &t.rows {
            assert_eq!(
                r.region(&row[ci]).map(|x| x.nom.as_str()),
                Some(row[li].as_str())
            );
        }
    }

    /// Our specialty groups against the ANS TRE_R38 export: every SM code there is in a group,
    /// and every code of a group exists there.
    #[test]
    fn specialty_codes_match_the_ans_list() {
        let Some(text) = shared_ref("tre_r38_specialite_ordinale.csv") else {
            println!("skipped: ../shared/ref/tre_r38_specialite_ordinale.csv is absent");
            return;
        };
        let r = ReferenceData::builtin();
        let t = Table::parse("tre_r38", &text).unwrap();
        let (ci, li) = (
            t.column(&["code"]).unwrap(),
            t.column(&["libelle"]).unwrap(),
        );
        let ans: BTreeMap<&str, &str> = t
            .rows
            .iter()
            .filter(|(_, row)| row[ci].starts_with("SM"))
            .map(|(_, row)| (row[ci].as_str(), row[li].as_str()))
            .collect();
        for (code, libelle) in &ans {
            let g = r
                .match_specialite(code)
                .unwrap_or_else(|| panic!("{code} has no group"));
            // The official wording of each code is recognised as a name too, in the same group.
            assert_eq!(
                r.match_specialite(libelle).map(|x| &x.id),
                Some(&g.id),
                "{code} {libelle}"
            );
        }
        for g in r.specialites() {
            for c in &g.codes {
                assert!(ans.contains_key(c.as_str()), "{c} is not in TRE_R38");
            }
        }
    }
}
