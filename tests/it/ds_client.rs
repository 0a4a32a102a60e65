//! The DS client against the DS sandbox, over real HTTP: listing and reading every champ type,
//! per-dossier tolerance, rate limits, retries, timeouts, token errors, the request budget,
//! deletions, descriptors and every mutation. The sandbox shares no code with the client.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ds_sandbox::{DEMO_TOKEN, Dataset, Fault, Sandbox, SandboxOptions};
use essbot::config::DsSettings;
use essbot::ds::model::{ChampValue, DossierState};
use essbot::ds::{
    AnnotationValue, AnnotationWrite, ApiError, DsClient, FetchedDossier, Subject, annotation_key,
    decode_dossier, decode_dossier_text,
};
use secrecy::SecretString;

const READONLY_TOKEN: &str = "essbot-demo-readonly";
const EXPIRED_TOKEN: &str = "essbot-demo-expired";
const LI_ONLY_TOKEN: &str = "essbot-demo-li-only";
const INSTRUCTEUR_1: &str = "SW5zdHJ1Y3RldXItMQ==";

async fn sandbox() -> Sandbox {
    Sandbox::start(
        Dataset::demo(),
        SandboxOptions {
            rate_limit_per_minute: None,
            ..SandboxOptions::default()
        },
        "127.0.0.1:0".parse().expect("loopback address"),
    )
    .await
    .expect("sandbox starts")
}

fn settings(sb: &Sandbox, token: &str) -> DsSettings {
    DsSettings {
        endpoint: sb.url().parse().expect("sandbox URL"),
        token: Some(SecretString::from(token.to_owned())),
        instructeur_id: INSTRUCTEUR_1.to_owned(),
        token_problem: None,
        page_size: 100,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        max_requests_per_second: 50.0,
        max_retries: 3,
    }
}

fn client_with(settings: &DsSettings) -> DsClient {
    DsClient::new(settings)
        .expect("client builds")
        .with_retry_delays(Duration::from_millis(20), Duration::from_millis(100))
}

fn client(sb: &Sandbox, token: &str) -> DsClient {
    client_with(&settings(sb, token))
}

/// base64 of `Champ-<n>`: the stable champ ids of docs/demo-forms.md.
fn champ_id(n: u32) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("Champ-{n}"))
}

/// The error of a call expected to fail, without printing a whole page when it did not.
trait Failed {
    fn failed(self) -> ApiError;
}

impl<T> Failed for Result<T, ApiError> {
    fn failed(self) -> ApiError {
        match self {
            Ok(_) => panic!("the call succeeded; an error was expected"),
            Err(e) => e,
        }
    }
}

/// The token must never show, whatever the error.
fn assert_hides(err: &ApiError, token: &str) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(token), "token leaked in {shown}");
}

/// Requests the sandbox received for one operation.
fn requests_for(sb: &Sandbox, operation: &str) -> Vec<ds_sandbox::RequestRecord> {
    sb.requests()
        .into_iter()
        .filter(|r| r.operation_name.as_deref() == Some(operation))
        .collect()
}

async fn all_dossiers(client: &DsClient, demarche: i64) -> Vec<FetchedDossier> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let page = client
            .dossiers_page(demarche, None, after.as_deref())
            .await
            .expect("page");
        out.extend(page.dossiers);
        if !page.has_next_page {
            return out;
        }
        after = Some(page.end_cursor.expect("a cursor when there is a next page"));
    }
    panic!("paging did not end");
}

fn value_kind(v: &ChampValue) -> String {
    let json = serde_json::to_value(v).expect("serializable");
    json["type"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn lists_every_demo_dossier_page_by_page_and_reads_every_champ_type() {
    let sb = sandbox().await;
    let mut s = settings(&sb, DEMO_TOKEN);
    s.page_size = 7; // several pages
    let client = client_with(&s);

    let li = all_dossiers(&client, 1001).await;
    let ps = all_dossiers(&client, 1002).await;
    let li_numbers: BTreeSet<i64> = li.iter().filter_map(|d| d.number).collect();
    let ps_numbers: BTreeSet<i64> = ps.iter().filter_map(|d| d.number).collect();
    // 33 is hidden pending deletion: it is not listed.
    assert_eq!(
        li_numbers,
        (1..=24).collect(),
        "lettre d'intention dossiers"
    );
    assert_eq!(ps_numbers, (25..=32).collect(), "projet de santé dossiers");
    assert_eq!(li.len(), 24, "no dossier listed twice across pages");

    let mut kinds = BTreeSet::new();
    for fetched in li.iter().chain(&ps) {
        let dossier = fetched
            .parsed
            .as_ref()
            .unwrap_or_else(|e| panic!("demo dossier unreadable: {e}"));
        assert_eq!(Some(dossier.number), fetched.number);
        let tree: serde_json::Value = serde_json::from_str(fetched.raw.get()).expect("JSON");
        assert_eq!(tree["number"].as_i64(), Some(dossier.number));
        // The raw node is the snapshot the sync stores: it must read back the same, from its
        // text and from its tree.
        assert_eq!(
            &decode_dossier_text(fetched.raw.get()).expect("snapshot re-reads"),
            dossier
        );
        assert_eq!(&decode_dossier(&tree).expect("snapshot re-reads"), dossier);
        for champ in dossier.champs.iter().chain(&dossier.annotations) {
            assert!(
                !matches!(champ.value, ChampValue::Other { .. }),
                "dossier {}: champ {} of an unread type: {:?}",
                dossier.number,
                champ.label,
                champ.value
            );
            kinds.insert(value_kind(&champ.value));
            if let ChampValue::Repetition(rows) = &champ.value {
                for row in rows {
                    for c in &row.champs {
                        kinds.insert(value_kind(&c.value));
                    }
                }
            }
        }
    }
    for expected in [
        "text",
        "yes_no",
        "integer",
        "drop_down",
        "multiple_drop_down",
        "region",
        "rna",
        "repetition",
        "dossier_link",
        "piece_justificative",
    ] {
        assert!(kinds.contains(expected), "{expected} not seen in {kinds:?}");
    }

    // Fragment-dependent typing: a yes_no champ comes back as YesNoChamp, a regions champ as
    // RegionChamp, because the query names those types.
    let any_li = li[0].parsed.as_ref().unwrap();
    let derogation = any_li.champ(&champ_id(127)).expect("champ 127");
    assert!(
        matches!(derogation.value, ChampValue::YesNo(_)),
        "{derogation:?}"
    );
    if let Some(region) = any_li.champ(&champ_id(112)) {
        assert!(matches!(region.value, ChampValue::Region(_)), "{region:?}");
    }
    let porteurs = any_li.champ(&champ_id(101)).expect("champ 101");
    assert!(
        matches!(porteurs.value, ChampValue::Repetition(_)),
        "{porteurs:?}"
    );
    let ps_dossier = ps[0].parsed.as_ref().unwrap();
    let lien = ps_dossier.champ(&champ_id(201)).expect("champ 201");
    assert!(matches!(lien.value, ChampValue::DossierLink(_)), "{lien:?}");

    // Listing is incremental: a dossier changed now is the only one changed since now.
    let since = chrono::Utc::now().fixed_offset() - chrono::Duration::seconds(1);
    sb.set_state(10, ds_sandbox::DossierState::EnInstruction, None)
        .expect("state change");
    let page = client.dossiers_page(1001, Some(since), None).await.unwrap();
    let changed: Vec<i64> = page.dossiers.iter().filter_map(|d| d.number).collect();
    assert_eq!(changed, vec![10]);
    assert_eq!(
        page.dossiers[0].parsed.as_ref().unwrap().state,
        DossierState::EnInstruction
    );
}

#[tokio::test]
async fn a_malformed_dossier_fails_alone_and_is_named() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    // DS nulls a non-null field it cannot resolve (invalid_null) and says where.
    sb.push_fault(
        Fault::GraphQlError {
            code: "invalid_null".into(),
            message: "Cannot return null for non-nullable field Dossier.dateDepot".into(),
            path: vec![
                "demarche".into(),
                "dossiers".into(),
                "nodes".into(),
                "2".into(),
                "dateDepot".into(),
            ],
        },
        1,
        Some("GetDemarcheDossiers"),
    );
    let page = client.dossiers_page(1001, None, None).await.expect("page");
    assert_eq!(page.dossiers.len(), 24);
    let bad: Vec<_> = page.dossiers.iter().filter(|d| d.parsed.is_err()).collect();
    assert_eq!(bad.len(), 1, "only the broken dossier fails");
    let err = bad[0].parsed.as_ref().unwrap_err();
    assert_eq!(err.number, bad[0].number);
    assert!(err.number.is_some(), "{err}");
    assert!(err.path.contains("dateDepot"), "the field is named: {err}");
    assert!(
        err.to_string()
            .contains(&format!("dossier {}", err.number.unwrap())),
        "{err}"
    );

    // A stored snapshot with a broken value reads back as a clear error, not a panic.
    let text = page
        .dossiers
        .iter()
        .find(|d| d.parsed.is_ok())
        .unwrap()
        .raw
        .get();
    let mut raw: serde_json::Value = serde_json::from_str(text).expect("JSON");
    raw["champs"][0]["label"] = serde_json::json!(12);
    let err = decode_dossier(&raw).unwrap_err();
    assert!(err.path.starts_with("champs[0]"), "{err}");
    // From the text, the same error, naming the same field.
    assert_eq!(decode_dossier_text(&raw.to_string()).unwrap_err(), err);
    assert!(decode_dossier_text("{\"number\": 12, ").unwrap_err().path == ".");
    assert!(decode_dossier(&serde_json::json!("pas un dossier")).is_err());
}

#[tokio::test]
async fn a_429_waits_for_the_reset_then_succeeds() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    sb.push_fault(
        Fault::Http429 {
            reset_secs: 2,
            retry_after: None,
        },
        1,
        None,
    );
    let started = Instant::now();
    let fetched = client.dossier(10).await.expect("succeeds after the reset");
    assert_eq!(fetched.number, Some(10));
    // RateLimit-Reset is in whole epoch seconds, two seconds ahead: at least one second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited only {:?}",
        started.elapsed()
    );
    let log = requests_for(&sb, "GetDossier");
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    let stats = client.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.by_status.get(&429), Some(&1));
    assert_eq!(stats.by_status.get(&200), Some(&1));
    assert_eq!(stats.retries, 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up_after_max_retries() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN); // max_retries = 3

    sb.push_fault(Fault::Status(503), 2, Some("GetDossier"));
    client.dossier(10).await.expect("third attempt succeeds");
    assert_eq!(
        requests_for(&sb, "GetDossier")
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        vec![503, 503, 200]
    );

    sb.clear_logs();
    sb.push_fault(Fault::Status(503), 10, Some("GetDossier"));
    let err = client.dossier(10).await.failed();
    assert!(
        matches!(
            err,
            ApiError::Unavailable {
                status: 503,
                attempts: 4
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "DS indisponible (HTTP 503) après 4 essais");
    assert_eq!(
        requests_for(&sb, "GetDossier").len(),
        4,
        "1 try + 3 retries"
    );
    assert_hides(&err, DEMO_TOKEN);

    sb.clear_faults();
    sb.push_fault(Fault::Status(500), 1, None);
    client.dossier(10).await.expect("a 500 is retried too");
    assert!(client.stats().retries >= 6);
}

#[tokio::test]
async fn timeouts_are_retried_then_given_up() {
    let sb = sandbox().await;
    let mut s = settings(&sb, DEMO_TOKEN);
    s.timeout = Duration::from_millis(400);
    s.max_retries = 1;
    let client = client_with(&s);

    sb.push_fault(Fault::Delay(Duration::from_secs(2)), 1, Some("GetDossier"));
    client.dossier(10).await.expect("the retry answers in time");

    sb.push_fault(Fault::Delay(Duration::from_secs(2)), 5, Some("GetDossier"));
    let started = Instant::now();
    let err = client.dossier(10).await.failed();
    assert!(matches!(err, ApiError::Timeout { attempts: 2 }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        "DS ne répond pas (délai dépassé) après 2 essais"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout is applied"
    );
    assert!(client.stats().transport_errors >= 3);
    assert_hides(&err, DEMO_TOKEN);
}

#[tokio::test]
async fn an_expired_token_is_not_retried() {
    let sb = sandbox().await;
    let client = client(&sb, EXPIRED_TOKEN);
    let err = client.dossiers_page(1001, None, None).await.failed();
    assert!(matches!(err, ApiError::TokenExpired), "{err:?}");
    assert_eq!(err.to_string(), "jeton expiré");
    assert!(!err.is_retryable());
    assert!(err.is_token_problem());
    assert_eq!(sb.requests().len(), 1, "never retried");
    assert_eq!(client.stats().by_status.get(&401), Some(&1));
    assert_hides(&err, EXPIRED_TOKEN);
}

#[tokio::test]
async fn an_unknown_token_is_forbidden_and_not_retried() {
    let sb = sandbox().await;
    let token = "pas-un-jeton-valide-0123456789";
    let client = client(&sb, token);
    let err = client.dossier(10).await.failed();
    assert!(matches!(err, ApiError::Forbidden { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("accès refusé par DS (HTTP 403)"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(sb.requests().len(), 1, "never retried");
    assert_hides(&err, token);
    assert!(!format!("{client:?}").contains(token));
}

#[tokio::test]
async fn a_demarche_outside_the_token_is_no_access() {
    let sb = sandbox().await;
    let client = client(&sb, LI_ONLY_TOKEN);
    client
        .dossiers_page(1001, None, None)
        .await
        .expect("1001 is covered");
    let err = client.dossiers_page(1002, None, None).await.failed();
    assert!(
        matches!(
            err,
            ApiError::NoAccess {
                subject: Subject::Demarche(1002)
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "jeton sans accès à la démarche 1002");
    assert_hides(&err, LI_ONLY_TOKEN);
}

#[tokio::test]
async fn no_token_means_no_client() {
    let sb = sandbox().await;
    let mut s = settings(&sb, DEMO_TOKEN);
    s.token = None;
    assert!(matches!(DsClient::new(&s), Err(ApiError::NoToken)));
}

#[tokio::test]
async fn malformed_or_cut_answers_are_decode_errors_naming_the_operation() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);

    sb.push_fault(Fault::MalformedJson, 1, Some("GetDossier"));
    let err = client.dossier(10).await.failed();
    assert!(
        matches!(
            err,
            ApiError::Decode {
                operation: "GetDossier",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("réponse illisible de DS (GetDossier)"),
        "{err}"
    );

    // A cut answer: a query is safe to repeat, so it is retried...
    sb.push_fault(Fault::CutBody, 1, Some("GetDemarcheDossiers"));
    let page = client.dossiers_page(1001, None, None).await;
    assert_eq!(page.map(|p| p.dossiers.len()).ok(), Some(24));
    // ...and with no retry left it is an error naming the operation: Decode when the headers
    // came through before the cut, Interrupted when the connection closed before them.
    let mut s = settings(&sb, DEMO_TOKEN);
    s.max_retries = 0;
    let no_retry = client_with(&s);
    sb.push_fault(Fault::CutBody, 1, Some("GetDemarcheDossiers"));
    let err = no_retry.dossiers_page(1001, None, None).await.failed();
    assert!(
        matches!(
            err,
            ApiError::Decode {
                operation: "GetDemarcheDossiers",
                ..
            } | ApiError::Interrupted {
                operation: "GetDemarcheDossiers",
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("GetDemarcheDossiers"), "{err}");
    assert_hides(&err, DEMO_TOKEN);

    // A connection dropped without an answer is retried for a query.
    sb.push_fault(Fault::DropConnection, 1, Some("GetDossier"));
    client
        .dossier(10)
        .await
        .expect("retried after a dropped connection");

    // DS's own execution timeout is a GraphQL error worth one more try.
    sb.push_fault(
        Fault::GraphQlError {
            code: "timeout".into(),
            message: "Timeout on Query.dossier".into(),
            path: vec!["dossier".into()],
        },
        1,
        Some("GetDossier"),
    );
    client
        .dossier(10)
        .await
        .expect("retried after DS's timeout");

    let err = client.dossier(999_999).await.failed();
    assert!(
        matches!(
            err,
            ApiError::NotFound {
                subject: Subject::Dossier(999_999)
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_request_budget_is_never_exceeded_even_across_clones() {
    let sb = sandbox().await;
    let mut s = settings(&sb, DEMO_TOKEN);
    s.max_requests_per_second = 5.0;
    let client = client_with(&s);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let c = client.clone(); // one budget shared by every clone
        tasks.spawn(async move {
            if i % 2 == 0 {
                c.dossier(10 + i).await.map(|_| ())
            } else {
                c.dossiers_page(1002, None, None).await.map(|_| ())
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("call");
    }
    let elapsed = started.elapsed();

    let mut at: Vec<_> = sb.requests().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 12);
    // At 5 a second, any 6 consecutive requests span at least one second (a little slack for
    // the time each request takes to travel and be stamped).
    for w in at.windows(6) {
        let span = w[5] - w[0];
        assert!(
            span >= chrono::Duration::milliseconds(950),
            "6 requests within {span:?}"
        );
    }
    assert!(
        elapsed >= Duration::from_millis(2100),
        "12 requests took {elapsed:?}"
    );
    assert_eq!(client.stats().total(), 12);
}

#[tokio::test]
async fn deleted_and_pending_deleted_dossiers_are_listed() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    let deleted = client
        .deleted_dossiers_page(1001, false, None, None)
        .await
        .unwrap();
    let d34 = deleted
        .dossiers
        .iter()
        .find(|d| d.number == 34)
        .expect("34 deleted");
    assert_eq!(d34.reason, "user_request");
    assert_eq!(d34.state, Some(DossierState::EnConstruction));
    assert!(!deleted.has_next_page);

    let pending = client
        .deleted_dossiers_page(1001, true, None, None)
        .await
        .unwrap();
    let numbers: Vec<i64> = pending.dossiers.iter().map(|d| d.number).collect();
    assert!(numbers.contains(&33), "{numbers:?}");
    assert!(!numbers.contains(&34), "{numbers:?}");

    let since = chrono::Utc::now().fixed_offset() + chrono::Duration::days(1);
    let none = client
        .deleted_dossiers_page(1001, false, Some(since), None)
        .await
        .unwrap();
    assert!(none.dossiers.is_empty());
}

#[tokio::test]
async fn descriptors_give_types_options_children_and_labels() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    let d = client.demarche_descriptors(1001).await.unwrap();
    assert_eq!(d.number, 1001);
    let find = |list: &[essbot::ds::model::ChampDescriptor], n: u32| {
        list.iter()
            .find(|c| c.id == champ_id(n))
            .cloned()
            .unwrap_or_else(|| panic!("descriptor {n}"))
    };
    let porteurs = find(&d.champs, 101);
    assert_eq!(porteurs.type_de_champ, "repetition");
    assert_eq!(porteurs.typename, "RepetitionChampDescriptor");
    assert_eq!(porteurs.children.len(), 3);
    let departements = find(&d.champs, 111);
    assert_eq!(departements.typename, "MultipleDropDownListChampDescriptor");
    assert!(
        departements.options.iter().any(|o| o == "01 - Ain"),
        "{:?}",
        &departements.options[..3.min(departements.options.len())]
    );
    let gouvernance = find(&d.champs, 121);
    let qualite = gouvernance
        .children
        .iter()
        .find(|c| c.id == champ_id(123))
        .expect("child 123");
    assert!(qualite.options.iter().any(|o| o == "CPTS"));
    let rapport = find(&d.annotations, 901);
    assert_eq!(rapport.type_de_champ, "textarea");
    assert_eq!(annotation_key(&rapport.type_de_champ), Some("textarea"));
    assert_eq!(find(&d.annotations, 902).type_de_champ, "checkbox");
    assert_eq!(d.labels.len(), 4);
    assert!(d.labels.iter().any(|l| l.name == "Pré-contrôle : conforme"));
    assert!(
        d.labels
            .iter()
            .any(|l| l.name == "Pré-contrôle : à vérifier")
    );
}

#[tokio::test]
async fn annotations_are_written_and_refusals_are_data() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    let dossier = client.dossier(10).await.unwrap().parsed.unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let writes = vec![
        AnnotationWrite {
            annotation_id: champ_id(901),
            value: AnnotationValue::Textarea("Pré-contrôle : 2 points à compléter".into()),
        },
        AnnotationWrite {
            annotation_id: champ_id(902),
            value: AnnotationValue::Checkbox(false),
        },
        AnnotationWrite {
            annotation_id: champ_id(903),
            value: AnnotationValue::Date(date),
        },
    ];
    let outcome = client
        .modify_annotations(&dossier.id, &writes)
        .await
        .unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    let after = client.dossier(10).await.unwrap().parsed.unwrap();
    assert_eq!(
        after.annotation(&champ_id(901)).unwrap().value,
        ChampValue::Text(Some("Pré-contrôle : 2 points à compléter".into()))
    );
    assert_eq!(
        after.annotation(&champ_id(902)).unwrap().value,
        ChampValue::Checkbox(false)
    );
    assert_eq!(
        after.annotation(&champ_id(903)).unwrap().value,
        ChampValue::Date(Some(date))
    );
    let m = sb.mutations();
    let last = m.last().expect("recorded");
    assert_eq!(last.name, "dossierModifierAnnotations");
    assert_eq!(last.dossier_number, Some(10));
    assert!(last.errors.is_empty());

    // The key must match the annotation's type: `text` on a textarea is refused, as data.
    let wrong = client
        .modify_annotations(
            &dossier.id,
            &[AnnotationWrite {
                annotation_id: champ_id(901),
                value: AnnotationValue::Text("x".into()),
            }],
        )
        .await
        .unwrap();
    assert_eq!(wrong.errors.len(), 1, "{wrong:?}");

    // Nothing to write: nothing sent.
    let before = sb.requests().len();
    assert!(
        client
            .modify_annotations(&dossier.id, &[])
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(sb.requests().len(), before);

    // A read-only token: every mutation says so in its payload.
    let readonly = client_ro(&sb);
    let refused = readonly
        .modify_annotations(&dossier.id, &writes)
        .await
        .unwrap();
    assert!(
        refused
            .errors
            .iter()
            .any(|e| e.contains("seulement en lecture")),
        "{refused:?}"
    );
}

fn client_ro(sb: &Sandbox) -> DsClient {
    client(sb, READONLY_TOKEN)
}

#[tokio::test]
async fn labels_are_added_and_removed_and_refusals_are_data() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    let labels = client.demarche_descriptors(1001).await.unwrap().labels;
    let a_completer = labels
        .iter()
        .find(|l| l.name == "Pré-contrôle : à compléter")
        .expect("label");
    let dossier = client.dossier(11).await.unwrap().parsed.unwrap();
    assert!(!dossier.labels.iter().any(|l| l.id == a_completer.id));

    let added = client
        .add_label(&dossier.id, &a_completer.id)
        .await
        .unwrap();
    assert!(added.is_ok(), "{added:?}");
    let after = client.dossier(11).await.unwrap().parsed.unwrap();
    assert!(after.labels.iter().any(|l| l.id == a_completer.id));

    let again = client
        .add_label(&dossier.id, &a_completer.id)
        .await
        .unwrap();
    assert_eq!(again.errors.len(), 1, "already there: {again:?}");

    let removed = client
        .remove_label(&dossier.id, &a_completer.id)
        .await
        .unwrap();
    assert!(removed.is_ok(), "{removed:?}");
    let after = client.dossier(11).await.unwrap().parsed.unwrap();
    assert!(!after.labels.iter().any(|l| l.id == a_completer.id));

    let not_there = client
        .remove_label(&dossier.id, &a_completer.id)
        .await
        .unwrap();
    assert_eq!(not_there.errors.len(), 1, "{not_there:?}");

    let readonly = client_ro(&sb);
    for outcome in [
        readonly
            .add_label(&dossier.id, &a_completer.id)
            .await
            .unwrap(),
        readonly
            .remove_label(&dossier.id, &a_completer.id)
            .await
            .unwrap(),
    ] {
        assert!(
            outcome
                .errors
                .iter()
                .any(|e| e.contains("seulement en lecture")),
            "{outcome:?}"
        );
    }
    let names: Vec<String> = sb.mutations().iter().map(|m| m.name.clone()).collect();
    assert!(
        names.contains(&"dossierAjouterLabel".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"dossierSupprimerLabel".to_owned()),
        "{names:?}"
    );
}

#[tokio::test]
async fn messages_are_sent_and_refusals_are_data() {
    let sb = sandbox().await;
    let client = client(&sb, DEMO_TOKEN);
    let dossier = client.dossier(12).await.unwrap().parsed.unwrap();
    let body = "Bonjour, il manque la liste des adhérents.";
    let sent = client.send_message(&dossier.id, body).await.unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    let after = client.dossier(12).await.unwrap().parsed.unwrap();
    assert!(after.messages.iter().any(|m| m.body == body));

    let empty = client.send_message(&dossier.id, "").await.unwrap();
    assert!(!empty.is_ok(), "an empty message is refused: {empty:?}");

    // A message must never be sent twice: after a failure that leaves unknown whether DS
    // ran it (a 500, a timeout), it is not retried; after a 503 or a 429 it is.
    sb.clear_logs();
    sb.push_fault(Fault::Status(500), 1, Some("DossierEnvoyerMessage"));
    let err = client.send_message(&dossier.id, "second").await.failed();
    assert!(
        matches!(
            err,
            ApiError::Unavailable {
                status: 500,
                attempts: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(requests_for(&sb, "DossierEnvoyerMessage").len(), 1);
    sb.push_fault(Fault::Status(503), 1, Some("DossierEnvoyerMessage"));
    assert!(
        client
            .send_message(&dossier.id, "third")
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(requests_for(&sb, "DossierEnvoyerMessage").len(), 3);
    let mut s = settings(&sb, DEMO_TOKEN);
    s.timeout = Duration::from_millis(300);
    sb.push_fault(
        Fault::Delay(Duration::from_secs(1)),
        1,
        Some("DossierEnvoyerMessage"),
    );
    let err = client_with(&s)
        .send_message(&dossier.id, "fourth")
        .await
        .failed();
    assert!(matches!(err, ApiError::Timeout { attempts: 1 }), "{err:?}");
    // Annotation writes set values: repeating one is harmless, so a 500 is retried.
    sb.push_fault(Fault::Status(500), 1, Some("DossierModifierAnnotations"));
    let write = [AnnotationWrite {
        annotation_id: champ_id(901),
        value: AnnotationValue::Textarea("rapport".into()),
    }];
    assert!(
        client
            .modify_annotations(&dossier.id, &write)
            .await
            .unwrap()
            .is_ok()
    );

    let refused = client_ro(&sb)
        .send_message(&dossier.id, body)
        .await
        .unwrap();
    assert!(
        refused
            .errors
            .iter()
            .any(|e| e.contains("seulement en lecture")),
        "{refused:?}"
    );
    let last = sb.mutations().last().cloned().expect("recorded");
    assert_eq!(last.name, "dossierEnvoyerMessage");
}
