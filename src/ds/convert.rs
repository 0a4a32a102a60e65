//! From the generated graphql_client types to [`model`]: one dossier at a time.
//!
//! A dossier node is first decoded from its JSON into the generated `DossierFragment` (any shape
//! error is reported with its JSON path), then converted: dates are parsed, states checked, and
//! each champ turned into a [`model::ChampValue`]. Every failure names the dossier and the field,
//! with the champ's label when it is inside a champ, so that staff can find it in DS.
//!
//! The JSON node itself is kept alongside: champ types this build does not know decode as the
//! generated `Unknown` variant, and their real `__typename` is read back from the JSON so that a
//! mapping onto such a champ can be reported by name.

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

use super::error::DecodeError;
use super::model::{self, ChampValue, CodeName, DossierState};
use super::ops::get_deleted_dossiers as del;
use super::ops::get_demarche_descriptors as d;
use super::ops::get_demarche_dossiers as q;

/// Reads one dossier node (as DS sent it, or as stored in a snapshot) into the model.
///
/// # Errors
/// A [`DecodeError`] naming the dossier's number (when readable) and the field at fault.
pub fn decode_dossier(raw: &Value) -> Result<model::Dossier, DecodeError> {
    let number = raw.get("number").and_then(Value::as_i64);
    if !raw.is_object() {
        return Err(DecodeError {
            number,
            path: ".".into(),
            message: format!("un objet dossier était attendu, reçu {}", json_kind(raw)),
        });
    }
    // Tracking the path costs as much as decoding: done only to explain a failure.
    let typed = match q::DossierFragment::deserialize(raw) {
        Ok(typed) => typed,
        Err(plain) => {
            let tracked: Result<q::DossierFragment, _> = serde_path_to_error::deserialize(raw);
            return Err(match tracked {
                Err(e) => {
                    let path = e.path().to_string();
                    DecodeError {
                        number,
                        path: label_path(raw, &path),
                        message: e.into_inner().to_string(),
                    }
                }
                Ok(_) => DecodeError {
                    number,
                    path: ".".into(),
                    message: plain.to_string(),
                },
            });
        }
    };
    Conv {
        raw: Raw::Value(raw),
        number: typed.number,
    }
    .dossier(typed)
}

/// Reads one dossier node from its JSON text, as DS sent it or as stored in a snapshot: the
/// same result as [`decode_dossier`] on the parsed value, without building that value first
/// (the sync decodes every dossier of every page; a tree of 10 KB per dossier is most of the
/// cost). A node that does not decode directly is read again through [`decode_dossier`], whose
/// error names the field.
///
/// # Errors
/// A [`DecodeError`] naming the dossier's number (when readable) and the field at fault.
pub fn decode_dossier_text(raw: &str) -> Result<model::Dossier, DecodeError> {
    match serde_json::from_str::<q::DossierFragment>(raw) {
        Ok(typed) => Conv {
            raw: Raw::Text(raw, std::cell::OnceCell::new()),
            number: typed.number,
        }
        .dossier(typed),
        Err(_) => match serde_json::from_str::<Value>(raw) {
            Ok(value) => decode_dossier(&value),
            Err(e) => Err(DecodeError {
                number: None,
                path: ".".into(),
                message: format!("JSON illisible ({e})"),
            }),
        },
    }
}

/// The value of a champ of a known type the model does not read.
fn other(typename: &str) -> ChampValue {
    ChampValue::Other {
        typename: typename.to_owned(),
    }
}

/// A short French name for the kind of a JSON value, for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "un booléen",
        Value::Number(_) => "un nombre",
        Value::String(_) => "une chaîne",
        Value::Array(_) => "une liste",
        Value::Object(_) => "un objet",
    }
}

/// Adds the champ's label after `champs[3]` / `annotations[1]` in a serde path, so the message
/// tells staff which champ is at fault without knowing the order of the form.
fn label_path(raw: &Value, path: &str) -> String {
    for list in ["champs", "annotations"] {
        let prefix = format!("{list}[");
        if let Some(rest) = path.strip_prefix(&prefix)
            && let Some(end) = rest.find(']')
            && let Ok(i) = rest[..end].parse::<usize>()
            && let Some(label) = raw
                .get(list)
                .and_then(|l| l.get(i))
                .and_then(|c| c.get("label"))
                .and_then(Value::as_str)
        {
            return format!("{list}[{i}] « {label} »{}", &rest[end + 1..]);
        }
    }
    path.to_owned()
}

/// Where a value sits, as the chain of steps from the node's root: rendered as a human path
/// for messages, or as a JSON pointer into the raw node, only when one is needed (an error, an
/// unknown champ type). Building the strings for every champ of every dossier cost a sixth of
/// the decoding.
#[derive(Clone, Copy)]
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Field(&'a str),
    Index(usize),
    /// A champ's label, shown after its position; not part of the pointer.
    Label(&'a str),
}

impl<'a> Loc<'a> {
    fn root() -> Self {
        Self {
            parent: None,
            step: Step::Root,
        }
    }

    fn field(&'a self, name: &'a str) -> Self {
        self.then(Step::Field(name))
    }

    fn index(&'a self, i: usize) -> Self {
        self.then(Step::Index(i))
    }

    fn labelled(&'a self, label: &'a str) -> Self {
        self.then(Step::Label(label))
    }

    fn then(&'a self, step: Step<'a>) -> Self {
        Self {
            parent: Some(self),
            step,
        }
    }

    /// `champs[3] « Label ».date`.
    fn path(&self) -> String {
        let parent = self.parent.map(Loc::path).unwrap_or_default();
        match self.step {
            Step::Root => parent,
            Step::Field(name) if parent.is_empty() => name.to_owned(),
            Step::Field(name) => format!("{parent}.{name}"),
            Step::Index(i) => format!("{parent}[{i}]"),
            Step::Label(label) => format!("{parent} « {label} »"),
        }
    }

    /// `/champs/3/date`.
    fn pointer(&self) -> String {
        let parent = self.parent.map(Loc::pointer).unwrap_or_default();
        match self.step {
            Step::Root | Step::Label(_) => parent,
            Step::Field(name) => format!("{parent}/{name}"),
            Step::Index(i) => format!("{parent}/{i}"),
        }
    }
}

/// The node a conversion reads, for the `__typename` of champs this build does not know.
enum Raw<'a> {
    Value(&'a Value),
    /// The node's text, parsed only if such a champ turns up.
    Text(&'a str, std::cell::OnceCell<Value>),
}

impl Raw<'_> {
    fn pointer(&self, pointer: &str) -> Option<&Value> {
        match self {
            Self::Value(v) => v.pointer(pointer),
            Self::Text(text, parsed) => parsed
                .get_or_init(|| serde_json::from_str(text).unwrap_or(Value::Null))
                .pointer(pointer),
        }
    }
}

struct Conv<'a> {
    raw: Raw<'a>,
    number: i64,
}

impl Conv<'_> {
    fn err(&self, at: &Loc<'_>, message: impl Into<String>) -> DecodeError {
        DecodeError {
            number: Some(self.number),
            path: at.path(),
            message: message.into(),
        }
    }

    fn timestamp(&self, at: &Loc<'_>, s: &str) -> Result<model::Timestamp, DecodeError> {
        DateTime::parse_from_rfc3339(s)
            .map_err(|e| self.err(at, format!("date et heure illisible {s:?} ({e})")))
    }

    fn opt_timestamp(
        &self,
        at: &Loc<'_>,
        s: Option<&str>,
    ) -> Result<Option<model::Timestamp>, DecodeError> {
        s.map(|s| self.timestamp(at, s)).transpose()
    }

    fn date(&self, at: &Loc<'_>, s: &str) -> Result<NaiveDate, DecodeError> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|e| self.err(at, format!("date illisible {s:?} ({e})")))
    }

    fn typename(&self, at: &Loc<'_>) -> String {
        self.raw
            .pointer(&format!("{}/__typename", at.pointer()))
            .and_then(Value::as_str)
            .unwrap_or("inconnu")
            .to_owned()
    }

    fn dossier(&self, d: q::DossierFragment) -> Result<model::Dossier, DecodeError> {
        let root = Loc::root();
        let state = dossier_state(&d.state)
            .ok_or_else(|| self.err(&root.field("state"), format!("état inconnu {:?}", d.state)))?;
        let demandeur = match d.demandeur {
            q::DossierFragmentDemandeur::PersonnePhysique(p) => {
                model::Demandeur::PersonnePhysique {
                    nom: p.nom,
                    prenom: p.prenom,
                }
            }
            q::DossierFragmentDemandeur::PersonneMorale(p) => model::Demandeur::PersonneMorale {
                siret: p.siret,
                forme_juridique: p
                    .entreprise
                    .as_ref()
                    .and_then(|e| e.forme_juridique.clone()),
                forme_juridique_code: p.entreprise.and_then(|e| e.forme_juridique_code),
                rna: p.association.map(|a| a.rna),
                departement_code: p.address.department_code,
            },
            q::DossierFragmentDemandeur::PersonneMoraleIncomplete(p) => model::Demandeur::Other {
                siret: Some(p.siret),
            },
            q::DossierFragmentDemandeur::Unknown => model::Demandeur::Other { siret: None },
        };
        let messages_at = root.field("messages");
        let messages = d
            .messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(model::Message {
                    created_at: self
                        .timestamp(&messages_at.index(i).field("createdAt"), &m.created_at)?,
                    id: m.id,
                    body: m.body,
                    email: m.email,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(model::Dossier {
            date_depot: self.timestamp(&root.field("dateDepot"), &d.date_depot)?,
            date_derniere_modification: self.timestamp(
                &root.field("dateDerniereModification"),
                &d.date_derniere_modification,
            )?,
            date_derniere_modification_champs: self.timestamp(
                &root.field("dateDerniereModificationChamps"),
                &d.date_derniere_modification_champs,
            )?,
            date_derniere_modification_annotations: self.timestamp(
                &root.field("dateDerniereModificationAnnotations"),
                &d.date_derniere_modification_annotations,
            )?,
            date_passage_en_instruction: self.opt_timestamp(
                &root.field("datePassageEnInstruction"),
                d.date_passage_en_instruction.as_deref(),
            )?,
            date_traitement: self
                .opt_timestamp(&root.field("dateTraitement"), d.date_traitement.as_deref())?,
            champs: self.root_champs(&root.field("champs"), d.champs)?,
            annotations: self.root_champs(&root.field("annotations"), d.annotations)?,
            id: d.id,
            number: d.number,
            state,
            motivation: d.motivation,
            groupe_instructeur: Some(model::GroupeInstructeur {
                id: d.groupe_instructeur.id,
                number: d.groupe_instructeur.number,
                label: d.groupe_instructeur.label,
            }),
            demandeur,
            labels: d
                .labels
                .into_iter()
                .map(|l| model::Label {
                    id: l.id,
                    name: l.name,
                })
                .collect(),
            messages,
        })
    }

    fn root_champs(
        &self,
        at: &Loc<'_>,
        champs: Vec<q::RootChampFragment>,
    ) -> Result<Vec<model::Champ>, DecodeError> {
        champs
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let at = at.index(i);
                let rows = match c.on {
                    q::RootChampFragmentOn::RepetitionChamp(r) => Some(r.rows),
                    _ => None,
                };
                let label = c.champ_fragment.label.clone();
                let mut champ = self.champ(&at, c.champ_fragment)?;
                if let Some(rows) = rows {
                    let labelled = at.labelled(&label);
                    let rows_at = labelled.field("rows");
                    let mut out = Vec::with_capacity(rows.len());
                    for (r, row) in rows.into_iter().enumerate() {
                        let row_at = rows_at.index(r);
                        let row_at = row_at.field("champs");
                        let champs = row
                            .champs
                            .into_iter()
                            .enumerate()
                            .map(|(j, c)| self.champ(&row_at.index(j), c))
                            .collect::<Result<_, _>>()?;
                        out.push(model::Row { id: row.id, champs });
                    }
                    champ.value = ChampValue::Repetition(out);
                }
                Ok(champ)
            })
            .collect()
    }

    fn champ(&self, at: &Loc<'_>, c: q::ChampFragment) -> Result<model::Champ, DecodeError> {
        use q::ChampFragmentOn as On;
        let label = c.label;
        let here = at.labelled(&label);
        let value = match c.on {
            On::TextChamp(t) => ChampValue::Text(t.value),
            On::CheckboxChamp(t) => ChampValue::Checkbox(t.checked),
            On::YesNoChamp(t) => ChampValue::YesNo(t.answer),
            On::DateChamp(t) => ChampValue::Date(
                t.date
                    .map(|s| self.date(&here.field("date"), &s))
                    .transpose()?,
            ),
            On::DatetimeChamp(t) => ChampValue::Datetime(
                self.opt_timestamp(&here.field("datetime"), t.datetime.as_deref())?,
            ),
            On::IntegerNumberChamp(t) => ChampValue::Integer(t.integer.map(|b| b.0)),
            On::DecimalNumberChamp(t) => ChampValue::Decimal(t.decimal),
            On::DropDownListChamp(t) => ChampValue::DropDown(t.value),
            On::MultipleDropDownListChamp(t) => ChampValue::MultipleDropDown(t.values),
            On::LinkedDropDownListChamp(t) => ChampValue::LinkedDropDown {
                primary: t.primary_value,
                secondary: t.secondary_value,
            },
            On::CiviliteChamp(t) => ChampValue::Text(t.civilite.map(|c| match c {
                q::Civilite::M => "M".to_owned(),
                q::Civilite::Mme => "Mme".to_owned(),
                q::Civilite::Other(s) => s,
            })),
            On::DepartementChamp(t) => ChampValue::Departement(t.departement.map(|x| CodeName {
                code: x.code,
                name: x.name,
            })),
            On::RegionChamp(t) => ChampValue::Region(t.region.map(|x| CodeName {
                code: x.code,
                name: x.name,
            })),
            On::CommuneChamp(t) => ChampValue::Commune {
                commune: t.commune.map(|x| CodeName {
                    code: x.code,
                    name: x.name,
                }),
                departement: t.departement.map(|x| CodeName {
                    code: x.code,
                    name: x.name,
                }),
            },
            // The label as written, and where DS geocoded it (the association's seat is read
            // from the commune's INSEE code, never from the postal code).
            On::AddressChamp(t) => ChampValue::Address {
                label: t.address.map(|a| a.label),
                city_code: t.commune.map(|c| c.code),
                departement: t.departement.map(|d| CodeName {
                    code: d.code,
                    name: d.name,
                }),
            },
            On::PaysChamp(t) => ChampValue::Text(t.pays.map(|p| p.name)),
            On::RNAChamp(t) => ChampValue::Rna(t.rna.map(|r| model::Rna {
                id: r.id,
                title: r.title,
                departement_code: r.address.and_then(|a| a.department_code),
            })),
            On::SiretChamp(t) => ChampValue::Siret(t.etablissement.map(|e| {
                model::Etablissement {
                    siret: e.siret,
                    forme_juridique: e
                        .entreprise
                        .as_ref()
                        .and_then(|x| x.forme_juridique.clone()),
                    forme_juridique_code: e
                        .entreprise
                        .as_ref()
                        .and_then(|x| x.forme_juridique_code.clone()),
                    raison_sociale: e.entreprise.map(|x| x.raison_sociale),
                    association_rna: e.association.map(|a| a.rna),
                    departement_code: e.address.department_code,
                }
            })),
            On::DossierLinkChamp(t) => ChampValue::DossierLink(t.dossier.map(|x| {
                let state = dossier_state(&x.state);
                if state.is_none() {
                    tracing::warn!(
                        dossier = self.number,
                        linked = x.number,
                        "linked dossier in a state this build does not know"
                    );
                }
                model::LinkedDossier {
                    number: x.number,
                    state,
                }
            })),
            On::PieceJustificativeChamp(t) => {
                let files_at = here.field("files");
                ChampValue::PieceJustificative(
                    t.files
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| {
                            let size = f.byte_size_big_int.0.parse::<i64>().map_err(|_| {
                                self.err(
                                    &files_at.index(i).field("byteSizeBigInt"),
                                    format!("taille illisible {:?}", f.byte_size_big_int.0),
                                )
                            })?;
                            Ok(model::File {
                                filename: f.filename,
                                content_type: f.content_type,
                                byte_size: Some(size),
                                url: Some(f.url),
                            })
                        })
                        .collect::<Result<_, DecodeError>>()?,
                )
            }
            // Known types the rules do not read: the variant is the `__typename`.
            On::HeaderSectionChamp(_) => other("HeaderSectionChamp"),
            On::ExplicationChamp(_) => other("ExplicationChamp"),
            On::CarteChamp => other("CarteChamp"),
            On::EngagementJuridiqueChamp => other("EngagementJuridiqueChamp"),
            On::EpciChamp => other("EpciChamp"),
            On::RNFChamp => other("RNFChamp"),
            On::TitreIdentiteChamp => other("TitreIdentiteChamp"),
            On::RepetitionChamp => other("RepetitionChamp"),
            On::Unknown => ChampValue::Other {
                typename: self.typename(at),
            },
        };
        Ok(model::Champ {
            id: c.id,
            descriptor_id: c.champ_descriptor_id,
            label,
            string_value: c.string_value,
            value,
        })
    }
}

fn dossier_state<S: serde::Serialize>(s: &S) -> Option<DossierState> {
    // The generated enums differ per operation but all serialize to DS's spelling.
    serde_json::to_value(s)
        .ok()
        .as_ref()
        .and_then(Value::as_str)
        .and_then(DossierState::parse)
}

/// DS's spelling of a generated enum value (`integer_number`, `user_request`).
fn spelling<S: serde::Serialize>(s: &S) -> String {
    match serde_json::to_value(s) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Converts one deleted-dossier node.
pub(crate) fn deleted_dossier(
    d: del::DeletedDossierFragment,
) -> Result<model::DeletedDossier, DecodeError> {
    let conv = Conv {
        raw: Raw::Value(&Value::Null),
        number: d.number,
    };
    Ok(model::DeletedDossier {
        number: d.number,
        state: dossier_state(&d.state),
        reason: spelling(&d.reason),
        date_suppression: conv
            .timestamp(&Loc::root().field("dateSupression"), &d.date_supression)?,
    })
}

/// Converts a démarche's descriptors; `raw` is the response's `data`, for `__typename`s.
pub(crate) fn descriptors(data: d::ResponseData, raw: &Value) -> model::DemarcheDescriptors {
    let demarche = data.demarche;
    let rev = demarche.active_revision;
    let list = |items: Vec<d::RootDescriptorFragment>, key: &str| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let pointer = format!("/demarche/activeRevision/{key}/{i}");
                let children = match item.on {
                    d::RootDescriptorFragmentOn::RepetitionChampDescriptor(r) => r
                        .champ_descriptors
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                        .map(|(j, c)| {
                            descriptor(c, raw, &format!("{pointer}/champDescriptors/{j}"), vec![])
                        })
                        .collect(),
                    _ => vec![],
                };
                descriptor(item.descriptor_fragment, raw, &pointer, children)
            })
            .collect()
    };
    model::DemarcheDescriptors {
        id: demarche.id,
        number: demarche.number,
        title: demarche.title,
        champs: list(rev.champ_descriptors, "champDescriptors"),
        annotations: list(rev.annotation_descriptors, "annotationDescriptors"),
        labels: demarche
            .labels
            .into_iter()
            .map(|l| model::Label {
                id: l.id,
                name: l.name,
            })
            .collect(),
    }
}

fn descriptor(
    c: d::DescriptorFragment,
    raw: &Value,
    pointer: &str,
    children: Vec<model::ChampDescriptor>,
) -> model::ChampDescriptor {
    use d::DescriptorFragmentOn as On;
    let type_de_champ = spelling(&c.type_);
    let typename = raw
        .pointer(&format!("{pointer}/__typename"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default();
    let code_names = |v: Option<Vec<(String, String)>>| {
        v.unwrap_or_default()
            .into_iter()
            .map(|(code, name)| format!("{code} - {name}"))
            .collect()
    };
    let options = match c.on {
        On::DropDownListChampDescriptor(o) => o.options.unwrap_or_default(),
        On::MultipleDropDownListChampDescriptor(o) => o.options.unwrap_or_default(),
        On::LinkedDropDownListChampDescriptor(o) => o.options.unwrap_or_default(),
        On::DepartementChampDescriptor(o) => code_names(
            o.departements
                .map(|v| v.into_iter().map(|x| (x.code, x.name)).collect()),
        ),
        On::RegionChampDescriptor(o) => code_names(
            o.regions
                .map(|v| v.into_iter().map(|x| (x.code, x.name)).collect()),
        ),
        _ => vec![],
    };
    model::ChampDescriptor {
        id: c.id,
        label: c.label,
        typename,
        type_de_champ,
        required: c.required,
        options,
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn champ(typename: &str, n: u32, label: &str, extra: Value) -> Value {
        let mut c = json!({
            "__typename": typename,
            "id": format!("champ-{n}"),
            "champDescriptorId": format!("champ-{n}"),
            "label": label,
            "stringValue": null,
        });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    fn dossier(champs: Vec<Value>) -> Value {
        json!({
            "id": "RG9zc2llci00Mg==",
            "number": 42,
            "state": "en_construction",
            "dateDepot": "2026-03-02T10:00:00+01:00",
            "dateDerniereModification": "2026-03-03T10:00:00+01:00",
            "dateDerniereModificationChamps": "2026-03-03T10:00:00+01:00",
            "dateDerniereModificationAnnotations": "2026-03-02T10:00:00+01:00",
            "datePassageEnInstruction": null,
            "dateTraitement": null,
            "motivation": null,
            "groupeInstructeur": {"id": "R3JvdXBlLTE=", "number": 1, "label": "défaut"},
            "demandeur": {"__typename": "PersonneMorale", "siret": "12345678900011",
                "entreprise": {"formeJuridique": "Association déclarée", "formeJuridiqueCode": "9220"},
                "association": {"rna": "W751234567"}, "address": {"departmentCode": "75"}},
            "labels": [{"id": "TGFiZWwtMQ==", "name": "Pré-contrôle : conforme"}],
            "messages": [{"id": "m1", "body": "Bonjour", "createdAt": "2026-03-02T11:00:00+01:00", "email": "a@b.fr"}],
            "champs": champs,
            "annotations": [],
        })
    }

    #[test]
    fn every_champ_type_converts() {
        let raw = dossier(vec![
            champ("TextChamp", 1, "Texte", json!({"value": "abc"})),
            champ("CheckboxChamp", 2, "Case", json!({"checked": true})),
            champ("YesNoChamp", 3, "Oui non", json!({"answer": null})),
            champ("DateChamp", 4, "Date", json!({"date": "2026-07-12"})),
            champ(
                "DatetimeChamp",
                5,
                "Date heure",
                json!({"datetime": "2026-07-12T10:00:00+02:00"}),
            ),
            champ("IntegerNumberChamp", 6, "Entier", json!({"integer": "12"})),
            champ("DecimalNumberChamp", 7, "Décimal", json!({"decimal": 1.5})),
            champ("DropDownListChamp", 8, "Choix", json!({"value": "A"})),
            champ(
                "MultipleDropDownListChamp",
                9,
                "Choix multiples",
                json!({"values": ["A", "B"]}),
            ),
            champ(
                "DepartementChamp",
                10,
                "Département",
                json!({"departement": {"code": "75", "name": "Paris"}}),
            ),
            champ(
                "RNAChamp",
                11,
                "RNA",
                json!({"rna": {"id": "W751234567", "title": "Asso", "address": {"departmentCode": "75"}}}),
            ),
            champ(
                "RepetitionChamp",
                12,
                "Porteurs",
                json!({"rows": [{"id": "row-1", "champs": [champ("TextChamp", 13, "Nom", json!({"value": "Dr X"}))]}]}),
            ),
            champ(
                "PieceJustificativeChamp",
                14,
                "Plan",
                json!({"files": [{"filename": "plan.pdf", "contentType": "application/pdf", "byteSizeBigInt": "1024", "url": "https://x/plan.pdf"}]}),
            ),
            champ("CarteChamp", 15, "Carte", json!({})),
            champ("SomeFutureChamp", 16, "Nouveau", json!({"whatever": 1})),
            champ(
                "DossierLinkChamp",
                17,
                "Lien",
                json!({"dossier": {"number": 7, "state": "accepte"}}),
            ),
        ]);
        let d = decode_dossier(&raw).unwrap();
        // From the text, the same dossier; the unknown type's name is read back from it.
        assert_eq!(decode_dossier_text(&raw.to_string()).unwrap(), d);
        let values: Vec<&ChampValue> = d.champs.iter().map(|c| &c.value).collect();
        assert_eq!(values[0], &ChampValue::Text(Some("abc".into())));
        assert_eq!(values[1], &ChampValue::Checkbox(true));
        assert_eq!(values[2], &ChampValue::YesNo(None));
        assert_eq!(
            values[3],
            &ChampValue::Date(Some(NaiveDate::from_ymd_opt(2026, 7, 12).unwrap()))
        );
        assert!(matches!(values[4], ChampValue::Datetime(Some(_))));
        assert_eq!(values[5], &ChampValue::Integer(Some("12".into())));
        assert_eq!(values[6], &ChampValue::Decimal(Some(1.5)));
        assert_eq!(values[7], &ChampValue::DropDown(Some("A".into())));
        assert_eq!(
            values[8],
            &ChampValue::MultipleDropDown(vec!["A".into(), "B".into()])
        );
        assert_eq!(
            values[9],
            &ChampValue::Departement(Some(CodeName {
                code: "75".into(),
                name: "Paris".into()
            }))
        );
        assert!(
            matches!(values[10], ChampValue::Rna(Some(r)) if r.departement_code.as_deref() == Some("75"))
        );
        match values[11] {
            ChampValue::Repetition(rows) => {
                assert_eq!(rows.len(), 1);
                assert_eq!(
                    rows[0].champs[0].value,
                    ChampValue::Text(Some("Dr X".into()))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(values[12], ChampValue::PieceJustificative(f) if f[0].byte_size == Some(1024))
        );
        assert_eq!(
            values[13],
            &ChampValue::Other {
                typename: "CarteChamp".into()
            }
        );
        assert_eq!(
            values[14],
            &ChampValue::Other {
                typename: "SomeFutureChamp".into()
            }
        );
        assert!(
            matches!(values[15], ChampValue::DossierLink(Some(l)) if l.number == 7 && l.state == Some(DossierState::Accepte))
        );
        assert!(
            matches!(d.demandeur, model::Demandeur::PersonneMorale { ref rna, .. } if rna.as_deref() == Some("W751234567"))
        );
    }

    /// Section headers and explanations, which real forms are full of, decode as champs essbot
    /// does not read; an address keeps where DS geocoded it.
    #[test]
    fn headers_explanations_and_addresses_decode() {
        let raw = dossier(vec![
            champ(
                "HeaderSectionChamp",
                1,
                "Le projet et ses porteurs",
                json!({"section": null}),
            ),
            champ(
                "ExplicationChamp",
                2,
                "Remplissez…",
                json!({"explication": null}),
            ),
            champ(
                "AddressChamp",
                3,
                "Siège",
                json!({
                    "address": {"label": "12 rue de Siam 29200 Brest"},
                    "commune": {"code": "29019"},
                    "departement": {"code": "29", "name": "Finistère"}
                }),
            ),
            champ("AddressChamp", 4, "Siège vide", json!({"address": null})),
        ]);
        for d in [
            decode_dossier(&raw).unwrap(),
            decode_dossier_text(&raw.to_string()).unwrap(),
        ] {
            assert_eq!(
                d.champs[0].value,
                ChampValue::Other {
                    typename: "HeaderSectionChamp".into()
                }
            );
            assert_eq!(
                d.champs[1].value,
                ChampValue::Other {
                    typename: "ExplicationChamp".into()
                }
            );
            assert_eq!(
                d.champs[2].value,
                ChampValue::Address {
                    label: Some("12 rue de Siam 29200 Brest".into()),
                    city_code: Some("29019".into()),
                    departement: Some(CodeName {
                        code: "29".into(),
                        name: "Finistère".into()
                    }),
                }
            );
            assert_eq!(
                d.champs[3].value,
                ChampValue::Address {
                    label: None,
                    city_code: None,
                    departement: None
                }
            );
        }
    }

    /// The error of a bad node, which must be the same read from its text.
    fn decode_error(raw: &Value) -> DecodeError {
        let err = decode_dossier(raw).unwrap_err();
        assert_eq!(decode_dossier_text(&raw.to_string()).unwrap_err(), err);
        err
    }

    #[test]
    fn a_value_inside_a_repetition_row_is_named_by_its_whole_path() {
        let row = |c: Value| json!({"rows": [{"id": "row-1", "champs": [c]}]});
        let raw = dossier(vec![champ(
            "RepetitionChamp",
            1,
            "Porteurs",
            row(champ(
                "DateChamp",
                2,
                "Date d'adhésion",
                json!({"date": "hier"}),
            )),
        )]);
        let err = decode_error(&raw);
        assert_eq!(
            err.path,
            "champs[0] « Porteurs ».rows[0].champs[0] « Date d'adhésion ».date"
        );
        assert_eq!(err.number, Some(42));

        // An unknown type inside a row: its name is read back at the row champ's pointer.
        let raw = dossier(vec![champ(
            "RepetitionChamp",
            1,
            "Porteurs",
            row(champ("FutureChamp", 2, "Nouveau", json!({}))),
        )]);
        for d in [
            decode_dossier(&raw).unwrap(),
            decode_dossier_text(&raw.to_string()).unwrap(),
        ] {
            let ChampValue::Repetition(rows) = &d.champs[0].value else {
                panic!("{:?}", d.champs[0].value);
            };
            assert_eq!(
                rows[0].champs[0].value,
                ChampValue::Other {
                    typename: "FutureChamp".into()
                }
            );
        }
    }

    #[test]
    fn a_node_that_is_not_json_is_an_error_not_a_panic() {
        for text in ["", "{", "{\"number\": 42,", "nul", "[1, 2"] {
            let err = decode_dossier_text(text).unwrap_err();
            assert_eq!((err.number, err.path.as_str()), (None, "."), "{text:?}");
            assert!(err.message.starts_with("JSON illisible"), "{err}");
        }
        assert_eq!(decode_error(&json!([1])).path, ".");
        assert_eq!(decode_error(&json!(null)).path, ".");
    }

    #[test]
    fn a_bad_value_names_the_dossier_and_the_champ() {
        let raw = dossier(vec![champ(
            "DateChamp",
            4,
            "Date de signature",
            json!({"date": "12/07/2026"}),
        )]);
        let err = decode_error(&raw);
        assert_eq!(err.number, Some(42));
        assert!(err.path.contains("Date de signature"), "{err}");
        assert!(err.path.starts_with("champs[0]"), "{err}");

        let raw = dossier(vec![champ(
            "IntegerNumberChamp",
            6,
            "Nombre de médecins adhérents",
            json!({"integer": [1]}),
        )]);
        let err = decode_error(&raw);
        assert_eq!(err.number, Some(42));
        assert!(err.path.contains("Nombre de médecins adhérents"), "{err}");

        let mut raw = dossier(vec![]);
        raw["dateDepot"] = json!("hier");
        let err = decode_error(&raw);
        assert_eq!(err.path, "dateDepot");

        let mut raw = dossier(vec![]);
        raw["state"] = json!("brouillon");
        assert_eq!(decode_error(&raw).path, "state");
    }
}
