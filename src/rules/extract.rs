//! From a DS dossier to the domain inputs of rules.md.
//!
//! Each input is a [`Read`]: the value, or why there is none — so that a missing champ, a champ
//! of an unexpected type or a number written "douze" reaches the rules as a fact they report.
//! Which champ gives a field, and how each champ type is read, are decided by the mapping and
//! by the field's shape ([`super::fields`], [`super::read`]).

use chrono::NaiveDate;

use super::fields::DemarcheKind;
use super::mapping::ResolvedMapping;
use super::read::{
    ASSOCIATION, CHOICES, CONTENU, COUNT, DEPARTEMENTS, FICHIERS, GOUVERNANCE, LIEN, OUI_NON,
    PORTEURS, Parsed, REGION, Reader, SIEGE, SPECIALITES, TEXT, shown,
};
pub use super::read::{
    Association, Choix, Contenu, Gouvernance, Lien, Lieu, Membre, Porteur, Porteurs, Siege, Voix,
};
use crate::ds::model::{Demandeur, Dossier};

/// One domain input as read from a dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    /// The champ held a readable value.
    Ok { champ: String, value: T },
    /// The champ is mapped but empty, or absent from this dossier.
    Missing { champ: String },
    /// The champ holds something that cannot be this input.
    Unreadable {
        champ: String,
        /// What the champ held, as DS displays it.
        raw: String,
        /// Why it cannot be read, in French.
        why: String,
    },
    /// The démarche's configuration maps no champ to this input (said by `config check`, never
    /// in a report).
    NotMapped { field: &'static str },
}

impl<T> Read<T> {
    /// The value, when there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Ok { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The label of the champ the input comes from (`None` when not mapped).
    pub fn champ(&self) -> Option<&str> {
        match self {
            Self::Ok { champ, .. } | Self::Missing { champ } | Self::Unreadable { champ, .. } => {
                Some(champ)
            }
            Self::NotMapped { .. } => None,
        }
    }

    /// True when a value was read.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

/// A lettre d'intention's inputs (rules.md, "Inputs").
#[derive(Debug, Clone, PartialEq)]
pub struct LettreIntention {
    /// DS dossier number.
    pub numero: i64,
    /// `dateDepot` in Europe/Paris.
    pub date_depot: NaiveDate,
    /// Who filed it: a legal person's data stand in for a missing association champ.
    pub demandeur: Demandeur,
    pub porteurs: Read<Porteurs>,
    /// Specialty names as chosen or written (matching them to groups is the rules' job).
    pub specialites: Read<Vec<String>>,
    /// Territory entries as written (`75 - Paris`, `2A`, `Paris (75)`, a commune…).
    pub territoire_departements: Read<Vec<Lieu>>,
    pub territoire_region: Read<String>,
    pub perimetre: Read<String>,
    pub nb_medecins_specialite: Read<u32>,
    pub nb_liberaux_specialite: Read<u32>,
    pub nb_adherents: Read<u32>,
    pub association: Read<Association>,
    pub association_siret: Read<Association>,
    pub siege: Read<Siege>,
    pub cooperations: Read<Choix>,
    pub cooperations_precisions: Read<String>,
    pub gouvernance: Read<Gouvernance>,
    pub actions: Read<String>,
    pub actions_mission_socle: Read<Choix>,
    pub derogation_demandee: Read<bool>,
    pub derogation_motif: Read<String>,
}

/// A projet de santé's inputs (rules.md, "Inputs").
#[derive(Debug, Clone, PartialEq)]
pub struct ProjetSante {
    /// DS dossier number.
    pub numero: i64,
    /// `dateDepot` in Europe/Paris.
    pub date_depot: NaiveDate,
    pub lien_lettre_intention: Read<Lien>,
    pub diagnostic_territorial: Read<Contenu>,
    pub missions_actions: Read<Contenu>,
    pub indicateurs: Read<Choix>,
    pub indicateur_qualitatif: Read<String>,
    pub modalites_actualisation: Read<Contenu>,
    pub gouvernance: Read<Gouvernance>,
    /// File names of the deployment document.
    pub plan_deploiement: Read<Vec<String>>,
    pub nb_adherents: Read<u32>,
    pub nb_liberaux_specialite: Read<u32>,
}

/// Reads a lettre d'intention.
pub fn extract_lettre(dossier: &Dossier, mapping: &ResolvedMapping) -> LettreIntention {
    let s = Source::new(dossier, mapping, DemarcheKind::LettreIntention);
    LettreIntention {
        numero: dossier.number,
        date_depot: paris_date(dossier),
        demandeur: dossier.demandeur.clone(),
        porteurs: s.read("porteurs", PORTEURS),
        specialites: s.read("specialites", SPECIALITES),
        territoire_departements: s.read("territoire_departements", DEPARTEMENTS),
        territoire_region: s.read("territoire_region", REGION),
        perimetre: s.read("perimetre", TEXT),
        nb_medecins_specialite: s.read("nb_medecins_specialite", COUNT),
        nb_liberaux_specialite: s.read("nb_liberaux_specialite", COUNT),
        nb_adherents: s.read("nb_adherents", COUNT),
        association: s.read("association", ASSOCIATION),
        association_siret: s.read("association_siret", ASSOCIATION),
        siege: s.read("siege", SIEGE),
        cooperations: s.read("cooperations", CHOICES),
        cooperations_precisions: s.read("cooperations_precisions", TEXT),
        gouvernance: s.read("gouvernance", GOUVERNANCE),
        actions: s.read("actions", TEXT),
        actions_mission_socle: s.read("actions_mission_socle", CHOICES),
        derogation_demandee: s.read("derogation_demandee", OUI_NON),
        derogation_motif: s.read("derogation_motif", TEXT),
    }
}

/// Reads a projet de santé.
pub fn extract_projet(dossier: &Dossier, mapping: &ResolvedMapping) -> ProjetSante {
    let s = Source::new(dossier, mapping, DemarcheKind::ProjetSante);
    ProjetSante {
        numero: dossier.number,
        date_depot: paris_date(dossier),
        lien_lettre_intention: s.read("lien_lettre_intention", LIEN),
        diagnostic_territorial: s.read("diagnostic_territorial", CONTENU),
        missions_actions: s.read("missions_actions", CONTENU),
        indicateurs: s.read("indicateurs", CHOICES),
        indicateur_qualitatif: s.read("indicateur_qualitatif", TEXT),
        modalites_actualisation: s.read("modalites_actualisation", CONTENU),
        gouvernance: s.read("gouvernance", GOUVERNANCE),
        plan_deploiement: s.read("plan_deploiement", FICHIERS),
        nb_adherents: s.read("nb_adherents", COUNT),
        nb_liberaux_specialite: s.read("nb_liberaux_specialite", COUNT),
    }
}

/// The day a dossier was filed, in Europe/Paris (DS sends the offset; the calendar day is
/// what the deadlines of the cahier count in).
pub fn paris_date(dossier: &Dossier) -> NaiveDate {
    dossier
        .date_depot
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

struct Source<'a> {
    dossier: &'a Dossier,
    mapping: &'a ResolvedMapping,
    kind: DemarcheKind,
}

impl<'a> Source<'a> {
    fn new(dossier: &'a Dossier, mapping: &'a ResolvedMapping, kind: DemarcheKind) -> Self {
        Self {
            dossier,
            mapping,
            kind,
        }
    }

    fn read<T>(&self, field: &'static str, reader: Reader<T>) -> Read<T> {
        debug_assert_eq!(
            self.kind.field(field).map(|f| f.shape),
            Some(reader.shape),
            "{field} read with the reader of another shape"
        );
        let Some(resolved) = self.mapping.fields.get(field) else {
            return Read::NotMapped { field };
        };
        let champ = resolved.label.clone();
        let Some(c) = self.dossier.champ(&resolved.descriptor_id) else {
            return Read::Missing { champ };
        };
        match (reader.read)(c, resolved) {
            Parsed::Value(value) => Read::Ok { champ, value },
            Parsed::Empty => Read::Missing { champ },
            Parsed::Bad(why) => Read::Unreadable {
                champ,
                raw: shown(c),
                why,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ds::model::ChampValue;
    use crate::rules::testutil::*;

    #[test]
    fn unmapped_absent_and_unreadable_champs_are_distinguished() {
        let mapping = li_mapping();
        let mut d = li_dossier();
        d.champs.retain(|c| c.label != "Périmètre médical");
        set(
            &mut d,
            "Nombre de médecins adhérents",
            ChampValue::Text(Some("douze".into())),
        );
        let mut m = mapping.clone();
        m.fields.remove("territoire_region");
        let li = extract_lettre(&d, &m);
        assert!(matches!(
            li.territoire_region,
            Read::NotMapped {
                field: "territoire_region"
            }
        ));
        assert!(matches!(&li.perimetre, Read::Missing { champ } if champ == "Périmètre médical"));
        assert!(matches!(&li.nb_adherents, Read::Unreadable { raw, .. } if raw == "douze"));
        assert_eq!(li.nb_liberaux_specialite.value(), Some(&52));
        assert!(matches!(li.siege, Read::NotMapped { field: "siege" }));
    }

    #[test]
    fn the_filing_date_is_the_paris_calendar_day() {
        let mut d = li_dossier();
        // 23:30 UTC on 31 January is already 1 February in Paris.
        d.date_depot = chrono::DateTime::parse_from_rfc3339("2026-01-31T23:30:00+00:00").unwrap();
        assert_eq!(paris_date(&d), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
    }

    /// Every field is read with the reader of its shape (the debug assertion in `read`).
    #[test]
    fn every_field_is_read_by_its_shape() {
        let _ = extract_lettre(&li_dossier(), &li_mapping());
        let _ = extract_projet(&ps_dossier(), &ps_mapping());
    }
}
