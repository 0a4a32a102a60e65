//! The sandbox over real HTTP: paging, auth, rate limiting, faults, mutations, typing.

mod common;

use std::time::Duration;

use common::{gid, gql, post_as, post_raw, start, start_with};
use ds_sandbox::{DEMO_TOKEN, Dataset, DeletedDossierReason, DossierState, Fault, SandboxOptions};
use serde_json::{Value, json};

const PAGE: &str = r#"query getDemarche($n: Int!, $after: String, $first: Int, $updatedSince: ISO8601DateTime, $createdSince: ISO8601DateTime) {
  demarche(number: $n) {
    dossiers(first: $first, after: $after, updatedSince: $updatedSince, createdSince: $createdSince) {
      pageInfo { hasNextPage hasPreviousPage endCursor }
      nodes { number dateDepot dateDerniereModification }
      edges { cursor node { number } }
    }
  }
}"#;

async fn all_pages(
    sb: &ds_sandbox::Sandbox,
    first: i64,
    updated_since: Option<&str>,
) -> (Vec<i64>, usize) {
    let mut after: Option<String> = None;
    let mut numbers = Vec::new();
    let mut pages = 0;
    loop {
        let v = gql(
            sb,
            PAGE,
            json!({"n": 1001, "first": first, "after": after, "updatedSince": updated_since}),
        )
        .await;
        let conn = &v["data"]["demarche"]["dossiers"];
        let nodes = conn["nodes"].as_array().expect("nodes");
        assert!(nodes.len() <= 100, "page of {}", nodes.len());
        let edges = conn["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), nodes.len());
        numbers.extend(nodes.iter().map(|n| n["number"].as_i64().expect("number")));
        pages += 1;
        let info = &conn["pageInfo"];
        if !info["hasNextPage"].as_bool().expect("hasNextPage") {
            return (numbers, pages);
        }
        assert_eq!(
            edges.last().map(|e| e["cursor"].clone()),
            Some(info["endCursor"].clone())
        );
        after = info["endCursor"].as_str().map(str::to_owned);
        assert!(pages < 100, "paging does not end");
    }
}

#[tokio::test]
async fn paging_returns_every_dossier_once_in_order() {
    for n in [0usize, 1, 100, 101, 250] {
        let sb = start(Dataset::with_dossier_count(n)).await;
        let (numbers, pages) = all_pages(&sb, 100, None).await;
        let expected: Vec<i64> = (1..=n as i64).collect();
        assert_eq!(numbers, expected, "{n} dossiers");
        assert_eq!(pages, n.div_ceil(100).max(1), "{n} dossiers");
        // first > 100 is capped to 100, as DS does.
        let v = gql(&sb, PAGE, json!({"n": 1001, "first": 500})).await;
        let len = v["data"]["demarche"]["dossiers"]["nodes"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(len, n.min(100));
        // A small page size follows the same order, across tied timestamps.
        if n == 101 {
            let (numbers, pages) = all_pages(&sb, 7, None).await;
            assert_eq!(numbers, expected);
            assert_eq!(pages, 15);
        }
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn updated_since_is_inclusive_at_second_precision() {
    let sb = start(Dataset::with_dossier_count(6)).await;
    let v = gql(&sb, PAGE, json!({"n": 1001})).await;
    let nodes = v["data"]["demarche"]["dossiers"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    // Rendered at second precision in Paris time; the stored instants carry sub-seconds.
    let first_update = nodes[0]["dateDerniereModification"]
        .as_str()
        .expect("date")
        .to_owned();
    assert_eq!(first_update, "2026-01-05T12:00:00+01:00");
    assert_eq!(nodes[0]["dateDepot"], "2026-01-05T09:00:00+01:00");
    let later = nodes[3]["dateDerniereModification"]
        .as_str()
        .expect("date")
        .to_owned();
    // Inclusive: the truncated value of the earliest update still returns it.
    let (numbers, _) = all_pages(&sb, 100, Some(&first_update)).await;
    assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6]);
    let (numbers, _) = all_pages(&sb, 100, Some("2026-01-05T12:00:01+01:00")).await;
    assert_eq!(numbers, vec![4, 5, 6]);
    let (numbers, _) = all_pages(&sb, 100, Some(&later)).await;
    assert_eq!(numbers, vec![4, 5, 6]);
    // An update moves a dossier to the end of the updatedSince order; createdSince is ignored.
    sb.edit_champ(1, 113, json!("Cardiologie : périmètre précisé."))
        .expect("edit");
    let v = gql(
        &sb,
        PAGE,
        json!({"n": 1001, "updatedSince": later, "createdSince": "2030-01-01T00:00:00Z"}),
    )
    .await;
    let order: Vec<i64> = v["data"]["demarche"]["dossiers"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["number"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(order, vec![4, 5, 6, 1]);
    // createdSince alone filters on dateDepot.
    let v = gql(
        &sb,
        PAGE,
        json!({"n": 1001, "createdSince": "2026-01-05T09:47:00+01:00"}),
    )
    .await;
    assert_eq!(
        v["data"]["demarche"]["dossiers"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[tokio::test]
async fn auth_errors_match_ds() {
    let sb = start(Dataset::demo()).await;
    let q = "query q { demarche(number: 1001) { number } }";
    for token in [None, Some("not-a-token")] {
        let a = post_as(&sb, token, q, json!({})).await;
        assert_eq!(a.status, 403);
        assert_eq!(
            a.json(),
            json!({"errors":[{"message":"Without a token, only persisted queries are allowed","extensions":{"code":"forbidden"}}],"data":null})
        );
    }
    let a = post_as(&sb, Some("essbot-demo-expired"), q, json!({})).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["errors"][0]["extensions"]["code"], "unauthorized");
    assert_eq!(a.json()["errors"][0]["message"], "Token expired");
    // Other header forms Rails accepts.
    for h in [
        format!("Bearer token={DEMO_TOKEN}"),
        format!("Token token=\"{DEMO_TOKEN}\""),
    ] {
        let body = json!({"query": q}).to_string();
        let a = post_raw(&sb, Some(&h), body).await.expect("request");
        assert_eq!(a.status, 200, "{h}");
        assert_eq!(a.json()["data"]["demarche"]["number"], 1001);
    }
    // A token restricted to 1001 sees 1002 and its dossiers as hidden.
    let a = post_as(
        &sb,
        Some("essbot-demo-li-only"),
        "query q { demarche(number: 1002) { number } }",
        json!({}),
    )
    .await;
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["data"], Value::Null);
    assert_eq!(v["errors"][0]["extensions"]["code"], "unauthorized");
    assert_eq!(
        v["errors"][0]["message"],
        "An object of type Demarche was hidden due to permissions"
    );
    let a = post_as(
        &sb,
        Some("essbot-demo-li-only"),
        "query q { dossier(number: 25) { number } }",
        json!({}),
    )
    .await;
    assert_eq!(a.json()["errors"][0]["extensions"]["code"], "unauthorized");
    let a = post_as(
        &sb,
        Some("essbot-demo-li-only"),
        "query q { dossier(number: 1) { number } }",
        json!({}),
    )
    .await;
    assert_eq!(a.json()["data"]["dossier"]["number"], 1);
    // Unknown objects.
    let v = gql(
        &sb,
        "query q { dossier(number: 4242) { number } }",
        json!({}),
    )
    .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "not_found");
    assert_eq!(v["errors"][0]["message"], "Dossier not found");
    let v = gql(
        &sb,
        "query q { demarche(number: 4242) { number } }",
        json!({}),
    )
    .await;
    assert_eq!(v["errors"][0]["message"], "Demarche not found");
    // Hidden and deleted dossiers are not served.
    let v = gql(&sb, "query q { dossier(number: 33) { number } }", json!({})).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "not_found");
    // Bad requests.
    let auth = format!("Bearer {DEMO_TOKEN}");
    let a = post_raw(&sb, Some(&auth), "{not json")
        .await
        .expect("request");
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["errors"][0]["extensions"]["code"], "bad_request");
    let a = post_as(
        &sb,
        Some(DEMO_TOKEN),
        "query { demarche(number: 1001) { ",
        json!({}),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json()["errors"][0]["extensions"]["code"],
        "graphql_parse_failed"
    );
    // The log never holds a raw token.
    let log = sb.requests();
    assert!(
        log.iter()
            .all(|r| !r.token.contains(DEMO_TOKEN) && !r.token.contains("not-a-token"))
    );
    assert!(
        log.iter()
            .any(|r| r.token == "demo-expired" && r.status == 401)
    );
    assert!(
        log.iter()
            .any(|r| r.token.starts_with("unknown:") && r.status == 403)
    );
    assert!(log.iter().any(|r| r.token == "none" && r.status == 403));
}

#[tokio::test]
async fn rate_limit_answers_429_with_reset_header() {
    // Stay inside one fixed window.
    let now = chrono::Utc::now().timestamp();
    if now.rem_euclid(60) >= 57 {
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let options = SandboxOptions {
        rate_limit_per_minute: Some(3),
        ..SandboxOptions::default()
    };
    let sb = start_with(Dataset::demo(), options).await;
    let q = "query q { demarche(number: 1001) { number } }";
    for _ in 0..3 {
        assert_eq!(
            post_as(&sb, Some(DEMO_TOKEN), q, json!({})).await.status,
            200
        );
    }
    let a = post_as(&sb, Some(DEMO_TOKEN), q, json!({})).await;
    assert_eq!(a.status, 429);
    assert!(a.text.starts_with("Calm down, cowboy!"));
    assert_eq!(a.headers["ratelimit-remaining"], "0");
    let reset: i64 = a.headers["ratelimit-reset"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("int");
    let now = chrono::Utc::now().timestamp();
    assert_eq!(reset, (now.div_euclid(60) + 1) * 60);
    assert!(a.headers.get("retry-after").is_none());
    // Counted per exact Authorization value.
    let other = format!("Bearer token={DEMO_TOKEN}");
    let a = post_raw(&sb, Some(&other), json!({"query": q}).to_string())
        .await
        .expect("request");
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn faults_fire_as_scripted() {
    let sb = start(Dataset::demo()).await;
    let q = "query getDossier { dossier(number: 1) { number demarche { number } } }";
    let auth = format!("Bearer {DEMO_TOKEN}");
    let body = || json!({"query": q, "operationName": "getDossier"}).to_string();

    sb.push_fault(
        Fault::Http429 {
            reset_secs: 30,
            retry_after: Some(30),
        },
        1,
        None,
    );
    let a = post_raw(&sb, Some(&auth), body()).await.expect("request");
    assert_eq!(a.status, 429);
    assert_eq!(a.headers["retry-after"], "30");
    let reset: i64 = a.headers["ratelimit-reset"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("int");
    assert!((reset - chrono::Utc::now().timestamp() - 30).abs() <= 2);

    sb.push_fault(Fault::Status(500), 2, None);
    for _ in 0..2 {
        let a = post_raw(&sb, Some(&auth), body()).await.expect("request");
        assert_eq!(a.status, 500);
        assert_eq!(
            a.json()["errors"][0]["extensions"]["code"],
            "internal_server_error"
        );
    }
    sb.push_fault(Fault::Status(502), 1, None);
    let a = post_raw(&sb, Some(&auth), body()).await.expect("request");
    assert_eq!(a.status, 502);
    assert!(a.text.contains("Bad Gateway"));

    sb.push_fault(Fault::MalformedJson, 1, None);
    let a = post_raw(&sb, Some(&auth), body()).await.expect("request");
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());

    sb.push_fault(Fault::CutBody, 1, None);
    assert!(
        post_raw(&sb, Some(&auth), body()).await.is_err(),
        "cut body must fail"
    );

    sb.push_fault(Fault::DropConnection, 1, None);
    assert!(
        post_raw(&sb, Some(&auth), body()).await.is_err(),
        "dropped connection must fail"
    );

    sb.push_fault(Fault::Delay(Duration::from_millis(600)), 1, None);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .expect("client");
    let err = client
        .post(sb.url())
        .header("authorization", &auth)
        .body(body())
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout());

    sb.push_fault(
        Fault::GraphQlError {
            code: "timeout".into(),
            message: "Timeout on Query.dossier".into(),
            path: vec![],
        },
        1,
        None,
    );
    let v = post_raw(&sb, Some(&auth), body())
        .await
        .expect("request")
        .json();
    assert_eq!(v["data"], Value::Null);
    assert_eq!(v["errors"][0]["extensions"]["code"], "timeout");
    sb.push_fault(
        Fault::GraphQlError {
            code: "invalid_null".into(),
            message: "Cannot return null for non-nullable field".into(),
            path: vec!["dossier".into(), "demarche".into()],
        },
        1,
        None,
    );
    let v = post_raw(&sb, Some(&auth), body())
        .await
        .expect("request")
        .json();
    assert_eq!(v["data"]["dossier"]["number"], 1);
    assert_eq!(v["data"]["dossier"]["demarche"], Value::Null);

    // Faults restricted to an operation leave the others alone.
    sb.push_fault(Fault::Status(503), 1, Some("other"));
    let a = post_raw(&sb, Some(&auth), body()).await.expect("request");
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["data"]["dossier"]["number"], 1);
    let other =
        json!({"query": "query other { dossier(number: 2) { number } }", "operationName": "other"});
    let a = post_raw(&sb, Some(&auth), other.to_string())
        .await
        .expect("request");
    assert_eq!(a.status, 503);

    let log = sb.requests();
    // The delayed request is logged when (and if) its handler completes: leave it out.
    let mut statuses: Vec<u16> = log
        .iter()
        .filter(|r| !matches!(r.fault, Some(Fault::Delay(_))))
        .map(|r| r.status)
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        vec![0, 200, 200, 200, 200, 200, 429, 500, 500, 502, 503]
    );
    assert!(log.iter().all(|r| r.token == "demo"));
    assert_eq!(log[0].operation_name.as_deref(), Some("getDossier"));
    assert_eq!(log[1].fault, Some(Fault::Status(500)));
    assert!(log.iter().all(|r| !r.mutation));
    // Back to normal.
    sb.clear_faults();
    assert_eq!(
        post_raw(&sb, Some(&auth), body())
            .await
            .expect("request")
            .status,
        200
    );
}

const ANNOTATIONS: &str = r#"mutation dossierModifierAnnotations($input: DossierModifierAnnotationsInput!) {
  dossierModifierAnnotations(input: $input) {
    clientMutationId
    errors { message }
    annotations { id __typename stringValue }
  }
}"#;

const DATES: &str = r#"query getDossier($n: Int!) {
  dossier(number: $n) {
    dateDerniereModification dateDerniereModificationChamps dateDerniereModificationAnnotations
    labels { id name }
    messages { body }
    annotations { id label stringValue ... on CheckboxChamp { checked: value } ... on DateChamp { date } }
  }
}"#;

fn inst(n: i64) -> String {
    gid("Instructeur", n)
}

#[tokio::test]
async fn annotation_mutations_behave_like_ds() {
    let sb = start(Dataset::demo()).await;
    let before = gql(&sb, DATES, json!({"n": 12})).await["data"]["dossier"].clone();
    let input = json!({
        "dossierId": gid("Dossier", 12),
        "instructeurId": inst(1),
        "clientMutationId": "cm-1",
        "annotations": [
            {"id": gid("Champ", 901), "value": {"textarea": "Pré-contrôle essbot : NON CONFORME"}},
            {"id": gid("Champ", 902), "value": {"checkbox": false}},
            {"id": gid("Champ", 903), "value": {"date": "2026-12-01"}}
        ]
    });
    let v = gql(&sb, ANNOTATIONS, json!({"input": input})).await;
    let p = &v["data"]["dossierModifierAnnotations"];
    assert_eq!(p["clientMutationId"], "cm-1");
    assert_eq!(p["errors"], Value::Null, "{v}");
    assert_eq!(p["annotations"].as_array().map(Vec::len), Some(3));
    let after = gql(&sb, DATES, json!({"n": 12})).await["data"]["dossier"].clone();
    assert_ne!(
        after["dateDerniereModification"],
        before["dateDerniereModification"]
    );
    assert_ne!(
        after["dateDerniereModificationAnnotations"],
        before["dateDerniereModificationAnnotations"]
    );
    assert_eq!(
        after["dateDerniereModificationChamps"],
        before["dateDerniereModificationChamps"]
    );
    let ann = after["annotations"].as_array().expect("annotations");
    assert_eq!(ann[0]["stringValue"], "Pré-contrôle essbot : NON CONFORME");
    assert_eq!(ann[1]["checked"], false);
    assert_eq!(ann[2]["date"], "2026-12-01");

    // Wrong key, unknown id: messages as DS; valid ones are still saved (a partition).
    let input = json!({
        "dossierId": gid("Dossier", 12),
        "instructeurId": inst(1),
        "annotations": [
            {"id": gid("Champ", 902), "value": {"text": "oui"}},
            {"id": gid("Champ", 999), "value": {"text": "x"}},
            {"id": gid("Champ", 901), "value": {"text": "mauvaise clé pour un textarea"}},
            {"id": gid("Champ", 902), "value": {"checkbox": true}}
        ]
    });
    let v = gql(&sb, ANNOTATIONS, json!({"input": input})).await;
    let p = &v["data"]["dossierModifierAnnotations"];
    let messages: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        messages,
        vec![
            format!(
                "L‘annotation \"{}\" n’est pas de type attendu",
                gid("Champ", 902)
            ),
            format!("L‘annotation \"{}\" n’existe pas", gid("Champ", 999)),
            format!(
                "L‘annotation \"{}\" n’est pas de type attendu",
                gid("Champ", 901)
            ),
        ]
    );
    assert_eq!(p["annotations"].as_array().map(Vec::len), Some(1));
    let after = gql(&sb, DATES, json!({"n": 12})).await["data"]["dossier"].clone();
    assert_eq!(after["annotations"][1]["checked"], true);

    // An instructeur outside the dossier's groupe.
    let input = json!({"dossierId": gid("Dossier", 12), "instructeurId": inst(2), "annotations": [
        {"id": gid("Champ", 902), "value": {"checkbox": true}}]});
    let v = gql(&sb, ANNOTATIONS, json!({"input": input.clone()})).await;
    assert_eq!(
        v["data"]["dossierModifierAnnotations"]["errors"][0]["message"],
        "L’instructeur n’a pas les droits d’accès à ce dossier"
    );
    // A read-only token.
    let a = post_as(
        &sb,
        Some("essbot-demo-readonly"),
        ANNOTATIONS,
        json!({"input": input}),
    )
    .await;
    let p = &a.json()["data"]["dossierModifierAnnotations"];
    assert_eq!(
        p["errors"],
        json!([{"message": "Le jeton utilisé est configuré seulement en lecture"}])
    );
    assert_eq!(p["annotations"], Value::Null);
    // An unknown dossier is a top-level error.
    let input =
        json!({"dossierId": gid("Dossier", 4242), "instructeurId": inst(1), "annotations": []});
    let v = gql(&sb, ANNOTATIONS, json!({"input": input})).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "not_found");

    // Deprecated per-type mutations.
    let text = r#"mutation m($input: DossierModifierAnnotationTextInput!) { dossierModifierAnnotationText(input: $input) { annotation { id } errors { message } } }"#;
    let v = gql(&sb, text, json!({"input": {"dossierId": gid("Dossier", 12), "instructeurId": inst(1), "annotationId": gid("Champ", 901), "value": "texte"}})).await;
    assert_eq!(
        v["data"]["dossierModifierAnnotationText"]["errors"],
        Value::Null,
        "{v}"
    );
    assert_eq!(
        v["data"]["dossierModifierAnnotationText"]["annotation"]["id"],
        gid("Champ", 901)
    );
    let v = gql(&sb, text, json!({"input": {"dossierId": gid("Dossier", 12), "instructeurId": inst(1), "annotationId": gid("Champ", 903), "value": "texte"}})).await;
    assert!(
        v["data"]["dossierModifierAnnotationText"]["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("n’existe pas")
    );
    let checkbox = r#"mutation m($input: DossierModifierAnnotationCheckboxInput!) { dossierModifierAnnotationCheckbox(input: $input) { errors { message } annotation { ... on CheckboxChamp { value } } } }"#;
    let v = gql(&sb, checkbox, json!({"input": {"dossierId": gid("Dossier", 12), "instructeurId": inst(1), "annotationId": gid("Champ", 902), "value": false}})).await;
    assert_eq!(
        v["data"]["dossierModifierAnnotationCheckbox"]["annotation"]["value"],
        false
    );
    let date = r#"mutation m($input: DossierModifierAnnotationDateInput!) { dossierModifierAnnotationDate(input: $input) { errors { message } annotation { ... on DateChamp { date } } } }"#;
    let v = gql(&sb, date, json!({"input": {"dossierId": gid("Dossier", 12), "instructeurId": inst(1), "annotationId": gid("Champ", 904), "value": "2026-12-24"}})).await;
    assert_eq!(
        v["data"]["dossierModifierAnnotationDate"]["annotation"]["date"],
        "2026-12-24"
    );
    let int = r#"mutation m($input: DossierModifierAnnotationIntegerNumberInput!) { dossierModifierAnnotationIntegerNumber(input: $input) { errors { message } annotation { ... on IntegerNumberChamp { value } } } }"#;
    let v = gql(&sb, int, json!({"input": {"dossierId": gid("Dossier", 25), "instructeurId": inst(1), "annotationId": gid("Champ", 960), "value": 44}})).await;
    assert_eq!(
        v["data"]["dossierModifierAnnotationIntegerNumber"]["annotation"]["value"],
        "44"
    );

    let log = sb.mutations();
    assert!(log.len() >= 9);
    assert_eq!(log[0].name, "dossierModifierAnnotations");
    assert_eq!(log[0].dossier_number, Some(12));
    assert!(log[0].errors.is_empty());
    assert_eq!(
        log[0].input["annotations"][0]["value"]["textarea"],
        "Pré-contrôle essbot : NON CONFORME"
    );
    assert_eq!(log[1].errors.len(), 3);
    assert!(sb.requests().iter().any(|r| r.mutation));
}

#[tokio::test]
async fn message_and_label_mutations_behave_like_ds() {
    let sb = start(Dataset::demo()).await;
    let send = r#"mutation dossierEnvoyerMessage($input: DossierEnvoyerMessageInput!) { dossierEnvoyerMessage(input: $input) { clientMutationId errors { message } message { body email } } }"#;
    let v = gql(
        &sb,
        send,
        json!({"input": {"dossierId": gid("Dossier", 10), "instructeurId": inst(1), "body": "  "}}),
    )
    .await;
    assert_eq!(
        v["data"]["dossierEnvoyerMessage"]["errors"][0]["message"],
        "Le champ « Votre message » ne peut être vide"
    );
    let before = gql(&sb, DATES, json!({"n": 10})).await["data"]["dossier"].clone();
    let v = gql(&sb, send, json!({"input": {"dossierId": gid("Dossier", 10), "instructeurId": inst(1), "body": "Merci de préciser le périmètre.", "clientMutationId": "m1"}})).await;
    let p = &v["data"]["dossierEnvoyerMessage"];
    assert_eq!(p["errors"], Value::Null);
    assert_eq!(p["clientMutationId"], "m1");
    assert_eq!(p["message"]["email"], "instructeur.ess@ars-demo.example");
    let after = gql(&sb, DATES, json!({"n": 10})).await["data"]["dossier"].clone();
    assert_ne!(
        after["dateDerniereModification"],
        before["dateDerniereModification"]
    );
    assert_eq!(
        after["dateDerniereModificationAnnotations"],
        before["dateDerniereModificationAnnotations"]
    );
    assert_eq!(
        after["messages"][0]["body"],
        "Merci de préciser le périmètre."
    );
    let v = gql(
        &sb,
        send,
        json!({"input": {"dossierId": gid("Dossier", 10), "instructeurId": inst(2), "body": "x"}}),
    )
    .await;
    assert_eq!(
        v["data"]["dossierEnvoyerMessage"]["errors"][0]["message"],
        "L’instructeur n’a pas les droits d’accès à ce dossier"
    );

    let add = r#"mutation dossierAjouterLabel($input: DossierAjouterLabelInput!) { dossierAjouterLabel(input: $input) { errors { message } label { name } dossier { number labels { name } } } }"#;
    let del = r#"mutation dossierSupprimerLabel($input: DossierSupprimerLabelInput!) { dossierSupprimerLabel(input: $input) { errors { message } label { name } } }"#;
    let input =
        |l: i64| json!({"input": {"dossierId": gid("Dossier", 10), "labelId": gid("Label", l)}});
    let v = gql(&sb, add, input(2)).await;
    assert_eq!(
        v["data"]["dossierAjouterLabel"]["errors"],
        Value::Null,
        "{v}"
    );
    assert_eq!(
        v["data"]["dossierAjouterLabel"]["label"]["name"],
        "Pré-contrôle : à compléter"
    );
    assert_eq!(
        v["data"]["dossierAjouterLabel"]["dossier"]["labels"][0]["name"],
        "Pré-contrôle : à compléter"
    );
    let v = gql(&sb, add, input(2)).await;
    assert_eq!(
        v["data"]["dossierAjouterLabel"]["errors"][0]["message"],
        "Ce label est déjà associé au dossier"
    );
    let v = gql(&sb, add, input(4)).await;
    assert_eq!(
        v["data"]["dossierAjouterLabel"]["errors"][0]["message"],
        "Ce label n’appartient pas à la même démarche que le dossier"
    );
    let v = gql(&sb, del, input(1)).await;
    assert_eq!(
        v["data"]["dossierSupprimerLabel"]["errors"][0]["message"],
        "Ce label n’est pas associé au dossier"
    );
    let v = gql(&sb, del, input(2)).await;
    assert_eq!(v["data"]["dossierSupprimerLabel"]["errors"], Value::Null);
    // Labels bump nothing.
    let last = gql(&sb, DATES, json!({"n": 10})).await["data"]["dossier"].clone();
    assert_eq!(
        last["dateDerniereModification"],
        after["dateDerniereModification"]
    );
    // Read-only token.
    let a = post_as(&sb, Some("essbot-demo-readonly"), add, input(2)).await;
    assert_eq!(
        a.json()["data"]["dossierAjouterLabel"]["errors"][0]["message"],
        "Le jeton utilisé est configuré seulement en lecture"
    );
    assert_eq!(
        a.json()["data"]["dossierAjouterLabel"]["dossier"],
        Value::Null
    );
    let names: Vec<String> = sb.mutations().iter().map(|m| m.name.clone()).collect();
    assert!(names.contains(&"dossierEnvoyerMessage".to_owned()));
    assert!(names.contains(&"dossierSupprimerLabel".to_owned()));
}

const TYPING: &str = r#"query getDossier($n: Int!) { dossier(number: $n) { champs { id __typename
  ... on RepetitionChamp { rows { id champs { id __typename } } } } } }"#;

const TYPING_NEW: &str = r#"query getDossier($n: Int!) { dossier(number: $n) { champs { id __typename ...C
  ... on RepetitionChamp { rows { id champs { id __typename ...C } } } } } }
fragment C on Champ { ... on YesNoChamp { value } ... on RegionChamp { region { code name } } ... on DropDownListChamp { value } }"#;

fn typename_of(champs: &Value, id: u64) -> String {
    let want = gid("Champ", id);
    champs
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == want)
        .map(|c| c["__typename"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn champ_types_depend_on_fragments() {
    let sb = start(Dataset::demo()).await;
    let old = gql(&sb, TYPING, json!({"n": 1})).await;
    let champs = &old["data"]["dossier"]["champs"];
    assert_eq!(typename_of(champs, 127), "CheckboxChamp");
    assert_eq!(typename_of(champs, 112), "TextChamp");
    assert_eq!(typename_of(champs, 116), "IntegerNumberChamp");
    assert_eq!(typename_of(champs, 117), "RNAChamp");
    let row = &champs
        .as_array()
        .expect("champs")
        .iter()
        .find(|c| c["id"] == gid("Champ", 121))
        .expect("121")["rows"][0];
    let row_id = row["id"].as_str().expect("row id");
    let ulid = String::from_utf8(base64_decode(row_id)).expect("utf8");
    assert!(ulid.starts_with("Row-") && ulid.len() == 4 + 26, "{ulid}");
    assert_eq!(row["champs"][1]["__typename"], "TextChamp");
    let child = String::from_utf8(base64_decode(row["champs"][1]["id"].as_str().expect("id")))
        .expect("utf8");
    assert_eq!(child, format!("Champ-123|{}", &ulid[4..]));

    let new = gql(&sb, TYPING_NEW, json!({"n": 1})).await;
    let champs = &new["data"]["dossier"]["champs"];
    assert_eq!(typename_of(champs, 127), "YesNoChamp");
    assert_eq!(typename_of(champs, 112), "RegionChamp");
    let region = champs
        .as_array()
        .expect("champs")
        .iter()
        .find(|c| c["id"] == gid("Champ", 112))
        .expect("112");
    assert_eq!(region["region"], json!({"code": "53", "name": "Bretagne"}));
    let row = &champs
        .as_array()
        .expect("champs")
        .iter()
        .find(|c| c["id"] == gid("Champ", 121))
        .expect("121")["rows"][0];
    assert_eq!(row["champs"][1]["__typename"], "DropDownListChamp");
    assert_eq!(row["champs"][1]["value"], "Médecin spécialiste libéral");

    // A malformed integer reaches the client verbatim, as a BigInt string.
    let v = gql(&sb, r#"query q { dossier(number: 22) { champs(id: "Q2hhbXAtMTE2") { ... on IntegerNumberChamp { value } } } }"#, json!({})).await;
    assert_eq!(v["data"]["dossier"]["champs"], json!([{"value": "douze"}]));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

#[tokio::test]
async fn in_process_edits_change_what_is_served() {
    let sb = start(Dataset::demo()).await;
    let q = r#"query getDemarche { demarche(number: 1001) {
        activeRevision { champDescriptors { id label __typename ... on RepetitionChampDescriptor { champDescriptors { id } } } }
        deletedDossiers { nodes { number reason dateSupression } }
        pendingDeletedDossiers { nodes { number reason } }
        dossiers(state: accepte) { nodes { number state } } } }"#;
    let v = gql(&sb, q, json!({})).await;
    let d = &v["data"]["demarche"];
    assert_eq!(d["deletedDossiers"]["nodes"][0]["number"], 34);
    assert_eq!(d["pendingDeletedDossiers"]["nodes"][0]["number"], 33);
    let accepted = d["dossiers"]["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(
        d["activeRevision"]["champDescriptors"][0]["__typename"],
        "RepetitionChampDescriptor"
    );
    assert_eq!(
        d["activeRevision"]["champDescriptors"][0]["champDescriptors"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    sb.set_state(10, DossierState::Accepte, Some("Validé."))
        .expect("state");
    sb.delete_dossier(11, DeletedDossierReason::InstructeurRequest)
        .expect("delete");
    sb.hide_dossier(13, DeletedDossierReason::UserRequest)
        .expect("hide");
    sb.remove_champ_descriptor(1001, 128).expect("drift");
    assert!(sb.remove_champ_descriptor(1001, 128).is_err());
    assert!(sb.edit_champ(4242, 113, json!("x")).is_err());
    assert!(sb.edit_champ(10, 114, json!(true)).is_err());
    let n = sb
        .add_dossier(
            json!({"number": 500, "demarche": 1001, "state": "en_construction",
            "dateDepot": "2026-11-20T10:00:00+01:00", "usager": "n@exemple.fr",
            "demandeur": {"type": "PersonnePhysique", "nom": "Nouveau", "prenom": "Dossier"},
            "champs": [{"id": 116, "value": 12}]}),
        )
        .expect("add");
    assert_eq!(n, 500);
    assert!(sb.add_dossier(json!({"number": 500})).is_err());

    let v = gql(&sb, q, json!({})).await;
    let d = &v["data"]["demarche"];
    assert_eq!(
        d["dossiers"]["nodes"].as_array().map_or(0, Vec::len),
        accepted + 1
    );
    let deleted: Vec<i64> = d["deletedDossiers"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["number"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(deleted, vec![34, 11]);
    assert_eq!(
        d["deletedDossiers"]["nodes"][1]["reason"],
        "instructeur_request"
    );
    assert_eq!(
        d["pendingDeletedDossiers"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let labels: Vec<&str> = d["activeRevision"]["champDescriptors"]
        .as_array()
        .expect("descs")
        .iter()
        .map(|c| c["label"].as_str().unwrap_or(""))
        .collect();
    assert!(!labels.contains(&"Motif de la dérogation"));
    let v = gql(
        &sb,
        "query q { dossier(number: 10) { state dateTraitement motivation traitements { event } } }",
        json!({}),
    )
    .await;
    assert_eq!(v["data"]["dossier"]["state"], "accepte");
    assert_eq!(v["data"]["dossier"]["motivation"], "Validé.");
    assert!(v["data"]["dossier"]["dateTraitement"].is_string());
    let v = gql(
        &sb,
        "query q { dossier(number: 500) { number champs(id: \"Q2hhbXAtMTE2\") { stringValue } } }",
        json!({}),
    )
    .await;
    assert_eq!(v["data"]["dossier"]["champs"][0]["stringValue"], "12");
}
