//! Same project, same verdict, whatever the form (rules.md, "How essbot reads a dossier",
//! principle 2). The demo data set files the same 32 projects through four forms built
//! independently of each other (docs/demo-forms.md, sandbox/data/README.md):
//!
//! | form | démarches | dossiers | configuration |
//! |---|---|---|---|
//! | A | 1001, 1002 | 1–32 | config/demo.toml |
//! | B | 1003, 1004 | 101–132 | config/demo-form-b.toml |
//! | C | 1005, 1006 | 201–232 | config/demo-form-c.toml |
//! | D | 1007, 1008 | 301–332 | config/demo-form-d.toml |
//!
//! One real cycle per form, each on its own store, against one sandbox, on the data set's
//! "today". Project n must get, through B (dossier n + 100), C (n + 200) and D (n + 300), the
//! verdict and the set of (severity, rule id) pairs it gets through A (dossier n); and essbot
//! must have put on each dossier the label its form's configuration names for that verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use essbot::config;
use essbot::precheck::{self, StoredCheck};
use essbot::store::Store;

use crate::helpers::{TestEnv, demo_env, run_cycle_with, settings_for};

const FORM_B: &str = include_str!("../../config/demo-form-b.toml");
const FORM_C: &str = include_str!("../../config/demo-form-c.toml");
const FORM_D: &str = include_str!("../../config/demo-form-d.toml");

/// The projects, numbered as form A's dossiers.
const PROJECTS: std::ops::RangeInclusive<i64> = 1..=32;

struct Form {
    name: &'static str,
    /// Form dossier number = project number + offset.
    offset: i64,
    config: &'static str,
}

const FORMS: [Form; 4] = [
    Form {
        name: "A",
        offset: 0,
        config: config::DEMO_CONFIG,
    },
    Form {
        name: "B",
        offset: 100,
        config: FORM_B,
    },
    Form {
        name: "C",
        offset: 200,
        config: FORM_C,
    },
    Form {
        name: "D",
        offset: 300,
        config: FORM_D,
    },
];

/// What a form's cycle made of one dossier.
struct Outcome {
    dossier: i64,
    demarche: i64,
    verdict: String,
    /// "severity RULE-ID", worst severity first, then by rule id; each pair once.
    findings: Vec<String>,
    report_text: String,
}

impl Outcome {
    fn of(check: &StoredCheck) -> Self {
        let mut pairs: BTreeSet<(u8, String, String)> = BTreeSet::new();
        for f in check.report_json["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("dossier {}: no findings array", check.dossier))
        {
            let severity = f["severity"].as_str().expect("severity").to_owned();
            let rule = f["rule"].as_str().expect("rule").to_owned();
            pairs.insert((rank(&severity), severity, rule));
        }
        Self {
            dossier: check.dossier,
            demarche: check.demarche,
            verdict: check.verdict.clone(),
            findings: pairs
                .into_iter()
                .map(|(_, severity, rule)| format!("{severity} {rule}"))
                .collect(),
            report_text: check.report_text.clone(),
        }
    }

    fn same_as(&self, other: &Outcome) -> bool {
        self.verdict == other.verdict && self.findings == other.findings
    }
}

/// Severities worst first (rules.md, "Severities and verdict").
fn rank(severity: &str) -> u8 {
    match severity {
        "bloquant" => 0,
        "derogation" => 1,
        "a_verifier" => 2,
        "avertissement" => 3,
        "info" => 4,
        _ => 5,
    }
}

/// Runs the form's cycle on its own store (form A: the environment's demo configuration and
/// store) and returns its outcomes by project number.
async fn run_form(env: &TestEnv, form: &Form) -> BTreeMap<i64, Outcome> {
    let (settings, store) = if form.offset == 0 {
        (env.settings.clone(), env.store.clone())
    } else {
        let db = env.dir.path().join(format!("form-{}.db", form.name));
        let settings = settings_for(form.config, &env.sandbox.url(), &db)
            .unwrap_or_else(|e| panic!("form {}: the configuration does not load: {e}", form.name));
        let store = Store::connect(&settings.database)
            .await
            .expect("open the store");
        (settings, store)
    };
    let report = run_cycle_with(&settings, &store, &env.clock).await;
    assert!(
        report.errors.is_empty(),
        "form {}: the cycle had errors: {:?}",
        form.name,
        report.errors
    );
    assert!(
        report.unreadable.is_empty(),
        "form {}: unreadable dossiers {:?}",
        form.name,
        report.unreadable
    );
    let checks = precheck::stored_checks(&store).await.expect("checks");
    let numbers: Vec<i64> = checks.iter().map(|c| c.dossier).collect();
    let expected: Vec<i64> = PROJECTS.map(|n| n + form.offset).collect();
    assert_eq!(numbers, expected, "form {}: dossiers checked", form.name);
    checks
        .iter()
        .map(|c| (c.dossier - form.offset, Outcome::of(c)))
        .collect()
}

/// The label names of each démarche of a configuration, by verdict: the
/// `[demarches.write_back.label_names]` of the démarche, or the defaults of rules.md.
fn label_names(config_text: &str) -> BTreeMap<i64, BTreeMap<&'static str, String>> {
    let parsed: toml::Table = toml::from_str(config_text).expect("configuration is TOML");
    let mut out = BTreeMap::new();
    for d in parsed["demarches"].as_array().expect("démarches") {
        let number = d["number"].as_integer().expect("number");
        let given = d
            .get("write_back")
            .and_then(|w| w.get("label_names"))
            .and_then(toml::Value::as_table);
        let names = [
            ("conforme", "Pré-contrôle : conforme"),
            ("a_verifier", "Pré-contrôle : à vérifier"),
            ("non_conforme", "Pré-contrôle : à compléter"),
            ("derogation_cpn", "Pré-contrôle : dérogation CPN"),
        ]
        .into_iter()
        .map(|(verdict, default)| {
            let key = match verdict {
                "non_conforme" => "a_completer",
                other => other,
            };
            let name = given
                .and_then(|t| t.get(key))
                .map(|v| v.as_str().expect("a label name").to_owned())
                .unwrap_or_else(|| default.to_owned());
            (verdict, name)
        })
        .collect();
        out.insert(number, names);
    }
    out
}

#[tokio::test]
async fn every_project_gets_the_same_verdict_and_rule_ids_through_every_form() {
    let env = demo_env().await;
    let mut outcomes: Vec<BTreeMap<i64, Outcome>> = Vec::new();
    for form in &FORMS {
        outcomes.push(run_form(&env, form).await);
    }

    // The labels essbot left on each dossier are the one its form's configuration names for the
    // verdict (these démarches carry no label of their own besides essbot's).
    let client = env.client();
    let mut wrong_labels = Vec::new();
    for (form, by_project) in FORMS.iter().zip(&outcomes) {
        let names = label_names(form.config);
        for o in by_project.values() {
            let wanted = names[&o.demarche]
                .get(o.verdict.as_str())
                .unwrap_or_else(|| panic!("dossier {}: unknown verdict {}", o.dossier, o.verdict));
            let dossier = client
                .dossier(o.dossier)
                .await
                .expect("dossier")
                .parsed
                .expect("readable dossier");
            let on: Vec<&str> = dossier.labels.iter().map(|l| l.name.as_str()).collect();
            if on != [wanted.as_str()] {
                wrong_labels.push(format!(
                    "form {} dossier {} ({}): labels {on:?}, expected [{wanted:?}]",
                    form.name, o.dossier, o.verdict
                ));
            }
        }
    }

    // The invariance, with a table of every project whose outcome differs.
    let mut table = String::new();
    let mut texts = String::new();
    let mut differing = 0;
    for n in PROJECTS {
        let a = &outcomes[0][&n];
        if outcomes[1..].iter().all(|o| o[&n].same_as(a)) {
            continue;
        }
        differing += 1;
        for (form, by_project) in FORMS.iter().zip(&outcomes) {
            let o = &by_project[&n];
            let project = if form.offset == 0 {
                n.to_string()
            } else {
                String::new()
            };
            let form_cell = if o.same_as(a) {
                form.name.to_owned()
            } else {
                format!("{} ≠", form.name)
            };
            let _ = writeln!(
                table,
                "{project:>7} | {form_cell:<4} | {:>7} | {:<14} | {}",
                o.dossier,
                o.verdict,
                o.findings.join(", ")
            );
            if form.offset != 0 && !o.same_as(a) {
                let missing: Vec<&String> = a
                    .findings
                    .iter()
                    .filter(|f| !o.findings.contains(f))
                    .collect();
                let extra: Vec<&String> = o
                    .findings
                    .iter()
                    .filter(|f| !a.findings.contains(f))
                    .collect();
                let _ = writeln!(
                    table,
                    "        |      |         |                | missing {missing:?}, extra {extra:?}"
                );
            }
            let _ = writeln!(
                texts,
                "--- form {}, dossier {}:\n{}",
                form.name, o.dossier, o.report_text
            );
        }
        table.push_str("--------+------+---------+----------------+--------------------\n");
    }
    assert!(
        differing == 0,
        "{differing} project(s) of {} get another outcome through another form:\n\
         project | form | dossier | verdict        | (severity, rule id)\n\
         --------+------+---------+----------------+--------------------\n{table}\n\
         The reports:\n{texts}",
        PROJECTS.count()
    );
    assert!(wrong_labels.is_empty(), "{}", wrong_labels.join("\n"));
}
