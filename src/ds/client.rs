//! [`DsClient`]: every request essbot makes to DS goes through its one `execute` path.
//!
//! That path waits for a permit of the shared rate budget (`ds.max_requests_per_second`, one
//! budget for every démarche since DS counts requests per token), POSTs through one reqwest
//! client, maps HTTP statuses to [`ApiError`], and retries what may succeed later (5xx,
//! timeouts, connection failures, 429 after DS's reset time) with exponential backoff and
//! jitter, at most `ds.max_retries` times. 401 and 403 are never retried: they need a person.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, NaiveDate, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use graphql_client::GraphQLQuery;
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::Instrument;

use super::convert::{self, decode_dossier, decode_dossier_text, json_kind};
use super::error::{ApiError, DecodeError, Subject};
use super::model;
use super::ops;
use crate::config::DsSettings;

/// The longest essbot waits for DS's rate window to reset before giving up on a call: DS's
/// window is one minute, so a longer reset means something else is wrong.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(120);

/// The DS API client. Cheap to clone: clones share the HTTP connections, the rate budget and
/// the request counters, which is the point (DS limits requests per token, not per démarche).
#[derive(Clone)]
pub struct DsClient {
    inner: Arc<Inner>,
    min_delay: Duration,
    max_delay: Duration,
}

struct Inner {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    instructeur_id: String,
    page_size: u32,
    max_retries: u32,
    limiter: DefaultDirectRateLimiter,
    counters: Counters,
    /// Kept only to scrub it from any text DS sends back before it reaches an error.
    token: SecretString,
}

impl fmt::Debug for DsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsClient")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("token", &"[REDACTED]")
            .field("page_size", &self.inner.page_size)
            .field("max_retries", &self.inner.max_retries)
            .finish()
    }
}

/// One page of a démarche's dossiers.
#[derive(Debug, Clone)]
pub struct DossiersPage {
    /// Every node of the page, readable or not, in DS's order.
    pub dossiers: Vec<FetchedDossier>,
    /// DS's `pageInfo.hasNextPage`: keep paging while true.
    pub has_next_page: bool,
    /// The cursor to pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// One page of a démarche's dossiers as received, not decoded yet
/// ([`DsClient::dossiers_page_text`]).
#[derive(Debug)]
pub struct DossiersPageText {
    demarche: i64,
    nodes: Vec<NodeText>,
    /// DS's `pageInfo.hasNextPage`: keep paging while true.
    pub has_next_page: bool,
    /// The cursor to pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// A node's JSON text, and the error DS reported about it, if any.
#[derive(Debug)]
struct NodeText {
    raw: Box<RawValue>,
    failure: Option<NodeFailure>,
}

/// An error DS reported about one node of the page, token scrubbed.
#[derive(Debug)]
struct NodeFailure {
    path: String,
    message: String,
}

impl DossiersPageText {
    /// Reads every node into the model: pure CPU work, which the sync runs off the async
    /// threads. A node that cannot be read keeps its error, naming its number and field.
    pub fn decode(self) -> DossiersPage {
        let demarche = self.demarche;
        let dossiers = self
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| {
                let parsed = match node.failure {
                    Some(f) => Err(DecodeError {
                        number: number_in(&node.raw),
                        path: f.path,
                        message: f.message,
                    }),
                    None if node.raw.get() == "null" => Err(DecodeError {
                        number: None,
                        path: format!("nodes[{i}]"),
                        message: "dossier absent de la page (null)".into(),
                    }),
                    None => decode_dossier_text(node.raw.get()),
                };
                let number = match &parsed {
                    Ok(d) => Some(d.number),
                    Err(e) => {
                        tracing::warn!(demarche, error = %e, "unreadable dossier");
                        number_in(&node.raw)
                    }
                };
                FetchedDossier {
                    number,
                    raw: node.raw,
                    parsed,
                }
            })
            .collect();
        DossiersPage {
            dossiers,
            has_next_page: self.has_next_page,
            end_cursor: self.end_cursor,
        }
    }
}

/// The `number` of a node's JSON, if it has a readable one.
fn number_in(raw: &RawValue) -> Option<i64> {
    #[derive(Deserialize)]
    struct Numbered {
        number: Option<i64>,
    }
    serde_json::from_str::<Numbered>(raw.get())
        .ok()
        .and_then(|n| n.number)
}

/// `demarche.dossiers` of a listing page, with each node kept as text.
#[derive(Deserialize)]
struct PageData {
    demarche: PageDemarche,
}

#[derive(Deserialize)]
struct PageDemarche {
    dossiers: PageConnection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageConnection {
    page_info: PageInfo,
    nodes: Option<Vec<Box<RawValue>>>,
}

/// A listing page that did not read directly (missing parts, unexpected types), read as a tree
/// for an error naming what is wrong; its nodes if it is usable after all.
fn page_from_tree(
    operation: &'static str,
    data: &RawValue,
) -> Result<(Vec<Box<RawValue>>, PageInfo), ApiError> {
    let decode = |detail: String| ApiError::Decode { operation, detail };
    let mut data: Value =
        serde_json::from_str(data.get()).map_err(|e| decode(format!("JSON invalide ({e})")))?;
    // Taken, not cloned: the nodes are the bulk of the reply.
    let mut connection = match data.pointer_mut("/demarche/dossiers").map(Value::take) {
        Some(Value::Object(c)) => c,
        _ => return Err(decode("demarche.dossiers absent".into())),
    };
    let page_info: PageInfo =
        serde_path_to_error::deserialize(connection.get("pageInfo").unwrap_or(&Value::Null))
            .map_err(|e| {
                decode(format!(
                    "demarche.dossiers.pageInfo.{} : {}",
                    e.path(),
                    e.inner()
                ))
            })?;
    let nodes = match connection.remove("nodes") {
        Some(Value::Array(nodes)) => nodes,
        Some(Value::Null) | None => vec![],
        Some(other) => {
            return Err(decode(format!(
                "demarche.dossiers.nodes : une liste était attendue, reçu {}",
                json_kind(&other)
            )));
        }
    };
    let nodes = nodes
        .iter()
        .map(serde_json::value::to_raw_value)
        .collect::<Result<_, _>>()
        .map_err(|e| decode(format!("demarche.dossiers.nodes : {e}")))?;
    Ok((nodes, page_info))
}

/// One dossier as received: its JSON (the snapshot the sync stores) and its reading, which
/// may have failed without failing the page it came with.
#[derive(Debug, Clone)]
pub struct FetchedDossier {
    /// The number, when the node had a readable one even if the rest did not decode.
    pub number: Option<i64>,
    /// The node's JSON text as DS sent it (the snapshot the sync stores, unparsed).
    pub raw: Box<RawValue>,
    /// The dossier, or why it could not be read (naming its number and the field).
    pub parsed: Result<model::Dossier, DecodeError>,
}

/// One page of deleted (or pending-deleted) dossiers.
#[derive(Debug, Clone)]
pub struct DeletedPage {
    /// The deletions of the page, oldest first.
    pub dossiers: Vec<model::DeletedDossier>,
    /// DS's `pageInfo.hasNextPage`: keep paging while true.
    pub has_next_page: bool,
    /// The cursor to pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// One private annotation to write: its id (from the descriptors, or a repetition child's
/// `Champ-<stable_id>|<row_id>` id) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationWrite {
    /// The annotation's id (`ChampDescriptor.id`, stable across revisions).
    pub annotation_id: String,
    /// The value, under the key DS expects for that annotation's type.
    pub value: AnnotationValue,
}

/// A value for `dossierModifierAnnotations`. DS checks that the variant matches the
/// annotation's type exactly (a `textarea` annotation refuses `Text`): pick it with
/// [`annotation_key`] from the descriptor's `type_de_champ`.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnotationValue {
    /// A `text` annotation.
    Text(String),
    /// A `textarea` annotation (essbot's report).
    Textarea(String),
    /// An `email` annotation.
    Email(String),
    /// A `checkbox` annotation.
    Checkbox(bool),
    /// A `yes_no` annotation.
    YesNo(bool),
    /// A `date` annotation.
    Date(NaiveDate),
    /// A `datetime` annotation.
    Datetime(model::Timestamp),
    /// DS takes a 32-bit integer here.
    IntegerNumber(i32),
    /// Must be finite: JSON has no NaN or infinity.
    DecimalNumber(f64),
    /// A `drop_down_list` annotation: one of the descriptor's options.
    DropDownList(String),
    /// A `multiple_drop_down_list` annotation: some of the descriptor's options.
    MultipleDropDownList(Vec<String>),
    /// Rows to *add* to a repetition annotation.
    Repetition(u32),
}

impl AnnotationValue {
    /// The `AnnotationValueInput` key this value is sent under (camelCase of `TypeDeChamp`).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Textarea(_) => "textarea",
            Self::Email(_) => "email",
            Self::Checkbox(_) => "checkbox",
            Self::YesNo(_) => "yesNo",
            Self::Date(_) => "date",
            Self::Datetime(_) => "datetime",
            Self::IntegerNumber(_) => "integerNumber",
            Self::DecimalNumber(_) => "decimalNumber",
            Self::DropDownList(_) => "dropDownList",
            Self::MultipleDropDownList(_) => "multipleDropDownList",
            Self::Repetition(_) => "repetition",
        }
    }

    fn to_input(
        &self,
    ) -> Result<ops::dossier_modifier_annotations::AnnotationValueInput, ApiError> {
        use ops::dossier_modifier_annotations::AnnotationValueInput as I;
        Ok(match self {
            Self::Text(s) => I::Text(s.clone()),
            Self::Textarea(s) => I::Textarea(s.clone()),
            Self::Email(s) => I::Email(s.clone()),
            Self::Checkbox(b) => I::Checkbox(*b),
            Self::YesNo(b) => I::YesNo(*b),
            Self::Date(d) => I::Date(d.format("%Y-%m-%d").to_string()),
            Self::Datetime(t) => I::Datetime(t.to_rfc3339()),
            Self::IntegerNumber(n) => I::IntegerNumber(i64::from(*n)),
            Self::DecimalNumber(x) if x.is_finite() => I::DecimalNumber(*x),
            Self::DecimalNumber(x) => {
                return Err(ApiError::InvalidInput(format!(
                    "nombre décimal non fini ({x})"
                )));
            }
            Self::DropDownList(s) => I::DropDownList(s.clone()),
            Self::MultipleDropDownList(v) => I::MultipleDropDownList(v.clone()),
            Self::Repetition(n) => I::Repetition(i64::from(*n).min(i64::from(i32::MAX)).max(0)),
        })
    }
}

/// The `AnnotationValueInput` key DS expects for an annotation of this `TypeDeChamp`
/// (`integer_number` → `integerNumber`), or `None` when DS cannot write that type through
/// `dossierModifierAnnotations`.
pub fn annotation_key(type_de_champ: &str) -> Option<&'static str> {
    Some(match type_de_champ {
        "text" => "text",
        "textarea" => "textarea",
        "email" => "email",
        "checkbox" => "checkbox",
        "yes_no" => "yesNo",
        "date" => "date",
        "datetime" => "datetime",
        "integer_number" => "integerNumber",
        "decimal_number" => "decimalNumber",
        "drop_down_list" => "dropDownList",
        "multiple_drop_down_list" => "multipleDropDownList",
        "repetition" => "repetition",
        _ => return None,
    })
}

/// What a mutation returned. DS reports refusals as data (`errors` of the payload: read-only
/// token, instructeur without rights, a value outside the options), not as transport errors;
/// an empty list means everything was applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutationOutcome {
    /// DS's messages (French), one per refused part.
    pub errors: Vec<String>,
}

impl MutationOutcome {
    /// True when DS applied the whole mutation.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Requests made since the client was built, for metrics and `essbot status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// Responses received, by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// HTTP 429 responses (also counted under 429 in `by_status`).
    pub rate_limited: u64,
    /// Attempts that were retries of an earlier failed attempt.
    pub retries: u64,
    /// Attempts that got no HTTP response (timeout, connection failure).
    pub transport_errors: u64,
}

impl RequestStats {
    /// Every attempt that reached DS or tried to.
    pub fn total(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.transport_errors
    }
}

struct Counters {
    /// Index `status - 100`, for statuses 100..=599.
    by_status: Box<[AtomicU64]>,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    transport_errors: AtomicU64,
}

impl Counters {
    fn new() -> Self {
        Self {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            transport_errors: AtomicU64::new(0),
        }
    }

    fn status(&self, status: u16) {
        if let Some(c) = status
            .checked_sub(100)
            .and_then(|i| self.by_status.get(usize::from(i)))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> RequestStats {
        RequestStats {
            by_status: self
                .by_status
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let n = c.load(Ordering::Relaxed);
                    (n > 0).then(|| (100 + i as u16, n))
                })
                .collect(),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
        }
    }
}

/// Whether a call may be sent again after a failure that leaves unknown whether DS ran it
/// (a timeout, a connection closed mid-answer, a 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Running it twice does no harm: queries, annotation writes (they set values).
    Safe,
    /// It must not run twice (a message to the applicant, a label whose second addition
    /// would be reported as a refusal): retried only when DS certainly did not run it.
    OnlyIfNotExecuted,
}

/// The GraphQL response envelope, before the operation's own decoding.
#[derive(Debug, Deserialize)]
struct Envelope {
    /// Kept as text: a listing page reads it straight into its nodes' texts, other
    /// operations parse it (see [`Reply::into_data`]).
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    errors: Option<Vec<GqlError>>,
}

#[derive(Debug, Clone, Deserialize)]
struct GqlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    path: Option<Vec<Value>>,
    #[serde(default)]
    extensions: Option<GqlExtensions>,
}

#[derive(Debug, Clone, Deserialize)]
struct GqlExtensions {
    #[serde(default)]
    code: Option<String>,
}

impl GqlError {
    fn code(&self) -> Option<&str> {
        self.extensions.as_ref()?.code.as_deref()
    }

    /// The index of the listed node this error is about, when its path is `prefix/<i>/...`.
    fn node_index(&self, prefix: &[&str]) -> Option<usize> {
        let path = self.path.as_ref()?;
        if path.len() <= prefix.len() {
            return None;
        }
        for (p, want) in path.iter().zip(prefix) {
            if p.as_str() != Some(want) {
                return None;
            }
        }
        // DS sends list indices as numbers; a numeric string means the same position.
        match &path[prefix.len()] {
            Value::Number(n) => n.as_u64().map(|i| i as usize),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// A decoded GraphQL reply: data and errors as DS sent them.
struct Reply {
    operation: &'static str,
    data: Option<Box<RawValue>>,
    errors: Vec<GqlError>,
}

impl Reply {
    /// The data's text, or the first GraphQL error as an [`ApiError`].
    fn into_raw_data(
        self,
        subject: &Subject,
        client: &DsClient,
    ) -> Result<Box<RawValue>, ApiError> {
        if let Some(err) = client.graphql_error(self.operation, &self.errors, subject) {
            return Err(err);
        }
        // `"data": null` reads as `None`.
        self.data.ok_or(ApiError::Decode {
            operation: self.operation,
            detail: "ni données ni erreurs".into(),
        })
    }

    /// The data, or the first GraphQL error as an [`ApiError`].
    fn into_data(self, subject: &Subject, client: &DsClient) -> Result<Value, ApiError> {
        let operation = self.operation;
        let raw = self.into_raw_data(subject, client)?;
        serde_json::from_str(raw.get()).map_err(|e| ApiError::Decode {
            operation,
            detail: format!("JSON invalide ({e})"),
        })
    }
}

impl DsClient {
    /// Builds the client from the `[ds]` settings.
    ///
    /// # Errors
    /// [`ApiError::NoToken`] when no token is configured, [`ApiError::InvalidToken`] when it
    /// cannot travel in a header, [`ApiError::Client`] when the rate or the HTTP client is invalid.
    pub fn new(settings: &DsSettings) -> Result<Self, ApiError> {
        let token = settings.token.clone().ok_or(ApiError::NoToken)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| ApiError::InvalidToken)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(concat!("essbot/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .gzip(true)
            .build()
            .map_err(|e| ApiError::Client(e.to_string()))?;
        let rps = settings.max_requests_per_second;
        let period = (rps.is_finite() && rps > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / rps))
            .and_then(Quota::with_period)
            .ok_or_else(|| {
                ApiError::Client(format!(
                    "ds.max_requests_per_second doit être positif (reçu {rps})"
                ))
            })?;
        // A burst of one: requests are spaced by 1/rate, never bunched, so no one-second
        // window of DS's counter sees more than the configured rate.
        let quota = period.allow_burst(NonZeroU32::MIN);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint: settings.endpoint.clone(),
                instructeur_id: settings.instructeur_id.clone(),
                page_size: settings.page_size.clamp(1, 100),
                max_retries: settings.max_retries,
                limiter: RateLimiter::direct(quota),
                counters: Counters::new(),
                token,
            }),
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        })
    }

    /// Sets the backoff's first and longest delay between retries (default 0.5 s and 30 s);
    /// tests shorten them. Jitter is added on top.
    pub fn with_retry_delays(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max.max(min);
        self
    }

    /// Counts of the requests made so far by this client and its clones.
    pub fn stats(&self) -> RequestStats {
        self.inner.counters.snapshot()
    }

    /// One page of the démarche's dossiers (`first` = `ds.page_size`), changed since
    /// `updated_since` when given (inclusive, sorted by last change), continuing after `after`,
    /// decoded: [`Self::dossiers_page_text`] then [`DossiersPageText::decode`].
    ///
    /// A dossier that cannot be read is returned with its error in `parsed`; the page fails
    /// only when the response as a whole is unusable.
    ///
    /// # Errors
    /// Any [`ApiError`], after retries for the retryable ones.
    pub async fn dossiers_page(
        &self,
        demarche: i64,
        updated_since: Option<model::Timestamp>,
        after: Option<&str>,
    ) -> Result<DossiersPage, ApiError> {
        Ok(self
            .dossiers_page_text(demarche, updated_since, after)
            .await?
            .decode())
    }

    /// The network half of [`Self::dossiers_page`]: the page with each node still as the JSON
    /// text DS sent, so that the sync can ask for the next page while this one is decoded on
    /// another thread. Errors DS reports about single nodes stay with those nodes.
    ///
    /// # Errors
    /// Any [`ApiError`], after retries for the retryable ones.
    pub async fn dossiers_page_text(
        &self,
        demarche: i64,
        updated_since: Option<model::Timestamp>,
        after: Option<&str>,
    ) -> Result<DossiersPageText, ApiError> {
        const OP: &str = "GetDemarcheDossiers";
        let body = ops::GetDemarcheDossiers::build_query(ops::get_demarche_dossiers::Variables {
            demarche,
            first: i64::from(self.inner.page_size),
            after: after.map(str::to_owned),
            updated_since: updated_since.map(|t| t.to_rfc3339()),
        });
        let subject = Subject::Demarche(demarche);
        let mut reply = self.execute(OP, &body, &subject, Repeat::Safe).await?;
        // Errors about single nodes (DS nulls a dossier whose data is broken) stay with that
        // dossier; any other error fails the page.
        let prefix = ["demarche", "dossiers", "nodes"];
        let mut node_errors: BTreeMap<usize, Vec<GqlError>> = BTreeMap::new();
        reply.errors.retain(|e| match e.node_index(&prefix) {
            Some(i) => {
                node_errors.entry(i).or_default().push(e.clone());
                false
            }
            None => true,
        });
        let data = reply.into_raw_data(&subject, self)?;
        // The usual page reads in one pass that keeps each node's text; anything unusual is
        // read again as a tree, to say precisely what is wrong.
        let (nodes, page_info) = match serde_json::from_str::<PageData>(data.get()) {
            Ok(PageData {
                demarche: PageDemarche { dossiers },
            }) => (dossiers.nodes.unwrap_or_default(), dossiers.page_info),
            Err(_) => page_from_tree(OP, &data)?,
        };
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, raw)| NodeText {
                failure: node_errors.get(&i).map(|errors| NodeFailure {
                    path: errors
                        .first()
                        .and_then(|e| e.path.as_ref())
                        .map(|p| render_path(&p[prefix.len() + 1..]))
                        .unwrap_or_default(),
                    message: self.scrub(&join_messages(errors)),
                }),
                raw,
            })
            .collect();
        Ok(DossiersPageText {
            demarche,
            nodes,
            has_next_page: page_info.has_next_page,
            end_cursor: page_info.end_cursor,
        })
    }

    /// One page of the démarche's dossiers deleted (`pending: false`) or hidden pending
    /// deletion (`pending: true`) since `deleted_since`.
    ///
    /// # Errors
    /// Any [`ApiError`]; a node that cannot be read fails the page with
    /// [`ApiError::Decode`] naming its dossier, since a deletion must never be skipped.
    pub async fn deleted_dossiers_page(
        &self,
        demarche: i64,
        pending: bool,
        deleted_since: Option<model::Timestamp>,
        after: Option<&str>,
    ) -> Result<DeletedPage, ApiError> {
        const OP: &str = "GetDeletedDossiers";
        let body = ops::GetDeletedDossiers::build_query(ops::get_deleted_dossiers::Variables {
            demarche,
            pending,
            first: i64::from(self.inner.page_size),
            after: after.map(str::to_owned),
            deleted_since: deleted_since.map(|t| t.to_rfc3339()),
        });
        let subject = Subject::Demarche(demarche);
        let data = self
            .execute(OP, &body, &subject, Repeat::Safe)
            .await?
            .into_data(&subject, self)?;
        let field = if pending {
            "pendingDeletedDossiers"
        } else {
            "deletedDossiers"
        };
        let connection =
            data.pointer(&format!("/demarche/{field}"))
                .ok_or_else(|| ApiError::Decode {
                    operation: OP,
                    detail: format!("demarche.{field} absent"),
                })?;
        let page: ops::get_deleted_dossiers::DeletedDossierPage =
            serde_path_to_error::deserialize(connection).map_err(|e| {
                let number = e
                    .path()
                    .iter()
                    .find_map(|s| match s {
                        serde_path_to_error::Segment::Seq { index } => Some(*index),
                        _ => None,
                    })
                    .and_then(|i| connection.pointer(&format!("/nodes/{i}/number")))
                    .and_then(Value::as_i64);
                ApiError::Decode {
                    operation: OP,
                    detail: format!(
                        "dossier supprimé {} : demarche.{field}.{} : {}",
                        number.map_or_else(|| "sans numéro".into(), |n| n.to_string()),
                        e.path(),
                        self.scrub(&e.inner().to_string())
                    ),
                }
            })?;
        let mut dossiers = Vec::new();
        for (i, node) in page.nodes.unwrap_or_default().into_iter().enumerate() {
            let node = node.ok_or_else(|| ApiError::Decode {
                operation: OP,
                detail: format!("demarche.{field}.nodes[{i}] : null"),
            })?;
            dossiers.push(
                convert::deleted_dossier(node).map_err(|e| ApiError::Decode {
                    operation: OP,
                    detail: e.to_string(),
                })?,
            );
        }
        Ok(DeletedPage {
            dossiers,
            has_next_page: page.page_info.has_next_page,
            end_cursor: page.page_info.end_cursor,
        })
    }

    /// One dossier by number.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when DS does not know it (or hides it: brouillon, deleted),
    /// [`ApiError::NoAccess`] when the token does not cover its démarche, or any other
    /// [`ApiError`]. A dossier that cannot be read is returned with the error in `parsed`.
    pub async fn dossier(&self, number: i64) -> Result<FetchedDossier, ApiError> {
        const OP: &str = "GetDossier";
        let body = ops::GetDossier::build_query(ops::get_dossier::Variables { number });
        let subject = Subject::Dossier(number);
        let mut data = self
            .execute(OP, &body, &subject, Repeat::Safe)
            .await?
            .into_data(&subject, self)?;
        let raw = data
            .get_mut("dossier")
            .map(Value::take)
            .filter(|v| !v.is_null())
            .ok_or(ApiError::NotFound {
                subject: subject.clone(),
            })?;
        let parsed = decode_dossier(&raw);
        Ok(FetchedDossier {
            number: raw.get("number").and_then(Value::as_i64),
            raw: serde_json::value::to_raw_value(&raw).map_err(|e| ApiError::Decode {
                operation: OP,
                detail: format!("dossier : {e}"),
            })?,
            parsed,
        })
    }

    /// The champ and annotation descriptors of the démarche's active revision, and its labels.
    ///
    /// # Errors
    /// Any [`ApiError`]; an unreadable descriptor is an [`ApiError::Decode`].
    pub async fn demarche_descriptors(
        &self,
        demarche: i64,
    ) -> Result<model::DemarcheDescriptors, ApiError> {
        const OP: &str = "GetDemarcheDescriptors";
        let body =
            ops::GetDemarcheDescriptors::build_query(ops::get_demarche_descriptors::Variables {
                demarche,
            });
        let subject = Subject::Demarche(demarche);
        let data = self
            .execute(OP, &body, &subject, Repeat::Safe)
            .await?
            .into_data(&subject, self)?;
        let typed = self.typed::<ops::get_demarche_descriptors::ResponseData>(OP, &data)?;
        Ok(convert::descriptors(typed, &data))
    }

    /// The démarche's groupes instructeurs and who is in each.
    ///
    /// # Errors
    /// Any [`ApiError`].
    pub async fn groupes_instructeurs(
        &self,
        demarche: i64,
    ) -> Result<Vec<model::GroupeMembers>, ApiError> {
        use ops::get_demarche_instructeurs as q;
        const OP: &str = "GetDemarcheInstructeurs";
        let body = ops::GetDemarcheInstructeurs::build_query(q::Variables { demarche });
        let subject = Subject::Demarche(demarche);
        let data = self
            .execute(OP, &body, &subject, Repeat::Safe)
            .await?
            .into_data(&subject, self)?;
        let typed = self.typed::<q::ResponseData>(OP, &data)?;
        Ok(typed
            .demarche
            .groupe_instructeurs
            .into_iter()
            .map(|g| model::GroupeMembers {
                number: g.number,
                label: g.label,
                closed: g.closed,
                instructeurs: g
                    .instructeurs
                    .into_iter()
                    .map(|i| (i.id, i.email))
                    .collect(),
            })
            .collect())
    }

    /// Writes several private annotations of one dossier in one call, as the configured
    /// instructeur. An empty list sends nothing.
    ///
    /// # Errors
    /// Transport and GraphQL errors; refusals by DS are in the returned outcome.
    pub async fn modify_annotations(
        &self,
        dossier_id: &str,
        values: &[AnnotationWrite],
    ) -> Result<MutationOutcome, ApiError> {
        use ops::dossier_modifier_annotations as m;
        const OP: &str = "DossierModifierAnnotations";
        if values.is_empty() {
            return Ok(MutationOutcome::default());
        }
        let annotations = values
            .iter()
            .map(|w| {
                Ok(m::AnnotationInput {
                    id: w.annotation_id.clone(),
                    value: w.value.to_input()?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        let body = ops::DossierModifierAnnotations::build_query(m::Variables {
            input: m::DossierModifierAnnotationsInput {
                dossier_id: dossier_id.to_owned(),
                instructeur_id: self.inner.instructeur_id.clone(),
                annotations,
            },
        });
        let data = self.mutate(OP, &body, dossier_id, Repeat::Safe).await?;
        let payload = self
            .typed::<m::ResponseData>(OP, &data)?
            .dossier_modifier_annotations;
        self.outcome(
            OP,
            payload.map(|p| p.errors.unwrap_or_default().into_iter().map(|e| e.message)),
        )
    }

    /// Puts a label (an id from the démarche's labels) on a dossier.
    ///
    /// # Errors
    /// Transport and GraphQL errors; refusals ("déjà associé") are in the returned outcome.
    pub async fn add_label(
        &self,
        dossier_id: &str,
        label_id: &str,
    ) -> Result<MutationOutcome, ApiError> {
        use ops::dossier_ajouter_label as m;
        const OP: &str = "DossierAjouterLabel";
        let body = ops::DossierAjouterLabel::build_query(m::Variables {
            input: m::DossierAjouterLabelInput {
                dossier_id: dossier_id.to_owned(),
                label_id: label_id.to_owned(),
            },
        });
        let data = self
            .mutate(OP, &body, dossier_id, Repeat::OnlyIfNotExecuted)
            .await?;
        let payload = self
            .typed::<m::ResponseData>(OP, &data)?
            .dossier_ajouter_label;
        self.outcome(
            OP,
            payload.map(|p| p.errors.unwrap_or_default().into_iter().map(|e| e.message)),
        )
    }

    /// Takes a label off a dossier.
    ///
    /// # Errors
    /// Transport and GraphQL errors; refusals ("n’est pas associé") are in the returned outcome.
    pub async fn remove_label(
        &self,
        dossier_id: &str,
        label_id: &str,
    ) -> Result<MutationOutcome, ApiError> {
        use ops::dossier_supprimer_label as m;
        const OP: &str = "DossierSupprimerLabel";
        let body = ops::DossierSupprimerLabel::build_query(m::Variables {
            input: m::DossierSupprimerLabelInput {
                dossier_id: dossier_id.to_owned(),
                label_id: label_id.to_owned(),
            },
        });
        let data = self
            .mutate(OP, &body, dossier_id, Repeat::OnlyIfNotExecuted)
            .await?;
        let payload = self
            .typed::<m::ResponseData>(OP, &data)?
            .dossier_supprimer_label;
        self.outcome(
            OP,
            payload.map(|p| p.errors.unwrap_or_default().into_iter().map(|e| e.message)),
        )
    }

    /// Sends a message to the applicant, as the configured instructeur.
    ///
    /// # Errors
    /// Transport and GraphQL errors; refusals (empty body, no rights) are in the outcome.
    pub async fn send_message(
        &self,
        dossier_id: &str,
        body: &str,
    ) -> Result<MutationOutcome, ApiError> {
        use ops::dossier_envoyer_message as m;
        const OP: &str = "DossierEnvoyerMessage";
        let query = ops::DossierEnvoyerMessage::build_query(m::Variables {
            input: m::DossierEnvoyerMessageInput {
                dossier_id: dossier_id.to_owned(),
                instructeur_id: self.inner.instructeur_id.clone(),
                body: body.to_owned(),
            },
        });
        let data = self
            .mutate(OP, &query, dossier_id, Repeat::OnlyIfNotExecuted)
            .await?;
        let payload = self
            .typed::<m::ResponseData>(OP, &data)?
            .dossier_envoyer_message;
        self.outcome(
            OP,
            payload.map(|p| p.errors.unwrap_or_default().into_iter().map(|e| e.message)),
        )
    }

    async fn mutate<B: Serialize>(
        &self,
        operation: &'static str,
        body: &B,
        dossier_id: &str,
        repeat: Repeat,
    ) -> Result<Value, ApiError> {
        let subject = Subject::DossierId(dossier_id.to_owned());
        self.execute(operation, body, &subject, repeat)
            .await?
            .into_data(&subject, self)
    }

    fn outcome(
        &self,
        operation: &'static str,
        errors: Option<impl Iterator<Item = String>>,
    ) -> Result<MutationOutcome, ApiError> {
        match errors {
            Some(errors) => Ok(MutationOutcome {
                errors: errors.map(|m| self.scrub(&m)).collect(),
            }),
            None => Err(ApiError::Decode {
                operation,
                detail: "réponse de mutation vide (payload null)".into(),
            }),
        }
    }

    fn typed<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        data: &Value,
    ) -> Result<T, ApiError> {
        serde_path_to_error::deserialize(data).map_err(|e| ApiError::Decode {
            operation,
            detail: format!("{} : {}", e.path(), self.scrub(&e.inner().to_string())),
        })
    }

    /// The one path every request takes: budget, POST, status mapping, retries.
    async fn execute<B: Serialize>(
        &self,
        operation: &'static str,
        body: &B,
        subject: &Subject,
        repeat: Repeat,
    ) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ApiError::InvalidInput(format!("{operation} : {e}")))?;
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.inner.max_retries as usize)
            .with_jitter();
        let span = tracing::info_span!("ds", operation, subject = %subject);
        let result = (|| async {
            let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            self.attempt(operation, &body, n).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e| match repeat {
            Repeat::Safe => e.is_retryable(),
            Repeat::OnlyIfNotExecuted => e.is_retryable_once_only(),
        })
        .adjust(|err, delay| match (err, delay) {
            (_, None) => None,
            (ApiError::RateLimited { reset, .. }, Some(_)) => {
                let wait = (*reset - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                (wait <= MAX_RATE_LIMIT_WAIT).then_some(wait)
            }
            (_, delay) => delay,
        })
        .notify(|err, delay| {
            self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %err.operator_text(), retry_in_ms = delay.as_millis() as u64, "DS call failed, retrying");
        })
        .instrument(span)
        .await;
        result.map_err(|e| e.with_attempts(attempts.load(Ordering::Relaxed)))
    }

    /// One attempt: wait for the budget, POST, map the status, decode the envelope.
    async fn attempt(
        &self,
        operation: &'static str,
        body: &[u8],
        attempt: u32,
    ) -> Result<Reply, ApiError> {
        self.inner.limiter.until_ready().await;
        let started = std::time::Instant::now();
        let sent = self
            .inner
            .http
            .post(self.inner.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.inner
                    .counters
                    .transport_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(self.transport_error(operation, &e));
            }
        };
        let status = response.status();
        self.inner.counters.status(status.as_u16());
        tracing::debug!(
            attempt,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "DS answered"
        );
        match status.as_u16() {
            429 => {
                self.inner
                    .counters
                    .rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                let reset = rate_limit_reset(response.headers(), Utc::now());
                return Err(ApiError::RateLimited { reset, attempts: 1 });
            }
            401 => return Err(ApiError::TokenExpired),
            403 => {
                let message = self.error_message(response).await;
                return Err(ApiError::Forbidden { message });
            }
            s @ 500..=599 => {
                return Err(ApiError::Unavailable {
                    status: s,
                    attempts: 1,
                });
            }
            s if !status.is_success() => {
                let message = self.error_message(response).await;
                return Err(ApiError::Http { status: s, message });
            }
            _ => {}
        }
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                ApiError::Timeout { attempts: 1 }
            } else {
                ApiError::Decode {
                    operation,
                    detail: format!("réponse tronquée ({})", self.scrub(&error_chain(&e))),
                }
            }
        })?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            operation,
            detail: format!("JSON invalide ({e})"),
        })?;
        let errors = envelope.errors.unwrap_or_default();
        // DS's own execution timeout (HTTP 200) is transient: fail the attempt so that it is
        // retried like any other timeout.
        if let Some(timeout) = errors.iter().find(|e| e.code() == Some("timeout")) {
            return Err(ApiError::GraphQl {
                operation,
                code: Some("timeout".into()),
                message: self.scrub(&timeout.message),
            });
        }
        Ok(Reply {
            operation,
            data: envelope.data,
            errors,
        })
    }

    fn transport_error(&self, operation: &'static str, e: &reqwest::Error) -> ApiError {
        let detail = self.scrub(&error_chain(e));
        if e.is_timeout() {
            ApiError::Timeout { attempts: 1 }
        } else if e.is_connect() {
            ApiError::Connect {
                detail,
                attempts: 1,
            }
        } else {
            ApiError::Interrupted {
                operation,
                detail,
                attempts: 1,
            }
        }
    }

    /// DS's message from an error body (`{"errors":[{"message":...}]}`), or the status text.
    async fn error_message(&self, response: reqwest::Response) -> String {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Envelope>(&text)
            .ok()
            .and_then(|e| e.errors)
            .map(|errors| join_messages(&errors))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
        self.scrub(&message)
    }

    /// The first GraphQL error of a reply, as an [`ApiError`].
    fn graphql_error(
        &self,
        operation: &'static str,
        errors: &[GqlError],
        subject: &Subject,
    ) -> Option<ApiError> {
        let first = errors.first()?;
        Some(match first.code() {
            Some("unauthorized") => ApiError::NoAccess {
                subject: subject.clone(),
            },
            Some("not_found") => ApiError::NotFound {
                subject: subject.clone(),
            },
            code => ApiError::GraphQl {
                operation,
                code: code.map(str::to_owned),
                message: self.scrub(&join_messages(errors)),
            },
        })
    }

    /// Removes the token from text that came from outside, should anything ever echo it.
    fn scrub(&self, text: &str) -> String {
        let token = self.inner.token.expose_secret();
        if token.is_empty() {
            text.to_owned()
        } else {
            text.replace(token, "[jeton masqué]")
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

fn join_messages(errors: &[GqlError]) -> String {
    errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join(" ; ")
}

/// `["champs", 3, "value"]` → `champs[3].value`.
fn render_path(path: &[Value]) -> String {
    let mut out = String::new();
    for p in path {
        match p {
            Value::Number(n) => out.push_str(&format!("[{n}]")),
            Value::String(s) if s.parse::<usize>().is_ok() => out.push_str(&format!("[{s}]")),
            Value::String(s) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(s);
            }
            _ => {}
        }
    }
    out
}

/// A reqwest error with its sources: its own Display alone says little ("error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// When DS's rate window ends: `RateLimit-Reset` (epoch seconds, what DS sends), else
/// `Retry-After` (seconds or an HTTP date), else one minute from now.
fn rate_limit_reset(headers: &HeaderMap, now: DateTime<Utc>) -> DateTime<Utc> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(reset) = text("ratelimit-reset")
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| DateTime::from_timestamp(s, 0))
    {
        return reset;
    }
    if let Some(after) = text("retry-after") {
        if let Ok(secs) = after.parse::<u64>() {
            return now + chrono::Duration::seconds(secs.min(3600) as i64);
        }
        if let Ok(date) = DateTime::parse_from_rfc2822(after) {
            return date.with_timezone(&Utc);
        }
    }
    now + chrono::Duration::seconds(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reset_comes_from_ratelimit_reset_then_retry_after_then_a_minute() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(
            rate_limit_reset(&h, now),
            now + chrono::Duration::seconds(60)
        );
        h.insert("retry-after", HeaderValue::from_static("5"));
        assert_eq!(
            rate_limit_reset(&h, now),
            now + chrono::Duration::seconds(5)
        );
        h.insert("ratelimit-reset", HeaderValue::from_static("1800000030"));
        assert_eq!(
            rate_limit_reset(&h, now),
            DateTime::from_timestamp(1_800_000_030, 0).unwrap()
        );
    }

    #[test]
    fn annotation_keys_follow_the_descriptor_type() {
        assert_eq!(annotation_key("integer_number"), Some("integerNumber"));
        assert_eq!(annotation_key("yes_no"), Some("yesNo"));
        assert_eq!(annotation_key("carte"), None);
        for v in [
            AnnotationValue::Textarea(String::new()),
            AnnotationValue::YesNo(true),
            AnnotationValue::IntegerNumber(1),
            AnnotationValue::DropDownList(String::new()),
        ] {
            let input = serde_json::to_value(v.to_input().unwrap()).unwrap();
            assert!(input.get(v.key()).is_some(), "{input}");
        }
        assert!(AnnotationValue::DecimalNumber(f64::NAN).to_input().is_err());
    }

    #[test]
    fn node_errors_are_recognised_by_their_path() {
        let e: GqlError = serde_json::from_value(serde_json::json!({
            "message": "Cannot return null for non-nullable field",
            "path": ["demarche", "dossiers", "nodes", 2, "champs", 0, "label"],
            "extensions": {"code": "invalid_null"}
        }))
        .unwrap();
        assert_eq!(e.node_index(&["demarche", "dossiers", "nodes"]), Some(2));
        assert_eq!(
            render_path(&e.path.clone().unwrap()[4..]),
            "champs[0].label".to_owned()
        );
        assert_eq!(e.node_index(&["dossier"]), None);
        let e = GqlError {
            path: Some(vec![
                "demarche".into(),
                "dossiers".into(),
                "nodes".into(),
                "5".into(),
            ]),
            ..e
        };
        assert_eq!(e.node_index(&["demarche", "dossiers", "nodes"]), Some(5));
    }

    #[test]
    fn both_dossier_documents_carry_the_same_fragments() {
        // get_dossier.graphql is decoded through get_demarche_dossiers' DossierFragment.
        let fragments = |doc: &str| doc[doc.find("fragment DossierFragment").unwrap()..].to_owned();
        assert_eq!(
            fragments(ops::get_demarche_dossiers::QUERY),
            fragments(ops::get_dossier::QUERY)
        );
    }
}
