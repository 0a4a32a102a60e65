//! The milestones ledger against the real sandbox (over HTTP) and a real SQLite file: the demo
//! data set is synced by a real cycle, then the milestones stage runs with a fixed clock on the
//! demo's "today" (2026-11-25).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use essbot::clock::Clock;
use essbot::commands::milestones::{
    self as cmd, MilestonesFormat, PaymentsFormat, RecordArgs, RecordKind,
};
use essbot::config::{Settings, WebhookSettings};
use essbot::cycle::{self, Mappings, Services};
use essbot::ds::{AnnotationValue, AnnotationWrite};
use essbot::ledger::{self, LedgerError, LedgerReport};
use essbot::milestones::{EventKind, EventSource, MilestoneId, ProjectSchedule, State as MState};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestDb, TestEnv};

/// 2026-11-25 10:00 in Paris: the demo data set's "today".
fn demo_now() -> DateTime<Utc> {
    "2026-11-25T09:00:00Z".parse().expect("instant")
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct Ready {
    env: TestEnv,
    services: Services,
}

impl Ready {
    /// The sandbox with the demo data set, synced (and pre-checked) by one real cycle.
    async fn start(db: TestDb, settings: impl FnOnce(&mut Settings)) -> Self {
        let mut env = TestEnv::spawn_on(db).await;
        env.clock.set(demo_now());
        settings(&mut env.settings);
        let services = Services::with_store(
            env.settings.clone(),
            env.store.clone(),
            Arc::new(env.clock.clone()),
        )
        .expect("services");
        let ready = Self { env, services };
        ready.sync().await;
        ready
    }

    async fn sync(&self) {
        let report = cycle::run_once(&self.services, &CancellationToken::new())
            .await
            .expect("cycle");
        assert!(report.synced > 0 || report.cycle > 1, "{report:?}");
    }

    async fn mappings(&self) -> Mappings {
        let m = cycle::mappings(&self.services, false)
            .await
            .expect("mappings");
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        m
    }

    async fn milestones(&self) -> LedgerReport {
        ledger::run(&self.services, &self.mappings().await)
            .await
            .expect("milestones stage")
    }

    async fn schedule(&self, project: i64) -> ProjectSchedule {
        let today = ledger::paris_today(self.env.clock.now());
        ledger::derive_all(&self.env.store, &self.env.settings.milestones, today)
            .await
            .expect("schedules")
            .into_iter()
            .find(|s| s.project == project)
            .expect("project scheduled")
    }

    async fn events(&self, project: i64) -> Vec<essbot::milestones::Event> {
        self.env.store.events_of(project).await.expect("events")
    }
}

both_backends! {
    #[tokio::test]
    async fn the_demo_project_gets_its_schedule_and_a_second_run_appends_nothing(db) {
        // The cycle ran the stage once already; running it again appends nothing.
        let t = Ready::start(db, |_| {}).await;
        let events = t.events(1).await;
        assert!(!events.is_empty());
        let first = t.milestones().await;
        assert_eq!(first.appended, 0, "{first:?}");
        assert!(first.warnings.is_empty(), "{:?}", first.warnings);
        // No channel configured: planned, not enqueued.
        assert!(first.planned_alerts > 0);
        assert_eq!(first.enqueued, 0);
        assert!(first.delivery.is_none());

        let s = t.schedule(1).await;
        assert_eq!(s.ps_dossier, Some(25));
        let m = |id| s.milestone(id).unwrap_or_else(|| panic!("{id} scheduled"));
        // AMO-1: contract signed 02/04/2026 (annotation 904), not paid, grace over.
        assert_eq!(m(MilestoneId::Amo1).due, Some(d(2026, 4, 2)));
        assert_eq!(m(MilestoneId::Amo1).state, MState::EnRetard);
        assert_eq!(m(MilestoneId::Amo1).amount_cents, Some(4_000_000));
        assert_eq!(m(MilestoneId::Amo1).blocker, None, "RNA on file");
        assert_eq!(m(MilestoneId::PsDue).state, MState::Fait);
        assert_eq!(m(MilestoneId::PsTacite).state, MState::SansObjet);
        // AMO-2 at the explicit validation of 30/06/2026 (annotation 954).
        assert_eq!(m(MilestoneId::Amo2).due, Some(d(2026, 6, 30)));
        assert_eq!(m(MilestoneId::Amo2).state, MState::EnRetard);
        assert_eq!(m(MilestoneId::Finess).state, MState::Fait);
        // DOT-1 at the signature of 15/07/2026 (957), on 42 members (960).
        assert_eq!(m(MilestoneId::Dot(1)).due, Some(d(2026, 7, 15)));
        assert_eq!(m(MilestoneId::Dot(1)).amount_cents, Some(6_777_778));
        // DOT-2 on the first anniversary; the justificatifs (959) count for year 1.
        assert_eq!(m(MilestoneId::Dot(2)).due, Some(d(2027, 7, 15)));
        assert_eq!(m(MilestoneId::Dot(2)).state, MState::AVenir);
        assert_eq!(m(MilestoneId::Dot(2)).blocker, None);
        // OPER-18 done by the first mission-socle activity (958).
        assert_eq!(m(MilestoneId::Oper18).done_on, Some(d(2026, 9, 1)));
        assert_eq!(m(MilestoneId::Socle).due, Some(d(2027, 5, 20)));
        // The "Prochaine échéance" of both dossiers: the oldest open deadline.
        assert_eq!(first.next_deadlines.get(&1), Some(&d(2026, 4, 2)));
        assert_eq!(first.next_deadlines.get(&25), Some(&d(2026, 4, 2)));
        // Refused (9) and closed (24) lettres d'intention have nothing left to do.
        assert!(!first.next_deadlines.contains_key(&9));
        assert!(!first.next_deadlines.contains_key(&24));

        assert!(
            events
                .iter()
                .all(|e| e.author == "essbot" && e.reason.is_some())
        );
        assert!(events.iter().any(|e| e.source == EventSource::Ds));
        assert!(events.iter().any(|e| e.source == EventSource::Annotation));

        let second = t.milestones().await;
        assert_eq!(second.appended, 0, "{second:?}");
        assert_eq!(second.next_deadlines, first.next_deadlines);
        assert_eq!(t.events(1).await, events);

        // Append-only, enforced by the database.
        let update = sqlx::query("UPDATE milestone_events SET author = 'x'")
            .execute(t.env.store.pool())
            .await;
        assert!(update.is_err());
        let delete = sqlx::query("DELETE FROM milestone_events")
            .execute(t.env.store.pool())
            .await;
        assert!(delete.is_err());
        if t.env.db.backend() == essbot::store::Backend::Postgres {
            // PostgreSQL has TRUNCATE besides (SQLite does not).
            let truncate = sqlx::query("TRUNCATE milestone_events")
                .execute(t.env.store.pool())
                .await
                .unwrap_err()
                .to_string();
            assert!(truncate.contains("append-only"), "{truncate}");
        }
        assert_eq!(t.events(1).await, events);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_changed_annotation_appends_one_correction(db) {
        let t = Ready::start(db, |_| {}).await;
        let before = t.events(1).await.len();

        // An instructeur corrects the date of the contrat de dotation on PS 25.
        let outcome = t
            .env
            .client()
            .modify_annotations(
                &b64("Dossier-25"),
                &[AnnotationWrite {
                    annotation_id: b64("Champ-957"),
                    value: AnnotationValue::Date(d(2026, 7, 20)),
                }],
            )
            .await
            .expect("mutation");
        assert!(outcome.is_ok(), "{outcome:?}");
        // The next cycle syncs the change and its milestones stage appends the correction.
        t.sync().await;
        let events = t.events(1).await;
        assert_eq!(events.len(), before + 1);
        let last = events.last().expect("event");
        assert_eq!(last.kind, EventKind::DotationContractSigned);
        assert_eq!(last.effective, d(2026, 7, 20));
        assert_eq!(last.source, EventSource::Annotation);
        let reason = last.reason.as_deref().unwrap_or_default();
        assert!(reason.starts_with("correction"), "{reason}");
        assert!(reason.contains("15/07/2026"), "{reason}");
        // The old value stays in the ledger; the schedule follows the correction.
        assert!(
            events
                .iter()
                .any(|e| e.kind == EventKind::DotationContractSigned && e.effective == d(2026, 7, 15))
        );
        let s = t.schedule(1).await;
        assert_eq!(
            s.milestone(MilestoneId::Dot(1)).and_then(|m| m.due),
            Some(d(2026, 7, 20))
        );

        assert_eq!(t.milestones().await.appended, 0);
    }
}

fn record_args(kind: RecordKind) -> RecordArgs {
    RecordArgs {
        project: 1,
        kind,
        date: d(2026, 11, 20),
        reason: "virement de la CPAM du Finistère".into(),
        author: Some("agent.cpam@example".into()),
        amount: None,
        milestone: None,
        motivation: None,
        finess: None,
        year: None,
        members: None,
        scope: None,
        rna: None,
        siret: None,
        ps_dossier: None,
        of: None,
    }
}

both_backends! {
    #[tokio::test]
    async fn manual_records_show_in_the_schedule_and_the_exports_parse(db) {
        let t = Ready::start(db, |_| {}).await;
        let settings = &t.env.settings;
        let clock = &t.env.clock;

        let mut pay = record_args(RecordKind::Versement);
        pay.milestone = Some(MilestoneId::Amo1);
        pay.amount = Some("40 000,00".into());
        let out = cmd::record(settings, &pay, clock).await.expect("record");
        assert!(out.contains("versement AMO-1 de 40 000,00"), "{out}");
        assert!(out.contains("agent.cpam@example"), "{out}");
        let last = t.events(1).await.pop().expect("event");
        assert_eq!(last.source, EventSource::Manual);
        assert_eq!(last.author, "agent.cpam@example");
        let s = t.schedule(1).await;
        assert_eq!(
            s.milestone(MilestoneId::Amo1).map(|m| m.state),
            Some(MState::Fait)
        );
        // The cycle does not undo a manual record.
        assert_eq!(t.milestones().await.appended, 0);

        // Refused: no motivation, no reason, unknown project, missing option.
        let mut refus = record_args(RecordKind::PsRefuse);
        let err = cmd::record(settings, &refus, clock)
            .await
            .expect_err("no motivation");
        assert!(err.is_usage());
        assert_eq!(
            err.to_string(),
            "un refus du projet de santé doit être motivé"
        );
        refus.motivation = Some("motivé".into());
        refus.reason = "  ".into();
        assert!(matches!(
            cmd::record(settings, &refus, clock).await,
            Err(cmd::MilestonesError::Ledger(LedgerError::Invalid(_)))
        ));
        let mut unknown = record_args(RecordKind::ContratAmorcage);
        unknown.project = 4242;
        assert!(matches!(
            cmd::record(settings, &unknown, clock).await,
            Err(cmd::MilestonesError::Ledger(LedgerError::UnknownProject(
                4242
            )))
        ));
        let err = cmd::record(settings, &record_args(RecordKind::Finess), clock)
            .await
            .expect_err("no --finess");
        assert!(err.to_string().contains("--finess"), "{err}");

        // Payments: AMO-1 recorded.
        let json: Value = serde_json::from_str(
            &cmd::payments(settings, PaymentsFormat::Json, clock)
                .await
                .expect("json"),
        )
        .expect("JSON");
        assert!(json.to_string().contains("AMO-1"));
        let table = cmd::payments(settings, PaymentsFormat::Table, clock)
            .await
            .expect("table");
        assert!(table.contains("20/11/2026"), "{table}");

        // CSV, as a spreadsheet reads it.
        let csv_text = cmd::milestones(settings, None, MilestonesFormat::Csv, clock)
            .await
            .expect("csv");
        let body = csv_text.strip_prefix('\u{feff}').expect("byte-order mark");
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(body.as_bytes());
        let headers = reader.headers().expect("header").clone();
        let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        let amo1 = rows
            .iter()
            .find(|r| &r[col("lettre_intention")] == "1" && &r[col("jalon")] == "AMO-1")
            .expect("AMO-1 of project 1");
        assert_eq!(&amo1[col("echeance")], "2026-04-02");
        assert_eq!(&amo1[col("etat")], "fait");
        assert_eq!(&amo1[col("projet_sante")], "25");

        // --due-within keeps open milestones only, overdue included.
        let soon = cmd::milestones(settings, Some(30), MilestonesFormat::Json, clock)
            .await
            .expect("json");
        let soon: Value = serde_json::from_str(&soon).expect("JSON");
        assert!(!soon.to_string().contains("\"fait\""), "{soon}");

        // ICS, read back by a real parser.
        let ics = cmd::milestones(settings, None, MilestonesFormat::Ics, clock)
            .await
            .expect("ics");
        let unfolded = icalendar::parser::unfold(&ics);
        let cal = icalendar::parser::read_calendar(&unfolded).expect("valid ICS");
        let uid = |c: &icalendar::parser::Component<'_>| {
            c.find_prop("UID")
                .map(|p| p.val.as_str().to_owned())
                .unwrap_or_default()
        };
        let events: Vec<_> = cal
            .components
            .iter()
            .filter(|c| c.name.as_str() == "VEVENT")
            .collect();
        assert!(events.len() > 20);
        let dot1 = events
            .iter()
            .find(|c| uid(c) == "ess-1-dot-1@essbot")
            .expect("DOT-1 of project 1");
        assert_eq!(
            dot1.find_prop("DTSTART").map(|p| p.val.as_str().to_owned()),
            Some("20260715".into())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A real webhook receiver.

type Calls = Arc<Mutex<Vec<(String, Value)>>>;

async fn receive(State(calls): State<Calls>, headers: HeaderMap, Json(body): Json<Value>) {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    calls.lock().expect("lock").push((key, body));
}

async fn receiver() -> (reqwest::Url, Calls) {
    let calls: Calls = Arc::default();
    let app = axum::Router::new()
        .route("/hooks/essbot", axum::routing::post(receive))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (
        format!("http://{addr}/hooks/essbot").parse().expect("url"),
        calls,
    )
}

both_backends! {
    #[tokio::test]
    async fn alerts_are_enqueued_once_and_delivered_to_the_webhook(db) {
        let (url, calls) = receiver().await;
        let t = Ready::start(db, |s| s.alerts.webhook = Some(WebhookSettings { url })).await;
        // The cycle's milestones stage enqueued and delivered the alerts.
        let received = calls.lock().expect("lock").clone();
        assert!(!received.is_empty());
        let ledger = essbot::alerts::AlertLedger::new(t.env.store.clone());
        assert_eq!(ledger.pending_count().await.expect("pending"), 0);
        let status = ledger
            .status("digest/ars/2026-11-25")
            .await
            .expect("status")
            .expect("ARS digest enqueued");
        assert!(status.completed_at.is_some());
        let keys: std::collections::BTreeSet<_> = received.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys.len(), received.len(), "one call per alert");
        // AMO-1 of project 1 is overdue; the CPAM is told, with its amount.
        let amo1 = received
            .iter()
            .map(|(_, b)| b.to_string())
            .find(|b| b.contains("1/AMO-1/overdue"))
            .expect("AMO-1 overdue alert");
        assert!(amo1.contains("40 000,00"), "{amo1}");
        // And the daily digests.
        assert!(
            received
                .iter()
                .any(|(_, b)| b.to_string().contains("digest/cpam/2026-11-25"))
        );

        // A later cycle the same day: nothing new, nothing sent again.
        let second = t.milestones().await;
        assert_eq!(second.planned_alerts, received.len());
        assert_eq!(second.enqueued, 0);
        assert_eq!(second.delivery.expect("delivery").sent, 0);
        assert_eq!(calls.lock().expect("lock").len(), received.len());
    }
}
