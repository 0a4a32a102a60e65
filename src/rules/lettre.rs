//! The rules of the lettre d'intention (rules.md, "Rules for the lettre d'intention"), and the
//! helpers the projet de santé rules share with them.

use std::collections::BTreeSet;

use super::extract::{Association, Gouvernance, LettreIntention, Porteurs, Read};
use super::reference::{ReferenceData, SpecialtyGroup};
use super::text::{char_len, contains_words, count, fr_int, fr_percent, join_et, normalize, quote};
use super::{Finding, ProjectStatus, RuleContext, RuleId, Severity};
use crate::ds::model::Demandeur;

use RuleId::*;

/// The territory a lettre d'intention declares, resolved against the reference tables.
#[derive(Debug, Clone, Default)]
pub(super) struct Territory {
    /// Known département codes (from the départements champ, or the whole région when only a
    /// région is given).
    pub codes: BTreeSet<String>,
    /// Entries that are no known département.
    unknown: Vec<String>,
    /// Entries naming a known département but only part of it.
    partial: Vec<String>,
}

/// Words that mark an entry as a part of a département rather than the whole.
const PARTIAL_WORDS: &[&str] = &[
    "partie",
    "partiel",
    "partielle",
    "sauf",
    "hors",
    "excepte",
    "uniquement",
    "arrondissement",
    "canton",
    "cantons",
    "commune",
    "communes",
    "bassin",
    "secteur",
    "agglomeration",
    "nord de",
    "sud de",
    "est de",
    "ouest de",
];

pub(super) fn territory(li: &LettreIntention, reference: &ReferenceData) -> Territory {
    let mut t = Territory::default();
    if let Some(entries) = li.territoire_departements.value() {
        for e in entries {
            match reference.resolve_departement(e) {
                Some(d) => {
                    let n = normalize(e);
                    if PARTIAL_WORDS.iter().any(|w| contains_words(&n, w)) {
                        t.partial.push(e.clone());
                    }
                    t.codes.insert(d.code.clone());
                }
                None => t.unknown.push(e.clone()),
            }
        }
    } else if let Some(r) = li
        .territoire_region
        .value()
        .and_then(|r| reference.resolve_region(r))
    {
        t.codes.extend(reference.departements_of_region(&r.code));
    }
    t
}

/// Applies every LI rule.
pub(super) fn evaluate(li: &LettreIntention, ctx: &RuleContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let derog = derogation(li, &mut out);
    let terr = territory(li, ctx.reference);
    contenu(li, ctx, &mut out);
    terr_01(li, &terr, derog, ctx, &mut out);
    let groups = spec_01(li, derog, ctx, &mut out);
    terr_02(li, &terr, &groups, ctx, &mut out);
    spec_02(li, ctx, &mut out);
    demo_01(li, derog, &mut out);
    adh_01(li, derog, &mut out);
    adh_02(li, &terr, &groups, ctx, &mut out);
    let seat = jur_01(li, &mut out);
    // The free texts the keyword rules search, folded once.
    let actions = li.actions.value().map(|t| normalize(t));
    let cooperations = cooperation_text(li);
    miss_01(li, actions.as_deref(), &mut out);
    if let Some(g) = li.gouvernance.value() {
        gouvernance(
            LiGouv01,
            li.gouvernance.champ().unwrap_or_default(),
            g,
            &mut out,
        );
    }
    coop_01(li, &cooperations, &mut out);
    hosp_01(li, &cooperations, actions.as_deref(), &mut out);
    caisse_01(&terr, seat, ctx, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The finding for an input without a usable value, or `None` when it has one. A required
/// input gives a `bloquant`; an optional one an `avertissement` when unreadable, an `info` when
/// not mapped, and nothing when simply empty. `what` completes "le cahier des charges exige …".
pub(super) fn unread<T>(
    rule: RuleId,
    read: &Read<T>,
    required: bool,
    what: &str,
) -> Option<Finding> {
    let sev = |s| if required { Severity::Bloquant } else { s };
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
                sev(Severity::Avertissement),
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
        Read::NotMapped { field } => Some(Finding::new(
            rule,
            sev(Severity::Info),
            format!(
                "non vérifié : aucun champ de la démarche ne donne {what} (clé fields.{field} de la configuration)"
            ),
        )),
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

fn broken(derog: bool) -> (Severity, &'static str) {
    if derog {
        (Severity::Derogation, DEROGATION_SUFFIX)
    } else {
        (Severity::Bloquant, "")
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

/// The 10 % test, exact: 10 × adhérents ≥ libéraux.
pub(super) fn meets(adherents: u32, liberaux: u32, pct: u32) -> bool {
    u64::from(adherents) * 100 >= u64::from(pct) * u64::from(liberaux)
}

/// Adherents needed to reach `pct` % of `liberaux`, rounded up.
pub(super) fn needed(liberaux: u32, pct: u32) -> u64 {
    (u64::from(pct) * u64::from(liberaux)).div_ceil(100)
}

fn evidence<T>(read: &Read<T>, shown: impl Fn(&T) -> String) -> Option<(String, Option<String>)> {
    match read {
        Read::Ok { champ, value } => Some((champ.clone(), Some(shown(value)))),
        _ => None,
    }
}

/// What a governance member is, from the quality the form gives.
#[derive(Debug, PartialEq, Eq)]
enum Qualite {
    SpecialisteLiberal,
    Generaliste,
    AutreActeur,
    Inconnue,
}

fn qualite(q: &str) -> Qualite {
    let n = normalize(q);
    let has = |w: &str| contains_words(&n, w);
    if has("generaliste") || has("generalistes") || has("medecine generale") {
        Qualite::Generaliste
    } else if (has("specialiste") || has("specialistes"))
        && (has("liberal") || has("liberale") || has("liberaux"))
    {
        Qualite::SpecialisteLiberal
    } else if [
        "cpts",
        "dac",
        "msp",
        "esp",
        "etablissement",
        "etablissements",
        "hopital",
        "ght",
        "centre hospitalier",
        "chu",
        "clinique",
        "association",
        "urps",
        "ars",
        "cpam",
        "caisse",
        "hospitalier",
        "salarie",
        "personne morale",
        "usagers",
        "usager",
        "paramedical",
        "infirmier",
    ]
    .iter()
    .any(|w| has(w))
    {
        Qualite::AutreActeur
    } else {
        Qualite::Inconnue
    }
}

/// LI-GOUV-01 and PS-GOUV-01: deliberative voices only for self-employed specialists.
pub(super) fn gouvernance(rule: RuleId, champ: &str, g: &Gouvernance, out: &mut Vec<Finding>) {
    let membres = match g {
        Gouvernance::Texte(t) => {
            let n = normalize(t);
            let msg = if contains_words(&n, "generaliste")
                || contains_words(&n, "generalistes")
                || contains_words(&n, "medecine generale")
            {
                "la gouvernance décrite mentionne des médecins généralistes : vérifier qu'ils n'ont pas voix délibérative"
            } else {
                "gouvernance décrite en texte libre : la qualité des membres et leur voix sont à vérifier par un instructeur"
            };
            out.push(
                Finding::new(rule, Severity::Avertissement, msg).champ(champ, Some(t.clone())),
            );
            return;
        }
        Gouvernance::Membres(m) => m,
    };
    let mut deliberative_specialist = false;
    for (i, m) in membres.iter().enumerate() {
        let nom = m.nom.clone().unwrap_or_else(|| format!("ligne {}", i + 1));
        let shown = quote(&nom);
        let voix = m.voix.as_deref().map(normalize);
        let delib = voix.as_deref().map(|v| v.starts_with("delib"));
        let consult = voix.as_deref().is_some_and(|v| v.starts_with("consult"));
        let q = m.qualite.as_deref().map(qualite);
        let quality_text = m.qualite.as_deref().map(quote).unwrap_or_default();
        if delib.is_none() || (delib == Some(false) && !consult) {
            out.push(
                Finding::new(
                    rule,
                    Severity::Avertissement,
                    format!(
                        "membre {shown} : voix {} ; délibérative ou consultative attendue",
                        m.voix
                            .as_deref()
                            .map(|v| format!("non reconnue {}", quote(v)))
                            .unwrap_or_else(|| "non renseignée".into())
                    ),
                )
                .champ(champ, Some(nom.clone())),
            );
        }
        match (q, delib == Some(true)) {
            (None, _) => out.push(
                Finding::new(rule, Severity::Avertissement, format!("membre {shown} : qualité non renseignée"))
                    .champ(champ, Some(nom.clone())),
            ),
            (Some(Qualite::SpecialisteLiberal), true) => deliberative_specialist = true,
            (Some(Qualite::Generaliste), true) => out.push(
                Finding::new(
                    rule,
                    Severity::Bloquant,
                    format!("membre {shown} ({quality_text}) avec voix délibérative ; seuls des médecins spécialistes libéraux, personnes physiques, ont voix délibérative (médecine générale exclue)"),
                )
                .champ(champ, Some(nom.clone())),
            ),
            (Some(Qualite::AutreActeur), true) => out.push(
                Finding::new(
                    rule,
                    Severity::Bloquant,
                    format!("membre {shown} ({quality_text}) avec voix délibérative ; les autres acteurs (CPTS, DAC, établissements) n'ont qu'une voix consultative"),
                )
                .champ(champ, Some(nom.clone())),
            ),
            (Some(Qualite::Inconnue), true) => out.push(
                Finding::new(
                    rule,
                    Severity::Avertissement,
                    format!("membre {shown} de qualité {quality_text} avec voix délibérative : à vérifier (seuls des médecins spécialistes libéraux ont voix délibérative)"),
                )
                .champ(champ, Some(nom.clone())),
            ),
            _ => {}
        }
    }
    if !deliberative_specialist {
        out.push(
            Finding::new(
                rule,
                Severity::Bloquant,
                "aucun médecin spécialiste libéral avec voix délibérative dans la gouvernance",
            )
            .champ(champ, None),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The rules

/// Whether a derogation is asked; reports an unreadable answer or a missing reason.
fn derogation(li: &LettreIntention, out: &mut Vec<Finding>) -> bool {
    match &li.derogation_demandee {
        Read::Ok { value: true, champ } => {
            match &li.derogation_motif {
                Read::Ok { .. } => {}
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
        _ => false,
    }
}

/// LI-CONT-01: the six mentions the letter must state.
fn contenu(li: &LettreIntention, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let min = ctx.config.min_text_length;
    // Porteurs.
    match &li.porteurs {
        Read::Ok {
            champ,
            value: Porteurs::Texte(t),
        } => {
            out.extend(too_short(
                LiCont01,
                champ,
                t,
                min.min(5),
                "l'identité des porteurs du projet",
            ));
        }
        Read::Ok {
            champ,
            value: Porteurs::Lignes(rows),
        } => {
            if rows.iter().all(|p| p.nom.is_none()) {
                out.push(
                    Finding::new(LiCont01, Severity::Bloquant, "aucun porteur n'est nommé ; le cahier des charges exige l'identité des porteurs du projet")
                        .champ(champ, None)
                        .a_completer("l'identité des porteurs du projet"),
                );
            }
            for (i, p) in rows.iter().enumerate() {
                let who = p.nom.clone().unwrap_or_else(|| format!("ligne {}", i + 1));
                if let Some(rpps) = &p.rpps {
                    let digits: String = rpps.chars().filter(|c| !c.is_whitespace()).collect();
                    if digits.len() != 11 || !digits.chars().all(|c| c.is_ascii_digit()) {
                        out.push(
                            Finding::new(
                                LiCont01,
                                Severity::Avertissement,
                                format!(
                                    "numéro RPPS {} du porteur {} : 11 chiffres attendus",
                                    quote(rpps),
                                    quote(&who)
                                ),
                            )
                            .champ(champ, Some(rpps.clone())),
                        );
                    }
                }
                if let Some(s) = &p.specialite
                    && ctx.reference.match_specialite(s).is_some_and(|g| g.exclue)
                {
                    out.push(
                        Finding::new(
                            LiCont01,
                            Severity::Avertissement,
                            format!("le porteur {} est déclaré en {} ; une ESS réunit des médecins spécialistes, hors médecine générale", quote(&who), quote(s)),
                        )
                        .champ(champ, Some(s.clone())),
                    );
                }
            }
        }
        other => out.extend(unread(
            LiCont01,
            other,
            true,
            "l'identité des porteurs du projet",
        )),
    }
    // Specialty.
    out.extend(unread(
        LiCont01,
        &li.specialites,
        true,
        "la spécialité concernée",
    ));
    // Territory: départements, or a whole région.
    if !li.territoire_departements.is_ok() && !li.territoire_region.is_ok() {
        out.extend(unread(
            LiCont01,
            &li.territoire_departements,
            true,
            "le territoire couvert (départements ou région)",
        ));
    }
    // Cooperations, governance, actions: a list or a text long enough.
    either(
        out,
        &li.cooperations,
        &li.cooperations_precisions,
        min,
        "les coopérations prévues",
    );
    match &li.gouvernance {
        Read::Ok {
            champ,
            value: Gouvernance::Texte(t),
        } => {
            out.extend(too_short(
                LiCont01,
                champ,
                t,
                min,
                "la gouvernance envisagée",
            ));
        }
        Read::Ok { .. } => {}
        other => out.extend(unread(LiCont01, other, true, "la gouvernance envisagée")),
    }
    either(
        out,
        &li.actions_mission_socle,
        &li.actions,
        min,
        "les actions prévues",
    );
}

/// A mention given by a list champ and/or a text champ: stated when the list has an item or
/// the text is long enough; otherwise one finding about the most telling of the two.
fn either(
    out: &mut Vec<Finding>,
    list: &Read<Vec<String>>,
    text: &Read<String>,
    min: usize,
    what: &str,
) {
    if list.is_ok() {
        return;
    }
    match text {
        Read::Ok { champ, value } => out.extend(too_short(LiCont01, champ, value, min, what)),
        _ => {
            let worst = match (list, text) {
                (Read::Unreadable { .. }, _) => unread(LiCont01, list, true, what),
                (_, Read::Unreadable { .. }) => unread(LiCont01, text, true, what),
                (Read::NotMapped { .. }, Read::NotMapped { .. }) => {
                    unread(LiCont01, list, true, what)
                }
                (Read::Missing { .. }, _) => unread(LiCont01, list, true, what),
                _ => unread(LiCont01, text, true, what),
            };
            out.extend(worst);
        }
    }
}

/// LI-TERR-01: whole départements or a whole région.
fn terr_01(
    li: &LettreIntention,
    t: &Territory,
    derog: bool,
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    let dep_champ = li
        .territoire_departements
        .champ()
        .unwrap_or_default()
        .to_owned();
    if !t.unknown.is_empty() {
        let shown: Vec<String> = t.unknown.iter().map(|u| quote(u)).collect();
        out.push(
            Finding::new(
                LiTerr01,
                Severity::Bloquant,
                format!(
                    "{} : {} ; le territoire se compose de départements entiers (codes INSEE 01 à 95, 2A, 2B, 971 à 976)",
                    if t.unknown.len() > 1 { "départements inconnus" } else { "département inconnu" },
                    join_et(&shown)
                ),
            )
            .champ(&dep_champ, Some(t.unknown.join(", ")))
            .a_completer("des départements entiers (codes INSEE)"),
        );
    }
    if !t.partial.is_empty() {
        let (sev, suffix) = broken(derog);
        let shown: Vec<String> = t.partial.iter().map(|u| quote(u)).collect();
        out.push(
            Finding::new(
                LiTerr01,
                sev,
                format!(
                    "territoire infra-départemental : {} ; le cahier des charges exige des départements entiers ou une région entière{suffix}",
                    join_et(&shown)
                ),
            )
            .champ(&dep_champ, Some(t.partial.join(", "))),
        );
    }
    let codes: Vec<String> = t.codes.iter().cloned().collect();
    match &li.territoire_region {
        Read::Ok { champ, value } => match ctx.reference.resolve_region(value) {
            None => out.push(
                Finding::new(
                    LiTerr01,
                    Severity::Avertissement,
                    format!("région inconnue {}", quote(value)),
                )
                .champ(champ, Some(value.clone())),
            ),
            Some(r) => {
                let all = ctx.reference.departements_of_region(&r.code);
                let outside: Vec<String> =
                    codes.iter().filter(|c| !all.contains(c)).cloned().collect();
                let missing: Vec<String> = all
                    .iter()
                    .filter(|c| !t.codes.contains(*c))
                    .cloned()
                    .collect();
                if !li.territoire_departements.is_ok() {
                    out.push(
                        Finding::new(
                            LiTerr01,
                            Severity::Info,
                            format!(
                                "le territoire est la région {} entière ({})",
                                r.nom,
                                count(all.len(), "département", "départements")
                            ),
                        )
                        .champ(champ, Some(value.clone())),
                    );
                } else if !outside.is_empty() {
                    out.push(
                        Finding::new(
                            LiTerr01,
                            Severity::Avertissement,
                            format!(
                                "départements hors de la région {} indiquée : {}",
                                r.nom,
                                join_et(&outside)
                            ),
                        )
                        .champ(champ, Some(value.clone()))
                        .champ(&dep_champ, Some(codes.join(", "))),
                    );
                } else if !missing.is_empty() {
                    out.push(
                        Finding::new(
                            LiTerr01,
                            Severity::Avertissement,
                            format!(
                                "la région {} est indiquée mais les départements couverts n'en forment qu'une partie (manquent : {}) ; territoire retenu : les départements cochés",
                                r.nom,
                                join_et(&missing)
                            ),
                        )
                        .champ(champ, Some(value.clone()))
                        .champ(&dep_champ, Some(codes.join(", "))),
                    );
                } else {
                    out.push(
                        Finding::new(
                            LiTerr01,
                            Severity::Info,
                            format!(
                                "le territoire couvre toute la région {} ({})",
                                r.nom,
                                count(all.len(), "département", "départements")
                            ),
                        )
                        .champ(champ, Some(value.clone())),
                    );
                }
            }
        },
        other => out.extend(unread(LiTerr01, other, false, "la région couverte")),
    }
    if !li.territoire_region.is_ok() && !codes.is_empty() {
        let regions: BTreeSet<&str> = codes
            .iter()
            .filter_map(|c| ctx.reference.departement(c))
            .map(|d| d.region.as_str())
            .collect();
        let names: Vec<String> = regions
            .iter()
            .filter_map(|r| ctx.reference.region(r))
            .map(|r| r.nom.clone())
            .collect();
        if regions.len() > 1 {
            out.push(
                Finding::new(
                    LiTerr01,
                    Severity::Avertissement,
                    format!("le territoire s'étend sur plusieurs régions ({}) : ARS compétente à déterminer", join_et(&names)),
                )
                .champ(&dep_champ, Some(codes.join(", "))),
            );
        } else if let Some(r) = regions.first()
            && ctx.reference.departements_of_region(r) == codes
            && codes.len() > 1
        {
            out.push(
                Finding::new(
                    LiTerr01,
                    Severity::Info,
                    format!(
                        "le territoire couvre toute la région {} ({})",
                        names.join(""),
                        count(codes.len(), "département", "départements")
                    ),
                )
                .champ(&dep_champ, Some(codes.join(", "))),
            );
        }
    }
}

/// LI-SPEC-01: exactly one specialty of the list, not general practice. Returns the groups.
fn spec_01<'r>(
    li: &LettreIntention,
    derog: bool,
    ctx: &RuleContext<'r>,
    out: &mut Vec<Finding>,
) -> Vec<&'r SpecialtyGroup> {
    let Read::Ok { champ, value } = &li.specialites else {
        return Vec::new();
    };
    let mut groups: Vec<&SpecialtyGroup> = Vec::new();
    for name in value {
        match ctx.reference.match_specialite(name) {
            None => out.push(
                Finding::new(
                    LiSpec01,
                    Severity::Bloquant,
                    format!(
                        "spécialité {} absente de la liste de référence des spécialités médicales",
                        quote(name)
                    ),
                )
                .champ(champ, Some(name.clone()))
                .a_completer("une spécialité médicale de la liste de référence"),
            ),
            Some(g) if g.exclue => out.push(
                Finding::new(
                    LiSpec01,
                    Severity::Bloquant,
                    format!(
                        "la médecine générale est exclue des ESS (spécialité {})",
                        quote(name)
                    ),
                )
                .champ(champ, Some(name.clone())),
            ),
            Some(g) => {
                if !groups.iter().any(|x| x.id == g.id) {
                    groups.push(g);
                }
            }
        }
    }
    if groups.len() > 1 {
        let names: Vec<String> = groups.iter().map(|g| g.libelle.clone()).collect();
        out.push(
            Finding::new(
                LiSpec01,
                Severity::Derogation,
                format!(
                    "{} ({}) ; une ESS réunit une seule spécialité, plusieurs spécialités relèvent d'une dérogation à soumettre à la CPN{}",
                    count(groups.len(), "spécialité", "spécialités"),
                    join_et(&names),
                    if derog { " (dérogation demandée)" } else { " (aucune dérogation n'est demandée)" }
                ),
            )
            .champ(champ, Some(value.join(", "))),
        );
    }
    groups
}

/// LI-TERR-02: no ESS of the same specialty on these départements.
fn terr_02(
    li: &LettreIntention,
    t: &Territory,
    groups: &[&SpecialtyGroup],
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    if groups.is_empty() || t.codes.is_empty() {
        return;
    }
    let champ = li
        .territoire_departements
        .champ()
        .or(li.territoire_region.champ())
        .unwrap_or_default()
        .to_owned();
    let libelle = |id: &str| {
        ctx.reference
            .specialite(id)
            .map(|g| g.libelle.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let overlap = |deps: &[String]| -> Vec<String> {
        deps.iter()
            .filter(|d| t.codes.contains(*d))
            .cloned()
            .collect()
    };
    for ess in ctx.reference.ess() {
        if !groups.iter().any(|g| g.id == ess.groupe) {
            continue;
        }
        let common = overlap(&ess.departements);
        if !common.is_empty() {
            out.push(
                Finding::new(
                    LiTerr02,
                    Severity::Bloquant,
                    format!(
                        "l'ESS {} ({}) couvre déjà {} ; une seule ESS par spécialité et par territoire",
                        quote(&ess.nom),
                        libelle(&ess.groupe),
                        join_et(&common)
                    ),
                )
                .champ(&champ, Some(common.join(", "))),
            );
        }
    }
    let mut accepted = Vec::new();
    let mut pending = Vec::new();
    for p in ctx
        .projets
        .overlapping(groups.iter().map(|g| g.id.as_str()), &t.codes)
    {
        if p.numero == li.numero {
            continue;
        }
        let Some(status) = p.status() else { continue };
        // A pending dossier filed after this one does not "already cover" its territory: it is
        // that later dossier's report that names this one.
        if status == ProjectStatus::EnCours && (p.date_depot, p.numero) > (li.date_depot, li.numero)
        {
            continue;
        }
        let Some(shared) = p
            .groupes
            .iter()
            .find(|g| groups.iter().any(|x| &x.id == *g))
        else {
            continue;
        };
        if !p.departements.iter().any(|d| t.codes.contains(d)) {
            continue;
        }
        match status {
            ProjectStatus::Accepte => accepted.push((p, shared)),
            ProjectStatus::EnCours => pending.push((p, shared)),
        }
    }
    // One finding per severity, naming every overlapping dossier: a territory contested by many
    // dossiers stays one line for the instructor (and one finding to store), not dozens.
    for (list, status) in [
        (&accepted, ProjectStatus::Accepte),
        (&pending, ProjectStatus::EnCours),
    ] {
        let Some(&(first, shared)) = list.first() else {
            continue;
        };
        let first_common = &overlap(&first.departements);
        let common: Vec<String> = list
            .iter()
            .flat_map(|(p, _)| p.departements.iter().filter(|d| t.codes.contains(*d)))
            .collect::<BTreeSet<&String>>()
            .into_iter()
            .cloned()
            .collect();
        let (sev, msg) = match (status, list.len()) {
            (ProjectStatus::Accepte, 1) => (
                Severity::Bloquant,
                format!(
                    "le dossier n° {} ({}, accepté) couvre déjà {} ; une seule ESS par spécialité et par territoire",
                    first.numero,
                    libelle(shared),
                    join_et(first_common)
                ),
            ),
            (ProjectStatus::EnCours, 1) => (
                Severity::Avertissement,
                format!(
                    "le dossier n° {} ({}, {}) vise aussi {} ; à arbitrer avant décision",
                    first.numero,
                    libelle(shared),
                    first.etat.libelle(),
                    join_et(first_common)
                ),
            ),
            (ProjectStatus::Accepte, _) => (
                Severity::Bloquant,
                format!(
                    "les dossiers {} ({}, acceptés) couvrent déjà {} ; une seule ESS par spécialité et par territoire",
                    numeros(list.iter().map(|(p, _)| p.numero)),
                    libelle(shared),
                    join_et(&common)
                ),
            ),
            (ProjectStatus::EnCours, _) => (
                Severity::Avertissement,
                format!(
                    "les dossiers {} ({}, en cours) visent aussi {} ; à arbitrer avant décision",
                    numeros(list.iter().map(|(p, _)| p.numero)),
                    libelle(shared),
                    join_et(&common)
                ),
            ),
        };
        out.push(Finding::new(LiTerr02, sev, msg).champ(&champ, Some(common.join(", "))));
    }
}

/// "n° 3, 7 et 12", or the first five and how many more.
fn numeros(list: impl Iterator<Item = i64>) -> String {
    const SHOWN: usize = 5;
    let all: Vec<String> = list.map(|n| n.to_string()).collect();
    if all.len() <= SHOWN {
        format!("n° {}", join_et(&all))
    } else {
        format!(
            "n° {} et {} autres",
            all[..SHOWN].join(", "),
            all.len() - SHOWN
        )
    }
}

/// LI-SPEC-02: a specialty, not a single disease.
fn spec_02(li: &LettreIntention, ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    match &li.perimetre {
        Read::Ok { champ, value } => {
            let n = normalize(value);
            // A perimeter that names a specialty ("Neurologie : épilepsie, Parkinson…") lists
            // diseases within it; only one that names none is reduced to a pathology.
            let names_specialty =
                ctx.reference.specialites().iter().any(|g| {
                    !g.exclue && g.folded_names().iter().any(|name| contains_words(&n, name))
                });
            if names_specialty {
                return;
            }
            let found: Vec<String> = ctx
                .config
                .pathology_keywords
                .iter()
                .filter(|k| contains_words(&n, &normalize(k)))
                .map(|k| quote(k.trim()))
                .collect();
            if !found.is_empty() {
                out.push(
                    Finding::new(
                        LiSpec02,
                        Severity::Avertissement,
                        format!(
                            "le périmètre médical cite {} {} ; une ESS couvre toute sa spécialité, pas une seule pathologie",
                            if found.len() > 1 { "les pathologies" } else { "la pathologie" },
                            join_et(&found)
                        ),
                    )
                    .champ(champ, Some(value.clone())),
                );
            }
        }
        Read::Missing { champ } => out.push(
            Finding::new(
                LiSpec02,
                Severity::Info,
                "périmètre médical non renseigné : non vérifié",
            )
            .champ(champ, None),
        ),
        other => out.extend(unread(LiSpec02, other, false, "le périmètre médical")),
    }
}

/// LI-DEMO-01: at least 10 doctors of the specialty on the territory.
fn demo_01(li: &LettreIntention, derog: bool, out: &mut Vec<Finding>) {
    match &li.nb_medecins_specialite {
        Read::Ok { champ, value } if *value < 10 => {
            let (sev, suffix) = broken(derog);
            out.push(
                Finding::new(
                    LiDemo01,
                    sev,
                    format!(
                        "{} de la spécialité sur le territoire ; le cahier des charges en exige au moins 10{suffix}",
                        count(*value as usize, "médecin", "médecins")
                    ),
                )
                .champ(champ, Some(value.to_string())),
            );
        }
        Read::Ok { .. } => {}
        other => out.extend(unread(
            LiDemo01,
            other,
            true,
            "le nombre de médecins de la spécialité sur le territoire",
        )),
    }
}

/// LI-ADH-01: adherents ≥ 10 % of the libéraux, in exact integer arithmetic.
fn adh_01(li: &LettreIntention, derog: bool, out: &mut Vec<Finding>) {
    out.extend(unread(
        LiAdh01,
        &li.nb_adherents,
        true,
        "le nombre de médecins adhérents",
    ));
    out.extend(unread(
        LiAdh01,
        &li.nb_liberaux_specialite,
        true,
        "le nombre de médecins libéraux de la spécialité sur le territoire",
    ));
    let (Some(&adh), Some(&lib)) = (li.nb_adherents.value(), li.nb_liberaux_specialite.value())
    else {
        return;
    };
    let ev = |f: Finding| {
        let f = match evidence(&li.nb_adherents, |v| v.to_string()) {
            Some((c, v)) => f.champ(c, v),
            None => f,
        };
        match evidence(&li.nb_liberaux_specialite, |v| v.to_string()) {
            Some((c, v)) => f.champ(c, v),
            None => f,
        }
    };
    if lib == 0 {
        out.push(ev(Finding::new(
            LiAdh01,
            Severity::Bloquant,
            "aucun médecin libéral de la spécialité déclaré sur le territoire : le taux d'adhésion ne peut pas être calculé",
        )));
    } else if meets(adh, lib, 10) {
        out.push(ev(Finding::new(
            LiAdh01,
            Severity::Info,
            format!("{} ; seuil de 10 % atteint", ratio_text(adh, lib, false)),
        )));
    } else {
        let (sev, suffix) = broken(derog);
        out.push(ev(Finding::new(
            LiAdh01,
            sev,
            format!(
                "{} ; le cahier des charges exige au moins 10 % ({} au moins){suffix}",
                ratio_text(adh, lib, true),
                count(needed(lib, 10) as usize, "adhérent", "adhérents")
            ),
        )));
    }
}

/// LI-ADH-02: consistent figures, and plausible next to the reference demography.
fn adh_02(
    li: &LettreIntention,
    t: &Territory,
    groups: &[&SpecialtyGroup],
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    let adh = li.nb_adherents.value().copied();
    let lib = li.nb_liberaux_specialite.value().copied();
    let med = li.nb_medecins_specialite.value().copied();
    let champ = |r: &Read<u32>| r.champ().unwrap_or_default().to_owned();
    if adh == Some(0) {
        out.push(
            Finding::new(
                LiAdh02,
                Severity::Avertissement,
                "aucun médecin adhérent déclaré",
            )
            .champ(champ(&li.nb_adherents), Some("0".into())),
        );
    }
    if let (Some(a), Some(l)) = (adh, lib)
        && a > l
    {
        out.push(
            Finding::new(
                LiAdh02,
                Severity::Avertissement,
                format!("plus d'adhérents ({}) que de médecins libéraux de la spécialité sur le territoire ({})", fr_int(a.into()), fr_int(l.into())),
            )
            .champ(champ(&li.nb_adherents), Some(a.to_string()))
            .champ(champ(&li.nb_liberaux_specialite), Some(l.to_string())),
        );
    }
    if let (Some(l), Some(m)) = (lib, med)
        && l > m
    {
        out.push(
            Finding::new(
                LiAdh02,
                Severity::Avertissement,
                format!("plus de médecins libéraux ({}) que de médecins de la spécialité sur le territoire ({})", fr_int(l.into()), fr_int(m.into())),
            )
            .champ(champ(&li.nb_liberaux_specialite), Some(l.to_string()))
            .champ(champ(&li.nb_medecins_specialite), Some(m.to_string())),
        );
    }
    let (Some(demo), Some(l), [group]) = (ctx.reference.demographie(), lib, groups) else {
        return;
    };
    if t.codes.is_empty() {
        return;
    }
    let codes: Vec<String> = t.codes.iter().cloned().collect();
    let lib_champ = champ(&li.nb_liberaux_specialite);
    match demo.total(&group.id, &codes) {
        None => out.push(
            Finding::new(
                LiAdh02,
                Severity::Info,
                format!("démographie de référence {} incomplète pour ce territoire et cette spécialité : non comparé", demo.annee),
            )
            .champ(lib_champ, Some(l.to_string())),
        ),
        Some(reference) => {
            let declared = u64::from(l);
            let diff = declared.abs_diff(reference);
            let tol = u64::from(ctx.config.demography_tolerance_pct);
            if reference == 0 || diff * 100 > tol * reference {
                let ecart = if reference == 0 {
                    String::new()
                } else {
                    format!(" (écart de {}, tolérance {} %)", fr_percent(diff, reference, None), tol)
                };
                out.push(
                    Finding::new(
                        LiAdh02,
                        Severity::Avertissement,
                        format!(
                            "{} déclarés ; la démographie de référence {} en compte {} pour {} sur ces départements{ecart}",
                            count(l as usize, "libéral", "libéraux"),
                            demo.annee,
                            fr_int(reference),
                            group.libelle
                        ),
                    )
                    .champ(lib_champ, Some(l.to_string())),
                );
            } else {
                out.push(
                    Finding::new(
                        LiAdh02,
                        Severity::Info,
                        format!(
                            "{} déclarés, cohérent avec la démographie de référence {} ({})",
                            count(l as usize, "libéral", "libéraux"),
                            demo.annee,
                            fr_int(reference)
                        ),
                    )
                    .champ(lib_champ, Some(l.to_string())),
                );
            }
        }
    }
}

/// Luhn check of a SIRET, with La Poste's exception (sum of digits divisible by 5).
pub(super) fn siret_valide(siret: &str) -> bool {
    if siret.len() != 14 || !siret.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = siret.chars().filter_map(|c| c.to_digit(10)).collect();
    let luhn: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    luhn.is_multiple_of(10)
        || (siret.starts_with("356000000") && digits.iter().sum::<u32>().is_multiple_of(5))
}

fn rna_valide(rna: &str) -> bool {
    let r = rna.trim();
    r.len() == 10 && r.starts_with(['W', 'w']) && r[1..].chars().all(|c| c.is_ascii_alphanumeric())
}

const DROIT_LOCAL: &[(&str, &str)] = &[("57", "Moselle"), ("67", "Bas-Rhin"), ("68", "Haut-Rhin")];

/// LI-JUR-01: the carrier is an association loi 1901. Returns the seat's département.
fn jur_01(li: &LettreIntention, out: &mut Vec<Finding>) -> Option<(String, String)> {
    out.extend(unread(
        LiJur01,
        &li.association,
        false,
        "l'association porteuse (numéro RNA ou SIRET)",
    ));
    out.extend(unread(
        LiJur01,
        &li.association_siret,
        false,
        "le SIRET de l'association",
    ));
    let reads = [&li.association, &li.association_siret];
    let found: Vec<(&str, &Association)> = reads
        .iter()
        .filter_map(|r| match r {
            Read::Ok { champ, value } => Some((champ.as_str(), value)),
            _ => None,
        })
        .collect();
    let pick = |f: fn(&Association) -> Option<&String>| {
        found
            .iter()
            .find_map(|(c, a)| f(a).map(|v| (c.to_string(), v.clone())))
    };
    let rna = pick(|a| a.rna.as_ref());
    let siret = pick(|a| a.siret.as_ref());
    let registre = pick(|a| a.registre.as_ref());
    let mut forme = pick(|a| a.forme_juridique.as_ref());
    let mut code = pick(|a| a.forme_juridique_code.as_ref());
    let mut seat = pick(|a| a.departement_siege.as_ref());
    if found.is_empty()
        && let Demandeur::PersonneMorale {
            forme_juridique,
            forme_juridique_code,
            departement_code,
            ..
        } = &li.demandeur
    {
        // The filer is a legal person: it is presumably the association itself.
        forme = forme_juridique.clone().map(|f| ("demandeur".to_owned(), f));
        code = forme_juridique_code
            .clone()
            .map(|c| ("demandeur".to_owned(), c));
        seat = departement_code
            .clone()
            .map(|d| ("demandeur".to_owned(), d));
    }
    if seat.is_none()
        && let Demandeur::PersonneMorale {
            departement_code: Some(d),
            ..
        } = &li.demandeur
    {
        seat = Some(("demandeur".to_owned(), d.clone()));
    }
    let any_champ = found
        .first()
        .map(|(c, _)| c.to_string())
        .or_else(|| li.association.champ().map(str::to_owned))
        .unwrap_or_default();
    // Legal form.
    let is_asso = match (&code, &forme) {
        (Some((_, c)), _) => Some(c.trim().starts_with("92")),
        (None, Some((_, f))) => Some(normalize(f).contains("association")),
        (None, None) => None,
    };
    if is_asso == Some(false) {
        let (c, shown) = match (&forme, &code) {
            (Some((c, f)), Some((_, k))) => (c.clone(), format!("{} (code {k})", quote(f))),
            (Some((c, f)), None) => (c.clone(), quote(f)),
            (None, Some((c, k))) => (c.clone(), format!("de code {k}")),
            (None, None) => (any_champ.clone(), String::new()),
        };
        out.push(
            Finding::new(
                LiJur01,
                Severity::Bloquant,
                format!("la forme juridique de la structure porteuse est {shown} ; le cahier des charges exige une association loi 1901"),
            )
            .champ(c, forme.as_ref().map(|(_, f)| f.clone())),
        );
    }
    if let Some((c, s)) = &siret
        && !siret_valide(s)
    {
        out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!(
                    "SIRET {} invalide : 14 chiffres avec une clé de contrôle attendus",
                    quote(s)
                ),
            )
            .champ(c, Some(s.clone())),
        );
    }
    if let Some((c, r)) = &rna
        && !rna_valide(r)
    {
        out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!(
                    "numéro RNA {} mal formé : W suivi de 9 caractères attendu",
                    quote(r)
                ),
            )
            .champ(c, Some(r.clone())),
        );
    }
    let local = seat
        .as_ref()
        .and_then(|(_, d)| DROIT_LOCAL.iter().find(|(code, _)| code == d))
        .map(|(_, nom)| *nom);
    match (local, &rna, &siret, &registre) {
        (_, Some(_), _, _) => {}
        (Some(nom), None, Some((c, v)), _) | (Some(nom), None, None, Some((c, v))) => out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!(
                    "siège en {nom} : association de droit local, sans numéro RNA ; {} tient lieu d'identification, à confirmer par un instructeur",
                    if siret.is_some() { "le SIRET" } else { "la référence au registre" }
                ),
            )
            .champ(c, Some(v.clone())),
        ),
        (None, None, Some((c, v)), _) => {
            if is_asso.is_none() {
                out.push(
                    Finding::new(
                        LiJur01,
                        Severity::Avertissement,
                        "SIRET sans numéro RNA ni forme juridique connue : vérifier qu'il s'agit d'une association loi 1901",
                    )
                    .champ(c, Some(v.clone())),
                );
            }
        }
        (None, None, None, Some((c, v))) => out.push(
            Finding::new(
                LiJur01,
                Severity::Avertissement,
                format!("{} n'est ni un numéro RNA (W suivi de 9 caractères) ni un SIRET (14 chiffres)", quote(v)),
            )
            .champ(c, Some(v.clone()))
            .a_completer("le numéro RNA ou le SIRET de l'association porteuse"),
        ),
        (_, None, None, None) => {
            if is_asso != Some(false) {
                out.push(
                    Finding::new(
                        LiJur01,
                        Severity::Avertissement,
                        "aucune association identifiée (ni numéro RNA ni SIRET) ; elle devra exister avant tout paiement",
                    )
                    .champ(any_champ, None)
                    .a_completer("le numéro RNA ou le SIRET de l'association porteuse"),
                );
            }
        }
    }
    seat.and_then(|(c, d)| super::reference::canonical_departement_code(&d).map(|d| (c, d)))
}

const MISSION_A: &[&str] = &[
    "second recours",
    "2nd recours",
    "deuxieme recours",
    "2e recours",
    "2eme recours",
    "premier et troisieme recours",
    "premier et le troisieme recours",
    "1er et 3e recours",
    "gradation des soins",
    "structuration de l offre",
    "structurer l offre",
];
const MISSION_B: &[&str] = &[
    "teleexpertise",
    "teleexpertises",
    "tele expertise",
    "tele expertises",
    "avis specialise",
    "avis specialises",
    "avis ponctuel",
    "avis ponctuels",
    "tele avis",
    "medecins traitants",
    "medecin traitant",
];

/// LI-MISS-01: both activities of the mission socle. `actions` is the actions champ folded by
/// [`normalize`].
fn miss_01(li: &LettreIntention, actions: Option<&str>, out: &mut Vec<Finding>) {
    if !li.actions.is_ok() && !li.actions_mission_socle.is_ok() {
        return; // LI-CONT-01 already says the actions are missing.
    }
    let mut all = actions.unwrap_or_default().to_owned();
    for o in li.actions_mission_socle.value().into_iter().flatten() {
        all.push(' ');
        all.push_str(&normalize(o));
    }
    let champs: Vec<&str> = [li.actions_mission_socle.champ(), li.actions.champ()]
        .into_iter()
        .flatten()
        .collect();
    let has = |words: &[&str]| words.iter().any(|w| contains_words(&all, w));
    for (ok, what) in [
        (
            has(MISSION_A),
            "(a) la structuration de l'offre de second recours avec le premier et le troisième recours",
        ),
        (
            has(MISSION_B),
            "(b) l'avis spécialisé ponctuel à la demande des médecins traitants, dans des délais courts (consultation ou téléexpertise)",
        ),
    ] {
        if !ok {
            let mut f = Finding::new(
                LiMiss01,
                Severity::Bloquant,
                format!("{what} n'apparaît pas dans les actions prévues ; la mission socle comprend les deux activités"),
            )
            .a_completer(format!("les actions prévues pour l'activité {what}"));
            for c in &champs {
                f = f.champ(*c, None);
            }
            out.push(f);
        }
    }
}

fn cooperation_text(li: &LettreIntention) -> String {
    let mut all = String::new();
    for o in li.cooperations.value().into_iter().flatten() {
        all.push(' ');
        all.push_str(&normalize(o));
    }
    if let Some(t) = li.cooperations_precisions.value() {
        all.push(' ');
        all.push_str(&normalize(t));
    }
    all
}

fn cooperation_champs(li: &LettreIntention, f: Finding) -> Finding {
    [li.cooperations.champ(), li.cooperations_precisions.champ()]
        .into_iter()
        .flatten()
        .fold(f, |f, c| f.champ(c, None))
}

/// LI-COOP-01: cooperation with first-recourse actors, DAC, other ESS and hospitals. `all` is
/// [`cooperation_text`].
fn coop_01(li: &LettreIntention, all: &str, out: &mut Vec<Finding>) {
    if !li.cooperations.is_ok() && !li.cooperations_precisions.is_ok() {
        return; // LI-CONT-01 already says the cooperations are missing.
    }
    let has = |words: &[&str]| words.iter().any(|w| contains_words(all, w));
    let missing: Vec<String> = [
        (
            &[
                "cpts",
                "msp",
                "esp",
                "maison de sante",
                "maisons de sante",
                "equipe de soins primaires",
                "equipes de soins primaires",
                "premier recours",
                "medecins traitants",
                "medecin traitant",
                "centre de sante",
                "centres de sante",
                "soins primaires",
            ][..],
            "les acteurs du premier recours (CPTS, MSP, ESP)",
        ),
        (
            &["dac", "dispositif d appui a la coordination"][..],
            "le DAC",
        ),
        (
            &[
                "ess",
                "autres ess",
                "equipe de soins specialises",
                "equipes de soins specialises",
            ][..],
            "les autres ESS",
        ),
        (
            &[
                "ght",
                "etablissement",
                "etablissements",
                "etablissement de sante",
                "hopital",
                "hopitaux",
                "centre hospitalier",
                "centres hospitaliers",
                "chu",
                "clinique",
                "cliniques",
            ][..],
            "les établissements de santé",
        ),
    ]
    .iter()
    .filter(|(words, _)| !has(words))
    .map(|(_, name)| (*name).to_owned())
    .collect();
    if !missing.is_empty() {
        out.push(cooperation_champs(
            li,
            Finding::new(
                LiCoop01,
                Severity::Avertissement,
                format!("coopérations non déclarées avec {}", join_et(&missing)),
            ),
        ));
    }
}

/// LI-HOSP-01: articulation with hospital professionals. `cooperations` is
/// [`cooperation_text`], `actions` the actions champ folded by [`normalize`].
fn hosp_01(
    li: &LettreIntention,
    cooperations: &str,
    actions: Option<&str>,
    out: &mut Vec<Finding>,
) {
    if !li.cooperations.is_ok() && !li.cooperations_precisions.is_ok() {
        return;
    }
    let mut all = cooperations.to_owned();
    if let Some(t) = actions {
        all.push(' ');
        all.push_str(t);
    }
    let words = [
        "hospitalier",
        "hospitaliers",
        "hospitaliere",
        "hospitalieres",
        "hopital",
        "hopitaux",
        "chu",
        "praticien hospitalier",
        "praticiens hospitaliers",
    ];
    if !words.iter().any(|w| contains_words(&all, w)) {
        out.push(cooperation_champs(
            li,
            Finding::new(
                LiHosp01,
                Severity::Bloquant,
                "aucune articulation avec les professionnels hospitaliers n'est déclarée",
            )
            .a_completer("l'articulation prévue avec les professionnels hospitaliers"),
        ));
    }
}

/// LI-CAISSE-01: the competent caisse is the one of the association's seat.
fn caisse_01(
    t: &Territory,
    seat: Option<(String, String)>,
    ctx: &RuleContext<'_>,
    out: &mut Vec<Finding>,
) {
    if t.codes.is_empty() {
        return;
    }
    let caisses: BTreeSet<&str> = t
        .codes
        .iter()
        .filter_map(|c| ctx.reference.departement(c))
        .map(|d| d.caisse.as_str())
        .collect();
    let list: Vec<String> = caisses.iter().map(|s| (*s).to_owned()).collect();
    let seat_dep = seat
        .as_ref()
        .and_then(|(c, d)| ctx.reference.departement(d).map(|dep| (c, dep)));
    let f = match seat_dep {
        Some((champ, dep)) => {
            let msg = if !t.codes.contains(&dep.code) {
                format!(
                    "le siège de l'association ({}, {}) est hors du territoire couvert : caisse compétente à confirmer (caisse du siège : {} ; {} du territoire : {})",
                    dep.nom,
                    dep.code,
                    dep.caisse,
                    if caisses.len() > 1 {
                        "caisses"
                    } else {
                        "caisse"
                    },
                    list.join(" ; ")
                )
            } else if caisses.len() > 1 {
                format!(
                    "le territoire relève de {} ({}) ; la caisse compétente est celle du siège de l'association : {} (siège : {}, {})",
                    count(caisses.len(), "caisse", "caisses"),
                    list.join(" ; "),
                    dep.caisse,
                    dep.nom,
                    dep.code
                )
            } else {
                format!(
                    "caisse compétente : {} (siège de l'association : {}, {})",
                    dep.caisse, dep.nom, dep.code
                )
            };
            let severity = if t.codes.contains(&dep.code) {
                Severity::Info
            } else {
                Severity::Avertissement
            };
            let f = Finding::new(LiCaisse01, severity, msg);
            if champ == "demandeur" {
                f
            } else {
                f.champ(champ, Some(dep.code.clone()))
            }
        }
        None if caisses.len() > 1 => Finding::new(
            LiCaisse01,
            Severity::Info,
            format!(
                "le territoire relève de {} ({}) ; la caisse compétente, celle du siège de l'association, reste à déterminer (siège inconnu)",
                count(caisses.len(), "caisse", "caisses"),
                list.join(" ; ")
            ),
        ),
        None => Finding::new(
            LiCaisse01,
            Severity::Info,
            format!("caisse du territoire : {}", list.join("")),
        ),
    };
    out.push(f);
}
