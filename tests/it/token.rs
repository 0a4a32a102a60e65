//! The DS token never shows: not in logs (JSON, at trace level), errors, panics, stdout or Debug
//! output, whether the cycles succeed or fail (401, 403, 500, malformed answers).

use std::collections::BTreeMap;
use std::process::Command;

use base64::Engine as _;
use ds_sandbox::{Dataset, Fault, Sandbox, SandboxOptions};
use essbot::config::{self, Env, Source};
use essbot::ds::DsClient;

/// Distinctive enough that any occurrence in the output is a leak.
const TOKEN: &str = "tok-Zq8vK3pW-essbot-secret-7d1f";
/// A token the sandbox does not know (403), just as distinctive.
const UNKNOWN_TOKEN: &str = "tok-unknown-Xr4mN9bQ-secret-c0de";

fn essbot(config: &std::path::Path, token: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_essbot"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .env(config::TOKEN_ENV, token)
        // Loopback: no pacing, no retry delays, so the failing cycles end quickly.
        .env("ESSBOT__DS__MAX_REQUESTS_PER_SECOND", "6")
        .env("ESSBOT__DS__MAX_RETRIES", "0")
        .args(["--log-format", "json", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("run essbot");
    format!(
        "$ essbot {args:?} → {:?}\n{}\n{}\n",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The token, its base64 forms and the Authorization header value: none may appear.
fn forbidden(token: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        token.to_owned(),
        b64.encode(token),
        b64.encode(format!("Bearer {token}")),
        url.encode(token),
        // A fragment long enough to be telling, in case the token is cut or wrapped.
        token[4..20].to_owned(),
    ]
}

#[track_caller]
fn assert_no_token(haystack: &str, token: &str) {
    for needle in forbidden(token) {
        assert!(
            !haystack.contains(&needle),
            "{needle:?} found in output:\n{}",
            haystack.chars().take(4000).collect::<String>()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_cycles_through_the_binary_never_print_the_token() {
    let sandbox = Sandbox::start(
        Dataset::demo(),
        SandboxOptions {
            rate_limit_per_minute: None,
            extra_tokens: vec![TOKEN.to_owned()],
        },
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("temporary folder");
    let body = config::DEMO_CONFIG
        .replace("http://127.0.0.1:8080/api/v2/graphql", &sandbox.url())
        .replace(
            "sqlite://essbot-demo.db",
            &format!("sqlite://{}", dir.path().join("essbot.db").display()),
        );
    let cfg = dir.path().join("essbot.toml");
    std::fs::write(&cfg, body).expect("config");

    let mut all = String::new();
    let run = |token: &'static str, args: &'static [&'static str]| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || essbot(&cfg, token, args))
    };
    // A good cycle, a check and a status.
    all += &run(TOKEN, &["run", "--once"]).await.expect("run");
    assert!(all.contains("→ Some(0)"), "{all}");
    all += &run(TOKEN, &["check", "12"]).await.expect("check");
    all += &run(TOKEN, &["check", "12", "--json"]).await.expect("check");
    all += &run(TOKEN, &["status"]).await.expect("status");
    // Failing ones: 401 (expired), 500s, malformed bodies, an unknown token (403).
    for fault in [
        Fault::Status(401),
        Fault::Status(500),
        Fault::MalformedJson,
        Fault::CutBody,
    ] {
        sandbox.clear_faults();
        sandbox.push_fault(fault.clone(), 1000, None);
        let out = run(TOKEN, &["run", "--once"]).await.expect("run");
        assert!(!out.contains("→ Some(0)"), "{fault:?} should fail: {out}");
        all += &out;
        all += &run(TOKEN, &["check", "1"]).await.expect("check");
        all += &run(TOKEN, &["status"]).await.expect("status");
    }
    sandbox.clear_faults();
    all += &run(UNKNOWN_TOKEN, &["run", "--once"]).await.expect("run");
    all += &run(UNKNOWN_TOKEN, &["check", "1"]).await.expect("check");
    assert!(all.contains("\"level\":\"TRACE\"") || all.contains("\"level\":\"DEBUG\""));
    assert_no_token(&all, TOKEN);
    assert_no_token(&all, UNKNOWN_TOKEN);
    // Nor does the sandbox's request log (it records labels).
    let log = format!("{:?}", sandbox.requests());
    assert_no_token(&log, TOKEN);
}

#[tokio::test]
async fn debug_of_settings_client_and_errors_hides_the_token() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let env = Env {
        vars: BTreeMap::from([
            (config::TOKEN_ENV.to_owned(), TOKEN.to_owned()),
            (
                "ESSBOT__DS__ENDPOINT".to_owned(),
                format!("http://127.0.0.1:{port}/api/v2/graphql"),
            ),
            ("ESSBOT__DS__MAX_RETRIES".to_owned(), "0".to_owned()),
            (
                "ESSBOT__DATABASE__URL".to_owned(),
                "sqlite://essbot-token-test.db".to_owned(),
            ),
        ]),
    };
    let settings =
        config::load(&Source::Text(config::DEMO_CONFIG.into()), &env).expect("demo config");
    assert_no_token(&format!("{settings:?} {settings:#?}"), TOKEN);
    assert_no_token(&format!("{:?}", settings.ds), TOKEN);
    let client = DsClient::new(&settings.ds).expect("client");
    assert_no_token(&format!("{client:?}"), TOKEN);
    // A connection error.
    let err = client.dossier(1).await.expect_err("nothing listens there");
    assert_no_token(&format!("{err:?} {err}"), TOKEN);
    // A configuration error while the token is set.
    let bad = Env {
        vars: BTreeMap::from([
            (config::TOKEN_ENV.to_owned(), TOKEN.to_owned()),
            (
                "ESSBOT__DS__ENDPOINT".to_owned(),
                "http://example.org/x".to_owned(),
            ),
        ]),
    };
    let err = config::load(&Source::Text(config::DEMO_CONFIG.into()), &bad)
        .expect_err("http to a non-loopback host is refused");
    let shown = format!("{err:?} {err}");
    assert_no_token(&shown, TOKEN);
    assert!(shown.contains("https"), "{shown}");
}
