//! The objects `lint -f` reads, as `kubectl apply -f` reads them: files; directories (their
//! `.yaml`, `.yml` and `.json` files, in name order; with `-R` those of their subdirectories
//! too); `-` for stdin. A file is a YAML stream (documents separated by `---`) or a stream of
//! JSON objects, and a `List` stands for its items.
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::session::{exit, CliError};

/// What kubectl calls stdin in its messages.
const STDIN: &str = "STDIN";
/// The extensions kubectl reads in a directory.
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// One object and where it came from (the file as named on the command line, or as found in a
/// directory given there).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: String,
    pub object: Map<String, Value>,
}

/// Every object of `filenames`, in order. A path that does not exist is
/// [`exit::NOT_FOUND`]; text that is not YAML or JSON, or a document that is not an object
/// with `apiVersion` and `kind`, is [`exit::USAGE`]: either way nothing is linted.
pub fn read(filenames: &[String], recursive: bool) -> Result<Vec<Document>, CliError> {
    let mut sources: Vec<(String, Option<PathBuf>)> = Vec::new();
    for name in filenames {
        if name == "-" {
            sources.push((STDIN.to_string(), None));
            continue;
        }
        let path = Path::new(name);
        if !path.exists() {
            return Err(CliError::with_code(
                format!("error: the path {name:?} does not exist"),
                exit::NOT_FOUND,
            ));
        }
        if path.is_dir() {
            for file in directory(path, recursive)? {
                sources.push((file.display().to_string(), Some(file)));
            }
        } else {
            sources.push((name.clone(), Some(path.to_path_buf())));
        }
    }
    let mut out = Vec::new();
    for (source, path) in sources {
        let bytes = match &path {
            Some(p) => std::fs::read(p),
            None => {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf).map(|_| buf)
            }
        }
        .map_err(|e| CliError::msg(format!("reading {source}: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| CliError::usage(format!("error parsing {source}: the text is not UTF-8")))?;
        for value in documents(&text).map_err(|e| CliError::usage(format!("error parsing {source}: {e}")))? {
            objects(&source, value, &mut out)?;
        }
    }
    Ok(out)
}

/// The files of `dir` kubectl would read, in name order.
fn directory(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::msg(format!("reading {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            if recursive {
                out.extend(directory(&path, recursive)?);
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(out)
}

/// The documents of a stream: JSON objects one after the other, else YAML documents (empty
/// ones left out).
fn documents(text: &str) -> Result<Vec<Value>, String> {
    let json: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(text).into_iter::<Value>().collect();
    match json {
        Ok(values) if !values.is_empty() => Ok(values),
        _ => serde_saphyr::from_multiple::<Value>(text).map_err(|e| {
            // One line, as kubectl's: the parser's message without its source snippet.
            // (and without its advice to the programmer about duplicate keys).
            let message = e.without_snippet().to_string();
            let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            message.strip_prefix("error: ").unwrap_or(&message).trim().to_string()
        }),
    }
}

/// `value` as objects: itself, or a `List`'s items.
fn objects(source: &str, value: Value, out: &mut Vec<Document>) -> Result<(), CliError> {
    let Value::Object(object) = value else {
        return Err(CliError::usage(format!(
            "error parsing {source}: a document is {}, not an object with apiVersion and kind",
            what(&value)
        )));
    };
    let unset: Vec<&str> = [("apiVersion", "apiVersion not set"), ("kind", "kind not set")]
        .into_iter()
        .filter(|(key, _)| object.get(*key).and_then(Value::as_str).is_none_or(str::is_empty))
        .map(|(_, unset)| unset)
        .collect();
    if !unset.is_empty() {
        return Err(CliError::usage(format!(
            "error validating {source:?}: error validating data: [{}]",
            unset.join(", ")
        )));
    }
    let is_list = object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match object.get("items") {
        Some(Value::Array(items)) if is_list => {
            for item in items {
                objects(source, item.clone(), out)?;
            }
        }
        _ => out.push(Document {
            source: source.to_string(),
            object,
        }),
    }
    Ok(())
}

/// A value's JSON type, with an article, for messages.
fn what(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Document>, CliError> {
        let mut out = Vec::new();
        for value in documents(text).map_err(CliError::usage)? {
            objects("f.yaml", value, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn yaml_streams_json_streams_and_lists_are_objects() {
        let yaml = "---\napiVersion: v1\nkind: A\n---\n\n---\napiVersion: v1\nkind: B\n";
        assert_eq!(parse(yaml).map(|d| d.len()), Ok(2));
        let json = r#"{"apiVersion": "v1", "kind": "A"} {"apiVersion": "v1", "kind": "B"}"#;
        assert_eq!(parse(json).map(|d| d.len()), Ok(2));
        let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: A}\n- {apiVersion: v1, kind: B}\n";
        let kinds: Vec<String> = parse(list)
            .unwrap()
            .iter()
            .map(|d| d.object["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["A", "B"]);
    }

    #[test]
    fn what_is_not_an_object_is_a_usage_error() {
        let e = parse("just some words\n").unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.contains("a string, not an object"), "{e}");
        let e = parse("metadata: {name: x}\n").unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.contains("[apiVersion not set, kind not set]"), "{e}");
        assert_eq!(parse("a: [b\n").map_err(|e| e.code), Err(exit::USAGE));
    }
}
