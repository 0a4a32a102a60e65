//! `essbot milestones [--due-within DAYS] [--format table|csv|json|ics]`,
//! `essbot milestones record ...` and `essbot payments [--format table|csv|json]`.
//!
//! They read the local store only, never DS: the schedule is derived from the ledger as the
//! last cycle left it, for today in Europe/Paris, so they answer at once and work offline (on
//! the demo database too). `record` appends one manual event, with its author and reason;
//! nothing is ever overwritten, a correction is a new event.

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

use crate::clock::Clock;
use crate::config::Settings;
use crate::ledger::{self, LedgerError, paris_today};
use crate::milestones::{
    self, CsvStyle, Event, EventKind, EventSlot, EventSource, MilestoneId, ProjectSchedule,
    SocleScope, format_date_fr, format_eur,
};
use crate::store::{Access, Store, StoreError};

/// `essbot milestones`: the schedule of every project, or `record` to add an event.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MilestonesArgs {
    #[command(subcommand)]
    pub command: Option<MilestonesCommand>,
    /// Only the milestones still open and due within DAYS days (overdue ones included).
    #[arg(long, value_name = "DAYS")]
    pub due_within: Option<u32>,
    /// Output format; machine formats write ISO 8601 dates.
    #[arg(long, value_enum, default_value_t = MilestonesFormat::Table)]
    pub format: MilestonesFormat,
}

/// `essbot milestones <subcommand>`.
#[derive(Debug, Clone, Subcommand)]
pub enum MilestonesCommand {
    /// Records an event that lives outside DS (a payment, a contract, a correction...), with
    /// its author and reason; nothing is overwritten, a correction is a new event.
    // Boxed: the options of `record` would make every enum holding this one large.
    Record(Box<RecordArgs>),
}

/// Formats of `essbot milestones`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MilestonesFormat {
    Table,
    /// For a French spreadsheet: `;`, decimal comma, UTF-8 with a byte-order mark.
    Csv,
    Json,
    /// iCalendar, one all-day event per dated milestone, with stable UIDs.
    Ics,
}

/// `essbot payments`: payments proposed, due and recorded, with how each amount was computed.
#[derive(Debug, Clone, Args)]
pub struct PaymentsArgs {
    /// Output format; machine formats write ISO 8601 dates.
    #[arg(long, value_enum, default_value_t = PaymentsFormat::Table)]
    pub format: PaymentsFormat,
}

/// Formats of `essbot payments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PaymentsFormat {
    Table,
    /// For a French spreadsheet: `;`, decimal comma, UTF-8 with a byte-order mark.
    Csv,
    Json,
}

/// What `essbot milestones record` can record (the names are the French ones staff use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordKind {
    /// The lettre d'intention was filed (D0).
    LiDeposee,
    /// The lettre d'intention was accepted.
    LiAcceptee,
    /// The lettre d'intention was refused (--motivation).
    LiRefusee,
    /// The contrat de crédit d'amorçage was signed.
    ContratAmorcage,
    /// The projet de santé was filed (R); --ps-dossier names its dossier.
    PsDepose,
    /// The projet de santé was explicitly validated.
    PsValide,
    /// The projet de santé was refused (--motivation, required).
    PsRefuse,
    /// A FINESS number was issued (--finess).
    Finess,
    /// The contrat de dotation annuelle was signed.
    ContratDotation,
    /// The mission socle was deployed (--scope; the first activity by default).
    MissionSocle,
    /// The justificatifs of a contract year were received (--year).
    Justificatifs,
    /// The number of member doctors from --date on (--members).
    Adherents,
    /// The carrying association is on file (--rna and/or --siret).
    Association,
    /// A payment was made (--milestone AMO-1|AMO-2|DOT-k, --amount).
    Versement,
    /// A target was met (--milestone ADH-30|ADH-50|GOUV-5).
    ObjectifAtteint,
    /// Withdraws an event recorded by mistake (--of KIND, and what names the event).
    Retrait,
}

/// Which activities of the mission socle a deployment covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    PremiereActivite,
    DeuxActivites,
}

/// `essbot milestones record PROJECT KIND --date DATE --reason TEXT [...]`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// The project: the number of its lettre d'intention dossier.
    pub project: i64,
    /// What happened.
    #[arg(value_enum)]
    pub kind: RecordKind,
    /// When it happened, a Europe/Paris date: 01/12/2026 or 2026-12-01.
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
    /// Why it is recorded by hand (mandatory: it is kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// Who records it (default: $USER).
    #[arg(long, env = "USER", hide_env_values = true)]
    pub author: Option<String>,
    /// Amount of a payment in euros ("40000", "40 000,00"): what has been paid for the
    /// milestone so far. A later record for the same milestone replaces this one, so after a
    /// second instalment record the total.
    #[arg(long)]
    pub amount: Option<String>,
    /// The milestone of a payment or a target (AMO-1, AMO-2, DOT-k, ADH-30, ADH-50, GOUV-5).
    #[arg(long)]
    pub milestone: Option<MilestoneId>,
    /// Motivation of a refusal.
    #[arg(long)]
    pub motivation: Option<String>,
    /// FINESS number (9 characters).
    #[arg(long)]
    pub finess: Option<String>,
    /// Contract year of the justificatifs (1 for the first).
    #[arg(long)]
    pub year: Option<u32>,
    /// Number of member doctors from --date on.
    #[arg(long)]
    pub members: Option<u32>,
    /// Activities of the mission socle deployed.
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
    /// RNA number of the carrying association.
    #[arg(long)]
    pub rna: Option<String>,
    /// SIRET of the carrying association.
    #[arg(long)]
    pub siret: Option<String>,
    /// Number of the projet de santé dossier (ps-depose).
    #[arg(long)]
    pub ps_dossier: Option<i64>,
    /// For `retrait`: the kind of event withdrawn.
    #[arg(long, value_enum)]
    pub of: Option<RecordKind>,
}

/// Why a milestones command failed. [`MilestonesError::is_usage`] tells the caller to exit 2.
#[derive(Debug, thiserror::Error)]
pub enum MilestonesError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{}", .0.operator_text())]
    Store(#[from] StoreError),
    #[error("l'option --{option} est obligatoire pour « {kind} »")]
    Missing {
        option: &'static str,
        kind: &'static str,
    },
    #[error("montant illisible « {0} » (attendu : 40000, 40 000,00 ou 40000.00)")]
    BadAmount(String),
    #[error("auteur inconnu : indiquer --author (ou définir $USER)")]
    NoAuthor,
    #[error("« retrait » doit désigner un autre type d'événement avec --of")]
    NotRetractable,
    /// A date or an amount that cannot be right (a payment in the future, more than is due).
    #[error("{0}")]
    Implausible(String),
}

impl MilestonesError {
    /// True when the command line was wrong (exit 2), false for a runtime failure (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Ledger(LedgerError::Invalid(_) | LedgerError::UnknownProject(_)) => true,
            Self::Ledger(_) | Self::Store(_) => false,
            Self::Missing { .. }
            | Self::BadAmount(_)
            | Self::NoAuthor
            | Self::NotRetractable
            | Self::Implausible(_) => true,
        }
    }
}

/// `essbot milestones [...]` as parsed: lists the schedule, or records an event.
///
/// # Errors
/// See [`milestones`] and [`record`].
pub async fn run(
    settings: &Settings,
    args: &MilestonesArgs,
    clock: &dyn Clock,
) -> Result<String, MilestonesError> {
    match &args.command {
        Some(MilestonesCommand::Record(r)) => record(settings, r, clock).await,
        None => milestones(settings, args.due_within, args.format, clock).await,
    }
}

async fn schedules(
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<(NaiveDate, Vec<ProjectSchedule>), MilestonesError> {
    // Reading never creates nor migrates the database, and works where the user cannot write.
    let store = Store::open_required(&settings.database.url, Access::Read).await?;
    let today = paris_today(clock.now());
    let out = ledger::derive_all(&store, &settings.milestones, today).await;
    store.close().await;
    Ok((today, out?))
}

/// The schedule of every project, as text to print.
///
/// # Errors
/// When the store cannot be opened or read.
pub async fn milestones(
    settings: &Settings,
    due_within: Option<u32>,
    format: MilestonesFormat,
    clock: &dyn Clock,
) -> Result<String, MilestonesError> {
    let (today, mut all) = schedules(settings, clock).await?;
    if let Some(days) = due_within {
        all = milestones::due_within(&all, today, days);
    }
    Ok(match format {
        MilestonesFormat::Table if all.is_empty() => nothing(due_within),
        MilestonesFormat::Table => milestones::milestones_table(&all),
        MilestonesFormat::Csv => milestones::milestones_csv(&all, CsvStyle::Tableur),
        MilestonesFormat::Json => milestones::milestones_json(&all),
        MilestonesFormat::Ics => milestones::milestones_ics(&all, clock.now()),
    })
}

fn nothing(due_within: Option<u32>) -> String {
    match due_within {
        Some(days) => format!("Aucune échéance dans les {days} jours.\n"),
        None => "Aucun projet suivi : lancer d'abord un cycle (essbot run --once).\n".into(),
    }
}

/// Payments proposed, due and recorded, with how each amount was computed, as text to print.
///
/// # Errors
/// When the store cannot be opened or read.
pub async fn payments(
    settings: &Settings,
    format: PaymentsFormat,
    clock: &dyn Clock,
) -> Result<String, MilestonesError> {
    let (_, all) = schedules(settings, clock).await?;
    Ok(match format {
        PaymentsFormat::Table if all.is_empty() => nothing(None),
        PaymentsFormat::Table => milestones::payments_table(&all),
        PaymentsFormat::Csv => milestones::payments_csv(&all, CsvStyle::Tableur),
        PaymentsFormat::Json => milestones::payments_json(&all),
    })
}

/// Records one manual event and returns the confirmation to print, with the project's next
/// deadline afterwards.
///
/// # Errors
/// A missing or invalid option, an event [`Event::validate`] refuses, an unknown project (all
/// usage errors, see [`MilestonesError::is_usage`]), or a store failure.
pub async fn record(
    settings: &Settings,
    args: &RecordArgs,
    clock: &dyn Clock,
) -> Result<String, MilestonesError> {
    let author = args
        .author
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or(MilestonesError::NoAuthor)?
        .to_owned();
    let kind = event_kind(args)?;
    let now = clock.now();
    let today = paris_today(now);
    check_date(&kind, args.date, today)?;
    let event = Event {
        project: args.project,
        kind,
        effective: args.date,
        source: EventSource::Manual,
        author,
        recorded_at: now,
        reason: Some(args.reason.trim().to_owned()),
    };
    let store = Store::open_required(&settings.database.url, Access::Write).await?;
    let result = async {
        // A payment is checked against what the schedule says is due before it is recorded.
        if let EventKind::PaymentRecorded {
            milestone,
            amount_cents,
        } = &event.kind
        {
            let events = store.events_of(args.project).await?;
            let before = milestones::derive(&events, today, &settings.milestones);
            if let Err(why) =
                milestones::check_payment(&before, *milestone, *amount_cents, &settings.milestones)
            {
                return Ok(Err(MilestonesError::Implausible(why)));
            }
        }
        ledger::record(&store, settings, event.clone()).await?;
        let events = store.events_of(args.project).await?;
        Ok::<_, LedgerError>(Ok(milestones::derive(&events, today, &settings.milestones)))
    }
    .await;
    store.close().await;
    let schedule = result??;
    let mut out = format!(
        "Événement enregistré pour le projet {} : {} (date d'effet {}, par {}, motif : {}).\n",
        milestones::project_label(&schedule),
        describe(&event.kind),
        format_date_fr(event.effective),
        event.author,
        event.reason.as_deref().unwrap_or_default()
    );
    if let EventKind::PaymentRecorded { milestone, .. } = &event.kind
        && let Some(m) = schedule.milestone(*milestone)
    {
        out.push_str(&format!(
            "État du jalon {milestone} : {}{}.\n",
            m.state.libelle(),
            if m.state.is_open() {
                " (versement partiel : voir essbot payments)"
            } else {
                ""
            }
        ));
    }
    match milestones::next_deadline(&schedule, schedule.today) {
        Some((id, due)) => out.push_str(&format!(
            "Prochaine échéance : {id} ({}) le {}.\n",
            id.libelle(),
            format_date_fr(due)
        )),
        None => out.push_str("Aucune échéance ouverte.\n"),
    }
    for w in &schedule.warnings {
        out.push_str(&format!("Attention : {w}\n"));
    }
    Ok(out)
}

fn name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::LiDeposee => "li-deposee",
        RecordKind::LiAcceptee => "li-acceptee",
        RecordKind::LiRefusee => "li-refusee",
        RecordKind::ContratAmorcage => "contrat-amorcage",
        RecordKind::PsDepose => "ps-depose",
        RecordKind::PsValide => "ps-valide",
        RecordKind::PsRefuse => "ps-refuse",
        RecordKind::Finess => "finess",
        RecordKind::ContratDotation => "contrat-dotation",
        RecordKind::MissionSocle => "mission-socle",
        RecordKind::Justificatifs => "justificatifs",
        RecordKind::Adherents => "adherents",
        RecordKind::Association => "association",
        RecordKind::Versement => "versement",
        RecordKind::ObjectifAtteint => "objectif-atteint",
        RecordKind::Retrait => "retrait",
    }
}

fn need<T: Clone>(
    value: &Option<T>,
    option: &'static str,
    kind: RecordKind,
) -> Result<T, MilestonesError> {
    value.clone().ok_or(MilestonesError::Missing {
        option,
        kind: name(kind),
    })
}

fn scope(args: &RecordArgs) -> SocleScope {
    match args.scope {
        Some(ScopeArg::DeuxActivites) => SocleScope::DeuxActivites,
        Some(ScopeArg::PremiereActivite) | None => SocleScope::PremiereActivite,
    }
}

/// The event kind the options describe.
fn event_kind(args: &RecordArgs) -> Result<EventKind, MilestonesError> {
    let k = args.kind;
    Ok(match k {
        RecordKind::LiDeposee => EventKind::LiFiled,
        RecordKind::LiAcceptee => EventKind::LiAccepted,
        RecordKind::LiRefusee => EventKind::LiRefused {
            motivation: args.motivation.clone().unwrap_or_default(),
        },
        RecordKind::ContratAmorcage => EventKind::AmorcageContractSigned,
        RecordKind::PsDepose => EventKind::PsFiled {
            dossier: args.ps_dossier,
        },
        RecordKind::PsValide => EventKind::PsValidated,
        RecordKind::PsRefuse => EventKind::PsRefused {
            motivation: args.motivation.clone().unwrap_or_default(),
        },
        RecordKind::Finess => EventKind::FinessReceived {
            finess: need(&args.finess, "finess", k)?.trim().to_owned(),
        },
        RecordKind::ContratDotation => EventKind::DotationContractSigned,
        RecordKind::MissionSocle => EventKind::MissionSocleDeployed { scope: scope(args) },
        RecordKind::Justificatifs => EventKind::JustificatifsReceived {
            year: need(&args.year, "year", k)?,
        },
        RecordKind::Adherents => EventKind::MembershipCount {
            members: need(&args.members, "members", k)?,
        },
        RecordKind::Association => {
            if args.rna.is_none() && args.siret.is_none() {
                return Err(MilestonesError::Missing {
                    option: "rna ou --siret",
                    kind: name(k),
                });
            }
            EventKind::AssociationOnFile {
                rna: args.rna.clone(),
                siret: args.siret.clone(),
            }
        }
        RecordKind::Versement => EventKind::PaymentRecorded {
            milestone: need(&args.milestone, "milestone", k)?,
            amount_cents: parse_amount(&need(&args.amount, "amount", k)?)?,
        },
        RecordKind::ObjectifAtteint => EventKind::TargetMet {
            milestone: need(&args.milestone, "milestone", k)?,
        },
        RecordKind::Retrait => EventKind::Retracted {
            slot: slot_of(args, need(&args.of, "of", k)?)?,
        },
    })
}

/// The slot a retraction empties.
fn slot_of(args: &RecordArgs, of: RecordKind) -> Result<EventSlot, MilestonesError> {
    Ok(match of {
        RecordKind::LiDeposee => EventSlot::LiFiled,
        RecordKind::LiAcceptee | RecordKind::LiRefusee => EventSlot::LiDecision,
        RecordKind::ContratAmorcage => EventSlot::AmorcageContract,
        RecordKind::PsDepose => EventSlot::PsFiled,
        RecordKind::PsValide | RecordKind::PsRefuse => EventSlot::PsDecision,
        RecordKind::Finess => EventSlot::Finess,
        RecordKind::ContratDotation => EventSlot::DotationContract,
        RecordKind::MissionSocle => EventSlot::MissionSocle { scope: scope(args) },
        RecordKind::Justificatifs => EventSlot::Justificatifs {
            year: need(&args.year, "year", of)?,
        },
        // The count recorded from --date on.
        RecordKind::Adherents => EventSlot::Membership { from: args.date },
        RecordKind::Association => EventSlot::Association,
        RecordKind::Versement => EventSlot::Payment {
            milestone: need(&args.milestone, "milestone", of)?,
        },
        RecordKind::ObjectifAtteint => EventSlot::Target {
            milestone: need(&args.milestone, "milestone", of)?,
        },
        RecordKind::Retrait => return Err(MilestonesError::NotRetractable),
    })
}

/// Euros as staff type them ("40000", "40 000,00", "40000.5", "40 000,00 €") to cents.
///
/// # Errors
/// [`MilestonesError::BadAmount`] for anything else (a negative amount is left to
/// [`Event::validate`]).
pub fn parse_amount(text: &str) -> Result<i64, MilestonesError> {
    let bad = || MilestonesError::BadAmount(text.to_owned());
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '€' && *c != '\u{202f}')
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    let (negative, digits) = match compact.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let euros: i64 = whole.parse().map_err(|_| bad())?;
    let cents: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let total = euros
        .checked_mul(100)
        .and_then(|c| c.checked_add(cents))
        .ok_or_else(bad)?;
    Ok(if negative { -total } else { total })
}

/// An event kind in French, for the confirmation line.
fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::LiFiled => "dépôt de la lettre d'intention".into(),
        EventKind::LiAccepted => "lettre d'intention acceptée".into(),
        EventKind::LiRefused { .. } => "lettre d'intention refusée".into(),
        EventKind::AmorcageContractSigned => "signature du contrat de crédit d'amorçage".into(),
        EventKind::PsFiled { dossier: Some(n) } => format!("dépôt du projet de santé n° {n}"),
        EventKind::PsFiled { dossier: None } => "dépôt du projet de santé".into(),
        EventKind::PsValidated => "validation du projet de santé".into(),
        EventKind::PsRefused { motivation } => {
            format!("refus du projet de santé (motivation : {motivation})")
        }
        EventKind::FinessReceived { finess } => format!("numéro FINESS {finess}"),
        EventKind::DotationContractSigned => "signature du contrat de dotation annuelle".into(),
        EventKind::MissionSocleDeployed {
            scope: SocleScope::PremiereActivite,
        } => "première activité de la mission socle déployée".into(),
        EventKind::MissionSocleDeployed {
            scope: SocleScope::DeuxActivites,
        } => "mission socle déployée (deux activités)".into(),
        EventKind::JustificatifsReceived { year } => {
            format!("justificatifs de l'année {year} reçus")
        }
        EventKind::MembershipCount { members } => format!("{members} médecins adhérents"),
        EventKind::AssociationOnFile { rna, siret } => format!(
            "association porteuse (RNA {}, SIRET {})",
            rna.as_deref().unwrap_or("—"),
            siret.as_deref().unwrap_or("—")
        ),
        EventKind::PaymentRecorded {
            milestone,
            amount_cents,
        } => format!("versement {milestone} de {}", format_eur(*amount_cents)),
        EventKind::TargetMet { milestone } => format!("objectif {milestone} atteint"),
        EventKind::Retracted { slot } => format!("retrait de l'événement « {} »", slot_fr(slot)),
    }
}

/// What a retraction empties, as staff name it.
fn slot_fr(slot: &EventSlot) -> String {
    match slot {
        EventSlot::LiFiled => "dépôt de la lettre d'intention".into(),
        EventSlot::LiDecision => "décision sur la lettre d'intention".into(),
        EventSlot::AmorcageContract => "signature du contrat de crédit d'amorçage".into(),
        EventSlot::PsFiled => "dépôt du projet de santé".into(),
        EventSlot::PsDecision => "décision sur le projet de santé".into(),
        EventSlot::Finess => "numéro FINESS".into(),
        EventSlot::DotationContract => "signature du contrat de dotation annuelle".into(),
        EventSlot::MissionSocle {
            scope: SocleScope::PremiereActivite,
        } => "déploiement de la première activité de la mission socle".into(),
        EventSlot::MissionSocle {
            scope: SocleScope::DeuxActivites,
        } => "déploiement de la mission socle (deux activités)".into(),
        EventSlot::Justificatifs { year } => format!("justificatifs de l'année {year}"),
        EventSlot::Membership { from } => {
            format!("nombre d'adhérents au {}", format_date_fr(*from))
        }
        EventSlot::Association => "association porteuse".into(),
        EventSlot::Payment { milestone } => format!("versement {milestone}"),
        EventSlot::Target { milestone } => format!("objectif {milestone}"),
    }
}

/// A date as staff type it: `01/12/2026` (French) or `2026-12-01` (ISO 8601).
///
/// # Errors
/// Anything else (clap prints the message after its own English words).
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let t = text.trim();
    NaiveDate::parse_from_str(t, "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y-%m-%d"))
        .map_err(|_| "expected a date as 01/12/2026 or 2026-12-01".to_owned())
}

/// The earliest date a record may carry: the ESS scheme is younger.
const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(2020, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// Refuses a date that cannot be right for `kind`: a payment after today (it is recorded once
/// made), any event more than a year ahead (a planned date is at most that far) or before
/// 2020.
fn check_date(kind: &EventKind, date: NaiveDate, today: NaiveDate) -> Result<(), MilestonesError> {
    let bad = |why: String| Err(MilestonesError::Implausible(why));
    if date < EARLIEST {
        return bad(format!(
            "date refusée : le {} est antérieur à la création des ESS",
            format_date_fr(date)
        ));
    }
    if matches!(kind, EventKind::PaymentRecorded { .. }) && date > today {
        return bad(format!(
            "date refusée : un versement s'enregistre une fois fait, et le {} est dans le futur (nous sommes le {})",
            format_date_fr(date),
            format_date_fr(today)
        ));
    }
    if date > today + chrono::Days::new(366) {
        return bad(format!(
            "date refusée : le {} est à plus d'un an d'aujourd'hui ({})",
            format_date_fr(date),
            format_date_fr(today)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_staff_type_them() {
        assert_eq!(parse_amount("40000").unwrap(), 4_000_000);
        assert_eq!(parse_amount("40 000,00").unwrap(), 4_000_000);
        assert_eq!(parse_amount("40\u{202f}000,5 €").unwrap(), 4_000_050);
        assert_eq!(parse_amount("67777.78").unwrap(), 6_777_778);
        assert_eq!(parse_amount("-5").unwrap(), -500);
        for bad in ["", "quarante", "1,234", "12.3.4", "€"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_read_in_french_or_iso() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(parse_date("01/12/2026"), Ok(d));
        assert_eq!(parse_date("1/12/2026"), Ok(d));
        assert_eq!(parse_date("2026-12-01"), Ok(d));
        for bad in ["12/01", "2026/12/01", "31/02/2026", "demain"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn implausible_dates_are_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let pay = EventKind::PaymentRecorded {
            milestone: MilestoneId::Amo1,
            amount_cents: 100,
        };
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(check_date(&pay, today, today).is_ok());
        let err = check_date(&pay, date(2026, 11, 26), today).unwrap_err();
        assert!(err.to_string().contains("dans le futur"), "{err}");
        // A planned contract date is fine; one in 2030 is a typo.
        assert!(check_date(&EventKind::DotationContractSigned, date(2027, 1, 15), today).is_ok());
        assert!(check_date(&EventKind::DotationContractSigned, date(2030, 1, 15), today).is_err());
        assert!(check_date(&EventKind::LiFiled, date(1926, 1, 15), today).is_err());
    }

    #[test]
    fn a_retraction_is_confirmed_in_words() {
        let text = describe(&EventKind::Retracted {
            slot: EventSlot::Payment {
                milestone: MilestoneId::Amo1,
            },
        });
        assert_eq!(text, "retrait de l'événement « versement AMO-1 »");
    }

    #[test]
    fn record_arguments_parse_with_clap() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: Top,
        }
        #[derive(clap::Subcommand)]
        enum Top {
            Milestones(MilestonesArgs),
            Payments(PaymentsArgs),
        }
        let cli = Cli::try_parse_from([
            "essbot",
            "milestones",
            "record",
            "1",
            "versement",
            "--date",
            "20/04/2026",
            "--milestone",
            "AMO-1",
            "--amount",
            "40 000,00",
            "--reason",
            "virement CPAM",
            "--author",
            "agent",
        ])
        .expect("parse");
        let Top::Milestones(MilestonesArgs {
            command: Some(MilestonesCommand::Record(r)),
            ..
        }) = cli.cmd
        else {
            panic!("record expected");
        };
        assert_eq!(
            event_kind(&r).unwrap(),
            EventKind::PaymentRecorded {
                milestone: MilestoneId::Amo1,
                amount_cents: 4_000_000
            }
        );
        let cli = Cli::try_parse_from([
            "essbot",
            "milestones",
            "--due-within",
            "30",
            "--format",
            "ics",
        ])
        .expect("parse");
        assert!(matches!(
            cli.cmd,
            Top::Milestones(MilestonesArgs {
                command: None,
                due_within: Some(30),
                format: MilestonesFormat::Ics
            })
        ));
        assert!(Cli::try_parse_from(["essbot", "payments", "--format", "csv"]).is_ok());
        assert!(
            Cli::try_parse_from([
                "essbot",
                "milestones",
                "record",
                "1",
                "finess",
                "--date",
                "2026-01-01"
            ])
            .is_err(),
            "--reason is mandatory"
        );
    }
}
