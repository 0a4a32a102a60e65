//! The derivation: from one project's events, today and the configuration to its schedule.
//! Nothing here reads a clock, a file or the network.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::calendar::{add_months, add_years, days_between, format_date_fr as fr};
use super::event::{Event, EventKind, EventSlot, MilestoneId, SocleScope};
use super::money::{div_round_half_up, format_eur};
use super::{Anchor, MilestonesConfig};

/// Months of silence after the projet de santé is filed (R) before it is deemed validated.
const PS_TACIT_MONTHS: u32 = 2;
/// Months from R to the mission socle with both activities.
const SOCLE_MONTHS: u32 = 12;
/// Months from the operational anchor to the 18-month check.
const OPER_MONTHS: u32 = 18;
/// How many dotations a schedule lists at most (a safety net against absurd dates).
const MAX_DOTATIONS: u32 = 60;

/// Where a milestone stands on the schedule's "today".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not yet due (or due but not yet allowed, see [`Blocker`]).
    AVenir,
    /// Due today, or a payment whose trigger happened and which is not recorded yet.
    Du,
    /// Its due date has passed and it is not done.
    EnRetard,
    /// It happened.
    Fait,
    /// It no longer applies (refused lettre d'intention or projet de santé...).
    SansObjet,
}

impl State {
    /// The state as staff read it.
    pub fn libelle(self) -> &'static str {
        match self {
            Self::AVenir => "à venir",
            Self::Du => "dû",
            Self::EnRetard => "en retard",
            Self::Fait => "fait",
            Self::SansObjet => "sans objet",
        }
    }

    /// True while something remains to be done.
    pub fn is_open(self) -> bool {
        matches!(self, Self::AVenir | Self::Du | Self::EnRetard)
    }
}

/// Who acts on a milestone and receives its alerts: the CPAM pays and collects the
/// justificatifs; the ARS decides and watches the deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Cpam,
    Ars,
}

impl Role {
    /// The recipient as named in alerts.
    pub fn libelle(self) -> &'static str {
        match self {
            Self::Cpam => "CPAM de rattachement",
            Self::Ars => "ARS",
        }
    }
}

/// Why a payment cannot simply be made, in decreasing order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Blocker {
    /// LI-JUR-01: no association loi 1901 with an RNA or SIRET on file; nothing is proposed.
    AssociationNotOnFile,
    /// Nothing of the dotation before the projet de santé is validated.
    PsNotValidated,
    /// The anniversary is reached but the justificatifs of that contract year are missing.
    JustificatifsMissing { year: u32 },
    /// The dotation could not be computed (headcount unknown or below the floor): manual review.
    AmountNotComputed,
}

impl Blocker {
    /// The reason as staff read it.
    pub fn libelle(self) -> String {
        match self {
            Self::AssociationNotOnFile => "versement non proposé : aucune association loi 1901 \
                 avec un numéro RNA ou SIRET n'est enregistrée pour le porteur (LI-JUR-01)"
                .into(),
            Self::PsNotValidated => {
                "versement non proposé : le projet de santé n'est pas encore validé".into()
            }
            Self::JustificatifsMissing { year } => format!(
                "justificatifs de l'année {year} attendus (rapport d'activité avec les \
                 indicateurs nationaux, liste des adhérents) : versement à leur réception"
            ),
            Self::AmountNotComputed => "montant non calculé : examen manuel nécessaire".into(),
        }
    }

    /// True when the payment may not be proposed at all (it then stays "à venir").
    pub fn prevents_payment(self) -> bool {
        matches!(self, Self::AssociationNotOnFile | Self::PsNotValidated)
    }
}

/// One milestone of milestones.md on the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Milestone {
    pub id: MilestoneId,
    pub state: State,
    /// The due date, when it is known (for a payment, the date of its trigger).
    pub due: Option<NaiveDate>,
    /// When it happened (state [`State::Fait`]).
    pub done_on: Option<NaiveDate>,
    /// The first day it was late (state [`State::EnRetard`]); weekly reminders count from it.
    pub overdue_since: Option<NaiveDate>,
    pub recipient: Role,
    /// For a payment, the amount computed (or recorded, once paid), in cents.
    pub amount_cents: Option<i64>,
    pub blocker: Option<Blocker>,
    /// What staff need to know, in French.
    pub note: String,
}

/// A payment to the ESS, or the recovery of what it was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Versement,
    Recuperation,
}

impl PaymentKind {
    /// The kind as staff read it.
    pub fn libelle(self) -> &'static str {
        match self {
            Self::Versement => "versement",
            Self::Recuperation => "récupération",
        }
    }
}

/// One line of `essbot payments`: proposed, due or recorded, with how its amount was computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub milestone: MilestoneId,
    pub kind: PaymentKind,
    pub state: State,
    pub due: Option<NaiveDate>,
    pub overdue_since: Option<NaiveDate>,
    /// The amount computed, in cents; `None` when it cannot be (see the explanation).
    pub amount_cents: Option<i64>,
    pub paid_on: Option<NaiveDate>,
    pub paid_cents: Option<i64>,
    pub blocker: Option<Blocker>,
    /// How the amount was computed, in French.
    pub explanation: String,
}

/// Everything derived for one project on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectSchedule {
    /// The lettre d'intention dossier's number (0 when no event was given).
    pub project: i64,
    /// The projet de santé dossier's number, once linked.
    pub ps_dossier: Option<i64>,
    /// The day the schedule was derived for.
    pub today: NaiveDate,
    /// Every milestone, in the order of milestones.md.
    pub milestones: Vec<Milestone>,
    pub payments: Vec<Payment>,
    /// Inconsistencies staff should look at (French).
    pub warnings: Vec<String>,
}

impl ProjectSchedule {
    /// The milestone `id`, if the schedule lists it.
    pub fn milestone(&self, id: MilestoneId) -> Option<&Milestone> {
        self.milestones.iter().find(|m| m.id == id)
    }
}

/// "1 jour", "12 jours" (a negative count reads as 0).
pub(crate) fn jours(n: i64) -> String {
    crate::rules::text::count(usize::try_from(n).unwrap_or(0), "jour", "jours")
}

/// How far a recorded payment may fall short of (or exceed) the amount computed and still be
/// that amount (roundings, bank fees): 1 € or 0.1 %, whichever is larger.
pub fn payment_tolerance(due_cents: i64) -> i64 {
    (due_cents / 1000).max(100)
}

/// Why a payment about to be recorded cannot be right: more than what is due for its milestone
/// (or than the most it can be when the amount is not computed). `schedule` is the project's
/// schedule before the payment. The reason is in French, for the staff who type it.
pub fn check_payment(
    schedule: &ProjectSchedule,
    id: MilestoneId,
    amount_cents: i64,
    cfg: &MilestonesConfig,
) -> Result<(), String> {
    let ctx = Ctx {
        f: &Facts::default(),
        today: schedule.today,
        cfg,
        warnings: Vec::new(),
    };
    let computed = schedule
        .payments
        .iter()
        .find(|p| p.milestone == id && p.kind == PaymentKind::Versement)
        .and_then(|p| p.amount_cents);
    let limit = computed.unwrap_or_else(|| ctx.payment_ceiling(id));
    if amount_cents <= limit + payment_tolerance(limit) {
        return Ok(());
    }
    Err(match computed {
        Some(due) => format!(
            "montant refusé : {} dépasse le montant dû pour {id} ({})",
            format_eur(amount_cents),
            format_eur(due)
        ),
        None => format!(
            "montant refusé : {} dépasse le montant maximal d'un versement {id} ({})",
            format_eur(amount_cents),
            format_eur(limit)
        ),
    })
}

/// The next deadline to write into the "Prochaine échéance" annotation: the earliest due date
/// among the milestones still open. An overdue milestone stays the next deadline until it is
/// done, since it is what staff must act on first; payments that may not be proposed are left
/// out (nobody can act on them yet).
pub fn next_deadline(
    schedule: &ProjectSchedule,
    today: NaiveDate,
) -> Option<(MilestoneId, NaiveDate)> {
    schedule
        .milestones
        .iter()
        .filter(|m| m.state.is_open())
        .filter(|m| !m.blocker.is_some_and(Blocker::prevents_payment))
        .filter_map(|m| m.due.map(|due| (m, due)))
        .filter(|(m, due)| *due >= today || m.state != State::AVenir)
        .min_by_key(|(_, due)| *due)
        .map(|(m, due)| (m.id, due))
}

/// The schedule of one project: every milestone of milestones.md with its due date and state,
/// and every payment with its amount and how it was computed.
///
/// `events` are the project's timeline in the order they were appended; events naming another
/// project than the first one are ignored. For each [`EventSlot`] the latest recorded event wins
/// (ties go to the later one in the slice), and a [`EventKind::Retracted`] empties the slot.
pub fn derive(events: &[Event], today: NaiveDate, cfg: &MilestonesConfig) -> ProjectSchedule {
    let facts = Facts::resolve(events, today);
    let mut ctx = Ctx {
        f: &facts,
        today,
        cfg,
        warnings: facts.warnings.clone(),
    };
    let mut milestones = Vec::new();
    let mut payments = Vec::new();

    let (amo1, amo1_pay) = ctx.amo1();
    milestones.push(ctx.ps_due());
    milestones.push(ctx.ps_tacite());
    let (amo2, amo2_pay) = ctx.amo2();
    milestones.insert(0, amo1);
    milestones.push(amo2);
    payments.push(amo1_pay);
    payments.push(amo2_pay);
    milestones.push(ctx.finess());
    for (m, p) in ctx.dotations() {
        milestones.push(m);
        payments.push(p);
    }
    milestones.push(ctx.socle());
    let (oper, recovery) = ctx.oper18();
    milestones.push(oper);
    payments.extend(recovery);
    milestones.push(ctx.target(MilestoneId::Adh30, cfg.adh30_months));
    milestones.push(ctx.target(MilestoneId::Adh50, Some(cfg.adh50_months)));
    milestones.push(ctx.target(MilestoneId::Gouv5, Some(cfg.gouv5_months)));

    ProjectSchedule {
        project: facts.project,
        ps_dossier: facts.ps_dossier,
        today,
        milestones,
        payments,
        warnings: ctx.warnings,
    }
}

/// The PS decision as recorded.
#[derive(Debug, Clone)]
enum PsDecision {
    Validated(NaiveDate),
    Refused(NaiveDate, String),
}

/// The current value of every slot, after corrections and retractions.
#[derive(Debug, Default)]
struct Facts {
    project: i64,
    d0: Option<NaiveDate>,
    li_accepted: Option<NaiveDate>,
    li_refused: Option<NaiveDate>,
    amorcage: Option<NaiveDate>,
    r: Option<NaiveDate>,
    ps_dossier: Option<i64>,
    ps_decision: Option<PsDecision>,
    finess: Option<(NaiveDate, String)>,
    dotation: Option<NaiveDate>,
    socle_first: Option<NaiveDate>,
    socle_both: Option<NaiveDate>,
    justificatifs: BTreeMap<u32, NaiveDate>,
    members: BTreeMap<NaiveDate, u32>,
    /// `Some(true)` when an RNA or SIRET is on file, `Some(false)` when checked and absent.
    association: Option<bool>,
    paid: BTreeMap<MilestoneId, (NaiveDate, i64)>,
    targets: BTreeMap<MilestoneId, NaiveDate>,
    warnings: Vec<String>,
}

impl Facts {
    fn resolve(events: &[Event], today: NaiveDate) -> Self {
        let mut facts = Facts {
            project: events.first().map_or(0, |e| e.project),
            ..Facts::default()
        };
        let mut latest: BTreeMap<EventSlot, &Event> = BTreeMap::new();
        let mut foreign = 0;
        for e in events {
            if e.project != facts.project {
                foreign += 1;
                continue;
            }
            let slot = e.slot();
            match latest.get(&slot) {
                Some(prev) if prev.recorded_at > e.recorded_at => {}
                _ => {
                    latest.insert(slot, e);
                }
            }
        }
        if foreign > 0 {
            facts.warnings.push(format!(
                "{} pour le projet n° {}",
                crate::rules::text::count(
                    foreign,
                    "événement d'un autre projet ignoré",
                    "événements d'un autre projet ignorés"
                ),
                facts.project
            ));
        }
        for e in latest.into_values() {
            let d = e.effective;
            match &e.kind {
                EventKind::LiFiled => facts.d0 = Some(d),
                EventKind::LiAccepted => facts.li_accepted = Some(d),
                EventKind::LiRefused { .. } => facts.li_refused = Some(d),
                EventKind::AmorcageContractSigned => facts.amorcage = Some(d),
                EventKind::PsFiled { dossier } => {
                    facts.r = Some(d);
                    facts.ps_dossier = *dossier;
                }
                EventKind::PsValidated => facts.ps_decision = Some(PsDecision::Validated(d)),
                EventKind::PsRefused { motivation } => {
                    if motivation.trim().is_empty() {
                        facts.warnings.push(format!(
                            "refus du projet de santé du {} enregistré sans motivation : \
                             la motivation est obligatoire, à compléter",
                            fr(d)
                        ));
                    }
                    facts.ps_decision = Some(PsDecision::Refused(d, motivation.clone()));
                }
                EventKind::FinessReceived { finess } => facts.finess = Some((d, finess.clone())),
                EventKind::DotationContractSigned => facts.dotation = Some(d),
                EventKind::MissionSocleDeployed { scope } => match scope {
                    SocleScope::PremiereActivite => facts.socle_first = Some(d),
                    SocleScope::DeuxActivites => facts.socle_both = Some(d),
                },
                EventKind::JustificatifsReceived { year } => {
                    facts.justificatifs.insert(*year, d);
                }
                EventKind::MembershipCount { members } => {
                    facts.members.insert(d, *members);
                }
                EventKind::AssociationOnFile { rna, siret } => {
                    let present =
                        |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
                    facts.association = Some(present(rna) || present(siret));
                }
                EventKind::PaymentRecorded {
                    milestone,
                    amount_cents,
                } => {
                    if d <= today {
                        facts.paid.insert(*milestone, (d, *amount_cents));
                    } else {
                        facts.warnings.push(format!(
                            "versement {milestone} daté du {}, postérieur à aujourd'hui : \
                             non pris en compte",
                            fr(d)
                        ));
                    }
                }
                EventKind::TargetMet { milestone } => {
                    facts.targets.insert(*milestone, d);
                }
                EventKind::Retracted { .. } => {}
            }
        }
        facts
    }

    /// Members on `date`: the latest count effective on or before it.
    fn members_on(&self, date: NaiveDate) -> Option<(NaiveDate, u32)> {
        self.members
            .range(..=date)
            .next_back()
            .map(|(d, n)| (*d, *n))
    }
}

/// The headcount a dotation is computed on: n = num / den, and how it was obtained.
struct Headcount {
    num: i128,
    den: i128,
    how: String,
}

impl Headcount {
    fn whole(n: u32, how: String) -> Self {
        Self {
            num: n.into(),
            den: 1,
            how,
        }
    }

    /// `55` or `54,73` (two decimals, half-up; the exact value is used in the computation).
    fn display(&self) -> String {
        if self.num % self.den == 0 {
            (self.num / self.den).to_string()
        } else {
            let hundredths = div_round_half_up(self.num * 100, self.den);
            format!("{},{:02}", hundredths / 100, hundredths % 100)
        }
    }
}

struct Ctx<'a> {
    f: &'a Facts,
    today: NaiveDate,
    cfg: &'a MilestonesConfig,
    warnings: Vec<String>,
}

/// The PS validation, explicit or tacit.
#[derive(Debug, Clone, Copy)]
struct Validation {
    date: NaiveDate,
    explicit: bool,
    /// True once it has taken effect: an explicit decision on its date, a tacit one the day
    /// after R + 2 months (that day is the administration's last day to decide).
    acquired: bool,
}

impl Ctx<'_> {
    fn happened(&self, d: Option<NaiveDate>) -> Option<NaiveDate> {
        d.filter(|d| *d <= self.today)
    }

    fn tacit_date(&self) -> Option<NaiveDate> {
        self.f.r.map(|r| add_months(r, PS_TACIT_MONTHS))
    }

    /// The PS validation: an explicit decision taken before the tacit date, else the tacit
    /// validation on R + 2 months (unless a refusal was recorded on or before that day).
    fn validation(&self) -> Option<Validation> {
        let tacit = self.tacit_date();
        let explicit = |date: NaiveDate| Validation {
            date,
            explicit: true,
            acquired: date <= self.today,
        };
        let tacit_v = |date: NaiveDate| Validation {
            date,
            explicit: false,
            acquired: date < self.today,
        };
        match (&self.f.ps_decision, tacit) {
            (Some(PsDecision::Validated(v)), Some(t)) if *v > t => Some(tacit_v(t)),
            (Some(PsDecision::Validated(v)), _) => Some(explicit(*v)),
            (Some(PsDecision::Refused(f, _)), Some(t)) if *f > t => Some(tacit_v(t)),
            (Some(PsDecision::Refused(..)), _) => None,
            (None, Some(t)) => Some(tacit_v(t)),
            (None, None) => None,
        }
    }

    /// Why the whole project, or everything after the PS, no longer applies.
    fn li_stop(&self) -> Option<String> {
        self.f
            .li_refused
            .map(|d| format!("lettre d'intention refusée le {}", fr(d)))
    }

    fn ps_stop(&self) -> Option<String> {
        self.li_stop().or_else(|| match &self.f.ps_decision {
            Some(PsDecision::Refused(d, motivation)) if motivation.trim().is_empty() => {
                Some(format!(
                    "projet de santé refusé le {} (motivation non enregistrée)",
                    fr(*d)
                ))
            }
            Some(PsDecision::Refused(d, motivation)) => Some(format!(
                "projet de santé refusé le {} (motif : {})",
                fr(*d),
                motivation.trim()
            )),
            _ => None,
        })
    }

    fn association_blocker(&self) -> Option<Blocker> {
        (self.f.association != Some(true)).then_some(Blocker::AssociationNotOnFile)
    }

    /// State of a dated deadline that is done by an event.
    fn deadline(
        &self,
        id: MilestoneId,
        due: Option<NaiveDate>,
        done: Option<NaiveDate>,
        note: String,
    ) -> Milestone {
        let mut m = Milestone {
            id,
            state: State::AVenir,
            due,
            done_on: None,
            overdue_since: None,
            recipient: Role::Ars,
            amount_cents: None,
            blocker: None,
            note,
        };
        if let Some(done) = self.happened(done) {
            m.state = State::Fait;
            m.done_on = Some(done);
        } else if let Some(due) = due {
            if due == self.today {
                m.state = State::Du;
            } else if due < self.today {
                m.state = State::EnRetard;
                m.overdue_since = due.checked_add_days(Days::new(1));
            }
        }
        m
    }

    fn sans_objet(&self, id: MilestoneId, due: Option<NaiveDate>, why: String) -> Milestone {
        Milestone {
            id,
            state: State::SansObjet,
            due,
            done_on: None,
            overdue_since: None,
            recipient: if id.is_payment() {
                Role::Cpam
            } else {
                Role::Ars
            },
            amount_cents: None,
            blocker: None,
            note: why,
        }
    }

    /// The milestone and payment line of a payment to the ESS.
    ///
    /// `trigger` is the date the payment becomes due and `acquired` whether that has happened;
    /// `stop` says why it no longer applies.
    #[allow(clippy::too_many_arguments)]
    fn payment(
        &self,
        id: MilestoneId,
        trigger: Option<NaiveDate>,
        acquired: bool,
        stop: Option<String>,
        blocker: Option<Blocker>,
        amount: Option<i64>,
        explanation: String,
        note: String,
    ) -> (Milestone, Payment) {
        let paid = self.f.paid.get(&id).copied();
        let mut m = Milestone {
            id,
            state: State::AVenir,
            due: trigger,
            done_on: None,
            overdue_since: None,
            recipient: Role::Cpam,
            amount_cents: amount,
            blocker: None,
            note,
        };
        let partial = paid.and_then(|(on, cents)| {
            amount
                .filter(|due| cents < *due - payment_tolerance(*due))
                .map(|due| (on, cents, due))
        });
        if let (Some((on, cents, due)), None) = (partial, &stop) {
            // Less than what is due was paid: still open, with what remains.
            m.note = join(
                &m.note,
                &format!(
                    "versement partiel le {} : {} sur {} (reste à verser {})",
                    fr(on),
                    format_eur(cents),
                    format_eur(due),
                    format_eur(due - cents)
                ),
            );
            if let Some(trigger) = trigger {
                let late_from = trigger
                    .checked_add_days(Days::new(u64::from(self.cfg.payment_grace_days) + 1))
                    .unwrap_or(NaiveDate::MAX);
                if self.today < late_from {
                    m.state = State::Du;
                } else {
                    m.state = State::EnRetard;
                    m.overdue_since = Some(late_from);
                }
            } else {
                m.state = State::Du;
            }
        } else if let Some((on, cents)) = paid {
            m.state = State::Fait;
            m.done_on = Some(on);
            m.amount_cents = Some(cents);
            let mut extra = format!("versé le {} : {}", fr(on), format_eur(cents));
            if let Some(computed) = amount.filter(|c| *c != cents) {
                extra.push_str(&format!(
                    " (montant calculé : {}, écart de {})",
                    format_eur(computed),
                    format_eur(cents - computed)
                ));
            }
            if let Some(stop) = &stop {
                extra.push_str(&format!(" ; {stop}"));
            }
            m.note = join(&m.note, &extra);
        } else if let Some(stop) = stop {
            m.state = State::SansObjet;
            m.amount_cents = None;
            m.note = join(&stop, "aucun versement");
        } else {
            m.blocker = blocker;
            if let Some(b) = blocker {
                m.note = join(&m.note, &b.libelle());
            }
            let blocked = blocker.is_some_and(Blocker::prevents_payment);
            if let (Some(trigger), true, false) = (trigger, acquired, blocked) {
                let late_from = trigger
                    .checked_add_days(Days::new(u64::from(self.cfg.payment_grace_days) + 1))
                    .unwrap_or(NaiveDate::MAX);
                if self.today < late_from {
                    m.state = State::Du;
                } else {
                    m.state = State::EnRetard;
                    m.overdue_since = Some(late_from);
                }
            }
        }
        let p = Payment {
            milestone: id,
            kind: PaymentKind::Versement,
            state: m.state,
            due: m.due,
            overdue_since: m.overdue_since,
            amount_cents: amount,
            paid_on: paid.map(|(d, _)| d),
            paid_cents: paid.map(|(_, c)| c),
            blocker: m.blocker,
            explanation,
        };
        (m, p)
    }

    /// The most a payment of `id` can be when its amount is not computed: half the crédit
    /// d'amorçage, or the largest dotation.
    fn payment_ceiling(&self, id: MilestoneId) -> i64 {
        match id {
            MilestoneId::Amo1 => self.amorcage_halves().0,
            MilestoneId::Amo2 => self.amorcage_halves().1,
            _ => i64::from(self.cfg.dotation_max_eur) * 100,
        }
    }

    fn amorcage_halves(&self) -> (i64, i64) {
        let total = i64::from(self.cfg.amorcage_total_eur) * 100;
        let first = i64::try_from(div_round_half_up(total.into(), 2)).unwrap_or(i64::MAX);
        (first, total - first)
    }

    fn amo1(&self) -> (Milestone, Payment) {
        let (half, _) = self.amorcage_halves();
        let total = i64::from(self.cfg.amorcage_total_eur) * 100;
        let explanation = format!(
            "première moitié du crédit d'amorçage : {} × 1/2 = {}",
            format_eur(total),
            format_eur(half)
        );
        let trigger = self.f.amorcage;
        let note = match (trigger, self.f.li_accepted) {
            (Some(c), _) => format!(
                "dû à la signature du contrat de crédit d'amorçage du {}",
                fr(c)
            ),
            (None, Some(a)) => format!(
                "dû à la signature du contrat de crédit d'amorçage (lettre d'intention \
                 validée le {}), pas encore enregistrée",
                fr(a)
            ),
            (None, None) => "dû à la signature du contrat de crédit d'amorçage, qui suit la \
                 validation de la lettre d'intention"
                .into(),
        };
        self.payment(
            MilestoneId::Amo1,
            trigger,
            self.happened(trigger).is_some(),
            self.li_stop(),
            self.association_blocker(),
            Some(half),
            explanation,
            note,
        )
    }

    fn ps_due(&self) -> Milestone {
        if let (Some(stop), None) = (self.li_stop(), self.f.r) {
            return self.sans_objet(MilestoneId::PsDue, None, stop);
        }
        // The delay PS-DEL-01 checks a filed projet against: one computation for both.
        let due = self.f.d0.map(crate::rules::echeance_projet_sante);
        let mut note = match self.f.d0 {
            Some(d0) => format!(
                "projet de santé à déposer dans les {} mois suivant la lettre d'intention \
                 du {}",
                crate::rules::DELAI_PROJET_SANTE_MOIS,
                fr(d0)
            ),
            None => "date de dépôt de la lettre d'intention (D0) non connue".into(),
        };
        if let (Some(r), Some(due)) = (self.happened(self.f.r), due) {
            let late = days_between(due, r);
            note = if late > 0 {
                format!(
                    "projet de santé déposé le {}, avec {} de retard sur l'échéance du {}",
                    fr(r),
                    jours(late),
                    fr(due)
                )
            } else {
                format!("projet de santé déposé le {}", fr(r))
            };
        }
        self.deadline(MilestoneId::PsDue, due, self.f.r, note)
    }

    fn ps_tacite(&self) -> Milestone {
        let id = MilestoneId::PsTacite;
        if let Some(stop) = self.li_stop() {
            return self.sans_objet(id, None, stop);
        }
        let Some(t) = self.tacit_date() else {
            return match &self.f.ps_decision {
                Some(PsDecision::Validated(v)) => self.sans_objet(
                    id,
                    None,
                    format!("projet de santé validé expressément le {}", fr(*v)),
                ),
                Some(PsDecision::Refused(d, _)) => {
                    self.sans_objet(id, None, format!("projet de santé refusé le {}", fr(*d)))
                }
                None => self.deadline(
                    id,
                    None,
                    None,
                    "dépôt du projet de santé + 2 mois : date de dépôt non connue".into(),
                ),
            };
        };
        match &self.f.ps_decision {
            Some(PsDecision::Validated(v)) if *v <= t => {
                return self.sans_objet(
                    id,
                    Some(t),
                    format!(
                        "projet de santé validé expressément le {}, avant l'échéance de la \
                         validation tacite",
                        fr(*v)
                    ),
                );
            }
            Some(PsDecision::Refused(d, _)) if *d <= t => {
                return self.sans_objet(
                    id,
                    Some(t),
                    format!(
                        "projet de santé refusé le {}, avant l'échéance de la validation tacite",
                        fr(*d)
                    ),
                );
            }
            _ => {}
        }
        let r = self.f.r.unwrap_or(t);
        let mut m = self.deadline(
            id,
            Some(t),
            None,
            format!(
                "projet de santé déposé le {} : sans décision contraire au plus tard le {}, \
                 il est réputé validé",
                fr(r),
                fr(t)
            ),
        );
        match m.state {
            State::Du => {
                m.note = format!(
                    "dernier jour pour une décision expresse sur le projet de santé déposé le \
                     {} : à défaut, il est réputé validé",
                    fr(r)
                );
            }
            State::EnRetard => {
                // Past the deadline without a contrary decision: the validation happened.
                m.state = State::Fait;
                m.done_on = Some(t);
                m.overdue_since = None;
                m.note = format!(
                    "projet de santé réputé validé le {} (aucune décision dans les 2 mois \
                     suivant son dépôt du {})",
                    fr(t),
                    fr(r)
                );
                match &self.f.ps_decision {
                    Some(PsDecision::Refused(d, _)) => {
                        m.note.push_str(&format!(
                            " ; refus enregistré ensuite le {} : versements arrêtés, \
                             retrait d'une décision implicite à examiner",
                            fr(*d)
                        ));
                    }
                    Some(PsDecision::Validated(v)) => {
                        m.note
                            .push_str(&format!(" ; validation expresse postérieure du {}", fr(*v)));
                    }
                    None => {}
                }
            }
            _ => {}
        }
        m
    }

    fn amo2(&self) -> (Milestone, Payment) {
        let (first, half) = self.amorcage_halves();
        let total = i64::from(self.cfg.amorcage_total_eur) * 100;
        let explanation = format!(
            "solde du crédit d'amorçage : {} − {} = {}, versé par la CPAM de rattachement",
            format_eur(total),
            format_eur(first),
            format_eur(half)
        );
        let v = self.validation();
        let note = match v {
            Some(v) if v.explicit => format!(
                "dû à la validation expresse du projet de santé du {}",
                fr(v.date)
            ),
            Some(v) if v.acquired => format!(
                "dû à la validation tacite du projet de santé, acquise le {}",
                fr(v.date)
            ),
            Some(v) => format!(
                "dû à la validation du projet de santé : tacite le {} sans décision contraire",
                fr(v.date)
            ),
            None => "dû à la validation du projet de santé (expresse ou tacite)".into(),
        };
        self.payment(
            MilestoneId::Amo2,
            v.map(|v| v.date),
            v.is_some_and(|v| v.acquired),
            self.ps_stop(),
            self.association_blocker(),
            Some(half),
            explanation,
            note,
        )
    }

    fn finess(&self) -> Milestone {
        let id = MilestoneId::Finess;
        if let Some((on, number)) = self.f.finess.as_ref().filter(|(d, _)| *d <= self.today) {
            let mut m = self.deadline(id, None, Some(*on), format!("numéro FINESS {number}"));
            m.due = self.validation().map(|v| v.date);
            return m;
        }
        if let Some(stop) = self.ps_stop() {
            return self.sans_objet(id, None, stop);
        }
        match self.validation() {
            Some(v) if v.acquired => Milestone {
                state: State::Du,
                ..self.deadline(
                    id,
                    None,
                    None,
                    format!(
                        "numéro FINESS attendu de l'ARS depuis la validation du projet de \
                         santé du {} (le cahier des charges ne fixe pas de délai)",
                        fr(v.date)
                    ),
                )
            }
            .with_due(v.date),
            _ => self.deadline(
                id,
                None,
                None,
                "attribué par l'ARS après la validation du projet de santé".into(),
            ),
        }
    }

    /// DOT-1 and every DOT-k whose contract year has started (or that was already recorded).
    fn dotations(&mut self) -> Vec<(Milestone, Payment)> {
        let validation = self.validation();
        let v_acquired = validation.filter(|v| v.acquired);
        let stop = self.ps_stop();
        let blocker_base = self
            .association_blocker()
            .or((v_acquired.is_none()).then_some(Blocker::PsNotValidated));
        let mut out = Vec::new();

        let Some(s) = self.f.dotation else {
            let (m, p) = self.payment(
                MilestoneId::Dot(1),
                None,
                false,
                stop,
                self.association_blocker(),
                None,
                "montant calculé à la signature du contrat de dotation annuelle, sur le \
                 nombre de médecins adhérents à cette date"
                    .into(),
                "due à la signature du contrat de dotation annuelle, après la validation du \
                 projet de santé"
                    .into(),
            );
            return vec![(m, p)];
        };
        if let Some(v) = validation.filter(|v| s < v.date) {
            self.warnings.push(format!(
                "contrat de dotation annuelle signé le {}, avant la validation du projet de \
                 santé du {} : dotation proposée à partir de la validation",
                fr(s),
                fr(v.date)
            ));
        }

        // DOT-1: at the signature, on the headcount at that date.
        let trigger = Some(validation.map_or(s, |v| v.date.max(s)));
        let headcount = self.f.members_on(s).map(|(from, n)| {
            Headcount::whole(
                n,
                format!(
                    "n = {n} médecins adhérents à la signature du contrat le {} (effectif \
                     déclaré depuis le {})",
                    fr(s),
                    fr(from)
                ),
            )
        });
        let (amount, explanation) = self.dotation_amount(headcount, s);
        let blocker = blocker_base.or(amount.is_none().then_some(Blocker::AmountNotComputed));
        out.push(self.payment(
            MilestoneId::Dot(1),
            trigger,
            s <= self.today && v_acquired.is_some(),
            stop.clone(),
            blocker,
            amount,
            explanation,
            format!(
                "due à la signature du contrat de dotation annuelle du {}",
                fr(s)
            ),
        ));

        // DOT-k, k ≥ 2: at the (k − 1)-th anniversary, on contract year k − 1.
        let mut last = 1;
        while last < MAX_DOTATIONS && add_years(s, last - 1) <= self.today {
            last += 1;
        }
        let recorded_max = self
            .f
            .justificatifs
            .keys()
            .map(|y| y + 1)
            .chain(self.f.paid.keys().filter_map(|id| match id {
                MilestoneId::Dot(k) => Some(*k),
                _ => None,
            }))
            .max()
            .unwrap_or(1)
            .min(MAX_DOTATIONS);
        for k in 2..=last.max(recorded_max) {
            let year = k - 1;
            let start = add_years(s, year - 1);
            let anniversary = add_years(s, year);
            let received = self.f.justificatifs.get(&year).copied();
            let received_now = received.filter(|d| *d <= self.today);
            let trigger = received_now.map_or(anniversary, |j| j.max(anniversary));
            let trigger = validation.map_or(trigger, |v| trigger.max(v.date));
            let (amount, explanation) =
                self.dotation_amount(self.headcount_for_year(start, anniversary), anniversary);
            let blocker = blocker_base
                .or(received_now
                    .is_none()
                    .then_some(Blocker::JustificatifsMissing { year }))
                .or(amount.is_none().then_some(Blocker::AmountNotComputed));
            let mut note = format!(
                "due au {} anniversaire du contrat de dotation, le {}, sur l'année du {} au {}",
                ordinal(year),
                fr(anniversary),
                fr(start),
                fr(anniversary.pred_opt().unwrap_or(anniversary))
            );
            if let Some(j) = received_now {
                note.push_str(&format!(
                    " ; justificatifs de l'année {year} reçus le {}",
                    fr(j)
                ));
            }
            out.push(self.payment(
                MilestoneId::Dot(k),
                Some(trigger),
                anniversary <= self.today && v_acquired.is_some(),
                stop.clone(),
                blocker,
                amount,
                explanation,
                note,
            ));
        }
        out
    }

    /// The headcount of a contract year: the time-weighted average of the membership history
    /// when it covers the whole year, else the count at the anniversary.
    fn headcount_for_year(&self, start: NaiveDate, end: NaiveDate) -> Option<Headcount> {
        if let Some((_, first)) = self.f.members_on(start) {
            let den = i128::from(days_between(start, end));
            if den <= 0 {
                return None;
            }
            let mut num: i128 = 0;
            let mut parts = Vec::new();
            let mut current = (start, first);
            let changes = self
                .f
                .members
                .range(start.succ_opt().unwrap_or(start)..end)
                .map(|(d, n)| (*d, *n))
                .chain(std::iter::once((end, 0)));
            for (date, n) in changes {
                let days = days_between(current.0, date);
                num += i128::from(current.1) * i128::from(days);
                parts.push(format!(
                    "{} du {} au {} ({days} j)",
                    current.1,
                    fr(current.0),
                    fr(date.pred_opt().unwrap_or(date))
                ));
                current = (date, n);
            }
            let hc = Headcount {
                num,
                den,
                how: String::new(),
            };
            let how = if parts.len() == 1 {
                format!(
                    "n = {} médecins adhérents tout au long de l'année du {} au {}",
                    first,
                    fr(start),
                    fr(end.pred_opt().unwrap_or(end))
                )
            } else {
                format!(
                    "n = {} : moyenne des effectifs pondérée par la durée sur l'année \
                     ({den} jours) : {}",
                    hc.display(),
                    parts.join(", ")
                )
            };
            return Some(Headcount { how, ..hc });
        }
        self.f.members_on(end).map(|(from, n)| {
            Headcount::whole(
                n,
                format!(
                    "n = {n} médecins adhérents à la date anniversaire du {} (effectif déclaré \
                     depuis le {} ; historique des adhésions incomplet sur l'année)",
                    fr(end),
                    fr(from)
                ),
            )
        })
    }

    /// The dotation for `headcount`, with its explanation; `None` when it is not computed.
    fn dotation_amount(
        &self,
        headcount: Option<Headcount>,
        on: NaiveDate,
    ) -> (Option<i64>, String) {
        let cfg = self.cfg;
        let Some(h) = headcount else {
            return (
                None,
                format!(
                    "montant non calculé : nombre de médecins adhérents au {} inconnu \
                     (à enregistrer) ; examen manuel nécessaire",
                    fr(on)
                ),
            );
        };
        let min_c = i128::from(cfg.dotation_min_eur) * 100;
        let max_c = i128::from(cfg.dotation_max_eur) * 100;
        let n_min = i128::from(cfg.dotation_min_members);
        let n_max = i128::from(cfg.dotation_max_members);
        let n = h.display();
        if h.num < n_min * h.den {
            return (
                None,
                format!(
                    "{} ; n = {n} < {n_min} : montant non calculé ; en dessous de {n_min} \
                     médecins adhérents, une dotation n'est possible que sur dérogation de la \
                     CPN : examen manuel nécessaire",
                    h.how
                ),
            );
        }
        if h.num >= n_max * h.den || n_max <= n_min {
            return (
                Some(i64::try_from(max_c).unwrap_or(i64::MAX)),
                format!(
                    "{} ; n = {n} ≥ {n_max} : plafond de {}",
                    h.how,
                    format_eur(i64::try_from(max_c).unwrap_or(i64::MAX))
                ),
            );
        }
        let cents = min_c
            + div_round_half_up(
                (h.num - n_min * h.den) * (max_c - min_c),
                (n_max - n_min) * h.den,
            );
        let cents = i64::try_from(cents).unwrap_or(i64::MAX);
        (
            Some(cents),
            format!(
                "{} ; formule linéaire entre ({n_min} médecins ; {}) et ({n_max} médecins ; {}) : \
                 {} + ({n} − {n_min}) × {} / {} = {} (arrondi au centime)",
                h.how,
                format_eur(min_c as i64),
                format_eur(max_c as i64),
                format_eur(min_c as i64),
                format_eur((max_c - min_c) as i64),
                n_max - n_min,
                format_eur(cents)
            ),
        )
    }

    fn socle(&self) -> Milestone {
        let id = MilestoneId::Socle;
        if let Some(stop) = self.ps_stop() {
            return self.sans_objet(id, None, stop);
        }
        let due = self.f.r.map(|r| add_months(r, SOCLE_MONTHS));
        let note = match (self.happened(self.f.socle_both), self.f.r) {
            (Some(d), _) => format!(
                "les deux activités de la mission socle sont déployées depuis le {}",
                fr(d)
            ),
            (None, Some(r)) => format!(
                "les deux activités de la mission socle doivent être en place un an après le \
                 dépôt du projet de santé du {}",
                fr(r)
            ),
            (None, None) => {
                "un an après le dépôt du projet de santé : date de dépôt non connue".into()
            }
        };
        self.deadline(id, due, self.f.socle_both, note)
    }

    fn anchor(&self, anchor: Anchor) -> Option<NaiveDate> {
        match anchor {
            Anchor::DepotLettreIntention => self.f.d0,
            Anchor::ValidationLettreIntention => self.f.li_accepted,
            Anchor::SignatureAmorcage => self.f.amorcage,
            Anchor::PremierVersementAmorcage => [MilestoneId::Amo1, MilestoneId::Amo2]
                .iter()
                .filter_map(|id| self.f.paid.get(id).map(|(d, _)| *d))
                .min(),
            Anchor::ValidationProjetSante => self.validation().map(|v| v.date),
        }
    }

    fn oper18(&self) -> (Milestone, Option<Payment>) {
        let id = MilestoneId::Oper18;
        let paid: Vec<(MilestoneId, NaiveDate, i64)> = [MilestoneId::Amo1, MilestoneId::Amo2]
            .iter()
            .filter_map(|id| self.f.paid.get(id).map(|(d, c)| (*id, *d, *c)))
            .collect();
        if let Some(stop) = self.li_stop() {
            return (self.sans_objet(id, None, stop), None);
        }
        if let (Some(stop), true) = (self.ps_stop(), paid.is_empty()) {
            return (
                self.sans_objet(id, None, join(&stop, "aucune somme versée à récupérer")),
                None,
            );
        }
        let anchor = self.cfg.operational_anchor;
        let due = self.anchor(anchor).map(|a| add_months(a, OPER_MONTHS));
        let deployed = [self.f.socle_first, self.f.socle_both]
            .into_iter()
            .flatten()
            .filter(|d| *d <= self.today)
            .min();
        let Some(due) = due else {
            let note = format!("{} + 18 mois : date non connue", anchor.libelle());
            return (self.deadline(id, None, deployed, note), None);
        };
        let mut note = format!(
            "au moins une activité de la mission socle doit être déployée au plus tard le {}, \
             18 mois après le {} ; à défaut, la procédure de récupération des sommes versées \
             est engagée",
            fr(due),
            anchor.libelle()
        );
        let in_time = deployed.filter(|d| *d <= due);
        let mut m = self.deadline(id, Some(due), in_time, note.clone());
        if m.state == State::Fait {
            m.note = format!(
                "première activité de la mission socle déployée le {}, avant l'échéance du {}",
                fr(in_time.unwrap_or(due)),
                fr(due)
            );
            return (m, None);
        }
        if m.state != State::EnRetard {
            return (m, None);
        }
        let total: i64 = paid.iter().map(|(_, _, c)| c).sum();
        let detail = paid
            .iter()
            .map(|(id, d, c)| format!("{id} versé le {} : {}", fr(*d), format_eur(*c)))
            .collect::<Vec<_>>()
            .join(" + ");
        if let Some(late) = deployed {
            m.state = State::Fait;
            m.done_on = Some(late);
            m.overdue_since = None;
            note = format!(
                "première activité de la mission socle déployée le {}, après l'échéance du {} : \
                 la procédure de récupération des sommes versées a pu être engagée, à examiner",
                fr(late),
                fr(due)
            );
        } else {
            note = format!(
                "aucune activité de la mission socle déployée à l'échéance du {} : procédure de \
                 récupération des sommes versées à engager",
                fr(due)
            );
        }
        if total == 0 {
            m.note = join(&note, "aucun versement enregistré, rien à récupérer");
            return (m, None);
        }
        m.note = join(
            &note,
            &format!("sommes versées à récupérer : {}", format_eur(total)),
        );
        let mut explanation = format!(
            "récupération de la totalité des sommes versées au titre du crédit d'amorçage : \
             {detail} = {} (récupération totale ou au prorata : à confirmer)",
            format_eur(total)
        );
        if let Some(late) = deployed {
            explanation.push_str(&format!(
                " ; activité déployée tardivement le {} : opportunité de la récupération à \
                 apprécier",
                fr(late)
            ));
        }
        let recovery = Payment {
            milestone: id,
            kind: PaymentKind::Recuperation,
            state: State::Du,
            due: due.checked_add_days(Days::new(1)),
            overdue_since: None,
            amount_cents: Some(total),
            paid_on: None,
            paid_cents: None,
            blocker: None,
            explanation,
        };
        (m, Some(recovery))
    }

    fn target(&self, id: MilestoneId, months: Option<u32>) -> Milestone {
        if let Some(stop) = self.ps_stop() {
            return self.sans_objet(id, None, stop);
        }
        let anchor = self.cfg.targets_anchor;
        let due = months.and_then(|m| self.anchor(anchor).map(|a| add_months(a, m)));
        let what = match id {
            MilestoneId::Adh30 => {
                "objectif intermédiaire d'au moins 30 % des spécialistes \
                 libéraux du territoire adhérents"
            }
            MilestoneId::Adh50 => {
                "au moins 50 % des spécialistes libéraux du territoire \
                 adhérents"
            }
            _ => "concertation traçable avec les autres acteurs de santé du territoire",
        };
        let mut note = match (months, due) {
            (None, _) => format!(
                "{what} : le cahier des charges ne fixe pas de date (objectif affiché sans \
                 échéance)"
            ),
            (Some(m), Some(_)) => format!("{what}, {} mois après le {}", m, anchor.libelle()),
            (Some(m), None) => format!(
                "{what}, {} mois après le {} : date non connue",
                m,
                anchor.libelle()
            ),
        };
        if let (true, Some((from, n))) = (id != MilestoneId::Gouv5, self.f.members_on(self.today)) {
            note.push_str(&format!(
                " ; dernier effectif connu : {n} médecins adhérents depuis le {}",
                fr(from)
            ));
        }
        if let Some(d) = self.happened(self.f.targets.get(&id).copied()) {
            note = format!("atteint le {} ({what})", fr(d));
        }
        self.deadline(id, due, self.f.targets.get(&id).copied(), note)
    }
}

impl Milestone {
    fn with_due(mut self, due: NaiveDate) -> Self {
        self.due = Some(due);
        self
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a} ; {b}")
    }
}

/// `1er`, `2e`, `3e`...
fn ordinal(n: u32) -> String {
    if n == 1 {
        "1er".into()
    } else {
        format!("{n}e")
    }
}
