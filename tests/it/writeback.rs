//! The write-back stage against the sandbox: what a first cycle writes, that a quiet cycle
//! writes nothing, that an applicant's edit is rewritten once, crash recovery, tolerated labels,
//! refusals recorded and not retried, and the dry-run diff. Assertions are on the sandbox's
//! mutation log.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use ds_sandbox::{Fault, MutationRecord};
use essbot::clock::Clock;
use essbot::config::LabelNames;
use essbot::config::{Settings, WriteMode};
use essbot::cycle::{self, Mappings, Services};
use essbot::precheck;
use essbot::sync::sync_all;
use essbot::writeback::{self, WritebackReport};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::TestEnv;

fn services(env: &TestEnv, settings: Settings) -> Services {
    Services::with_store(settings, env.store.clone(), Arc::new(env.clock.clone()))
        .expect("services")
}

/// Sync and pre-check, as the cycle runs them before the write-back.
async fn sync_and_check(s: &Services) -> Mappings {
    sync_and_count(s).await.0
}

/// As [`sync_and_check`], with the number of dossiers the pre-check evaluated.
async fn sync_and_count(s: &Services) -> (Mappings, usize) {
    let settings = &s.settings;
    for r in sync_all(
        &s.client,
        &s.store,
        &settings.demarches,
        s.clock.as_ref(),
        settings.schedule.full_sync_every,
    )
    .await
    {
        r.expect("sync");
    }
    let mappings = cycle::mappings(s, false).await.expect("mappings");
    assert!(mappings.errors.is_empty(), "{:?}", mappings.errors);
    let now = s.clock.now();
    let checked = precheck::run(
        &s.store,
        settings,
        &s.reference,
        &mappings.resolved,
        precheck::paris_today(now),
        now,
    )
    .await
    .expect("pre-check")
    .checked
    .len();
    (mappings, checked)
}

async fn cycle(s: &Services) -> WritebackReport {
    let mappings = sync_and_check(s).await;
    writeback::run(s, &mappings, &BTreeMap::new(), &CancellationToken::new())
        .await
        .expect("write-back")
}

#[track_caller]
fn assert_no_mutations(env: &TestEnv) {
    let m = env.sandbox.mutations();
    assert!(m.is_empty(), "expected no mutation, got {m:?}");
}

fn mutations(env: &TestEnv, name: &str, dossier: i32) -> Vec<MutationRecord> {
    env.sandbox
        .mutations()
        .into_iter()
        .filter(|m| m.name == name && m.dossier_number == Some(dossier))
        .collect()
}

/// The value sent for the annotation with stable id `n` (`{"textarea": "…"}`).
fn annotation_value(m: &MutationRecord, n: u32) -> Option<Value> {
    let id = base64_champ(n);
    m.input["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == json!(id))
        .map(|a| a["value"].clone())
}

fn base64_champ(n: u32) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("Champ-{n}"))
}

async fn label_id(env: &TestEnv, demarche: i64, name: &str) -> String {
    env.client()
        .demarche_descriptors(demarche)
        .await
        .expect("descriptors")
        .labels
        .into_iter()
        .find(|l| l.name == name)
        .expect("label on the démarche")
        .id
}

both_backends! {
    #[tokio::test]
    async fn a_first_cycle_writes_annotations_and_labels_then_a_quiet_cycle_writes_nothing(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        let report = cycle(&s).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);

        // Dossier 12 (LI-ADH-01): one batch with the report; « conforme » stays unchecked (an
        // unchecked box already says "not compliant") and the data set already has the
        // « à compléter » label on it, so no label call.
        let batch = mutations(&env, "dossierModifierAnnotations", 12);
        assert_eq!(batch.len(), 1, "{batch:?}");
        assert!(batch[0].errors.is_empty(), "{:?}", batch[0].errors);
        let rapport = annotation_value(&batch[0], 901).expect("rapport sent");
        let text = rapport["textarea"].as_str().expect("textarea key");
        assert!(
            text.starts_with("Pré-contrôle essbot : NON CONFORME"),
            "{text}"
        );
        assert!(text.contains("[LI-ADH-01] bloquant"), "{text}");
        assert_eq!(annotation_value(&batch[0], 902), None);
        assert!(mutations(&env, "dossierAjouterLabel", 12).is_empty());

        // Dossier 11 (LI-DEMO-01) gets the « à compléter » label.
        let a_completer = label_id(&env, 1001, &LabelNames::default().a_completer).await;
        let labels = mutations(&env, "dossierAjouterLabel", 11);
        assert_eq!(labels.len(), 1, "{labels:?}");
        assert_eq!(labels[0].input["labelId"], json!(a_completer));

        // Dossier 4 is compliant: box checked, « conforme » label.
        let four = mutations(&env, "dossierModifierAnnotations", 4);
        assert_eq!(
            annotation_value(&four[0], 902),
            Some(json!({"checkbox": true}))
        );
        let conforme = label_id(&env, 1001, &LabelNames::default().conforme).await;
        assert_eq!(
            mutations(&env, "dossierAjouterLabel", 4)[0].input["labelId"],
            json!(conforme)
        );
        // No message: message_usager is off by default. No label taken off: none was there.
        let all = env.sandbox.mutations();
        assert!(all.iter().all(|m| m.errors.is_empty()), "{all:?}");
        assert!(!all.iter().any(|m| m.name == "dossierEnvoyerMessage"));
        assert!(
            !all.iter().any(|m| m.name == "dossierSupprimerLabel"),
            "{all:?}"
        );
        // One annotation call per dossier.
        let per_dossier = all
            .iter()
            .filter(|m| m.name == "dossierModifierAnnotations")
            .count();
        assert_eq!(per_dossier, report.dossiers.len());
        assert_eq!(writeback::pending_count(&s.store).await.unwrap(), 0);

        // Our writes bumped dateDerniereModification: the next sync fetches those dossiers again,
        // but nothing is checked again and nothing is written again.
        for _ in 0..2 {
            env.sandbox.clear_logs();
            let (mappings, checked) = sync_and_count(&s).await;
            assert_eq!(checked, 0, "our own writes must not trigger a recheck");
            let quiet = writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
                .await
                .unwrap();
            assert_no_mutations(&env);
            assert_eq!(quiet.mutations, 0);
            assert!(quiet.dossiers.is_empty(), "{:?}", quiet.dossiers);
        }
    }
}

both_backends! {
    #[tokio::test]
    async fn an_applicant_edit_is_rewritten_once(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        cycle(&s).await;

        // Dossier 12 goes from 4 to 10 adherents for 52 libéraux: LI-ADH-01 no longer fires.
        env.sandbox.clear_logs();
        env.sandbox.edit_champ(12, 116, json!(10)).expect("edit");
        let report = cycle(&s).await;
        let batch = mutations(&env, "dossierModifierAnnotations", 12);
        assert_eq!(batch.len(), 1, "{:?}", env.sandbox.mutations());
        let text = annotation_value(&batch[0], 901).unwrap()["textarea"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.starts_with("Pré-contrôle essbot : CONFORME"), "{text}");
        let others: Vec<_> = env
            .sandbox
            .mutations()
            .into_iter()
            .filter(|m| m.dossier_number != Some(12))
            .collect();
        assert!(others.is_empty(), "only dossier 12 is written: {others:?}");
        let outcome = report
            .dossiers
            .iter()
            .find(|o| o.dossier == 12)
            .expect("dossier 12 written");
        assert!(outcome.written.iter().any(|t| t == "annotation:rapport"));

        env.sandbox.clear_logs();
        cycle(&s).await;
        assert_no_mutations(&env);
    }
}

fn with_messages(env: &TestEnv) -> Services {
    let mut settings = env.settings.clone();
    for d in &mut settings.demarches {
        d.write_back.message_usager = true;
    }
    services(env, settings)
}

/// Dossiers that received a message, with how many.
fn messages_by_dossier(env: &TestEnv) -> BTreeMap<i32, usize> {
    let mut out = BTreeMap::new();
    for m in env.sandbox.mutations() {
        if m.name == "dossierEnvoyerMessage" && m.errors.is_empty() {
            *out.entry(m.dossier_number.unwrap_or_default()).or_default() += 1;
        }
    }
    out
}

both_backends! {
    #[tokio::test]
    async fn a_crash_after_ds_executed_the_calls_sends_nothing_again(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = with_messages(&env);
        let mappings = sync_and_check(&s).await;
        let first = writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        let sent = messages_by_dossier(&env);
        assert!(!sent.is_empty(), "some dossier lacks items");
        assert!(sent.values().all(|n| *n == 1), "{sent:?}");
        let (&number, _) = sent.iter().next().unwrap();
        let body = mutations(&env, "dossierEnvoyerMessage", number)[0].input["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(body.starts_with("Bonjour,"), "{body}");
        assert!(body.contains(&format!("dossier n° {number}")), "{body}");
        // Only dossiers en construction are messaged: dossier 12 is en instruction.
        assert!(!sent.contains_key(&12));

        // The process died after DS executed the calls and before their answers were recorded:
        // every row of that dossier is `sending`, and the stored snapshot shows none of it.
        sqlx::query("UPDATE outbox SET status = 'sending' WHERE dossier = $1")
            .bind(i64::from(number))
            .execute(s.store.pool())
            .await
            .unwrap();
        assert!(writeback::pending_count(&s.store).await.unwrap() > 0);
        env.sandbox.clear_logs();
        let report = writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
            .await
            .unwrap();
        assert_no_mutations(&env);
        assert_eq!(env.requests("GetDossier").len(), 1, "read back once");
        let outcome = report
            .dossiers
            .iter()
            .find(|o| i64::from(number) == o.dossier)
            .unwrap();
        assert!(
            outcome.recovered.iter().any(|t| t == "message"),
            "{outcome:?}"
        );
        assert!(outcome.recovered.iter().any(|t| t == "annotation:rapport"));
        assert_eq!(writeback::pending_count(&s.store).await.unwrap(), 0);

        // A quiet cycle afterwards sends nothing at all.
        env.sandbox.clear_logs();
        cycle(&s).await;
        assert_no_mutations(&env);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_message_cut_off_in_transit_is_sent_exactly_once(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = with_messages(&env);
        let mappings = sync_and_check(&s).await;
        // The first message call loses its connection: DS may or may not have executed it.
        env.sandbox
            .push_fault(Fault::DropConnection, 1, Some("DossierEnvoyerMessage"));
        let first = writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
            .await
            .unwrap();
        let put_off: Vec<_> = first
            .dossiers
            .iter()
            .filter(|o| o.deferred.is_some())
            .collect();
        assert_eq!(put_off.len(), 1, "{:?}", first.dossiers);
        assert!(!first.errors.is_empty(), "the cut is reported");
        env.sandbox.clear_faults();
        // Next cycles: read back, then sent only if it is not there; never twice.
        for _ in 0..2 {
            writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
                .await
                .unwrap();
        }
        let sent = messages_by_dossier(&env);
        assert!(sent.contains_key(&(put_off[0].dossier as i32)), "{sent:?}");
        assert!(sent.values().all(|n| *n == 1), "{sent:?}");
        assert_eq!(writeback::pending_count(&s.store).await.unwrap(), 0);
        assert!(writeback::failures(&s.store).await.unwrap().is_empty());
    }
}

both_backends! {
    #[tokio::test]
    async fn a_label_already_present_is_tolerated(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        let a_completer = label_id(&env, 1001, &LabelNames::default().a_completer).await;
        let client = env.client();
        // On dossier 11 before the sync (the snapshot shows it); on 14 after (it does not).
        let dossier_id = |n: i32| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("Dossier-{n}"))
        };
        let added = client
            .add_label(&dossier_id(11), &a_completer)
            .await
            .unwrap();
        assert!(added.is_ok(), "{added:?}");
        let mappings = sync_and_check(&s).await;
        assert!(
            client
                .add_label(&dossier_id(14), &a_completer)
                .await
                .unwrap()
                .is_ok()
        );
        env.sandbox.clear_logs();
        let report = writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(mutations(&env, "dossierAjouterLabel", 11).is_empty());
        let fourteen = mutations(&env, "dossierAjouterLabel", 14);
        assert_eq!(fourteen.len(), 1);
        assert_eq!(
            fourteen[0].errors,
            vec!["Ce label est déjà associé au dossier"]
        );
        assert!(writeback::failures(&s.store).await.unwrap().is_empty());

        env.sandbox.clear_logs();
        cycle(&s).await;
        assert_no_mutations(&env);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_read_only_token_stops_the_write_back_at_the_first_refusal_and_says_so_once(db) {
        let env = TestEnv::spawn_on(db).await;
        let mut settings = env.settings.clone();
        settings.ds.token = Some("essbot-demo-readonly".to_owned().into());
        let s = services(&env, settings);
        let report = cycle(&s).await;
        // One mutation reached DS, was refused, and nothing else was tried: not one refusal per
        // dossier (the demo has 32 dossiers with something to write, in two démarches).
        let refused = env.sandbox.mutations();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0]
                .errors
                .iter()
                .any(|e| e.contains("seulement en lecture")),
            "{refused:?}"
        );
        let all: Vec<&String> = report.errors.values().flatten().collect();
        let said: Vec<&&String> = all
            .iter()
            .filter(|e| e.contains("Le jeton utilisé est configuré seulement en lecture"))
            .collect();
        assert_eq!(said.len(), 1, "{all:?}");
        assert!(said[0].contains("lecture seule"), "{said:?}");
        assert!(!all.iter().any(|e| e.contains("essbot-demo-readonly")));
        let failures = writeback::failures(&s.store).await.unwrap();
        assert!(!failures.is_empty());
        assert!(
            failures
                .iter()
                .all(|f| f.dossier == failures[0].dossier && f.error.contains("seulement en lecture")),
            "{failures:?}"
        );
        assert_eq!(writeback::pending_count(&s.store).await.unwrap(), 0);

        // The next cycle sends nothing at all, and says why in one line...
        env.sandbox.clear_logs();
        let held = cycle(&s).await;
        assert_no_mutations(&env);
        let lines: Vec<&String> = held.errors.values().flatten().collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("suspendues"), "{lines:?}");

        // ...until the retry delay has passed: one refused mutation again.
        env.clock.set(env.clock.now() + ChronoDuration::hours(25));
        env.sandbox.clear_logs();
        cycle(&s).await;
        assert_eq!(env.sandbox.mutations().len(), 1);
    }
}

both_backends! {
    #[tokio::test]
    async fn an_instructeur_without_rights_is_recorded_against_the_dossier(db) {
        let env = TestEnv::spawn_on(db).await;
        let mut settings = env.settings.clone();
        settings.ds.instructeur_id = "SW5zdHJ1Y3RldXItMg==".into();
        let s = services(&env, settings);
        let report = cycle(&s).await;
        let twelve = report.dossiers.iter().find(|o| o.dossier == 12).unwrap();
        let eleven = report.dossiers.iter().find(|o| o.dossier == 11).unwrap();
        assert!(
            twelve
                .failed
                .iter()
                .any(|f| f.target == "annotation:rapport" && f.error.contains("droits")),
            "{twelve:?}"
        );
        // Labels need no instructeur: they went through.
        assert!(
            eleven.written.iter().any(|t| t.starts_with("label:")),
            "{eleven:?}"
        );
        assert!(!eleven.failed.is_empty(), "{eleven:?}");
    }
}

both_backends! {
    #[tokio::test]
    async fn dry_run_sends_nothing_and_shows_the_diff(db) {
        let env = TestEnv::spawn_on(db).await;
        let mut settings = env.settings.clone();
        for d in &mut settings.demarches {
            d.write_back.mode = WriteMode::DryRun;
        }
        let s = services(&env, settings);
        let report = cycle(&s).await;
        assert_no_mutations(&env);
        assert_eq!(report.mutations, 0);
        let diff = report
            .dossiers
            .iter()
            .find(|o| o.dossier == 12)
            .and_then(|o| o.diff.clone())
            .expect("a diff for dossier 12");
        assert!(
            diff.starts_with(
                "annotation « Pré-contrôle automatique »\n- (vide)\n+ Pré-contrôle essbot : NON CONFORME"
            ),
            "{diff}"
        );
        // The label is already on dossier 12; dossier 11 would get it.
        assert!(!diff.contains("labels\n"), "{diff}");
        let eleven = report
            .dossiers
            .iter()
            .find(|o| o.dossier == 11)
            .and_then(|o| o.diff.clone())
            .expect("a diff for dossier 11");
        assert!(
            eleven.ends_with("labels\n+ Pré-contrôle : à compléter\n"),
            "{eleven}"
        );
        assert_eq!(writeback::pending_count(&s.store).await.unwrap(), 0);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(s.store.pool())
            .await
            .unwrap();
        assert_eq!(rows, 0, "a dry run records no intent");
    }
}

both_backends! {
    #[tokio::test]
    async fn mode_off_and_a_cancelled_stage_write_nothing(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        let mappings = sync_and_check(&s).await;
        let cancel = CancellationToken::new();
        cancel.cancel();
        let report = writeback::run(&s, &mappings, &BTreeMap::new(), &cancel)
            .await
            .unwrap();
        assert_no_mutations(&env);
        assert_eq!(report.mutations, 0);

        let mut settings = env.settings.clone();
        for d in &mut settings.demarches {
            d.write_back.mode = WriteMode::Off;
        }
        let off = services(&env, settings);
        writeback::run(&off, &mappings, &BTreeMap::new(), &CancellationToken::new())
            .await
            .unwrap();
        assert_no_mutations(&env);
    }
}

both_backends! {
    #[tokio::test]
    async fn the_next_deadline_is_written_as_a_date(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        let mappings = sync_and_check(&s).await;
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 15).unwrap();
        let deadlines = BTreeMap::from([(1_i64, date)]);
        writeback::run(&s, &mappings, &deadlines, &CancellationToken::new())
            .await
            .unwrap();
        let batch = mutations(&env, "dossierModifierAnnotations", 1);
        assert_eq!(
            annotation_value(&batch[0], 903),
            Some(json!({"date": "2026-12-15"}))
        );
        assert_eq!(
            annotation_value(&mutations(&env, "dossierModifierAnnotations", 2)[0], 903),
            None
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn a_label_missing_on_the_demarche_is_a_configuration_error(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        let mappings = sync_and_check(&s).await;
        // The cached descriptors of 1001 lose the « dérogation CPN » label.
        let json: String =
            sqlx::query_scalar("SELECT descriptors FROM demarche_descriptors WHERE demarche = 1001")
                .fetch_one(s.store.pool())
                .await
                .unwrap();
        let mut d: Value = serde_json::from_str(&json).unwrap();
        d["labels"]
            .as_array_mut()
            .unwrap()
            .retain(|l| l["name"] != json!(LabelNames::default().derogation_cpn));
        sqlx::query("UPDATE demarche_descriptors SET descriptors = $1 WHERE demarche = 1001")
            .bind(d.to_string())
            .execute(s.store.pool())
            .await
            .unwrap();

        let problems = writeback::check_config(&s, &mappings).await.unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[&1001][0].contains("\"Pré-contrôle : dérogation CPN\" does not exist"),
            "{problems:?}"
        );
        let report = writeback::run(&s, &mappings, &BTreeMap::new(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(
            report.errors[&1001][0]
                .contains("le label « Pré-contrôle : dérogation CPN » n'existe pas sur la démarche"),
            "{:?}",
            report.errors
        );
        // Annotations are still written on 1001; its labels are left alone; 1002 is untouched.
        assert_eq!(mutations(&env, "dossierModifierAnnotations", 11).len(), 1);
        assert!(mutations(&env, "dossierAjouterLabel", 11).is_empty());
        assert!(!mutations(&env, "dossierAjouterLabel", 29).is_empty());
    }
}

both_backends! {
    #[tokio::test]
    async fn the_cycle_runs_the_stage_and_a_second_cycle_writes_nothing(db) {
        let env = TestEnv::spawn_on(db).await;
        let s = services(&env, env.settings.clone());
        let cancel = CancellationToken::new();
        let first = cycle::run_once(&s, &cancel).await.expect("first cycle");
        assert!(first.mutations > 0, "{first:?}");
        assert_eq!(mutations(&env, "dossierModifierAnnotations", 12).len(), 1);
        env.sandbox.clear_logs();
        let second = cycle::run_once(&s, &cancel).await.expect("second cycle");
        assert_no_mutations(&env);
        assert_eq!(second.mutations, 0);
        assert_eq!(second.outbox_pending, 0);
    }
}
