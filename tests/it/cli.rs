//! The real `essbot` binary, as a user or ops runs it: exit codes, stdout, stderr.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use ds_sandbox::DEMO_TOKEN;

use crate::helpers::{demo_config_text, demo_sandbox};

fn essbot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_essbot"));
    // A clean environment: no token or override from the developer's shell leaks in.
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info");
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The demo configuration pointed at `endpoint` and a database in `dir`, written to a file.
fn config_file(dir: &std::path::Path, endpoint: &str) -> std::path::PathBuf {
    let path = dir.join("essbot.toml");
    std::fs::write(&path, demo_config_text(dir, endpoint)).unwrap();
    path
}

#[test]
fn demo_prints_the_verdicts_of_the_demo_dossiers() {
    let out = essbot().arg("demo").output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Cycle 1 : réussi"), "{stdout}");
    let row = |n: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("no row for dossier {n}:\n{stdout}"))
            .to_owned()
    };
    // Dossier 1 is the compliant lettre d'intention of the demo data set.
    let one = row("1");
    assert!(
        one.contains("CONFORME") && !one.contains("NON CONFORME"),
        "{one}"
    );
    assert!(stdout.contains("NON CONFORME"), "{stdout}");
    assert!(
        stdout.contains("Pré-contrôle essbot : NON CONFORME"),
        "{stdout}"
    );
    // Tables keep their columns: long cells wrap instead of making 400-column lines, and the
    // continuation of a wrapped cell starts where the cell does.
    let widest = stdout.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 160, "a {widest}-column line:\n{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("Dossier "))
        .expect("the verdicts' header");
    let column = header[..header.find("Points principaux").unwrap()]
        .chars()
        .count();
    let mut wrapped = 0;
    for line in stdout.lines().skip_while(|l| !l.starts_with("Dossier ")) {
        if line.is_empty() {
            break;
        }
        if line.starts_with(' ') {
            wrapped += 1;
            assert_eq!(line.len() - line.trim_start().len(), column, "{line}");
        }
    }
    assert!(wrapped > 0, "no cell wrapped:\n{stdout}");
    assert!(!stdout.contains("(s)"), "{stdout}");
}

#[test]
fn config_check_accepts_the_demo_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), "http://127.0.0.1:9/api/v2/graphql");
    let out = essbot()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configuration valid"));
}

#[test]
fn config_check_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[ds]
endpoint = "http://example.org/api/v2/graphql"
[schedule]
cron = "*/15 * * * *"
[database]
url = "sqlite://x.db"
[[demarches]]
number = 1
kind = "lettre"
"#,
    )
    .unwrap();
    let out = essbot()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for key in ["ds.endpoint", "schedule.cron", "demarches[0].kind"] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
}

#[test]
fn sandbox_command_answers_a_real_ds_query() {
    let mut child = essbot()
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let token_line = lines.next().unwrap().unwrap();
    assert!(token_line.contains(DEMO_TOKEN), "{token_line}");

    let body: serde_json::Value = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(DEMO_TOKEN)
            .json(&serde_json::json!({
                "query": "query q($n: Int!) { demarche(number: $n) { number title dossiers(first: 1) { nodes { number state } } } }",
                "variables": { "n": 1001 },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(body["data"]["demarche"]["number"], 1001, "{body}");
    assert_eq!(
        body["data"]["demarche"]["dossiers"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{body}"
    );
}

fn run_with(args: &[&str], config: &std::path::Path, token: Option<&str>) -> Output {
    let mut c = essbot();
    c.args(args).arg("--config").arg(config);
    if let Some(t) = token {
        c.env("ESSBOT_DS_TOKEN", t);
    }
    c.output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_then_status_is_healthy_and_the_token_never_shows() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    let cfg = config.clone();
    let out =
        tokio::task::spawn_blocking(move || run_with(&["run", "--once"], &cfg, Some(DEMO_TOKEN)))
            .await
            .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(": réussi"), "{stdout}");
    assert!(!stdout.contains(DEMO_TOKEN) && !stderr.contains(DEMO_TOKEN));

    let cfg = config.clone();
    let status = tokio::task::spawn_blocking(move || run_with(&["status"], &cfg, None))
        .await
        .unwrap();
    let said = text(&status.stdout);
    assert!(status.status.success(), "{said}");
    assert!(said.contains("1001 (lettre_intention)"));
    // What the time after the last sync measures, in words; no "(s)" plurals.
    assert!(
        said.contains("dernière synchronisation réussie : le "),
        "{said}"
    );
    assert!(said.contains(" (il y a "), "{said}");
    assert!(
        !said.contains("retard :") && !said.contains("(s)"),
        "{said}"
    );

    // The same, as JSON a script reads back.
    let json = run_blocking(&["status", "--json"], &config, None).await;
    assert!(json.status.success(), "{}", text(&json.stderr));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["last_cycle"]["outcome"], "ok", "{v}");
    assert!(v["last_success"].as_str().is_some(), "{v}");
    let numbers: Vec<i64> = v["demarches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1001, 1002]);
    assert!(
        v["demarches"][0]["seconds_since_last_sync"]
            .as_i64()
            .is_some(),
        "{v}"
    );
    assert_eq!(v["writes_pending"], 0, "{v}");
}

/// Runs the binary off the async runtime (the sandbox lives on it).
async fn run_blocking(
    args: &'static [&'static str],
    config: &std::path::Path,
    token: Option<&'static str>,
) -> Output {
    let cfg = config.to_owned();
    tokio::task::spawn_blocking(move || run_with(args, &cfg, token))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_said_expired_and_exits_2_in_every_command() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    const EXPIRED: Option<&str> = Some("essbot-demo-expired");
    for args in [
        &["run", "--once"][..],
        &["config", "check", "--remote"],
        &["demarche", "describe", "1001"],
        &["check", "1"],
    ] {
        let out = run_blocking(args, &config, EXPIRED).await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}\n{stderr}");
        let said = if args[0] == "check" {
            // `check` prints the staff's report: its errors are in French.
            "jeton expiré"
        } else {
            "the DS token has expired (HTTP 401)"
        };
        assert_eq!(stderr.matches(said).count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("unreachable"), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("essbot-demo-expired"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_exits_2_saying_so_once() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    for args in [
        &["run", "--once"][..],
        &["run"],
        &["config", "check", "--remote"],
        &["demarche", "describe", "1001"],
        &["check", "1"],
    ] {
        let out = run_blocking(args, &config, None).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("no DS token configured").count(),
            1,
            "{args:?}: {stderr}"
        );
    }
    // `config check` alone does not need DS: it says the token is missing and passes.
    let out = run_blocking(&["config", "check"], &config, None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no DS token configured"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_instructeur_id_fails_config_check_remote_naming_each_demarche() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    // Instructeur-2 of the demo data set is in no groupe instructeur.
    let path = dir.path().join("essbot.toml");
    std::fs::write(
        &path,
        demo_config_text(dir.path(), &sandbox.url())
            .replace("SW5zdHJ1Y3RldXItMQ==", "SW5zdHJ1Y3RldXItMg=="),
    )
    .unwrap();
    let out = run_blocking(&["config", "check", "--remote"], &path, Some(DEMO_TOKEN)).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for demarche in ["1001", "1002"] {
        assert!(
            stderr.contains(&format!(
                "instructeur SW5zdHJ1Y3RldXItMg== is in no groupe instructeur of démarche {demarche}"
            )),
            "{stderr}"
        );
    }
    // The instructeurs it could have named instead.
    assert!(stderr.contains("SW5zdHJ1Y3RldXItMQ=="), "{stderr}");
    // The right one passes.
    let good = config_file(dir.path(), &sandbox.url());
    let out = run_blocking(&["config", "check", "--remote"], &good, Some(DEMO_TOKEN)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn config_check_reports_four_mistakes_in_the_file_and_one_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("essbot.toml");
    let toml = demo_config_text(dir.path(), "http://127.0.0.1:9/api/v2/graphql")
        .replace("page_size = 100", "page_size = \"cent\"\npage_siz = 3")
        .replace("timezone = \"Europe/Paris\"", "timezon = \"Europe/Paris\"")
        + "\n[http]\nlisten = 9187\n";
    std::fs::write(&path, &toml).unwrap();
    let line = |needle: &str| toml.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let out = essbot()
        .args(["config", "check", "--config"])
        .arg(&path)
        // And one from the environment.
        .env("ESSBOT__ALERTS__LEAD_DAY", "30")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("5 configuration problems"), "{stderr}");
    let file = path.display().to_string();
    for (key, origin) in [
        ("ds.page_size", format!("{file}:{}", line("page_size"))),
        ("ds.page_siz", format!("{file}:{}", line("page_siz ="))),
        ("schedule.timezon", format!("{file}:{}", line("timezon"))),
        ("http.listen", format!("{file}:{}", line("listen"))),
        (
            "alerts.lead_day",
            "environment variable ESSBOT__ALERTS__LEAD_DAY".to_owned(),
        ),
    ] {
        assert!(
            stderr.contains(&format!("{key} ({origin}): ")),
            "{key} ({origin}) missing from:\n{stderr}"
        );
    }
}

#[test]
fn list_keys_are_read_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), "http://127.0.0.1:9/api/v2/graphql");
    for value in ["30", "30,7"] {
        let out = essbot()
            .args(["config", "check", "--config"])
            .arg(&path)
            .env("ESSBOT__ALERTS__LEAD_DAYS", value)
            .output()
            .unwrap();
        assert!(out.status.success(), "{value}: {}", text(&out.stderr));
    }
}

#[test]
fn a_metrics_listener_that_run_refuses_fails_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), "http://127.0.0.1:9/api/v2/graphql");
    let out = essbot()
        .args(["config", "check", "--config"])
        .arg(&path)
        .env("ESSBOT__HTTP__LISTEN", "0.0.0.0:9187")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not a loopback address"));
}

#[tokio::test(flavor = "multi_thread")]
async fn db_backup_writes_a_consistent_copy() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    let cfg = config.clone();
    let out =
        tokio::task::spawn_blocking(move || run_with(&["run", "--once"], &cfg, Some(DEMO_TOKEN)))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let backup = dir.path().join("backup.db");
    let (cfg, dest) = (config.clone(), backup.clone());
    let out = tokio::task::spawn_blocking(move || {
        run_with(&["db", "backup", dest.to_str().unwrap()], &cfg, None)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Full of applicants' data: readable by its owner only, whatever the umask.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let copy = essbot::store::Store::open_file(&backup).await.unwrap();
    assert_eq!(
        essbot::precheck::stored_checks(&copy).await.unwrap().len(),
        32
    );
    // Never overwrite an existing file.
    let (cfg, dest) = (config.clone(), backup.clone());
    let again = tokio::task::spawn_blocking(move || {
        run_with(&["db", "backup", dest.to_str().unwrap()], &cfg, None)
    })
    .await
    .unwrap();
    assert_eq!(again.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn milestones_record_takes_french_dates_and_refuses_implausible_payments() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    let out = run_blocking(&["run", "--once"], &config, Some(DEMO_TOKEN)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = |extra: &'static [&'static str]| {
        let cfg = config.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut args = vec!["milestones", "record", "1"];
                args.extend_from_slice(extra);
                args.extend_from_slice(&["--reason", "virement CPAM", "--author", "agent"]);
                let mut c = essbot();
                c.args(&args).arg("--config").arg(&cfg);
                c.output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    // Project 1's AMO-1 is due: 40 000,00 €.
    let absurd = record(&[
        "versement",
        "--milestone",
        "AMO-1",
        "--amount",
        "400000000",
        "--date",
        "01/11/2026",
    ])
    .await;
    assert_eq!(absurd.status.code(), Some(2));
    assert!(
        text(&absurd.stderr).contains(
            "montant refusé : 400 000 000,00 € dépasse le montant dû pour AMO-1 (40 000,00 €)"
        ),
        "{}",
        text(&absurd.stderr)
    );
    let future = record(&[
        "versement",
        "--milestone",
        "AMO-1",
        "--amount",
        "40000",
        "--date",
        "01/12/2030",
    ])
    .await;
    assert_eq!(future.status.code(), Some(2));
    assert!(
        text(&future.stderr).contains("dans le futur"),
        "{}",
        text(&future.stderr)
    );

    // A partial payment, dated the French way, is recorded and shown as partial.
    let partial = record(&[
        "versement",
        "--milestone",
        "AMO-1",
        "--amount",
        "30 000",
        "--date",
        "02/11/2026",
    ])
    .await;
    let said = text(&partial.stdout);
    assert!(partial.status.success(), "{said}{}", text(&partial.stderr));
    assert!(
        said.contains("versement AMO-1 de 30 000,00 € (date d'effet 02/11/2026"),
        "{said}"
    );
    assert!(said.contains("versement partiel"), "{said}");
    let payments = run_blocking(&["payments", "--format", "json"], &config, None).await;
    let json: serde_json::Value = serde_json::from_slice(&payments.stdout).unwrap();
    let amo1 = json
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["payments"].as_array().cloned().unwrap_or_default())
        .find(|p| p["milestone"] == "AMO-1" && p["paid_cents"] == 3_000_000)
        .unwrap_or_else(|| panic!("{json}"));
    assert_ne!(amo1["state"], "fait", "{amo1}");

    // A withdrawal is confirmed in words, not in Rust.
    let withdrawn = record(&[
        "retrait",
        "--of",
        "versement",
        "--milestone",
        "AMO-1",
        "--date",
        "2026-11-02",
    ])
    .await;
    let said = text(&withdrawn.stdout);
    assert!(withdrawn.status.success(), "{}", text(&withdrawn.stderr));
    assert!(
        said.contains("retrait de l'événement « versement AMO-1 »"),
        "{said}"
    );
    assert!(!said.contains("Payment {"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_works_on_the_packaged_configuration_and_lists_the_instructeurs_to_pick_from() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("essbot.toml");
    std::fs::write(
        &path,
        include_str!("../../deploy/essbot.toml")
            .replace(
                "https://demarche.numerique.gouv.fr/api/v2/graphql",
                &sandbox.url(),
            )
            .replace("token_file = \"/etc/essbot/ds-token\"\n", ""),
    )
    .unwrap();
    // Its placeholders fail `config check`...
    let out = run_blocking(&["config", "check"], &path, None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("CHANGE-ME"));
    // ...but `describe`, which is how they get filled in, works.
    let out = run_blocking(&["demarche", "describe", "1001"], &path, Some(DEMO_TOKEN)).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("[[demarches]]"), "{stdout}");
    assert!(
        stdout.contains(
            "instructeur_id = \"SW5zdHJ1Y3RldXItMQ==\"   # instructeur.ess@ars-demo.example"
        ),
        "{stdout}"
    );
    // Instructeur-2 is in no groupe: not offered.
    assert!(!stdout.contains("SW5zdHJ1Y3RldXItMg=="), "{stdout}");
}

/// Every command's help, long and short, as `essbot … --help` prints it.
fn every_help() -> Vec<(String, String)> {
    fn walk(cmd: &mut clap::Command, path: String, out: &mut Vec<(String, String)>) {
        out.push((path.clone(), cmd.render_long_help().to_string()));
        out.push((path.clone(), cmd.render_help().to_string()));
        for sub in cmd.get_subcommands_mut() {
            let name = format!("{path} {}", sub.get_name());
            walk(sub, name, out);
        }
    }
    let mut cmd = essbot::cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&mut cmd, "essbot".into(), &mut out);
    out
}

#[test]
fn no_help_text_shows_a_code_comment() {
    essbot::cli::command().debug_assert();
    let helps = every_help();
    assert!(helps.len() > 30, "{}", helps.len());
    for (path, help) in &helps {
        for marker in [
            "Boxed",
            "clippy",
            "TODO",
            "FIXME",
            "Self::",
            "`Option",
            "Rust ",
            "[env: USER=",
        ] {
            assert!(
                !help.contains(marker),
                "`{path} --help` shows {marker:?}:\n{help}"
            );
        }
    }
}

#[test]
fn completions_and_manual_pages_come_from_the_command_line() {
    for shell in ["bash", "zsh", "fish"] {
        let out = essbot().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        for sub in ["milestones", "record", "describe", "completions"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let bash = essbot().args(["completions", "bash"]).output().unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(&bash.stdout)?;
            c.wait()
        })
        .unwrap();
    assert!(syntax.success(), "the bash completion does not parse");

    let dir = tempfile::tempdir().unwrap();
    let out = essbot()
        .args(["manpage", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "essbot.1",
        "essbot-run.1",
        "essbot-milestones-record.1",
        "essbot-status.1",
    ] {
        let roff = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(roff.contains(".TH essbot"), "{page}");
        // The plain version: the pages do not change with every commit.
        assert!(
            roff.contains(&format!("\"essbot {}\"", env!("CARGO_PKG_VERSION")))
                || page != "essbot.1",
            "{page}: {roff}"
        );
    }
    // What the .deb ships is what deploy/build-deb generates.
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/build-deb")).unwrap();
    for (built, shipped) in [
        ("$assets/man", "usr/share/man/man1/"),
        (
            "$assets/completions/essbot.bash",
            "usr/share/bash-completion/completions/essbot",
        ),
        (
            "$assets/completions/_essbot",
            "usr/share/zsh/vendor-completions/_essbot",
        ),
        (
            "$assets/completions/essbot.fish",
            "usr/share/fish/vendor_completions.d/essbot.fish",
        ),
    ] {
        assert!(
            script.contains(built),
            "deploy/build-deb does not build {built}"
        );
        assert!(
            manifest.contains(shipped),
            "the .deb does not ship {shipped}"
        );
    }
}

/// The read commands never create nor migrate a database: on a missing one they say so and
/// leave nothing behind; on one another user owns (the service's, read by root or an operator)
/// they read it without writing a byte; on an outdated or damaged one they say what to do.
#[tokio::test(flavor = "multi_thread")]
async fn read_commands_never_create_a_database_and_read_one_they_cannot_write() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    let db = dir.path().join("essbot.db");
    for args in [
        &["status"][..],
        &["milestones"][..],
        &["payments"][..],
        &["db", "backup", "/nonexistent/x.db"][..],
    ] {
        let out = run_blocking(args, &config, None).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no database at {}", db.display())),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("essbot db migrate"), "{stderr}");
        assert!(!db.exists(), "{args:?} created the database");
        assert!(!dir.path().join("essbot.db-wal").exists());
    }

    // A cycle creates it; then the folder and the file belong to someone else (the service's
    // user), and nobody has it open.
    let out = run_blocking(&["run", "--once"], &config, Some(DEMO_TOKEN)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for args in [&["status"][..], &["milestones"][..], &["payments"][..]] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_essbot"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} as another user: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let after: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(before, after, "a read command wrote beside the database");

    // One migration short: the read commands do not migrate, they say how.
    let store = essbot::store::Store::open_file(&db).await.unwrap();
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let out = run_blocking(&["status"], &config, None).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not applied") && stderr.contains("essbot db migrate"),
        "{stderr}"
    );

    // A damaged file: named, with the way back.
    std::fs::write(
        &db,
        b"this is not a database at all, just some bytes of text",
    )
    .unwrap();
    let _ = std::fs::remove_file(dir.path().join("essbot.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("essbot.db-shm"));
    let out = run_blocking(&["status"], &config, None).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a SQLite database"), "{stderr}");
    assert!(stderr.contains("essbot db backup"), "{stderr}");
    assert_eq!(
        stderr.matches("not a SQLite database").count(),
        1,
        "said once: {stderr}"
    );
}

/// A daemon that cannot write its database's folder says it is a permission matter and who
/// should run it, never "another essbot may be running".
#[tokio::test(flavor = "multi_thread")]
async fn run_without_the_right_to_write_its_folder_says_so() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sandbox.url());
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_essbot"))
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ESSBOT_DS_TOKEN", DEMO_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ermission denied"), "{stderr}");
    assert!(stderr.contains("essbot user"), "{stderr}");
    assert!(!stderr.contains("another essbot"), "{stderr}");
}
