//! The pre-check report: the verdict, the findings in a fixed order, and the French text written
//! to the dossier's private annotation (rules.md, "What the report looks like").
//!
//! The text is a pure function of the findings, the rulebook version and the reference years, so
//! an unchanged dossier gives a byte-identical text and the same [`Report::fingerprint`]: the
//! write-back compares fingerprints and never re-annotates it.

use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::fields::DemarcheKind;
use super::reference::{COG_YEAR, ReferenceData};
use super::text::{count, quote};
use super::{Finding, RULEBOOK_VERSION, Severity};

/// The outcome of a pre-check, worst first (rules.md, "Severities and verdict"): any
/// `bloquant` makes it non-compliant, else any `derogation` a matter for the CPN, else any
/// `a_verifier` a matter for a human; compliant means none of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Conforme,
    /// No condition shown broken, but at least one that a human must establish by reading.
    AVerifier,
    /// No blocking point, but at least one derogation the CPN must grant.
    DerogationCpn,
    NonConforme,
}

impl Verdict {
    /// The verdict as the report's first line writes it.
    pub fn libelle(self) -> &'static str {
        match self {
            Self::Conforme => "CONFORME",
            Self::AVerifier => "À VÉRIFIER",
            Self::DerogationCpn => "DÉROGATION À SOUMETTRE À LA CPN",
            Self::NonConforme => "NON CONFORME",
        }
    }

    /// The stored spelling (`checks.verdict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conforme => "conforme",
            Self::AVerifier => "a_verifier",
            Self::DerogationCpn => "derogation_cpn",
            Self::NonConforme => "non_conforme",
        }
    }

    /// The stored spelling, parsed.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Conforme,
            Self::AVerifier,
            Self::DerogationCpn,
            Self::NonConforme,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// What the "conforme" checkbox annotation carries.
    pub fn is_conforme(self) -> bool {
        self == Self::Conforme
    }
}

/// The pre-check of one dossier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// DS dossier number.
    pub dossier: i64,
    /// `lettre_intention` or `projet_sante`.
    pub kind: &'static str,
    /// Derived from the findings' severities.
    pub verdict: Verdict,
    /// [`RULEBOOK_VERSION`] at the time of the check.
    pub rulebook_version: &'static str,
    /// Reference data the findings rest on (COG year, demography year), stated in the text.
    pub reference: String,
    /// Ordered: severity, then rule id, then evidence, then message.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Orders the findings (dropping exact duplicates) and derives the verdict.
    pub fn new(
        dossier: i64,
        kind: DemarcheKind,
        mut findings: Vec<Finding>,
        reference: &ReferenceData,
    ) -> Self {
        findings.sort_by(|a, b| {
            (a.severity, a.rule, &a.evidence, &a.message).cmp(&(
                b.severity,
                b.rule,
                &b.evidence,
                &b.message,
            ))
        });
        findings.dedup();
        let has = |s: Severity| findings.iter().any(|f| f.severity == s);
        let verdict = if has(Severity::Bloquant) {
            Verdict::NonConforme
        } else if has(Severity::Derogation) {
            Verdict::DerogationCpn
        } else if has(Severity::AVerifier) {
            Verdict::AVerifier
        } else {
            Verdict::Conforme
        };
        let mut refs = format!("COG {COG_YEAR}");
        if let Some(d) = reference.demographie() {
            let _ = write!(refs, ", démographie {}", d.annee);
        }
        Self {
            dossier,
            kind: kind.as_str(),
            verdict,
            rulebook_version: RULEBOOK_VERSION,
            reference: refs,
            findings,
        }
    }

    /// How many findings have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The first line: `Pré-contrôle essbot : NON CONFORME — 2 points bloquants, 1 dérogation à
    /// soumettre à la CPN`.
    pub fn verdict_line(&self) -> String {
        let mut parts = Vec::new();
        for (sev, one, many) in [
            (Severity::Bloquant, "point bloquant", "points bloquants"),
            (
                Severity::Derogation,
                "dérogation à soumettre à la CPN",
                "dérogations à soumettre à la CPN",
            ),
            (Severity::AVerifier, "point à vérifier", "points à vérifier"),
            (Severity::Avertissement, "avertissement", "avertissements"),
        ] {
            let n = self.count(sev);
            if n > 0 {
                parts.push(count(n, one, many));
            }
        }
        let mut line = format!("Pré-contrôle essbot : {}", self.verdict.libelle());
        if !parts.is_empty() {
            line.push_str(" — ");
            line.push_str(&parts.join(", "));
        }
        line
    }

    /// The annotation text: the verdict line, one line per finding (info lines last, by the
    /// order of severities), then the rulebook version.
    pub fn text(&self) -> String {
        let mut out = self.verdict_line();
        out.push('\n');
        for f in &self.findings {
            out.push_str(&finding_line(f));
            out.push('\n');
        }
        let _ = write!(
            out,
            "Règles essbot {} ; données de référence : {}.",
            self.rulebook_version, self.reference
        );
        out
    }

    /// SHA-256 of the text, hex: equal for equal reports, whatever the run.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.text().as_bytes());
        digest.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// The report as `essbot check --json` prints it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("fingerprint".into(), self.fingerprint().into());
            o.insert("conforme".into(), self.verdict.is_conforme().into());
        }
        v
    }

    /// What the applicant must complete, one item per line, in the order of the report; empty
    /// when nothing is missing.
    pub fn elements_manquants(&self) -> Vec<String> {
        let mut items: Vec<String> = Vec::new();
        for f in &self.findings {
            if let Some(a) = &f.a_completer
                && !items.contains(a)
            {
                items.push(a.clone());
            }
        }
        items
    }

    /// A message to the applicant listing what is missing, or `None` when nothing is.
    pub fn message_usager(&self) -> Option<String> {
        let items = self.elements_manquants();
        if items.is_empty() {
            return None;
        }
        let mut out = format!(
            "Bonjour,\n\nLe pré-contrôle automatique de votre dossier n° {} relève des éléments à compléter ou à préciser :\n",
            self.dossier
        );
        for (i, item) in items.iter().enumerate() {
            let end = if i + 1 == items.len() { "." } else { " ;" };
            let _ = writeln!(out, "- {item}{end}");
        }
        out.push_str(
            "\nCe message est envoyé automatiquement ; l'instruction de votre dossier reste assurée par l'ARS et l'Assurance Maladie.",
        );
        Some(out)
    }
}

/// `[LI-ADH-01] bloquant — 4 adhérents pour 52 libéraux (7,7 %) ; … (champ « Nombre d'adhérents »).`
pub fn finding_line(f: &Finding) -> String {
    let mut champs: Vec<&str> = Vec::new();
    for e in &f.evidence {
        if !e.champ.is_empty() && !champs.contains(&e.champ.as_str()) {
            champs.push(&e.champ);
        }
    }
    let suffix = match champs.as_slice() {
        [] => String::new(),
        [one] => format!(" (champ {})", quote(one)),
        many => format!(
            " (champs {})",
            many.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "[{}] {} — {}{suffix}.",
        f.rule.as_str(),
        f.severity.libelle(),
        f.message.trim_end_matches('.')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleId;

    fn f(rule: RuleId, sev: Severity, msg: &str) -> Finding {
        Finding::new(rule, sev, msg)
    }

    #[test]
    fn the_spec_example_line() {
        let line = finding_line(
            &f(
                RuleId::LiAdh01,
                Severity::Bloquant,
                "4 adhérents pour 52 libéraux (7,7 %) ; le cahier des charges exige au moins 10 %",
            )
            .champ("Nombre d'adhérents", Some("4".into())),
        );
        assert_eq!(
            line,
            "[LI-ADH-01] bloquant — 4 adhérents pour 52 libéraux (7,7 %) ; le cahier des charges exige au moins 10 % (champ « Nombre d'adhérents »)."
        );
    }

    #[test]
    fn verdict_lines() {
        let r = ReferenceData::builtin();
        let rep = |fs: Vec<Finding>| Report::new(1, DemarcheKind::LettreIntention, fs, &r);
        let nc = rep(vec![
            f(RuleId::LiAdh01, Severity::Bloquant, "a"),
            f(RuleId::LiCont01, Severity::Bloquant, "b"),
            f(RuleId::LiSpec01, Severity::Derogation, "c"),
        ]);
        assert_eq!(nc.verdict, Verdict::NonConforme);
        assert_eq!(
            nc.verdict_line(),
            "Pré-contrôle essbot : NON CONFORME — 2 points bloquants, 1 dérogation à soumettre à la CPN"
        );
        let d = rep(vec![
            f(RuleId::LiSpec01, Severity::Derogation, "c"),
            f(RuleId::LiCoop01, Severity::Avertissement, "d"),
        ]);
        assert_eq!(d.verdict, Verdict::DerogationCpn);
        assert!(!d.verdict.is_conforme());
        assert_eq!(
            d.verdict_line(),
            "Pré-contrôle essbot : DÉROGATION À SOUMETTRE À LA CPN — 1 dérogation à soumettre à la CPN, 1 avertissement"
        );
        let v = rep(vec![
            f(RuleId::LiMiss01, Severity::AVerifier, "v"),
            f(RuleId::LiHosp01, Severity::AVerifier, "w"),
            f(RuleId::LiCoop01, Severity::Avertissement, "d"),
        ]);
        assert_eq!(v.verdict, Verdict::AVerifier);
        assert!(!v.verdict.is_conforme());
        assert_eq!(
            v.verdict_line(),
            "Pré-contrôle essbot : À VÉRIFIER — 2 points à vérifier, 1 avertissement"
        );
        // A derogation outranks a point to check; a blocking point outranks both.
        let mut fs = v.findings.clone();
        fs.push(f(RuleId::LiSpec01, Severity::Derogation, "c"));
        assert_eq!(rep(fs.clone()).verdict, Verdict::DerogationCpn);
        fs.push(f(RuleId::LiAdh01, Severity::Bloquant, "a"));
        assert_eq!(rep(fs).verdict, Verdict::NonConforme);
        for v in [
            Verdict::Conforme,
            Verdict::AVerifier,
            Verdict::DerogationCpn,
            Verdict::NonConforme,
        ] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        let c = rep(vec![f(RuleId::LiAdh01, Severity::Info, "ok")]);
        assert_eq!(c.verdict, Verdict::Conforme);
        assert_eq!(c.verdict_line(), "Pré-contrôle essbot : CONFORME");
    }

    #[test]
    fn findings_are_ordered_and_deduplicated_whatever_their_input_order() {
        let r = ReferenceData::builtin();
        let fs = vec![
            f(RuleId::LiCaisse01, Severity::Info, "i"),
            f(RuleId::LiTerr01, Severity::Bloquant, "t").champ("B", None),
            f(RuleId::LiAdh01, Severity::Bloquant, "a"),
            f(RuleId::LiTerr01, Severity::Bloquant, "t").champ("A", None),
            f(RuleId::LiCoop01, Severity::Avertissement, "w"),
            f(RuleId::LiAdh01, Severity::Bloquant, "a"),
        ];
        let mut reversed = fs.clone();
        reversed.reverse();
        let a = Report::new(7, DemarcheKind::LettreIntention, fs, &r);
        let b = Report::new(7, DemarcheKind::LettreIntention, reversed, &r);
        assert_eq!(a.text(), b.text());
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.findings.len(), 5);
        let ids: Vec<&str> = a.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            ids,
            [
                "LI-ADH-01",
                "LI-TERR-01",
                "LI-TERR-01",
                "LI-COOP-01",
                "LI-CAISSE-01"
            ]
        );
        assert_eq!(a.findings[1].evidence[0].champ, "A");
        let text = a.text();
        assert!(
            text.ends_with(&format!(
                "Règles essbot {RULEBOOK_VERSION} ; données de référence : COG 2024."
            )),
            "{text}"
        );
        assert_eq!(text.lines().count(), 7);
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn json_and_applicant_message() {
        let r = ReferenceData::builtin();
        let rep = Report::new(
            9,
            DemarcheKind::ProjetSante,
            vec![
                f(RuleId::PsCont01, Severity::Bloquant, "x")
                    .champ("Diagnostic territorial", None)
                    .a_completer("le diagnostic territorial"),
                f(RuleId::PsInd01, Severity::Bloquant, "y")
                    .a_completer("au moins un indicateur qualitatif"),
            ],
            &r,
        );
        let j = rep.to_json();
        assert_eq!(j["verdict"], "non_conforme");
        assert_eq!(j["kind"], "projet_sante");
        assert_eq!(j["conforme"], false);
        assert_eq!(j["findings"][0]["rule"], "PS-CONT-01");
        assert_eq!(j["findings"][0]["severity"], "bloquant");
        assert_eq!(j["fingerprint"], rep.fingerprint());
        let m = rep.message_usager().unwrap();
        assert!(
            m.contains("- le diagnostic territorial ;\n- au moins un indicateur qualitatif.\n"),
            "{m}"
        );
        let ok = Report::new(9, DemarcheKind::ProjetSante, vec![], &r);
        assert!(ok.message_usager().is_none());
    }
}
