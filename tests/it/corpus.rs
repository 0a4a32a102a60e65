//! Bad input: a corpus of hostile dossiers served by the sandbox next to the demo data set and run
//! through a whole cycle, then a property test feeding mutated real dossier JSON through decode,
//! extraction and the rules.
//!
//! Every hostile dossier ends with findings and a verdict other than `conforme`, or with a
//! recorded decode error naming it and the field at fault; none makes the cycle panic or stops
//! the other dossiers. The report text written to DS for them is plain text: no markup, no
//! control character, no bidirectional override from the applicant.
//!
//! The property test runs `FUZZ_CASES` cases (a few seconds); for a longer run:
//! `PROPTEST_CASES=20000 cargo test --test it corpus::fuzz`.

use std::sync::Arc;

use chrono::NaiveDate;
use essbot::cycle::{self, Services};
use essbot::ds::decode_dossier;
use essbot::ds::model::DossierState;
use essbot::precheck;
use essbot::rules::{
    self, KnownProject, KnownProjects, ReferenceData, ResolvedMapping, RuleContext, RulesConfig,
    Verdict, extract_lettre, extract_projet,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::TestEnv;

/// A compliant lettre d'intention on démarche 1001 (cardiology, Bouches-du-Rhône), in the data
/// set's format: the control of the corpus, and the base every hostile entry changes.
fn base_lettre(number: i64) -> Value {
    json!({
        "number": number, "demarche": 1001, "state": "en_construction",
        "dateDepot": "2026-09-07T09:15:00+02:00",
        "demandeur": {"type": "PersonnePhysique", "civilite": "Mme", "nom": "Rey", "prenom": "Nathalie", "email": "n.rey@corpus.example"},
        "usager": "n.rey@corpus.example",
        "champs": [
            {"id": 101, "rows": [[{"id": 102, "value": "Dr Nathalie Rey"}, {"id": 103, "value": "Cardiologie"}, {"id": 104, "value": "10005656565"}]]},
            {"id": 110, "value": ["Cardiologie"]},
            {"id": 111, "value": ["13 - Bouches-du-Rhône"]},
            {"id": 112, "value": null},
            {"id": 113, "value": "Cardiologie : prévention cardiovasculaire, insuffisance cardiaque, téléexpertise ECG."},
            {"id": 114, "value": 310},
            {"id": 115, "value": 190},
            {"id": 116, "value": 40},
            {"id": 117, "value": {"id": "W133022345", "title": "ESS Cardiologie Bouches-du-Rhône", "address": {"label": "15 La Canebière 13001 Marseille", "postalCode": "13001", "cityName": "Marseille", "cityCode": "13201", "departmentCode": "13", "departmentName": "Bouches-du-Rhône", "regionCode": "93", "type": "housenumber"}}},
            {"id": 118, "value": null},
            {"id": 119, "value": ["CPTS", "MSP / ESP", "DAC", "Autres ESS", "GHT et établissements de santé", "Professionnels hospitaliers"]},
            {"id": 120, "value": "Conventions signées avec les CPTS et le GHT ; participation à la filière territoriale."},
            {"id": 121, "rows": [
                [{"id": 122, "value": "Dr Nathalie Rey"}, {"id": 123, "value": "Médecin spécialiste libéral"}, {"id": 124, "value": "Délibérative"}],
                [{"id": 122, "value": "Dr Samir Aït"}, {"id": 123, "value": "Médecin spécialiste libéral"}, {"id": 124, "value": "Délibérative"}]
            ]},
            {"id": 125, "value": "Téléexpertise sous 7 jours pour les médecins traitants, consultations avancées mensuelles en MSP, organisation du parcours avec le CHU (troisième recours) et les CPTS (premier recours)."},
            {"id": 126, "value": ["Structuration de l'offre de second recours avec le premier et le troisième recours", "Avis spécialisé ponctuel à la demande des médecins traitants (consultation ou téléexpertise)"]},
            {"id": 127, "value": false},
            {"id": 128, "value": null}
        ]
    })
}

/// A compliant projet de santé on démarche 1002, linked to `link`.
fn base_projet(number: i64, link: Value) -> Value {
    json!({
        "number": number, "demarche": 1002, "state": "en_construction",
        "dateDepot": "2026-05-20T10:00:00+02:00",
        "demandeur": {"type": "PersonnePhysique", "civilite": "Mme", "nom": "Le Gall", "prenom": "Anne", "email": "a.legall@corpus.example"},
        "usager": "a.legall@corpus.example",
        "champs": [
            {"id": 201, "value": link},
            {"id": 202, "value": "Délais de rendez-vous supérieurs à quatre mois hors métropoles ; 38 % des patients adressés viennent de zones prioritaires."},
            {"id": 203, "value": "Téléexpertise sous 7 jours, consultations avancées mensuelles dans 6 MSP, staff mensuel avec le CHU."},
            {"id": 204, "value": ["Nombre de professionnels de santé adresseurs, dont médecins traitants", "Nombre de patients pris en charge", "Nombre de téléexpertises réalisées", "Nombre de membres proposant des consultations avancées", "Nombre de consultations avancées réalisées"]},
            {"id": 205, "value": "Satisfaction des médecins traitants adresseurs, mesurée par questionnaire annuel."},
            {"id": 206, "value": "Revue annuelle du projet en assemblée générale, avec l'ARS et la CPAM."},
            {"id": 207, "rows": [
                [{"id": 208, "value": "Dr Anne Le Gall"}, {"id": 209, "value": "Médecin spécialiste libéral"}, {"id": 210, "value": "Délibérative"}]
            ]},
            {"id": 211, "value": [{"filename": "plan.pdf", "contentType": "application/pdf", "byteSize": 1000, "checksum": "k5tM2dWm6Qf1nY0pR3xZ7w=="}]},
            {"id": 212, "value": 42},
            {"id": 213, "value": 168}
        ]
    })
}

/// One hostile dossier: a base, then champs replaced (`set`: id → the data set's champ entry
/// minus its id) or removed (`drop`).
struct Entry {
    what: &'static str,
    dossier: Value,
}

fn with(mut d: Value, set: Value, drop: &[u64]) -> Value {
    let champs = d["champs"].as_array_mut().expect("champs");
    champs.retain(|c| !drop.contains(&c["id"].as_u64().unwrap_or_default()));
    if let Value::Object(set) = set {
        for (id, entry) in set {
            let id: u64 = id.parse().expect("champ id");
            let mut entry = entry;
            entry["id"] = json!(id);
            match champs.iter_mut().find(|c| c["id"] == json!(id)) {
                Some(c) => *c = entry,
                None => champs.push(entry),
            }
        }
    }
    d
}

const MARKUP: &str =
    "<script>alert('x')</script>**gras** \u{0}\u{1b}[31mrouge\u{1b}[0m \u{202e}evil\u{202c}";

/// The corpus: numbers 501… on démarche 1001, 601… on 1002.
fn corpus() -> Vec<Entry> {
    let li = base_lettre;
    let megabyte = "Cardiologie <b>".repeat(70_000);
    let dup_rows = json!([
        [{"id": 122, "value": "Dr Rey"}, {"id": 123, "value": "Médecin généraliste"}, {"id": 124, "value": "Délibérative"}],
        [{"id": 122, "value": "Dr Rey"}, {"id": 123, "value": "Médecin généraliste"}, {"id": 124, "value": "Délibérative"}],
        [{"id": 122, "value": "Dr Rey"}, {"id": 123, "value": "Médecin généraliste"}, {"id": 124, "value": "Délibérative"}]
    ]);
    vec![
        Entry {
            what: "missing champs (specialty, figures, governance)",
            dossier: with(li(501), json!({}), &[110, 114, 115, 116, 121]),
        },
        Entry {
            what: "negative adherents \"-5\"",
            dossier: with(li(502), json!({"116": {"value": "-5"}}), &[]),
        },
        Entry {
            what: "absurd number 99999999999999999999",
            dossier: with(
                li(503),
                json!({"116": {"value": "99999999999999999999"}, "114": {"value": "99999999999999999999"}}),
                &[],
            ),
        },
        Entry {
            what: "words and empty strings for numbers",
            dossier: with(
                li(504),
                json!({"116": {"value": "douze"}, "115": {"value": ""}}),
                &[],
            ),
        },
        Entry {
            what: "numbers DS's BigInt would not accept (decimal, exponent, padded)",
            dossier: with(
                li(505),
                json!({"114": {"value": "12.5"}, "115": {"value": "1e3"}, "116": {"value": " 34 "}}),
                &[],
            ),
        },
        Entry {
            what: "1 MB texts and a 1 MB name",
            dossier: with(
                li(506),
                json!({"113": {"value": megabyte}, "125": {"value": megabyte},
                       "121": {"rows": [[{"id": 122, "value": megabyte}, {"id": 123, "value": "CPTS"}, {"id": 124, "value": "Délibérative"}]]}}),
                &[],
            ),
        },
        Entry {
            what: "markup and control characters in quoted values",
            dossier: with(
                li(507),
                json!({
                    "111": {"value": [MARKUP, "13 - Bouches-du-Rhône"]},
                    "121": {"rows": [[{"id": 122, "value": MARKUP}, {"id": 123, "value": format!("<b>CPTS</b>{MARKUP}")}, {"id": 124, "value": "Délibérative"}]]},
                    "113": {"value": format!("{MARKUP} glaucome")},
                    "101": {"rows": [[{"id": 102, "value": MARKUP}, {"id": 103, "value": "Médecine générale"}, {"id": 104, "value": MARKUP}]]}
                }),
                &[],
            ),
        },
        Entry {
            what: "unknown départements 99 and 2C, a département in the région champ",
            dossier: with(
                li(508),
                json!({"111": {"value": ["99 - Inconnu", "2C", "2C - Corse du Centre"]}, "112": {"value": {"code": "75", "name": "75 - Paris"}}}),
                &[],
            ),
        },
        Entry {
            what: "duplicated repetition rows",
            dossier: with(
                li(509),
                json!({"121": {"rows": dup_rows},
                       "101": {"rows": [[{"id": 102, "value": "Dr Rey"}], [{"id": 102, "value": "Dr Rey"}], [{"id": 102, "value": "Dr Rey"}]]}}),
                &[],
            ),
        },
        Entry {
            what: "every champ missing",
            dossier: {
                let mut d = li(510);
                d["champs"] = json!([]);
                d
            },
        },
        Entry {
            what: "link to an unknown dossier",
            dossier: base_projet(601, json!(424_242)),
        },
        Entry {
            what: "link to a projet de santé instead of a lettre",
            dossier: base_projet(602, json!(25)),
        },
        Entry {
            what: "link to a negative number",
            dossier: base_projet(603, json!(-1)),
        },
        Entry {
            what: "link missing, hostile texts",
            dossier: with(
                base_projet(604, Value::Null),
                json!({"202": {"value": MARKUP}, "212": {"value": "-5"}, "213": {"value": "douze"}}),
                &[201],
            ),
        },
    ]
}

/// Control characters, bidi overrides and applicant markup that must never reach DS.
fn assert_plain(text: &str, context: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{context}: {c:?} in {text:?}"
        );
    }
    for bad in ["<script", "</", "<b>", "**", "\u{1b}"] {
        assert!(!text.contains(bad), "{context}: {bad:?} in {text}");
    }
}

#[tokio::test]
async fn hostile_dossiers_get_findings_or_a_recorded_decode_error_and_the_others_go_on() {
    let env = TestEnv::spawn().await;
    let corpus = corpus();
    env.sandbox
        .add_dossier(base_lettre(500))
        .expect("the control dossier");
    for e in &corpus {
        env.sandbox
            .add_dossier(e.dossier.clone())
            .unwrap_or_else(|err| panic!("the sandbox refused {:?}: {err:?}", e.what));
    }
    let services = Services::with_store(
        env.settings.clone(),
        env.store.clone(),
        Arc::new(env.clock.clone()),
    )
    .expect("services");
    let report = cycle::run_once(&services, &CancellationToken::new())
        .await
        .expect("the cycle runs");

    let checks = precheck::stored_checks(&env.store).await.expect("checks");
    let verdict = |n: i64| checks.iter().find(|c| c.dossier == n);
    let decode_errors = env.store.decode_errors(None, false).await.expect("errors");

    // The control passes: the corpus fails because of what each entry changes.
    let control = verdict(500).expect("control checked");
    assert_eq!(control.verdict, "conforme", "{}", control.report_text);
    // The demo dossiers go on as usual.
    assert_eq!(verdict(1).expect("dossier 1").verdict, "conforme");
    assert_eq!(verdict(25).expect("dossier 25").verdict, "conforme");
    assert_ne!(verdict(12).expect("dossier 12").verdict, "conforme");

    for e in &corpus {
        let n = e.dossier["number"].as_i64().expect("number");
        match verdict(n) {
            Some(c) => {
                assert_ne!(c.verdict, "conforme", "{} ({n}): {}", e.what, c.report_text);
                assert!(
                    c.report_json["findings"]
                        .as_array()
                        .is_some_and(|f| !f.is_empty()),
                    "{} ({n}): no findings",
                    e.what
                );
                assert_plain(&c.report_text, e.what);
                assert!(
                    c.report_text.len() < 20_000,
                    "{}: report of {} bytes",
                    e.what,
                    c.report_text.len()
                );
            }
            None => {
                assert!(
                    report.unreadable.contains(&n),
                    "{} ({n}): not checked",
                    e.what
                );
                let err = decode_errors
                    .iter()
                    .find(|d| d.number == Some(n))
                    .unwrap_or_else(|| panic!("{} ({n}): no decode error recorded", e.what));
                assert!(!err.field_path.is_empty(), "{err:?}");
            }
        }
    }

    // What was written to DS for the corpus is plain text too.
    for m in env.sandbox.mutations() {
        if m.dossier_number.is_some_and(|n| n >= 500) {
            assert_plain(&m.input.to_string(), "mutation input");
            assert!(
                !m.input.to_string().contains("\\u0000"),
                "NUL in {:?}",
                m.input
            );
        }
    }
}

/// A real dossier node as DS sends it, from the store after a sync of the demo data set.
async fn raw_dossiers(env: &TestEnv, numbers: &[i64]) -> Vec<Value> {
    let mut out = Vec::new();
    for n in numbers {
        let stored = env.store.dossier(*n).await.expect("store").expect("stored");
        let text = stored.raw.expect("raw snapshot");
        out.push(serde_json::from_str(&text).expect("the snapshot is JSON"));
    }
    out
}

#[tokio::test]
async fn null_where_ds_says_non_null_is_a_decode_error_naming_the_dossier_and_field() {
    let env = TestEnv::spawn().await;
    let services = Services::with_store(
        env.settings.clone(),
        env.store.clone(),
        Arc::new(env.clock.clone()),
    )
    .expect("services");
    cycle::run_once(&services, &CancellationToken::new())
        .await
        .expect("cycle");
    let raw = raw_dossiers(&env, &[1]).await.remove(0);
    decode_dossier(&raw).expect("the real node decodes");
    for pointer in [
        "/state",
        "/dateDepot",
        "/champs",
        "/champs/0/id",
        "/champs/0/label",
        "/champs/1/__typename",
        "/id",
        "/champs/1/values",
    ] {
        let mut bad = raw.clone();
        *bad.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer} not in dossier 1")) = Value::Null;
        let err = decode_dossier(&bad).expect_err(pointer);
        assert_eq!(err.number, Some(1), "{pointer}: {err}");
        assert!(!err.path.is_empty(), "{pointer}: {err}");
        assert!(err.to_string().contains("dossier 1"), "{err}");
    }
    let mut bad = raw.clone();
    bad["number"] = Value::Null;
    let err = decode_dossier(&bad).expect_err("number null");
    assert!(err.path.contains("number"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Property test: mutated real dossier JSON.

/// Cases per run in CI; `PROPTEST_CASES` overrides it.
const FUZZ_CASES: u32 = 300;

/// A replacement value: types swapped, odd numbers, huge or hostile strings.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(-5)),
        Just(json!(1e300)),
        Just(json!(0.5)),
        Just(json!("")),
        Just(json!("-5")),
        Just(json!("douze")),
        Just(json!("99999999999999999999")),
        Just(json!("2C")),
        Just(json!("75 - Paris")),
        Just(json!(MARKUP)),
        Just(json!("x".repeat(200_000))),
        Just(json!("2026-02-30T25:00:00+01:00")),
        Just(json!([])),
        Just(json!({})),
        Just(json!([null, 1, "a"])),
        ".{0,40}".prop_map(Value::String),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Remove,
    Replace(Value),
    /// Duplicates an element of an array (a repetition row, a champ, a list item).
    Duplicate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Remove),
        4 => odd_value().prop_map(Op::Replace),
        1 => Just(Op::Duplicate),
    ]
}

/// Walks `choices` (each taken modulo the number of children) down the tree, at most `depth`
/// levels, then applies `op` to the node reached.
fn mutate(v: &mut Value, choices: &[usize], op: &Op) {
    let Some((&first, rest)) = choices.split_first() else {
        return;
    };
    let len = match v {
        Value::Object(o) => o.len(),
        Value::Array(a) => a.len(),
        _ => return,
    };
    if len == 0 {
        return;
    }
    let i = first % len;
    let child_is_leafish = rest.is_empty()
        || match v {
            Value::Object(o) => !o
                .values()
                .nth(i)
                .is_some_and(|c| c.is_object() || c.is_array()),
            Value::Array(a) => !(a[i].is_object() || a[i].is_array()),
            _ => true,
        };
    if !child_is_leafish {
        let child = match v {
            Value::Object(o) => o.values_mut().nth(i),
            Value::Array(a) => a.get_mut(i),
            _ => None,
        };
        if let Some(child) = child {
            mutate(child, rest, op);
        }
        return;
    }
    match (v, op) {
        (Value::Object(o), Op::Remove) => {
            let key = o.keys().nth(i).cloned();
            if let Some(k) = key {
                o.remove(&k);
            }
        }
        (Value::Array(a), Op::Remove) => {
            a.remove(i);
        }
        (Value::Object(o), Op::Replace(new)) => {
            if let Some(slot) = o.values_mut().nth(i) {
                *slot = new.clone();
            }
        }
        (Value::Array(a), Op::Replace(new)) => a[i] = new.clone(),
        (Value::Array(a), Op::Duplicate) => {
            let copy = a[i].clone();
            a.insert(i, copy);
        }
        (Value::Object(_), Op::Duplicate) | (_, _) => {}
    }
}

fn mutations() -> impl Strategy<Value = Vec<(Vec<usize>, Op)>> {
    proptest::collection::vec(
        (proptest::collection::vec(any::<usize>(), 1..7), op()),
        1..5,
    )
}

/// Seeds, mappings and the rule context, read once from a sandbox.
struct FuzzSetup {
    lettre: Value,
    projet: Value,
    li_mapping: ResolvedMapping,
    ps_mapping: ResolvedMapping,
    reference: ReferenceData,
    projets: KnownProjects,
}

fn fuzz_setup() -> FuzzSetup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let env = TestEnv::spawn().await;
        let services = Services::with_store(
            env.settings.clone(),
            env.store.clone(),
            Arc::new(env.clock.clone()),
        )
        .expect("services");
        cycle::run_once(&services, &CancellationToken::new())
            .await
            .expect("cycle");
        let mut mappings = cycle::mappings(&services, false)
            .await
            .expect("mappings")
            .resolved;
        let mut raw = raw_dossiers(&env, &[1, 25]).await;
        let reference = ReferenceData::builtin();
        let li = decode_dossier(&raw[0]).expect("dossier 1");
        let li_mapping = mappings.remove(&1001).expect("1001 resolved");
        let known = KnownProject::from_lettre(
            &extract_lettre(&li, &li_mapping),
            DossierState::Accepte,
            &reference,
        );
        FuzzSetup {
            projet: raw.remove(1),
            lettre: raw.remove(0),
            li_mapping,
            ps_mapping: mappings.remove(&1002).expect("1002 resolved"),
            reference,
            projets: KnownProjects::new([known]),
        }
    })
}

fn check_one(
    raw: &Value,
    mapping: &ResolvedMapping,
    ctx: &RuleContext<'_>,
) -> Result<(), TestCaseError> {
    let Ok(dossier) = decode_dossier(raw) else {
        return Ok(());
    };
    let report = rules::check(&dossier, mapping, ctx);
    let required_ok = match mapping.kind {
        essbot::config::DemarcheKind::LettreIntention => {
            let li = extract_lettre(&dossier, mapping);
            li.porteurs.is_ok()
                && li.specialites.is_ok()
                && (li.territoire_departements.is_ok() || li.territoire_region.is_ok())
                && li.nb_medecins_specialite.is_ok()
                && li.nb_liberaux_specialite.is_ok()
                && li.nb_adherents.is_ok()
                && (li.cooperations.is_ok() || li.cooperations_precisions.is_ok())
                && li.gouvernance.is_ok()
                && (li.actions.is_ok() || li.actions_mission_socle.is_ok())
        }
        essbot::config::DemarcheKind::ProjetSante => {
            let ps = extract_projet(&dossier, mapping);
            ps.lien_lettre_intention.is_ok()
                && ps.diagnostic_territorial.is_ok()
                && ps.missions_actions.is_ok()
                && ps.indicateurs.is_ok()
                && ps.indicateur_qualitatif.is_ok()
                && ps.modalites_actualisation.is_ok()
                && ps.gouvernance.is_ok()
                && ps.plan_deploiement.is_ok()
                && ps.nb_adherents.is_ok()
                && ps.nb_liberaux_specialite.is_ok()
        }
    };
    let text = report.text();
    if !required_ok {
        prop_assert_ne!(report.verdict, Verdict::Conforme, "{}", text);
    }
    prop_assert_eq!(text.lines().count(), report.findings.len() + 2, "{}", text);
    for c in text.chars() {
        prop_assert!(c == '\n' || !c.is_control(), "{:?} in {}", c, text);
    }
    Ok(())
}

#[test]
fn fuzz_mutated_dossier_json_never_panics_nor_passes_without_its_required_inputs() {
    let setup = fuzz_setup();
    let config = RulesConfig::default();
    let ctx = RuleContext {
        reference: &setup.reference,
        config: &config,
        today: NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
        projets: &setup.projets,
    };
    // The seeds themselves pass: a failure below comes from the mutation.
    for (raw, mapping) in [
        (&setup.lettre, &setup.li_mapping),
        (&setup.projet, &setup.ps_mapping),
    ] {
        let d = decode_dossier(raw).expect("seed decodes");
        let r = rules::check(&d, mapping, &ctx);
        assert_eq!(r.verdict, Verdict::Conforme, "{}", r.text());
    }
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(FUZZ_CASES);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(any::<bool>(), mutations()), |(projet, muts)| {
            let (seed, mapping) = if projet {
                (&setup.projet, &setup.ps_mapping)
            } else {
                (&setup.lettre, &setup.li_mapping)
            };
            let mut raw = seed.clone();
            for (path, op) in &muts {
                mutate(&mut raw, path, op);
            }
            check_one(&raw, mapping, &ctx)
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
