//! kubectl's printing flags (`-o FORMAT`, `--no-headers`, `--show-labels`) and the printer
//! they choose (`k8s.io/cli-runtime/pkg/genericclioptions`'s print flags): what each format
//! prints for the objects a command got, and for each change while it watches.
use kube_jsonpath::Template;
use serde_json::Value;

use super::columns::{self, Column};
use super::tabs::Widths;
use crate::session::CliError;

/// The formats `-o` takes, as kubectl lists them (sorted) when it takes none of them.
const FORMATS: &str = "custom-columns,custom-columns-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,yaml";

/// kubectl's printing flags, for the commands that print objects (`-w/--watch` is the
/// command's own: what it follows differs).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PrintFlags {
    /// Output format: json|yaml|wide|name|jsonpath=TEMPLATE|jsonpath-file=FILE|
    /// jsonpath-as-json=TEMPLATE|custom-columns=SPEC|custom-columns-file=FILE.
    #[arg(short = 'o', long = "output", value_name = "FORMAT")]
    pub output: Option<String>,
    /// Print the table (or the custom columns) without its header row.
    #[arg(long)]
    pub no_headers: bool,
    /// Add each object's labels to the table as its last column, LABELS.
    #[arg(long)]
    pub show_labels: bool,
}

/// What `-o` chose.
#[derive(Debug, Clone)]
pub enum Format {
    /// The command's table; `wide` with its extra columns.
    Table {
        wide: bool,
    },
    Json,
    Yaml,
    /// `<resource>/<name>` per object.
    Name,
    /// A JSONPath template, printed as text or (`jsonpath-as-json`) as JSON arrays.
    JsonPath {
        template: Template,
        raw: String,
        as_json: bool,
    },
    /// Columns of JSONPaths; `headers` unless `--no-headers` (a columns file always has them).
    CustomColumns {
        columns: Vec<Column>,
        headers: bool,
    },
}

/// A chosen format and the flags that shape a table.
#[derive(Debug, Clone)]
pub struct Printer {
    pub format: Format,
    pub no_headers: bool,
    pub show_labels: bool,
}

impl Default for Printer {
    fn default() -> Self {
        Printer {
            format: Format::Table { wide: false },
            no_headers: false,
            show_labels: false,
        }
    }
}

/// A file that `-o …-file=PATH` names, or kubectl's words for why it cannot be read.
fn read(path: &str, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        CliError::usage(format!("error reading {what} {path}, open {path}: {why}"))
    })
}

fn template(format: &str, value: Option<&str>) -> Result<(Template, String), CliError> {
    let value = value.unwrap_or_default();
    if value.is_empty() {
        return Err(CliError::usage("template format specified but no template given"));
    }
    let text = if format == "jsonpath-file" {
        read(value, "--template")?
    } else {
        value.to_string()
    };
    match Template::parse(&text) {
        Ok(t) => Ok((t, text)),
        Err(e) => Err(CliError::usage(format!("error parsing jsonpath {text}, {e}"))),
    }
}

impl PrintFlags {
    /// The printer these flags choose, or kubectl's usage error.
    pub fn printer(&self) -> Result<Printer, CliError> {
        let format = match self.output.as_deref() {
            None | Some("") => Format::Table { wide: false },
            Some(o) => self.format(o)?,
        };
        if self.show_labels && !matches!(format, Format::Table { .. }) {
            let o = self.output.as_deref().unwrap_or_default();
            return Err(CliError::usage(format!(
                "--show-labels option cannot be used with {o} printer"
            )));
        }
        Ok(Printer {
            format,
            no_headers: self.no_headers,
            show_labels: self.show_labels,
        })
    }

    fn format(&self, o: &str) -> Result<Format, CliError> {
        let (name, value) = match o.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (o, None),
        };
        Ok(match (name, value) {
            ("wide", None) => Format::Table { wide: true },
            ("json", None) => Format::Json,
            ("yaml", None) => Format::Yaml,
            ("name", None) => Format::Name,
            ("jsonpath" | "jsonpath-file" | "jsonpath-as-json", _) => {
                let (template, raw) = template(name, value)?;
                Format::JsonPath {
                    template,
                    raw,
                    as_json: name == "jsonpath-as-json",
                }
            }
            ("custom-columns", _) => Format::CustomColumns {
                columns: columns::from_spec(value.unwrap_or_default()).map_err(CliError::usage)?,
                headers: !self.no_headers,
            },
            ("custom-columns-file", _) => {
                let text = read(value.unwrap_or_default(), "template")?;
                Format::CustomColumns {
                    columns: columns::from_template(&text).map_err(CliError::usage)?,
                    headers: true,
                }
            }
            _ => {
                return Err(CliError::usage(format!(
                    "unable to match a printer suitable for the output format \"{o}\", allowed formats are: {FORMATS}"
                )))
            }
        })
    }
}

/// kubectl's `--show-labels` cell: `k=v` by key, comma-separated, or `<none>`.
fn labels(obj: &Value) -> String {
    let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
    let pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    super::or_none(Some(&pairs.join(",")))
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Go's `json.Marshal`: compact, with `<`, `>` and `&` escaped as it escapes them.
fn go_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `JSONPath.PrintResults` of one segment: results space-separated, strings and scalars as
/// text, objects and arrays as compact JSON; with `as_json` the segment as one indented array.
fn print_results(results: &[Value], as_json: bool) -> Result<String, CliError> {
    if as_json {
        return Ok(super::json(&results)?);
    }
    let texts: Vec<String> = results
        .iter()
        .map(|r| match r {
            Value::Object(_) | Value::Array(_) => go_json(r),
            other => kube_jsonpath::to_text(other),
        })
        .collect();
    Ok(texts.join(" "))
}

/// `-o jsonpath=…` of `target`, kubectl's words when the template fails on it.
fn jsonpath(template: &Template, raw: &str, target: &Value, as_json: bool) -> Result<String, CliError> {
    let segments = template.find_results(target).map_err(|e| {
        CliError::msg(format!(
            "error executing jsonpath {raw:?}: Error executing template: {e}. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{raw}\n\tobject given to jsonpath engine was:\n\t\t{target}\n\n"
        ))
    })?;
    let mut out = String::new();
    for s in &segments {
        out.push_str(&print_results(s, as_json)?);
    }
    Ok(out)
}

/// What a command got for the printer: its objects as `kubectl get -o json` shows each.
#[derive(Debug, Clone, Copy)]
pub struct Got<'a> {
    /// `<resource>.<group>` of `-o name`, e.g. `rollout.baton.dev`.
    pub resource: &'a str,
    pub objects: &'a [Value],
    /// One object asked for by name: the formats print it as itself, not in a `List`.
    pub single: bool,
}

impl Printer {
    /// Whether the command's table should have its `-o wide` columns.
    pub fn wide(&self) -> bool {
        matches!(self.format, Format::Table { wide: true })
    }

    /// Whether this prints the command's table (where kubectl says "No resources found"
    /// instead of printing nothing).
    pub fn is_table(&self) -> bool {
        matches!(self.format, Format::Table { .. })
    }

    /// The command's table (`rows`: header first, then a row per object) as the flags shape
    /// it: LABELS added, the header kept only when `header` and not `--no-headers`.
    fn shape(&self, mut rows: Vec<Vec<String>>, objects: &[Value], header: bool) -> Vec<Vec<String>> {
        if self.show_labels {
            for (i, row) in rows.iter_mut().enumerate() {
                match i.checked_sub(1) {
                    None => row.push("LABELS".into()),
                    Some(k) => row.push(objects.get(k).map(labels).unwrap_or_else(|| "<none>".into())),
                }
            }
        }
        if !header || self.no_headers {
            rows.drain(..rows.len().min(1));
        }
        rows
    }

    /// Everything `got` holds, as `kubectl get` prints it (`rows`: the command's table, header
    /// first, for the table formats).
    pub fn print(&self, got: &Got, rows: Vec<Vec<String>>) -> Result<String, CliError> {
        let target = || match (got.single, got.objects) {
            (true, [one]) => one.clone(),
            _ => super::list(got.objects.to_vec()),
        };
        Ok(match &self.format {
            Format::Table { .. } => super::table(&self.shape(rows, got.objects, true)),
            Format::Json => super::json(&target())?,
            Format::Yaml => super::yaml(&target())?,
            Format::Name => names(got.resource, got.objects),
            Format::JsonPath { template, raw, as_json } => jsonpath(template, raw, &target(), *as_json)?,
            Format::CustomColumns { columns, headers } => super::table(&custom_rows(columns, *headers, got.objects)?),
        })
    }
}

fn names(resource: &str, objects: &[Value]) -> String {
    objects.iter().map(|o| format!("{resource}/{}\n", name_of(o))).collect()
}

fn custom_rows(columns: &[Column], header: bool, objects: &[Value]) -> Result<Vec<Vec<String>>, CliError> {
    let mut rows = Vec::new();
    if header {
        rows.push(columns.iter().map(|c| c.header.clone()).collect());
    }
    for o in objects {
        rows.push(columns::cells(columns, o).map_err(CliError::msg)?);
    }
    Ok(rows)
}

/// The printer of a watch (`-w`): the objects first, then one change at a time, as
/// `kubectl get -w` prints them: table rows aligned with those before, each object on its own
/// in the other formats (YAML documents separated by `---`).
#[derive(Debug)]
pub struct Follow {
    printer: Printer,
    widths: Widths,
    documents: usize,
    header: bool,
}

impl Follow {
    pub fn new(printer: Printer) -> Follow {
        Follow {
            printer,
            widths: Widths::default(),
            documents: 0,
            header: true,
        }
    }

    /// Whether the command's table should have its `-o wide` columns.
    pub fn wide(&self) -> bool {
        self.printer.wide()
    }

    /// `got.objects` (the first print: with the header) or a change to one object (`rows`:
    /// the command's table for them, header first).
    pub fn print(&mut self, got: &Got, rows: Vec<Vec<String>>) -> Result<String, CliError> {
        let header = std::mem::replace(&mut self.header, false);
        let p = &self.printer;
        let mut out = String::new();
        match &p.format {
            Format::Table { .. } => out = self.widths.render(&p.shape(rows, got.objects, header)),
            Format::CustomColumns { columns, headers } => {
                out = self
                    .widths
                    .render(&custom_rows(columns, *headers && header, got.objects)?)
            }
            Format::Name => out = names(got.resource, got.objects),
            Format::Json | Format::Yaml => {
                for o in got.objects {
                    if matches!(p.format, Format::Yaml) {
                        self.documents += 1;
                        if self.documents > 1 {
                            out.push_str("---\n");
                        }
                        out.push_str(&super::yaml(o)?);
                    } else {
                        out.push_str(&super::json(o)?);
                    }
                }
            }
            Format::JsonPath { template, raw, as_json } => {
                for o in got.objects {
                    out.push_str(&jsonpath(template, raw, o, *as_json)?);
                }
            }
        }
        Ok(out)
    }
}
