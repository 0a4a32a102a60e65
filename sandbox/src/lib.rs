//! A local stand-in for the part of the Démarches Simplifiées (DS) GraphQL API that essbot uses.
//!
//! essbot's client is tested against this server, which shares no code with it: the types
//! here are written from DS's published schema (same type, field, argument and enum names,
//! same nullability) and DS's observed behaviour (auth, paging, errors, rate limiting), so a
//! client bug cannot hide behind a shared misunderstanding.
//!
//! # Layout
//! - `types`: enums and custom scalars (`ISO8601DateTime`, `ISO8601Date`, `BigInt`, `URL`).
//! - `schema`: the async-graphql schema: `Query.demarche`, `Query.dossier`, the champ and
//!   champ descriptor types, the annotation, message and label mutations.
//! - `store`: the live data and the DS-like operations on it (who bumps which date).
//! - `data`: the JSON data set format, the demo data set and the synthetic generator.
//! - `server`: HTTP with axum on a hand-driven hyper accept loop (so that a fault can drop a
//!   connection): tokens, rate limiting, faults, request log.
//! - `geo`: départements and régions.
//!
//! # Behaviour
//! - `POST /api/v2/graphql`, JSON body `{query, variables, operationName}`.
//! - `Authorization: Bearer <token>` (or `Bearer token=<t>`, `Token token="<t>"`). Missing or
//!   unknown token: HTTP 403 `forbidden`; expired: HTTP 401 `unauthorized` "Token expired".
//!   A token restricted to some démarches sees the others as hidden (`unauthorized` GraphQL
//!   error). A read-only token gets "Le jeton utilisé est configuré seulement en lecture" in
//!   every mutation payload.
//! - 400 `bad_request` for a body that is not a JSON object with a `query`; 400
//!   `graphql_parse_failed` for a syntax error.
//! - Rate limit: [`SandboxOptions::rate_limit_per_minute`] requests per exact `Authorization`
//!   value in fixed windows `floor(now / 60)`; then HTTP 429, plain text, with
//!   `RateLimit-Remaining: 0` and `RateLimit-Reset: <end of window, epoch seconds>`.
//! - Paging: at most 100 a page; sorted by `(dateDepot, id)`, or `(dateDerniereModification,
//!   id)` when `updatedSince` is given (then `createdSince` is ignored); `updatedSince` is
//!   inclusive; cursors are base64 of `"<UTC timestamp with ns>;<number>"`.
//! - Every concrete `Champ` and `ChampDescriptor` type of DS's schema is served (with their
//!   supporting types: `Address`, `Commune`, `Pays`, `Epci`, `RNF`, `EngagementJuridique`,
//!   `GeoArea`…), so any document valid against DS for these parts validates here. `Champ.columns`
//!   is not served.
//! - Fragment-dependent typing: `yes_no` champs come back as `CheckboxChamp`, `datetime` as
//!   `DateChamp`, `departements`/`regions`/`drop_down_list`/`address`/`communes`/`pays`/
//!   `header_section`/`explication` as `TextChamp`, unless the query document names the newer
//!   type in a fragment (or introspects).
//! - Dates are rendered at 1-second precision in Europe/Paris with their offset.
//!
//! # Data set format (JSON)
//! ```json
//! {
//!   "instructeurs": [{"id": 1, "email": "instructeur@ars.example"}],
//!   "tokens": [{"token": "t", "label": "demo", "write": true, "expired": false,
//!               "demarches": [1001], "owner": "admin@ars.example"}],
//!   "demarches": [{
//!     "number": 1001, "title": "…", "description": "…", "state": "publiee",
//!     "dateCreation": "2025-11-03T09:00:00+01:00", "revision": 10011,
//!     "champs": [{"id": 101, "label": "Porteurs du projet", "type": "repetition", "required": true,
//!                 "children": [{"id": 102, "label": "Nom et prénom", "type": "text"}]},
//!                {"id": 111, "label": "Départements couverts", "type": "multiple_drop_down_list",
//!                 "options": ["@departements"]}],
//!     "annotations": [{"id": 901, "label": "Pré-contrôle automatique", "type": "textarea"}],
//!     "labels": [{"id": 1, "name": "Pré-contrôle : conforme", "color": "green_emeraude"}],
//!     "groupes": [{"number": 1, "label": "défaut", "instructeurs": [1]}]
//!   }],
//!   "dossiers": [{
//!     "number": 1, "demarche": 1001, "groupe": 1, "state": "accepte", "archived": false,
//!     "dateDepot": "2026-01-12T10:00:00+01:00", "datePassageEnInstruction": "…",
//!     "dateTraitement": "…", "motivation": "…",
//!     "dateDerniereModification": "… (optional, else the latest event)",
//!     "demandeur": {"type": "PersonnePhysique", "civilite": "Mme", "nom": "…", "prenom": "…", "email": "…"},
//!     "usager": "applicant@example.fr", "labels": [1],
//!     "messages": [{"body": "…", "createdAt": "…", "email": "…"}],
//!     "champs": [{"id": 116, "value": 12}, {"id": 101, "rows": [[{"id": 102, "value": "Dr X"}]]}],
//!     "annotations": [{"id": 904, "value": "2026-04-02"}],
//!     "hidden": {"reason": "user_request", "date": "…"}
//!   }],
//!   "deletedDossiers": [{"number": 34, "demarche": 1001, "state": "en_construction",
//!                        "reason": "user_request", "dateSupression": "…"}]
//! }
//! ```
//! Champ `type`s are DS's `TypeDeChamp` values (all of them: text, textarea, email, phone,
//! checkbox, yes_no, date, datetime, integer_number, number, decimal_number, drop_down_list,
//! multiple_drop_down_list, linked_drop_down_list, civilite, address, communes, departements,
//! regions, pays, epci, rna, rnf, siret, engagement_juridique, carte, titre_identite,
//! header_section (with an optional `"level"`), explication, repetition, dossier_link,
//! piece_justificative, and the text-like iban, formatted, referentiel, annuaire_education, cnaf,
//! dgfip, pole_emploi, mesri, cojo). Values are typed by their descriptor: strings, booleans,
//! `YYYY-MM-DD` dates, RFC 3339 datetimes, integers (a string is kept verbatim, so `"douze"`
//! reaches the client as a malformed `BigInt`), numbers, arrays of strings, a département/région
//! code or `{code, name}`, an RNA or RNF `{id, title, address}`, a SIRET établissement `{siret,
//! address, entreprise, association…}`, a dossier number, a list of files `{filename,
//! contentType, byteSize, checksum}`, `"M"`/`"Mme"` (civilite), `[primary, secondary]` (linked
//! drop-down), an address `{label, postalCode, cityName, cityCode, departmentCode…}`, a commune
//! `{code, name, postalCode}`, a pays `"FR"` or `{code, name}`, an EPCI `{code, name,
//! departement}`, `{montantEngage, montantPaye}`, a list of areas `{source, description,
//! geometry: {type, coordinates}, (cadastre:) commune, prefixe, section, numero, surface}`
//! (carte), a boolean "filled" (titre_identite); header_section and explication take no value.
//! A pays descriptor's `options` are `"<code> - <name>"`.
//! `"options": ["@departements"]` expands to every `"<code> - <name>"` département.
//!
//! # Faults and logs
//! [`Sandbox::push_fault`] queues a [`Fault`] for the next N requests (optionally only those
//! with a given `operationName`). [`Sandbox::requests`] and [`Sandbox::mutations`] return what
//! the server received and applied, with tokens replaced by their label (never the raw token).
//! Data can be changed while running: [`Sandbox::edit_champ`], [`Sandbox::set_state`],
//! [`Sandbox::delete_dossier`], [`Sandbox::hide_dossier`], [`Sandbox::remove_champ_descriptor`],
//! [`Sandbox::add_dossier`].
#![forbid(unsafe_code)]

mod data;
mod geo;
mod schema;
mod server;
mod store;
mod types;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use data::Dataset;
pub use store::DataError;
pub use types::{DeletedDossierReason, DossierState};

use schema::lock;
use store::{Store, TokenRt};

/// The demo data set's read-write token, accepted by `essbot demo` and `essbot sandbox`.
pub const DEMO_TOKEN: &str = "essbot-demo-token";

/// Why the sandbox could not start or refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A data set file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The listening socket could not be bound or used.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A data set (or dossier) is not valid JSON of the expected shape.
    #[error("invalid data set JSON")]
    Json(#[from] serde_json::Error),
    /// A data set or an in-process edit is inconsistent.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// How the sandbox behaves beyond its data.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Requests allowed per minute and `Authorization` value (DS's default is 400); `None`
    /// disables the limit.
    pub rate_limit_per_minute: Option<u32>,
    /// More read-write tokens, seeing every démarche (for `essbot sandbox --token`).
    pub extra_tokens: Vec<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            rate_limit_per_minute: Some(400),
            extra_tokens: Vec::new(),
        }
    }
}

/// A failure to inject, so that clients can be tested against what the real API does on a
/// bad day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 as DS's rate limiter sends it: plain text, `RateLimit-Remaining: 0`,
    /// `RateLimit-Reset` = now + `reset_secs` (epoch seconds), and a `Retry-After` header only
    /// when `retry_after` is set (DS sends none).
    Http429 {
        /// Seconds until the window resets.
        reset_secs: u64,
        /// Optional `Retry-After` value, in seconds.
        retry_after: Option<u64>,
    },
    /// That HTTP status: 500 with DS's JSON `internal_server_error` body, 502/503 with a
    /// proxy's HTML page, others with a plain-text body.
    Status(u16),
    /// Waits this long before answering normally (longer than the client's timeout to
    /// simulate a hung server).
    Delay(Duration),
    /// Announces the full `Content-Length` but sends half of the real answer, then closes.
    CutBody,
    /// HTTP 200 with a JSON content type and a body that is not valid JSON.
    MalformedJson,
    /// Executes the request, then nulls the value at `path` in `data` (all of `data` when
    /// `path` is empty) and adds a GraphQL error with `extensions.code`, as DS does for a
    /// timeout or `invalid_null`.
    GraphQlError {
        /// `extensions.code`, e.g. `timeout`.
        code: String,
        /// The error message, e.g. `Timeout on Query.dossier`.
        message: String,
        /// Response keys from `data` down to the failing field.
        path: Vec<String>,
    },
    /// Closes the connection without answering.
    DropConnection,
}

#[derive(Clone, Debug)]
struct FaultRule {
    fault: Fault,
    remaining: usize,
    operation: Option<String>,
}

/// One HTTP request the sandbox received.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// Its `operationName` (or the name of its only operation).
    pub operation_name: Option<String>,
    /// Whether the operation is a mutation.
    pub mutation: bool,
    /// The HTTP status answered (0 when the connection was dropped).
    pub status: u16,
    /// Its `variables`, as sent.
    pub variables: serde_json::Value,
    /// The token's label from the data set, `unknown:<hash>` for an unknown token, or
    /// `none`; never the token itself.
    pub token: String,
    /// The fault applied to it, if any.
    pub fault: Option<Fault>,
}

/// One mutation the sandbox executed (including refused ones).
#[derive(Clone, Debug)]
pub struct MutationRecord {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// The mutation field, e.g. `dossierModifierAnnotations`.
    pub name: String,
    /// The dossier it targeted, when its id could be read.
    pub dossier_number: Option<i32>,
    /// Its input, as JSON.
    pub input: serde_json::Value,
    /// The errors it reported (payload `errors` or the top-level error); empty on success.
    pub errors: Vec<String>,
}

/// State shared by the HTTP layer, the schema and the in-process API.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) mutations: Mutex<Vec<MutationRecord>>,
    requests: Mutex<Vec<RequestRecord>>,
    faults: Mutex<VecDeque<FaultRule>>,
    rate: Mutex<HashMap<String, (i64, u32)>>,
    options: SandboxOptions,
}

impl Shared {
    fn new(dataset: Dataset, options: SandboxOptions) -> Arc<Shared> {
        let mut store = dataset.store;
        for (i, t) in options.extra_tokens.iter().enumerate() {
            store.tokens.insert(
                t.clone(),
                TokenRt {
                    label: format!("extra-{}", i + 1),
                    write: true,
                    expired: false,
                    demarches: None,
                },
            );
        }
        Arc::new(Shared {
            store: Mutex::new(store),
            mutations: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            rate: Mutex::new(HashMap::new()),
            options,
        })
    }
}

/// Serves the sandbox on `listener` until `shutdown` completes (for `essbot sandbox`).
///
/// # Errors
/// [`SandboxError::Bind`] when accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    dataset: Dataset,
    options: SandboxOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    server::run(listener, Shared::new(dataset, options), shutdown).await
}

/// The schema the sandbox serves, in SDL (for fidelity checks against DS's schema).
pub fn schema_sdl() -> String {
    schema::build_schema(Shared::new(
        Dataset::from_parts(Store::default()),
        SandboxOptions::default(),
    ))
    .sdl()
}

/// A running sandbox on the current tokio runtime. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and serves `dataset` in a spawned task.
    ///
    /// # Errors
    /// [`SandboxError::Bind`] when the address cannot be bound.
    pub async fn start(
        dataset: Dataset,
        options: SandboxOptions,
        addr: SocketAddr,
    ) -> Result<Sandbox, SandboxError> {
        let bind_err = |source| SandboxError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Shared::new(dataset, options);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, shared.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(Sandbox {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The GraphQL endpoint, `http://127.0.0.1:PORT/api/v2/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/api/v2/graphql", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` to the next `times` requests (only those whose `operationName` is
    /// `operation`, when given). Faults queued earlier fire first.
    pub fn push_fault(&self, fault: Fault, times: usize, operation: Option<&str>) {
        lock(&self.shared.faults).push_back(FaultRule {
            fault,
            remaining: times,
            operation: operation.map(str::to_owned),
        });
    }

    /// Forgets every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// Every mutation executed so far, oldest first.
    pub fn mutations(&self) -> Vec<MutationRecord> {
        lock(&self.shared.mutations).clone()
    }

    /// Empties the request and mutation logs.
    pub fn clear_logs(&self) {
        lock(&self.shared.requests).clear();
        lock(&self.shared.mutations).clear();
    }

    /// Edits a public champ as the applicant would (value in the data set's compact form;
    /// for a repetition, an array of rows of `{id, value}`). Bumps `dateDerniereModification`
    /// and `dateDerniereModificationChamps`.
    ///
    /// # Errors
    /// [`SandboxError::Data`] for an unknown dossier or champ, or a value of the wrong type.
    pub fn edit_champ(
        &self,
        dossier: i32,
        stable_id: u64,
        value: serde_json::Value,
    ) -> Result<(), SandboxError> {
        Ok(lock(&self.shared.store).edit_champ(dossier, stable_id, &value, Utc::now())?)
    }

    /// Moves a dossier to `state` (setting `datePassageEnInstruction`, `dateTraitement` and
    /// `motivation` as DS does, recording a traitement, bumping `dateDerniereModification`).
    ///
    /// # Errors
    /// [`SandboxError::Data`] for an unknown dossier.
    pub fn set_state(
        &self,
        dossier: i32,
        state: DossierState,
        motivation: Option<&str>,
    ) -> Result<(), SandboxError> {
        Ok(lock(&self.shared.store).set_state(
            dossier,
            state,
            motivation.map(str::to_owned),
            Utc::now(),
        )?)
    }

    /// Deletes a dossier for good: it moves to `deletedDossiers` with `reason`.
    ///
    /// # Errors
    /// [`SandboxError::Data`] for an unknown dossier.
    pub fn delete_dossier(
        &self,
        dossier: i32,
        reason: DeletedDossierReason,
    ) -> Result<(), SandboxError> {
        Ok(lock(&self.shared.store).delete_dossier(dossier, reason, Utc::now())?)
    }

    /// Hides a dossier: it leaves the listings and appears in `pendingDeletedDossiers`.
    ///
    /// # Errors
    /// [`SandboxError::Data`] for an unknown dossier.
    pub fn hide_dossier(
        &self,
        dossier: i32,
        reason: DeletedDossierReason,
    ) -> Result<(), SandboxError> {
        Ok(lock(&self.shared.store).hide_dossier(dossier, reason, Utc::now())?)
    }

    /// Removes a champ or annotation descriptor from a démarche (schema drift): it leaves the
    /// active revision and every dossier of the démarche.
    ///
    /// # Errors
    /// [`SandboxError::Data`] for an unknown démarche or champ.
    pub fn remove_champ_descriptor(
        &self,
        demarche: i32,
        stable_id: u64,
    ) -> Result<(), SandboxError> {
        Ok(lock(&self.shared.store).remove_descriptor(demarche, stable_id, Utc::now())?)
    }

    /// Adds a dossier written in the data set's format; returns its number.
    ///
    /// # Errors
    /// [`SandboxError::Json`] or [`SandboxError::Data`] when it is invalid or its number is
    /// taken.
    pub fn add_dossier(&self, dossier: serde_json::Value) -> Result<i32, SandboxError> {
        let mut store = lock(&self.shared.store);
        let d = data::dossier_from_json(&store, &dossier)?;
        let number = d.number;
        if store.dossiers.contains_key(&number) || store.deleted.iter().any(|x| x.number == number)
        {
            return Err(DataError::Invalid(format!("dossier {number} already exists")).into());
        }
        store.dossiers.insert(number, Arc::new(d));
        Ok(number)
    }

    /// Stops accepting connections, closes the open ones and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Ok(Err(e)) = task.await
        {
            tracing::warn!(error = %e, "sandbox server stopped with an error");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
