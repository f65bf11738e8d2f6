//! How the CLI prints: kubectl's tables (columns sized to their content by a tabwriter with
//! kubectl's settings), kubectl's ages ("3m", "2d4h"), and kubectl's other `-o` formats.
use std::io::Write;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

mod columns;
mod printer;
mod tabs;

pub use printer::{Follow, Format, Got, PrintFlags, Printer};

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The table with more columns.
    Wide,
    /// The object(s) as JSON.
    Json,
    /// The object(s) as YAML.
    Yaml,
    /// `<resource>/<name>` per object.
    Name,
}

/// Render rows (header first) as kubectl does: each column as wide as its widest cell plus three
/// spaces (at least six), the last column unpadded.
pub fn table(rows: &[Vec<String>]) -> String {
    table_indented(rows, "")
}

/// [`table`] with every line prefixed by `indent`.
pub fn table_indented(rows: &[Vec<String>], indent: &str) -> String {
    // kubectl: tabwriter.NewWriter(out, 6, 4, 3, ' ', 0); Go's minimum width includes the
    // padding, this crate's does not.
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(3).padding(3);
    for row in rows {
        // A tab or newline inside a cell would break the columns.
        let cells: Vec<String> = row.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        let _ = writeln!(tw, "{indent}{}", cells.join("\t"));
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// kubectl's age of something that happened `d` ago (apimachinery's `HumanDuration`).
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of `t` at `now`, or `<unknown>` (kubectl's word) without one.
pub fn age(t: Option<&Time>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t.0)),
        None => "<unknown>".into(),
    }
}

/// `<none>` for an empty cell, as kubectl prints it.
pub fn or_none(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

/// JSON as kubectl prints it (four-space indent, trailing newline).
pub fn json<T: Serialize>(value: &T) -> Result<String, String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(|e| format!("encoding JSON: {e}"))?;
    out.push(b'\n');
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// YAML as kubectl prints it.
pub fn yaml<T: Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| format!("encoding YAML: {e}"))
}

/// `value` as JSON or YAML (`output` is one of the two).
pub fn document<T: Serialize>(value: &T, output: Output) -> Result<String, String> {
    match output {
        Output::Yaml => yaml(value),
        _ => json(value),
    }
}

/// An object as `kubectl get -o json|yaml` shows it: without `managedFields`.
pub fn object<T: Serialize>(value: &T) -> Result<serde_json::Value, String> {
    let mut v = serde_json::to_value(value).map_err(|e| format!("encoding JSON: {e}"))?;
    if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    Ok(v)
}

/// Several objects as `kubectl get -o json|yaml` shows them: a `v1 List`.
pub fn list(items: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn ages_read_like_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (185, "3m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 25 * 60, "3h25m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(secs(s)), want, "{s}s");
        }
    }

    #[test]
    fn columns_fit_their_widest_cell() {
        let rows = vec![
            vec!["NAME".to_string(), "VERSION".into(), "AGE".into()],
            vec!["a-very-long-rollout-name-indeed".into(), "v1".into(), "3m".into()],
            vec!["b".into(), "v2.10.0-rc.1".into(), "2d4h".into()],
        ];
        assert_eq!(
            table(&rows),
            "NAME                              VERSION        AGE\n\
             a-very-long-rollout-name-indeed   v1             3m\n\
             b                                 v2.10.0-rc.1   2d4h\n"
        );
        // Narrow columns are six wide, like kubectl's.
        let rows = vec![vec!["A".to_string(), "B".into()], vec!["x".into(), "y".into()]];
        assert_eq!(table(&rows), "A     B\nx     y\n");
    }

    #[test]
    fn json_is_indented_like_kubectl() {
        assert_eq!(
            json(&serde_json::json!({"a": [1]})).unwrap(),
            "{\n    \"a\": [\n        1\n    ]\n}\n"
        );
    }
}
