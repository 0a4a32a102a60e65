//! The store on a real SQLite file and a real PostgreSQL database: migrations, page application
//! and its de-duplication, history, decode errors, deletions, cycles.

use chrono::{DateTime, Utc};
use essbot::ds::model::{
    Champ, ChampValue, DeletedDossier, Demandeur, Dossier, DossierState, File, Timestamp,
};
use essbot::store::{
    CycleOutcome, DeletionKind, DossierStatus, HistoryKind, Incoming, Pass, PassKind, PassPhase,
    Store, SyncState, applicant_content_hash,
};
use serde_json::json;

use crate::helpers::{temp_store, temp_store_on};

const D: i64 = 1001;

fn ts(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    ts(s).to_utc()
}

/// A dossier with one text champ; `modified` moves every date DS moves on any change.
fn dossier(number: i64, modified: &str, text: &str, state: DossierState) -> Dossier {
    Dossier {
        id: format!("Dossier-{number}"),
        number,
        state,
        date_depot: ts("2026-01-05T10:00:00+01:00"),
        date_derniere_modification: ts(modified),
        date_derniere_modification_champs: ts("2026-01-05T10:00:00+01:00"),
        date_derniere_modification_annotations: ts("2026-01-05T10:00:00+01:00"),
        date_passage_en_instruction: None,
        date_traitement: None,
        motivation: None,
        groupe_instructeur: None,
        demandeur: Demandeur::Other { siret: None },
        labels: vec![],
        messages: vec![],
        champs: vec![Champ {
            id: "Q2hhbXAtMQ==".into(),
            descriptor_id: "Q2hhbXAtMQ==".into(),
            label: "Gouvernance prévue".into(),
            string_value: Some(text.into()),
            value: ChampValue::Text(Some(text.into())),
        }],
        annotations: vec![],
    }
}

fn raw(d: &Dossier) -> String {
    json!({ "id": d.id, "number": d.number, "dateDerniereModification": d.date_derniere_modification.to_rfc3339() })
        .to_string()
}

async fn apply(
    store: &Store,
    dossiers: &[Dossier],
    state: &SyncState,
) -> essbot::store::PageCounts {
    let raws: Vec<_> = dossiers.iter().map(raw).collect();
    let hashes: Vec<_> = dossiers.iter().map(applicant_content_hash).collect();
    let items: Vec<_> = dossiers
        .iter()
        .zip(raws.iter().zip(&hashes))
        .map(|(dossier, (raw, hash))| Incoming::Decoded { dossier, raw, hash })
        .collect();
    store
        .apply_dossier_page(D, &items, None, state, utc("2026-02-01T08:00:00Z"))
        .await
        .unwrap()
}

#[tokio::test]
async fn opening_creates_the_file_in_wal_mode_and_reopening_is_idempotent() {
    let (dir, store) = temp_store().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    store.close().await;
    let again = Store::open_file(&dir.path().join("essbot.db"))
        .await
        .unwrap();
    assert_eq!(again.sync_state(D).await.unwrap(), SyncState::new(D));
}

both_backends! {
    #[tokio::test]
    async fn both_backends_migrate_to_the_same_versions_and_reopen_idempotently(db) {
        let t = temp_store_on(db).await;
        let versions: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
                .fetch_all(t.store.pool())
                .await
                .unwrap();
        let names: Vec<String> = versions.iter().map(|(v, d)| format!("{v:04} {d}")).collect();
        assert_eq!(
            names,
            ["0001 sync", "0002 checks", "0003 outbox", "0004 alerts", "0005 ledger",
             "0006 instances"]
        );
        t.store.close().await;
        let again = Store::open(&t.url).await.unwrap();
        again.migrate().await.unwrap();
        assert_eq!(again.sync_state(D).await.unwrap(), SyncState::new(D));
    }
}

both_backends! {
    #[tokio::test]
    async fn a_page_and_its_position_are_committed_together_and_survive_a_restart(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let mut state = SyncState::new(D);
        state.watermark = Some(utc("2026-01-10T09:00:00Z"));
        state.pass = Some(Pass {
            kind: PassKind::Incremental,
            phase: PassPhase::Dossiers,
            since: Some(utc("2026-01-01T00:00:00Z")),
            cursor: Some("opaque;42".into()),
            started_at: utc("2026-02-01T08:00:00Z"),
        });
        let d = dossier(
            42,
            "2026-01-10T10:00:00+01:00",
            "CA",
            DossierState::EnConstruction,
        );
        let counts = apply(&store, std::slice::from_ref(&d), &state).await;
        assert_eq!(counts.new, vec![42]);
        store.close().await;

        let store = Store::open(&t.url).await.unwrap();
        assert_eq!(store.sync_state(D).await.unwrap(), state);
        let stored = store.dossier(42).await.unwrap().unwrap();
        assert_eq!(stored.state, Some(DossierState::EnConstruction));
        assert_eq!(
            stored.date_derniere_modification,
            Some(utc("2026-01-10T09:00:00Z"))
        );
        assert_eq!(
            stored.content_hash.as_deref(),
            Some(applicant_content_hash(&d).as_str())
        );
        let snapshot: serde_json::Value = serde_json::from_str(&stored.raw.unwrap()).unwrap();
        assert_eq!(snapshot["number"], 42);
        assert_eq!(stored.status, DossierStatus::Listed);
        assert_eq!(store.pending_checks(D).await.unwrap(), vec![42]);
        let history = store.history(42).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].kind, HistoryKind::Depose);
        assert_eq!(history[0].to_state.as_deref(), Some("en_construction"));
    }
}

both_backends! {
    #[tokio::test]
    async fn the_same_dossier_listed_again_is_unchanged_and_writes_no_history(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        let d = dossier(
            7,
            "2026-01-10T10:00:00+01:00",
            "CA",
            DossierState::EnConstruction,
        );
        apply(&store, std::slice::from_ref(&d), &state).await;
        let again = apply(&store, std::slice::from_ref(&d), &state).await;
        assert_eq!(again.unchanged, 1);
        assert!(again.new.is_empty() && again.changed_by_applicant.is_empty());
        assert!(again.changed_other.is_empty());
        assert_eq!(store.history(7).await.unwrap().len(), 1);
    }
}

both_backends! {
    #[tokio::test]
    async fn an_annotation_bump_is_not_an_applicant_change(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        let d = dossier(
            7,
            "2026-01-10T10:00:00+01:00",
            "CA",
            DossierState::EnConstruction,
        );
        apply(&store, std::slice::from_ref(&d), &state).await;
        let requested = store
            .dossier(7)
            .await
            .unwrap()
            .unwrap()
            .check_requested_at
            .unwrap();
        assert!(store.mark_checked(7, requested).await.unwrap());

        // Our own annotation write: DS moves dateDerniereModification and the annotations date.
        let mut bumped = dossier(
            7,
            "2026-01-11T10:00:00+01:00",
            "CA",
            DossierState::EnConstruction,
        );
        bumped.date_derniere_modification_annotations = ts("2026-01-11T10:00:00+01:00");
        let counts = apply(&store, &[bumped], &state).await;
        assert_eq!(counts.changed_other, vec![7]);
        assert!(counts.changed_by_applicant.is_empty());
        assert!(store.pending_checks(D).await.unwrap().is_empty());
        assert_eq!(store.history(7).await.unwrap().len(), 1);

        // The applicant edits a champ.
        let mut edited = dossier(
            7,
            "2026-01-12T10:00:00+01:00",
            "CA et CB",
            DossierState::EnConstruction,
        );
        edited.date_derniere_modification_champs = ts("2026-01-12T10:00:00+01:00");
        let counts = apply(&store, &[edited], &state).await;
        assert_eq!(counts.changed_by_applicant, vec![7]);
        assert_eq!(store.pending_checks(D).await.unwrap(), vec![7]);
        let stored = store.dossier(7).await.unwrap().unwrap();
        assert_eq!(stored.champs_changed_at, Some(utc("2026-01-12T09:00:00Z")));
        let kinds: Vec<_> = store
            .history(7)
            .await
            .unwrap()
            .iter()
            .map(|h| h.kind)
            .collect();
        assert_eq!(kinds, vec![HistoryKind::Depose, HistoryKind::Champs]);
    }
}

#[tokio::test]
async fn file_urls_signed_anew_do_not_change_the_content_hash() {
    let mut a = dossier(
        1,
        "2026-01-10T10:00:00+01:00",
        "x",
        DossierState::EnConstruction,
    );
    let file = |url: &str| File {
        filename: "statuts.pdf".into(),
        content_type: "application/pdf".into(),
        byte_size: Some(10),
        url: Some(url.into()),
    };
    a.champs[0].value = ChampValue::PieceJustificative(vec![file("https://x/a?sig=1")]);
    let mut b = a.clone();
    b.champs[0].value = ChampValue::PieceJustificative(vec![file("https://x/a?sig=2")]);
    assert_eq!(applicant_content_hash(&a), applicant_content_hash(&b));
    b.champs[0].string_value = Some("autre".into());
    assert_ne!(applicant_content_hash(&a), applicant_content_hash(&b));
}

both_backends! {
    #[tokio::test]
    async fn state_changes_are_recorded_from_and_to(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        apply(
            &store,
            &[dossier(
                9,
                "2026-01-10T10:00:00+01:00",
                "x",
                DossierState::EnConstruction,
            )],
            &state,
        )
        .await;
        let mut accepted = dossier(9, "2026-01-20T10:00:00+01:00", "x", DossierState::Accepte);
        accepted.date_traitement = Some(ts("2026-01-20T10:00:00+01:00"));
        let counts = apply(&store, &[accepted], &state).await;
        assert_eq!(counts.state_changed, vec![9]);
        assert_eq!(counts.changed_other, vec![9]);
        let h = store.history(9).await.unwrap();
        assert_eq!(h[1].kind, HistoryKind::State);
        assert_eq!(h[1].from_state.as_deref(), Some("en_construction"));
        assert_eq!(h[1].to_state.as_deref(), Some("accepte"));
        assert_eq!(h[1].at, utc("2026-01-20T09:00:00Z"));
        assert_eq!(h[1].observed_at, utc("2026-02-01T08:00:00Z"));
    }
}

both_backends! {
    #[tokio::test]
    async fn a_decode_error_names_dossier_and_field_and_is_resolved_when_it_decodes(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        let bad = json!({ "id": "RG9zc2llci01", "number": 5, "champs": "pas une liste" }).to_string();
        let good = dossier(
            6,
            "2026-01-10T10:00:00+01:00",
            "x",
            DossierState::EnConstruction,
        );
        let good_raw = raw(&good);
        let good_hash = applicant_content_hash(&good);
        let items = [
            Incoming::Undecodable {
                number: Some(5),
                graphql_id: Some("RG9zc2llci01"),
                raw: &bad,
                field: "champs",
                message: "invalid type: string, expected a sequence",
            },
            Incoming::Decoded {
                dossier: &good,
                raw: &good_raw,
                hash: &good_hash,
            },
        ];
        let at = utc("2026-02-01T08:00:00Z");
        let counts = store
            .apply_dossier_page(D, &items, None, &state, at)
            .await
            .unwrap();
        assert_eq!(counts.decode_errors, 1);
        assert_eq!(counts.new, vec![6]);
        // Seen again: one record, two occurrences.
        store
            .apply_dossier_page(D, &items[..1], None, &state, at)
            .await
            .unwrap();
        let errors = store.decode_errors(Some(D), false).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].number, Some(5));
        assert_eq!(errors[0].field_path, "champs");
        assert_eq!(errors[0].occurrences, 2);
        assert!(store.dossier(5).await.unwrap().is_none());

        let fixed = dossier(
            5,
            "2026-01-11T10:00:00+01:00",
            "x",
            DossierState::EnConstruction,
        );
        apply(&store, &[fixed], &state).await;
        assert!(
            store
                .decode_errors(Some(D), false)
                .await
                .unwrap()
                .is_empty()
        );
        let all = store.decode_errors(Some(D), true).await.unwrap();
        assert!(all[0].resolved_at.is_some());
    }
}

both_backends! {
    #[tokio::test]
    async fn deletions_are_recorded_once_even_for_dossiers_never_seen(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        apply(
            &store,
            &[dossier(
                1,
                "2026-01-10T10:00:00+01:00",
                "x",
                DossierState::EnConstruction,
            )],
            &state,
        )
        .await;
        let deleted = [
            DeletedDossier {
                number: 1,
                state: Some(DossierState::EnConstruction),
                reason: "user_request".into(),
                date_suppression: ts("2026-01-15T10:00:00+01:00"),
            },
            DeletedDossier {
                number: 2,
                state: Some(DossierState::Refuse),
                reason: "expired".into(),
                date_suppression: ts("2026-01-16T10:00:00+01:00"),
            },
        ];
        let at = utc("2026-02-01T08:00:00Z");
        let recorded = store
            .apply_deleted_page(D, DeletionKind::PendingDeleted, &deleted, &state, at)
            .await
            .unwrap();
        assert_eq!(recorded, vec![1, 2]);
        let again = store
            .apply_deleted_page(D, DeletionKind::PendingDeleted, &deleted, &state, at)
            .await
            .unwrap();
        assert!(
            again.is_empty(),
            "the inclusive deletedSince bound must not count twice"
        );
        let one = store.dossier(1).await.unwrap().unwrap();
        assert_eq!(one.status, DossierStatus::PendingDeleted);
        assert_eq!(one.deletion_reason.as_deref(), Some("user_request"));
        let two = store.dossier(2).await.unwrap().unwrap();
        assert_eq!(two.status, DossierStatus::PendingDeleted);
        assert!(two.raw.is_none());
        assert!(store.pending_checks(D).await.unwrap().is_empty());

        // Purged for good later: a second, different record.
        let purged = store
            .apply_deleted_page(D, DeletionKind::Deleted, &deleted[..1], &state, at)
            .await
            .unwrap();
        assert_eq!(purged, vec![1]);
        let kinds: Vec<_> = store
            .history(1)
            .await
            .unwrap()
            .iter()
            .map(|h| h.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                HistoryKind::Depose,
                HistoryKind::PendingDeleted,
                HistoryKind::Deleted
            ]
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn a_full_pass_marks_what_it_did_not_list_and_a_listing_restores_it(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let mut state = SyncState::new(D);
        let a = dossier(
            1,
            "2026-01-10T10:00:00+01:00",
            "x",
            DossierState::EnConstruction,
        );
        let b = dossier(
            2,
            "2026-01-10T10:00:00+01:00",
            "y",
            DossierState::EnConstruction,
        );
        apply(&store, &[a.clone(), b.clone()], &state).await;

        state.full_pass_id = 1;
        let a_raw = raw(&a);
        let at = utc("2026-02-01T08:00:00Z");
        store
            .apply_dossier_page(
                D,
                &[Incoming::Decoded {
                    dossier: &a,
                    raw: &a_raw,
                    hash: &applicant_content_hash(&a),
                }],
                Some(1),
                &state,
                at,
            )
            .await
            .unwrap();
        let gone = store.finish_full_pass(D, 1, &state, at).await.unwrap();
        assert_eq!(gone, vec![2]);
        assert_eq!(
            store.dossier(2).await.unwrap().unwrap().status,
            DossierStatus::Disappeared
        );
        assert_eq!(
            store.dossier(1).await.unwrap().unwrap().status,
            DossierStatus::Listed
        );

        let counts = apply(&store, &[b], &state).await;
        assert_eq!(counts.restored, vec![2]);
        assert_eq!(
            store.dossier(2).await.unwrap().unwrap().status,
            DossierStatus::Listed
        );
        let kinds: Vec<_> = store
            .history(2)
            .await
            .unwrap()
            .iter()
            .map(|h| h.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                HistoryKind::Depose,
                HistoryKind::Disappeared,
                HistoryKind::Restored
            ]
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn a_check_requested_again_while_checking_is_not_cleared(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        apply(
            &store,
            &[dossier(
                3,
                "2026-01-10T10:00:00+01:00",
                "x",
                DossierState::EnConstruction,
            )],
            &state,
        )
        .await;
        let before = utc("2026-01-31T08:00:00Z");
        assert!(!store.mark_checked(3, before).await.unwrap());
        assert_eq!(store.pending_checks(D).await.unwrap(), vec![3]);
        assert!(
            store
                .mark_checked(3, utc("2026-02-01T08:00:00Z"))
                .await
                .unwrap()
        );
        assert!(store.pending_checks(D).await.unwrap().is_empty());
    }
}

both_backends! {
    #[tokio::test]
    async fn sync_errors_keep_the_position_and_cycles_are_recorded(db) {
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let mut state = SyncState::new(D);
        state.watermark = Some(utc("2026-01-10T09:00:00Z"));
        store.save_sync_state(&state).await.unwrap();
        store
            .record_sync_error(D, "jeton expiré", utc("2026-02-01T08:00:00Z"))
            .await
            .unwrap();
        let s = store.sync_state(D).await.unwrap();
        assert_eq!(s.watermark, state.watermark);
        assert_eq!(s.last_error.as_deref(), Some("jeton expiré"));
        assert_eq!(store.sync_states().await.unwrap().len(), 1);

        let first = store
            .begin_cycle(utc("2026-02-01T08:00:00Z"))
            .await
            .unwrap();
        // The process dies; the next cycle finds the first one still running.
        let second = store
            .begin_cycle(utc("2026-02-01T08:15:00Z"))
            .await
            .unwrap();
        store
            .finish_cycle(
                second,
                utc("2026-02-01T08:16:00Z"),
                CycleOutcome::Partial,
                Some("démarche 1001: jeton expiré"),
                Some(&json!({ "fetched": 3 })),
            )
            .await
            .unwrap();
        let cycles = store.recent_cycles(10).await.unwrap();
        assert_eq!(cycles.len(), 2);
        assert_eq!(cycles[0].id, second);
        assert_eq!(cycles[0].outcome, CycleOutcome::Partial);
        assert_eq!(cycles[0].summary, Some(json!({ "fetched": 3 })));
        assert_eq!(cycles[1].id, first);
        assert_eq!(cycles[1].outcome, CycleOutcome::Interrupted);
        assert_eq!(store.last_cycle().await.unwrap().unwrap().id, second);
    }
}

both_backends! {
    #[tokio::test]
    async fn findings_are_resolved_when_their_rule_stops_firing_and_reopened_when_it_fires_again(db) {
        use essbot::store::{NewCheck, NewFinding};
        let t = temp_store_on(db).await;
        let store = t.store.clone();
        let state = SyncState::new(D);
        // 70 dossiers: more than one statement's worth of rows.
        let dossiers: Vec<_> = (1..=70)
            .map(|n| dossier(n, "2026-01-10T10:00:00+01:00", "x", DossierState::EnConstruction))
            .collect();
        apply(&store, &dossiers, &state).await;
        let requested = store.dossier(1).await.unwrap().unwrap().check_requested_at;
        let check = |n: i64, rules: &[&str]| NewCheck {
            dossier: n,
            demarche: D,
            key: format!("k{}", rules.len()),
            verdict: "non_conforme",
            report_text: "rapport".into(),
            report_json: "{}".into(),
            fingerprint: "f".into(),
            rulebook: "1".into(),
            findings: rules
                .iter()
                .map(|r| NewFinding {
                    rule: (*r).into(),
                    severity: "bloquant",
                    details: "[]".into(),
                })
                .collect(),
            requested_at: requested,
        };
        let open = |n: i64| {
            let store = store.clone();
            async move {
                let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT rule, first_seen, resolved_at FROM findings WHERE dossier = $1
                     ORDER BY rule",
                )
                .bind(n)
                .fetch_all(store.pool())
                .await
                .unwrap();
                rows
            }
        };
        let t1 = utc("2026-02-01T08:00:00Z");
        let first: Vec<_> = (1..=70).map(|n| check(n, &["A", "B"])).collect();
        assert!(store.save_checks(&first, t1).await.unwrap().is_empty());
        assert!(store.pending_checks(D).await.unwrap().is_empty(), "requests cleared");
        assert_eq!(store.check_keys().await.unwrap().len(), 70);

        // B stops firing on every dossier: resolved, not deleted; A keeps its first sighting.
        let t2 = utc("2026-02-02T08:00:00Z");
        let second: Vec<_> = (1..=70).map(|n| check(n, &["A"])).collect();
        store.save_checks(&second, t2).await.unwrap();
        for n in [1, 64, 65, 70] {
            let rows = open(n).await;
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert_eq!(rows[0].0, "A");
            assert_eq!(rows[0].1, "2026-02-01T08:00:00.000000Z");
            assert_eq!(rows[0].2, None);
            assert_eq!(rows[1].0, "B");
            assert_eq!(rows[1].2.as_deref(), Some("2026-02-02T08:00:00.000000Z"));
        }
        // Nothing fires on dossier 3 any more; B fires again on dossier 2, seen anew.
        let t3 = utc("2026-02-03T08:00:00Z");
        store
            .save_checks(&[check(3, &[]), check(2, &["A", "B"])], t3)
            .await
            .unwrap();
        assert!(open(3).await.iter().all(|r| r.2.is_some()));
        let two = open(2).await;
        assert_eq!(two[1].1, "2026-02-03T08:00:00.000000Z");
        assert_eq!(two[1].2, None);

        // A request newer than the one the check answers stays.
        let mut late = check(4, &["A"]);
        late.requested_at = Some(utc("2026-01-01T00:00:00Z"));
        apply(
            &store,
            &[dossier(4, "2026-01-12T10:00:00+01:00", "changé", DossierState::EnConstruction)],
            &state,
        )
        .await;
        assert_eq!(store.save_checks(&[late], t3).await.unwrap(), vec![4]);
        assert_eq!(store.pending_checks(D).await.unwrap(), vec![4]);
    }
}
