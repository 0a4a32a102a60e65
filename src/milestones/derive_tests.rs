//! The derivation, date by date: each test builds a timeline and checks the schedule on
//! chosen days around its deadlines.

use chrono::{DateTime, NaiveDate, Utc};

use super::*;

pub(crate) fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

/// A project timeline under construction; events are recorded one second apart, in order.
#[derive(Default, Clone)]
pub(crate) struct Timeline {
    pub(crate) events: Vec<Event>,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(mut self, kind: EventKind, effective: NaiveDate) -> Self {
        let n = i64::try_from(self.events.len()).expect("few events");
        self.events.push(Event {
            project: 1234,
            kind,
            effective,
            source: EventSource::Annotation,
            author: "instructeur@ars.example".into(),
            recorded_at: DateTime::<Utc>::from_timestamp(1_800_000_000 + n, 0).expect("ts"),
            reason: None,
        });
        self
    }

    /// LI filed on 12/01/2026, accepted on 12/03/2026, association on file.
    pub(crate) fn standard() -> Self {
        Self::new()
            .add(EventKind::LiFiled, d(2026, 1, 12))
            .add(
                EventKind::AssociationOnFile {
                    rna: Some("W691234567".into()),
                    siret: None,
                },
                d(2026, 1, 12),
            )
            .add(EventKind::LiAccepted, d(2026, 3, 12))
    }

    pub(crate) fn ps_filed(self, on: NaiveDate) -> Self {
        self.add(
            EventKind::PsFiled {
                dossier: Some(5678),
            },
            on,
        )
    }

    pub(crate) fn members(self, n: u32, from: NaiveDate) -> Self {
        self.add(EventKind::MembershipCount { members: n }, from)
    }

    pub(crate) fn paid(self, id: MilestoneId, cents: i64, on: NaiveDate) -> Self {
        self.add(
            EventKind::PaymentRecorded {
                milestone: id,
                amount_cents: cents,
            },
            on,
        )
    }

    pub(crate) fn on(&self, today: NaiveDate) -> ProjectSchedule {
        derive(&self.events, today, &MilestonesConfig::default())
    }
}

pub(crate) fn state(s: &ProjectSchedule, id: MilestoneId) -> State {
    s.milestone(id).expect("milestone listed").state
}

pub(crate) fn due(s: &ProjectSchedule, id: MilestoneId) -> Option<NaiveDate> {
    s.milestone(id).expect("milestone listed").due
}

fn payment(s: &ProjectSchedule, id: MilestoneId) -> &Payment {
    s.payments
        .iter()
        .find(|p| p.milestone == id && p.kind == PaymentKind::Versement)
        .expect("payment listed")
}

use MilestoneId::*;
use State::*;

#[test]
fn an_empty_timeline_lists_every_milestone_without_dates() {
    let s = derive(&[], d(2026, 7, 1), &MilestonesConfig::default());
    let ids: Vec<String> = s.milestones.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "AMO-1",
            "PS-DUE",
            "PS-TACITE",
            "AMO-2",
            "FINESS",
            "DOT-1",
            "SOCLE",
            "OPER-18",
            "ADH-30",
            "ADH-50",
            "GOUV-5"
        ]
    );
    assert!(
        s.milestones
            .iter()
            .all(|m| m.state == AVenir && m.due.is_none())
    );
    assert_eq!(s.project, 0);
    assert_eq!(next_deadline(&s, d(2026, 7, 1)), None);
}

#[test]
fn ps_due_is_six_calendar_months_after_d0_clamped_to_the_month_end() {
    let t = Timeline::new().add(EventKind::LiFiled, d(2027, 8, 31));
    assert_eq!(due(&t.on(d(2027, 9, 1)), PsDue), Some(d(2028, 2, 29)));
    let t = Timeline::new().add(EventKind::LiFiled, d(2026, 8, 31));
    assert_eq!(due(&t.on(d(2026, 9, 1)), PsDue), Some(d(2027, 2, 28)));

    let t = Timeline::standard(); // D0 12/01/2026 → PS due 12/07/2026
    assert_eq!(state(&t.on(d(2026, 7, 11)), PsDue), AVenir);
    assert_eq!(state(&t.on(d(2026, 7, 12)), PsDue), Du);
    let late = t.on(d(2026, 7, 13));
    assert_eq!(state(&late, PsDue), EnRetard);
    assert_eq!(
        late.milestone(PsDue).expect("listed").overdue_since,
        Some(d(2026, 7, 13))
    );
    assert_eq!(
        next_deadline(&late, d(2026, 7, 13)),
        Some((PsDue, d(2026, 7, 12)))
    );
}

#[test]
fn a_late_ps_is_done_and_says_how_late() {
    let s = Timeline::standard()
        .ps_filed(d(2026, 7, 22))
        .on(d(2026, 8, 1));
    let m = s.milestone(PsDue).expect("listed");
    assert_eq!(m.state, Fait);
    assert_eq!(m.done_on, Some(d(2026, 7, 22)));
    assert!(m.note.contains("10 jours de retard"), "{}", m.note);
    assert_eq!(s.ps_dossier, Some(5678));
}

#[test]
fn tacit_validation_two_months_after_the_ps_then_amo2_is_due() {
    // R = 31/12/2026 → tacit 28/02/2027 (clamped).
    let t = Timeline::standard().ps_filed(d(2026, 12, 31));
    assert_eq!(due(&t.on(d(2027, 1, 1)), PsTacite), Some(d(2027, 2, 28)));

    let before = t.on(d(2027, 2, 27));
    assert_eq!(state(&before, PsTacite), AVenir);
    assert_eq!(state(&before, Amo2), AVenir);
    assert_eq!(due(&before, Amo2), Some(d(2027, 2, 28)));

    // The last day to decide: due, and AMO-2 not yet triggered.
    let last_day = t.on(d(2027, 2, 28));
    assert_eq!(state(&last_day, PsTacite), Du);
    assert_eq!(state(&last_day, Amo2), AVenir);

    let after = t.on(d(2027, 3, 1));
    let tacite = after.milestone(PsTacite).expect("listed");
    assert_eq!(tacite.state, Fait);
    assert_eq!(tacite.done_on, Some(d(2027, 2, 28)));
    assert!(
        tacite.note.contains("réputé validé le 28/02/2027"),
        "{}",
        tacite.note
    );
    assert_eq!(state(&after, Amo2), Du);
    assert_eq!(
        after.milestone(Amo2).expect("listed").amount_cents,
        Some(4_000_000)
    );
    assert_eq!(state(&after, Finess), Du);
    assert_eq!(due(&after, Finess), Some(d(2027, 2, 28)));

    // A payment stays due 30 days after its trigger, then it is late.
    assert_eq!(state(&t.on(d(2027, 3, 30)), Amo2), Du);
    let late = t.on(d(2027, 3, 31));
    assert_eq!(state(&late, Amo2), EnRetard);
    assert_eq!(
        late.milestone(Amo2).expect("listed").overdue_since,
        Some(d(2027, 3, 31))
    );
    // Paid: done, FINESS received: done.
    let done = t
        .clone()
        .paid(Amo2, 4_000_000, d(2027, 4, 2))
        .add(
            EventKind::FinessReceived {
                finess: "690012345".into(),
            },
            d(2027, 4, 3),
        )
        .on(d(2027, 4, 5));
    assert_eq!(state(&done, Amo2), Fait);
    assert_eq!(state(&done, Finess), Fait);
    assert_eq!(payment(&done, Amo2).paid_cents, Some(4_000_000));
}

#[test]
fn an_explicit_validation_before_the_tacit_date_triggers_amo2_on_its_date() {
    let t = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(EventKind::PsValidated, d(2026, 8, 20));
    let s = t.on(d(2026, 8, 20));
    assert_eq!(state(&s, PsTacite), SansObjet);
    assert_eq!(state(&s, Amo2), Du);
    assert_eq!(due(&s, Amo2), Some(d(2026, 8, 20)));
    assert_eq!(state(&t.on(d(2026, 8, 19)), Amo2), AVenir);
    // A validation after the tacit date does not move it.
    let s = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(EventKind::PsValidated, d(2026, 9, 15))
        .on(d(2026, 9, 20));
    assert_eq!(state(&s, PsTacite), Fait);
    assert_eq!(due(&s, Amo2), Some(d(2026, 9, 1)));
}

#[test]
fn a_refusal_before_the_tacit_date_stops_amo2_and_the_dotation() {
    let t = Timeline::standard()
        .add(EventKind::AmorcageContractSigned, d(2026, 4, 1))
        .ps_filed(d(2026, 7, 1))
        .add(
            EventKind::PsRefused {
                motivation: "diagnostic territorial insuffisant".into(),
            },
            d(2026, 9, 1),
        )
        .add(EventKind::DotationContractSigned, d(2026, 10, 1));
    let s = t.on(d(2026, 12, 1));
    assert_eq!(state(&s, PsTacite), SansObjet);
    assert_eq!(state(&s, Amo2), SansObjet);
    assert_eq!(state(&s, Dot(1)), SansObjet);
    assert_eq!(state(&s, Finess), SansObjet);
    assert_eq!(state(&s, Socle), SansObjet);
    assert_eq!(state(&s, Adh50), SansObjet);
    assert!(
        s.milestone(Amo2)
            .expect("listed")
            .note
            .contains("motif : diagnostic territorial insuffisant")
    );
    // AMO-1 stays due: it came with the lettre d'intention.
    assert_eq!(state(&s, Amo1), EnRetard);
    // Nothing paid: no 18-month check either.
    assert_eq!(state(&s, Oper18), SansObjet);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    // A refusal recorded without motivation still stops the money, and says so.
    let s = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(
            EventKind::PsRefused {
                motivation: String::new(),
            },
            d(2026, 8, 1),
        )
        .on(d(2026, 9, 1));
    assert_eq!(state(&s, Amo2), SansObjet);
    assert!(
        s.warnings[0].contains("sans motivation"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_refusal_on_the_last_day_prevents_the_tacit_validation_but_not_after() {
    // R 01/07/2026 → tacit 01/09/2026.
    let refused = |on| {
        Timeline::standard().ps_filed(d(2026, 7, 1)).add(
            EventKind::PsRefused {
                motivation: "gouvernance absente".into(),
            },
            on,
        )
    };
    let s = refused(d(2026, 9, 1)).on(d(2026, 9, 10));
    assert_eq!(state(&s, PsTacite), SansObjet);
    assert_eq!(state(&s, Amo2), SansObjet);

    // Refused after the tacit validation: it happened, but the money stops.
    let s = refused(d(2026, 9, 2)).on(d(2026, 9, 10));
    let tacite = s.milestone(PsTacite).expect("listed");
    assert_eq!(tacite.state, Fait);
    assert!(
        tacite
            .note
            .contains("refus enregistré ensuite le 02/09/2026")
    );
    assert_eq!(state(&s, Amo2), SansObjet);

    // …unless AMO-2 was already paid: that stays recorded.
    let s = refused(d(2026, 9, 20))
        .paid(Amo2, 4_000_000, d(2026, 9, 5))
        .on(d(2026, 9, 30));
    assert_eq!(state(&s, Amo2), Fait);
}

#[test]
fn a_refused_lettre_d_intention_ends_the_project() {
    let s = Timeline::new()
        .add(EventKind::LiFiled, d(2026, 1, 12))
        .add(
            EventKind::LiRefused {
                motivation: "hors champ".into(),
            },
            d(2026, 3, 1),
        )
        .on(d(2026, 9, 1));
    assert!(s.milestones.iter().all(|m| m.state == SansObjet), "{s:#?}");
    assert_eq!(next_deadline(&s, d(2026, 9, 1)), None);
}

#[test]
fn amo1_is_due_at_the_signature_of_the_amorcage_contract() {
    let t = Timeline::standard().add(EventKind::AmorcageContractSigned, d(2026, 4, 15));
    assert_eq!(state(&t.on(d(2026, 4, 14)), Amo1), AVenir);
    let s = t.on(d(2026, 4, 15));
    assert_eq!(state(&s, Amo1), Du);
    let p = payment(&s, Amo1);
    assert_eq!(p.amount_cents, Some(4_000_000));
    assert_eq!(
        p.explanation,
        "première moitié du crédit d'amorçage : 80 000,00 € × 1/2 = 40 000,00 €"
    );
    assert_eq!(state(&t.on(d(2026, 5, 15)), Amo1), Du);
    assert_eq!(state(&t.on(d(2026, 5, 16)), Amo1), EnRetard);
    // A different amount paid is shown with the gap.
    let s = t.paid(Amo1, 3_999_900, d(2026, 4, 20)).on(d(2026, 4, 21));
    let m = s.milestone(Amo1).expect("listed");
    assert_eq!(m.state, Fait);
    assert!(m.note.contains("écart de -1,00 €"), "{}", m.note);
}

#[test]
fn no_payment_is_proposed_without_an_association_on_file() {
    let t = Timeline::new()
        .add(EventKind::LiFiled, d(2026, 1, 12))
        .add(EventKind::AmorcageContractSigned, d(2026, 4, 15));
    let s = t.on(d(2026, 6, 1));
    let m = s.milestone(Amo1).expect("listed");
    assert_eq!(m.state, AVenir);
    assert_eq!(m.blocker, Some(Blocker::AssociationNotOnFile));
    assert!(m.note.contains("LI-JUR-01"));
    assert_eq!(
        next_deadline(&s, d(2026, 6, 1)),
        Some((PsDue, d(2026, 7, 12)))
    );

    // Checked and absent (neither RNA nor SIRET): still blocked.
    let absent = t.clone().add(
        EventKind::AssociationOnFile {
            rna: None,
            siret: Some(" ".into()),
        },
        d(2026, 5, 1),
    );
    assert_eq!(state(&absent.on(d(2026, 6, 1)), Amo1), AVenir);
    // On file: due (and late, the signature is over a month old).
    let present = absent.add(
        EventKind::AssociationOnFile {
            rna: None,
            siret: Some("12345678900011".into()),
        },
        d(2026, 5, 20),
    );
    assert_eq!(state(&present.on(d(2026, 6, 1)), Amo1), EnRetard);
}

#[test]
fn nothing_of_the_dotation_before_the_ps_is_validated() {
    let t = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .members(40, d(2026, 1, 12))
        .add(EventKind::DotationContractSigned, d(2026, 8, 1));
    let s = t.on(d(2026, 8, 15));
    let m = s.milestone(Dot(1)).expect("listed");
    assert_eq!(m.state, AVenir);
    assert_eq!(m.blocker, Some(Blocker::PsNotValidated));
    assert_eq!(m.due, Some(d(2026, 9, 1)));
    assert!(s.warnings[0].contains("avant la validation du projet de santé"));
    // The tacit validation on 01/09/2026 is acquired on the 2nd.
    let s = t.on(d(2026, 9, 2));
    assert_eq!(state(&s, Dot(1)), Du);
    assert_eq!(
        s.milestone(Dot(1)).expect("listed").amount_cents,
        Some(6_666_667)
    );
}

fn dotation_at(n: u32) -> Payment {
    let s = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(EventKind::PsValidated, d(2026, 8, 1))
        .members(n, d(2026, 8, 1))
        .add(EventKind::DotationContractSigned, d(2026, 9, 1))
        .on(d(2026, 9, 1));
    payment(&s, Dot(1)).clone()
}

#[test]
fn dotation_is_linear_between_10_and_100_members() {
    let p9 = dotation_at(9);
    assert_eq!(p9.amount_cents, None);
    assert_eq!(p9.blocker, Some(Blocker::AmountNotComputed));
    assert_eq!(p9.state, Du);
    assert!(
        p9.explanation.contains("dérogation de la CPN"),
        "{}",
        p9.explanation
    );
    assert!(p9.explanation.contains("n = 9 < 10"), "{}", p9.explanation);

    assert_eq!(dotation_at(10).amount_cents, Some(5_000_000));
    // 50 000 + 1 × 50 000 / 90 = 50 555,555… → 50 555,56 €.
    let p11 = dotation_at(11);
    assert_eq!(p11.amount_cents, Some(5_055_556));
    assert!(
        p11.explanation.contains(
            "50 000,00 € + (11 − 10) × 50 000,00 € / 90 = 50 555,56 € (arrondi au centime)"
        ),
        "{}",
        p11.explanation
    );
    assert_eq!(dotation_at(25).amount_cents, Some(5_833_333));
    assert_eq!(dotation_at(55).amount_cents, Some(7_500_000));
    assert_eq!(dotation_at(100).amount_cents, Some(10_000_000));
    let p150 = dotation_at(150);
    assert_eq!(p150.amount_cents, Some(10_000_000));
    assert!(
        p150.explanation
            .contains("n = 150 ≥ 100 : plafond de 100 000,00 €")
    );
    assert!(
        p150.explanation
            .contains("à la signature du contrat le 01/09/2026")
    );
}

#[test]
fn formula_points_are_configuration() {
    let cfg = MilestonesConfig {
        dotation_min_eur: 40_000,
        dotation_min_members: 20,
        dotation_max_eur: 120_000,
        dotation_max_members: 120,
        ..MilestonesConfig::default()
    };
    let t = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(EventKind::PsValidated, d(2026, 8, 1))
        .members(70, d(2026, 8, 1))
        .add(EventKind::DotationContractSigned, d(2026, 9, 1));
    let s = derive(&t.events, d(2026, 9, 1), &cfg);
    assert_eq!(payment(&s, Dot(1)).amount_cents, Some(8_000_000));
}

/// PS validated on 01/08/2026, dotation contract signed on 01/09/2026.
fn dotation_timeline() -> Timeline {
    Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(EventKind::PsValidated, d(2026, 8, 1))
        .add(EventKind::DotationContractSigned, d(2026, 9, 1))
}

#[test]
fn dot_k_waits_for_the_anniversary_and_the_justificatifs() {
    let t = dotation_timeline().members(55, d(2026, 9, 1));
    let s = t.on(d(2027, 8, 31));
    assert_eq!(state(&s, Dot(2)), AVenir);
    assert_eq!(due(&s, Dot(2)), Some(d(2027, 9, 1)));
    assert!(s.milestone(Dot(3)).is_none());

    // Anniversary reached, no justificatifs: due, for the justificatifs.
    let s = t.on(d(2027, 9, 1));
    let m = s.milestone(Dot(2)).expect("listed");
    assert_eq!(m.state, Du);
    assert_eq!(m.blocker, Some(Blocker::JustificatifsMissing { year: 1 }));
    assert!(m.note.contains("justificatifs de l'année 1 attendus"));
    assert_eq!(state(&t.on(d(2027, 10, 2)), Dot(2)), EnRetard);
    assert_eq!(due(&s, Dot(3)), Some(d(2028, 9, 1)));

    // Justificatifs received after the anniversary: the payment is due from their receipt.
    let t = t.add(
        EventKind::JustificatifsReceived { year: 1 },
        d(2027, 10, 10),
    );
    let s = t.on(d(2027, 10, 10));
    let m = s.milestone(Dot(2)).expect("listed");
    assert_eq!(m.state, Du);
    assert_eq!(m.blocker, None);
    assert_eq!(m.due, Some(d(2027, 10, 10)));
    assert_eq!(m.amount_cents, Some(7_500_000));
    let p = payment(&s, Dot(2));
    assert!(
        p.explanation.starts_with(
            "n = 55 médecins adhérents tout au long de l'année du 01/09/2026 au 31/08/2027"
        ),
        "{}",
        p.explanation
    );
    // Paid, then the next year starts.
    let s = t.paid(Dot(2), 7_500_000, d(2027, 10, 20)).on(d(2028, 9, 1));
    assert_eq!(state(&s, Dot(2)), Fait);
    assert_eq!(state(&s, Dot(3)), Du);
    assert_eq!(due(&s, Dot(4)), Some(d(2029, 9, 1)));
}

#[test]
fn dot_k_uses_the_time_weighted_average_over_the_contract_year() {
    // Year 1: 01/09/2026 → 31/08/2027 (365 days). 20 members for 122 days (to 31/12/2026),
    // then 80 members for 243 days: n = (20 × 122 + 80 × 243) / 365 = 21 880 / 365 ≈ 59,95.
    let s = dotation_timeline()
        .members(20, d(2026, 6, 1))
        .members(80, d(2027, 1, 1))
        .add(EventKind::JustificatifsReceived { year: 1 }, d(2027, 8, 15))
        .on(d(2027, 9, 1));
    let p = payment(&s, Dot(2));
    // 50 000 + (21 880 / 365 − 10) × 50 000 / 90 = 77 747,34 €.
    assert_eq!(p.amount_cents, Some(7_774_734));
    assert_eq!(p.state, Du);
    assert_eq!(p.due, Some(d(2027, 9, 1)));
    assert!(
        p.explanation
            .contains("n = 59,95 : moyenne des effectifs pondérée"),
        "{}",
        p.explanation
    );
    assert!(
        p.explanation
            .contains("20 du 01/09/2026 au 31/12/2026 (122 j)"),
        "{}",
        p.explanation
    );
    // DOT-1 used the count at the signature.
    assert_eq!(payment(&s, Dot(1)).amount_cents, Some(5_555_556));
}

#[test]
fn dot_k_falls_back_on_the_count_at_the_anniversary() {
    // History starts mid-year: not known over the whole year.
    let s = dotation_timeline()
        .members(30, d(2027, 3, 1))
        .add(EventKind::JustificatifsReceived { year: 1 }, d(2027, 8, 15))
        .on(d(2027, 9, 1));
    let p = payment(&s, Dot(2));
    assert_eq!(p.amount_cents, Some(6_111_111));
    assert!(
        p.explanation
            .contains("à la date anniversaire du 01/09/2027")
    );
    assert!(p.explanation.contains("historique des adhésions incomplet"));
    // DOT-1: nobody counted at the signature.
    let p1 = payment(&s, Dot(1));
    assert_eq!(p1.amount_cents, None);
    assert!(p1.explanation.contains("inconnu"), "{}", p1.explanation);
}

#[test]
fn anniversaries_of_a_29_february_signature_clamp() {
    let s = Timeline::standard()
        .ps_filed(d(2027, 12, 1))
        .add(EventKind::PsValidated, d(2028, 1, 15))
        .add(EventKind::DotationContractSigned, d(2028, 2, 29))
        .on(d(2029, 3, 1));
    assert_eq!(due(&s, Dot(2)), Some(d(2029, 2, 28)));
    assert_eq!(due(&s, Dot(3)), Some(d(2030, 2, 28)));
}

/// D0 12/01/2026 → OPER-18 on 12/07/2027; AMO-1 paid 40 000 €.
fn oper_timeline() -> Timeline {
    Timeline::standard()
        .add(EventKind::AmorcageContractSigned, d(2026, 4, 1))
        .paid(Amo1, 4_000_000, d(2026, 4, 10))
        .ps_filed(d(2026, 7, 1))
}

fn deployed(t: Timeline, on: NaiveDate) -> Timeline {
    t.add(
        EventKind::MissionSocleDeployed {
            scope: SocleScope::PremiereActivite,
        },
        on,
    )
}

#[test]
fn the_18_month_check_deployed_in_time() {
    let s = deployed(oper_timeline(), d(2027, 7, 12)).on(d(2027, 8, 1));
    assert_eq!(due(&s, Oper18), Some(d(2027, 7, 12)));
    assert_eq!(state(&s, Oper18), Fait);
    assert!(s.payments.iter().all(|p| p.kind == PaymentKind::Versement));
    // SOCLE (R + 1 year) still needs both activities.
    assert_eq!(due(&s, Socle), Some(d(2027, 7, 1)));
    assert_eq!(state(&s, Socle), EnRetard);
}

#[test]
fn the_18_month_check_never_deployed_starts_the_recovery() {
    let t = oper_timeline().paid(Amo2, 4_000_000, d(2026, 9, 10));
    assert_eq!(state(&t.on(d(2027, 7, 11)), Oper18), AVenir);
    assert_eq!(state(&t.on(d(2027, 7, 12)), Oper18), Du);
    let s = t.on(d(2027, 7, 13));
    let m = s.milestone(Oper18).expect("listed");
    assert_eq!(m.state, EnRetard);
    assert!(
        m.note.contains("sommes versées à récupérer : 80 000,00 €"),
        "{}",
        m.note
    );
    let r = s
        .payments
        .iter()
        .find(|p| p.kind == PaymentKind::Recuperation)
        .expect("recovery");
    assert_eq!(r.amount_cents, Some(8_000_000));
    assert_eq!(r.due, Some(d(2027, 7, 13)));
    assert!(
        r.explanation
            .contains("AMO-1 versé le 10/04/2026 : 40 000,00 € + AMO-2 versé le 10/09/2026 : 40 000,00 € = 80 000,00 €"),
        "{}",
        r.explanation
    );
}

#[test]
fn the_18_month_check_deployed_late() {
    let s = deployed(oper_timeline(), d(2027, 9, 1)).on(d(2027, 9, 2));
    let m = s.milestone(Oper18).expect("listed");
    assert_eq!(m.state, Fait);
    assert_eq!(m.done_on, Some(d(2027, 9, 1)));
    assert!(
        m.note.contains("après l'échéance du 12/07/2027"),
        "{}",
        m.note
    );
    let r = s
        .payments
        .iter()
        .find(|p| p.kind == PaymentKind::Recuperation)
        .expect("recovery");
    assert_eq!(r.amount_cents, Some(4_000_000));
    assert!(r.explanation.contains("déployée tardivement le 01/09/2027"));
    // A deployment planned after today does not count yet.
    let s = deployed(oper_timeline(), d(2027, 9, 1)).on(d(2027, 7, 20));
    assert_eq!(state(&s, Oper18), EnRetard);
}

#[test]
fn the_18_month_clock_can_start_from_the_first_payment() {
    let cfg = MilestonesConfig {
        operational_anchor: Anchor::PremierVersementAmorcage,
        ..MilestonesConfig::default()
    };
    let s = derive(&oper_timeline().events, d(2026, 5, 1), &cfg);
    assert_eq!(due(&s, Oper18), Some(d(2027, 10, 10)));
}

#[test]
fn membership_and_governance_targets() {
    let t = Timeline::standard().members(42, d(2026, 6, 1));
    let s = t.on(d(2026, 7, 1));
    assert_eq!(due(&s, Adh30), None);
    assert!(
        s.milestone(Adh30)
            .expect("listed")
            .note
            .contains("ne fixe pas de date")
    );
    assert!(
        s.milestone(Adh50)
            .expect("listed")
            .note
            .contains("dernier effectif connu : 42 médecins adhérents depuis le 01/06/2026")
    );
    assert_eq!(due(&s, Adh50), Some(d(2031, 1, 12)));
    assert_eq!(due(&s, Gouv5), Some(d(2031, 1, 12)));
    assert_eq!(state(&t.on(d(2031, 1, 13)), Adh50), EnRetard);
    let met = t.add(EventKind::TargetMet { milestone: Adh50 }, d(2030, 6, 1));
    assert_eq!(state(&met.on(d(2031, 1, 13)), Adh50), Fait);

    let cfg = MilestonesConfig {
        adh30_months: Some(36),
        ..MilestonesConfig::default()
    };
    let s = derive(&Timeline::standard().events, d(2026, 7, 1), &cfg);
    assert_eq!(due(&s, Adh30), Some(d(2029, 1, 12)));
}

#[test]
fn a_later_event_supersedes_an_earlier_one_and_a_retraction_empties_the_slot() {
    // The signature date was mistyped, then corrected.
    let t = Timeline::standard()
        .add(EventKind::AmorcageContractSigned, d(2026, 4, 1))
        .add(EventKind::AmorcageContractSigned, d(2026, 5, 1));
    let s = t.on(d(2026, 4, 15));
    assert_eq!(due(&s, Amo1), Some(d(2026, 5, 1)));
    assert_eq!(state(&s, Amo1), AVenir);

    // Recorded_at decides, not the order of the slice.
    let mut events = t.events.clone();
    events.swap(3, 4);
    let s = derive(&events, d(2026, 4, 15), &MilestonesConfig::default());
    assert_eq!(due(&s, Amo1), Some(d(2026, 5, 1)));

    // A refusal recorded by mistake is replaced by a validation.
    let t = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(
            EventKind::PsRefused {
                motivation: "erreur de saisie".into(),
            },
            d(2026, 8, 1),
        )
        .add(EventKind::PsValidated, d(2026, 8, 1));
    assert_eq!(state(&t.on(d(2026, 8, 2)), Amo2), Du);

    // A mistaken refusal withdrawn: the tacit validation applies again.
    let t = Timeline::standard()
        .ps_filed(d(2026, 7, 1))
        .add(
            EventKind::PsRefused {
                motivation: "erreur".into(),
            },
            d(2026, 8, 1),
        )
        .add(
            EventKind::Retracted {
                slot: EventSlot::PsDecision,
            },
            d(2026, 8, 5),
        );
    let s = t.on(d(2026, 9, 2));
    assert_eq!(state(&s, PsTacite), Fait);
    assert_eq!(state(&s, Amo2), Du);
}

#[test]
fn events_of_another_project_are_ignored_with_a_warning() {
    let mut t = Timeline::standard();
    let mut other = t.events[0].clone();
    other.project = 99;
    other.effective = d(2020, 1, 1);
    t.events.push(other);
    let s = t.on(d(2026, 2, 1));
    assert_eq!(s.project, 1234);
    assert_eq!(due(&s, PsDue), Some(d(2026, 7, 12)));
    assert_eq!(s.warnings.len(), 1);
}

#[test]
fn the_derivation_is_deterministic() {
    let t = dotation_timeline()
        .members(20, d(2026, 6, 1))
        .add(EventKind::JustificatifsReceived { year: 1 }, d(2027, 8, 15));
    assert_eq!(t.on(d(2027, 9, 1)), t.on(d(2027, 9, 1)));
}

#[test]
fn next_deadline_is_the_earliest_open_date() {
    let t = Timeline::standard().add(EventKind::AmorcageContractSigned, d(2026, 4, 15));
    // AMO-1 due on 15/04 comes before PS-DUE on 12/07.
    assert_eq!(
        next_deadline(&t.on(d(2026, 4, 1)), d(2026, 4, 1)),
        Some((Amo1, d(2026, 4, 15)))
    );
    let paid = t.paid(Amo1, 4_000_000, d(2026, 4, 20));
    assert_eq!(
        next_deadline(&paid.on(d(2026, 4, 21)), d(2026, 4, 21)),
        Some((PsDue, d(2026, 7, 12)))
    );
}

#[test]
fn a_partial_payment_leaves_the_milestone_open_and_says_what_remains() {
    let t = Timeline::standard().add(EventKind::AmorcageContractSigned, d(2026, 4, 15));
    let s = t
        .clone()
        .paid(Amo1, 3_000_000, d(2026, 4, 20))
        .on(d(2026, 4, 21));
    let m = s.milestone(Amo1).expect("listed");
    assert_eq!(m.state, Du, "{m:?}");
    assert!(
        m.note
            .contains("versement partiel le 20/04/2026 : 30 000,00 € sur 40 000,00 € (reste à verser 10 000,00 €)"),
        "{}",
        m.note
    );
    let p = payment(&s, Amo1);
    assert_eq!((p.state, p.paid_cents), (Du, Some(3_000_000)));
    // Still partial once the grace period is over: late.
    assert_eq!(
        state(
            &t.clone()
                .paid(Amo1, 3_000_000, d(2026, 4, 20))
                .on(d(2026, 6, 1)),
            Amo1
        ),
        EnRetard
    );
    // The rest paid, recorded as the total: done.
    let s = t
        .paid(Amo1, 3_000_000, d(2026, 4, 20))
        .paid(Amo1, 4_000_000, d(2026, 5, 2))
        .on(d(2026, 5, 3));
    assert_eq!(state(&s, Amo1), Fait);
}

#[test]
fn a_payment_above_what_is_due_is_refused() {
    let cfg = MilestonesConfig::default();
    let t = Timeline::standard().add(EventKind::AmorcageContractSigned, d(2026, 4, 15));
    let s = t.on(d(2026, 4, 21));
    assert!(check_payment(&s, Amo1, 4_000_000, &cfg).is_ok());
    assert!(check_payment(&s, Amo1, 3_000_000, &cfg).is_ok());
    // A rounding above the amount is tolerated (1 € or 0.1 %).
    assert!(check_payment(&s, Amo1, 4_003_000, &cfg).is_ok());
    let err = check_payment(&s, Amo1, 40_000_000_000, &cfg).unwrap_err();
    assert_eq!(
        err,
        "montant refusé : 400 000 000,00 € dépasse le montant dû pour AMO-1 (40 000,00 €)"
    );
    // A dotation whose amount is not computed yet is capped by the largest dotation.
    let err = check_payment(&s, Dot(1), 20_000_000, &cfg).unwrap_err();
    assert!(err.contains("100 000,00 €"), "{err}");
}
