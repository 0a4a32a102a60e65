//! The vocabularies the rules read free text with: what each one recognises, in words folded by
//! [`normalize`](super::text::normalize) and matched whole (see
//! [`contains_words`](super::text::contains_words)).
//!
//! A vocabulary finds signs; it never decides alone that a condition of the cahier is broken
//! (rules.md, principle 3). When it finds nothing in a free text, the rule says what it looked
//! for and asks a human (`a_verifier`); when it finds something, it establishes the condition
//! only if what it found is about that condition: "médecins traitants" alone is not an opinion
//! activity, and the applicant calling itself "ESS" is not a cooperation with another ESS.

use super::text::contains_words;

/// A named list of folded phrases.
#[derive(Debug, Clone, Copy)]
pub struct Vocab {
    /// What it recognises, in French, as findings say it ("les professionnels hospitaliers").
    pub nom: &'static str,
    pub words: &'static [&'static str],
}

impl Vocab {
    /// The first phrase of the vocabulary found in a folded text.
    pub fn find(&self, folded: &str) -> Option<&'static str> {
        self.words
            .iter()
            .copied()
            .find(|w| contains_words(folded, w))
    }

    /// True when a phrase of the vocabulary is in the folded text.
    pub fn in_text(&self, folded: &str) -> bool {
        self.find(folded).is_some()
    }
}

/// Mission socle, activity (a): structuring the second-recourse offer with the first and third.
pub const MISSION_A: Vocab = Vocab {
    nom: "la structuration de l'offre de second recours",
    words: &[
        "second recours",
        "2nd recours",
        "deuxieme recours",
        "2e recours",
        "2eme recours",
        "troisieme recours",
        "3e recours",
        "3eme recours",
        "1er et 3e recours",
        "gradation des soins",
        "structuration de l offre",
        "structurer l offre",
        "structuration du second",
        "organisation de l offre",
        "organiser l offre",
        "parcours de soins",
        "parcours coordonne",
        "parcours coordonnes",
        "filiere de soins",
        "filieres de soins",
        "filiere territoriale",
        "ville hopital",
        "articulation entre les recours",
    ],
};

/// Mission socle, activity (b): words that name a specialised opinion on their own.
pub const AVIS_SPECIALISE: Vocab = Vocab {
    nom: "l'avis spécialisé",
    words: &[
        "teleexpertise",
        "teleexpertises",
        "tele expertise",
        "tele expertises",
        "teleavis",
        "tele avis",
        "avis specialise",
        "avis specialises",
        "avis ponctuel",
        "avis ponctuels",
        "demande d avis",
        "demandes d avis",
        "avis rapide",
        "avis rapides",
        "avis d expert",
    ],
};

/// Activity (b), weaker words: an opinion, a consultation… that is activity (b) only when a
/// requester ([`DEMANDEURS`]) is named too.
pub const AVIS: Vocab = Vocab {
    nom: "un avis ou une consultation",
    words: &[
        "avis",
        "consultation",
        "consultations",
        "teleconsultation",
        "teleconsultations",
        "expertise",
        "expertises",
        "rendez vous",
        "creneaux",
        "creneau",
    ],
};

/// Who asks for the opinion of activity (b).
pub const DEMANDEURS: Vocab = Vocab {
    nom: "les médecins traitants",
    words: &[
        "medecins traitants",
        "medecin traitant",
        "generalistes",
        "generaliste",
        "medecine generale",
        "soignants",
        "premier recours",
        "adresseurs",
        "adresseur",
        "medecins de ville",
        "professionnels de sante",
        "professionnels du premier recours",
        "a la demande",
        "sur demande",
        "sollicitation",
        "sollicitations",
    ],
};

/// Hospital professionals and establishments (LI-HOSP-01, and LI-COOP-01's last group).
pub const HOSPITALIERS: Vocab = Vocab {
    nom: "les professionnels hospitaliers",
    words: &[
        "hopital",
        "hopitaux",
        "hospitalier",
        "hospitaliers",
        "hospitaliere",
        "hospitalieres",
        "ch",
        "chu",
        "chru",
        "chr",
        "chs",
        "ght",
        "etablissement de sante",
        "etablissements de sante",
        "etablissement sanitaire",
        "etablissements sanitaires",
        "clinique",
        "cliniques",
        "polyclinique",
        "praticien hospitalier",
        "praticiens hospitaliers",
        "centre hospitalier",
        "centres hospitaliers",
        "groupe hospitalier",
        "ap hp",
        "aphp",
        "hcl",
        "hospices civils",
    ],
};

/// First-recourse actors (LI-COOP-01).
pub const PREMIER_RECOURS: Vocab = Vocab {
    nom: "les acteurs du premier recours (CPTS, MSP, ESP)",
    words: &[
        "cpts",
        "msp",
        "esp",
        "maison de sante",
        "maisons de sante",
        "equipe de soins primaires",
        "equipes de soins primaires",
        "centre de sante",
        "centres de sante",
        "soins primaires",
        "premier recours",
        "medecins traitants",
        "medecin traitant",
        "medecins generalistes",
        "communaute professionnelle territoriale de sante",
        "communautes professionnelles territoriales de sante",
    ],
};

/// The DAC (LI-COOP-01).
pub const DAC: Vocab = Vocab {
    nom: "le DAC",
    words: &[
        "dac",
        "dispositif d appui a la coordination",
        "dispositifs d appui a la coordination",
        "dispositif d appui",
        "pta",
        "plateforme territoriale d appui",
    ],
};

/// Other ESS (LI-COOP-01): never the bare word "ESS", which names the applicant as often as
/// another team.
pub const AUTRES_ESS: Vocab = Vocab {
    nom: "les autres ESS",
    words: &[
        "autres ess",
        "autre ess",
        "ess voisine",
        "ess voisines",
        "ess limitrophe",
        "ess limitrophes",
        "inter ess",
        "entre ess",
        "reseau des ess",
        "ess d autres specialites",
        "ess des departements voisins",
        "autres equipes de soins specialises",
        "autre equipe de soins specialises",
        "equipes de soins specialises voisines",
    ],
};

/// General practice, in a governance member's quality.
pub const GENERALISTES: Vocab = Vocab {
    nom: "médecine générale",
    words: &[
        "generaliste",
        "generalistes",
        "medecine generale",
        "medecins generalistes",
        "medecin traitant",
        "medecins traitants",
    ],
};

/// Self-employed practice.
pub const LIBERAL: Vocab = Vocab {
    nom: "exercice libéral",
    words: &[
        "liberal",
        "liberale",
        "liberaux",
        "liberales",
        "en cabinet",
        "cabinet",
        "cabinets",
    ],
};

/// A specialist, in words (specialty names come from the reference table).
pub const SPECIALISTES: Vocab = Vocab {
    nom: "médecin spécialiste",
    words: &[
        "specialiste",
        "specialistes",
        "medecin specialiste",
        "medecins specialistes",
    ],
};

/// The members of the ESS themselves: self-employed specialists of the specialty by
/// definition (an adhérent signed the formulaire d'adhésion).
pub const ADHERENTS: Vocab = Vocab {
    nom: "les médecins adhérents",
    words: &[
        "adherent",
        "adherents",
        "medecins adherents",
        "membres adherents",
        "medecins membres",
    ],
};

/// Actors other than self-employed specialists: they may sit with a consultative voice only.
pub const AUTRES_ACTEURS: Vocab = Vocab {
    nom: "autres acteurs",
    words: &[
        "cpts",
        "dac",
        "msp",
        "esp",
        "etablissement",
        "etablissements",
        "hopital",
        "hopitaux",
        "ght",
        "centre hospitalier",
        "chu",
        "ch",
        "clinique",
        "hospitalier",
        "hospitaliere",
        "praticien hospitalier",
        "salarie",
        "salariee",
        "salaries",
        "urps",
        "ars",
        "cpam",
        "caisse",
        "assurance maladie",
        "usager",
        "usagers",
        "representant des usagers",
        "paramedical",
        "paramedicaux",
        "infirmier",
        "infirmiere",
        "infirmiers",
        "pharmacien",
        "pharmaciens",
        "kinesitherapeute",
        "personne morale",
        "conseil departemental",
        "ordre des medecins",
        "collectivite",
        "mairie",
    ],
};

/// Words that restrict a perimeter to part of a specialty (LI-SPEC-02).
pub const RESTRICTION: Vocab = Vocab {
    nom: "une restriction du périmètre",
    words: &[
        "exclusivement",
        "uniquement",
        "seulement",
        "limite a",
        "limitee a",
        "restreint a",
        "restreinte a",
        "dedie a",
        "dediee a",
        "centre sur",
        "centree sur",
        "consacre a",
        "consacree a",
    ],
};

/// PS-IND-02: les professionnels adresseurs.
pub const IND_ADRESSEURS: Vocab = Vocab {
    nom: "les professionnels adresseurs",
    words: &[
        "adresseur",
        "adresseurs",
        "adressant",
        "adressants",
        "professionnels adressant",
        "medecins traitants",
        "medecin traitant",
        "demandeurs",
        "medecins demandeurs",
        "requerants",
        "requerant",
        "ayant adresse",
        "ayant sollicite",
        "origine des demandes",
    ],
};
/// PS-IND-02: les patients pris en charge.
pub const IND_PATIENTS: Vocab = Vocab {
    nom: "les patients pris en charge",
    words: &[
        "patients",
        "patient",
        "file active",
        "personnes prises en charge",
        "beneficiaires",
    ],
};
/// PS-IND-02: les téléexpertises.
pub const IND_TELEEXPERTISES: Vocab = Vocab {
    nom: "les téléexpertises",
    words: &[
        "teleexpertise",
        "teleexpertises",
        "tele expertise",
        "tele expertises",
        "teleavis",
        "tele avis",
        "avis a distance",
        "avis rendus",
    ],
};
/// PS-IND-02: les consultations avancées.
pub const IND_AVANCEES: Vocab = Vocab {
    nom: "les consultations avancées",
    words: &[
        "consultation avancee",
        "consultations avancees",
        "consultation delocalisee",
        "consultations delocalisees",
        "consultation foraine",
        "consultations foraines",
        "consultations decentralisees",
        "consultations de proximite",
    ],
};
/// PS-IND-02: les membres qui les proposent.
pub const IND_MEMBRES: Vocab = Vocab {
    nom: "les membres qui les proposent",
    words: &[
        "membre",
        "membres",
        "proposant",
        "offrant",
        "assurant",
        "participant",
        "participants",
        "nombre de medecins",
        "nombre de specialistes",
        "nombre de praticiens",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::text::normalize;

    #[test]
    fn every_phrase_is_folded() {
        for v in [
            MISSION_A,
            AVIS_SPECIALISE,
            AVIS,
            DEMANDEURS,
            HOSPITALIERS,
            PREMIER_RECOURS,
            DAC,
            AUTRES_ESS,
            GENERALISTES,
            LIBERAL,
            SPECIALISTES,
            ADHERENTS,
            AUTRES_ACTEURS,
            RESTRICTION,
            IND_ADRESSEURS,
            IND_PATIENTS,
            IND_TELEEXPERTISES,
            IND_AVANCEES,
            IND_MEMBRES,
        ] {
            for w in v.words {
                assert_eq!(*w, normalize(w), "{}: {w}", v.nom);
            }
        }
    }

    #[test]
    fn words_are_found_whole() {
        let t = normalize("Convention avec le CH de Morlaix et la CPTS.");
        assert_eq!(HOSPITALIERS.find(&t), Some("ch"));
        assert!(!HOSPITALIERS.in_text(&normalize("Chambre d'agriculture")));
        assert!(!AUTRES_ESS.in_text(&normalize("L'ESS travaillera avec les CPTS")));
        assert!(AUTRES_ESS.in_text(&normalize("Coordination avec les autres ESS de la région")));
    }
}
