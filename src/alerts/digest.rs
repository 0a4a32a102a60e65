//! The daily digest: one message per role and day listing what is due, so that staff who
//! prefer a single morning e-mail get one.
//!
//! A digest is an ordinary [`Alert`] keyed `digest/<role>/<date>`, delivered through the same
//! ledger: enqueued once per role and day, it is sent once even if several cycles build it.
//! The first cycle of the day that builds it fixes its content.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde_json::json;

use super::{Alert, Recipient, Role};

/// Month names in French, January first.
const MONTHS: [&str; 12] = [
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

/// A date as French staff write it: "1er mars 2027", "5 novembre 2026".
pub fn french_date(date: NaiveDate) -> String {
    let day = match date.day() {
        1 => "1er".to_owned(),
        d => d.to_string(),
    };
    let month = MONTHS[date.month0() as usize];
    format!("{day} {month} {}", date.year())
}

/// The key of `role`'s digest for `date`: `digest/cpam/2026-11-05`.
pub fn digest_key(role: Role, date: NaiveDate) -> String {
    format!("digest/{}/{}", role.as_str(), date.format("%Y-%m-%d"))
}

/// Groups `due` (the alerts due on `date`) into one digest per role that has any, CPAM first.
/// Digests found in `due` are left out, so a digest never lists another.
pub fn daily_digests(due: &[Alert], date: NaiveDate) -> Vec<Alert> {
    let mut by_role: BTreeMap<Role, Vec<&Alert>> = BTreeMap::new();
    for alert in due {
        if let Recipient::Staff(role) = alert.recipient {
            by_role.entry(role).or_default().push(alert);
        }
    }
    by_role
        .into_iter()
        .map(|(role, mut alerts)| {
            alerts.sort_by(|a, b| a.key.cmp(&b.key));
            digest(role, date, &alerts)
        })
        .collect()
}

fn digest(role: Role, date: NaiveDate, alerts: &[&Alert]) -> Alert {
    let n = alerts.len();
    let count = if n == 1 {
        "1 alerte".to_owned()
    } else {
        format!("{n} alertes")
    };
    let day = french_date(date);
    let subject = format!(
        "Récapitulatif du {day} pour {} : {count}",
        role.with_article()
    );
    let mut body = format!(
        "Bonjour,\n\nVoici le récapitulatif des échéances ESS du {day} pour {} ({count}) :\n",
        role.with_article()
    );
    for (i, alert) in alerts.iter().enumerate() {
        body.push_str(&format!("\n{}. {}\n", i + 1, alert.subject));
        if let Some(url) = &alert.dossier_url {
            body.push_str(&format!("   Dossier : {url}\n"));
        }
    }
    let items: Vec<_> = alerts
        .iter()
        .map(|a| {
            json!({
                "key": a.key,
                "subject": a.subject,
                "dossier_url": a.dossier_url,
                "payload": a.payload,
            })
        })
        .collect();
    Alert {
        key: digest_key(role, date),
        recipient: Recipient::Digest(role),
        subject,
        body,
        dossier_url: None,
        payload: json!({
            "date": date.format("%Y-%m-%d").to_string(),
            "role": role.as_str(),
            "alerts": items,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(key: &str, role: Role, subject: &str) -> Alert {
        Alert {
            key: key.into(),
            recipient: Recipient::Staff(role),
            subject: subject.into(),
            body: "…".into(),
            dossier_url: Some(format!("https://ds.example/dossiers/{key}")),
            payload: json!({ "k": key }),
        }
    }

    #[test]
    fn one_digest_per_role_with_its_alerts_in_key_order() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
        let due = [
            alert("p2/versement/due", Role::Cpam, "Versement dû aujourd'hui"),
            alert("p1/signature/overdue", Role::Ars, "Signature en retard"),
            alert("p1/versement/due", Role::Cpam, "Versement dû"),
        ];
        let digests = daily_digests(&due, date);
        assert_eq!(digests.len(), 2);
        let cpam = &digests[0];
        assert_eq!(cpam.key, "digest/cpam/2026-11-05");
        assert_eq!(cpam.recipient, Recipient::Digest(Role::Cpam));
        assert_eq!(
            cpam.subject,
            "Récapitulatif du 5 novembre 2026 pour la CPAM : 2 alertes"
        );
        let first = cpam.body.find("1. Versement dû\n").unwrap();
        let second = cpam.body.find("2. Versement dû aujourd'hui\n").unwrap();
        assert!(first < second, "{}", cpam.body);
        assert_eq!(cpam.payload["alerts"][0]["key"], "p1/versement/due");
        let ars = &digests[1];
        assert_eq!(ars.key, "digest/ars/2026-11-05");
        assert_eq!(
            ars.subject,
            "Récapitulatif du 5 novembre 2026 pour l'ARS : 1 alerte"
        );
    }

    #[test]
    fn nothing_due_means_no_digest_and_digests_are_not_nested() {
        let date = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        assert!(daily_digests(&[], date).is_empty());
        let earlier = daily_digests(&[alert("p/m/due", Role::Ars, "x")], date);
        assert!(daily_digests(&earlier, date).is_empty());
    }

    #[test]
    fn french_dates() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(french_date(d(2027, 3, 1)), "1er mars 2027");
        assert_eq!(french_date(d(2026, 8, 15)), "15 août 2026");
        assert_eq!(french_date(d(2026, 12, 31)), "31 décembre 2026");
    }
}
