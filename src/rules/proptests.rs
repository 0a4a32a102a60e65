//! Invariants over arbitrary dossiers: however malformed, a dossier never makes extraction or
//! the rules panic, never comes out compliant with a required input missing, and always gives
//! the same report text.

use proptest::prelude::*;

use super::testutil::*;
use super::*;
use crate::ds::model::{
    ChampDescriptor, ChampValue, CodeName, DemarcheDescriptors, Etablissement, File, LinkedDossier,
    Rna, Row,
};

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("douze".to_owned()),
        Just("  ".to_owned()),
        Just("75 - Paris".to_owned()),
        Just("2A".to_owned()),
        Just("Médecine générale".to_owned()),
        Just("Cardiologie".to_owned()),
        Just("-4".to_owned()),
        Just("99999999999999999999".to_owned()),
        "[0-9]{1,6}",
        "[a-zA-Zéèà' -]{0,30}",
        any::<String>(),
    ]
}

fn code_name() -> impl Strategy<Value = CodeName> {
    (any_text(), any_text()).prop_map(|(code, name)| CodeName { code, name })
}

fn leaf_value() -> impl Strategy<Value = ChampValue> {
    prop_oneof![
        proptest::option::of(any_text()).prop_map(ChampValue::Text),
        any::<bool>().prop_map(ChampValue::Checkbox),
        proptest::option::of(any::<bool>()).prop_map(ChampValue::YesNo),
        proptest::option::of(any_text()).prop_map(ChampValue::Integer),
        proptest::option::of(any::<f64>()).prop_map(ChampValue::Decimal),
        proptest::option::of(any_text()).prop_map(ChampValue::DropDown),
        proptest::collection::vec(any_text(), 0..4).prop_map(ChampValue::MultipleDropDown),
        (
            proptest::option::of(any_text()),
            proptest::option::of(any_text())
        )
            .prop_map(|(primary, secondary)| ChampValue::LinkedDropDown { primary, secondary }),
        proptest::option::of(code_name()).prop_map(ChampValue::Departement),
        proptest::option::of(code_name()).prop_map(ChampValue::Region),
        (
            proptest::option::of(code_name()),
            proptest::option::of(code_name())
        )
            .prop_map(|(commune, departement)| ChampValue::Commune {
                commune,
                departement
            }),
        proptest::option::of((
            any_text(),
            proptest::option::of(any_text()),
            proptest::option::of(any_text())
        ))
        .prop_map(
            |r| ChampValue::Rna(r.map(|(id, title, departement_code)| Rna {
                id,
                title,
                departement_code
            }))
        ),
        proptest::option::of((
            any_text(),
            proptest::option::of(any_text()),
            proptest::option::of(any_text())
        ))
        .prop_map(|e| ChampValue::Siret(e.map(
            |(siret, forme_juridique_code, departement_code)| Etablissement {
                siret,
                forme_juridique: None,
                forme_juridique_code,
                raison_sociale: None,
                association_rna: None,
                departement_code,
            }
        ))),
        proptest::option::of((any::<i64>(), any::<bool>())).prop_map(|l| ChampValue::DossierLink(
            l.map(|(number, acc)| LinkedDossier {
                number,
                state: acc.then_some(DossierState::Accepte),
            })
        )),
        proptest::collection::vec(any_text(), 0..3).prop_map(|names| {
            ChampValue::PieceJustificative(
                names
                    .into_iter()
                    .map(|filename| File {
                        filename,
                        content_type: "x".into(),
                        byte_size: None,
                        url: None,
                    })
                    .collect(),
            )
        }),
        (
            proptest::option::of(any_text()),
            proptest::option::of(any_text()),
            proptest::option::of(code_name())
        )
            .prop_map(|(label, city_code, departement)| ChampValue::Address {
                label,
                city_code,
                departement
            }),
        any_text().prop_map(|typename| ChampValue::Other { typename }),
        Just(ChampValue::Date(None)),
    ]
}

fn any_value() -> impl Strategy<Value = ChampValue> {
    prop_oneof![
        4 => leaf_value(),
        1 => proptest::collection::vec(
            proptest::collection::vec((any_text(), leaf_value()), 0..4),
            0..3
        )
        .prop_map(|rows| ChampValue::Repetition(
            rows.into_iter()
                .enumerate()
                .map(|(i, cs)| Row {
                    id: format!("r{i}"),
                    champs: cs.into_iter().map(|(label, v)| champ(&label, v)).collect(),
                })
                .collect()
        )),
    ]
}

/// What to do to one champ of the compliant dossier.
#[derive(Debug, Clone)]
enum Change {
    Keep,
    Remove,
    Replace(ChampValue),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Remove),
        3 => any_value().prop_map(Change::Replace),
    ]
}

fn mutate(mut d: Dossier, changes: &[Change], display: &[Option<String>]) -> Dossier {
    let mut out = Vec::new();
    for (i, mut c) in d.champs.into_iter().enumerate() {
        match changes.get(i).unwrap_or(&Change::Keep) {
            Change::Keep => out.push(c),
            Change::Remove => {}
            Change::Replace(v) => {
                c.value = v.clone();
                c.string_value = display.get(i).cloned().flatten();
                out.push(c);
            }
        }
    }
    d.champs = out;
    d
}

fn ok<T>(r: &Read<T>) -> bool {
    r.is_ok()
}

/// The démarche with every label (champs, columns, annotations) renamed by `rename`, and the
/// mapping renamed alike: every field by its new label, every repetition's columns named.
fn renamed(
    kind: DemarcheKind,
    desc: &DemarcheDescriptors,
    spec: &MappingSpec,
    rename: &dyn Fn(&str) -> String,
) -> (DemarcheDescriptors, MappingSpec) {
    let resolved = resolve(desc.number, kind, spec, desc).unwrap();
    fn walk(ds: &mut [ChampDescriptor], rename: &dyn Fn(&str) -> String) {
        for d in ds {
            d.label = rename(&d.label);
            walk(&mut d.children, rename);
        }
    }
    let mut new_desc = desc.clone();
    walk(&mut new_desc.champs, rename);
    walk(&mut new_desc.annotations, rename);
    let label = |l: &str| ChampRef::Label(rename(l));
    let new_spec = MappingSpec {
        fields: resolved
            .fields
            .iter()
            .map(|(k, c)| {
                let columns = c
                    .columns
                    .iter()
                    .map(|(key, cols)| {
                        (
                            (*key).to_owned(),
                            cols.iter().map(|x| label(&x.label)).collect(),
                        )
                    })
                    .collect();
                (
                    k.clone(),
                    FieldRef {
                        champ: label(&c.label),
                        columns,
                    },
                )
            })
            .collect(),
        annotations: resolved
            .annotations
            .iter()
            .map(|(k, c)| (k.clone(), label(&c.label)))
            .collect(),
        suivi: resolved
            .suivi
            .iter()
            .map(|(k, c)| (k.clone(), label(&c.label)))
            .collect(),
    };
    (new_desc, new_spec)
}

/// What a verdict rests on: the verdict and each finding's rule and severity.
fn outcome(r: &Report) -> (Verdict, Vec<(RuleId, Severity)>) {
    (
        r.verdict,
        r.findings.iter().map(|f| (f.rule, f.severity)).collect(),
    )
}

/// A label no demo heuristic knows: letters from the seed.
fn scramble(seed: u64) -> impl Fn(&str) -> String {
    move |l: &str| {
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in l.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        let letters: String = (0..10)
            .map(|i| char::from(b'a' + ((h >> (i * 5)) % 26) as u8))
            .collect();
        format!("Q{letters}")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn a_malformed_lettre_never_panics_nor_passes_without_its_required_inputs(
        changes in proptest::collection::vec(change(), 17),
        display in proptest::collection::vec(proptest::option::of(any_text()), 17),
    ) {
        let c = Ctx::new();
        let d = mutate(li_dossier(), &changes, &display);
        let li = extract_lettre(&d, &li_mapping());
        let report = check(&d, &li_mapping(), &c.ctx());
        let required_ok = ok(&li.porteurs)
            && ok(&li.specialites)
            && (ok(&li.territoire_departements) || ok(&li.territoire_region))
            && ok(&li.nb_medecins_specialite)
            && ok(&li.nb_liberaux_specialite)
            && ok(&li.nb_adherents)
            && (ok(&li.cooperations) || ok(&li.cooperations_precisions))
            && ok(&li.gouvernance)
            && (ok(&li.actions) || ok(&li.actions_mission_socle));
        if !required_ok {
            prop_assert_ne!(report.verdict, Verdict::Conforme, "{}", report.text());
        }
        // Same input, same bytes; and the order findings come in does not matter.
        let again = check(&d, &li_mapping(), &c.ctx());
        prop_assert_eq!(report.text(), again.text());
        let mut reversed = evaluate_lettre(&li, &c.ctx());
        reversed.reverse();
        let from_reversed = Report::new(d.number, DemarcheKind::LettreIntention, reversed, &c.reference);
        prop_assert_eq!(report.fingerprint(), from_reversed.fingerprint());
        // Every line is one finding: no line break leaks from a champ's value.
        prop_assert_eq!(report.text().lines().count(), report.findings.len() + 2);
    }

    #[test]
    fn a_malformed_projet_never_panics_nor_passes_without_its_required_inputs(
        changes in proptest::collection::vec(change(), 10),
        display in proptest::collection::vec(proptest::option::of(any_text()), 10),
        accepted in any::<bool>(),
    ) {
        let mut c = Ctx::new();
        c.projets = KnownProjects::new([known_li(if accepted { DossierState::Accepte } else { DossierState::EnInstruction })]);
        let d = mutate(ps_dossier(), &changes, &display);
        let ps = extract_projet(&d, &ps_mapping());
        let report = check(&d, &ps_mapping(), &c.ctx());
        let required_ok = ok(&ps.lien_lettre_intention)
            && ok(&ps.diagnostic_territorial)
            && ok(&ps.missions_actions)
            && ok(&ps.indicateurs)
            && ok(&ps.indicateur_qualitatif)
            && ok(&ps.modalites_actualisation)
            && ok(&ps.gouvernance)
            && ok(&ps.plan_deploiement)
            && ok(&ps.nb_adherents)
            && ok(&ps.nb_liberaux_specialite);
        if !required_ok || !accepted {
            prop_assert_ne!(report.verdict, Verdict::Conforme, "{}", report.text());
        }
        prop_assert_eq!(report.text(), check(&d, &ps_mapping(), &c.ctx()).text());
        prop_assert_eq!(report.text().lines().count(), report.findings.len() + 2);
    }

    /// Renaming every label of the form, and the mapping alike, changes no verdict: the rules
    /// read champs by the mapping, never by their wording.
    #[test]
    fn renaming_every_label_changes_no_verdict(
        changes in proptest::collection::vec(change(), 17),
        display in proptest::collection::vec(proptest::option::of(any_text()), 17),
        seed in any::<u64>(),
        projet in any::<bool>(),
    ) {
        let c = Ctx::new();
        let (kind, desc, spec, dossier) = if projet {
            (DemarcheKind::ProjetSante, ps_descriptors(), ps_spec(), ps_dossier())
        } else {
            (DemarcheKind::LettreIntention, li_descriptors(), li_spec(), li_dossier())
        };
        let d = mutate(dossier, &changes, &display);
        let before = check(&d, &resolve(desc.number, kind, &spec, &desc).unwrap(), &c.ctx());
        let rename = scramble(seed);
        let (new_desc, new_spec) = renamed(kind, &desc, &spec, &rename);
        let new_mapping = resolve(desc.number, kind, &new_spec, &new_desc).unwrap();
        let mut relabelled = d.clone();
        for ch in &mut relabelled.champs {
            ch.label = rename(&ch.label);
        }
        let after = check(&relabelled, &new_mapping, &c.ctx());
        prop_assert_eq!(outcome(&before), outcome(&after), "{}\n---\n{}", before.text(), after.text());
    }

    #[test]
    fn the_ten_percent_rule_is_exact(adh in 0u32..100_000, lib in 1u32..100_000) {
        let c = Ctx::new();
        let mut d = li_dossier();
        set(&mut d, "Nombre de médecins adhérents", ChampValue::Integer(Some(adh.to_string())));
        set(&mut d, "Nombre de médecins libéraux de la spécialité sur le territoire", ChampValue::Integer(Some(lib.to_string())));
        let f = run_li(&d, &c);
        let adh01 = of(&f, RuleId::LiAdh01);
        prop_assert_eq!(adh01.len(), 1);
        let passes = u64::from(adh) * 10 >= u64::from(lib);
        prop_assert_eq!(adh01[0].severity == Severity::Info, passes);
        if !passes {
            // A failing ratio is never displayed as reaching 10 %.
            let shown = adh01[0].message.split('(').nth(1).unwrap_or_default().to_owned();
            let whole: u64 = shown.split(',').next().unwrap_or_default().replace('\u{a0}', "").parse().unwrap_or(0);
            prop_assert!(whole < 10, "{}", adh01[0].message);
        }
    }

    #[test]
    fn text_helpers_never_panic(s in any::<String>(), n in any::<u64>(), d in 1u64..u64::MAX) {
        let _ = text::normalize(&s);
        let _ = text::quote(&s);
        let _ = text::fr_int(n);
        let _ = text::fr_percent(n, d, Some(10));
        let r = ReferenceData::builtin();
        let _ = r.match_specialite(&s);
        let _ = r.resolve_departement(&s);
        let _ = r.resolve_region(&s);
    }
}
