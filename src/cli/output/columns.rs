//! `-o custom-columns=SPEC` and `-o custom-columns-file=FILE`: kubectl's custom columns
//! (`k8s.io/kubectl/pkg/cmd/get/customcolumn.go`), each column a JSONPath.
use kube_jsonpath::Template;
use serde_json::Value;

/// One column: its header and the JSONPath of its cells.
#[derive(Debug, Clone)]
pub struct Column {
    pub header: String,
    pub path: Template,
}

/// kubectl's `RelaxedJSONPathExpression`: `a.b`, `.a.b`, `{a.b}` and `{.a.b}` all become
/// `{.a.b}` (the regexp `^\{\.?([^{}]+)\}$|^\.?([^{}]+)$`).
pub fn relaxed(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Ok(String::new());
    }
    let field = |inner: &str| -> Option<String> {
        // `\.?` gives the dot back when nothing else would match `[^{}]+`.
        let rest = match inner.strip_prefix('.') {
            Some(r) if !r.is_empty() => r,
            _ => inner,
        };
        (!rest.is_empty() && !rest.contains(['{', '}'])).then(|| format!("{{.{rest}}}"))
    };
    let braced = path.strip_prefix('{').and_then(|p| p.strip_suffix('}')).and_then(field);
    braced.or_else(|| field(path)).ok_or_else(|| {
        "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'"
            .to_string()
    })
}

fn column(header: &str, path: &str) -> Result<Column, String> {
    let path = Template::parse(&relaxed(path)?)?;
    Ok(Column {
        header: header.to_string(),
        path,
    })
}

/// `NewCustomColumnsPrinterFromSpec`: `HEADER:PATH,…`.
pub fn from_spec(spec: &str) -> Result<Vec<Column>, String> {
    if spec.is_empty() {
        return Err("custom-columns format specified but no custom columns given".into());
    }
    spec.split(',')
        .map(|part| match part.split_once(':') {
            Some((header, path)) => column(header, path),
            None => Err(format!(
                "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
            )),
        })
        .collect()
}

/// `NewCustomColumnsPrinterFromTemplate`: a line of headers, then a line of paths.
pub fn from_template(text: &str) -> Result<Vec<Column>, String> {
    const FORMAT: &str =
        "Expected format is one line of space separated headers, one line of space separated column specs.";
    let mut lines = text.lines();
    let headers: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("invalid template, missing header line. {FORMAT}"))?
        .split_whitespace()
        .collect();
    let specs: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("invalid template, missing spec line. {FORMAT}"))?
        .split_whitespace()
        .collect();
    if headers.len() != specs.len() {
        return Err(format!(
            "number of headers ({}) and field specifications ({}) don't match",
            headers.len(),
            specs.len()
        ));
    }
    headers.iter().zip(&specs).map(|(h, p)| column(h, p)).collect()
}

/// The cells of `obj`: every result of a column's path (Go's `fmt.Sprint` of it), joined by
/// commas; `<none>` when there is none.
pub fn cells(columns: &[Column], obj: &Value) -> Result<Vec<String>, String> {
    columns
        .iter()
        .map(|c| {
            let values = c.path.find_results(obj)?;
            let texts: Vec<String> = values.iter().flatten().map(kube_jsonpath::to_text).collect();
            let empty = values.first().is_none_or(|v| v.is_empty());
            Ok(if empty && texts.is_empty() {
                "<none>".to_string()
            } else if empty {
                // kubectl writes `<none>` first when the first segment is empty.
                format!("<none>,{}", texts.join(","))
            } else {
                texts.join(",")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_relaxed_like_kubectls() {
        for p in ["metadata.name", ".metadata.name", "{metadata.name}", "{.metadata.name}"] {
            assert_eq!(relaxed(p).unwrap(), "{.metadata.name}", "{p}");
        }
        assert_eq!(relaxed(".").unwrap(), "{..}");
        assert!(relaxed("{.x").is_err());
        assert!(relaxed("{range .x}{end}").is_err());
    }

    #[test]
    fn specs_and_templates_give_columns() {
        let cols = from_spec("NAME:.metadata.name,L:metadata.labels,N:.nope").unwrap();
        let obj = json!({"metadata": {"name": "web", "labels": {"b": "2", "a": "1"}}});
        assert_eq!(cells(&cols, &obj).unwrap(), ["web", "map[a:1 b:2]", "<none>"]);
        assert_eq!(
            from_spec("NAME").unwrap_err(),
            "unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>"
        );
        let cols = from_template("NAME   VERSION\nmetadata.name {.spec.version}\n").unwrap();
        assert_eq!(cols.len(), 2);
        assert_eq!(
            from_template("A B C\nx y\n").unwrap_err(),
            "number of headers (3) and field specifications (2) don't match"
        );
    }
}
