//! The projet de santé's lettre: PS-LINK-01 (it follows a known, accepted lettre d'intention)
//! and PS-DEL-01 (filed within six months of it).

use chrono::{Months, NaiveDate};

use super::common::unread;
use super::extract::{ProjetSante, Read};
use super::text::fr_date;
use super::{Finding, KnownProject, RuleContext, RuleId, Severity};
use crate::ds::model::DossierState;

use RuleId::*;

/// Months a projet de santé may come after its lettre d'intention (VI.B.3).
pub const DELAI_MOIS: u32 = 6;

/// Last day a projet de santé may be filed: the same day [`DELAI_MOIS`] calendar months after
/// the lettre's filing, clamped to the end of a shorter month (31 August → 28 or 29 February),
/// inclusive. The one computation of this delay: PS-DEL-01 checks a filed projet against it and
/// the PS-DUE milestone announces it.
pub fn echeance_projet_sante(date_depot_li: NaiveDate) -> NaiveDate {
    date_depot_li
        .checked_add_months(Months::new(DELAI_MOIS))
        .unwrap_or(NaiveDate::MAX)
}

/// PS-LINK-01: the linked lettre is known to essbot and accepted. Returns it, for the delay
/// and the derogation it carries.
pub(super) fn ps_link_01<'c>(
    ps: &ProjetSante,
    ctx: &RuleContext<'c>,
    out: &mut Vec<Finding>,
) -> Option<&'c KnownProject> {
    let Read::Ok { champ, value: lien } = &ps.lien_lettre_intention else {
        out.extend(unread(
            PsLink01,
            &ps.lien_lettre_intention,
            true,
            "le lien vers la lettre d'intention",
        ));
        if let Some(champ) = ps.lien_lettre_intention.champ() {
            out.push(
                Finding::new(
                    PsDel01,
                    Severity::Info,
                    "délai de dépôt non vérifiable : lettre d'intention non identifiée",
                )
                .champ(champ, None),
            );
        }
        return None;
    };
    let shown = Some(lien.numero.to_string());
    let Some(li) = ctx.projets.get(lien.numero) else {
        out.push(
            Finding::new(
                PsLink01,
                Severity::Bloquant,
                format!(
                    "la lettre d'intention n° {} n'est pas connue d'essbot (absente des démarches suivies) ; elle doit être connue et acceptée",
                    lien.numero
                ),
            )
            .champ(champ, shown.clone()),
        );
        out.push(
            Finding::new(
                PsDel01,
                Severity::Info,
                "délai de dépôt non vérifiable : lettre d'intention inconnue",
            )
            .champ(champ, shown),
        );
        return None;
    };
    let f = if li.etat == DossierState::Accepte {
        Finding::new(
            PsLink01,
            Severity::Info,
            format!(
                "lettre d'intention n° {} acceptée, déposée le {}",
                li.numero,
                fr_date(li.date_depot)
            ),
        )
    } else {
        Finding::new(
            PsLink01,
            Severity::Bloquant,
            format!(
                "la lettre d'intention n° {} est {} ; elle doit être acceptée",
                li.numero,
                li.etat.libelle()
            ),
        )
    };
    out.push(f.champ(champ, shown));
    Some(li)
}

/// PS-DEL-01: filed within six calendar months of the lettre's filing, in Europe/Paris.
pub(super) fn ps_del_01(ps: &ProjetSante, li: Option<&KnownProject>, out: &mut Vec<Finding>) {
    let (Some(li), Some(champ)) = (li, ps.lien_lettre_intention.champ()) else {
        return;
    };
    let limite = echeance_projet_sante(li.date_depot);
    let (sev, verb) = if ps.date_depot > limite {
        (Severity::Bloquant, "plus de")
    } else {
        (Severity::Info, "dans les")
    };
    out.push(
        Finding::new(
            PsDel01,
            sev,
            format!(
                "projet de santé déposé le {}, {verb} {DELAI_MOIS} mois {} la lettre d'intention du {} (échéance le {})",
                fr_date(ps.date_depot),
                if sev == Severity::Bloquant { "après" } else { "de" },
                fr_date(li.date_depot),
                fr_date(limite)
            ),
        )
        .champ(champ, Some(li.numero.to_string())),
    );
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::super::testutil::*;
    use super::super::*;
    use super::echeance_projet_sante;
    use crate::ds::model::{ChampValue, DossierState};

    #[test]
    fn ps_link_01_the_linked_lettre_must_be_known_and_accepted() {
        let f = run_ps(&ps_dossier(), &Ctx::new());
        assert!(
            of(&f, RuleId::PsLink01)[0]
                .message
                .contains("n'est pas connue d'essbot")
        );
        assert_eq!(of(&f, RuleId::PsDel01)[0].severity, Severity::Info);
        let f = run_ps(&ps_dossier(), &ps_ctx(DossierState::EnInstruction));
        assert_eq!(
            of(&f, RuleId::PsLink01)[0].message,
            "la lettre d'intention n° 501 est en instruction ; elle doit être acceptée"
        );
        let f = run_ps(
            &ps_with("Lettre d'intention", ChampValue::DossierLink(None)),
            &ps_ctx(DossierState::Accepte),
        );
        assert_eq!(of(&f, RuleId::PsLink01)[0].severity, Severity::Bloquant);
        assert_eq!(
            of(&f, RuleId::PsDel01)[0].message,
            "délai de dépôt non vérifiable : lettre d'intention non identifiée"
        );
    }

    /// The lettre named in a text or an integer champ, as applicants write it.
    #[test]
    fn ps_link_01_a_number_or_an_address_typed_in() {
        let c = ps_ctx(DossierState::Accepte);
        let mut m = ps_mapping();
        m.fields
            .get_mut("lien_lettre_intention")
            .unwrap()
            .type_de_champ = "text".into();
        for written in [
            "501",
            "Dossier n° 501",
            "n°501",
            "https://demarche.numerique.gouv.fr/dossiers/501",
        ] {
            let d = ps_with("Lettre d'intention", text(written));
            let r = check(&d, &m, &c.ctx());
            assert_eq!(r.verdict, Verdict::Conforme, "{written}: {}", r.text());
            assert!(r.text().contains("[PS-DEL-01] info"), "{written}");
        }
        let d = ps_with("Lettre d'intention", text("voir la lettre déposée en mars"));
        let f = run_ps_with(&d, &m, &c);
        assert!(
            of(&f, RuleId::PsLink01)[0]
                .message
                .starts_with("valeur illisible")
        );
    }

    #[test]
    fn ps_del_01_six_calendar_months_clamped_to_month_end_in_paris() {
        let ts = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(echeance_projet_sante(ymd(2026, 1, 12)), ymd(2026, 7, 12));
        assert_eq!(echeance_projet_sante(ymd(2025, 8, 31)), ymd(2026, 2, 28));
        assert_eq!(echeance_projet_sante(ymd(2027, 8, 31)), ymd(2028, 2, 29));
        assert_eq!(echeance_projet_sante(ymd(2026, 3, 31)), ymd(2026, 9, 30));
        for (depot, late) in [
            ("2026-07-12T10:00:00+02:00", false),
            ("2026-07-12T23:59:00+02:00", false),
            ("2026-07-12T21:30:00+00:00", false), // 23:30 in Paris
            ("2026-07-12T22:30:00+00:00", true),  // 00:30 on the 13th in Paris
            ("2026-07-13T08:00:00+02:00", true),
        ] {
            let mut d = ps_dossier();
            d.date_depot = ts(depot);
            let f = run_ps(&d, &ps_ctx(DossierState::Accepte));
            let del = of(&f, RuleId::PsDel01);
            assert_eq!(
                del[0].severity == Severity::Bloquant,
                late,
                "{depot}: {}",
                lines(&del)
            );
        }
        let mut c = Ctx::new();
        let mut li = known_li(DossierState::Accepte);
        li.date_depot = ymd(2025, 8, 31);
        c.projets = KnownProjects::new([li]);
        let mut d = ps_dossier();
        d.date_depot = ts("2026-03-01T09:00:00+01:00");
        let f = run_ps(&d, &c);
        assert_eq!(
            of(&f, RuleId::PsDel01)[0].message,
            "projet de santé déposé le 01/03/2026, plus de 6 mois après la lettre d'intention du 31/08/2025 (échéance le 28/02/2026)"
        );
        d.date_depot = ts("2026-02-28T18:00:00+01:00");
        assert_eq!(
            of(&run_ps(&d, &c), RuleId::PsDel01)[0].severity,
            Severity::Info
        );
    }

    #[test]
    fn ps_link_01_the_demo_projet_is_compliant() {
        let c = ps_ctx(DossierState::Accepte);
        let r = check(&ps_dossier(), &ps_mapping(), &c.ctx());
        assert_eq!(r.verdict, Verdict::Conforme, "{}", r.text());
        assert_eq!(r.count(Severity::Avertissement), 0, "{}", r.text());
        let text = r.text();
        assert!(text.contains("[PS-LINK-01] info — lettre d'intention n° 501 acceptée, déposée le 12/01/2026 (champ « Lettre d'intention »)."), "{text}");
        assert!(text.contains("[PS-DEL-01] info — projet de santé déposé le 01/06/2026, dans les 6 mois de la lettre d'intention du 12/01/2026 (échéance le 12/07/2026)"), "{text}");
        assert!(text.contains("12 adhérents pour 52 libéraux (23,1 %) ; seuil de 10 % atteint ; objectifs à cinq ans, non exigés au dépôt : 30 % (16 adhérents, encore 4) et 50 % (26 adhérents, encore 14)"), "{text}");
    }
}
