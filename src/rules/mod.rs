//! The rulebook: pure pre-check of lettres d'intention and projets de santé against the
//! cahier des charges (../shared/spec/rules.md). No I/O here: reference data, the other known
//! projects and "today" come in as arguments, so every rule is unit-tested at its boundaries.
//!
//! The path of a dossier through the rulebook:
//! 1. [`fields`] defines each domain field once (the champ types that give it, how it is read,
//!    the rules that need it);
//! 2. [`mapping::resolve`] checks once, per démarche, that the configured champs (and columns
//!    of repetitions) exist and can give their field ([`ResolvedMapping`]);
//! 3. [`extract::extract_lettre`] / [`extract::extract_projet`] read a [`Dossier`]'s typed values
//!    into domain inputs where every field is a [`Read`]: a value, or why there is none;
//! 4. [`evaluate_lettre`] / [`evaluate_projet`] apply the rules and return [`Finding`]s;
//! 5. [`Report`] orders them, gives the [`Verdict`] and renders the French annotation text.
//!
//! One file per family of rules, each holding its rules and their tests, named by rule id:
//! `grep -rni 'li.terr.01' src` finds LI-TERR-01's code (`li_terr_01`) and its tests
//! (`li_terr_01_…`). The vocabularies the text-reading rules search are in [`vocab`].
//!
//! [`check`] does 3 to 5 for one dossier; [`check_batch`] for many.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ds::model::{Dossier, DossierState};

mod common;
mod contenu;
mod cooperations;
mod effectifs;
pub mod explain;
pub mod extract;
pub mod fields;
mod gouvernance;
mod indicateurs;
mod juridique;
mod lien;
pub mod mapping;
mod mission;
mod read;
pub mod reference;
pub mod report;
mod specialite;
mod territoire;
pub mod text;
pub mod vocab;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod testutil;

pub use extract::{LettreIntention, ProjetSante, Read, extract_lettre, extract_projet};
pub use fields::DemarcheKind;
pub use lien::{DELAI_MOIS as DELAI_PROJET_SANTE_MOIS, echeance_projet_sante};
pub use mapping::{
    ChampRef, FieldRef, MappingError, MappingSpec, ResolvedChamp, ResolvedMapping, describe,
    resolve,
};
pub use reference::{ReferenceData, ReferenceError, ReferenceSources};
pub use report::{Report, Verdict};

/// Version of the rulebook, written at the end of every report and part of its fingerprint:
/// bump it whenever a rule's logic or wording changes, so that dossiers are re-annotated.
/// Read as: cahier des charges of January 2025, fourth revision of our rules (r2: applicant
/// values quoted as plain text, see [`text::plain`]; r3: LI-TERR-02 names every overlapping
/// dossier in one finding per severity; r4: any ARS form read as the cahier means it — the
/// severity `a_verifier`, derogations carried from the lettre to the projet, nothing asked that
/// the cahier does not ask, no report line about the configuration).
pub const RULEBOOK_VERSION: &str = "2025.01-r4";

/// How serious a finding is (rules.md, "Severities"); the order is the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The dossier does not meet a condition of the cahier as filed.
    Bloquant,
    /// Not met, but the CPN may grant an exception: to be submitted, never compliant.
    Derogation,
    /// A condition essbot could not establish from what the dossier says (free text read by a
    /// vocabulary): a human must read it. Never decided by a vocabulary alone as `Bloquant`.
    AVerifier,
    /// Something a human should look at that is not a condition of the cahier as filed.
    Avertissement,
    /// A computed fact useful to the instructor.
    Info,
}

impl Severity {
    /// The word the report uses.
    pub fn libelle(self) -> &'static str {
        match self {
            Self::Bloquant => "bloquant",
            Self::Derogation => "dérogation",
            Self::AVerifier => "à vérifier",
            Self::Avertissement => "avertissement",
            Self::Info => "info",
        }
    }
}

macro_rules! rule_ids {
    ($($variant:ident => $id:literal, $title:literal;)*) => {
        /// Identifier of a rule of rules.md; its string form is what staff see.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum RuleId {
            $(#[doc = $title] #[serde(rename = $id)] $variant,)*
        }

        impl RuleId {
            /// Every rule of the rulebook.
            pub const ALL: &'static [RuleId] = &[$(Self::$variant),*];

            /// The identifier as rules.md writes it (`LI-ADH-01`).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $id,)* }
            }

            /// What the rule checks, in French.
            pub fn intitule(self) -> &'static str {
                match self { $(Self::$variant => $title,)* }
            }
        }
    };
}

rule_ids! {
    LiTerr01 => "LI-TERR-01", "Le territoire est composé de départements entiers ou d'une région entière.";
    LiTerr02 => "LI-TERR-02", "Aucune ESS de la même spécialité ne couvre déjà ces départements.";
    LiSpec01 => "LI-SPEC-01", "Une seule spécialité médicale, hors médecine générale.";
    LiSpec02 => "LI-SPEC-02", "Le périmètre est une spécialité, pas une pathologie.";
    LiDemo01 => "LI-DEMO-01", "Au moins 10 médecins de la spécialité sur le territoire.";
    LiAdh01 => "LI-ADH-01", "Au moins 10 % des libéraux de la spécialité sont adhérents.";
    LiAdh02 => "LI-ADH-02", "Les effectifs déclarés sont cohérents entre eux et avec la démographie.";
    LiJur01 => "LI-JUR-01", "La structure porteuse est une association loi 1901.";
    LiCont01 => "LI-CONT-01", "La lettre contient les mentions obligatoires.";
    LiMiss01 => "LI-MISS-01", "Les actions couvrent les deux activités de la mission socle.";
    LiGouv01 => "LI-GOUV-01", "La gouvernance est composée de médecins spécialistes libéraux.";
    LiCoop01 => "LI-COOP-01", "Les coopérations avec les acteurs du territoire sont déclarées.";
    LiHosp01 => "LI-HOSP-01", "L'articulation avec les professionnels hospitaliers est déclarée.";
    LiCaisse01 => "LI-CAISSE-01", "La caisse compétente est celle du siège de l'association.";
    PsLink01 => "PS-LINK-01", "Le projet de santé est rattaché à une lettre d'intention acceptée.";
    PsDel01 => "PS-DEL-01", "Le projet de santé est déposé dans les 6 mois de la lettre d'intention.";
    PsCont01 => "PS-CONT-01", "Le projet de santé contient les éléments obligatoires.";
    PsInd01 => "PS-IND-01", "Au moins un indicateur qualitatif est défini.";
    PsInd02 => "PS-IND-02", "Les cinq indicateurs nationaux sont repris.";
    PsAdh01 => "PS-ADH-01", "Au moins 10 % des libéraux de la spécialité sont adhérents.";
    PsGouv01 => "PS-GOUV-01", "La gouvernance est composée de médecins spécialistes libéraux.";
}

impl PartialOrd for RuleId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RuleId {
    /// By identifier text, so that the report's order is the alphabetical one staff expect.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Longest evidence value kept, in characters.
pub const EVIDENCE_MAX_CHARS: usize = 200;

/// Where in the dossier a finding comes from: the champ's label and, when there is one, the
/// value read there (as DS displays it or as parsed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Evidence {
    /// Label of the champ, as the démarche writes it.
    pub champ: String,
    /// The value read there, when it helps the instructor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valeur: Option<String>,
}

/// One result of one rule on one dossier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Finding {
    /// The rule of rules.md that produced it.
    pub rule: RuleId,
    /// Decides the verdict: any `bloquant`, `derogation` or `a_verifier` keeps the dossier from
    /// being compliant.
    pub severity: Severity,
    /// French, for an ARS instructor: what was found and what was expected; no final period.
    pub message: String,
    /// The champs the finding is about, shown after the message.
    pub evidence: Vec<Evidence>,
    /// For a missing or unreadable item: what the applicant should supply, in French, for the
    /// optional message to the applicant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_completer: Option<String>,
}

impl Finding {
    /// A finding with no evidence yet.
    pub fn new(rule: RuleId, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            rule,
            severity,
            message: message.into(),
            evidence: Vec::new(),
            a_completer: None,
        }
    }

    /// Adds the champ (and value) the finding is about.
    /// The value goes through [`text::plain`] (capped at 200 characters): evidence is shown to
    /// staff and must stay plain text whatever the applicant typed.
    pub fn champ(mut self, champ: impl Into<String>, valeur: Option<String>) -> Self {
        self.evidence.push(Evidence {
            champ: champ.into(),
            valeur: valeur.map(|v| text::plain(&v, EVIDENCE_MAX_CHARS)),
        });
        self
    }

    /// Marks the finding as an item the applicant has to complete.
    pub fn a_completer(mut self, what: impl Into<String>) -> Self {
        self.a_completer = Some(what.into());
        self
    }
}

/// Whether an earlier dossier blocks the same specialty and territory (LI-TERR-02).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// Accepted: the territory is taken.
    Accepte,
    /// Filed and not decided yet.
    EnCours,
}

/// A lettre d'intention essbot has stored, as the rules need it: for overlap (LI-TERR-02) and
/// as the lettre a projet de santé links to (PS-LINK-01, PS-DEL-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownProject {
    /// DS dossier number.
    pub numero: i64,
    /// Last known state: accepted blocks the territory, pending only warns.
    pub etat: DossierState,
    /// `dateDepot` in Europe/Paris.
    pub date_depot: NaiveDate,
    /// Specialty group identifiers.
    pub groupes: Vec<String>,
    /// Département codes.
    pub departements: Vec<String>,
    /// The lettre asked the CPN for a derogation: a projet de santé that follows it gets
    /// `derogation`, not `bloquant`, on the thresholds (rules.md, principle 5).
    pub derogation: bool,
}

impl KnownProject {
    /// Accepted, pending, or out of the picture (refused, closed).
    pub fn status(&self) -> Option<ProjectStatus> {
        match self.etat {
            DossierState::Accepte => Some(ProjectStatus::Accepte),
            DossierState::EnConstruction | DossierState::EnInstruction => {
                Some(ProjectStatus::EnCours)
            }
            DossierState::Refuse | DossierState::SansSuite => None,
        }
    }

    /// What the rules know of a stored lettre d'intention: its readable specialties and
    /// départements (an unreadable one is left out: that dossier's own report says so).
    pub fn from_lettre(
        li: &LettreIntention,
        etat: DossierState,
        reference: &ReferenceData,
    ) -> Self {
        let groupes: BTreeSet<String> = li
            .specialites
            .value()
            .into_iter()
            .flatten()
            .flat_map(|s| reference.specialites_in(s).groups)
            .filter(|g| !g.exclue)
            .map(|g| g.id.clone())
            .collect();
        Self {
            numero: li.numero,
            etat,
            date_depot: li.date_depot,
            groupes: groupes.into_iter().collect(),
            departements: territoire::territory(li, reference)
                .codes
                .into_iter()
                .collect(),
            derogation: li.derogation_demandee.value() == Some(&true),
        }
    }
}

/// The lettres d'intention essbot knows, indexed for the overlap and link look-ups.
#[derive(Debug, Clone, Default)]
pub struct KnownProjects {
    by_numero: BTreeMap<i64, KnownProject>,
    /// Specialty group → département → numbers: the overlap rule looks only at projects that
    /// share both a specialty and a département with the dossier.
    by_place: BTreeMap<String, BTreeMap<String, Vec<i64>>>,
}

impl KnownProjects {
    /// Indexes the given projects (a later one with the same number replaces an earlier one).
    pub fn new(projects: impl IntoIterator<Item = KnownProject>) -> Self {
        let by_numero: BTreeMap<i64, KnownProject> =
            projects.into_iter().map(|p| (p.numero, p)).collect();
        let mut by_place: BTreeMap<String, BTreeMap<String, Vec<i64>>> = BTreeMap::new();
        for p in by_numero.values() {
            for g in &p.groupes {
                let deps = by_place.entry(g.clone()).or_default();
                for d in &p.departements {
                    deps.entry(d.clone()).or_default().push(p.numero);
                }
            }
        }
        Self {
            by_numero,
            by_place,
        }
    }

    /// The projects sharing at least one of these specialty groups and at least one of these
    /// départements, by number.
    pub fn overlapping<'a>(
        &'a self,
        groupes: impl IntoIterator<Item = &'a str>,
        departements: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = &'a KnownProject> {
        let mut numbers: Vec<i64> = Vec::new();
        for deps in groupes.into_iter().filter_map(|g| self.by_place.get(g)) {
            for d in departements {
                if let Some(n) = deps.get(d) {
                    numbers.extend_from_slice(n);
                }
            }
        }
        numbers.sort_unstable();
        numbers.dedup();
        numbers.into_iter().filter_map(|n| self.by_numero.get(&n))
    }

    /// The project with this dossier number.
    pub fn get(&self, numero: i64) -> Option<&KnownProject> {
        self.by_numero.get(&numero)
    }

    /// Every project, by number.
    pub fn iter(&self) -> impl Iterator<Item = &KnownProject> {
        self.by_numero.values()
    }
}

/// Everything the rules read besides the dossier itself.
#[derive(Debug, Clone, Copy)]
pub struct RuleContext<'a> {
    /// Specialties, territory, registry and demography tables.
    pub reference: &'a ReferenceData,
    /// The `[rules]` section of the configuration.
    pub config: &'a RulesConfig,
    /// Today in Europe/Paris, from the injected clock; the rules never read the wall clock.
    pub today: NaiveDate,
    /// Stored lettres d'intention of the watched démarches (the dossier itself may be among
    /// them: it is skipped).
    pub projets: &'a KnownProjects,
}

/// Applies every lettre d'intention rule.
pub fn evaluate_lettre(li: &LettreIntention, ctx: &RuleContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let derog = common::derogation(li, &mut out);
    let terr = territoire::territory(li, ctx.reference);
    contenu::li_cont_01(li, ctx, &mut out);
    territoire::li_terr_01(li, &terr, derog, ctx, &mut out);
    let groups = specialite::li_spec_01(li, derog, ctx, &mut out);
    territoire::li_terr_02(li, &terr, &groups, ctx, &mut out);
    specialite::li_spec_02(li, ctx, &mut out);
    effectifs::li_demo_01(li, derog, &mut out);
    effectifs::li_adh_01(li, derog, &mut out);
    effectifs::li_adh_02(li, &terr, &groups, ctx, &mut out);
    let seat = juridique::li_jur_01(li, &mut out);
    // The free texts the vocabulary rules search, folded once.
    let texts = common::Texts::of(li);
    mission::li_miss_01(li, &texts, &mut out);
    if let Read::Ok { champ, value } = &li.gouvernance {
        gouvernance::gouvernance(RuleId::LiGouv01, champ, value, ctx, &mut out);
    }
    cooperations::li_coop_01(li, &texts, &mut out);
    cooperations::li_hosp_01(li, &texts, &mut out);
    territoire::li_caisse_01(li, &terr, seat, ctx, &mut out);
    out
}

/// Applies every projet de santé rule.
pub fn evaluate_projet(ps: &ProjetSante, ctx: &RuleContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let li = lien::ps_link_01(ps, ctx, &mut out);
    lien::ps_del_01(ps, li, &mut out);
    contenu::ps_cont_01(ps, ctx, &mut out);
    indicateurs::ps_ind_01(ps, ctx, &mut out);
    indicateurs::ps_ind_02(ps, &mut out);
    effectifs::ps_adh_01(ps, li, &mut out);
    if let Read::Ok { champ, value } = &ps.gouvernance {
        gouvernance::gouvernance(RuleId::PsGouv01, champ, value, ctx, &mut out);
    }
    out
}

/// Extracts, evaluates and reports one dossier of the démarche `mapping` was resolved for.
pub fn check(dossier: &Dossier, mapping: &ResolvedMapping, ctx: &RuleContext<'_>) -> Report {
    let findings = match mapping.kind {
        DemarcheKind::LettreIntention => evaluate_lettre(&extract_lettre(dossier, mapping), ctx),
        DemarcheKind::ProjetSante => evaluate_projet(&extract_projet(dossier, mapping), ctx),
    };
    Report::new(dossier.number, mapping.kind, findings, ctx.reference)
}

/// Checks many stored dossiers of one démarche with one context: the unit a benchmark of
/// "check 10 000 stored dossiers" times.
pub fn check_batch(
    dossiers: &[Dossier],
    mapping: &ResolvedMapping,
    ctx: &RuleContext<'_>,
) -> Vec<Report> {
    dossiers.iter().map(|d| check(d, mapping, ctx)).collect()
}

/// Tunable parts of the rulebook (`[rules]` in the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Words that name a single disease rather than a specialty (LI-SPEC-02).
    pub pathology_keywords: Vec<String>,
    /// A text champ shorter than this (in characters, trimmed) counts as empty (LI-CONT-01, PS-CONT-01).
    pub min_text_length: usize,
    /// How far (in %) declared figures may stray from the reference demography (LI-ADH-02).
    pub demography_tolerance_pct: u32,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            pathology_keywords: [
                "diabète",
                "glaucome",
                "psoriasis",
                "insuffisance cardiaque",
                "asthme",
                "épilepsie",
                "mélanome",
                "cancer du sein",
            ]
            .map(String::from)
            .to_vec(),
            min_text_length: 20,
            demography_tolerance_pct: 25,
        }
    }
}

impl RulesConfig {
    /// Problems of this section, for `essbot config check`: (key path, what is wrong).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.demography_tolerance_pct == 0 || self.demography_tolerance_pct > 100 {
            out.push((
                "rules.demography_tolerance_pct".into(),
                "must be between 1 and 100".into(),
            ));
        }
        if self
            .pathology_keywords
            .iter()
            .any(|k| text::normalize(k).is_empty())
        {
            out.push((
                "rules.pathology_keywords".into(),
                "contains an empty keyword".into(),
            ));
        }
        out
    }
}
