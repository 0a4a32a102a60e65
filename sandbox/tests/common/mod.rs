//! Helpers shared by the HTTP tests: start a sandbox, post GraphQL over real HTTP.

#![allow(dead_code)]

use std::time::Duration;

use ds_sandbox::{DEMO_TOKEN, Dataset, Sandbox, SandboxOptions};
use serde_json::{Value, json};

pub async fn start(dataset: Dataset) -> Sandbox {
    start_with(dataset, SandboxOptions::default()).await
}

pub async fn start_with(dataset: Dataset, options: SandboxOptions) -> Sandbox {
    Sandbox::start(dataset, options, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox starts")
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub async fn post_raw(
    sb: &Sandbox,
    authorization: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Result<Answer, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut req = client
        .post(sb.url())
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    Ok(Answer {
        status,
        headers,
        text,
    })
}

pub async fn post_as(sb: &Sandbox, token: Option<&str>, query: &str, variables: Value) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let body = json!({"query": query, "variables": variables}).to_string();
    post_raw(sb, auth.as_deref(), body)
        .await
        .expect("request succeeds")
}

/// Posts with the demo token and returns the JSON body of a 200 answer.
pub async fn gql(sb: &Sandbox, query: &str, variables: Value) -> Value {
    let a = post_as(sb, Some(DEMO_TOKEN), query, variables).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

pub fn gid(class: &str, id: impl std::fmt::Display) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{class}-{id}"))
}
