//! What `essbot milestones` and `essbot payments` print: pure functions from schedules to text.
//! Tables are French (`12/07/2026`, `40 000,00 €`); machine formats (CSV, JSON, ICS) write ISO
//! 8601 dates. The default CSV opens as is in a French spreadsheet (semicolons, decimal comma,
//! UTF-8 with a byte-order mark so that accents survive); [`CsvStyle::Plain`] is for scripts.

use chrono::{DateTime, Days, NaiveDate, Utc};
use icalendar::{Calendar, Component, EventLike};
use serde::Serialize;

use super::calendar::format_date_fr;
use super::derive::{Milestone, Payment, ProjectSchedule, State};
use super::event::MilestoneId;
use super::money::{format_eur, format_number_fr, format_number_plain};

/// How a CSV is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvStyle {
    /// For a French spreadsheet: `;`, decimal comma, UTF-8 with a byte-order mark.
    #[default]
    Tableur,
    /// For scripts: `,`, decimal point, no byte-order mark.
    Plain,
}

/// Keeps, in each schedule, the milestones and payments still open whose due date is within
/// `days` days of `today` (overdue ones included: they are the most urgent), and drops the
/// projects left with nothing.
pub fn due_within(
    schedules: &[ProjectSchedule],
    today: NaiveDate,
    days: u32,
) -> Vec<ProjectSchedule> {
    let limit = today
        .checked_add_days(Days::new(days.into()))
        .unwrap_or(NaiveDate::MAX);
    let keep =
        |state: State, due: Option<NaiveDate>| state.is_open() && due.is_some_and(|d| d <= limit);
    schedules
        .iter()
        .map(|s| ProjectSchedule {
            milestones: s
                .milestones
                .iter()
                .filter(|m| keep(m.state, m.due))
                .cloned()
                .collect(),
            payments: s
                .payments
                .iter()
                .filter(|p| keep(p.state, p.due))
                .cloned()
                .collect(),
            ..s.clone()
        })
        .filter(|s| !s.milestones.is_empty() || !s.payments.is_empty())
        .collect()
}

/// `LI 1234 / PS 5678`: the dossiers a project is made of.
pub fn project_label(s: &ProjectSchedule) -> String {
    match s.ps_dossier {
        Some(ps) => format!("LI {} / PS {ps}", s.project),
        None => format!("LI {}", s.project),
    }
}

fn date_fr(d: Option<NaiveDate>) -> String {
    d.map(format_date_fr).unwrap_or_default()
}

fn date_iso(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn amount_fr(cents: Option<i64>) -> String {
    cents.map(format_eur).unwrap_or_default()
}

/// The widest a table line gets: the last column wraps to stay within it.
pub const TABLE_WIDTH: usize = 120;
/// The widest a column other than the last gets: longer cells end in "…".
const CELL_WIDTH: usize = 48;

/// `text` cut to `max` characters, the last one "…" when it was longer.
pub fn truncate_cell(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than
/// the width gets a line of its own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    // "40 000,00 €" and "25,0 %" are one word: never broken inside an amount.
    let mut words: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        let glue = words.last().is_some_and(|prev: &String| {
            let digits = prev.ends_with(|c: char| c.is_ascii_digit())
                && w.starts_with(|c: char| c.is_ascii_digit());
            digits || w == "€" || w == "%" || w.starts_with("€")
        });
        match words.last_mut() {
            Some(prev) if glue => {
                prev.push(' ');
                prev.push_str(w);
            }
            _ => words.push(w.to_owned()),
        }
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in &words {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Left-aligned columns, two spaces apart. Cells other than the last are cut at
/// [`CELL_WIDTH`]; the last column (long explanations) wraps so that no line is wider than
/// [`TABLE_WIDTH`], its continuation lines aligned under it.
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let last = header.len().saturating_sub(1);
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c.clone()
                    } else {
                        truncate_cell(c, CELL_WIDTH)
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let indent: usize = widths.iter().take(last).map(|w| w + 2).sum();
    let wrap_at = TABLE_WIDTH.saturating_sub(indent).max(30);
    if let Some(w) = widths.get_mut(last) {
        *w = (*w).min(wrap_at);
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        let mut tail = Vec::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                let mut parts = wrap(cell, wrap_at).into_iter();
                out.push_str(&parts.next().unwrap_or_default());
                tail.extend(parts);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        let mut text = out.trim_end().to_owned() + "\n";
        for t in tail {
            text.push_str(&" ".repeat(indent));
            text.push_str(&t);
            text.push('\n');
        }
        text
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    text_table(header, rows)
}

/// The schedule of every project, for staff.
pub fn milestones_table(schedules: &[ProjectSchedule]) -> String {
    let header = [
        "Projet",
        "Jalon",
        "Libellé",
        "Échéance",
        "État",
        "Montant",
        "Observations",
    ];
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .flat_map(|s| {
            s.milestones.iter().map(move |m| {
                vec![
                    project_label(s),
                    m.id.to_string(),
                    m.id.libelle(),
                    date_fr(m.due),
                    m.state.libelle().to_owned(),
                    amount_fr(m.amount_cents),
                    m.note.clone(),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return "Aucune échéance.\n".into();
    }
    table(&header, &rows)
}

/// The payments of every project, with how each amount was computed.
pub fn payments_table(schedules: &[ProjectSchedule]) -> String {
    let header = [
        "Projet",
        "Jalon",
        "Nature",
        "Échéance",
        "État",
        "Montant",
        "Versé le",
        "Montant versé",
        "Calcul",
    ];
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .flat_map(|s| {
            s.payments.iter().map(move |p| {
                vec![
                    project_label(s),
                    p.milestone.to_string(),
                    p.kind.libelle().to_owned(),
                    date_fr(p.due),
                    p.state.libelle().to_owned(),
                    amount_fr(p.amount_cents),
                    date_fr(p.paid_on),
                    amount_fr(p.paid_cents),
                    explanation_with_blocker(p),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return "Aucun versement.\n".into();
    }
    table(&header, &rows)
}

fn explanation_with_blocker(p: &Payment) -> String {
    match p.blocker {
        Some(b) if !p.explanation.contains(&b.libelle()) => {
            format!("{} ; {}", p.explanation, b.libelle())
        }
        _ => p.explanation.clone(),
    }
}

fn csv_amount(cents: Option<i64>, style: CsvStyle) -> String {
    cents
        .map(|c| match style {
            CsvStyle::Tableur => format_number_fr(c, false),
            CsvStyle::Plain => format_number_plain(c),
        })
        .unwrap_or_default()
}

fn write_csv(header: &[&str], rows: Vec<Vec<String>>, style: CsvStyle) -> String {
    let delimiter = match style {
        CsvStyle::Tableur => b';',
        CsvStyle::Plain => b',',
    };
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to memory cannot fail, and every row has the header's length.
    w.write_record(header).expect("CSV to memory");
    for row in rows {
        w.write_record(row).expect("CSV to memory");
    }
    let bytes = w.into_inner().expect("CSV to memory");
    let body = String::from_utf8(bytes).expect("CSV of UTF-8 strings");
    match style {
        CsvStyle::Tableur => format!("\u{feff}{body}"),
        CsvStyle::Plain => body,
    }
}

/// The schedule of every project as CSV (ISO dates; see [`CsvStyle`]).
pub fn milestones_csv(schedules: &[ProjectSchedule], style: CsvStyle) -> String {
    let header = [
        "lettre_intention",
        "projet_sante",
        "jalon",
        "libelle",
        "echeance",
        "etat",
        "fait_le",
        "en_retard_depuis",
        "destinataire",
        "montant_eur",
        "observations",
    ];
    let rows = schedules
        .iter()
        .flat_map(|s| {
            s.milestones.iter().map(move |m| {
                vec![
                    s.project.to_string(),
                    s.ps_dossier.map(|n| n.to_string()).unwrap_or_default(),
                    m.id.to_string(),
                    m.id.libelle(),
                    date_iso(m.due),
                    m.state.libelle().to_owned(),
                    date_iso(m.done_on),
                    date_iso(m.overdue_since),
                    m.recipient.libelle().to_owned(),
                    csv_amount(m.amount_cents, style),
                    m.note.clone(),
                ]
            })
        })
        .collect();
    write_csv(&header, rows, style)
}

/// The payments of every project as CSV (ISO dates; see [`CsvStyle`]).
pub fn payments_csv(schedules: &[ProjectSchedule], style: CsvStyle) -> String {
    let header = [
        "lettre_intention",
        "projet_sante",
        "jalon",
        "nature",
        "echeance",
        "etat",
        "montant_eur",
        "verse_le",
        "montant_verse_eur",
        "calcul",
    ];
    let rows = schedules
        .iter()
        .flat_map(|s| {
            s.payments.iter().map(move |p| {
                vec![
                    s.project.to_string(),
                    s.ps_dossier.map(|n| n.to_string()).unwrap_or_default(),
                    p.milestone.to_string(),
                    p.kind.libelle().to_owned(),
                    date_iso(p.due),
                    p.state.libelle().to_owned(),
                    csv_amount(p.amount_cents, style),
                    date_iso(p.paid_on),
                    csv_amount(p.paid_cents, style),
                    explanation_with_blocker(p),
                ]
            })
        })
        .collect();
    write_csv(&header, rows, style)
}

#[derive(Serialize)]
struct JsonProject<'a, T> {
    lettre_intention: i64,
    projet_sante: Option<i64>,
    date: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    milestones: Option<Vec<T>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payments: Option<Vec<T>>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonMilestone<'a> {
    #[serde(flatten)]
    milestone: &'a Milestone,
    label: String,
    state_label: &'static str,
    amount_eur: Option<String>,
}

#[derive(Serialize)]
struct JsonPayment<'a> {
    #[serde(flatten)]
    payment: &'a Payment,
    label: String,
    state_label: &'static str,
    amount_eur: Option<String>,
    paid_eur: Option<String>,
}

fn json<T: Serialize>(value: &T) -> String {
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_string_pretty(value).expect("JSON of plain data") + "\n"
}

/// The schedule of every project as JSON: ISO dates, amounts in cents and in euros (a string
/// with two decimals, so that no float rounds them).
pub fn milestones_json(schedules: &[ProjectSchedule]) -> String {
    let projects: Vec<_> = schedules
        .iter()
        .map(|s| JsonProject {
            lettre_intention: s.project,
            projet_sante: s.ps_dossier,
            date: s.today,
            milestones: Some(
                s.milestones
                    .iter()
                    .map(|m| JsonMilestone {
                        milestone: m,
                        label: m.id.libelle(),
                        state_label: m.state.libelle(),
                        amount_eur: m.amount_cents.map(format_number_plain),
                    })
                    .collect(),
            ),
            payments: None,
            warnings: &s.warnings,
        })
        .collect();
    json(&projects)
}

/// The payments of every project as JSON, with their explanations.
pub fn payments_json(schedules: &[ProjectSchedule]) -> String {
    let projects: Vec<_> = schedules
        .iter()
        .map(|s| JsonProject {
            lettre_intention: s.project,
            projet_sante: s.ps_dossier,
            date: s.today,
            milestones: None,
            payments: Some(
                s.payments
                    .iter()
                    .map(|p| JsonPayment {
                        payment: p,
                        label: p.milestone.libelle(),
                        state_label: p.state.libelle(),
                        amount_eur: p.amount_cents.map(format_number_plain),
                        paid_eur: p.paid_cents.map(format_number_plain),
                    })
                    .collect(),
            ),
            warnings: &s.warnings,
        })
        .collect();
    json(&projects)
}

/// The UID of a milestone's calendar event: stable across runs, so that a calendar updates the
/// event instead of duplicating it when a date or a state changes.
pub fn ics_uid(project: i64, id: MilestoneId) -> String {
    format!("ess-{project}-{}@essbot", id.to_string().to_lowercase())
}

/// Every dated milestone that still applies as an all-day event (ICS, RFC 5545).
/// `generated_at` is the DTSTAMP: passed in, never read from the clock.
pub fn milestones_ics(schedules: &[ProjectSchedule], generated_at: DateTime<Utc>) -> String {
    let mut cal = Calendar::new();
    cal.name("Échéances des ESS (essbot)");
    for s in schedules {
        for m in &s.milestones {
            let Some(due) = m.due.filter(|_| m.state != State::SansObjet) else {
                continue;
            };
            let mut summary = format!("ESS {} — {} : {}", project_label(s), m.id, m.id.libelle());
            if let Some(c) = m.amount_cents {
                summary.push_str(&format!(" ({})", format_eur(c)));
            }
            let mut description = format!(
                "État au {} : {}\nDestinataire : {}\n",
                format_date_fr(s.today),
                m.state.libelle(),
                m.recipient.libelle()
            );
            if let Some(c) = m.amount_cents {
                description.push_str(&format!("Montant : {}\n", format_eur(c)));
            }
            if let Some(p) = s.payments.iter().find(|p| p.milestone == m.id) {
                description.push_str(&format!("Calcul : {}\n", p.explanation));
            }
            description.push_str(&format!("Observations : {}", m.note));
            let event = icalendar::Event::new()
                .uid(&ics_uid(s.project, m.id))
                .timestamp(generated_at)
                .starts(due)
                .ends(due.succ_opt().unwrap_or(due))
                .summary(&summary)
                .description(&description)
                .done();
            cal.push(event);
        }
    }
    cal.done().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_last_cells_wrap_under_their_column_and_amounts_stay_whole() {
        let long = "solde du crédit d'amorçage : 80 000,00 € − 40 000,00 € = 40 000,00 €, versé par la CPAM de rattachement ".repeat(3);
        let t = text_table(
            &["Projet", "Jalon", "Calcul"],
            &[vec!["LI 1 / PS 25".into(), "AMO-2".into(), long.clone()]],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines.len() > 3, "{t}");
        let column = "LI 1 / PS 25  AMO-2  ".chars().count();
        for l in &lines {
            assert!(l.chars().count() <= TABLE_WIDTH, "{l}");
        }
        for l in &lines[3..] {
            assert_eq!(l.len() - l.trim_start().len(), column, "{l}");
        }
        // No amount is cut in two.
        for l in &lines[2..] {
            assert!(
                !l.trim_end().ends_with(" 40") && !l.trim_start().starts_with("000,00"),
                "{t}"
            );
        }
        let rejoined: Vec<&str> = lines[2..]
            .iter()
            .map(|l| l.get(column.min(l.len())..).unwrap_or("").trim())
            .collect();
        assert_eq!(rejoined.join(" "), long.trim());
        // A cell of another column is cut.
        let t = text_table(&["A", "B"], &[vec!["x".repeat(100), "y".into()]]);
        assert!(t.contains(&format!("{}…", "x".repeat(47))), "{t}");
    }
    use crate::milestones::EventKind;
    use crate::milestones::derive_tests::{Timeline, d};

    /// AMO-1 due on 15/04/2026, PS due on 12/07/2026; today 01/04/2026.
    fn schedules() -> Vec<ProjectSchedule> {
        let t = Timeline::standard()
            .add(EventKind::AmorcageContractSigned, d(2026, 4, 15))
            .members(55, d(2026, 1, 12));
        vec![t.on(d(2026, 4, 1))]
    }

    #[test]
    fn the_table_is_french() {
        let out = milestones_table(&schedules());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("Projet   Jalon      Libellé"), "{out}");
        assert!(lines[0].ends_with("Montant      Observations"), "{out}");
        let amo1 = lines
            .iter()
            .find(|l| l.contains("AMO-1"))
            .expect("AMO-1 row");
        assert!(amo1.contains("15/04/2026"), "{amo1}");
        assert!(amo1.contains("à venir"), "{amo1}");
        assert!(amo1.contains("40 000,00 €"), "{amo1}");
        assert!(out.contains("12/07/2026"));
        assert_eq!(milestones_table(&[]), "Aucune échéance.\n");

        let pay = payments_table(&schedules());
        // The explanation wraps under its column; joined again, it is whole.
        let joined = pay.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(joined.contains("80 000,00 € × 1/2 = 40 000,00 €"), "{pay}");
        assert!(pay.lines().next().expect("header").ends_with("Calcul"));
    }

    #[test]
    fn the_spreadsheet_csv_has_a_bom_semicolons_and_decimal_commas() {
        let out = milestones_csv(&schedules(), CsvStyle::Tableur);
        assert!(out.starts_with('\u{feff}'));
        let body = out.trim_start_matches('\u{feff}');
        assert!(
            body.starts_with("lettre_intention;projet_sante;jalon;"),
            "{body}"
        );
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(body.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 11);
        let amo1 = &rows[0];
        assert_eq!(&amo1[2], "AMO-1");
        assert_eq!(&amo1[4], "2026-04-15");
        assert_eq!(&amo1[5], "à venir");
        assert_eq!(&amo1[9], "40000,00");

        let plain = milestones_csv(&schedules(), CsvStyle::Plain);
        assert!(plain.starts_with("lettre_intention,projet_sante,"));
        let mut reader = csv::Reader::from_reader(plain.as_bytes());
        let first = reader.records().next().expect("a row").expect("valid");
        assert_eq!(&first[9], "40000.00");
        assert_eq!(&first[4], "2026-04-15");

        let pay = payments_csv(&schedules(), CsvStyle::Tableur);
        assert!(pay.starts_with("\u{feff}lettre_intention;"));
        assert!(pay.contains(";40000,00;"), "{pay}");
    }

    #[test]
    fn json_has_iso_dates_and_amounts_in_cents_and_euros() {
        let v: serde_json::Value =
            serde_json::from_str(&milestones_json(&schedules())).expect("valid JSON");
        let amo1 = &v[0]["milestones"][0];
        assert_eq!(v[0]["lettre_intention"], 1234);
        assert_eq!(v[0]["date"], "2026-04-01");
        assert_eq!(amo1["id"], "AMO-1");
        assert_eq!(amo1["due"], "2026-04-15");
        assert_eq!(amo1["state"], "a_venir");
        assert_eq!(amo1["state_label"], "à venir");
        assert_eq!(amo1["amount_cents"], 4_000_000);
        assert_eq!(amo1["amount_eur"], "40000.00");
        assert_eq!(amo1["recipient"], "cpam");

        let p: serde_json::Value =
            serde_json::from_str(&payments_json(&schedules())).expect("valid JSON");
        assert_eq!(p[0]["payments"][0]["milestone"], "AMO-1");
        assert!(
            p[0]["payments"][0]["explanation"]
                .as_str()
                .expect("text")
                .contains("40 000,00 €")
        );
        assert!(p[0].get("milestones").is_none());
    }

    #[test]
    fn ics_parses_back_with_one_all_day_event_per_dated_milestone() {
        let stamp = DateTime::<Utc>::from_timestamp(1_775_000_000, 0).expect("ts");
        let out = milestones_ics(&schedules(), stamp);
        assert!(out.contains("\r\n"));
        assert!(out.lines().all(|l| l.trim_end_matches('\r').len() <= 75));
        let unfolded = icalendar::parser::unfold(&out);
        let cal = icalendar::parser::read_calendar(&unfolded).expect("valid ICS");
        let events: Vec<_> = cal
            .components
            .iter()
            .filter(|c| c.name.as_str() == "VEVENT")
            .collect();
        // Dated: AMO-1, PS-DUE, OPER-18, ADH-50, GOUV-5.
        assert_eq!(events.len(), 5);
        let prop = |e: &icalendar::parser::Component<'_>, name: &str| {
            e.find_prop(name)
                .map(|p| p.val.clone().unescape_text().as_str().to_owned())
                .unwrap_or_default()
        };
        let amo1 = events
            .iter()
            .find(|e| prop(e, "UID") == "ess-1234-amo-1@essbot")
            .expect("AMO-1 event");
        assert_eq!(prop(amo1, "DTSTART"), "20260415");
        assert_eq!(prop(amo1, "DTEND"), "20260416");
        let dtstart = amo1.find_prop("DTSTART").expect("DTSTART");
        assert!(
            dtstart.params.iter().any(|p| p.key.as_str() == "VALUE"
                && p.val.as_ref().is_some_and(|v| v.as_str() == "DATE"))
        );
        assert_eq!(prop(amo1, "DTSTAMP"), "20260331T233320Z");
        assert_eq!(
            prop(amo1, "SUMMARY"),
            "ESS LI 1234 — AMO-1 : Crédit d'amorçage, première moitié (40 000,00 €)"
        );
        let description = prop(amo1, "DESCRIPTION");
        assert!(
            description.starts_with("État au 01/04/2026 : à venir\nDestinataire : CPAM"),
            "{description}"
        );
        assert!(
            description
                .contains("Calcul : première moitié du crédit d'amorçage : 80 000,00 € × 1/2")
        );
        // Stable: the same schedule gives the same calendar.
        assert_eq!(out, milestones_ics(&schedules(), stamp));
    }

    #[test]
    fn due_within_keeps_open_items_up_to_the_limit() {
        let s = schedules();
        let in_14 = due_within(&s, d(2026, 4, 1), 14);
        let ids: Vec<_> = in_14[0].milestones.iter().map(|m| m.id).collect();
        assert_eq!(ids, [MilestoneId::Amo1]);
        assert_eq!(in_14[0].payments.len(), 1);
        assert!(due_within(&s, d(2026, 4, 1), 13).is_empty());
        let in_120 = due_within(&s, d(2026, 4, 1), 120);
        assert_eq!(in_120[0].milestones.len(), 2);
        // Overdue items stay in.
        let late = Timeline::standard().on(d(2026, 8, 1));
        let ids: Vec<_> = due_within(&[late], d(2026, 8, 1), 0)[0]
            .milestones
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [MilestoneId::PsDue]);
    }
}
