//! Configuration: a TOML file, then `ESSBOT__SECTION__KEY` environment overrides, validated into
//! typed [`Settings`].
//!
//! Validation gathers every problem with the path of its key instead of stopping at the first,
//! so that `essbot config check` tells an operator everything wrong with a file in one run:
//! the structural mistakes (unknown keys, values of the wrong type; see `layers`) and the
//! semantic ones, each with where its key was written (the file and line, or the environment
//! variable). The DS token is never part of the file: it comes from `ESSBOT_DS_TOKEN`,
//! `ds.token_file` or `$CREDENTIALS_DIRECTORY/ds-token` (systemd `LoadCredential=`), and is held
//! in a [`SecretString`] that cannot be printed.
//!
//! The layers are read by hand (the `toml` crate and `serde_path_to_error`) rather than with
//! the `config` or `figment` crates: both stop at the first error serde meets and know nothing
//! of list-valued environment variables, and the origin of each key is what operators need.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;

mod layers;

/// The demo configuration embedded in the binary: the sandbox's démarches and their mapping.
/// `essbot demo` and the tests start from it; its endpoint is replaced by the sandbox's address.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// Environment variable holding the DS API token.
pub const TOKEN_ENV: &str = "ESSBOT_DS_TOKEN";

/// Every problem found in a configuration, each with the path of its key.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_problems(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// One configuration problem: the key's path (`demarches[0].fields.nb_adherents`), what is
/// wrong, and where the key was written (`/etc/essbot/essbot.toml:12`, `environment variable
/// ESSBOT__DS__PAGE_SIZE`) when it was written somewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub origin: Option<String>,
}

impl Problem {
    /// A problem about the key at `path`; its origin is filled in by [`load`].
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            origin: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{} ({origin}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = match problems.len() {
        1 => "1 configuration problem".to_owned(),
        n => format!("{n} configuration problems"),
    };
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

impl ConfigError {
    /// A configuration error of one problem.
    pub fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem::new(path, message)],
        }
    }
}

/// What the packaged configuration writes where the operator must put their own value
/// (`ds.instructeur_id`); `config check` refuses it until it is replaced. A démarche `number`
/// of 0 is its numeric counterpart.
pub const PLACEHOLDER: &str = "CHANGE-ME";

/// Validated settings: everything the daemon needs, typed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ds: DsSettings,
    pub schedule: ScheduleSettings,
    pub database: DatabaseSettings,
    pub demarches: Vec<DemarcheSettings>,
    pub reference: ReferenceSettings,
    pub rules: crate::rules::RulesConfig,
    pub milestones: crate::milestones::MilestonesConfig,
    pub alerts: AlertsSettings,
    pub http: HttpSettings,
    pub daemon: DaemonSettings,
}

/// How to reach DS.
#[derive(Clone)]
pub struct DsSettings {
    /// The GraphQL endpoint: https, or http on a loopback address (sandbox, tests).
    pub endpoint: reqwest::Url,
    /// `None` when no token source is configured or readable; commands that call DS refuse to
    /// start then, saying [`Self::token_problem`].
    pub token: Option<SecretString>,
    /// Why [`Self::token`] is `None`, for the operator.
    pub token_problem: Option<String>,
    /// The instructeur mutations act as (a `Profile` id).
    pub instructeur_id: String,
    pub page_size: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_requests_per_second: f64,
    /// Attempts after the first for retryable failures (5xx, timeouts, connection errors).
    pub max_retries: u32,
}

impl fmt::Debug for DsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsSettings")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("instructeur_id", &self.instructeur_id)
            .field("page_size", &self.page_size)
            .field("timeout", &self.timeout)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// When cycles run.
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    pub cron: cron::Schedule,
    /// The expression as written, for messages.
    pub cron_expr: String,
    pub timezone: Tz,
    /// How often a full reconciliation re-reads every dossier (catches what `updatedSince` misses).
    pub full_sync_every: Duration,
}

/// Where the store lives.
#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: String,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A database URL may carry a password (PostgreSQL): show only its scheme.
        let scheme = self.url.split(':').next().unwrap_or("");
        f.debug_struct("DatabaseSettings")
            .field("url", &format!("{scheme}:[REDACTED]"))
            .finish()
    }
}

pub use crate::rules::mapping::{ChampRef, FieldRef, MappingSpec};
pub use crate::rules::reference::ReferenceSettings;
pub use crate::rules::{DemarcheKind, MappingError, ResolvedMapping};

/// What essbot writes back to a démarche's dossiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Read-only: nothing is written to DS.
    Off,
    /// Print, per dossier, what would be written, as a diff from what is there.
    DryRun,
    /// Write annotations (and labels and messages when enabled).
    #[default]
    Annotations,
}

/// The names of the labels essbot keeps in step with the verdict, as the démarche spells them
/// (rules.md: « Pré-contrôle : conforme / à vérifier / à compléter / dérogation CPN »).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelNames {
    pub conforme: String,
    pub a_verifier: String,
    pub a_completer: String,
    pub derogation_cpn: String,
}

impl Default for LabelNames {
    fn default() -> Self {
        Self {
            conforme: "Pré-contrôle : conforme".into(),
            a_verifier: "Pré-contrôle : à vérifier".into(),
            a_completer: "Pré-contrôle : à compléter".into(),
            derogation_cpn: "Pré-contrôle : dérogation CPN".into(),
        }
    }
}

impl LabelNames {
    /// The label a verdict calls for.
    pub fn for_verdict(&self, verdict: crate::rules::Verdict) -> &str {
        use crate::rules::Verdict;
        match verdict {
            Verdict::Conforme => &self.conforme,
            Verdict::AVerifier => &self.a_verifier,
            Verdict::NonConforme => &self.a_completer,
            Verdict::DerogationCpn => &self.derogation_cpn,
        }
    }

    /// Every label essbot manages, in the order the diff lists them.
    pub fn all(&self) -> [&str; 4] {
        [
            &self.conforme,
            &self.a_verifier,
            &self.a_completer,
            &self.derogation_cpn,
        ]
    }
}

/// Write-back options of one démarche.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriteBackSettings {
    pub mode: WriteMode,
    pub labels: bool,
    pub message_usager: bool,
    /// The labels' names on this démarche.
    pub label_names: LabelNames,
}

impl Default for WriteBackSettings {
    fn default() -> Self {
        Self {
            mode: WriteMode::Annotations,
            labels: true,
            message_usager: false,
            label_names: LabelNames::default(),
        }
    }
}

/// One watched démarche and how its champs map onto the domain.
#[derive(Debug, Clone)]
pub struct DemarcheSettings {
    pub number: i64,
    pub kind: DemarcheKind,
    /// Domain fields, annotations written and follow-up annotations read → champs.
    pub mapping: MappingSpec,
    pub write_back: WriteBackSettings,
}

impl DemarcheSettings {
    /// What each optional field this démarche does not map means for the rules (empty when it
    /// maps every field).
    pub fn not_mapped(&self) -> Vec<String> {
        self.kind
            .fields()
            .filter(|f| !self.mapping.fields.contains_key(f.key))
            .map(|f| f.unmapped_effect())
            .collect()
    }

    /// The mapping checked against the démarche's descriptors.
    ///
    /// # Errors
    /// Every problem of the mapping.
    pub fn resolve(
        &self,
        descriptors: &crate::ds::model::DemarcheDescriptors,
    ) -> Result<ResolvedMapping, MappingError> {
        crate::rules::resolve(self.number, self.kind, &self.mapping, descriptors)
    }
}

impl Problem {
    /// A mapping's problems as `config check` lists them, under `demarches[index]`.
    pub fn from_mapping(index: usize, e: &MappingError) -> Vec<Problem> {
        e.problems
            .iter()
            .map(|p| {
                Problem::new(
                    format!("demarches[{index}].{}", p.key),
                    format!("{} (démarche {})", p.message, e.demarche),
                )
            })
            .collect()
    }
}

/// Alert channels and timing.
#[derive(Debug, Clone)]
pub struct AlertsSettings {
    pub lead_days: Vec<u32>,
    pub email: Option<EmailSettings>,
    pub webhook: Option<WebhookSettings>,
    /// Base URL of the DS instructeur interface, for links in alerts.
    pub dossier_url_base: String,
}

/// SMTP delivery of alerts.
#[derive(Clone)]
pub struct EmailSettings {
    pub smtp_url: String,
    pub from: String,
    pub to: Vec<String>,
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An SMTP URL may carry credentials.
        f.debug_struct("EmailSettings")
            .field("smtp_url", &"[REDACTED]")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// JSON webhook delivery of alerts.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: reqwest::Url,
}

/// The optional health and metrics listener.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    pub listen: Option<SocketAddr>,
}

/// Daemon behaviour.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// How long a stop request may take before essbot exits anyway.
    pub shutdown_deadline: Duration,
}

// ---------------------------------------------------------------------------------------------
// Raw layer: what serde reads from the file and the environment, before validation.

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawSettings {
    ds: Option<RawDs>,
    schedule: RawSchedule,
    database: Option<RawDatabase>,
    demarches: Option<Vec<RawDemarche>>,
    reference: RawReference,
    rules: crate::rules::RulesConfig,
    milestones: crate::milestones::MilestonesConfig,
    alerts: RawAlerts,
    http: RawHttp,
    daemon: RawDaemon,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDs {
    endpoint: Option<String>,
    token_file: Option<PathBuf>,
    instructeur_id: Option<String>,
    #[serde(default = "default_page_size")]
    page_size: u32,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_secs: u64,
    #[serde(default = "default_rps")]
    max_requests_per_second: f64,
    #[serde(default = "default_retries")]
    max_retries: u32,
}

fn default_page_size() -> u32 {
    100
}
fn default_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_rps() -> f64 {
    2.0
}
fn default_retries() -> u32 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSchedule {
    cron: String,
    timezone: String,
    full_sync_every_hours: u64,
}

impl Default for RawSchedule {
    fn default() -> Self {
        Self {
            cron: "0 */15 7-20 * * Mon-Fri".into(),
            timezone: "Europe/Paris".into(),
            full_sync_every_hours: 24,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDemarche {
    number: Option<i64>,
    kind: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, crate::rules::mapping::RawFieldRef>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    suivi: BTreeMap<String, String>,
    #[serde(default)]
    write_back: WriteBackSettings,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawReference {
    specialites: String,
    ess_existantes: String,
    demographie: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAlerts {
    lead_days: Vec<u32>,
    email: Option<RawEmail>,
    webhook: Option<RawWebhook>,
    dossier_url_base: String,
}

impl Default for RawAlerts {
    fn default() -> Self {
        Self {
            lead_days: vec![30, 7],
            email: None,
            webhook: None,
            dossier_url_base: "https://demarche.numerique.gouv.fr/procedures".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    #[serde(default)]
    smtp_url: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    url: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawHttp {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDaemon {
    shutdown_deadline_secs: u64,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            shutdown_deadline_secs: 10,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading.

/// Where a configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A TOML file on disk.
    File(PathBuf),
    /// TOML text (the embedded demo configuration, tests).
    Text(String),
}

/// The environment a configuration is read with: injected so that tests never touch the
/// process's own variables.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }
}

/// The default configuration paths, in the order interface.md gives them.
pub fn default_paths() -> [PathBuf; 2] {
    [
        PathBuf::from("config/essbot.toml"),
        PathBuf::from("/etc/essbot/essbot.toml"),
    ]
}

/// Picks the configuration file: the explicit path, else the first default that exists.
///
/// # Errors
/// When no file is named and none of the defaults exists.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    default_paths()
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| {
            ConfigError::one(
                "--config",
                "no configuration file: none given and neither config/essbot.toml nor /etc/essbot/essbot.toml exists",
            )
        })
}

/// Loads and validates a configuration, reporting every problem at once: the structural ones
/// (unknown keys, values of the wrong type) and the semantic ones (an invalid cron expression, a
/// required field not mapped), each with its key's path and where that key was written (the
/// file and line, or the environment variable).
///
/// # Errors
/// A [`ConfigError`] listing each problem.
pub fn load(source: &Source, env: &Env) -> Result<Settings, ConfigError> {
    let mut structural = Vec::new();
    let (tree, origins) =
        layers::read(source, env, &mut structural).map_err(|problems| ConfigError { problems })?;
    let raw: Option<RawSettings> = layers::deserialize(tree, &origins, &mut structural);
    let (settings, semantic) = match raw {
        Some(raw) => match validate(raw, env) {
            Ok(s) => (Some(s), Vec::new()),
            Err(e) => (None, e.problems),
        },
        None => (None, Vec::new()),
    };
    // A key reported as malformed is not reported again as missing once taken out.
    let overlaps = |a: &str, b: &str| {
        a == b
            || a.strip_prefix(b)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
            || b.strip_prefix(a)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
    };
    let mut problems = structural;
    for p in semantic {
        if !problems.iter().any(|s| overlaps(&s.path, &p.path)) {
            problems.push(p);
        }
    }
    for p in &mut problems {
        if p.origin.is_none() {
            p.origin = origins.of(&p.path);
        }
    }
    match settings {
        Some(s) if problems.is_empty() => Ok(s),
        _ => Err(ConfigError { problems }),
    }
}

/// Only the `[ds]` section of a configuration, for `essbot demarche describe`: describing a
/// démarche is how an operator fills in the rest, so the rest (placeholders, mappings) may
/// still be wrong. The instructeur placeholder is no problem here either.
///
/// # Errors
/// The problems of the `[ds]` section (and a file that cannot be read at all).
pub fn load_ds(source: &Source, env: &Env) -> Result<DsSettings, ConfigError> {
    let mut structural = Vec::new();
    let (tree, origins) =
        layers::read(source, env, &mut structural).map_err(|problems| ConfigError { problems })?;
    let raw: Option<RawSettings> = layers::deserialize(tree, &origins, &mut structural);
    let mut p = Collector(
        structural
            .into_iter()
            .filter(|pr| pr.path == "ds" || pr.path.starts_with("ds."))
            .collect(),
    );
    let ds = raw.and_then(|r| validate_ds(r.ds, env, &mut p));
    p.0.retain(|pr| pr.path != "ds.instructeur_id");
    for pr in &mut p.0 {
        if pr.origin.is_none() {
            pr.origin = origins.of(&pr.path);
        }
    }
    match ds {
        Some(ds) if p.0.is_empty() => Ok(ds),
        _ => Err(ConfigError { problems: p.0 }),
    }
}

/// True for `localhost`, 127.0.0.0/8 and `::1`: the only hosts plain http is allowed to.
pub fn is_loopback_host(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

struct Collector(Vec<Problem>);

impl Collector {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }
}

/// The `[ds]` section, validated; `None` after pushing its problems.
fn validate_ds(raw: Option<RawDs>, env: &Env, p: &mut Collector) -> Option<DsSettings> {
    match raw {
        None => {
            p.push("ds", "missing section [ds]");
            None
        }
        Some(d) => {
            let endpoint = match d.endpoint.as_deref() {
                None | Some("") => {
                    p.push("ds.endpoint", "missing");
                    None
                }
                Some(e) => match reqwest::Url::parse(e) {
                    Err(err) => {
                        p.push("ds.endpoint", format!("not a URL ({err})"));
                        None
                    }
                    Ok(u) if u.scheme() == "https" => Some(u),
                    Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => Some(u),
                    Ok(_) => {
                        p.push(
                            "ds.endpoint",
                            "must be https (plain http only to a loopback address: 127.0.0.0/8, ::1, localhost)",
                        );
                        None
                    }
                },
            };
            let (token, token_problem) = read_token(d.token_file.as_deref(), env, p);
            let instructeur_id = d.instructeur_id.unwrap_or_default();
            if instructeur_id.trim() == PLACEHOLDER {
                p.push(
                    "ds.instructeur_id",
                    format!(
                        "still the placeholder \"{PLACEHOLDER}\": put the id of the instructeur essbot acts as (`essbot demarche describe NUMBER` lists the instructeurs of the démarche's groupes)"
                    ),
                );
            }
            if !(1..=100).contains(&d.page_size) {
                p.push(
                    "ds.page_size",
                    "must be between 1 and 100 (DS serves at most 100 a page)",
                );
            }
            if d.timeout_secs == 0 {
                p.push("ds.timeout_secs", "must be at least 1");
            }
            if d.connect_timeout_secs == 0 {
                p.push("ds.connect_timeout_secs", "must be at least 1");
            }
            if !(d.max_requests_per_second > 0.0 && d.max_requests_per_second <= 6.0) {
                p.push(
                    "ds.max_requests_per_second",
                    "must be above 0 and at most 6 (DS allows 400 requests a minute per token)",
                );
            }
            endpoint.map(|endpoint| DsSettings {
                endpoint,
                token,
                instructeur_id,
                token_problem,
                page_size: d.page_size,
                timeout: Duration::from_secs(d.timeout_secs),
                connect_timeout: Duration::from_secs(d.connect_timeout_secs),
                max_requests_per_second: d.max_requests_per_second,
                max_retries: d.max_retries,
            })
        }
    }
}

fn validate(raw: RawSettings, env: &Env) -> Result<Settings, ConfigError> {
    let mut p = Collector(Vec::new());

    let ds = validate_ds(raw.ds, env, &mut p);

    // [schedule]
    let cron = match cron::Schedule::from_str(&raw.schedule.cron) {
        Ok(c) => Some(c),
        Err(e) => {
            p.push(
                "schedule.cron",
                format!(
                    "not a valid expression ({e}); the `cron` crate wants seconds first, e.g. \"0 */15 7-20 * * Mon-Fri\""
                ),
            );
            None
        }
    };
    let timezone = match raw.schedule.timezone.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            p.push(
                "schedule.timezone",
                format!(
                    "unknown time zone {:?} (e.g. Europe/Paris)",
                    raw.schedule.timezone
                ),
            );
            None
        }
    };
    if raw.schedule.full_sync_every_hours == 0 {
        p.push("schedule.full_sync_every_hours", "must be at least 1");
    }

    // [database]
    let database = match raw.database.and_then(|d| d.url) {
        None => {
            p.push("database.url", "missing");
            None
        }
        Some(url) => match crate::store::DatabaseUrl::parse(&url) {
            Ok(_) => Some(DatabaseSettings { url }),
            Err(crate::store::StoreError::Url { reason, .. }) => {
                p.push("database.url", reason);
                None
            }
            Err(e) => {
                p.push("database.url", e.to_string());
                None
            }
        },
    };

    // [[demarches]]
    let mut demarches = Vec::new();
    match raw.demarches {
        None => p.push("demarches", "no [[demarches]]: nothing to watch"),
        Some(list) if list.is_empty() => p.push("demarches", "no [[demarches]]: nothing to watch"),
        Some(list) => {
            let mut seen = std::collections::BTreeSet::new();
            for (i, d) in list.into_iter().enumerate() {
                if let Some(ok) = validate_demarche(i, d, &mut p) {
                    if !seen.insert(ok.number) {
                        p.push(
                            format!("demarches[{i}].number"),
                            format!("démarche {} is listed twice", ok.number),
                        );
                    }
                    demarches.push(ok);
                }
            }
        }
    }

    // [reference]
    let optional_path = |s: &str| (!s.trim().is_empty()).then(|| PathBuf::from(s.trim()));
    let reference = ReferenceSettings {
        specialites: optional_path(&raw.reference.specialites),
        ess_existantes: optional_path(&raw.reference.ess_existantes),
        demographie: optional_path(&raw.reference.demographie),
    };
    for (key, path) in [
        ("reference.specialites", reference.specialites.as_ref()),
        (
            "reference.ess_existantes",
            reference.ess_existantes.as_ref(),
        ),
        ("reference.demographie", reference.demographie.as_ref()),
    ] {
        if let Some(path) = path
            && !path.exists()
        {
            p.push(key, format!("file {} does not exist", path.display()));
        }
    }

    // [alerts]
    let email = raw.alerts.email.and_then(|e| {
        if e.smtp_url.trim().is_empty() {
            return None;
        }
        if !(e.smtp_url.starts_with("smtp://") || e.smtp_url.starts_with("smtps://")) {
            p.push(
                "alerts.email.smtp_url",
                "must start with smtp:// or smtps://",
            );
        }
        if !e.from.contains('@') {
            p.push("alerts.email.from", "not an e-mail address");
        }
        if e.to.is_empty() {
            p.push("alerts.email.to", "no recipient");
        }
        for (i, to) in e.to.iter().enumerate() {
            if !to.contains('@') {
                p.push(format!("alerts.email.to[{i}]"), "not an e-mail address");
            }
        }
        Some(EmailSettings {
            smtp_url: e.smtp_url,
            from: e.from,
            to: e.to,
        })
    });
    let webhook = raw.alerts.webhook.and_then(|w| {
        if w.url.trim().is_empty() {
            return None;
        }
        match reqwest::Url::parse(&w.url) {
            Ok(url) if url.scheme() == "https" || is_loopback_host(&url) => {
                Some(WebhookSettings { url })
            }
            Ok(_) => {
                p.push(
                    "alerts.webhook.url",
                    "must be https (plain http only to a loopback address)",
                );
                None
            }
            Err(e) => {
                p.push("alerts.webhook.url", format!("not a URL ({e})"));
                None
            }
        }
    });

    // [http]
    let listen = match raw.http.listen.trim() {
        "" => None,
        s => match s.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Some(a),
            Ok(a) => {
                p.push(
                    "http.listen",
                    format!(
                        "{a} is not a loopback address: /healthz and /metrics have no authentication, so essbot serves them on 127.0.0.1 or ::1 only (put a reverse proxy in front to publish them)"
                    ),
                );
                None
            }
            Err(_) => {
                p.push("http.listen", "not an address:port (e.g. 127.0.0.1:9187)");
                None
            }
        },
    };

    for (path, message) in raw.rules.problems() {
        p.push(path, message);
    }
    for problem in raw.milestones.problems() {
        p.0.push(problem);
    }

    if !p.0.is_empty() {
        return Err(ConfigError { problems: p.0 });
    }
    let (Some(ds), Some(cron), Some(timezone), Some(database)) = (ds, cron, timezone, database)
    else {
        unreachable!("every missing piece pushed a problem")
    };
    Ok(Settings {
        ds,
        schedule: ScheduleSettings {
            cron,
            cron_expr: raw.schedule.cron,
            timezone,
            full_sync_every: Duration::from_secs(raw.schedule.full_sync_every_hours * 3600),
        },
        database,
        demarches,
        reference,
        rules: raw.rules,
        milestones: raw.milestones,
        alerts: AlertsSettings {
            lead_days: raw.alerts.lead_days,
            email,
            webhook,
            dossier_url_base: raw.alerts.dossier_url_base,
        },
        http: HttpSettings { listen },
        daemon: DaemonSettings {
            shutdown_deadline: Duration::from_secs(raw.daemon.shutdown_deadline_secs.max(1)),
        },
    })
}

fn validate_demarche(i: usize, d: RawDemarche, p: &mut Collector) -> Option<DemarcheSettings> {
    let at = |k: &str| format!("demarches[{i}].{k}");
    let number = match d.number {
        Some(n) if n > 0 => Some(n),
        Some(0) => {
            p.push(
                at("number"),
                "still the placeholder 0: put your démarche's number (the one in its DS address, …/procedures/NUMBER)",
            );
            None
        }
        Some(_) => {
            p.push(at("number"), "must be a positive démarche number");
            None
        }
        None => {
            p.push(at("number"), "missing");
            None
        }
    };
    let kind = match d.kind.as_deref() {
        Some(k) => match DemarcheKind::parse(k) {
            Some(kind) => Some(kind),
            None => {
                p.push(
                    at("kind"),
                    format!(
                        "unknown kind {k:?}: expected \"lettre_intention\" or \"projet_sante\""
                    ),
                );
                None
            }
        },
        None => {
            p.push(
                at("kind"),
                "missing (\"lettre_intention\" or \"projet_sante\")",
            );
            None
        }
    };
    // Fields: each key a field of the kind, each reference well formed (columns included),
    // and every field a rule cannot run without mapped.
    let mut fields = BTreeMap::new();
    // Keys written but malformed: their problem is said, not a second "not mapped" one.
    let mut malformed: Vec<String> = Vec::new();
    for (key, raw) in d.fields {
        let def = kind.and_then(|k| k.field(&key));
        if let Some(k) = kind
            && def.is_none()
        {
            p.push(
                at(&format!("fields.{key}")),
                format!(
                    "unknown key; a {} démarche maps: {}",
                    k.as_str(),
                    k.field_keys().join(", ")
                ),
            );
            continue;
        }
        match raw.parse(def) {
            Ok(r) => {
                fields.insert(key, r);
            }
            Err(problems) => {
                malformed.push(key.clone());
                for (sub, message) in problems {
                    let sub = if sub.is_empty() {
                        String::new()
                    } else {
                        format!(".{sub}")
                    };
                    p.push(at(&format!("fields.{key}{sub}")), message);
                }
            }
        }
    }
    if let Some(k) = kind {
        let written = fields.keys().chain(&malformed).map(String::as_str);
        for problem in crate::rules::mapping::unmapped_required(k, written) {
            p.push(at(&problem.key), problem.message);
        }
    }
    let mut refs = |section: &str, map: BTreeMap<String, String>, allowed: &[&str]| {
        let mut out = BTreeMap::new();
        for (key, value) in map {
            if !allowed.contains(&key.as_str()) {
                p.push(
                    format!("demarches[{i}].{section}.{key}"),
                    format!("unknown key; expected one of: {}", allowed.join(", ")),
                );
                continue;
            }
            match value.parse::<ChampRef>() {
                Ok(r) => {
                    out.insert(key, r);
                }
                Err(e) => p.push(format!("demarches[{i}].{section}.{key}"), e),
            }
        }
        out
    };
    let annotation_keys: Vec<&str> = crate::rules::fields::annotation_keys().collect();
    let suivi_keys: Vec<&str> = crate::rules::fields::suivi_keys().collect();
    let annotations = refs("annotations", d.annotations, &annotation_keys);
    let suivi = refs("suivi", d.suivi, &suivi_keys);
    if d.write_back.mode != WriteMode::Off {
        for needed in ["rapport", "conforme"] {
            if !annotations.contains_key(needed) {
                p.push(
                    format!("demarches[{i}].annotations.{needed}"),
                    "missing: write_back.mode writes it (set write_back.mode = \"off\" to write nothing)",
                );
            }
        }
    }
    let names = &d.write_back.label_names;
    for (key, name) in [
        ("conforme", &names.conforme),
        ("a_verifier", &names.a_verifier),
        ("a_completer", &names.a_completer),
        ("derogation_cpn", &names.derogation_cpn),
    ] {
        if name.trim().is_empty() {
            p.push(
                at(&format!("write_back.label_names.{key}")),
                "empty label name",
            );
        }
    }
    let distinct: std::collections::BTreeSet<&str> = names.all().into_iter().collect();
    if distinct.len() < 4 {
        p.push(
            at("write_back.label_names"),
            "the four labels must have different names",
        );
    }
    Some(DemarcheSettings {
        number: number?,
        kind: kind?,
        mapping: MappingSpec {
            fields,
            annotations,
            suivi,
        },
        write_back: d.write_back,
    })
}

/// The token, or why there is none. A token source that is set but unusable (an empty
/// variable or file) is a configuration problem; a token file that cannot be read is only said
/// (`status` and the other commands that do not call DS work without it, e.g. as the service
/// user, which receives the token from systemd instead).
fn read_token(
    token_file: Option<&Path>,
    env: &Env,
    p: &mut Collector,
) -> (Option<SecretString>, Option<String>) {
    if let Some(t) = env.get(TOKEN_ENV) {
        let t = t.trim();
        if t.is_empty() {
            p.push(TOKEN_ENV, "set but empty");
            return (None, Some(format!("{TOKEN_ENV} is empty")));
        }
        return (Some(SecretString::from(t.to_owned())), None);
    }
    let credential = env
        .get("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(dir).join("ds-token"))
        .filter(|p| p.exists());
    let (path, key) = match (credential, token_file) {
        (Some(c), _) => (c, "$CREDENTIALS_DIRECTORY/ds-token".to_owned()),
        (None, Some(f)) => (f.to_owned(), "ds.token_file".to_owned()),
        (None, None) => {
            return (
                None,
                Some(format!(
                    "no DS token configured: set {TOKEN_ENV}, or ds.token_file, or run under systemd with the credential ds-token (/etc/essbot/ds-token)"
                )),
            );
        }
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().is_empty() => {
            p.push(key, format!("{} is empty", path.display()));
            (None, Some(format!("{} is empty", path.display())))
        }
        Ok(s) => (Some(SecretString::from(s.trim().to_owned())), None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            None,
            Some(format!(
                "the DS token file {} does not exist ({key}): put the token in it, alone on one line (owner root, mode 0600)",
                path.display()
            )),
        ),
        Err(e) => (
            None,
            Some(format!(
                "cannot read the DS token file {} ({key}): {e}",
                path.display()
            )),
        ),
    }
}

impl Settings {
    /// The check every command that calls DS makes first: a token is there.
    ///
    /// # Errors
    /// A [`ConfigError`] at `ds.token` saying why there is none (exit 2).
    pub fn require_token(&self) -> Result<(), ConfigError> {
        if self.ds.token.is_some() {
            return Ok(());
        }
        Err(ConfigError::one(
            "ds.token",
            self.ds
                .token_problem
                .clone()
                .unwrap_or_else(|| "no DS token".to_owned()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_demo_configuration_is_valid() {
        let s = load(&Source::Text(DEMO_CONFIG.into()), &env(&[])).unwrap();
        assert_eq!(s.demarches.len(), 2);
        assert_eq!(s.schedule.timezone, chrono_tz::Europe::Paris);
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = load(
            &Source::Text(DEMO_CONFIG.into()),
            &env(&[
                ("ESSBOT__DS__PAGE_SIZE", "7"),
                ("ESSBOT__ALERTS__LEAD_DAYS", "10,3"),
            ]),
        )
        .unwrap();
        assert_eq!(s.ds.page_size, 7);
        assert_eq!(s.alerts.lead_days, vec![10, 3]);
    }

    #[test]
    fn the_token_comes_from_the_environment_and_is_never_printed() {
        let s = load(
            &Source::Text(DEMO_CONFIG.into()),
            &env(&[(TOKEN_ENV, "s3cr3t-t0ken")]),
        )
        .unwrap();
        assert_eq!(s.ds.token.as_ref().unwrap().expose_secret(), "s3cr3t-t0ken");
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cr3t-t0ken"), "{debug}");
    }

    #[test]
    fn the_token_comes_from_systemd_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ds-token"), "cred-token\n").unwrap();
        let s = load(
            &Source::Text(DEMO_CONFIG.into()),
            &env(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(s.ds.token.unwrap().expose_secret(), "cred-token");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
[ds]
endpoint = "http://example.org/api/v2/graphql"
page_size = 500
[schedule]
cron = "*/15 * * * *"
timezone = "Mars/Olympus"
[database]
url = "sqlite::memory:"
[[demarches]]
number = 12
kind = "lettre"
[[demarches]]
number = 13
kind = "projet_sante"
[demarches.fields]
nb_adherents = "Nombre"
pas_un_champ = "X"
"#;
        let err = load(&Source::Text(text.into()), &env(&[])).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "ds.endpoint",
            "ds.page_size",
            "schedule.cron",
            "schedule.timezone",
            "demarches[0].kind",
            "demarches[1].fields.pas_un_champ",
            "demarches[1].annotations.rapport",
        ] {
            assert!(paths.contains(&expected), "{expected} not in {paths:?}");
        }
    }

    #[test]
    fn four_structural_mistakes_are_four_problems_with_their_lines() {
        let text = DEMO_CONFIG
            .replace(
                "page_size = 100",
                "page_size = \"cent\"\ninstructeur = \"x\"",
            )
            .replace("timezone = \"Europe/Paris\"", "timezon = \"Europe/Paris\"")
            + "\n[alerts]\nlead_days = \"trente\"\n";
        let err = load(&Source::Text(text.clone()), &env(&[])).unwrap_err();
        let line = |needle: &str| {
            let at = text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
            format!("line {at}")
        };
        let got: Vec<(&str, Option<&str>)> = err
            .problems
            .iter()
            .map(|p| (p.path.as_str(), p.origin.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("alerts.lead_days", Some(line("lead_days").as_str())),
                ("ds.instructeur", Some(line("instructeur =").as_str())),
                ("ds.page_size", Some(line("page_size").as_str())),
                ("schedule.timezon", Some(line("timezon").as_str())),
            ],
            "{err}"
        );
        assert!(
            err.to_string().starts_with("4 configuration problems"),
            "{err}"
        );
        assert!(err.problems[1].message.contains("instructeur_id"), "{err}");
    }

    #[test]
    fn unknown_keys_from_the_environment_are_reported_at_the_variable() {
        let err = load(
            &Source::Text(DEMO_CONFIG.into()),
            &env(&[("ESSBOT__DS__PAGE_SIZ", "3"), ("ESSBOT__NOPE__X", "1")]),
        )
        .unwrap_err();
        let shown: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(err.problems.len(), 2, "{shown:?}");
        assert!(
            shown.iter().any(|p| p.starts_with(
                "ds.page_siz (environment variable ESSBOT__DS__PAGE_SIZ): unknown key"
            )),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.starts_with("nope (environment variable ESSBOT__NOPE__X)")),
            "{shown:?}"
        );
    }

    #[test]
    fn list_keys_take_one_value_or_a_comma_separated_list_from_the_environment() {
        for (value, expected) in [
            ("30", vec![30]),
            ("30,7", vec![30, 7]),
            ("[14, 1]", vec![14, 1]),
        ] {
            let s = load(
                &Source::Text(DEMO_CONFIG.into()),
                &env(&[("ESSBOT__ALERTS__LEAD_DAYS", value)]),
            )
            .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(s.alerts.lead_days, expected, "{value}");
        }
        let text = format!(
            "{DEMO_CONFIG}\n[alerts.email]\nsmtp_url = \"smtp://localhost:25\"\nfrom = \"essbot@ars.example\"\n"
        );
        let s = load(
            &Source::Text(text),
            &env(&[
                ("ESSBOT__ALERTS__EMAIL__TO", "a@ars.example, b@cpam.example"),
                // A string key given a value that reads as a number stays the string.
                ("ESSBOT__DS__INSTRUCTEUR_ID", "12345"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.alerts.email.unwrap().to,
            ["a@ars.example", "b@cpam.example"]
        );
        assert_eq!(s.ds.instructeur_id, "12345");
        let err = load(
            &Source::Text(DEMO_CONFIG.into()),
            &env(&[("ESSBOT__ALERTS__LEAD_DAYS", "30,sept")]),
        )
        .unwrap_err();
        assert_eq!(err.problems[0].path, "alerts.lead_days[1]", "{err}");
        assert_eq!(
            err.problems[0].origin.as_deref(),
            Some("environment variable ESSBOT__ALERTS__LEAD_DAYS")
        );
    }

    #[test]
    fn a_kind_typo_is_one_problem_naming_the_kinds() {
        let text = DEMO_CONFIG.replacen("kind = \"lettre_intention\"", "kind = \"lettre\"", 1);
        let err = load(&Source::Text(text), &env(&[])).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0]
                .message
                .contains("\"lettre_intention\" or \"projet_sante\""),
            "{err}"
        );
    }

    #[test]
    fn the_metrics_listener_must_be_on_loopback_as_run_requires() {
        for (listen, ok) in [
            ("127.0.0.1:9187", true),
            ("[::1]:9187", true),
            ("0.0.0.0:9187", false),
        ] {
            let res = load(
                &Source::Text(DEMO_CONFIG.into()),
                &env(&[("ESSBOT__HTTP__LISTEN", listen)]),
            );
            assert_eq!(res.is_ok(), ok, "{listen}: {res:?}");
        }
    }

    #[test]
    fn placeholders_are_reported_until_replaced() {
        let text = DEMO_CONFIG
            .replace("SW5zdHJ1Y3RldXItMQ==", PLACEHOLDER)
            .replace("number = 1001", "number = 0");
        let err = load(&Source::Text(text), &env(&[])).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["ds.instructeur_id", "demarches[0].number"], "{err}");
        assert!(
            err.problems
                .iter()
                .all(|p| p.message.contains("placeholder"))
        );
    }

    #[test]
    fn an_unreadable_token_file_is_said_not_fatal() {
        let text = DEMO_CONFIG.replace(
            "[ds]\n",
            "[ds]\ntoken_file = \"/nonexistent/essbot/ds-token\"\n",
        );
        let s = load(&Source::Text(text), &env(&[])).unwrap();
        assert!(s.ds.token.is_none());
        let err = s.require_token().unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/essbot/ds-token does not exist"),
            "{err}"
        );
    }

    #[test]
    fn plain_http_is_allowed_only_to_loopback() {
        for (url, ok) in [
            ("http://127.0.0.1:8080/api/v2/graphql", true),
            ("http://127.8.0.1/api/v2/graphql", true),
            ("http://[::1]:80/api/v2/graphql", true),
            ("http://localhost/api/v2/graphql", true),
            ("http://10.0.0.1/api/v2/graphql", false),
            ("https://demarche.numerique.gouv.fr/api/v2/graphql", true),
        ] {
            let text = DEMO_CONFIG.replace("http://127.0.0.1:8080/api/v2/graphql", url);
            let res = load(&Source::Text(text), &env(&[]));
            assert_eq!(res.is_ok(), ok, "{url}: {res:?}");
        }
    }

    #[test]
    fn database_urls_name_sqlite_or_postgres_and_are_never_printed_whole() {
        for (url, ok) in [
            ("sqlite:///var/lib/essbot/essbot.db", true),
            (
                "postgres://essbot:s3cr3t@db.example:5432/essbot?sslmode=verify-full",
                true,
            ),
            ("postgresql://db.example/essbot", true),
            ("mysql://essbot:s3cr3t@db.example/essbot", false),
            ("sqlite://", false),
        ] {
            let res = load(
                &Source::Text(DEMO_CONFIG.into()),
                &env(&[("ESSBOT__DATABASE__URL", url)]),
            );
            assert_eq!(res.is_ok(), ok, "{url}: {res:?}");
            let shown = match res {
                Ok(s) => format!("{s:?}"),
                Err(e) => e.to_string(),
            };
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }

    #[test]
    fn champ_references() {
        assert_eq!(
            "id:Q2hhbXAtMQ==".parse::<ChampRef>().unwrap(),
            ChampRef::Id("Q2hhbXAtMQ==".into())
        );
        assert_eq!(
            "Nombre d'adhérents".parse::<ChampRef>().unwrap(),
            ChampRef::Label("Nombre d'adhérents".into())
        );
        assert!("id:".parse::<ChampRef>().is_err());
        assert!("  ".parse::<ChampRef>().is_err());
    }
}
