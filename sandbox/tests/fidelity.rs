//! Every type, field, argument and enum value the sandbox serves exists, with the same type,
//! in DS's real schema (`shared/ref/ds-schema.graphql`, outside the repository).

use std::collections::HashMap;

use graphql_parser::schema::{Definition, Document, TypeDefinition, parse_schema};

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/ref/ds-schema.graphql"
);

/// A comparable shape of one named type.
#[derive(Debug, Default)]
struct Shape {
    kind: &'static str,
    /// field or input field or enum value -> type (and arguments: name -> type).
    members: HashMap<String, (String, HashMap<String, String>)>,
    implements: Vec<String>,
}

fn shapes(doc: &Document<'_, String>) -> HashMap<String, Shape> {
    let mut out = HashMap::new();
    for def in &doc.definitions {
        let Definition::TypeDefinition(t) = def else {
            continue;
        };
        let (name, shape) = match t {
            TypeDefinition::Scalar(s) => (
                s.name.clone(),
                Shape {
                    kind: "scalar",
                    ..Shape::default()
                },
            ),
            TypeDefinition::Object(o) => (
                o.name.clone(),
                Shape {
                    kind: "type",
                    members: fields(&o.fields),
                    implements: o.implements_interfaces.clone(),
                },
            ),
            TypeDefinition::Interface(i) => (
                i.name.clone(),
                Shape {
                    kind: "interface",
                    members: fields(&i.fields),
                    implements: i.implements_interfaces.clone(),
                },
            ),
            TypeDefinition::Enum(e) => (
                e.name.clone(),
                Shape {
                    kind: "enum",
                    members: e
                        .values
                        .iter()
                        .map(|v| (v.name.clone(), (String::new(), HashMap::new())))
                        .collect(),
                    implements: Vec::new(),
                },
            ),
            TypeDefinition::InputObject(i) => (
                i.name.clone(),
                Shape {
                    kind: "input",
                    members: i
                        .fields
                        .iter()
                        .map(|f| (f.name.clone(), (f.value_type.to_string(), HashMap::new())))
                        .collect(),
                    implements: Vec::new(),
                },
            ),
            TypeDefinition::Union(u) => (
                u.name.clone(),
                Shape {
                    kind: "union",
                    ..Shape::default()
                },
            ),
        };
        out.insert(name, shape);
    }
    out
}

fn fields(
    list: &[graphql_parser::schema::Field<'_, String>],
) -> HashMap<String, (String, HashMap<String, String>)> {
    list.iter()
        .map(|f| {
            let args = f
                .arguments
                .iter()
                .map(|a| (a.name.clone(), a.value_type.to_string()))
                .collect();
            (f.name.clone(), (f.field_type.to_string(), args))
        })
        .collect()
}

#[test]
fn served_schema_is_a_subset_of_ds_schema() {
    let Ok(reference_text) = std::fs::read_to_string(REFERENCE) else {
        println!("SKIPPED: reference schema {REFERENCE} is absent; fidelity not checked");
        return;
    };
    let reference = parse_schema::<String>(&reference_text).expect("reference schema parses");
    let sdl = ds_sandbox::schema_sdl();
    let ours = parse_schema::<String>(&sdl).expect("served SDL parses");
    let reference = shapes(&reference);
    let ours = shapes(&ours);
    let mut problems = Vec::new();
    for (name, shape) in &ours {
        let Some(theirs) = reference.get(name) else {
            problems.push(format!("{} {name} does not exist in DS", shape.kind));
            continue;
        };
        if theirs.kind != shape.kind {
            problems.push(format!(
                "{name}: {} here, {} in DS",
                shape.kind, theirs.kind
            ));
            continue;
        }
        for i in &shape.implements {
            if !theirs.implements.contains(i) {
                problems.push(format!("{name} implements {i} here, not in DS"));
            }
        }
        for (member, (ty, args)) in &shape.members {
            let Some((their_ty, their_args)) = theirs.members.get(member) else {
                problems.push(format!("{name}.{member} does not exist in DS"));
                continue;
            };
            if ty != their_ty {
                problems.push(format!("{name}.{member}: {ty} here, {their_ty} in DS"));
            }
            for (arg, arg_ty) in args {
                match their_args.get(arg) {
                    None => problems.push(format!("{name}.{member}({arg}) does not exist in DS")),
                    Some(t) if t != arg_ty => {
                        problems.push(format!("{name}.{member}({arg}): {arg_ty} here, {t} in DS"))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The essentials are served at all.
    for t in [
        "Query",
        "Mutation",
        "Demarche",
        "Dossier",
        "Champ",
        "ChampDescriptor",
        "YesNoChamp",
        "RepetitionChampDescriptor",
        "AnnotationValueInput",
        "DeletedDossierConnection",
        "ISO8601DateTime",
        "BigInt",
        "URL",
    ] {
        assert!(ours.contains_key(t), "{t} is not served");
    }
}
