//! HTTP: what DS's controller and its rack middleware do before and after the GraphQL
//! execution (tokens, rate limiting, status codes), plus the injected faults and the log.

use std::future::Future;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Positioned, Variables};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::schema::{Caller, DsSchema, Fragments, build_schema, lock};
use crate::{Fault, RequestRecord, SandboxError, Shared};

struct AppState {
    shared: Arc<Shared>,
    schema: DsSchema,
}

/// Lets a handler close its own connection without answering.
#[derive(Clone)]
struct ConnKill(Arc<Notify>);

/// Accepts connections until `shutdown`; each is served by hyper with the axum router.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let state = Arc::new(AppState {
        schema: build_schema(shared.clone()),
        shared,
    });
    let router = Router::new()
        .route("/api/v2/graphql", post(graphql))
        .with_state(state);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Transient accept errors (e.g. too many open files) must not stop the server.
                tracing::warn!(error = %e, "sandbox accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let kill = Arc::new(Notify::new());
        let conn_kill = ConnKill(kill.clone());
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(conn_kill.clone());
                req
            },
        );
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper_util::service::TowerToHyperService::new(service);
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "sandbox connection ended");
                    }
                }
                () = kill.notified() => {}
                _ = stop.changed() => {}
            }
        });
    }
    let _ = stop_tx.send(true);
    Ok(())
}

/// The token in an `Authorization` header, in any form Rails' token parser accepts.
fn bearer(value: &str) -> Option<String> {
    let rest = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("Token "))?
        .trim();
    let token = rest
        .strip_prefix("token=")
        .map(|t| t.trim_matches('"'))
        .unwrap_or(rest);
    (!token.is_empty()).then(|| token.to_owned())
}

fn hashed(token: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    format!("unknown:{:016x}", h.finish())
}

fn controller_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"errors": [{"message": message, "extensions": {"code": code}}], "data": null})
            .to_string(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn too_many(reset_at: i64, retry_after: Option<u64>) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        "Calm down, cowboy!\n",
    )
        .into_response();
    let h = r.headers_mut();
    h.insert("RateLimit-Remaining", HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&reset_at.to_string()) {
        h.insert("RateLimit-Reset", v);
    }
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    r
}

fn status_fault(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match code {
        500 => json_response(
            status,
            json!({"errors": [{"message": "Internal Server Error", "extensions": {"code": "internal_server_error", "exception_id": "5f0c7a4e-0000-4000-8000-000000000500"}}], "data": null})
                .to_string(),
        ),
        502..=504 => {
            let reason = status.canonical_reason().unwrap_or("Error");
            (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
                format!(
                    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                ),
            )
                .into_response()
        }
        _ => (status, status.canonical_reason().unwrap_or("Error").to_owned()).into_response(),
    }
}

/// Walks a selection set for fragment type conditions and introspection fields.
fn scan(set: &Positioned<SelectionSet>, frags: &mut Fragments, introspection: &mut bool) {
    for item in &set.node.items {
        match &item.node {
            Selection::Field(f) => {
                if f.node.name.node.starts_with("__schema") || f.node.name.node == "__type" {
                    *introspection = true;
                }
                scan(&f.node.selection_set, frags, introspection);
            }
            Selection::InlineFragment(i) => {
                if let Some(tc) = &i.node.type_condition {
                    frags.see(&tc.node.on.node);
                }
                scan(&i.node.selection_set, frags, introspection);
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// What the sandbox reads from a query document before executing it.
struct DocInfo {
    operation_name: Option<String>,
    mutation: bool,
    fragments: Fragments,
}

fn inspect(doc: &ExecutableDocument, operation_name: Option<&str>) -> DocInfo {
    let mut frags = Fragments::default();
    let mut introspection = false;
    for f in doc.fragments.values() {
        frags.see(&f.node.type_condition.node.on.node);
        scan(&f.node.selection_set, &mut frags, &mut introspection);
    }
    let (name, op) = match &doc.operations {
        DocumentOperations::Single(op) => (operation_name.map(str::to_owned), Some(op)),
        DocumentOperations::Multiple(map) => match operation_name {
            Some(n) => (Some(n.to_owned()), map.get(n)),
            None => map
                .iter()
                .next()
                .map(|(n, op)| (Some(n.to_string()), Some(op)))
                .unwrap_or((None, None)),
        },
    };
    if let DocumentOperations::Multiple(map) = &doc.operations {
        for op in map.values() {
            scan(&op.node.selection_set, &mut frags, &mut introspection);
        }
    } else if let Some(op) = op {
        scan(&op.node.selection_set, &mut frags, &mut introspection);
    }
    DocInfo {
        operation_name: name,
        mutation: op.is_some_and(|o| o.node.ty == OperationType::Mutation),
        fragments: if introspection {
            Fragments::all()
        } else {
            frags
        },
    }
}

/// Takes the first queued fault matching this operation, if any.
fn take_fault(shared: &Shared, operation: Option<&str>) -> Option<Fault> {
    let mut faults = lock(&shared.faults);
    let idx = faults.iter().position(|r| {
        r.remaining > 0 && r.operation.as_deref().is_none_or(|o| Some(o) == operation)
    })?;
    let rule = faults.get_mut(idx)?;
    rule.remaining -= 1;
    let fault = rule.fault.clone();
    if rule.remaining == 0 {
        faults.remove(idx);
    }
    Some(fault)
}

/// Counts the request in its fixed one-minute window; returns the window's end when over.
fn rate_limited(shared: &Shared, key: &str, now: i64) -> Option<i64> {
    let limit = shared.options.rate_limit_per_minute?;
    let window = now.div_euclid(60);
    let mut rate = lock(&shared.rate);
    let entry = rate.entry(key.to_owned()).or_insert((window, 0));
    if entry.0 != window {
        *entry = (window, 0);
    }
    entry.1 = entry.1.saturating_add(1);
    (entry.1 > limit).then_some((window + 1) * 60)
}

/// Nulls `path` in `data` (or `data` itself) and adds the error.
fn inject_error(body: &mut Value, code: &str, message: &str, path: &[String]) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    if path.is_empty() {
        obj.insert("data".into(), Value::Null);
    } else {
        let mut cur = obj.get_mut("data");
        for key in &path[..path.len() - 1] {
            cur = cur.and_then(|v| v.get_mut(key.as_str()));
        }
        if let Some(Value::Object(parent)) = cur
            && let Some(last) = path.last()
        {
            parent.insert(last.clone(), Value::Null);
        }
    }
    let error = json!({"message": message, "path": path, "extensions": {"code": code}});
    match obj.get_mut("errors") {
        Some(Value::Array(errors)) => errors.push(error),
        _ => {
            obj.insert("errors".into(), json!([error]));
        }
    }
}

fn cut_body(full: String) -> Response {
    let bytes = Bytes::from(full);
    let len = bytes.len();
    let half = bytes.slice(..len / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: body cut",
        )),
    ];
    let mut r = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    r
}

async fn graphql(
    State(state): State<Arc<AppState>>,
    kill: Option<Extension<ConnKill>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let shared = &state.shared;
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let query = parsed
        .as_ref()
        .and_then(|v| v.get("query"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let asked_name = parsed
        .as_ref()
        .and_then(|v| v.get("operationName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let raw_variables = parsed
        .as_ref()
        .and_then(|v| v.get("variables"))
        .cloned()
        .unwrap_or(Value::Null);
    let doc = query.as_deref().map(async_graphql::parser::parse_query);
    let info = match &doc {
        Some(Ok(doc)) => inspect(doc, asked_name.as_deref()),
        _ => DocInfo {
            operation_name: asked_name.clone(),
            mutation: false,
            fragments: Fragments::default(),
        },
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = auth.as_deref().and_then(bearer);
    let token_rt = token
        .as_deref()
        .and_then(|t| lock(&shared.store).tokens.get(t).cloned());
    let token_label = match (&token, &token_rt) {
        (_, Some(t)) => t.label.clone(),
        (Some(t), None) => hashed(t),
        (None, None) => "none".to_owned(),
    };
    let fault = take_fault(shared, info.operation_name.as_deref());
    let log = |status: u16, fault: Option<Fault>| {
        lock(&shared.requests).push(RequestRecord {
            at: now,
            operation_name: info.operation_name.clone(),
            mutation: info.mutation,
            status,
            variables: raw_variables.clone(),
            token: token_label.clone(),
            fault,
        });
    };

    let mut late_fault = None;
    match fault {
        Some(
            f @ Fault::Http429 {
                reset_secs,
                retry_after,
            },
        ) => {
            log(429, Some(f));
            let reset = now.timestamp() + i64::try_from(reset_secs).unwrap_or(i64::MAX / 2);
            return too_many(reset, retry_after);
        }
        Some(f @ Fault::Status(code)) => {
            log(code, Some(f));
            return status_fault(code);
        }
        Some(f @ Fault::MalformedJson) => {
            log(200, Some(f));
            return json_response(
                StatusCode::OK,
                "{\"data\":{\"demarche\":{\"number\":1001,\"dossiers\":{\"nodes\":[{\"number\":<html>".into(),
            );
        }
        Some(f @ Fault::DropConnection) => {
            log(0, Some(f));
            if let Some(Extension(ConnKill(k))) = kill {
                k.notify_one();
                std::future::pending::<()>().await;
            }
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            late_fault = Some(Fault::Delay(d));
        }
        Some(f @ (Fault::CutBody | Fault::GraphQlError { .. })) => late_fault = Some(f),
        None => {}
    }

    if let Some(key) = &auth
        && let Some(reset) = rate_limited(shared, key, now.timestamp())
    {
        log(429, late_fault);
        return too_many(reset, None);
    }

    let caller = match token_rt {
        None => {
            log(403, late_fault);
            return controller_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Without a token, only persisted queries are allowed",
            );
        }
        Some(t) if t.expired => {
            log(401, late_fault);
            return controller_error(StatusCode::UNAUTHORIZED, "unauthorized", "Token expired");
        }
        Some(t) => Caller {
            write: t.write,
            demarches: t.demarches,
        },
    };

    let (Some(query), Some(Value::Object(_))) = (query, &parsed) else {
        log(400, late_fault);
        return controller_error(StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
    };
    let variables = match &raw_variables {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => raw_variables.clone(),
        Value::String(s) if s.trim().is_empty() => Value::Object(Default::default()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                log(400, late_fault);
                return controller_error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "Unexpected parameter",
                );
            }
            Err(e) => {
                log(400, late_fault);
                return controller_error(
                    StatusCode::BAD_REQUEST,
                    "graphql_parse_failed",
                    &e.to_string(),
                );
            }
        },
        _ => {
            log(400, late_fault);
            return controller_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Unexpected parameter",
            );
        }
    };
    if let Some(Err(e)) = &doc {
        log(400, late_fault);
        return controller_error(
            StatusCode::BAD_REQUEST,
            "graphql_parse_failed",
            &e.to_string(),
        );
    }

    let mut request = async_graphql::Request::new(query)
        .variables(Variables::from_json(variables))
        .data(caller)
        .data(info.fragments);
    if let Some(name) = &asked_name {
        request = request.operation_name(name.clone());
    }
    let response = state.schema.execute(request).await;
    let mut body = serde_json::to_value(&response).unwrap_or(Value::Null);
    if let Some(Fault::GraphQlError {
        code,
        message,
        path,
    }) = &late_fault
    {
        inject_error(&mut body, code, message, path);
    }
    let text = body.to_string();
    log(200, late_fault.clone());
    if late_fault == Some(Fault::CutBody) {
        return cut_body(text);
    }
    json_response(StatusCode::OK, text)
}
