//! The GraphQL schema: static async-graphql types named exactly as in DS's schema.

use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::{
    Context, EmptySubscription, Error, ErrorExtensions, ID, InputObject, Interface, Object,
    OneofObject, Result, Schema, SimpleObject,
};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::Serialize;

use crate::geo;
use crate::store::{
    AddressData, ChampRt, CommuneData, DemandeurData, DemarcheRt, Descriptor, DossierRt,
    EtablissementData, FileData, GeoAreaData, GroupeRt, LabelRt, MessageRt, RowRt, Store, Val,
    decode_gid, gid, row_ulid,
};
use crate::types::{
    AddressType, BigIntScalar, Civilite, ConnectionUsager, CoordinatesScalar, CorrectionReason,
    DateScalar, DateTimeScalar, DeletedDossierReason, DemarcheState, DossierState, GeoAreaSource,
    LabelColorEnum, Order, TitreIdentiteGrantType, TraitementEvent, TypeDeChamp, UrlScalar,
    utc_nanos,
};
use crate::{MutationRecord, Shared};

/// The executable schema type.
pub(crate) type DsSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema over the shared state.
pub(crate) fn build_schema(shared: Arc<Shared>) -> DsSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(shared)
        .limit_depth(15)
        .finish()
}

/// Who is calling: the token's rights.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub write: bool,
    pub demarches: Option<Vec<i32>>,
}

impl Caller {
    fn can_see(&self, demarche: i32) -> bool {
        self.demarches
            .as_ref()
            .is_none_or(|l| l.contains(&demarche))
    }
}

/// Which newer champ types the query document names in a fragment (ds-api.md §9): without
/// one, DS serves the older type for backward compatibility.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fragments {
    pub yes_no: bool,
    pub datetime: bool,
    pub departement: bool,
    pub region: bool,
    pub drop_down_list: bool,
    pub address: bool,
    pub commune: bool,
    pub pays: bool,
    pub header_section: bool,
    pub explication: bool,
}

impl Fragments {
    /// Records one fragment type condition.
    pub(crate) fn see(&mut self, type_name: &str) {
        match type_name {
            "YesNoChamp" => self.yes_no = true,
            "DatetimeChamp" => self.datetime = true,
            "DepartementChamp" => self.departement = true,
            "RegionChamp" => self.region = true,
            "DropDownListChamp" => self.drop_down_list = true,
            "AddressChamp" => self.address = true,
            "CommuneChamp" => self.commune = true,
            "PaysChamp" => self.pays = true,
            "HeaderSectionChamp" => self.header_section = true,
            "ExplicationChamp" => self.explication = true,
            _ => {}
        }
    }

    /// Introspection counts as naming every fragment.
    pub(crate) fn all() -> Fragments {
        Fragments {
            yes_no: true,
            datetime: true,
            departement: true,
            region: true,
            drop_down_list: true,
            address: true,
            commune: true,
            pays: true,
            header_section: true,
            explication: true,
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn hidden(type_name: &str) -> Error {
    coded(
        "unauthorized",
        format!("An object of type {type_name} was hidden due to permissions"),
    )
}

fn shared<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Shared>> {
    ctx.data::<Arc<Shared>>()
}

fn caller(ctx: &Context<'_>) -> Caller {
    ctx.data_opt::<Caller>().cloned().unwrap_or(Caller {
        write: true,
        demarches: None,
    })
}

fn fragments(ctx: &Context<'_>) -> Fragments {
    ctx.data_opt::<Fragments>().copied().unwrap_or_default()
}

fn dt(at: DateTime<Utc>) -> DateTimeScalar {
    DateTimeScalar(at)
}

// ---------------------------------------------------------------------------------------------
// Query

/// Root query type.
pub(crate) struct Query;

#[Object]
impl Query {
    /// Informations concernant une démarche.
    async fn demarche(&self, ctx: &Context<'_>, number: i32) -> Result<Demarche> {
        let store = lock(&shared(ctx)?.store);
        let dem = store
            .demarches
            .get(&number)
            .ok_or_else(|| coded("not_found", "Demarche not found"))?;
        if !caller(ctx).can_see(number) {
            return Err(hidden("Demarche"));
        }
        Ok(Demarche { dem: dem.clone() })
    }

    /// Informations sur un dossier d’une démarche.
    async fn dossier(&self, ctx: &Context<'_>, number: i32) -> Result<Dossier> {
        let store = lock(&shared(ctx)?.store);
        let d = store
            .visible_dossier(number)
            .ok_or_else(|| coded("not_found", "Dossier not found"))?;
        if !caller(ctx).can_see(d.demarche) {
            return Err(hidden("Dossier"));
        }
        Dossier::new(&store, d)
    }
}

// ---------------------------------------------------------------------------------------------
// Démarche, revision, groupes, labels

/// A démarche.
pub(crate) struct Demarche {
    dem: Arc<DemarcheRt>,
}

fn descriptors(list: &[Descriptor]) -> Vec<ChampDescriptor> {
    list.iter().map(ChampDescriptor::from_descriptor).collect()
}

#[Object]
impl Demarche {
    async fn id(&self) -> ID {
        ID(gid("Procedure", self.dem.number))
    }
    async fn number(&self) -> i32 {
        self.dem.number
    }
    async fn title(&self) -> &str {
        &self.dem.title
    }
    async fn description(&self) -> &str {
        &self.dem.description
    }
    async fn state(&self) -> DemarcheState {
        self.dem.state
    }
    async fn date_creation(&self) -> DateTimeScalar {
        dt(self.dem.date_creation)
    }
    async fn date_publication(&self) -> Option<DateTimeScalar> {
        Some(dt(self.dem.date_creation))
    }
    async fn date_derniere_modification(&self) -> DateTimeScalar {
        dt(self.dem.date_modification)
    }
    async fn active_revision(&self) -> Revision {
        Revision {
            dem: self.dem.clone(),
        }
    }
    async fn published_revision(&self) -> Option<Revision> {
        Some(Revision {
            dem: self.dem.clone(),
        })
    }
    async fn draft_revision(&self) -> Revision {
        Revision {
            dem: self.dem.clone(),
        }
    }
    async fn revisions(&self) -> Vec<Revision> {
        vec![Revision {
            dem: self.dem.clone(),
        }]
    }
    #[graphql(deprecation = "Utilisez le champ `activeRevision.champDescriptors` à la place.")]
    async fn champ_descriptors(&self) -> Vec<ChampDescriptor> {
        descriptors(&self.dem.champs)
    }
    #[graphql(deprecation = "Utilisez le champ `activeRevision.annotationDescriptors` à la place.")]
    async fn annotation_descriptors(&self) -> Vec<ChampDescriptor> {
        descriptors(&self.dem.annotations)
    }
    async fn labels(&self) -> Vec<Label> {
        self.dem.labels.iter().map(Label::from_rt).collect()
    }
    async fn groupe_instructeurs(
        &self,
        ctx: &Context<'_>,
        closed: Option<bool>,
    ) -> Result<Vec<GroupeInstructeur>> {
        if closed == Some(true) {
            return Ok(Vec::new());
        }
        let store = lock(&shared(ctx)?.store);
        Ok(self
            .dem
            .groupes
            .iter()
            .map(|g| GroupeInstructeur::from_rt(&store, g))
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    async fn dossiers(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        archived: Option<bool>,
        before: Option<String>,
        created_since: Option<DateTimeScalar>,
        first: Option<i32>,
        last: Option<i32>,
        max_revision: Option<ID>,
        min_revision: Option<ID>,
        #[graphql(
            default_with = "Some(Order::Asc)",
            deprecation = "Utilisez l’argument `last` à la place."
        )]
        order: Option<Order>,
        revision: Option<ID>,
        state: Option<DossierState>,
        updated_since: Option<DateTimeScalar>,
    ) -> Result<DossierConnection> {
        let _ = (max_revision, min_revision, revision);
        let args = PageArgs::new(first, last, after, before, order)?;
        let store = lock(&shared(ctx)?.store);
        let mut items: Vec<(DateTime<Utc>, i64, Arc<DossierRt>)> = store
            .dossiers
            .values()
            .filter(|d| d.demarche == self.dem.number && d.hidden.is_none())
            .filter(|d| state.is_none_or(|s| d.state == s))
            .filter(|d| archived.is_none_or(|a| d.archived == a))
            .filter(|d| match (updated_since, created_since) {
                (Some(u), _) => d.updated_at >= u.0,
                (None, Some(c)) => d.date_depot >= c.0,
                (None, None) => true,
            })
            .map(|d| {
                let key = if updated_since.is_some() {
                    d.updated_at
                } else {
                    d.date_depot
                };
                (key, i64::from(d.number), d.clone())
            })
            .collect();
        let page = args.paginate(&mut items)?;
        let mut edges = Vec::new();
        for (cursor, d) in page.items {
            edges.push(DossierEdge {
                cursor,
                node: Some(Dossier::new(&store, &d)?),
            });
        }
        Ok(DossierConnection {
            nodes: Some(edges.iter().map(|e| e.node.clone()).collect()),
            edges: Some(edges.into_iter().map(Some).collect()),
            page_info: page.info,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn deleted_dossiers(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        deleted_since: Option<DateTimeScalar>,
        first: Option<i32>,
        last: Option<i32>,
        #[graphql(
            default_with = "Some(Order::Asc)",
            deprecation = "Utilisez l’argument `last` à la place."
        )]
        order: Option<Order>,
    ) -> Result<DeletedDossierConnection> {
        let args = PageArgs::new(first, last, after, before, order)?;
        let store = lock(&shared(ctx)?.store);
        let mut items: Vec<(DateTime<Utc>, i64, DeletedDossier)> = store
            .deleted
            .iter()
            .filter(|d| d.demarche == self.dem.number)
            .filter(|d| deleted_since.is_none_or(|s| d.at >= s.0))
            .map(|d| {
                (
                    d.at,
                    i64::from(d.number),
                    DeletedDossier::new(d.number, d.state, d.reason, d.at),
                )
            })
            .collect();
        Ok(DeletedDossierConnection::from_page(
            args.paginate(&mut items)?,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn pending_deleted_dossiers(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        deleted_since: Option<DateTimeScalar>,
        first: Option<i32>,
        last: Option<i32>,
        #[graphql(
            default_with = "Some(Order::Asc)",
            deprecation = "Utilisez l’argument `last` à la place."
        )]
        order: Option<Order>,
    ) -> Result<DeletedDossierConnection> {
        let args = PageArgs::new(first, last, after, before, order)?;
        let store = lock(&shared(ctx)?.store);
        let mut items: Vec<(DateTime<Utc>, i64, DeletedDossier)> = store
            .dossiers
            .values()
            .filter(|d| d.demarche == self.dem.number)
            .filter_map(|d| d.hidden.map(|(at, reason)| (d, at, reason)))
            .filter(|(_, at, _)| deleted_since.is_none_or(|s| *at >= s.0))
            .map(|(d, at, reason)| {
                (
                    at,
                    i64::from(d.number),
                    DeletedDossier::new(d.number, d.state, reason, at),
                )
            })
            .collect();
        Ok(DeletedDossierConnection::from_page(
            args.paginate(&mut items)?,
        ))
    }
}

/// A revision of a démarche's form. The sandbox keeps one (the active one).
pub(crate) struct Revision {
    dem: Arc<DemarcheRt>,
}

#[Object]
impl Revision {
    async fn id(&self) -> ID {
        ID(gid("ProcedureRevision", self.dem.revision_id))
    }
    async fn date_creation(&self) -> DateTimeScalar {
        dt(self.dem.date_modification)
    }
    async fn date_publication(&self) -> Option<DateTimeScalar> {
        Some(dt(self.dem.date_modification))
    }
    async fn champ_descriptors(&self) -> Vec<ChampDescriptor> {
        descriptors(&self.dem.champs)
    }
    async fn annotation_descriptors(&self) -> Vec<ChampDescriptor> {
        descriptors(&self.dem.annotations)
    }
}

/// What DS says of a démarche from a dossier.
pub(crate) struct DemarcheDescriptor {
    dem: Arc<DemarcheRt>,
}

#[Object]
impl DemarcheDescriptor {
    async fn id(&self) -> ID {
        ID(gid("Procedure", self.dem.number))
    }
    async fn number(&self) -> i32 {
        self.dem.number
    }
    async fn title(&self) -> &str {
        &self.dem.title
    }
    async fn description(&self) -> &str {
        &self.dem.description
    }
    async fn state(&self) -> DemarcheState {
        self.dem.state
    }
    async fn date_creation(&self) -> DateTimeScalar {
        dt(self.dem.date_creation)
    }
    async fn date_derniere_modification(&self) -> DateTimeScalar {
        dt(self.dem.date_modification)
    }
    async fn revision(&self) -> Revision {
        Revision {
            dem: self.dem.clone(),
        }
    }
    async fn opendata(&self) -> bool {
        false
    }
    async fn tags(&self) -> Vec<String> {
        Vec::new()
    }
    async fn zones(&self) -> Vec<String> {
        Vec::new()
    }
    async fn duree_conservation_dossiers(&self) -> i32 {
        12
    }
}

/// A user profile (instructeur or applicant).
#[derive(SimpleObject, Clone)]
pub(crate) struct Profile {
    id: ID,
    email: String,
}

/// A groupe instructeur.
#[derive(SimpleObject, Clone)]
pub(crate) struct GroupeInstructeur {
    id: ID,
    number: i32,
    label: String,
    closed: bool,
    instructeurs: Vec<Profile>,
}

impl GroupeInstructeur {
    fn from_rt(store: &Store, g: &GroupeRt) -> Self {
        GroupeInstructeur {
            id: ID(gid("GroupeInstructeur", g.number)),
            number: g.number,
            label: g.label.clone(),
            closed: false,
            instructeurs: g
                .instructeurs
                .iter()
                .filter_map(|i| {
                    store.instructeurs.get(i).map(|email| Profile {
                        id: ID(gid("Instructeur", i)),
                        email: email.clone(),
                    })
                })
                .collect(),
        }
    }
}

/// A label of a démarche.
#[derive(SimpleObject, Clone)]
pub(crate) struct Label {
    id: ID,
    name: String,
    color: LabelColorEnum,
}

impl Label {
    fn from_rt(l: &LabelRt) -> Self {
        Label {
            id: ID(gid("Label", l.id)),
            name: l.name.clone(),
            color: l.color,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paging

/// Relay page information.
#[derive(SimpleObject, Clone, Default)]
pub(crate) struct PageInfo {
    end_cursor: Option<String>,
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
}

const MAX_PAGE_SIZE: usize = 100;

struct PageArgs {
    first: Option<usize>,
    last: Option<usize>,
    after: Option<(DateTime<Utc>, i64)>,
    before: Option<(DateTime<Utc>, i64)>,
    desc: bool,
}

struct Page<T> {
    items: Vec<(String, T)>,
    info: PageInfo,
}

fn encode_cursor(at: DateTime<Utc>, id: i64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{};{id}", utc_nanos(at)))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, i64)> {
    use base64::Engine as _;
    let invalid = || coded("bad_request", format!("Invalid cursor: {cursor}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(cursor))
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ts, id) = text.split_once(';').ok_or_else(invalid)?;
    let at = DateTime::parse_from_rfc3339(ts).map_err(|_| invalid())?;
    let id = id.parse().map_err(|_| invalid())?;
    Ok((at.with_timezone(&Utc), id))
}

impl PageArgs {
    fn new(
        first: Option<i32>,
        last: Option<i32>,
        after: Option<String>,
        before: Option<String>,
        order: Option<Order>,
    ) -> Result<Self> {
        let desc = order == Some(Order::Desc);
        if first.is_some() && last.is_some() {
            return Err(coded(
                "bad_request",
                "Arguments \"first\" and \"last\" are exclusive",
            ));
        }
        if after.is_some() && before.is_some() {
            return Err(coded(
                "bad_request",
                "Arguments \"before\" and \"after\" are exclusive",
            ));
        }
        if last.is_some() && desc {
            return Err(coded(
                "bad_request",
                "Argument \"last\" is not allowed with \"order: DESC\"",
            ));
        }
        let size = |n: Option<i32>, name: &str| -> Result<Option<usize>> {
            match n {
                Some(n) if n < 0 => Err(coded(
                    "bad_request",
                    format!("Argument \"{name}\" must be a positive number"),
                )),
                Some(n) => Ok(Some(usize::try_from(n).unwrap_or(0).min(MAX_PAGE_SIZE))),
                None => Ok(None),
            }
        };
        Ok(PageArgs {
            first: size(first, "first")?,
            last: size(last, "last")?,
            after: after.as_deref().map(decode_cursor).transpose()?,
            before: before.as_deref().map(decode_cursor).transpose()?,
            desc,
        })
    }

    /// Sorts by `(key, id)`, keeps what lies strictly between the cursors, then cuts the page.
    fn paginate<T: Clone>(&self, items: &mut [(DateTime<Utc>, i64, T)]) -> Result<Page<T>> {
        items.sort_by_key(|a| (a.0, a.1));
        if self.desc {
            items.reverse();
        }
        let desc = self.desc;
        let beyond = |k: (DateTime<Utc>, i64), c: (DateTime<Utc>, i64)| {
            if desc { k < c } else { k > c }
        };
        let mut rest: Vec<&(DateTime<Utc>, i64, T)> = items
            .iter()
            .filter(|i| self.after.is_none_or(|c| beyond((i.0, i.1), c)))
            .filter(|i| self.before.is_none_or(|c| beyond(c, (i.0, i.1))))
            .collect();
        let mut info = PageInfo::default();
        if let Some(n) = self.last {
            if rest.len() > n {
                rest.drain(..rest.len() - n);
                info.has_previous_page = true;
            }
        } else {
            let n = self.first.unwrap_or(MAX_PAGE_SIZE);
            if rest.len() > n {
                rest.truncate(n);
                info.has_next_page = true;
            }
        }
        let items: Vec<(String, T)> = rest
            .into_iter()
            .map(|(at, id, t)| (encode_cursor(*at, *id), t.clone()))
            .collect();
        info.start_cursor = items.first().map(|i| i.0.clone());
        info.end_cursor = items.last().map(|i| i.0.clone());
        Ok(Page { items, info })
    }
}

/// A page of dossiers.
#[derive(SimpleObject)]
pub(crate) struct DossierConnection {
    edges: Option<Vec<Option<DossierEdge>>>,
    nodes: Option<Vec<Option<Dossier>>>,
    page_info: PageInfo,
}

/// A dossier and its cursor.
#[derive(SimpleObject)]
pub(crate) struct DossierEdge {
    cursor: String,
    node: Option<Dossier>,
}

/// A deleted (or pending deletion) dossier.
#[derive(SimpleObject, Clone)]
pub(crate) struct DeletedDossier {
    id: ID,
    number: i32,
    state: DossierState,
    reason: DeletedDossierReason,
    date_supression: DateTimeScalar,
}

impl DeletedDossier {
    fn new(
        number: i32,
        state: DossierState,
        reason: DeletedDossierReason,
        at: DateTime<Utc>,
    ) -> Self {
        DeletedDossier {
            id: ID(gid("DeletedDossier", number)),
            number,
            state,
            reason,
            date_supression: dt(at),
        }
    }
}

/// A page of deleted dossiers.
#[derive(SimpleObject)]
pub(crate) struct DeletedDossierConnection {
    edges: Option<Vec<Option<DeletedDossierEdge>>>,
    nodes: Option<Vec<Option<DeletedDossier>>>,
    page_info: PageInfo,
}

/// A deleted dossier and its cursor.
#[derive(SimpleObject)]
pub(crate) struct DeletedDossierEdge {
    cursor: String,
    node: Option<DeletedDossier>,
}

impl DeletedDossierConnection {
    fn from_page(page: Page<DeletedDossier>) -> Self {
        let edges: Vec<DeletedDossierEdge> = page
            .items
            .into_iter()
            .map(|(cursor, node)| DeletedDossierEdge {
                cursor,
                node: Some(node),
            })
            .collect();
        DeletedDossierConnection {
            nodes: Some(edges.iter().map(|e| e.node.clone()).collect()),
            edges: Some(edges.into_iter().map(Some).collect()),
            page_info: page.info,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dossier

/// A dossier: a snapshot taken when it was resolved.
#[derive(Clone)]
pub(crate) struct Dossier {
    d: Arc<DossierRt>,
    dem: Arc<DemarcheRt>,
    groupe: GroupeInstructeur,
}

impl Dossier {
    fn new(store: &Store, d: &Arc<DossierRt>) -> Result<Dossier> {
        let dem = store
            .demarches
            .get(&d.demarche)
            .ok_or_else(|| coded("not_found", "Demarche not found"))?;
        let groupe = dem
            .groupes
            .iter()
            .find(|g| g.number == d.groupe)
            .map(|g| GroupeInstructeur::from_rt(store, g))
            .ok_or_else(|| coded("not_found", "GroupeInstructeur not found"))?;
        Ok(Dossier {
            d: d.clone(),
            dem: dem.clone(),
            groupe,
        })
    }
}

fn wanted_stable_id(id: Option<&ID>) -> Option<Option<u64>> {
    id.map(|id| {
        decode_gid(id)
            .filter(|(class, _)| class == "Champ")
            .and_then(|(_, rest)| rest.parse().ok())
    })
}

fn build_list(
    descs: &[Descriptor],
    values: &std::collections::HashMap<u64, ChampRt>,
    default_at: DateTime<Utc>,
    frags: Fragments,
    id: Option<&ID>,
) -> Vec<Champ> {
    let wanted = wanted_stable_id(id);
    descs
        .iter()
        .filter(|d| wanted.is_none_or(|w| w == Some(d.stable_id)))
        .map(|d| build_champ(d, values.get(&d.stable_id), None, default_at, frags))
        .collect()
}

#[Object]
impl Dossier {
    async fn id(&self) -> ID {
        ID(gid("Dossier", self.d.number))
    }
    async fn number(&self) -> i32 {
        self.d.number
    }
    async fn state(&self) -> DossierState {
        self.d.state
    }
    async fn archived(&self) -> bool {
        self.d.archived
    }
    async fn prefilled(&self) -> bool {
        false
    }
    async fn connection_usager(&self) -> ConnectionUsager {
        ConnectionUsager::Password
    }
    async fn date_depot(&self) -> DateTimeScalar {
        dt(self.d.date_depot)
    }
    async fn date_passage_en_construction(&self) -> DateTimeScalar {
        dt(self.d.date_depot)
    }
    async fn date_passage_en_instruction(&self) -> Option<DateTimeScalar> {
        self.d.date_en_instruction.map(dt)
    }
    async fn date_traitement(&self) -> Option<DateTimeScalar> {
        self.d.date_traitement.map(dt)
    }
    async fn date_derniere_modification(&self) -> DateTimeScalar {
        dt(self.d.updated_at)
    }
    async fn date_derniere_modification_champs(&self) -> DateTimeScalar {
        dt(self.d.champs_updated_at)
    }
    async fn date_derniere_modification_annotations(&self) -> DateTimeScalar {
        dt(self.d.annotations_updated_at)
    }
    async fn date_suppression_par_usager(&self) -> Option<DateTimeScalar> {
        None
    }
    async fn date_suppression_par_administration(&self) -> Option<DateTimeScalar> {
        None
    }
    async fn motivation(&self) -> Option<&str> {
        self.d.motivation.as_deref()
    }
    async fn depose_par_un_tiers(&self) -> Option<bool> {
        Some(false)
    }
    async fn demandeur(&self) -> Demandeur {
        Demandeur::from_data(self.d.number, &self.d.demandeur)
    }
    async fn usager(&self) -> Profile {
        Profile {
            id: ID(gid("User", self.d.number)),
            email: self.d.usager_email.clone(),
        }
    }
    async fn instructeurs(&self) -> Vec<Profile> {
        Vec::new()
    }
    async fn groupe_instructeur(&self) -> &GroupeInstructeur {
        &self.groupe
    }
    async fn demarche(&self) -> DemarcheDescriptor {
        DemarcheDescriptor {
            dem: self.dem.clone(),
        }
    }
    #[graphql(deprecation = "Utilisez le champ `demarche.revision` à la place.")]
    async fn revision(&self) -> Revision {
        Revision {
            dem: self.dem.clone(),
        }
    }
    async fn labels(&self) -> Vec<Label> {
        self.dem
            .labels
            .iter()
            .filter(|l| self.d.labels.contains(&l.id))
            .map(Label::from_rt)
            .collect()
    }
    async fn messages(&self, id: Option<ID>) -> Vec<Message> {
        self.d
            .messages
            .iter()
            .map(Message::from_rt)
            .filter(|m| id.as_ref().is_none_or(|id| *id == m.id))
            .collect()
    }
    async fn traitements(&self) -> Vec<Traitement> {
        self.d
            .traitements
            .iter()
            .map(|t| Traitement {
                id: ID(gid("Traitement", t.id)),
                event: t.event,
                state: t.state,
                date_traitement: dt(t.at),
                email_agent_traitant: t.email.clone(),
                motivation: t.motivation.clone(),
            })
            .collect()
    }
    async fn champs(&self, ctx: &Context<'_>, id: Option<ID>) -> Vec<Champ> {
        build_list(
            &self.dem.champs,
            &self.d.champs,
            self.d.date_depot,
            fragments(ctx),
            id.as_ref(),
        )
    }
    async fn annotations(&self, ctx: &Context<'_>, id: Option<ID>) -> Vec<Champ> {
        build_list(
            &self.dem.annotations,
            &self.d.annotations,
            self.d.date_depot,
            fragments(ctx),
            id.as_ref(),
        )
    }
}

/// A message between the administration and the applicant.
#[derive(SimpleObject, Clone)]
pub(crate) struct Message {
    id: ID,
    body: String,
    created_at: DateTimeScalar,
    email: String,
    attachments: Vec<File>,
    discarded_at: Option<DateTimeScalar>,
}

impl Message {
    fn from_rt(m: &MessageRt) -> Self {
        Message {
            id: ID(gid("Commentaire", m.id)),
            body: m.body.clone(),
            created_at: dt(m.created_at),
            email: m.email.clone(),
            attachments: Vec::new(),
            discarded_at: None,
        }
    }
}

/// One step of a dossier's history.
#[derive(SimpleObject, Clone)]
pub(crate) struct Traitement {
    id: ID,
    event: TraitementEvent,
    #[graphql(deprecation = "Utilisez le champ `event` à la place.")]
    state: DossierState,
    date_traitement: DateTimeScalar,
    email_agent_traitant: Option<String>,
    motivation: Option<String>,
}

/// An attached file.
#[derive(SimpleObject, Clone)]
pub(crate) struct File {
    filename: String,
    content_type: String,
    checksum: String,
    byte_size_big_int: BigIntScalar,
    #[graphql(deprecation = "Utilisez le champ `byteSizeBigInt` à la place.")]
    byte_size: i32,
    url: UrlScalar,
    created_at: DateTimeScalar,
    virus_scan_result: String,
}

impl File {
    fn from_data(f: &FileData, at: DateTime<Utc>) -> Self {
        File {
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            checksum: f.checksum.clone(),
            byte_size_big_int: BigIntScalar(f.byte_size.to_string()),
            byte_size: i32::try_from(f.byte_size).unwrap_or(i32::MAX),
            url: UrlScalar(format!(
                "http://127.0.0.1/rails/active_storage/blobs/{}",
                f.filename
            )),
            created_at: dt(at),
            virus_scan_result: "safe".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Demandeur

/// A geocoded address.
#[derive(SimpleObject, Clone)]
pub(crate) struct Address {
    label: String,
    #[graphql(name = "type")]
    kind: AddressType,
    street_address: Option<String>,
    street_number: Option<String>,
    street_name: Option<String>,
    postal_code: String,
    city_name: String,
    city_code: String,
    department_code: Option<String>,
    department_name: Option<String>,
    region_code: Option<String>,
    region_name: Option<String>,
    country_code: Option<String>,
    country_name: Option<String>,
    geometry: Option<GeoJson>,
}

impl Address {
    fn from_data(a: &AddressData) -> Self {
        let region_code = a.region_code.clone().or_else(|| {
            a.department_code
                .as_deref()
                .and_then(geo::region_of)
                .map(str::to_owned)
        });
        Address {
            label: a.label.clone(),
            kind: a.kind.unwrap_or(AddressType::Housenumber),
            street_address: a.street_address.clone(),
            street_number: a.street_number.clone(),
            street_name: a.street_name.clone(),
            postal_code: a.postal_code.clone(),
            city_name: a.city_name.clone(),
            city_code: a.city_code.clone(),
            department_name: a.department_name.clone().or_else(|| {
                a.department_code
                    .as_deref()
                    .and_then(geo::departement_name)
                    .map(str::to_owned)
            }),
            department_code: a.department_code.clone(),
            region_name: a.region_name.clone().or_else(|| {
                region_code
                    .as_deref()
                    .and_then(geo::region_name)
                    .map(str::to_owned)
            }),
            region_code,
            country_code: Some("FR".into()),
            country_name: Some("France".into()),
            geometry: None,
        }
    }
}

/// Legal data of a company.
#[derive(SimpleObject, Clone)]
pub(crate) struct Entreprise {
    siren: String,
    raison_sociale: String,
    siret_siege_social: String,
    forme_juridique: Option<String>,
    forme_juridique_code: Option<String>,
    nom_commercial: String,
    inline_adresse: String,
    date_creation: Option<DateScalar>,
}

/// Data of an association from the RNA.
#[derive(SimpleObject, Clone)]
pub(crate) struct Association {
    rna: String,
    titre: String,
    objet: Option<String>,
    date_creation: Option<DateScalar>,
    date_declaration: Option<DateScalar>,
    date_publication: Option<DateScalar>,
}

/// A legal person (an établissement).
#[derive(SimpleObject, Clone)]
pub(crate) struct PersonneMorale {
    id: ID,
    siret: String,
    siege_social: bool,
    naf: Option<String>,
    libelle_naf: String,
    address: Address,
    entreprise: Option<Entreprise>,
    association: Option<Association>,
}

impl PersonneMorale {
    fn from_data(id: String, e: &EtablissementData) -> Self {
        PersonneMorale {
            id: ID(id),
            siret: e.siret.clone(),
            siege_social: e.siege_social,
            naf: e.naf.clone(),
            libelle_naf: e.libelle_naf.clone(),
            address: Address::from_data(&e.address),
            entreprise: e.entreprise.as_ref().map(|x| Entreprise {
                siren: x.siren.clone(),
                raison_sociale: x.raison_sociale.clone(),
                siret_siege_social: x.siret_siege_social.clone(),
                forme_juridique: x.forme_juridique.clone(),
                forme_juridique_code: x.forme_juridique_code.clone(),
                nom_commercial: x.nom_commercial.clone(),
                inline_adresse: x.inline_adresse.clone(),
                date_creation: x.date_creation.map(DateScalar),
            }),
            association: e.association.as_ref().map(|a| Association {
                rna: a.rna.clone(),
                titre: a.titre.clone(),
                objet: a.objet.clone(),
                date_creation: a.date_creation.map(DateScalar),
                date_declaration: a.date_declaration.map(DateScalar),
                date_publication: a.date_publication.map(DateScalar),
            }),
        }
    }
}

/// A natural person.
#[derive(SimpleObject, Clone)]
pub(crate) struct PersonnePhysique {
    id: ID,
    civilite: Option<Civilite>,
    nom: String,
    prenom: String,
    email: Option<String>,
    date_de_naissance: Option<DateScalar>,
}

/// A legal person whose data could not be fetched.
#[derive(SimpleObject, Clone)]
pub(crate) struct PersonneMoraleIncomplete {
    id: ID,
    siret: String,
}

/// Who filed the dossier.
#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "&ID"))]
#[allow(clippy::enum_variant_names)]
pub(crate) enum Demandeur {
    PersonnePhysique(PersonnePhysique),
    PersonneMorale(Box<PersonneMorale>),
    PersonneMoraleIncomplete(PersonneMoraleIncomplete),
}

impl Demandeur {
    fn from_data(number: i32, d: &DemandeurData) -> Self {
        match d {
            DemandeurData::PersonnePhysique {
                civilite,
                nom,
                prenom,
                email,
            } => Demandeur::PersonnePhysique(PersonnePhysique {
                id: ID(gid("Individual", number)),
                civilite: *civilite,
                nom: nom.clone(),
                prenom: prenom.clone(),
                email: email.clone(),
                date_de_naissance: None,
            }),
            DemandeurData::PersonneMorale(e) => Demandeur::PersonneMorale(Box::new(
                PersonneMorale::from_data(gid("Etablissement", number), e),
            )),
            DemandeurData::PersonneMoraleIncomplete { siret } => {
                Demandeur::PersonneMoraleIncomplete(PersonneMoraleIncomplete {
                    id: ID(gid("Etablissement", number)),
                    siret: siret.clone(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Champs

/// A département.
#[derive(SimpleObject, Clone)]
pub(crate) struct Departement {
    name: String,
    code: String,
}

/// A région.
#[derive(SimpleObject, Clone)]
pub(crate) struct Region {
    name: String,
    code: String,
}

/// A commune.
#[derive(SimpleObject, Clone)]
pub(crate) struct Commune {
    name: String,
    code: String,
    postal_code: Option<String>,
}

/// An RNA record.
#[derive(SimpleObject, Clone)]
#[graphql(name = "RNA")]
pub(crate) struct Rna {
    id: String,
    title: Option<String>,
    address: Option<Address>,
}

/// A country.
#[derive(SimpleObject, Clone)]
pub(crate) struct Pays {
    name: String,
    code: String,
}

/// An EPCI (intercommunal body).
#[derive(SimpleObject, Clone)]
pub(crate) struct Epci {
    name: String,
    code: String,
}

/// An RNF (répertoire national des fondations) record.
#[derive(SimpleObject, Clone)]
#[graphql(name = "RNF")]
pub(crate) struct Rnf {
    id: String,
    title: Option<String>,
    address: Option<Address>,
}

/// A legal commitment (Chorus).
#[derive(SimpleObject, Clone)]
pub(crate) struct EngagementJuridique {
    montant_engage: Option<String>,
    montant_paye: Option<String>,
}

/// A GeoJSON geometry.
#[derive(SimpleObject, Clone)]
#[graphql(name = "GeoJSON")]
pub(crate) struct GeoJson {
    #[graphql(name = "type")]
    kind: String,
    coordinates: CoordinatesScalar,
}

/// A cadastral parcel drawn on a carte champ.
#[derive(SimpleObject, Clone)]
pub(crate) struct ParcelleCadastrale {
    id: ID,
    source: GeoAreaSource,
    description: Option<String>,
    geometry: GeoJson,
    commune: String,
    numero: String,
    prefixe: String,
    section: String,
    surface: String,
}

/// An area drawn by the applicant on a carte champ.
#[derive(SimpleObject, Clone)]
pub(crate) struct SelectionUtilisateur {
    id: ID,
    source: GeoAreaSource,
    description: Option<String>,
    geometry: GeoJson,
}

/// An area of a carte champ.
#[derive(Interface, Clone)]
#[graphql(
    field(name = "id", ty = "&ID"),
    field(name = "source", ty = "&GeoAreaSource"),
    field(name = "description", ty = "&Option<String>"),
    field(name = "geometry", ty = "&GeoJson")
)]
pub(crate) enum GeoArea {
    ParcelleCadastrale(ParcelleCadastrale),
    SelectionUtilisateur(SelectionUtilisateur),
}

impl GeoArea {
    fn from_data(champ_id: u64, i: usize, a: &GeoAreaData) -> Self {
        let id = ID(gid("GeoArea", format!("{champ_id}-{i}")));
        let geometry = GeoJson {
            kind: a.geometry.kind.clone(),
            coordinates: CoordinatesScalar(
                async_graphql::Value::from_json(a.geometry.coordinates.clone())
                    .unwrap_or(async_graphql::Value::Null),
            ),
        };
        match a.source.unwrap_or(GeoAreaSource::SelectionUtilisateur) {
            GeoAreaSource::Cadastre => GeoArea::ParcelleCadastrale(ParcelleCadastrale {
                id,
                source: GeoAreaSource::Cadastre,
                description: a.description.clone(),
                geometry,
                commune: a.commune.clone(),
                numero: a.numero.clone(),
                prefixe: a.prefixe.clone(),
                section: a.section.clone(),
                surface: a.surface.clone(),
            }),
            source => GeoArea::SelectionUtilisateur(SelectionUtilisateur {
                id,
                source,
                description: a.description.clone(),
                geometry,
            }),
        }
    }
}

fn commune_of(c: &CommuneData) -> Commune {
    Commune {
        name: c.name.clone(),
        code: c.code.clone(),
        postal_code: c.postal_code.clone(),
    }
}

/// The département of an INSEE commune code (`29019` → 29, `2A004` → 2A, `97411` → 974).
fn departement_of_commune(code: &str) -> Option<Departement> {
    let len = if code.starts_with("97") { 3 } else { 2 };
    let dep = code.get(..len)?;
    geo::departement_name(dep).map(|name| Departement {
        name: name.to_owned(),
        code: dep.to_owned(),
    })
}

fn departement_by_code(code: Option<&str>) -> Option<Departement> {
    let code = code?;
    geo::departement_name(code).map(|name| Departement {
        name: name.to_owned(),
        code: code.to_owned(),
    })
}

/// The commune and département of an address (RNA, RNF, address champs).
fn address_commune(a: &AddressData) -> Commune {
    Commune {
        name: a.city_name.clone(),
        code: a.city_code.clone(),
        postal_code: Some(a.postal_code.clone()),
    }
}

fn address_departement(a: &AddressData) -> Option<Departement> {
    let code = a.department_code.clone()?;
    let name = a
        .department_name
        .clone()
        .or_else(|| geo::departement_name(&code).map(str::to_owned))?;
    Some(Departement { name, code })
}

/// A row of a repetition champ.
#[derive(SimpleObject, Clone)]
pub(crate) struct Row {
    id: ID,
    champs: Vec<Champ>,
}

/// What every champ type shares.
#[derive(Clone)]
pub(crate) struct ChampData {
    id: String,
    stable_id: u64,
    label: String,
    string_value: Option<String>,
    updated_at: DateTime<Utc>,
    value: Val,
    rows: Vec<Row>,
    /// `HeaderSectionChamp.level`.
    level: i32,
}

macro_rules! champ_types {
    ($($name:ident $(= $gql:literal)? { $($extra:tt)* })*) => {
        $(
            /// A concrete champ type.
            #[derive(Clone)]
            pub(crate) struct $name(ChampData);

            #[Object $((name = $gql))?]
            impl $name {
                async fn id(&self) -> ID {
                    ID(self.0.id.clone())
                }
                async fn champ_descriptor_id(&self) -> String {
                    gid("Champ", self.0.stable_id)
                }
                async fn label(&self) -> &str {
                    &self.0.label
                }
                async fn string_value(&self) -> Option<&str> {
                    self.0.string_value.as_deref()
                }
                async fn updated_at(&self) -> DateTimeScalar {
                    dt(self.0.updated_at)
                }
                async fn prefilled(&self) -> bool {
                    false
                }
                $($extra)*
            }
        )*

        /// A champ (public) or annotation (private) of a dossier.
        #[derive(Interface, Clone)]
        #[graphql(
            field(name = "id", ty = "ID"),
            field(name = "champ_descriptor_id", ty = "String"),
            field(name = "label", ty = "&str"),
            field(name = "string_value", ty = "Option<&str>"),
            field(name = "updated_at", ty = "DateTimeScalar"),
            field(name = "prefilled", ty = "bool")
        )]
        #[allow(clippy::enum_variant_names)]
        pub(crate) enum Champ {
            $($name($name),)*
        }
    };
}

fn paris_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&chrono_tz::Europe::Paris).date_naive()
}

fn date_to_instant(d: NaiveDate) -> Option<DateTime<Utc>> {
    chrono_tz::Europe::Paris
        .from_local_datetime(&d.and_time(NaiveTime::MIN))
        .earliest()
        .map(|x| x.with_timezone(&Utc))
}

champ_types! {
    TextChamp {
        async fn value(&self) -> Option<String> {
            match &self.0.value {
                Val::Text(s) => Some(s.clone()),
                Val::Empty => None,
                _ => self.0.string_value.clone(),
            }
        }
    }
    CheckboxChamp {
        async fn value(&self) -> bool {
            matches!(self.0.value, Val::Bool(true))
        }
    }
    YesNoChamp {
        async fn value(&self) -> Option<bool> {
            match self.0.value {
                Val::Bool(b) => Some(b),
                _ => None,
            }
        }
    }
    DateChamp {
        async fn date(&self) -> Option<DateScalar> {
            match self.0.value {
                Val::Date(d) => Some(DateScalar(d)),
                Val::DateTime(at) => Some(DateScalar(paris_date(at))),
                _ => None,
            }
        }
        #[graphql(deprecation = "Utilisez le champ `date` ou le fragment `DatetimeChamp` à la place.")]
        async fn value(&self) -> Option<DateTimeScalar> {
            match self.0.value {
                Val::Date(d) => date_to_instant(d).map(dt),
                Val::DateTime(at) => Some(dt(at)),
                _ => None,
            }
        }
    }
    DatetimeChamp {
        async fn datetime(&self) -> Option<DateTimeScalar> {
            match self.0.value {
                Val::DateTime(at) => Some(dt(at)),
                _ => None,
            }
        }
    }
    IntegerNumberChamp {
        async fn value(&self) -> Option<BigIntScalar> {
            match &self.0.value {
                Val::Int(s) => Some(BigIntScalar(s.clone())),
                _ => None,
            }
        }
    }
    DecimalNumberChamp {
        async fn value(&self) -> Option<f64> {
            match self.0.value {
                Val::Decimal(f) => Some(f),
                _ => None,
            }
        }
    }
    DropDownListChamp {
        async fn value(&self) -> Option<&str> {
            match &self.0.value {
                Val::Text(s) => Some(s),
                _ => None,
            }
        }
    }
    MultipleDropDownListChamp {
        async fn values(&self) -> Vec<String> {
            match &self.0.value {
                Val::Strings(v) => v.clone(),
                _ => Vec::new(),
            }
        }
    }
    DepartementChamp {
        async fn departement(&self) -> Option<Departement> {
            match &self.0.value {
                Val::Departement { code, name } => Some(Departement {
                    name: name.clone(),
                    code: code.clone(),
                }),
                _ => None,
            }
        }
    }
    RegionChamp {
        async fn region(&self) -> Option<Region> {
            match &self.0.value {
                Val::Region { code, name } => Some(Region {
                    name: name.clone(),
                    code: code.clone(),
                }),
                _ => None,
            }
        }
    }
    RNAChamp = "RNAChamp" {
        async fn rna(&self) -> Option<Rna> {
            match &self.0.value {
                Val::Rna(r) => Some(Rna {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    address: r.address.as_ref().map(Address::from_data),
                }),
                _ => None,
            }
        }
        async fn commune(&self) -> Option<Commune> {
            match &self.0.value {
                Val::Rna(r) => r.address.as_ref().map(|a| Commune {
                    name: a.city_name.clone(),
                    code: a.city_code.clone(),
                    postal_code: Some(a.postal_code.clone()),
                }),
                _ => None,
            }
        }
        async fn departement(&self) -> Option<Departement> {
            match &self.0.value {
                Val::Rna(r) => r.address.as_ref().and_then(|a| {
                    let code = a.department_code.clone()?;
                    let name = a
                        .department_name
                        .clone()
                        .or_else(|| geo::departement_name(&code).map(str::to_owned))?;
                    Some(Departement { name, code })
                }),
                _ => None,
            }
        }
    }
    SiretChamp {
        async fn etablissement(&self) -> Option<PersonneMorale> {
            match &self.0.value {
                Val::Siret(e) => Some(PersonneMorale::from_data(
                    gid("Etablissement", e.siret.as_str()),
                    e,
                )),
                _ => None,
            }
        }
    }
    RepetitionChamp {
        async fn rows(&self) -> &[Row] {
            &self.0.rows
        }
        #[graphql(deprecation = "Utilisez le champ `rows` à la place.")]
        async fn champs(&self) -> Vec<Champ> {
            self.0.rows.iter().flat_map(|r| r.champs.clone()).collect()
        }
    }
    DossierLinkChamp {
        async fn dossier(&self, ctx: &Context<'_>) -> Result<Option<Dossier>> {
            let Val::Link(n) = self.0.value else {
                return Ok(None);
            };
            let store = lock(&shared(ctx)?.store);
            match store.visible_dossier(n) {
                Some(d) if caller(ctx).can_see(d.demarche) => Dossier::new(&store, d).map(Some),
                _ => Ok(None),
            }
        }
    }
    LinkedDropDownListChamp {
        async fn primary_value(&self) -> Option<&str> {
            match &self.0.value {
                Val::Linked { primary, .. } => primary.as_deref(),
                _ => None,
            }
        }
        async fn secondary_value(&self) -> Option<&str> {
            match &self.0.value {
                Val::Linked { secondary, .. } => secondary.as_deref(),
                _ => None,
            }
        }
    }
    CiviliteChamp {
        async fn value(&self) -> Option<Civilite> {
            match self.0.value {
                Val::Civilite(c) => Some(c),
                _ => None,
            }
        }
    }
    AddressChamp {
        async fn address(&self) -> Option<Address> {
            match &self.0.value {
                Val::Address(a) => Some(Address::from_data(a)),
                _ => None,
            }
        }
        async fn commune(&self) -> Option<Commune> {
            match &self.0.value {
                Val::Address(a) => Some(address_commune(a)),
                _ => None,
            }
        }
        async fn departement(&self) -> Option<Departement> {
            match &self.0.value {
                Val::Address(a) => address_departement(a),
                _ => None,
            }
        }
    }
    CommuneChamp {
        async fn commune(&self) -> Option<Commune> {
            match &self.0.value {
                Val::Commune(c) => Some(commune_of(c)),
                _ => None,
            }
        }
        async fn departement(&self) -> Option<Departement> {
            match &self.0.value {
                Val::Commune(c) => departement_of_commune(&c.code),
                _ => None,
            }
        }
    }
    PaysChamp {
        async fn pays(&self) -> Option<Pays> {
            match &self.0.value {
                Val::Pays { code, name } => Some(Pays {
                    name: name.clone(),
                    code: code.clone(),
                }),
                _ => None,
            }
        }
    }
    EpciChamp {
        async fn epci(&self) -> Option<Epci> {
            match &self.0.value {
                Val::Epci(e) => Some(Epci {
                    name: e.name.clone(),
                    code: e.code.clone(),
                }),
                _ => None,
            }
        }
        async fn departement(&self) -> Option<Departement> {
            match &self.0.value {
                Val::Epci(e) => departement_by_code(e.departement.as_deref()),
                _ => None,
            }
        }
    }
    RNFChamp = "RNFChamp" {
        async fn rnf(&self) -> Option<Rnf> {
            match &self.0.value {
                Val::Rnf(r) => Some(Rnf {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    address: r.address.as_ref().map(Address::from_data),
                }),
                _ => None,
            }
        }
        async fn commune(&self) -> Option<Commune> {
            match &self.0.value {
                Val::Rnf(r) => r.address.as_ref().map(address_commune),
                _ => None,
            }
        }
        async fn departement(&self) -> Option<Departement> {
            match &self.0.value {
                Val::Rnf(r) => r.address.as_ref().and_then(address_departement),
                _ => None,
            }
        }
    }
    EngagementJuridiqueChamp {
        async fn engagement_juridique(&self) -> Option<EngagementJuridique> {
            match &self.0.value {
                Val::EngagementJuridique(e) => Some(EngagementJuridique {
                    montant_engage: e.montant_engage.clone(),
                    montant_paye: e.montant_paye.clone(),
                }),
                _ => None,
            }
        }
    }
    TitreIdentiteChamp {
        async fn filled(&self) -> bool {
            matches!(self.0.value, Val::Bool(true))
        }
        async fn grant_type(&self) -> TitreIdentiteGrantType {
            TitreIdentiteGrantType::PieceJustificative
        }
    }
    CarteChamp {
        async fn geo_areas(&self) -> Vec<GeoArea> {
            match &self.0.value {
                Val::GeoAreas(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, a)| GeoArea::from_data(self.0.stable_id, i, a))
                    .collect(),
                _ => Vec::new(),
            }
        }
    }
    HeaderSectionChamp {
        async fn level(&self) -> i32 {
            self.0.level
        }
    }
    ExplicationChamp {}
    PieceJustificativeChamp {
        async fn files(&self) -> Vec<File> {
            match &self.0.value {
                Val::Files(f) => f.iter().map(|f| File::from_data(f, self.0.updated_at)).collect(),
                _ => Vec::new(),
            }
        }
        #[graphql(deprecation = "Utilisez le champ `files` à la place.")]
        async fn file(&self) -> Option<File> {
            match &self.0.value {
                Val::Files(f) => f.first().map(|f| File::from_data(f, self.0.updated_at)),
                _ => None,
            }
        }
    }
}

const MOIS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

fn french_date(d: NaiveDate) -> String {
    use chrono::Datelike as _;
    let month = MOIS.get(d.month0() as usize).copied().unwrap_or("");
    format!("{:02} {month} {}", d.day(), d.year())
}

/// DS's `stringValue`: the value as displayed, in French.
fn display(value: &Val) -> Option<String> {
    Some(match value {
        Val::Empty => return None,
        Val::Text(s) => s.clone(),
        Val::Bool(b) => if *b { "Oui" } else { "Non" }.to_owned(),
        Val::Date(d) => french_date(*d),
        Val::DateTime(at) => {
            let p = at.with_timezone(&chrono_tz::Europe::Paris);
            format!("{} {}", french_date(p.date_naive()), p.format("%H:%M"))
        }
        Val::Int(s) => s.clone(),
        Val::Decimal(f) => f.to_string().replace('.', ","),
        Val::Strings(v) => v.join(", "),
        Val::Departement { code, name } => format!("{code} – {name}"),
        Val::Region { name, .. } => name.clone(),
        Val::Rna(r) => match &r.title {
            Some(t) => format!("{} ({t})", r.id),
            None => r.id.clone(),
        },
        Val::Siret(e) => e.siret.clone(),
        Val::Rows(_) => return None,
        Val::Link(n) => n.to_string(),
        Val::Files(f) => f
            .iter()
            .map(|f| f.filename.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Val::Civilite(c) => match c {
            Civilite::M => "M.",
            Civilite::Mme => "Mme",
        }
        .to_owned(),
        Val::Linked { primary, secondary } => match (primary.as_deref(), secondary.as_deref()) {
            (None, None) => return None,
            (Some(p), None) => p.to_owned(),
            (None, Some(s)) => s.to_owned(),
            (Some(p), Some(s)) => format!("{p} / {s}"),
        },
        Val::Address(a) => a.label.clone(),
        Val::Commune(c) => match &c.postal_code {
            Some(p) => format!("{} ({p})", c.name),
            None => c.name.clone(),
        },
        Val::Pays { name, .. } => name.clone(),
        Val::Epci(e) => e.name.clone(),
        Val::Rnf(r) => match &r.title {
            Some(t) => format!("{} ({t})", r.id),
            None => r.id.clone(),
        },
        Val::EngagementJuridique(e) => e.montant_engage.clone()?,
        Val::GeoAreas(a) if a.is_empty() => return None,
        Val::GeoAreas(a) => format!("{} élément(s)", a.len()),
    })
}

/// Builds a champ of the type DS would serve for this query's fragments.
fn build_champ(
    desc: &Descriptor,
    champ: Option<&ChampRt>,
    row: Option<&str>,
    default_at: DateTime<Utc>,
    frags: Fragments,
) -> Champ {
    let value = champ.map(|c| c.value.clone()).unwrap_or(Val::Empty);
    let updated_at = champ.map(|c| c.updated_at).unwrap_or(default_at);
    let rows = match &value {
        Val::Rows(rows) => rows
            .iter()
            .map(|r| build_row(desc, r, updated_at, frags))
            .collect(),
        _ => Vec::new(),
    };
    let string_value = match &value {
        Val::Rows(r) if !r.is_empty() => Some(
            rows.iter()
                .map(|_| desc.label.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        v => display(v),
    };
    let data = ChampData {
        id: match row {
            Some(r) => gid("Champ", format!("{}|{r}", desc.stable_id)),
            None => gid("Champ", desc.stable_id),
        },
        stable_id: desc.stable_id,
        label: desc.label.clone(),
        string_value,
        updated_at,
        value,
        rows,
        level: desc.level,
    };
    match desc.kind {
        TypeDeChamp::Text
        | TypeDeChamp::Textarea
        | TypeDeChamp::Email
        | TypeDeChamp::Phone
        | TypeDeChamp::Iban
        | TypeDeChamp::Formatted
        | TypeDeChamp::Referentiel
        | TypeDeChamp::AnnuaireEducation
        | TypeDeChamp::Cnaf
        | TypeDeChamp::Dgfip
        | TypeDeChamp::PoleEmploi
        | TypeDeChamp::Mesri
        | TypeDeChamp::Cojo => Champ::TextChamp(TextChamp(data)),
        TypeDeChamp::Address if frags.address => Champ::AddressChamp(AddressChamp(data)),
        TypeDeChamp::Communes if frags.commune => Champ::CommuneChamp(CommuneChamp(data)),
        TypeDeChamp::Pays if frags.pays => Champ::PaysChamp(PaysChamp(data)),
        TypeDeChamp::HeaderSection if frags.header_section => {
            Champ::HeaderSectionChamp(HeaderSectionChamp(data))
        }
        TypeDeChamp::Explication if frags.explication => {
            Champ::ExplicationChamp(ExplicationChamp(data))
        }
        TypeDeChamp::Address
        | TypeDeChamp::Communes
        | TypeDeChamp::Pays
        | TypeDeChamp::HeaderSection
        | TypeDeChamp::Explication => Champ::TextChamp(TextChamp(data)),
        TypeDeChamp::Civilite => Champ::CiviliteChamp(CiviliteChamp(data)),
        TypeDeChamp::LinkedDropDownList => {
            Champ::LinkedDropDownListChamp(LinkedDropDownListChamp(data))
        }
        TypeDeChamp::Epci => Champ::EpciChamp(EpciChamp(data)),
        TypeDeChamp::Rnf => Champ::RNFChamp(RNFChamp(data)),
        TypeDeChamp::EngagementJuridique => {
            Champ::EngagementJuridiqueChamp(EngagementJuridiqueChamp(data))
        }
        TypeDeChamp::TitreIdentite => Champ::TitreIdentiteChamp(TitreIdentiteChamp(data)),
        TypeDeChamp::Carte => Champ::CarteChamp(CarteChamp(data)),
        TypeDeChamp::Checkbox => Champ::CheckboxChamp(CheckboxChamp(data)),
        TypeDeChamp::YesNo if frags.yes_no => Champ::YesNoChamp(YesNoChamp(data)),
        TypeDeChamp::YesNo => Champ::CheckboxChamp(CheckboxChamp(data)),
        TypeDeChamp::Date => Champ::DateChamp(DateChamp(data)),
        TypeDeChamp::Datetime if frags.datetime => Champ::DatetimeChamp(DatetimeChamp(data)),
        TypeDeChamp::Datetime => Champ::DateChamp(DateChamp(data)),
        TypeDeChamp::IntegerNumber | TypeDeChamp::Number => {
            Champ::IntegerNumberChamp(IntegerNumberChamp(data))
        }
        TypeDeChamp::DecimalNumber => Champ::DecimalNumberChamp(DecimalNumberChamp(data)),
        TypeDeChamp::DropDownList if frags.drop_down_list => {
            Champ::DropDownListChamp(DropDownListChamp(data))
        }
        TypeDeChamp::DropDownList => Champ::TextChamp(TextChamp(data)),
        TypeDeChamp::MultipleDropDownList => {
            Champ::MultipleDropDownListChamp(MultipleDropDownListChamp(data))
        }
        TypeDeChamp::Departements if frags.departement => {
            Champ::DepartementChamp(DepartementChamp(data))
        }
        TypeDeChamp::Regions if frags.region => Champ::RegionChamp(RegionChamp(data)),
        TypeDeChamp::Departements | TypeDeChamp::Regions => Champ::TextChamp(TextChamp(data)),
        TypeDeChamp::Rna => Champ::RNAChamp(RNAChamp(data)),
        TypeDeChamp::Siret => Champ::SiretChamp(SiretChamp(data)),
        TypeDeChamp::Repetition => Champ::RepetitionChamp(RepetitionChamp(data)),
        TypeDeChamp::DossierLink => Champ::DossierLinkChamp(DossierLinkChamp(data)),
        TypeDeChamp::PieceJustificative => {
            Champ::PieceJustificativeChamp(PieceJustificativeChamp(data))
        }
    }
}

fn build_row(desc: &Descriptor, row: &RowRt, at: DateTime<Utc>, frags: Fragments) -> Row {
    Row {
        id: ID(gid("Row", &row.id)),
        champs: desc
            .children
            .iter()
            .map(|c| build_champ(c, row.champs.get(&c.stable_id), Some(&row.id), at, frags))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Champ descriptors

macro_rules! descriptor_types {
    ($($name:ident $(= $gql:literal)? => $kind:ident { $($extra:tt)* })*) => {
        $(
            /// A concrete champ descriptor type.
            #[derive(Clone)]
            pub(crate) struct $name(Descriptor);

            #[Object $((name = $gql))?]
            impl $name {
                async fn id(&self) -> ID {
                    ID(gid("Champ", self.0.stable_id))
                }
                async fn label(&self) -> &str {
                    &self.0.label
                }
                async fn description(&self) -> Option<&str> {
                    self.0.description.as_deref()
                }
                async fn required(&self) -> bool {
                    self.0.required
                }
                #[graphql(name = "type", deprecation = "Utilisez le champ `__typename` à la place.")]
                async fn kind(&self) -> TypeDeChamp {
                    self.0.kind
                }
                #[graphql(deprecation = "Utilisez le champ `RepetitionChampDescriptor.champ_descriptors` à la place.")]
                async fn champ_descriptors(&self) -> Option<Vec<ChampDescriptor>> {
                    (self.0.kind == TypeDeChamp::Repetition).then(|| descriptors(&self.0.children))
                }
                $($extra)*
            }
        )*

        /// The description of a champ of a démarche's form.
        #[derive(Interface, Clone)]
        #[graphql(
            field(name = "id", ty = "ID"),
            field(name = "label", ty = "&str"),
            field(name = "description", ty = "Option<&str>"),
            field(name = "required", ty = "bool"),
            field(name = "type", method = "kind", ty = "TypeDeChamp", deprecation = "Utilisez le champ `__typename` à la place."),
            field(name = "champ_descriptors", ty = "Option<Vec<ChampDescriptor>>", deprecation = "Utilisez le champ `RepetitionChampDescriptor.champ_descriptors` à la place.")
        )]
        #[allow(clippy::enum_variant_names)]
        pub(crate) enum ChampDescriptor {
            $($name($name),)*
        }

        impl ChampDescriptor {
            fn from_descriptor(d: &Descriptor) -> ChampDescriptor {
                match d.kind {
                    $(TypeDeChamp::$kind => ChampDescriptor::$name($name(d.clone())),)*
                }
            }
        }
    };
}

descriptor_types! {
    AddressChampDescriptor => Address {}
    AnnuaireEducationChampDescriptor => AnnuaireEducation {}
    COJOChampDescriptor = "COJOChampDescriptor" => Cojo {}
    CarteChampDescriptor => Carte {}
    CheckboxChampDescriptor => Checkbox {}
    CiviliteChampDescriptor => Civilite {}
    CnafChampDescriptor => Cnaf {}
    CommuneChampDescriptor => Communes {}
    DateChampDescriptor => Date {}
    DatetimeChampDescriptor => Datetime {}
    DecimalNumberChampDescriptor => DecimalNumber {}
    DepartementChampDescriptor => Departements {
        async fn options(&self) -> Option<Vec<Departement>> {
            Some(geo::DEPARTEMENTS.iter().map(|(c, n, _)| Departement { name: (*n).into(), code: (*c).into() }).collect())
        }
    }
    DgfipChampDescriptor => Dgfip {}
    DossierLinkChampDescriptor => DossierLink {}
    DropDownListChampDescriptor => DropDownList {
        async fn options(&self) -> Option<Vec<String>> {
            Some(self.0.options.clone())
        }
        async fn other_option(&self) -> Option<bool> {
            Some(false)
        }
    }
    EmailChampDescriptor => Email {}
    EngagementJuridiqueChampDescriptor => EngagementJuridique {}
    EpciChampDescriptor => Epci {}
    ExplicationChampDescriptor => Explication {
        async fn collapsible_explanation_enabled(&self) -> Option<bool> {
            Some(false)
        }
        async fn collapsible_explanation_text(&self) -> Option<String> {
            None
        }
    }
    FormattedChampDescriptor => Formatted {}
    HeaderSectionChampDescriptor => HeaderSection {
        async fn level(&self) -> i32 {
            self.0.level
        }
    }
    IbanChampDescriptor => Iban {}
    IntegerNumberChampDescriptor => IntegerNumber {}
    LinkedDropDownListChampDescriptor => LinkedDropDownList {
        async fn options(&self) -> Option<Vec<String>> {
            Some(self.0.options.clone())
        }
    }
    MesriChampDescriptor => Mesri {}
    MultipleDropDownListChampDescriptor => MultipleDropDownList {
        async fn options(&self) -> Option<Vec<String>> {
            Some(self.0.options.clone())
        }
    }
    NumberChampDescriptor => Number {}
    PaysChampDescriptor => Pays {
        async fn options(&self) -> Option<Vec<Pays>> {
            Some(pays_options(&self.0.options))
        }
    }
    PhoneChampDescriptor => Phone {}
    PieceJustificativeChampDescriptor => PieceJustificative {
        async fn file_template(&self) -> Option<File> {
            None
        }
    }
    PoleEmploiChampDescriptor => PoleEmploi {}
    RNAChampDescriptor = "RNAChampDescriptor" => Rna {}
    RNFChampDescriptor = "RNFChampDescriptor" => Rnf {}
    ReferentielChampDescriptor => Referentiel {}
    RegionChampDescriptor => Regions {
        async fn options(&self) -> Option<Vec<Region>> {
            Some(geo::REGIONS.iter().map(|(c, n)| Region { name: (*n).into(), code: (*c).into() }).collect())
        }
    }
    RepetitionChampDescriptor => Repetition {}
    SiretChampDescriptor => Siret {}
    TextChampDescriptor => Text {}
    TextareaChampDescriptor => Textarea {}
    TitreIdentiteChampDescriptor => TitreIdentite {}
    YesNoChampDescriptor => YesNo {}
}

/// The countries a pays champ offers: its options written `"<code> - <name>"` (or a bare
/// name), else France alone.
fn pays_options(options: &[String]) -> Vec<Pays> {
    if options.is_empty() {
        return vec![Pays {
            name: "France".into(),
            code: "FR".into(),
        }];
    }
    options
        .iter()
        .map(|o| match o.split_once(" - ") {
            Some((code, name)) => Pays {
                name: name.to_owned(),
                code: code.to_owned(),
            },
            None => Pays {
                name: o.clone(),
                code: String::new(),
            },
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// A validation error of a mutation, reported as data.
#[derive(SimpleObject, Clone)]
pub(crate) struct ValidationError {
    message: String,
}

fn errors_of(messages: &[String]) -> Option<Vec<ValidationError>> {
    (!messages.is_empty()).then(|| {
        messages
            .iter()
            .map(|m| ValidationError { message: m.clone() })
            .collect()
    })
}

const READ_ONLY: &str = "Le jeton utilisé est configuré seulement en lecture";
const NO_RIGHTS: &str = "L’instructeur n’a pas les droits d’accès à ce dossier";

/// The value of one annotation.
#[derive(OneofObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) enum AnnotationValueInput {
    Checkbox(bool),
    Date(DateScalar),
    Datetime(DateTimeScalar),
    DecimalNumber(f64),
    DropDownList(String),
    Email(String),
    IntegerNumber(i32),
    MultipleDropDownList(Vec<String>),
    Repetition(i32),
    Text(String),
    Textarea(String),
    YesNo(bool),
}

impl AnnotationValueInput {
    fn key(&self) -> &'static str {
        match self {
            Self::Checkbox(_) => "checkbox",
            Self::Date(_) => "date",
            Self::Datetime(_) => "datetime",
            Self::DecimalNumber(_) => "decimalNumber",
            Self::DropDownList(_) => "dropDownList",
            Self::Email(_) => "email",
            Self::IntegerNumber(_) => "integerNumber",
            Self::MultipleDropDownList(_) => "multipleDropDownList",
            Self::Repetition(_) => "repetition",
            Self::Text(_) => "text",
            Self::Textarea(_) => "textarea",
            Self::YesNo(_) => "yesNo",
        }
    }
}

/// One annotation to write.
#[derive(InputObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnnotationInput {
    id: ID,
    value: AnnotationValueInput,
}

/// Input of `dossierModifierAnnotations`.
#[derive(InputObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DossierModifierAnnotationsInput {
    annotations: Vec<AnnotationInput>,
    client_mutation_id: Option<String>,
    dossier_id: ID,
    instructeur_id: ID,
}

/// Payload of `dossierModifierAnnotations`.
#[derive(SimpleObject)]
pub(crate) struct DossierModifierAnnotationsPayload {
    annotations: Option<Vec<Champ>>,
    client_mutation_id: Option<String>,
    errors: Option<Vec<ValidationError>>,
}

macro_rules! single_annotation {
    ($($input:ident, $payload:ident, $value:ty;)*) => {
        $(
            /// Input of a deprecated per-type annotation mutation.
            #[derive(InputObject, Serialize, Clone, Debug)]
            #[serde(rename_all = "camelCase")]
            pub(crate) struct $input {
                annotation_id: ID,
                client_mutation_id: Option<String>,
                dossier_id: ID,
                instructeur_id: ID,
                value: $value,
            }

            /// Payload of a deprecated per-type annotation mutation.
            #[derive(SimpleObject)]
            pub(crate) struct $payload {
                annotation: Option<Champ>,
                client_mutation_id: Option<String>,
                errors: Option<Vec<ValidationError>>,
            }

            impl From<SingleOutcome> for $payload {
                fn from(o: SingleOutcome) -> Self {
                    $payload {
                        annotation: o.annotation,
                        client_mutation_id: o.client_mutation_id,
                        errors: errors_of(&o.errors),
                    }
                }
            }
        )*
    };
}

single_annotation! {
    DossierModifierAnnotationTextInput, DossierModifierAnnotationTextPayload, String;
    DossierModifierAnnotationCheckboxInput, DossierModifierAnnotationCheckboxPayload, bool;
    DossierModifierAnnotationDateInput, DossierModifierAnnotationDatePayload, DateScalar;
    DossierModifierAnnotationDatetimeInput, DossierModifierAnnotationDatetimePayload, DateTimeScalar;
    DossierModifierAnnotationIntegerNumberInput, DossierModifierAnnotationIntegerNumberPayload, i32;
    DossierModifierAnnotationDecimalNumberInput, DossierModifierAnnotationDecimalNumberPayload, f64;
    DossierModifierAnnotationDropDownListInput, DossierModifierAnnotationDropDownListPayload, String;
}

/// What a deprecated per-type mutation produced.
pub(crate) struct SingleOutcome {
    annotation: Option<Champ>,
    client_mutation_id: Option<String>,
    errors: Vec<String>,
}

/// Input of `dossierEnvoyerMessage`.
#[derive(InputObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DossierEnvoyerMessageInput {
    attachment: Option<ID>,
    body: String,
    client_mutation_id: Option<String>,
    correction: Option<CorrectionReason>,
    dossier_id: ID,
    instructeur_id: ID,
}

/// Payload of `dossierEnvoyerMessage`.
#[derive(SimpleObject)]
pub(crate) struct DossierEnvoyerMessagePayload {
    client_mutation_id: Option<String>,
    errors: Option<Vec<ValidationError>>,
    message: Option<Message>,
}

/// Input of `dossierAjouterLabel`.
#[derive(InputObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DossierAjouterLabelInput {
    client_mutation_id: Option<String>,
    dossier_id: ID,
    label_id: ID,
}

/// Payload of `dossierAjouterLabel`.
#[derive(SimpleObject)]
pub(crate) struct DossierAjouterLabelPayload {
    client_mutation_id: Option<String>,
    dossier: Option<Dossier>,
    errors: Option<Vec<ValidationError>>,
    label: Option<Label>,
}

/// Input of `dossierSupprimerLabel`.
#[derive(InputObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DossierSupprimerLabelInput {
    client_mutation_id: Option<String>,
    dossier_id: ID,
    label_id: ID,
}

/// Payload of `dossierSupprimerLabel`.
#[derive(SimpleObject)]
pub(crate) struct DossierSupprimerLabelPayload {
    client_mutation_id: Option<String>,
    dossier: Option<Dossier>,
    errors: Option<Vec<ValidationError>>,
    label: Option<Label>,
}

fn record(
    ctx: &Context<'_>,
    name: &str,
    dossier: Option<i32>,
    input: &impl Serialize,
    errors: &[String],
) {
    if let Ok(shared) = shared(ctx) {
        lock(&shared.mutations).push(MutationRecord {
            at: Utc::now(),
            name: name.to_owned(),
            dossier_number: dossier,
            input: serde_json::to_value(input).unwrap_or(serde_json::Value::Null),
            errors: errors.to_vec(),
        });
    }
}

/// Resolves `dossierId`, checks the token's scope, and says whether `instructeurId` (when
/// given) may act on the dossier. Failures to resolve are top-level errors, as in DS.
fn load_dossier(
    store: &Store,
    ctx: &Context<'_>,
    dossier_id: &ID,
    instructeur_id: Option<&ID>,
) -> Result<(i32, bool)> {
    let number = decode_gid(dossier_id)
        .filter(|(class, _)| class == "Dossier")
        .and_then(|(_, n)| n.parse::<i32>().ok())
        .ok_or_else(|| coded("not_found", "Dossier not found"))?;
    let d = store
        .visible_dossier(number)
        .ok_or_else(|| coded("not_found", "Dossier not found"))?;
    if !caller(ctx).can_see(d.demarche) {
        return Err(hidden("Dossier"));
    }
    let Some(instructeur_id) = instructeur_id else {
        return Ok((number, true));
    };
    let instructeur = decode_gid(instructeur_id)
        .filter(|(class, _)| class == "Instructeur")
        .and_then(|(_, n)| n.parse::<i64>().ok())
        .filter(|i| store.instructeurs.contains_key(i))
        .ok_or_else(|| coded("not_found", "Instructeur not found"))?;
    let allowed = store.demarches.get(&d.demarche).is_some_and(|dem| {
        dem.groupes
            .iter()
            .any(|g| g.number == d.groupe && g.instructeurs.contains(&instructeur))
    });
    Ok((number, allowed))
}

fn dossier_number_hint(id: &ID) -> Option<i32> {
    decode_gid(id)
        .filter(|(class, _)| class == "Dossier")
        .and_then(|(_, n)| n.parse().ok())
}

/// Where an annotation id points: a top-level annotation or a champ in a repetition row.
struct Target {
    stable_id: u64,
    parent: Option<u64>,
    row: Option<String>,
}

fn not_exists(id: &ID) -> String {
    format!("L‘annotation \"{}\" n’existe pas", id.as_str())
}

fn wrong_type(id: &ID) -> String {
    format!("L‘annotation \"{}\" n’est pas de type attendu", id.as_str())
}

fn find_target<'a>(
    dem: &'a DemarcheRt,
    d: &DossierRt,
    id: &ID,
) -> Result<(Target, &'a Descriptor), String> {
    let (class, rest) = decode_gid(id).ok_or_else(|| not_exists(id))?;
    if class != "Champ" {
        return Err(not_exists(id));
    }
    let (stable, row) = match rest.split_once('|') {
        Some((s, r)) => (s, Some(r.to_owned())),
        None => (rest.as_str(), None),
    };
    let stable_id: u64 = stable.parse().map_err(|_| not_exists(id))?;
    let desc = Descriptor::find(&dem.annotations, stable_id).ok_or_else(|| not_exists(id))?;
    let parent = Descriptor::parent_of(&dem.annotations, stable_id).map(|p| p.stable_id);
    match (&row, parent) {
        (None, None) => {}
        (Some(r), Some(p)) => {
            let exists = d.annotations.get(&p).is_some_and(|c| match &c.value {
                Val::Rows(rows) => rows.iter().any(|x| &x.id == r),
                _ => false,
            });
            if !exists {
                return Err(not_exists(id));
            }
        }
        _ => return Err(not_exists(id)),
    }
    Ok((
        Target {
            stable_id,
            parent,
            row,
        },
        desc,
    ))
}

fn invalid_option(desc: &Descriptor) -> String {
    format!(
        "Le champ « {} » doit être dans les options proposées",
        desc.label
    )
}

/// Validates and converts a value for a descriptor whose type already matched.
fn to_val(desc: &Descriptor, value: &AnnotationValueInput) -> Result<Val, String> {
    Ok(match value {
        AnnotationValueInput::Text(s) | AnnotationValueInput::Textarea(s) => Val::Text(s.clone()),
        AnnotationValueInput::Email(s) => {
            let ok = s
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
            if !ok {
                return Err(format!(
                    "Le champ « {} » est invalide. Saisissez une adresse électronique valide. Exemple : adresse@mail.com",
                    desc.label
                ));
            }
            Val::Text(s.clone())
        }
        AnnotationValueInput::Checkbox(b) | AnnotationValueInput::YesNo(b) => Val::Bool(*b),
        AnnotationValueInput::Date(d) => Val::Date(d.0),
        AnnotationValueInput::Datetime(d) => Val::DateTime(d.0),
        AnnotationValueInput::IntegerNumber(n) => Val::Int(n.to_string()),
        AnnotationValueInput::DecimalNumber(f) => Val::Decimal(*f),
        AnnotationValueInput::DropDownList(s) => {
            if !s.is_empty() && !desc.options.contains(s) {
                return Err(invalid_option(desc));
            }
            Val::Text(s.clone())
        }
        AnnotationValueInput::MultipleDropDownList(v) => {
            if v.iter().any(|s| !desc.options.contains(s)) {
                return Err(invalid_option(desc));
            }
            Val::Strings(v.clone())
        }
        AnnotationValueInput::Repetition(_) => Val::Empty,
    })
}

/// Writes one annotation on the dossier; returns the champ as written.
#[allow(clippy::too_many_arguments)]
fn apply(
    store: &mut Store,
    dem: &DemarcheRt,
    number: i32,
    target: &Target,
    desc: &Descriptor,
    value: &AnnotationValueInput,
    now: DateTime<Utc>,
    frags: Fragments,
) -> Result<Champ, String> {
    let val = to_val(desc, value)?;
    let row_seed = u64::try_from(store.next_id()).unwrap_or(0);
    let Some(d) = store.dossiers.get_mut(&number).map(Arc::make_mut) else {
        return Err(format!("Dossier {number} not found"));
    };
    let champ = match (target.parent, &target.row) {
        (Some(parent), Some(row)) => {
            let rows = d
                .annotations
                .get_mut(&parent)
                .and_then(|c| match &mut c.value {
                    Val::Rows(rows) => rows.iter_mut().find(|r| &r.id == row),
                    _ => None,
                });
            let Some(r) = rows else {
                return Err(format!(
                    "L‘annotation \"{}\" n’existe pas",
                    target.stable_id
                ));
            };
            let c = ChampRt {
                value: val,
                updated_at: now,
            };
            r.champs.insert(target.stable_id, c.clone());
            build_champ(desc, Some(&c), Some(row), now, frags)
        }
        _ => {
            let entry = d.annotations.entry(target.stable_id).or_insert(ChampRt {
                value: Val::Empty,
                updated_at: now,
            });
            if let AnnotationValueInput::Repetition(n) = value {
                let mut rows = match std::mem::replace(&mut entry.value, Val::Empty) {
                    Val::Rows(rows) => rows,
                    _ => Vec::new(),
                };
                for i in 0..(*n).max(0) {
                    rows.push(RowRt {
                        id: row_ulid((row_seed << 16) ^ u64::from(i.unsigned_abs())),
                        champs: Default::default(),
                    });
                }
                entry.value = Val::Rows(rows);
            } else {
                entry.value = val;
            }
            entry.updated_at = now;
            build_champ(desc, Some(entry), None, now, frags)
        }
    };
    d.updated_at = now;
    d.annotations_updated_at = now;
    let _ = dem;
    Ok(champ)
}

/// Shared body of the deprecated per-type mutations.
#[allow(clippy::too_many_arguments)]
fn modify_single(
    ctx: &Context<'_>,
    name: &str,
    input: &impl Serialize,
    dossier_id: &ID,
    instructeur_id: &ID,
    annotation_id: &ID,
    client_mutation_id: Option<String>,
    kinds: &[TypeDeChamp],
    value: AnnotationValueInput,
) -> Result<SingleOutcome> {
    let mut out = SingleOutcome {
        annotation: None,
        client_mutation_id,
        errors: Vec::new(),
    };
    let hint = dossier_number_hint(dossier_id);
    if !caller(ctx).write {
        out.errors.push(READ_ONLY.into());
        record(ctx, name, hint, input, &out.errors);
        return Ok(out);
    }
    let shared = shared(ctx)?;
    let mut store = lock(&shared.store);
    let (number, allowed) = match load_dossier(&store, ctx, dossier_id, Some(instructeur_id)) {
        Ok(x) => x,
        Err(e) => {
            record(ctx, name, hint, input, std::slice::from_ref(&e.message));
            return Err(e);
        }
    };
    if !allowed {
        out.errors.push(NO_RIGHTS.into());
    } else {
        let Some(dem) = store
            .visible_dossier(number)
            .and_then(|d| store.demarches.get(&d.demarche))
            .cloned()
        else {
            return Err(coded("not_found", "Dossier not found"));
        };
        let Some(d) = store.visible_dossier(number).cloned() else {
            return Err(coded("not_found", "Dossier not found"));
        };
        let result = find_target(&dem, &d, annotation_id).and_then(|(t, desc)| {
            if kinds.contains(&desc.kind) && t.row.is_none() {
                Ok((t, desc))
            } else {
                Err(not_exists(annotation_id))
            }
        });
        match result.and_then(|(t, desc)| {
            apply(
                &mut store,
                &dem,
                number,
                &t,
                desc,
                &value,
                Utc::now(),
                fragments(ctx),
            )
        }) {
            Ok(champ) => out.annotation = Some(champ),
            Err(e) => out.errors.push(e),
        }
    }
    drop(store);
    record(ctx, name, Some(number), input, &out.errors);
    Ok(out)
}

/// Root mutation type.
pub(crate) struct Mutation;

#[Object]
impl Mutation {
    /// Modifie les annotations privées d’un dossier.
    async fn dossier_modifier_annotations(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationsInput,
    ) -> Result<Option<DossierModifierAnnotationsPayload>> {
        const NAME: &str = "dossierModifierAnnotations";
        let mut errors = Vec::new();
        let hint = dossier_number_hint(&input.dossier_id);
        if !caller(ctx).write {
            errors.push(READ_ONLY.to_owned());
            record(ctx, NAME, hint, &input, &errors);
            return Ok(Some(DossierModifierAnnotationsPayload {
                annotations: None,
                client_mutation_id: input.client_mutation_id,
                errors: errors_of(&errors),
            }));
        }
        let shared = shared(ctx)?;
        let mut store = lock(&shared.store);
        let (number, allowed) =
            match load_dossier(&store, ctx, &input.dossier_id, Some(&input.instructeur_id)) {
                Ok(x) => x,
                Err(e) => {
                    drop(store);
                    record(ctx, NAME, hint, &input, std::slice::from_ref(&e.message));
                    return Err(e);
                }
            };
        let mut saved = Vec::new();
        if !allowed {
            errors.push(NO_RIGHTS.to_owned());
        } else {
            let now = Utc::now();
            let frags = fragments(ctx);
            for a in &input.annotations {
                let (Some(d), Some(dem)) = (
                    store.visible_dossier(number).cloned(),
                    store
                        .visible_dossier(number)
                        .and_then(|d| store.demarches.get(&d.demarche))
                        .cloned(),
                ) else {
                    break;
                };
                let outcome = find_target(&dem, &d, &a.id).and_then(|(t, desc)| {
                    match desc.kind.annotation_key() {
                        None => Err(not_exists(&a.id)),
                        Some(k) if k != a.value.key() => Err(wrong_type(&a.id)),
                        Some(_) => apply(&mut store, &dem, number, &t, desc, &a.value, now, frags),
                    }
                });
                match outcome {
                    Ok(c) => saved.push(c),
                    Err(e) => errors.push(e),
                }
            }
        }
        drop(store);
        record(ctx, NAME, Some(number), &input, &errors);
        Ok(Some(DossierModifierAnnotationsPayload {
            annotations: (allowed).then_some(saved),
            client_mutation_id: input.client_mutation_id,
            errors: errors_of(&errors),
        }))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_text(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationTextInput,
    ) -> Result<Option<DossierModifierAnnotationTextPayload>> {
        let value = AnnotationValueInput::Text(input.value.clone());
        modify_single(
            ctx,
            "dossierModifierAnnotationText",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::Text, TypeDeChamp::Textarea],
            value,
        )
        .map(|o| Some(o.into()))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_checkbox(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationCheckboxInput,
    ) -> Result<Option<DossierModifierAnnotationCheckboxPayload>> {
        let value = AnnotationValueInput::Checkbox(input.value);
        modify_single(
            ctx,
            "dossierModifierAnnotationCheckbox",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::Checkbox, TypeDeChamp::YesNo],
            value,
        )
        .map(|o| Some(o.into()))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_date(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationDateInput,
    ) -> Result<Option<DossierModifierAnnotationDatePayload>> {
        let value = AnnotationValueInput::Date(input.value);
        modify_single(
            ctx,
            "dossierModifierAnnotationDate",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::Date],
            value,
        )
        .map(|o| Some(o.into()))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_datetime(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationDatetimeInput,
    ) -> Result<Option<DossierModifierAnnotationDatetimePayload>> {
        let value = AnnotationValueInput::Datetime(input.value);
        modify_single(
            ctx,
            "dossierModifierAnnotationDatetime",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::Datetime],
            value,
        )
        .map(|o| Some(o.into()))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_integer_number(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationIntegerNumberInput,
    ) -> Result<Option<DossierModifierAnnotationIntegerNumberPayload>> {
        let value = AnnotationValueInput::IntegerNumber(input.value);
        modify_single(
            ctx,
            "dossierModifierAnnotationIntegerNumber",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::IntegerNumber],
            value,
        )
        .map(|o| Some(o.into()))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_decimal_number(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationDecimalNumberInput,
    ) -> Result<Option<DossierModifierAnnotationDecimalNumberPayload>> {
        let value = AnnotationValueInput::DecimalNumber(input.value);
        modify_single(
            ctx,
            "dossierModifierAnnotationDecimalNumber",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::DecimalNumber],
            value,
        )
        .map(|o| Some(o.into()))
    }

    #[graphql(deprecation = "Utilisez la mutation `dossierModifierAnnotations` à la place.")]
    async fn dossier_modifier_annotation_drop_down_list(
        &self,
        ctx: &Context<'_>,
        input: DossierModifierAnnotationDropDownListInput,
    ) -> Result<Option<DossierModifierAnnotationDropDownListPayload>> {
        let value = AnnotationValueInput::DropDownList(input.value.clone());
        modify_single(
            ctx,
            "dossierModifierAnnotationDropDownList",
            &input,
            &input.dossier_id,
            &input.instructeur_id,
            &input.annotation_id,
            input.client_mutation_id.clone(),
            &[TypeDeChamp::DropDownList],
            value,
        )
        .map(|o| Some(o.into()))
    }

    /// Envoyer un message à l’usager du dossier.
    async fn dossier_envoyer_message(
        &self,
        ctx: &Context<'_>,
        input: DossierEnvoyerMessageInput,
    ) -> Result<Option<DossierEnvoyerMessagePayload>> {
        const NAME: &str = "dossierEnvoyerMessage";
        let hint = dossier_number_hint(&input.dossier_id);
        let mut errors = Vec::new();
        let mut message = None;
        if !caller(ctx).write {
            errors.push(READ_ONLY.to_owned());
            record(ctx, NAME, hint, &input, &errors);
        } else {
            let shared = shared(ctx)?;
            let mut store = lock(&shared.store);
            let (number, allowed) =
                match load_dossier(&store, ctx, &input.dossier_id, Some(&input.instructeur_id)) {
                    Ok(x) => x,
                    Err(e) => {
                        drop(store);
                        record(ctx, NAME, hint, &input, std::slice::from_ref(&e.message));
                        return Err(e);
                    }
                };
            if !allowed {
                errors.push(NO_RIGHTS.to_owned());
            } else if input.body.trim().is_empty() {
                errors.push("Le champ « Votre message » ne peut être vide".to_owned());
            } else if input.attachment.is_some() {
                errors.push("L’identifiant du fichier téléversé est invalide".to_owned());
            } else {
                let email = decode_gid(&input.instructeur_id)
                    .and_then(|(_, n)| n.parse::<i64>().ok())
                    .and_then(|i| store.instructeurs.get(&i).cloned())
                    .unwrap_or_default();
                let id = store.next_id();
                let now = Utc::now();
                if let Some(d) = store.dossiers.get_mut(&number).map(Arc::make_mut) {
                    let m = MessageRt {
                        id,
                        body: input.body.clone(),
                        created_at: now,
                        email,
                    };
                    message = Some(Message::from_rt(&m));
                    d.messages.push(m);
                    d.updated_at = now;
                }
            }
            drop(store);
            record(ctx, NAME, Some(number), &input, &errors);
        }
        Ok(Some(DossierEnvoyerMessagePayload {
            client_mutation_id: input.client_mutation_id,
            errors: errors_of(&errors),
            message,
        }))
    }

    /// Ajouter un label à un dossier.
    async fn dossier_ajouter_label(
        &self,
        ctx: &Context<'_>,
        input: DossierAjouterLabelInput,
    ) -> Result<Option<DossierAjouterLabelPayload>> {
        let (dossier, label, errors) = change_label(
            ctx,
            "dossierAjouterLabel",
            &input,
            &input.dossier_id,
            &input.label_id,
            true,
        )?;
        Ok(Some(DossierAjouterLabelPayload {
            client_mutation_id: input.client_mutation_id,
            dossier,
            errors: errors_of(&errors),
            label,
        }))
    }

    /// Supprimer un label d’un dossier.
    async fn dossier_supprimer_label(
        &self,
        ctx: &Context<'_>,
        input: DossierSupprimerLabelInput,
    ) -> Result<Option<DossierSupprimerLabelPayload>> {
        let (dossier, label, errors) = change_label(
            ctx,
            "dossierSupprimerLabel",
            &input,
            &input.dossier_id,
            &input.label_id,
            false,
        )?;
        Ok(Some(DossierSupprimerLabelPayload {
            client_mutation_id: input.client_mutation_id,
            dossier,
            errors: errors_of(&errors),
            label,
        }))
    }
}

type LabelOutcome = (Option<Dossier>, Option<Label>, Vec<String>);

/// Adds or removes a label. Labels change no modification date, as in DS.
fn change_label(
    ctx: &Context<'_>,
    name: &str,
    input: &impl Serialize,
    dossier_id: &ID,
    label_id: &ID,
    add: bool,
) -> Result<LabelOutcome> {
    let hint = dossier_number_hint(dossier_id);
    if !caller(ctx).write {
        let errors = vec![READ_ONLY.to_owned()];
        record(ctx, name, hint, input, &errors);
        return Ok((None, None, errors));
    }
    let shared = shared(ctx)?;
    let mut store = lock(&shared.store);
    let loaded = load_dossier(&store, ctx, dossier_id, None).and_then(|(number, _)| {
        let label = decode_gid(label_id)
            .filter(|(class, _)| class == "Label")
            .and_then(|(_, n)| n.parse::<i64>().ok())
            .and_then(|id| {
                store.demarches.values().find_map(|dem| {
                    dem.labels
                        .iter()
                        .find(|l| l.id == id)
                        .map(|l| (dem.number, l.clone()))
                })
            })
            .ok_or_else(|| coded("not_found", "Label not found"))?;
        Ok((number, label))
    });
    let (number, (label_demarche, label)) = match loaded {
        Ok(x) => x,
        Err(e) => {
            drop(store);
            record(ctx, name, hint, input, std::slice::from_ref(&e.message));
            return Err(e);
        }
    };
    let mut errors = Vec::new();
    if let Some(d) = store.dossiers.get_mut(&number).map(Arc::make_mut) {
        let present = d.labels.contains(&label.id);
        if d.demarche != label_demarche {
            errors.push("Ce label n’appartient pas à la même démarche que le dossier".to_owned());
        } else if add && present {
            errors.push("Ce label est déjà associé au dossier".to_owned());
        } else if !add && !present {
            errors.push("Ce label n’est pas associé au dossier".to_owned());
        } else if add {
            d.labels.push(label.id);
        } else {
            d.labels.retain(|l| *l != label.id);
        }
    }
    let dossier = if errors.is_empty() {
        store
            .visible_dossier(number)
            .map(|d| Dossier::new(&store, d))
            .transpose()?
    } else {
        None
    };
    drop(store);
    record(ctx, name, Some(number), input, &errors);
    let label = errors.is_empty().then(|| Label::from_rt(&label));
    Ok((dossier, label, errors))
}

impl Serialize for DateScalar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.format("%Y-%m-%d").to_string())
    }
}

impl Serialize for DateTimeScalar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::types::paris(self.0))
    }
}
