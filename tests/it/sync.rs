//! The sync against the real sandbox over HTTP and a real SQLite file: only changes fetched,
//! the inclusive boundary de-duplicated, paging, crash and resume, decode errors, API errors
//! per démarche, deletions, and the cost of a cycle with nothing changed.

use std::time::Duration;

use ds_sandbox::{Dataset, DeletedDossierReason, DossierState as SbState, Fault};
use essbot::clock::Clock;
use essbot::ds::model::DossierState;
use essbot::ds::{AnnotationValue, AnnotationWrite};
use essbot::store::{DossierStatus, HistoryKind, PassKind};
use essbot::sync::{SyncError, sync_all, sync_demarche};
use serde_json::json;

use crate::helpers::TestEnv;

const DAY: Duration = Duration::from_secs(86_400);
const LIST: &str = "GetDemarcheDossiers";
const DELETED: &str = "GetDeletedDossiers";

/// Visible dossiers of démarche 1001 in the demo data set (1 to 24; 33 is hidden).
const DEMO_1001: usize = 24;

both_backends! {
    #[tokio::test]
    async fn the_first_sync_is_a_full_reconciliation_then_only_changes_are_fetched(db) {
        let env = TestEnv::spawn_on(db).await;
        let client = env.client();
        let d = env.demarche(1001);

        let first = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(first.pass, PassKind::Full);
        assert_eq!(first.new.len(), DEMO_1001);
        assert_eq!(first.to_check.len(), DEMO_1001);
        assert_eq!(
            first.requests, 3,
            "one listing page and the two deletion lists"
        );
        assert_eq!(env.requests(LIST).len(), 1);
        assert_eq!(env.requests(DELETED).len(), 2);
        let watermark = first.watermark.unwrap();
        for n in &first.to_check {
            let requested = env
                .store
                .dossier(*n)
                .await
                .unwrap()
                .unwrap()
                .check_requested_at;
            env.store
                .mark_checked(*n, requested.unwrap())
                .await
                .unwrap();
        }

        // The applicant edits dossier 10's « Périmètre médical ».
        env.sandbox.clear_logs();
        env.sandbox
            .edit_champ(
                10,
                113,
                json!("Tout le département, y compris les zones blanches"),
            )
            .unwrap();
        let second = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(second.pass, PassKind::Incremental);
        let requests = env.sandbox.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let since = requests[0].variables["updatedSince"].as_str().unwrap();
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(since).unwrap(),
            watermark
        );
        assert_eq!(second.changed_by_applicant, vec![10]);
        assert!(second.new.is_empty() && second.changed_other.is_empty());
        // Only the edited dossier and the boundary ones (same second as the watermark) came back.
        assert_eq!(second.fetched, 1 + second.unchanged);
        assert_eq!(second.to_check, vec![10]);

        // Nothing changed since: only dossier 10 comes back, on the inclusive boundary.
        env.sandbox.clear_logs();
        let third = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(env.sandbox.requests().len(), 1);
        assert_eq!((third.fetched, third.unchanged), (1, 1));
        assert!(third.changed_by_applicant.is_empty());
        let kinds: Vec<_> = env
            .store
            .history(10)
            .await
            .unwrap()
            .iter()
            .map(|h| h.kind)
            .collect();
        assert_eq!(kinds, vec![HistoryKind::Depose, HistoryKind::Champs]);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_cycle_with_nothing_changed_costs_one_request_per_demarche(db) {
        let env = TestEnv::spawn_on(db).await;
        let client = env.client();
        let first = sync_all(
            &client,
            &env.store,
            &env.settings.demarches,
            &env.clock,
            DAY,
        )
        .await;
        assert!(first.iter().all(Result::is_ok), "{first:?}");
        let history = env.store.demarche_history(1001).await.unwrap().len();

        env.sandbox.clear_logs();
        let again = sync_all(
            &client,
            &env.store,
            &env.settings.demarches,
            &env.clock,
            DAY,
        )
        .await;
        let requests = env.sandbox.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        for (r, demarche) in requests.iter().zip([1001, 1002]) {
            assert_eq!(r.operation_name.as_deref(), Some(LIST));
            assert_eq!(r.variables["demarche"], demarche);
            assert!(r.variables["updatedSince"].is_string());
        }
        for report in again {
            let report = report.unwrap();
            assert!(
                report.fetched >= 1,
                "the inclusive bound returns the last dossier"
            );
            assert_eq!(report.unchanged, report.fetched);
            assert!(report.new.is_empty() && report.changed_other.is_empty());
        }
        assert_eq!(
            env.store.demarche_history(1001).await.unwrap().len(),
            history
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn dossiers_on_several_pages_are_all_stored_once(db) {
        let env = TestEnv::with_dataset_on(Dataset::with_dossier_count(250), db).await;
        let report = sync_demarche(
            &env.client(),
            &env.store,
            env.demarche(1001),
            &env.clock,
            DAY,
        )
        .await
        .unwrap();
        assert_eq!(report.new.len(), 250);
        assert_eq!(env.requests(LIST).len(), 3);
        assert_eq!(
            report.requests, 5,
            "3 pages, then the two deletion listings"
        );
        let stored = env.store.dossiers_of(1001).await.unwrap();
        assert_eq!(stored.len(), 250);
        assert_eq!(env.store.demarche_history(1001).await.unwrap().len(), 250);
        let numbers: Vec<i64> = stored.iter().map(|d| d.number).collect();
        assert_eq!(numbers, (1..=250).collect::<Vec<_>>());
    }
}

both_backends! {
    #[tokio::test]
    async fn a_crash_between_two_pages_resumes_without_losing_or_repeating_anything(db) {
        let env = TestEnv::with_dataset_on(Dataset::with_dossier_count(150), db).await;
        let client = env.client();
        let d = env.demarche(1001);
        // Page 1 goes through; page 2 fails on every attempt the client makes.
        let err = sync_failing_at_page(&env, 2).await;
        assert!(
            matches!(err, SyncError::Api { demarche: 1001, .. }),
            "{err:?}"
        );
        let state = env.store.sync_state(1001).await.unwrap();
        let pass = state.pass.clone().expect("the pass is left in progress");
        let cursor = pass.cursor.expect("the cursor of page 1 was saved with it");
        assert!(state.last_error.unwrap().contains("DS indisponible"));
        assert_eq!(env.store.dossiers_of(1001).await.unwrap().len(), 100);
        assert_eq!(env.store.demarche_history(1001).await.unwrap().len(), 100);
        let watermark_after_page_1 = state.watermark;

        env.sandbox.clear_logs();
        let report = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        let resumed = env.requests(LIST);
        assert_eq!(
            resumed[0].variables["after"],
            json!(cursor),
            "resumed at page 2"
        );
        assert_eq!(resumed.len(), 1);
        assert_eq!(report.pass, PassKind::Full);
        assert_eq!(report.new.len(), 50);
        assert_eq!(
            report.to_check.len(),
            150,
            "page 1's checks are still pending"
        );
        assert_eq!(env.store.dossiers_of(1001).await.unwrap().len(), 150);
        assert_eq!(env.store.demarche_history(1001).await.unwrap().len(), 150);
        let state = env.store.sync_state(1001).await.unwrap();
        assert!(state.pass.is_none() && state.last_error.is_none());
        assert!(state.watermark >= watermark_after_page_1);
        assert_eq!(state.last_full_sync, Some(trunc(env.clock.now())));
    }
}

both_backends! {
    #[tokio::test]
    async fn a_page_read_ahead_that_fails_leaves_every_page_before_it_committed(db) {
        let env = TestEnv::with_dataset_on(Dataset::with_dossier_count(250), db).await;
        let client = env.client();
        let d = env.demarche(1001);
        // Pages 1 and 2 go through; page 3 fails on every attempt. The sync reads page 3 while it
        // commits page 2: page 2 must still be committed, and the position saved with it.
        let err = sync_failing_at_page(&env, 3).await;
        let attempts = 1 + env.settings.ds.max_retries as usize;
        assert!(
            matches!(err, SyncError::Api { demarche: 1001, .. }),
            "{err:?}"
        );
        assert_eq!(env.store.dossiers_of(1001).await.unwrap().len(), 200);
        let listed = env.requests(LIST);
        assert_eq!(listed.len(), 2 + attempts, "no page asked for twice");
        let page_3_cursor = listed[2].variables["after"].clone();
        let state = env.store.sync_state(1001).await.unwrap();
        assert_eq!(
            json!(state.pass.expect("in progress").cursor),
            page_3_cursor,
            "the position saved is page 2's end"
        );

        env.sandbox.clear_logs();
        let report = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(env.requests(LIST).len(), 1);
        assert_eq!(report.new.len(), 50);
        assert_eq!(env.store.demarche_history(1001).await.unwrap().len(), 250);
    }
}

/// Syncs démarche 1001 with its listing page `page` (1-based) failing on every attempt the
/// client makes, the pages before it going through; returns the sync's error.
async fn sync_failing_at_page(env: &TestEnv, page: usize) -> SyncError {
    env.sandbox
        .push_fault(Fault::Delay(Duration::ZERO), page - 1, Some(LIST));
    let attempts = 1 + env.settings.ds.max_retries as usize;
    env.sandbox
        .push_fault(Fault::Status(500), attempts, Some(LIST));
    sync_demarche(
        &env.client(),
        &env.store,
        env.demarche(1001),
        &env.clock,
        DAY,
    )
    .await
    .unwrap_err()
}

/// The store keeps microseconds.
fn trunc(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

both_backends! {
    #[tokio::test]
    async fn a_dropped_sync_resumes_without_losing_or_repeating_anything(db) {
        let env = TestEnv::with_dataset_on(Dataset::with_dossier_count(150), db).await;
        let client = env.client();
        let d = env.demarche(1001);
        // Hold page 2 back and drop the sync once page 1 is committed, as a killed process would.
        env.sandbox
            .push_fault(Fault::Delay(Duration::ZERO), 1, Some(LIST));
        env.sandbox
            .push_fault(Fault::Delay(Duration::from_secs(60)), 1, Some(LIST));
        let sync = sync_demarche(&client, &env.store, d, &env.clock, DAY);
        let page_1_committed = async {
            loop {
                let state = env.store.sync_state(1001).await.unwrap();
                if state.pass.is_some_and(|p| p.cursor.is_some()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            result = sync => panic!("the sync ended while page 2 was held back: {result:?}"),
            () = page_1_committed => {}
        }
        assert_eq!(env.store.dossiers_of(1001).await.unwrap().len(), 100);

        let report = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(report.new.len(), 50);
        assert_eq!(env.store.demarche_history(1001).await.unwrap().len(), 150);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_malformed_dossier_is_recorded_with_its_field_and_the_others_are_stored(db) {
        let env = TestEnv::spawn_on(db).await;
        let client = env.client();
        let d = env.demarche(1001);
        // DS's invalid_null on the third dossier of the page.
        env.sandbox.push_fault(
            Fault::GraphQlError {
                code: "invalid_null".into(),
                message: "Cannot return null for non-nullable field Dossier.dateDepot".into(),
                path: ["demarche", "dossiers", "nodes", "2", "dateDepot"]
                    .map(String::from)
                    .to_vec(),
            },
            1,
            Some(LIST),
        );
        let report = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(report.decode_errors, 1);
        assert_eq!(report.new.len(), DEMO_1001 - 1);
        let errors = env.store.decode_errors(Some(1001), false).await.unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let bad = errors[0].number.expect("the dossier is named");
        assert!(errors[0].field_path.contains("dateDepot"), "{errors:?}");
        assert!(!errors[0].message.is_empty());
        assert!(env.store.dossier(bad).await.unwrap().is_none());

        // The next full reconciliation reads it again and resolves the error.
        env.clock.set(env.clock.now() + DAY);
        let report = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(report.pass, PassKind::Full);
        assert_eq!(report.new, vec![bad]);
        assert!(
            env.store
                .decode_errors(Some(1001), false)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(report.disappeared.is_empty());
    }
}

both_backends! {
    #[tokio::test]
    async fn a_malformed_body_stops_one_demarche_and_the_other_still_syncs(db) {
        let env = TestEnv::spawn_on(db).await;
        env.sandbox.push_fault(Fault::MalformedJson, 1, Some(LIST));
        let results = sync_all(
            &env.client(),
            &env.store,
            &env.settings.demarches,
            &env.clock,
            DAY,
        )
        .await;
        let err = results[0].as_ref().unwrap_err();
        assert_eq!(err.demarche(), 1001);
        let ok = results[1].as_ref().unwrap();
        assert_eq!(ok.demarche, 1002);
        assert!(!ok.new.is_empty());
        let failed = env.store.sync_state(1001).await.unwrap();
        assert!(failed.last_error.unwrap().contains("illisible"));
        assert!(failed.watermark.is_none());
        assert!(env.store.dossiers_of(1001).await.unwrap().is_empty());
        assert!(
            env.store
                .sync_state(1002)
                .await
                .unwrap()
                .last_error
                .is_none()
        );

        // The next cycle syncs 1001 and clears its error.
        let results = sync_all(
            &env.client(),
            &env.store,
            &env.settings.demarches,
            &env.clock,
            DAY,
        )
        .await;
        assert!(results.iter().all(Result::is_ok));
        assert!(
            env.store
                .sync_state(1001)
                .await
                .unwrap()
                .last_error
                .is_none()
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn token_problems_are_recorded_as_the_demarches_last_error(db) {
        let env = TestEnv::spawn_on(db).await;
        for (token, demarche, expected) in [
            ("essbot-demo-expired", 1001, "jeton expiré"),
            (
                "essbot-demo-li-only",
                1002,
                "jeton sans accès à la démarche 1002",
            ),
            ("pas-un-jeton", 1001, "accès refusé"),
        ] {
            let client = env.client_with_token(token);
            let result =
                sync_demarche(&client, &env.store, env.demarche(demarche), &env.clock, DAY).await;
            assert!(
                matches!(result, Err(SyncError::Api { .. })),
                "{token}: {result:?}"
            );
            let state = env.store.sync_state(demarche).await.unwrap();
            let error = state.last_error.unwrap();
            assert!(error.contains(expected), "{token}: {error}");
            assert!(state.last_error_at.is_some());
        }
        // The restricted token still syncs the démarche it covers.
        let client = env.client_with_token("essbot-demo-li-only");
        sync_demarche(&client, &env.store, env.demarche(1001), &env.clock, DAY)
            .await
            .unwrap();
        assert!(
            env.store
                .sync_state(1001)
                .await
                .unwrap()
                .last_error
                .is_none()
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn deleted_and_hidden_dossiers_are_recorded_at_the_next_reconciliation(db) {
        let env = TestEnv::spawn_on(db).await;
        let client = env.client();
        let d = env.demarche(1001);
        let first = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        // The demo data set has dossier 34 deleted and dossier 33 hidden.
        assert_eq!(first.deleted, vec![34]);
        assert_eq!(first.pending_deleted, vec![33]);
        let hidden = env.store.dossier(33).await.unwrap().unwrap();
        assert_eq!(hidden.status, DossierStatus::PendingDeleted);
        assert_eq!(hidden.deletion_reason.as_deref(), Some("user_request"));
        assert_eq!(
            env.store.dossier(34).await.unwrap().unwrap().status,
            DossierStatus::Deleted
        );

        env.sandbox
            .delete_dossier(10, DeletedDossierReason::InstructeurRequest)
            .unwrap();
        env.sandbox
            .hide_dossier(11, DeletedDossierReason::UserRequest)
            .unwrap();
        env.sandbox
            .set_state(12, SbState::Accepte, Some("Projet retenu"))
            .unwrap();

        // Within the day: an incremental pass, which does not ask for deletions.
        env.sandbox.clear_logs();
        let quick = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert!(env.requests(DELETED).is_empty());
        assert_eq!(quick.state_changed, vec![12]);
        assert_eq!(
            env.store.dossier(10).await.unwrap().unwrap().status,
            DossierStatus::Listed
        );

        // A day later: the full reconciliation records them, once.
        env.clock.set(env.clock.now() + DAY);
        let full = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(full.pass, PassKind::Full);
        assert_eq!(full.deleted, vec![10]);
        assert_eq!(full.pending_deleted, vec![11]);
        assert!(full.disappeared.is_empty(), "{full:?}");
        assert!(full.new.is_empty() && full.changed_by_applicant.is_empty());
        let ten = env.store.dossier(10).await.unwrap().unwrap();
        assert_eq!(ten.status, DossierStatus::Deleted);
        assert_eq!(ten.deletion_reason.as_deref(), Some("instructeur_request"));
        assert_eq!(
            env.store.dossier(11).await.unwrap().unwrap().status,
            DossierStatus::PendingDeleted
        );
        assert_eq!(
            env.store.dossier(12).await.unwrap().unwrap().state,
            Some(DossierState::Accepte)
        );
        let kinds: Vec<_> = env
            .store
            .history(12)
            .await
            .unwrap()
            .iter()
            .map(|h| h.kind)
            .collect();
        assert_eq!(kinds, vec![HistoryKind::Depose, HistoryKind::State]);
        assert!(!full.to_check.contains(&10) && !full.to_check.contains(&11));

        env.clock.set(env.clock.now() + DAY);
        let again = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert!(again.deleted.is_empty() && again.pending_deleted.is_empty());
    }
}

both_backends! {
    #[tokio::test]
    async fn our_own_annotation_writes_do_not_look_like_applicant_changes(db) {
        let env = TestEnv::spawn_on(db).await;
        let client = env.client();
        let d = env.demarche(1001);
        sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        let before = env.store.dossier(10).await.unwrap().unwrap();
        env.store
            .mark_checked(10, before.check_requested_at.unwrap())
            .await
            .unwrap();

        // What the write-back does: the « Pré-contrôle automatique » annotation (stable id 901).
        let outcome = client
            .modify_annotations(
                before.graphql_id.as_deref().unwrap(),
                &[AnnotationWrite {
                    annotation_id: "Q2hhbXAtOTAx".into(),
                    value: AnnotationValue::Textarea("Pré-contrôle : dossier complet.".into()),
                }],
            )
            .await
            .unwrap();
        assert!(outcome.is_ok(), "{outcome:?}");

        let report = sync_demarche(&client, &env.store, d, &env.clock, DAY)
            .await
            .unwrap();
        assert_eq!(report.changed_other, vec![10]);
        assert!(report.changed_by_applicant.is_empty());
        assert!(!report.to_check.contains(&10), "nothing new to check");
        let after = env.store.dossier(10).await.unwrap().unwrap();
        assert_eq!(after.content_hash, before.content_hash);
        assert_eq!(after.champs_changed_at, before.champs_changed_at);
        assert!(after.date_derniere_modification > before.date_derniere_modification);
        assert_eq!(env.store.history(10).await.unwrap().len(), 1);
    }
}
