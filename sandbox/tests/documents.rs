//! essbot's own query documents (the workspace's `graphql/` folder) validate and run against
//! the sandbox, every concrete `Champ` and `ChampDescriptor` type of DS's schema is served, and
//! the newer champ types follow DS's fragment-dependent typing (ds-api.md §9).

mod common;

use std::collections::BTreeMap;

use common::{gid, gql, start};
use ds_sandbox::Dataset;
use serde_json::{Value, json};

const DOCUMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../graphql");

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/ref/ds-schema.graphql"
);

/// Every `*.graphql` operation document of the workspace (not `schema.graphql`), by file name.
fn documents() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(DOCUMENTS).expect("the workspace's graphql/ folder exists");
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".graphql") || name == "schema.graphql" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("document is readable");
        out.insert(name.to_owned(), text);
    }
    out
}

/// The variables an operation declares, from its text.
fn declared_variables(text: &str) -> Vec<String> {
    let doc = graphql_parser::query::parse_query::<String>(text).expect("document parses");
    let mut out = Vec::new();
    for def in &doc.definitions {
        if let graphql_parser::query::Definition::Operation(op) = def {
            let vars = match op {
                graphql_parser::query::OperationDefinition::Query(q) => &q.variable_definitions,
                graphql_parser::query::OperationDefinition::Mutation(m) => &m.variable_definitions,
                graphql_parser::query::OperationDefinition::Subscription(s) => {
                    &s.variable_definitions
                }
                graphql_parser::query::OperationDefinition::SelectionSet(_) => continue,
            };
            out.extend(vars.iter().map(|v| v.name.clone()));
        }
    }
    out
}

/// A plausible `input` for a mutation document, on the demo data set.
fn mutation_input(text: &str) -> Option<Value> {
    let dossier = gid("Dossier", 12);
    let instructeur = gid("Instructeur", 1);
    if text.contains("dossierModifierAnnotations") {
        Some(json!({
            "dossierId": dossier,
            "instructeurId": instructeur,
            "annotations": [
                {"id": gid("Champ", 901), "value": {"textarea": "Pré-contrôle : conforme"}},
                {"id": gid("Champ", 902), "value": {"checkbox": true}}
            ]
        }))
    } else if text.contains("dossierEnvoyerMessage") {
        Some(json!({"dossierId": dossier, "instructeurId": instructeur, "body": "Bonjour"}))
    } else if text.contains("dossierAjouterLabel") || text.contains("dossierSupprimerLabel") {
        Some(json!({"dossierId": dossier, "labelId": gid("Label", 1)}))
    } else {
        None
    }
}

/// Plausible values for the variables a document declares, on the demo data set.
fn variables_for(name: &str, text: &str) -> Value {
    let mut vars = serde_json::Map::new();
    for var in declared_variables(text) {
        let value = match var.as_str() {
            "demarche" => json!(1001),
            "number" => json!(8),
            "first" => json!(100),
            "pending" => json!(false),
            "after" | "before" | "updatedSince" | "createdSince" | "deletedSince" => Value::Null,
            "input" => mutation_input(text).unwrap_or_else(|| {
                panic!("{name}: no plausible input for this mutation; add one to the test")
            }),
            other => panic!("{name}: no plausible value for ${other}; add one to the test"),
        };
        vars.insert(var, value);
    }
    Value::Object(vars)
}

fn error_messages(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_workspace_document_validates_and_runs() {
    let docs = documents();
    assert!(
        docs.len() >= 5,
        "expected essbot's documents in {DOCUMENTS}, found {docs:?}"
    );
    let sb = start(Dataset::demo()).await;
    for (name, text) in &docs {
        let vars = variables_for(name, text);
        let v = gql(&sb, text, vars).await;
        let errors = error_messages(&v);
        assert!(
            errors.is_empty(),
            "{name} was answered with errors: {errors:#?}"
        );
        assert!(v["data"].is_object(), "{name}: no data in the answer: {v}");
        // A mutation's own validation errors come as data: the inputs above are valid.
        if let Some(data) = v["data"].as_object() {
            for (field, payload) in data {
                if let Some(errs) = payload.get("errors") {
                    assert!(errs.is_null(), "{name}: {field} reported errors: {errs}");
                }
            }
        }
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn the_sync_document_gets_the_newer_champ_types() {
    let docs = documents();
    let Some(text) = docs.get("get_dossier.graphql") else {
        println!("SKIPPED: graphql/get_dossier.graphql is absent");
        return;
    };
    let sb = start(Dataset::demo()).await;
    // Dossier 8 asks for a derogation: a yes_no champ, served as YesNoChamp because the
    // document names it; its drop-down lists come back as DropDownListChamp.
    let v = gql(&sb, text, json!({"number": 8})).await;
    assert!(error_messages(&v).is_empty(), "{v}");
    let champs = v["data"]["dossier"]["champs"].as_array().expect("champs");
    let typename = |id: u64| {
        champs
            .iter()
            .find(|c| c["id"] == gid("Champ", id))
            .map(|c| c["__typename"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(typename(127).as_deref(), Some("YesNoChamp"));
    assert_eq!(typename(112).as_deref(), Some("RegionChamp"));
    sb.shutdown().await;
}

/// A démarche with one champ of each kind the demo forms do not use.
fn every_kind_dataset() -> Dataset {
    let champs = json!([
        {"id": 1, "label": "Adresse", "type": "address"},
        {"id": 2, "label": "Commune", "type": "communes"},
        {"id": 3, "label": "Pays", "type": "pays", "options": ["FR - France", "BE - Belgique"]},
        {"id": 4, "label": "Section", "type": "header_section", "level": 2},
        {"id": 5, "label": "Explication", "type": "explication"},
        {"id": 6, "label": "Civilité", "type": "civilite"},
        {"id": 7, "label": "Spécialité / sous-spécialité", "type": "linked_drop_down_list",
         "options": ["--Cardiologie--", "Rythmologie"]},
        {"id": 8, "label": "EPCI", "type": "epci"},
        {"id": 9, "label": "Fondation", "type": "rnf"},
        {"id": 10, "label": "Engagement juridique", "type": "engagement_juridique"},
        {"id": 11, "label": "Carte", "type": "carte"},
        {"id": 12, "label": "Titre d'identité", "type": "titre_identite"},
        {"id": 13, "label": "Téléphone", "type": "phone"},
        {"id": 14, "label": "Nombre", "type": "number"},
        {"id": 15, "label": "Date et heure", "type": "datetime"}
    ]);
    let address = json!({"label": "1 rue de Siam 29200 Brest", "postalCode": "29200",
        "cityName": "Brest", "cityCode": "29019", "departmentCode": "29"});
    let values = json!([
        {"id": 1, "value": address},
        {"id": 2, "value": {"code": "29019", "name": "Brest", "postalCode": "29200"}},
        {"id": 3, "value": {"code": "BE", "name": "Belgique"}},
        {"id": 6, "value": "Mme"},
        {"id": 7, "value": ["Cardiologie", "Rythmologie"]},
        {"id": 8, "value": {"code": "242900314", "name": "Brest Métropole", "departement": "29"}},
        {"id": 9, "value": {"id": "075-FDD-00003-01", "title": "Fondation X", "address": address}},
        {"id": 10, "value": {"montantEngage": "1000", "montantPaye": "250"}},
        {"id": 11, "value": [{"description": "Zone", "geometry": {"type": "Point", "coordinates": [-4.48, 48.39]}},
                              {"source": "cadastre", "geometry": {"type": "Point", "coordinates": [-4.5, 48.4]},
                               "commune": "29019", "prefixe": "000", "section": "AB", "numero": "12", "surface": "320"}]},
        {"id": 12, "value": true},
        {"id": 13, "value": "0601020304"},
        {"id": 14, "value": 42},
        {"id": 15, "value": "2026-03-01T10:30:00+01:00"}
    ]);
    let data = json!({
        "instructeurs": [{"id": 1, "email": "instructeur@ars.example"}],
        "tokens": [{"token": ds_sandbox::DEMO_TOKEN, "label": "demo", "write": true}],
        "demarches": [{
            "number": 3001, "title": "Toutes les sortes de champs", "description": "Test",
            "state": "publiee", "dateCreation": "2026-01-05T09:00:00+01:00", "revision": 30011,
            "champs": champs, "annotations": [], "labels": [],
            "groupes": [{"number": 1, "label": "défaut", "instructeurs": [1]}]
        }],
        "dossiers": [{
            "number": 1, "demarche": 3001, "groupe": 1, "state": "en_construction",
            "dateDepot": "2026-02-01T10:00:00+01:00",
            "demandeur": {"type": "PersonnePhysique", "civilite": "Mme", "nom": "X", "prenom": "Y"},
            "usager": "usager@example.fr",
            "champs": values
        }]
    });
    Dataset::from_json_str(&data.to_string()).expect("the data set is valid")
}

const WITH_FRAGMENTS: &str = r#"query ($n: Int!) {
  dossier(number: $n) {
    champs {
      __typename id stringValue
      ... on AddressChamp { address { label cityCode departmentCode } commune { code } departement { code } }
      ... on CommuneChamp { commune { code name postalCode } departement { code name } }
      ... on PaysChamp { pays { code name } }
      ... on HeaderSectionChamp { level }
      ... on ExplicationChamp { label }
      ... on CiviliteChamp { civilite: value }
      ... on LinkedDropDownListChamp { primaryValue secondaryValue }
      ... on EpciChamp { epci { code name } departement { code } }
      ... on RNFChamp { rnf { id title address { cityName } } commune { code } departement { code } }
      ... on EngagementJuridiqueChamp { engagementJuridique { montantEngage montantPaye } }
      ... on CarteChamp { geoAreas { __typename id source description geometry { type coordinates }
                          ... on ParcelleCadastrale { section numero surface } } }
      ... on TitreIdentiteChamp { filled grantType }
      ... on TextChamp { value }
      ... on IntegerNumberChamp { integer: value }
      ... on DatetimeChamp { datetime }
    }
  }
  demarche(number: 3001) {
    activeRevision {
      champDescriptors {
        __typename type
        ... on HeaderSectionChampDescriptor { level }
        ... on PaysChampDescriptor { options { code name } }
        ... on LinkedDropDownListChampDescriptor { options }
        ... on ExplicationChampDescriptor { collapsibleExplanationEnabled collapsibleExplanationText }
      }
    }
  }
}"#;

const WITHOUT_FRAGMENTS: &str = r#"query ($n: Int!) {
  dossier(number: $n) {
    champs { __typename id stringValue ... on TextChamp { value } ... on DateChamp { date } }
  }
}"#;

fn by_id(v: &Value) -> BTreeMap<u64, Value> {
    v["data"]["dossier"]["champs"]
        .as_array()
        .expect("champs")
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c.clone()))
        .collect()
}

#[tokio::test]
async fn newer_champ_types_follow_fragments() {
    let sb = start(every_kind_dataset()).await;

    let v = gql(&sb, WITH_FRAGMENTS, json!({"n": 1})).await;
    assert!(error_messages(&v).is_empty(), "{v}");
    let c = by_id(&v);
    let t = |id: u64| c[&id]["__typename"].as_str().unwrap_or_default().to_owned();
    assert_eq!(t(1), "AddressChamp");
    assert_eq!(c[&1]["address"]["cityCode"], "29019");
    assert_eq!(c[&1]["departement"]["code"], "29");
    assert_eq!(t(2), "CommuneChamp");
    assert_eq!(c[&2]["departement"]["name"], "Finistère");
    assert_eq!(t(3), "PaysChamp");
    assert_eq!(c[&3]["pays"]["code"], "BE");
    assert_eq!(t(4), "HeaderSectionChamp");
    assert_eq!(c[&4]["level"], 2);
    assert_eq!(t(5), "ExplicationChamp");
    assert_eq!(t(6), "CiviliteChamp");
    assert_eq!(c[&6]["civilite"], "Mme");
    assert_eq!(t(7), "LinkedDropDownListChamp");
    assert_eq!(c[&7]["primaryValue"], "Cardiologie");
    assert_eq!(c[&7]["secondaryValue"], "Rythmologie");
    assert_eq!(t(8), "EpciChamp");
    assert_eq!(c[&8]["epci"]["name"], "Brest Métropole");
    assert_eq!(t(9), "RNFChamp");
    assert_eq!(c[&9]["rnf"]["id"], "075-FDD-00003-01");
    assert_eq!(c[&9]["commune"]["code"], "29019");
    assert_eq!(t(10), "EngagementJuridiqueChamp");
    assert_eq!(c[&10]["engagementJuridique"]["montantPaye"], "250");
    assert_eq!(t(11), "CarteChamp");
    let areas = c[&11]["geoAreas"].as_array().expect("geoAreas");
    assert_eq!(areas[0]["__typename"], "SelectionUtilisateur");
    assert_eq!(areas[0]["geometry"]["coordinates"], json!([-4.48, 48.39]));
    assert_eq!(areas[1]["__typename"], "ParcelleCadastrale");
    assert_eq!(areas[1]["section"], "AB");
    assert_eq!(t(12), "TitreIdentiteChamp");
    assert_eq!(c[&12]["filled"], true);
    assert_eq!(c[&12]["grantType"], "piece_justificative");
    assert_eq!(t(13), "TextChamp");
    assert_eq!(c[&13]["value"], "0601020304");
    assert_eq!(t(14), "IntegerNumberChamp");
    assert_eq!(c[&14]["integer"], "42");
    assert_eq!(t(15), "DatetimeChamp");

    let descs = v["data"]["demarche"]["activeRevision"]["champDescriptors"]
        .as_array()
        .expect("descriptors");
    let names: Vec<&str> = descs
        .iter()
        .map(|d| d["__typename"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "AddressChampDescriptor",
            "CommuneChampDescriptor",
            "PaysChampDescriptor",
            "HeaderSectionChampDescriptor",
            "ExplicationChampDescriptor",
            "CiviliteChampDescriptor",
            "LinkedDropDownListChampDescriptor",
            "EpciChampDescriptor",
            "RNFChampDescriptor",
            "EngagementJuridiqueChampDescriptor",
            "CarteChampDescriptor",
            "TitreIdentiteChampDescriptor",
            "PhoneChampDescriptor",
            "NumberChampDescriptor",
            "DatetimeChampDescriptor",
        ]
    );
    assert_eq!(descs[3]["level"], 2);
    assert_eq!(
        descs[2]["options"][1],
        json!({"code": "BE", "name": "Belgique"})
    );
    assert_eq!(descs[6]["type"], "linked_drop_down_list");

    // Without fragments on the newer types, DS serves the legacy ones.
    let v = gql(&sb, WITHOUT_FRAGMENTS, json!({"n": 1})).await;
    assert!(error_messages(&v).is_empty(), "{v}");
    let c = by_id(&v);
    for id in [1, 2, 3, 4, 5] {
        assert_eq!(c[&id]["__typename"], "TextChamp", "champ {id}: {}", c[&id]);
    }
    assert_eq!(c[&1]["value"], "1 rue de Siam 29200 Brest");
    assert_eq!(c[&3]["value"], "Belgique");
    assert_eq!(c[&15]["__typename"], "DateChamp");
    assert_eq!(c[&15]["date"], "2026-03-01");
    for (id, ty) in [
        (6, "CiviliteChamp"),
        (7, "LinkedDropDownListChamp"),
        (8, "EpciChamp"),
        (11, "CarteChamp"),
    ] {
        assert_eq!(c[&id]["__typename"], ty);
    }
    sb.shutdown().await;
}

/// Every object type of DS's schema that implements `Champ` or `ChampDescriptor` is served,
/// with every field DS gives it (except `Champ.columns`, which the sandbox does not serve).
#[test]
fn every_ds_champ_and_descriptor_type_is_served() {
    use graphql_parser::schema::{Definition, TypeDefinition, parse_schema};
    let Ok(reference_text) = std::fs::read_to_string(REFERENCE) else {
        println!("SKIPPED: reference schema {REFERENCE} is absent");
        return;
    };
    let reference = parse_schema::<String>(&reference_text).expect("reference schema parses");
    let sdl = ds_sandbox::schema_sdl();
    let ours = parse_schema::<String>(&sdl).expect("served SDL parses");
    // type name -> (interfaces, field names)
    let objects = |doc: &graphql_parser::schema::Document<'_, String>| {
        doc.definitions
            .iter()
            .filter_map(|d| match d {
                Definition::TypeDefinition(TypeDefinition::Object(o)) => Some((
                    o.name.clone(),
                    (
                        o.implements_interfaces.clone(),
                        o.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
                    ),
                )),
                _ => None,
            })
            .collect::<BTreeMap<_, _>>()
    };
    let theirs = objects(&reference);
    let ours = objects(&ours);
    let mut missing = Vec::new();
    let mut count = 0;
    for (name, (interfaces, fields)) in &theirs {
        if !interfaces
            .iter()
            .any(|i| i == "Champ" || i == "ChampDescriptor")
        {
            continue;
        }
        count += 1;
        let Some((my_interfaces, my_fields)) = ours.get(name) else {
            missing.push(format!("type {name}"));
            continue;
        };
        for i in interfaces {
            if !my_interfaces.contains(i) {
                missing.push(format!("{name} implements {i}"));
            }
        }
        for f in fields {
            if f != "columns" && !my_fields.contains(f) {
                missing.push(format!("{name}.{f}"));
            }
        }
    }
    assert!(count > 60, "only {count} champ types found in DS's schema");
    assert!(missing.is_empty(), "not served:\n{}", missing.join("\n"));
}
