//! The GraphQL documents essbot sends, checked with apollo-compiler: against our own schema
//! subset always, and against the real DS schema (`../shared/ref/ds-schema.graphql`) when that
//! file is present. A field DS does not have, a wrong argument type, or a schema subset that
//! drifted from upstream fails here instead of in production.

use std::path::{Path, PathBuf};

use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};

/// A field's name, type and arguments (name, type), as written in a schema.
type FieldSig = (String, String, Vec<(String, String)>);

/// DS rejects deeper queries (`max_depth 15`).
const DS_MAX_DEPTH: usize = 15;

const UPSTREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/ref/ds-schema.graphql"
);

fn graphql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql")
}

fn our_schema() -> Valid<Schema> {
    let path = graphql_dir().join("schema.graphql");
    let text = std::fs::read_to_string(&path).expect("graphql/schema.graphql");
    Schema::parse_and_validate(text, &path).unwrap_or_else(|e| panic!("{}", e.errors))
}

/// The upstream schema, or `None` (said plainly) when the reference file is not there.
fn upstream_schema(test: &str) -> Option<Valid<Schema>> {
    let Ok(text) = std::fs::read_to_string(UPSTREAM) else {
        eprintln!(
            "SKIPPED {test}: the DS reference schema {UPSTREAM} is absent; \
             only our own schema subset was checked"
        );
        return None;
    };
    Some(Schema::parse_and_validate(text, UPSTREAM).unwrap_or_else(|e| panic!("{}", e.errors)))
}

/// Every operation document of `graphql/` (all `*.graphql` but the schema), with its text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut docs: Vec<_> = std::fs::read_dir(graphql_dir())
        .expect("graphql/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "graphql")
                && p.file_name().is_some_and(|n| n != "schema.graphql")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable document");
            (p, text)
        })
        .collect();
    docs.sort();
    docs
}

fn validate(schema: &Valid<Schema>, path: &Path, text: &str) -> Result<(), String> {
    ExecutableDocument::parse_and_validate(schema, text, path)
        .map(|_| ())
        .map_err(|e| e.errors.to_string())
}

fn depth(doc: &ExecutableDocument, set: &SelectionSet) -> usize {
    set.selections
        .iter()
        .map(|s| match s {
            Selection::Field(f) => 1 + depth(doc, &f.selection_set),
            Selection::InlineFragment(i) => depth(doc, &i.selection_set),
            Selection::FragmentSpread(s) => doc
                .fragments
                .get(&s.fragment_name)
                .map_or(0, |f| depth(doc, &f.selection_set)),
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn every_document_is_valid_against_our_schema_subset_with_one_operation_each() {
    let schema = our_schema();
    let docs = documents();
    assert!(
        docs.len() >= 8,
        "expected the 8 operations, found {}",
        docs.len()
    );
    for (path, text) in &docs {
        validate(&schema, path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc = ExecutableDocument::parse_and_validate(&schema, text.as_str(), path).unwrap();
        let ops: Vec<_> = doc.operations.iter().collect();
        assert_eq!(
            ops.len(),
            1,
            "{}: one operation per document",
            path.display()
        );
        let d = depth(&doc, &ops[0].selection_set);
        assert!(
            d <= DS_MAX_DEPTH,
            "{}: depth {d} is over DS's limit of {DS_MAX_DEPTH}",
            path.display()
        );
    }
}

#[test]
fn every_document_is_valid_against_the_real_ds_schema() {
    let Some(upstream) = upstream_schema("every_document_is_valid_against_the_real_ds_schema")
    else {
        return;
    };
    let mut problems = Vec::new();
    for (path, text) in documents() {
        if let Err(e) = validate(&upstream, &path, &text) {
            problems.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn our_schema_subset_matches_upstream_types_and_fields() {
    let Some(upstream) = upstream_schema("our_schema_subset_matches_upstream_types_and_fields")
    else {
        return;
    };
    let ours = our_schema();
    let mut problems = Vec::new();
    for (name, ty) in &ours.types {
        if ty.is_built_in() {
            continue;
        }
        let Some(up) = upstream.types.get(name) else {
            problems.push(format!("type {name} does not exist upstream"));
            continue;
        };
        let fields = |t: &ExtendedType| -> Option<Vec<FieldSig>> {
            match t {
                ExtendedType::Object(o) => Some(
                    o.fields
                        .iter()
                        .map(|(n, f)| {
                            let args = f
                                .arguments
                                .iter()
                                .map(|a| (a.name.to_string(), a.ty.to_string()));
                            (n.to_string(), f.ty.to_string(), args.collect())
                        })
                        .collect(),
                ),
                ExtendedType::Interface(o) => Some(
                    o.fields
                        .iter()
                        .map(|(n, f)| {
                            let args = f
                                .arguments
                                .iter()
                                .map(|a| (a.name.to_string(), a.ty.to_string()));
                            (n.to_string(), f.ty.to_string(), args.collect())
                        })
                        .collect(),
                ),
                ExtendedType::InputObject(o) => Some(
                    o.fields
                        .iter()
                        .map(|(n, f)| (n.to_string(), f.ty.to_string(), vec![]))
                        .collect(),
                ),
                _ => None,
            }
        };
        if std::mem::discriminant(ty) != std::mem::discriminant(up) {
            problems.push(format!("{name} is not the same kind of type upstream"));
            continue;
        }
        let (Some(mine), Some(theirs)) = (fields(ty), fields(up)) else {
            if let (ExtendedType::Enum(a), ExtendedType::Enum(b)) = (ty, up) {
                for v in a.values.keys() {
                    if !b.values.contains_key(v) {
                        problems.push(format!("enum value {name}.{v} does not exist upstream"));
                    }
                }
            }
            continue;
        };
        for (field, fty, args) in mine {
            match theirs.iter().find(|(n, _, _)| *n == field) {
                None => problems.push(format!("{name}.{field} does not exist upstream")),
                Some((_, uty, uargs)) => {
                    if *uty != fty {
                        problems.push(format!("{name}.{field} is {fty} here, {uty} upstream"));
                    }
                    for (arg, aty) in args {
                        match uargs.iter().find(|(n, _)| *n == arg) {
                            None => problems
                                .push(format!("{name}.{field}({arg}:) does not exist upstream")),
                            Some((_, uaty)) if *uaty != aty => problems.push(format!(
                                "{name}.{field}({arg}:) is {aty} here, {uaty} upstream"
                            )),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_validator_catches_unknown_fields_and_wrong_argument_types() {
    // Against upstream when present, else against our subset: the point is that the check
    // above would have failed on these.
    let schema = upstream_schema("the_validator_catches_unknown_fields_and_wrong_argument_types")
        .unwrap_or_else(our_schema);
    let unknown_field = "query Q($n: Int!) { dossier(number: $n) { id numeroDeSerie } }";
    let err = validate(&schema, Path::new("unknown_field.graphql"), unknown_field).unwrap_err();
    assert!(err.contains("numeroDeSerie"), "{err}");

    let wrong_arg_type = "query Q($n: String!) { dossier(number: $n) { id } }";
    let err = validate(&schema, Path::new("wrong_arg.graphql"), wrong_arg_type).unwrap_err();
    assert!(err.contains("String"), "{err}");

    let wrong_literal = "query Q { demarche(number: \"12\") { id } }";
    assert!(validate(&schema, Path::new("wrong_literal.graphql"), wrong_literal).is_err());

    let fine = "query Q($n: Int!) { dossier(number: $n) { id number } }";
    validate(&schema, Path::new("fine.graphql"), fine).unwrap();
}
