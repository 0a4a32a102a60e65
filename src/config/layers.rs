//! The raw layers of a configuration: the TOML file, then the `ESSBOT__SECTION__KEY`
//! environment variables over it, read into one tree that remembers where each key came from,
//! and deserialized without stopping at the first mistake.
//!
//! serde stops at the first error it meets. To report every structural mistake at once, the
//! tree is deserialized again after each error with the offending key taken out (so that its
//! default applies), until it deserializes; each error becomes a [`Problem`] with its key's
//! path and origin (`essbot.toml:12`, or the environment variable's name).
//!
//! Environment values are typed the way the target key wants them: a value is first read as a
//! TOML value (`30`, `true`, `[30, 7]`, `"text"`), and when the key turns out to want a string
//! or a list, the variable's text is used as a string, or split on commas into a list
//! (`ESSBOT__ALERTS__LEAD_DAYS=30,7`).

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::{Env, Problem, Source};

/// The prefix of the environment variables that override keys.
pub(super) const ENV_PREFIX: &str = "ESSBOT__";

/// Where each key of the merged tree came from.
#[derive(Debug, Default)]
pub(super) struct Origins {
    /// The file's name as given, `None` for an inline text (the demo, tests).
    file: Option<String>,
    /// Key path → line in the file (1-based).
    lines: BTreeMap<String, usize>,
    /// Key path → the environment variable that set it, and its text.
    env: BTreeMap<String, (String, String)>,
}

impl Origins {
    /// Where the key at `path` (or the nearest enclosing key known) was written: the variable's
    /// name for a value set by the environment, else `file:line`; `None` when the key is
    /// written nowhere (a missing key of a section the file does not have).
    pub(super) fn of(&self, path: &str) -> Option<String> {
        let mut p = path;
        loop {
            if let Some((var, _)) = self.env.get(p) {
                return Some(format!("environment variable {var}"));
            }
            if let Some(line) = self.lines.get(p) {
                return Some(match &self.file {
                    Some(f) => format!("{f}:{line}"),
                    None => format!("line {line}"),
                });
            }
            p = parent(p)?;
        }
    }

    fn env_text(&self, path: &str) -> Option<&str> {
        self.env.get(path).map(|(_, text)| text.as_str())
    }
}

/// `a.b[0].c` → `a.b[0]` → `a.b` → `a` → `None`.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Reads the file (or text) and lays the environment over it. `Err` carries the problems that
/// keep anything else from being read (no file, a TOML syntax error); the problems of single
/// variables are pushed to `problems` and the rest goes on.
pub(super) fn read(
    source: &Source,
    env: &Env,
    problems: &mut Vec<Problem>,
) -> Result<(toml::Value, Origins), Vec<Problem>> {
    let (text, file) = match source {
        Source::File(path) => match std::fs::read_to_string(path) {
            Ok(t) => (t, Some(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(vec![Problem::new(
                    "--config",
                    format!("file {} does not exist", path.display()),
                )]);
            }
            Err(e) => {
                return Err(vec![Problem::new(
                    "--config",
                    format!("cannot read {}: {e}", path.display()),
                )]);
            }
        },
        Source::Text(t) => (t.clone(), None),
    };
    let mut origins = Origins {
        file,
        ..Origins::default()
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            let mut p = Problem::new("(syntax)", format!("not valid TOML: {}", e.message()));
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            p.origin = match (&origins.file, line) {
                (Some(f), Some(l)) => Some(format!("{f}:{l}")),
                (Some(f), None) => Some(f.clone()),
                (None, Some(l)) => Some(format!("line {l}")),
                (None, None) => None,
            };
            return Err(vec![p]);
        }
    };
    if let Ok(spanned) = toml::de::DeTable::parse(&text) {
        let mut lines = BTreeMap::new();
        table_lines(&text, "", spanned.get_ref(), &mut lines);
        origins.lines = lines;
    }
    let mut tree = toml::Value::Table(table);
    for (name, value) in &env.vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        match set_from_env(&mut tree, rest, value) {
            Ok((path, created)) => {
                // Sections the variable created are its own too (`ESSBOT__NOPE__X`: `nope`).
                for section in created {
                    origins
                        .env
                        .entry(section)
                        .or_insert_with(|| (name.clone(), value.clone()));
                }
                origins.env.insert(path, (name.clone(), value.clone()));
            }
            Err(message) => {
                let mut p = Problem::new(name.clone(), message);
                p.origin = Some("environment".into());
                problems.push(p);
            }
        }
    }
    Ok((tree, origins))
}

/// The line of every key of `table` (and of the tables and arrays of tables under it).
fn table_lines(
    text: &str,
    prefix: &str,
    table: &toml::de::DeTable<'_>,
    out: &mut BTreeMap<String, usize>,
) {
    for (key, value) in table {
        let path = join(prefix, key.get_ref());
        out.insert(path.clone(), line_of(text, key.span().start));
        value_lines(text, &path, value.get_ref(), out);
    }
}

fn value_lines(
    text: &str,
    path: &str,
    value: &toml::de::DeValue<'_>,
    out: &mut BTreeMap<String, usize>,
) {
    match value {
        toml::de::DeValue::Table(t) => table_lines(text, path, t, out),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                out.insert(at.clone(), line_of(text, item.span().start));
                value_lines(text, &at, item.get_ref(), out);
            }
        }
        _ => {}
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Sets the key named by `rest` (`DS__PAGE_SIZE`, `DEMARCHES__0__WRITE_BACK__MODE`) to `value`
/// in `tree`, creating the sections it needs; returns the key's path and the sections created.
fn set_from_env(
    tree: &mut toml::Value,
    rest: &str,
    value: &str,
) -> Result<(String, Vec<String>), String> {
    let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!(
            "not a configuration key: write {ENV_PREFIX}SECTION__KEY (e.g. ESSBOT__DS__PAGE_SIZE)"
        ));
    }
    let (last, sections) = segments.split_last().expect("split yields one segment");
    let mut path = String::new();
    let mut created = Vec::new();
    let mut node = tree;
    for seg in sections {
        node = match node {
            toml::Value::Table(t) => {
                path = join(&path, seg);
                if !t.contains_key(seg) {
                    created.push(path.clone());
                }
                t.entry(seg.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(items) => {
                let len = items.len();
                let i = seg
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < len)
                    .ok_or_else(|| {
                        format!("{path} is a list of {len}: {seg} is not one of its positions (0 to {})", len.saturating_sub(1))
                    })?;
                path = format!("{path}[{i}]");
                &mut items[i]
            }
            _ => return Err(format!("{path} is a single value, not a section")),
        };
    }
    match node {
        toml::Value::Table(t) => {
            path = join(&path, last);
            t.insert(last.clone(), env_value(value));
            Ok((path, created))
        }
        _ => Err(format!("{path} is not a section")),
    }
}

/// An environment variable's text as a TOML value when it reads as one (`30`, `true`,
/// `[30, 7]`, `"x"`, `{ champ = "x" }`), else as a string.
fn env_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .filter(|t| t.len() == 1)
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// A list from an environment variable's text: `30,7` → `[30, 7]`, `a@x, b@y` → two strings.
fn env_list(text: &str) -> toml::Value {
    toml::Value::Array(
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(env_value)
            .collect(),
    )
}

/// Deserializes `tree` into `T`, turning each error into a problem and going on without the
/// key at fault, so that every structural mistake is reported in one pass. Returns `None` only
/// when a required key is missing (nothing to go on with); the problems are in `problems`.
pub(super) fn deserialize<T: DeserializeOwned>(
    mut tree: toml::Value,
    origins: &Origins,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut coerced = BTreeSet::new();
    // Each turn removes or retypes one key: bounded by the size of any sensible file.
    for _ in 0..500 {
        let error = match serde_path_to_error::deserialize::<_, T>(tree.clone()) {
            Ok(value) => return Some(value),
            Err(e) => e,
        };
        let segments: Vec<Seg> = error.path().iter().filter_map(Seg::from_serde).collect();
        let path = render(&segments);
        let message = error.inner().message().to_owned();

        // A value from the environment that the key wants as text or as a list.
        if let Some(text) = origins.env_text(&path)
            && !coerced.contains(&path)
        {
            let retyped = if message.contains("expected a sequence") {
                Some(env_list(text))
            } else if message.contains("expected a string") || message.contains("expected a str") {
                Some(toml::Value::String(text.to_owned()))
            } else {
                None
            };
            if let Some(v) = retyped
                && replace(&mut tree, &segments, v)
            {
                coerced.insert(path);
                continue;
            }
        }

        if let Some(field) = quoted_after(&message, "unknown field `") {
            // The path already ends with the unknown key.
            let mut key = segments.clone();
            if !matches!(key.last(), Some(Seg::Key(k)) if k == field) {
                key.push(Seg::Key(field.to_owned()));
            }
            problems.push(Problem::new(
                render(&key),
                format!("unknown key; {}", expected_list(&message)),
            ));
            if remove(&mut tree, &key) {
                continue;
            }
            return None;
        }
        if let Some(field) = quoted_after(&message, "missing field `") {
            problems.push(Problem::new(join(&path, field), "missing"));
            return None;
        }
        problems.push(Problem::new(
            if path.is_empty() { "(file)" } else { &path },
            friendly(&message),
        ));
        // A bad element of a list takes the whole list out: its other elements keep their
        // positions in the messages.
        let mut key = segments;
        while matches!(key.last(), Some(Seg::Index(_))) {
            key.pop();
        }
        if key.is_empty() || !remove(&mut tree, &key) {
            return None;
        }
    }
    None
}

/// One step of a key's path in the tree.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from_serde(s: &serde_path_to_error::Segment) -> Option<Self> {
        match s {
            serde_path_to_error::Segment::Map { key } => Some(Self::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Self::Index(*index)),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                None
            }
        }
    }
}

fn render(segments: &[Seg]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Seg::Key(k) => out = join(&out, k),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn node_mut<'a>(tree: &'a mut toml::Value, segments: &[Seg]) -> Option<&'a mut toml::Value> {
    let mut node = tree;
    for s in segments {
        node = match (s, node) {
            (Seg::Key(k), toml::Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), toml::Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn remove(tree: &mut toml::Value, segments: &[Seg]) -> bool {
    let Some((Seg::Key(last), parent)) = segments.split_last() else {
        return false;
    };
    match node_mut(tree, parent) {
        Some(toml::Value::Table(t)) => t.remove(last).is_some(),
        _ => false,
    }
}

fn replace(tree: &mut toml::Value, segments: &[Seg], value: toml::Value) -> bool {
    match node_mut(tree, segments) {
        Some(node) => {
            *node = value;
            true
        }
        None => false,
    }
}

/// The text between `prefix` and the next backquote.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// serde's "expected one of `a`, `b`" as "expected one of: a, b".
fn expected_list(message: &str) -> String {
    match message.split_once("expected one of ") {
        Some((_, list)) => format!("expected one of: {}", list.replace('`', "")),
        None => "this section has no such key".to_owned(),
    }
}

/// serde's wording with Rust's type names in words an operator reads.
fn friendly(message: &str) -> String {
    let mut m = message.to_owned();
    for (rust, words) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a borrowed string", "expected a string"),
    ] {
        m = m.replace(rust, words);
    }
    if m.contains("did not match any variant of untagged enum RawFieldRef") {
        return "expected a champ label, \"id:<stable id>\", or { champ = …, columns = { … } }"
            .to_owned();
    }
    if let Some(rest) = m.strip_prefix("unknown variant `")
        && let Some((value, _)) = rest.split_once('`')
    {
        return format!("unknown value \"{value}\"; {}", expected_list(&m));
    }
    m.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent("a.b[0].c"), Some("a.b[0]"));
        assert_eq!(parent("a.b[0]"), Some("a.b"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }

    #[test]
    fn environment_values_read_as_toml_else_as_text() {
        assert_eq!(env_value("30"), toml::Value::Integer(30));
        assert_eq!(env_value("true"), toml::Value::Boolean(true));
        assert_eq!(
            env_value("0.0.0.0:9187"),
            toml::Value::String("0.0.0.0:9187".into())
        );
        assert_eq!(env_value("30,7"), toml::Value::String("30,7".into()));
        assert_eq!(
            env_list("30, 7"),
            toml::Value::Array(vec![toml::Value::Integer(30), toml::Value::Integer(7)])
        );
        // No smuggling of a second key through a newline.
        assert_eq!(
            env_value("1\nother = 2"),
            toml::Value::String("1\nother = 2".into())
        );
    }

    #[test]
    fn serde_wording_is_reworded() {
        assert_eq!(
            friendly("invalid type: string \"cent\", expected u32"),
            "invalid type: string \"cent\", expected a whole number"
        );
        assert_eq!(
            friendly("unknown variant `of`, expected one of `off`, `dry-run`, `annotations`"),
            "unknown value \"of\"; expected one of: off, dry-run, annotations"
        );
    }
}
