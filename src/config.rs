//! Configuration: a TOML file, then `ESSBOT__SECTION__KEY` environment overrides, validated into
//! typed [`Settings`].
//!
//! Validation gathers every problem with the path of its key instead of stopping at the first,
//! so that `essbot config check` tells an operator everything wrong with a file in one run.
//! The DS token is never part of the file: it comes from `ESSBOT_DS_TOKEN`, `ds.token_file` or
//! `$CREDENTIALS_DIRECTORY/ds-token` (systemd `LoadCredential=`), and is held in a
//! [`SecretString`] that cannot be printed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;

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

/// One configuration problem: the key's path (`demarches[0].fields.nb_adherents`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = format!("{} configuration problem(s)", problems.len());
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

impl ConfigError {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
}

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
    /// `None` when no token source is configured; commands that call DS refuse to start then.
    pub token: Option<SecretString>,
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

/// The two kinds of ESS démarche.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemarcheKind {
    LettreIntention,
    ProjetSante,
}

impl DemarcheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LettreIntention => "lettre_intention",
            Self::ProjetSante => "projet_sante",
        }
    }

    /// The domain fields of rules.md this kind of démarche may map.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::LettreIntention => LI_FIELDS,
            Self::ProjetSante => PS_FIELDS,
        }
    }
}

/// Domain fields of a lettre d'intention (rules.md, "Inputs").
pub const LI_FIELDS: &[&str] = &[
    "porteurs",
    "specialites",
    "territoire_departements",
    "territoire_region",
    "perimetre",
    "nb_medecins_specialite",
    "nb_liberaux_specialite",
    "nb_adherents",
    "association",
    "association_siret",
    "cooperations",
    "cooperations_precisions",
    "gouvernance",
    "actions",
    "actions_mission_socle",
    "derogation_demandee",
    "derogation_motif",
];

/// Domain fields of a projet de santé (rules.md, "Inputs").
pub const PS_FIELDS: &[&str] = &[
    "lien_lettre_intention",
    "diagnostic_territorial",
    "missions_actions",
    "indicateurs",
    "indicateur_qualitatif",
    "modalites_actualisation",
    "gouvernance",
    "plan_deploiement",
    "nb_adherents",
    "nb_liberaux_specialite",
];

/// Annotations essbot writes back.
pub const ANNOTATION_KEYS: &[&str] = &["rapport", "conforme", "prochaine_echeance"];

/// Annotations instructors fill and essbot reads (milestones.md, "Where the dates come from").
pub const SUIVI_KEYS: &[&str] = &[
    "signature_contrat_amorcage",
    "validation_projet_sante",
    "refus_projet_sante",
    "numero_finess",
    "signature_contrat_dotation",
    "deploiement_mission_socle",
    "justificatifs_recus",
    "nb_adherents_annuel",
];

/// How a mapping names a champ: by label, or by its stable descriptor id (`id:Q2hhbXAtMTA0MQ==`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChampRef {
    Label(String),
    Id(String),
}

impl FromStr for ChampRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty champ reference".into());
        }
        match s.strip_prefix("id:") {
            Some("") => Err("`id:` needs a champ descriptor id after it".into()),
            Some(id) => Ok(Self::Id(id.trim().to_owned())),
            None => Ok(Self::Label(s.to_owned())),
        }
    }
}

impl fmt::Display for ChampRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(l) => write!(f, "« {l} »"),
            Self::Id(id) => write!(f, "id:{id}"),
        }
    }
}

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

/// Write-back options of one démarche.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriteBackSettings {
    pub mode: WriteMode,
    pub labels: bool,
    pub message_usager: bool,
}

impl Default for WriteBackSettings {
    fn default() -> Self {
        Self {
            mode: WriteMode::Annotations,
            labels: true,
            message_usager: false,
        }
    }
}

/// One watched démarche and how its champs map onto the domain.
#[derive(Debug, Clone)]
pub struct DemarcheSettings {
    pub number: i64,
    pub kind: DemarcheKind,
    /// Domain field (rules.md) → champ.
    pub fields: BTreeMap<String, ChampRef>,
    /// `rapport`, `conforme`, `prochaine_echeance` → annotation.
    pub annotations: BTreeMap<String, ChampRef>,
    /// Follow-up annotations filled by staff (milestones.md) → annotation.
    pub suivi: BTreeMap<String, ChampRef>,
    pub write_back: WriteBackSettings,
}

/// Reference data files; `None` means the table built into the binary (config/reference/).
#[derive(Debug, Clone, Default)]
pub struct ReferenceSettings {
    pub specialites: Option<PathBuf>,
    pub ess_existantes: Option<PathBuf>,
    pub demographie: Option<PathBuf>,
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
    fields: BTreeMap<String, String>,
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

/// Loads and validates a configuration, reporting every problem at once.
///
/// # Errors
/// A [`ConfigError`] listing each problem with its key's path.
pub fn load(source: &Source, env: &Env) -> Result<Settings, ConfigError> {
    let mut builder = config::Config::builder();
    builder = match source {
        Source::File(path) => {
            if !path.exists() {
                return Err(ConfigError::one(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            builder.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
        }
        Source::Text(text) => {
            builder.add_source(config::File::from_str(text, config::FileFormat::Toml))
        }
    };
    let env_map: config::Map<String, String> = env
        .vars
        .iter()
        .filter(|(k, _)| k.starts_with("ESSBOT__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("ESSBOT")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("alerts.lead_days")
            .with_list_parse_key("alerts.email.to")
            .source(Some(env_map)),
    );
    let raw: RawSettings = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::one(error_path(&e), e.to_string()))?;
    validate(raw, env)
}

fn error_path(e: &config::ConfigError) -> String {
    match e {
        config::ConfigError::Type { key: Some(k), .. } => k.clone(),
        config::ConfigError::NotFound(k) => k.clone(),
        _ => "(file)".into(),
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
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn validate(raw: RawSettings, env: &Env) -> Result<Settings, ConfigError> {
    let mut p = Collector(Vec::new());

    // [ds]
    let ds = match raw.ds {
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
            let token = read_token(d.token_file.as_deref(), env, &mut p);
            let instructeur_id = d.instructeur_id.unwrap_or_default();
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
                page_size: d.page_size,
                timeout: Duration::from_secs(d.timeout_secs),
                connect_timeout: Duration::from_secs(d.connect_timeout_secs),
                max_requests_per_second: d.max_requests_per_second,
                max_retries: d.max_retries,
            })
        }
    };

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
            Ok(a) => Some(a),
            Err(_) => {
                p.push("http.listen", "not an address:port (e.g. 127.0.0.1:9187)");
                None
            }
        },
    };

    for problem in raw.rules.problems() {
        p.0.push(problem);
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
        Some("lettre_intention") => Some(DemarcheKind::LettreIntention),
        Some("projet_sante") => Some(DemarcheKind::ProjetSante),
        Some(other) => {
            p.push(
                at("kind"),
                format!(
                    "unknown kind {other:?}: expected \"lettre_intention\" or \"projet_sante\""
                ),
            );
            None
        }
        None => {
            p.push(
                at("kind"),
                "missing (\"lettre_intention\" or \"projet_sante\")",
            );
            None
        }
    };
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
    let fields = refs(
        "fields",
        d.fields,
        kind.map(DemarcheKind::fields).unwrap_or(&[]),
    );
    let annotations = refs("annotations", d.annotations, ANNOTATION_KEYS);
    let suivi = refs("suivi", d.suivi, SUIVI_KEYS);
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
    Some(DemarcheSettings {
        number: number?,
        kind: kind?,
        fields,
        annotations,
        suivi,
        write_back: d.write_back,
    })
}

fn read_token(token_file: Option<&Path>, env: &Env, p: &mut Collector) -> Option<SecretString> {
    if let Some(t) = env.get(TOKEN_ENV) {
        let t = t.trim();
        if t.is_empty() {
            p.push(TOKEN_ENV, "set but empty");
            return None;
        }
        return Some(SecretString::from(t.to_owned()));
    }
    let credential = env
        .get("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(dir).join("ds-token"))
        .filter(|p| p.exists());
    let (path, key) = match (credential, token_file) {
        (Some(c), _) => (c, "$CREDENTIALS_DIRECTORY/ds-token".to_owned()),
        (None, Some(f)) => (f.to_owned(), "ds.token_file".to_owned()),
        (None, None) => return None,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().is_empty() => {
            p.push(key, format!("{} is empty", path.display()));
            None
        }
        Ok(s) => Some(SecretString::from(s.trim().to_owned())),
        Err(e) => {
            p.push(key, format!("cannot read {}: {e}", path.display()));
            None
        }
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
