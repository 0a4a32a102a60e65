//! The timeline of one ESS project: dated events, appended and never rewritten, so that every
//! figure of the schedule can be traced back to who recorded what, when and why.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A milestone of milestones.md. `Dot(k)` is the k-th dotation annuelle (k ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MilestoneId {
    Amo1,
    PsDue,
    PsTacite,
    Amo2,
    Finess,
    Dot(u32),
    Socle,
    Oper18,
    Adh30,
    Adh50,
    Gouv5,
}

impl MilestoneId {
    /// What the milestone is, in the words staff use.
    pub fn libelle(self) -> String {
        match self {
            Self::Amo1 => "Crédit d'amorçage, première moitié".into(),
            Self::PsDue => "Dépôt du projet de santé".into(),
            Self::PsTacite => "Validation tacite du projet de santé".into(),
            Self::Amo2 => "Crédit d'amorçage, seconde moitié (solde)".into(),
            Self::Finess => "Attribution du numéro FINESS par l'ARS".into(),
            Self::Dot(1) => "Dotation annuelle, 1re année".into(),
            Self::Dot(k) => format!("Dotation annuelle, {k}e année"),
            Self::Socle => "Mission socle en place (deux activités)".into(),
            Self::Oper18 => {
                "Contrôle à 18 mois : au moins une activité de la mission socle déployée".into()
            }
            Self::Adh30 => {
                "Objectif intermédiaire : au moins 30 % des spécialistes adhérents".into()
            }
            Self::Adh50 => "Au moins 50 % des spécialistes libéraux du territoire adhérents".into(),
            Self::Gouv5 => "Concertation traçable avec les autres acteurs de santé".into(),
        }
    }

    /// True for the milestones that are payments to the ESS.
    pub fn is_payment(self) -> bool {
        matches!(self, Self::Amo1 | Self::Amo2 | Self::Dot(_))
    }
}

impl fmt::Display for MilestoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Amo1 => f.write_str("AMO-1"),
            Self::PsDue => f.write_str("PS-DUE"),
            Self::PsTacite => f.write_str("PS-TACITE"),
            Self::Amo2 => f.write_str("AMO-2"),
            Self::Finess => f.write_str("FINESS"),
            Self::Dot(k) => write!(f, "DOT-{k}"),
            Self::Socle => f.write_str("SOCLE"),
            Self::Oper18 => f.write_str("OPER-18"),
            Self::Adh30 => f.write_str("ADH-30"),
            Self::Adh50 => f.write_str("ADH-50"),
            Self::Gouv5 => f.write_str("GOUV-5"),
        }
    }
}

impl FromStr for MilestoneId {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_uppercase();
        Ok(match upper.as_str() {
            "AMO-1" => Self::Amo1,
            "PS-DUE" => Self::PsDue,
            "PS-TACITE" => Self::PsTacite,
            "AMO-2" => Self::Amo2,
            "FINESS" => Self::Finess,
            "SOCLE" => Self::Socle,
            "OPER-18" => Self::Oper18,
            "ADH-30" => Self::Adh30,
            "ADH-50" => Self::Adh50,
            "GOUV-5" => Self::Gouv5,
            other => match other.strip_prefix("DOT-").map(str::parse::<u32>) {
                Some(Ok(k)) if k >= 1 => Self::Dot(k),
                _ => return Err(EventError::UnknownMilestone(s.to_owned())),
            },
        })
    }
}

impl From<MilestoneId> for String {
    fn from(id: MilestoneId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for MilestoneId {
    type Error = EventError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Where an event was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// DS itself: dates and states of the dossiers.
    Ds,
    /// A private annotation filled by ARS or CPAM staff.
    Annotation,
    /// `essbot milestones record`.
    Manual,
}

/// How much of the mission socle a deployment event covers: the annotation records the first
/// activity; the mission socle is in place (SOCLE) once both are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocleScope {
    /// At least one of the two activities (what OPER-18 checks).
    PremiereActivite,
    /// Both activities (what SOCLE expects).
    DeuxActivites,
}

/// What happened. The effective date is on [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The lettre d'intention was filed (its `dateDepot`): D0.
    LiFiled,
    /// The lettre d'intention was accepted (`dateTraitement`).
    LiAccepted,
    /// The lettre d'intention was refused: the project ends.
    LiRefused {
        #[serde(default)]
        motivation: String,
    },
    /// The contrat de crédit d'amorçage was signed: AMO-1 is due.
    AmorcageContractSigned,
    /// The projet de santé was filed (its `dateDepot`): R.
    PsFiled {
        /// The PS dossier's number, when the PS dossier is linked.
        #[serde(default)]
        dossier: Option<i64>,
    },
    /// The projet de santé was validated by an explicit decision.
    PsValidated,
    /// The projet de santé was refused; the decision must carry its motivation.
    PsRefused { motivation: String },
    /// The ARS gave the ESS its FINESS number.
    FinessReceived { finess: String },
    /// The contrat de dotation annuelle was signed: DOT-1 is due, later dotations follow its
    /// anniversaries.
    DotationContractSigned,
    /// An activity of the mission socle was deployed (OPER-18), or both were (SOCLE).
    MissionSocleDeployed { scope: SocleScope },
    /// The justificatifs of contract year `year` (activity report with the national indicators,
    /// list of members) were received: DOT-(year + 1) may be paid.
    JustificatifsReceived { year: u32 },
    /// The ESS has `members` member doctors from the effective date on (one point of the
    /// membership history).
    MembershipCount { members: u32 },
    /// The LI-JUR-01 check: the carrier's RNA and SIRET as found on the dossier. The carrier is
    /// "on file" when at least one is present; an event with neither says it no longer is.
    AssociationOnFile {
        #[serde(default)]
        rna: Option<String>,
        #[serde(default)]
        siret: Option<String>,
    },
    /// A payment was made for `milestone` (AMO-1, AMO-2 or DOT-k).
    PaymentRecorded {
        milestone: MilestoneId,
        amount_cents: i64,
    },
    /// Staff attest that a target without a date in DS was reached (ADH-30, ADH-50, GOUV-5).
    TargetMet { milestone: MilestoneId },
    /// Withdraws whatever was recorded for `slot` (an event recorded by mistake).
    Retracted { slot: EventSlot },
}

/// What an event is about: a later event for the same slot supersedes an earlier one. The two
/// decisions on a document share one slot, so recording a validation after a refusal (or the
/// reverse) corrects the decision instead of creating two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "slot", rename_all = "snake_case")]
pub enum EventSlot {
    LiFiled,
    LiDecision,
    AmorcageContract,
    PsFiled,
    PsDecision,
    Finess,
    DotationContract,
    MissionSocle { scope: SocleScope },
    Justificatifs { year: u32 },
    Membership { from: NaiveDate },
    Association,
    Payment { milestone: MilestoneId },
    Target { milestone: MilestoneId },
}

/// One dated fact of a project's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The project: the number of its lettre d'intention dossier.
    pub project: i64,
    pub kind: EventKind,
    /// When it happened (a civil date in Europe/Paris). A date after "today" is a planned date:
    /// the schedule shows it but does not count it as done.
    pub effective: NaiveDate,
    pub source: EventSource,
    /// Who recorded it: a DS e-mail, an instructeur, `essbot` for what DS says.
    pub author: String,
    /// When essbot recorded it; among events for the same slot, the latest recorded wins.
    pub recorded_at: DateTime<Utc>,
    /// Why (mandatory for a manual correction, see [`Event::validate`]).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Why an event cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(
        "jalon inconnu « {0} » (attendu : AMO-1, PS-DUE, PS-TACITE, AMO-2, FINESS, DOT-k, SOCLE, OPER-18, ADH-30, ADH-50 ou GOUV-5)"
    )]
    UnknownMilestone(String),
    #[error("un refus du projet de santé doit être motivé")]
    MissingMotivation,
    #[error("le jalon {0} n'est pas un versement (attendu : AMO-1, AMO-2 ou DOT-k)")]
    NotAPayment(MilestoneId),
    #[error("le montant d'un versement doit être positif ({0} centimes reçus)")]
    NonPositiveAmount(i64),
    #[error("le jalon {0} ne s'atteste pas à la main (attendu : ADH-30, ADH-50 ou GOUV-5)")]
    NotATarget(MilestoneId),
    #[error("les années de contrat se comptent à partir de 1")]
    YearZero,
    #[error("le numéro FINESS doit comporter 9 caractères (« {0} » reçu)")]
    BadFiness(String),
    #[error("une correction ou un enregistrement manuel doit indiquer son motif")]
    MissingReason,
}

impl Event {
    /// The slot this event fills (or, for a retraction, empties).
    pub fn slot(&self) -> EventSlot {
        match &self.kind {
            EventKind::LiFiled => EventSlot::LiFiled,
            EventKind::LiAccepted | EventKind::LiRefused { .. } => EventSlot::LiDecision,
            EventKind::AmorcageContractSigned => EventSlot::AmorcageContract,
            EventKind::PsFiled { .. } => EventSlot::PsFiled,
            EventKind::PsValidated | EventKind::PsRefused { .. } => EventSlot::PsDecision,
            EventKind::FinessReceived { .. } => EventSlot::Finess,
            EventKind::DotationContractSigned => EventSlot::DotationContract,
            EventKind::MissionSocleDeployed { scope } => EventSlot::MissionSocle { scope: *scope },
            EventKind::JustificatifsReceived { year } => EventSlot::Justificatifs { year: *year },
            EventKind::MembershipCount { .. } => EventSlot::Membership {
                from: self.effective,
            },
            EventKind::AssociationOnFile { .. } => EventSlot::Association,
            EventKind::PaymentRecorded { milestone, .. } => EventSlot::Payment {
                milestone: *milestone,
            },
            EventKind::TargetMet { milestone } => EventSlot::Target {
                milestone: *milestone,
            },
            EventKind::Retracted { slot } => *slot,
        }
    }

    /// Checks what a person recording the event by hand could get wrong, so that
    /// `essbot milestones record` refuses it with a French message. [`crate::milestones::derive`]
    /// still accepts any event it is given (an unmotivated refusal read from DS still stops the
    /// money, and the schedule says the motivation is missing).
    ///
    /// # Errors
    /// The first problem found, as an [`EventError`].
    pub fn validate(&self) -> Result<(), EventError> {
        if self.source == EventSource::Manual
            && self.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(EventError::MissingReason);
        }
        match &self.kind {
            EventKind::PsRefused { motivation } if motivation.trim().is_empty() => {
                Err(EventError::MissingMotivation)
            }
            EventKind::PaymentRecorded { milestone, .. } if !milestone.is_payment() => {
                Err(EventError::NotAPayment(*milestone))
            }
            EventKind::PaymentRecorded { amount_cents, .. } if *amount_cents <= 0 => {
                Err(EventError::NonPositiveAmount(*amount_cents))
            }
            EventKind::TargetMet { milestone }
                if !matches!(
                    milestone,
                    MilestoneId::Adh30 | MilestoneId::Adh50 | MilestoneId::Gouv5
                ) =>
            {
                Err(EventError::NotATarget(*milestone))
            }
            EventKind::JustificatifsReceived { year: 0 }
            | EventKind::Retracted {
                slot: EventSlot::Justificatifs { year: 0 },
            } => Err(EventError::YearZero),
            EventKind::FinessReceived { finess }
                if finess.trim().chars().count() != 9
                    || !finess.trim().chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Err(EventError::BadFiness(finess.clone()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            project: 1234,
            kind,
            effective: NaiveDate::from_ymd_opt(2026, 7, 12).expect("date"),
            source: EventSource::Manual,
            author: "agent@ars.example".into(),
            recorded_at: DateTime::from_timestamp(1_780_000_000, 0).expect("timestamp"),
            reason: Some("saisie du contrat".into()),
        }
    }

    #[test]
    fn milestone_ids_round_trip_through_their_names() {
        for id in [
            MilestoneId::Amo1,
            MilestoneId::PsDue,
            MilestoneId::PsTacite,
            MilestoneId::Amo2,
            MilestoneId::Finess,
            MilestoneId::Dot(1),
            MilestoneId::Dot(12),
            MilestoneId::Socle,
            MilestoneId::Oper18,
            MilestoneId::Adh30,
            MilestoneId::Adh50,
            MilestoneId::Gouv5,
        ] {
            assert_eq!(id.to_string().parse::<MilestoneId>(), Ok(id));
        }
        assert_eq!("dot-3".parse::<MilestoneId>(), Ok(MilestoneId::Dot(3)));
        assert!("DOT-0".parse::<MilestoneId>().is_err());
        assert!("AMO-3".parse::<MilestoneId>().is_err());
        assert_eq!(MilestoneId::Dot(2).libelle(), "Dotation annuelle, 2e année");
    }

    #[test]
    fn events_serialize_as_tagged_json() {
        let e = event(EventKind::PaymentRecorded {
            milestone: MilestoneId::Dot(2),
            amount_cents: 7_500_000,
        });
        let json = serde_json::to_value(&e).expect("serialize");
        assert_eq!(json["kind"]["type"], "payment_recorded");
        assert_eq!(json["kind"]["milestone"], "DOT-2");
        assert_eq!(json["effective"], "2026-07-12");
        assert_eq!(json["source"], "manual");
        let back: Event = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, e);

        let r = event(EventKind::Retracted {
            slot: EventSlot::Membership {
                from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
            },
        });
        let back: Event =
            serde_json::from_str(&serde_json::to_string(&r).expect("serialize")).expect("parse");
        assert_eq!(back.slot(), r.slot());
    }

    #[test]
    fn decisions_share_a_slot_so_that_one_corrects_the_other() {
        assert_eq!(
            event(EventKind::PsValidated).slot(),
            event(EventKind::PsRefused {
                motivation: "x".into()
            })
            .slot()
        );
        assert_eq!(
            event(EventKind::LiAccepted).slot(),
            event(EventKind::LiRefused {
                motivation: String::new()
            })
            .slot()
        );
    }

    #[test]
    fn validation_catches_what_a_manual_record_gets_wrong() {
        assert_eq!(
            event(EventKind::PsRefused {
                motivation: "  ".into()
            })
            .validate(),
            Err(EventError::MissingMotivation)
        );
        assert_eq!(
            event(EventKind::PaymentRecorded {
                milestone: MilestoneId::Socle,
                amount_cents: 1
            })
            .validate(),
            Err(EventError::NotAPayment(MilestoneId::Socle))
        );
        assert_eq!(
            event(EventKind::PaymentRecorded {
                milestone: MilestoneId::Amo1,
                amount_cents: 0
            })
            .validate(),
            Err(EventError::NonPositiveAmount(0))
        );
        assert_eq!(
            event(EventKind::TargetMet {
                milestone: MilestoneId::Amo2
            })
            .validate(),
            Err(EventError::NotATarget(MilestoneId::Amo2))
        );
        assert_eq!(
            event(EventKind::JustificatifsReceived { year: 0 }).validate(),
            Err(EventError::YearZero)
        );
        assert!(
            event(EventKind::FinessReceived {
                finess: "12345".into()
            })
            .validate()
            .is_err()
        );
        assert!(
            event(EventKind::FinessReceived {
                finess: "690012345".into()
            })
            .validate()
            .is_ok()
        );
        let mut no_reason = event(EventKind::PsValidated);
        no_reason.reason = None;
        assert_eq!(no_reason.validate(), Err(EventError::MissingReason));
        no_reason.source = EventSource::Ds;
        assert_eq!(no_reason.validate(), Ok(()));
        assert_eq!(
            EventError::MissingMotivation.to_string(),
            "un refus du projet de santé doit être motivé"
        );
    }
}
