//! Generates `sim/src/protobuf/generated.rs` (run `make protobuf`): JSON ⇄ k8s-pb conversions
//! for the built-in kinds the simulator serves.
//!
//! Field numbers and types come from k8s-pb's own prost messages (the generated code uses its
//! types, so the compiler checks every field against k8s-pb); JSON field names come from
//! k8s-openapi's serde code, matched on the name without case or underscores (`pod_i_ps` ↔
//! `podIPs`). Both crates' sources are found with `cargo metadata`. Which scalar fields keep a
//! zero value in JSON comes from the Go structs, through `sim/src/protobuf/go_fields.rs`.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[path = "../src/protobuf/go_fields.rs"]
mod go_fields;

/// (apiVersion, kind, k8s-pb path) of every top-level message encoded; lists are added.
const ROOTS: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "api::core::v1"),
    ("v1", "Pod", "api::core::v1"),
    ("v1", "Secret", "api::core::v1"),
    ("v1", "ConfigMap", "api::core::v1"),
    ("v1", "ServiceAccount", "api::core::v1"),
    ("v1", "Service", "api::core::v1"),
    ("v1", "Event", "api::core::v1"),
    ("v1", "Node", "api::core::v1"),
    ("coordination.k8s.io/v1", "Lease", "api::coordination::v1"),
    ("apps/v1", "ControllerRevision", "api::apps::v1"),
    ("apps/v1", "Deployment", "api::apps::v1"),
    ("batch/v1", "Job", "api::batch::v1"),
    ("events.k8s.io/v1", "Event", "api::events::v1"),
    ("rbac.authorization.k8s.io/v1", "Role", "api::rbac::v1"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "api::rbac::v1"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "api::rbac::v1"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "api::rbac::v1"),
    ("policy/v1", "PodDisruptionBudget", "api::policy::v1"),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "api::admissionregistration::v1",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        "api::admissionregistration::v1",
    ),
];

/// Other messages decoded and encoded: (apiVersion, kind, k8s-pb module), no list.
const EXTRA: &[(&str, &str, &str)] = &[
    // client-go sends a delete's options under either group version.
    ("v1", "DeleteOptions", "apimachinery::pkg::apis::meta::v1"),
    ("meta.k8s.io/v1", "DeleteOptions", "apimachinery::pkg::apis::meta::v1"),
    // Create-only APIs that client-go's typed clients (kubectl create token, auth can-i,
    // auth whoami) call in protobuf.
    ("authentication.k8s.io/v1", "TokenRequest", "api::authentication::v1"),
    ("authentication.k8s.io/v1", "TokenReview", "api::authentication::v1"),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        "api::authentication::v1",
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "api::authorization::v1",
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "api::authorization::v1",
    ),
    (
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "api::authorization::v1",
    ),
    (
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        "api::authorization::v1",
    ),
];

/// Messages with a hand-written JSON form (`sim/src/protobuf/json.rs`).
const SPECIAL: &[&str] = &[
    "apimachinery::pkg::apis::meta::v1::Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime",
    "apimachinery::pkg::api::resource::Quantity",
    "apimachinery::pkg::util::intstr::IntOrString",
    "apimachinery::pkg::runtime::RawExtension",
    "apimachinery::pkg::apis::meta::v1::FieldsV1",
    "api::authentication::v1::ExtraValue",
    "api::authorization::v1::ExtraValue",
];

#[derive(Debug, Clone)]
struct Field {
    name: String,
    /// string | int32 | int64 | bool | double | bytes | message | map:<value kind>
    kind: String,
    repeated: bool,
    boxed: bool,
    /// Full path of the message type (messages and message-valued maps).
    ty: Option<String>,
}

fn package_dir(name: &str) -> Result<PathBuf, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .ok_or_else(|| format!("package {name} not in cargo metadata"))
}

/// `super::super::x::Y` seen from module `a::b::c` → `a::x::Y`.
fn resolve(module: &str, ty: &str) -> String {
    let mut parts: Vec<&str> = module.split("::").collect();
    let mut rest = ty;
    while let Some(r) = rest.strip_prefix("super::") {
        parts.pop();
        rest = r;
    }
    if parts.is_empty() {
        rest.to_string()
    } else {
        format!("{}::{rest}", parts.join("::"))
    }
}

/// The message type inside a field's Rust type.
fn message_type(module: &str, rust_ty: &str) -> Option<String> {
    let t = rust_ty.replace(' ', "");
    let inner = t
        .trim_start_matches("::core::option::Option<")
        .trim_start_matches("::prost::alloc::vec::Vec<")
        .trim_start_matches("::prost::alloc::boxed::Box<");
    let inner = match inner.strip_prefix("::prost::alloc::collections::BTreeMap<") {
        Some(m) => m.split_once(',').map(|(_, v)| v)?,
        None => inner,
    };
    let name = inner.trim_end_matches('>').trim_end_matches(',');
    Some(resolve(module, name))
}

/// Every struct of a k8s-pb module file.
fn parse_module(module: &str, text: &str, out: &mut BTreeMap<String, Vec<Field>>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut current: Option<(String, Vec<Field>)> = None;
    while i < lines.len() {
        let l = lines[i].trim();
        if let Some(rest) = l.strip_prefix("pub struct ") {
            if let Some(name) = rest.strip_suffix(" {") {
                current = Some((format!("{module}::{name}"), Vec::new()));
            }
        } else if l == "}" {
            if let Some((name, fields)) = current.take() {
                out.insert(name, fields);
            }
        } else if let (Some(attr), Some((_, fields))) = (l.strip_prefix("#[prost("), current.as_mut()) {
            // The declaration follows, possibly over several lines, up to the `,` closing it.
            let mut decl = String::new();
            let mut j = i + 1;
            while j < lines.len() {
                let t = lines[j].trim();
                if !t.starts_with("///") {
                    decl.push_str(t);
                    if t.ends_with(',') && decl.matches('<').count() == decl.matches('>').count() {
                        break;
                    }
                }
                j += 1;
            }
            i = j;
            let Some((fname, fty)) = decl.trim_start_matches("pub ").split_once(':') else {
                continue;
            };
            let fty = fty.trim().trim_end_matches(',');
            let kind = if let Some(m) = attr.split('"').nth(1).filter(|_| attr.starts_with("btree_map")) {
                format!("map:{}", m.split(", ").nth(1).unwrap_or(""))
            } else if attr.starts_with("bytes") {
                "bytes".into()
            } else {
                attr.split(',').next().unwrap_or("").to_string()
            };
            let is_msg = kind == "message" || kind == "map:message";
            fields.push(Field {
                name: fname.trim().to_string(),
                kind,
                repeated: attr.contains("repeated"),
                boxed: attr.contains("boxed"),
                ty: if is_msg { message_type(module, fty) } else { None },
            });
        }
        i += 1;
    }
}

fn collect(dir: &Path, module: &str, out: &mut BTreeMap<String, Vec<Field>>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            let sub = if module.is_empty() {
                name.clone()
            } else {
                format!("{module}::{name}")
            };
            collect(&p, &sub, out)?;
        } else if name == "mod.rs" && !module.is_empty() {
            let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
            parse_module(module, &text, out);
        }
    }
    Ok(())
}

fn snake(camel: &str) -> String {
    let c: Vec<char> = camel.chars().collect();
    let mut s = String::new();
    for i in 0..c.len() {
        let boundary = i > 0
            && c[i].is_uppercase()
            && (c[i - 1].is_lowercase()
                || c[i - 1].is_ascii_digit()
                || (c[i - 1].is_uppercase() && c.get(i + 1).is_some_and(|n| n.is_lowercase())));
        if boundary {
            s.push('_');
        }
        s.extend(c[i].to_lowercase());
    }
    s
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in snake.trim_start_matches("r#").chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A Go struct embedded inline (`json:",inline"`): the field has no JSON name of its own and
/// all of its type's fields are fields of the parent's JSON.
fn is_inline(f: &Field, names: &[String], structs: &BTreeMap<String, Vec<Field>>) -> bool {
    let has = |n: &str| names.iter().any(|x| norm(x) == norm(n));
    f.kind == "message"
        && !f.repeated
        && !has(&f.name)
        && f.ty
            .as_ref()
            .and_then(|t| structs.get(t))
            .is_some_and(|fields| !fields.is_empty() && fields.iter().all(|c| has(&c.name)))
}

fn norm(s: &str) -> String {
    s.trim_start_matches("r#").replace('_', "").to_lowercase()
}

/// The reader of a scalar field's JSON value.
fn scalar_get(kind: &str) -> String {
    let t = match kind {
        "string" => "s",
        "int32" => "i32",
        "int64" => "i64",
        _ => "bool",
    };
    format!("get_{t}(k, v)?")
}

/// Every entry of `go_fields.rs` names a scalar field of a generated message.
fn check_go_fields(kept: &BTreeSet<(String, String)>) -> Result<(), String> {
    for (path, keys) in go_fields::POINTERS.iter().chain(go_fields::NOT_OMITEMPTY) {
        if let Some(key) = keys.iter().find(|k| !kept.contains(&(path.to_string(), k.to_string()))) {
            return Err(format!(
                "go_fields.rs: {path}.{key} is no scalar field of a generated message"
            ));
        }
    }
    Ok(())
}

/// JSON names of a type's fields, from k8s-openapi's deserializer.
fn json_names(openapi: &Path, path: &str) -> Result<Vec<String>, String> {
    let (module, name) = path.rsplit_once("::").ok_or("bad path")?;
    let file = openapi
        .join(module.replace("::", "/"))
        .join(format!("{}.rs", snake(name)));
    if !file.exists() && name.ends_with("List") {
        // k8s-openapi has one generic List<T>.
        return Ok(vec!["metadata".into(), "items".into()]);
    }
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (lit, rest) = l.strip_prefix('"')?.split_once('"')?;
            rest.trim_start().starts_with("=> Field::Key_").then(|| lit.to_string())
        })
        .collect())
}

fn emit(
    path: &str,
    fields: &[Field],
    names: &[String],
    structs: &BTreeMap<String, Vec<Field>>,
    kept: &mut BTreeSet<(String, String)>,
    code: &mut String,
) -> Result<(), String> {
    // Fields newer than k8s-openapi's newest version: Go's lowerCamelCase of the proto name.
    let json_of = |f: &Field| -> String {
        names
            .iter()
            .find(|n| norm(n) == norm(&f.name))
            .cloned()
            .unwrap_or_else(|| camel(&f.name))
    };
    let mut to = String::new();
    let mut from = String::new();
    let mut inline = String::new();
    for f in fields {
        // A Go struct embedded inline (`json:",inline"`, e.g. LocalObjectReference): its
        // fields sit in the parent's JSON object.
        if is_inline(f, names, structs) {
            let _ = writeln!(to, "        inline(&mut o, &self.{})?;", f.name);
            let _ = writeln!(inline, "        m.{} = get_inline(v)?;", f.name);
            continue;
        }
        let key = json_of(f);
        let fname = &f.name;
        let (put, get) = match (f.kind.as_str(), f.repeated) {
            // A scalar Go keeps at zero (a pointer, or no `omitempty`): kept whenever sent.
            ("string", false) | ("int32", false) | ("int64", false) | ("bool", false)
                if go_fields::keeps_zero(path, &key) =>
            {
                kept.insert((path.to_string(), key.clone()));
                ("keep".to_string(), scalar_get(&f.kind))
            }
            (_, false) if go_fields::keeps_zero(path, &key) => {
                return Err(format!("{path}.{key}: go_fields.rs lists a {} field", f.kind))
            }
            ("string", false) => ("s".to_string(), "get_s(k, v)?".to_string()),
            ("string", true) => ("list".into(), "get_list(k, v, get_s)?".into()),
            ("int32", false) | ("int64", false) | ("bool", false) => ("n".into(), scalar_get(&f.kind)),
            ("int32", true) => ("list".into(), "get_list(k, v, get_i32)?".into()),
            ("int64", true) => ("list".into(), "get_list(k, v, get_i64)?".into()),
            ("double", false) => ("f".into(), "get_f64(k, v)?".into()),
            ("bytes", false) => ("by".into(), "get_by(k, v)?".into()),
            ("message", false) if f.boxed => ("mb".into(), "get_mb(k, v)?".into()),
            ("message", false) => ("m".into(), "get_m(k, v)?".into()),
            ("message", true) => ("ml".into(), "get_ml(k, v)?".into()),
            ("map:string", _) => ("map_s".into(), "get_map_s(k, v)?".into()),
            ("map:bytes", _) => ("map_b".into(), "get_map_b(k, v)?".into()),
            ("map:message", _) => ("map_m".into(), "get_map_m(k, v)?".into()),
            (other, r) => return Err(format!("{path}.{fname}: unsupported field kind {other} (repeated {r})")),
        };
        let fallible = matches!(put.as_str(), "m" | "mb" | "ml" | "map_m");
        let _ = writeln!(
            to,
            "        {put}(&mut o, {key:?}, &self.{fname}){};",
            if fallible { "?" } else { "" }
        );
        let _ = writeln!(from, "                {key:?} => m.{fname} = {get},");
    }
    let _ = writeln!(
        code,
        "impl Pb for pb::{path} {{\n    fn to_json(&self) -> Result<Value, String> {{\n        let mut o = Map::new();\n{to}        Ok(Value::Object(o))\n    }}\n\n    fn from_json(v: &Value) -> Result<Self, String> {{\n        let mut m = Self::default();\n{inline}        for (k, v) in obj(v, {short:?})? {{\n            let k = k.as_str();\n            match k {{\n{from}                _ => {{}}\n            }}\n        }}\n        Ok(m)\n    }}\n}}\n",
        short = path.rsplit("::").next().unwrap_or(path),
    );
    Ok(())
}

fn run() -> Result<String, String> {
    let pb_dir = package_dir("k8s-pb")?.join("src");
    let openapi = package_dir("k8s-openapi")?.join("src").join("v1_37");
    let mut structs = BTreeMap::new();
    collect(&pb_dir, "", &mut structs)?;
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut roots = Vec::new();
    for (av, kind, module) in ROOTS {
        for k in [kind.to_string(), format!("{kind}List")] {
            let path = format!("{module}::{k}");
            if !structs.contains_key(&path) {
                return Err(format!("{path} is not in k8s-pb"));
            }
            roots.push((av.to_string(), k, path.clone()));
            queue.push_back(path);
        }
    }
    for (av, kind, module) in EXTRA {
        let path = format!("{module}::{kind}");
        roots.push((av.to_string(), kind.to_string(), path.clone()));
        queue.push_back(path);
    }
    let mut seen = BTreeSet::new();
    while let Some(p) = queue.pop_front() {
        if !seen.insert(p.clone()) || SPECIAL.contains(&p.as_str()) {
            continue;
        }
        let fields = structs.get(&p).ok_or_else(|| format!("{p} is not in k8s-pb"))?;
        queue.extend(fields.iter().filter_map(|f| f.ty.clone()));
    }
    let mut code = String::from(
        "//! @generated by `make protobuf` (sim/examples/protobuf_codegen.rs) from k8s-pb's messages and\n//! k8s-openapi's JSON field names. Do not edit.\n#![allow(clippy::all)]\nuse k8s_pb as pb;\nuse serde_json::{Map, Value};\n\nuse super::json::*;\n\n",
    );
    let _ = writeln!(
        code,
        "/// (apiVersion, kind) of every object with a protobuf encoding here."
    );
    let _ = writeln!(code, "pub const KINDS: &[(&str, &str)] = &[");
    for (av, kind, _) in &roots {
        let _ = writeln!(code, "    ({av:?}, {kind:?}),");
    }
    let _ = writeln!(code, "];\n");
    let _ = writeln!(
        code,
        "/// An object's protobuf bytes (inside the `runtime.Unknown` envelope) as JSON."
    );
    let _ = writeln!(
        code,
        "pub fn decode_kind(api_version: &str, kind: &str, raw: &[u8]) -> Option<Result<Value, String>> {{"
    );
    let _ = writeln!(code, "    Some(match (api_version, kind) {{");
    for (av, kind, path) in &roots {
        let _ = writeln!(code, "        ({av:?}, {kind:?}) => decode::<pb::{path}>(raw),");
    }
    let _ = writeln!(code, "        _ => return None,\n    }})\n}}\n");
    let _ = writeln!(
        code,
        "/// An object's JSON as protobuf bytes (to go inside the `runtime.Unknown` envelope)."
    );
    let _ = writeln!(
        code,
        "pub fn encode_kind(api_version: &str, kind: &str, v: &Value) -> Option<Result<Vec<u8>, String>> {{"
    );
    let _ = writeln!(code, "    Some(match (api_version, kind) {{");
    for (av, kind, path) in &roots {
        let _ = writeln!(code, "        ({av:?}, {kind:?}) => encode::<pb::{path}>(v),");
    }
    let _ = writeln!(code, "        _ => return None,\n    }})\n}}\n");
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in seen.iter().filter(|p| !SPECIAL.contains(&p.as_str())) {
        if let Ok(n) = json_names(&openapi, p) {
            names.insert(p.clone(), n);
        }
    }
    // Types only ever embedded inline (EphemeralContainerCommon) have no k8s-openapi type of
    // their own: their fields have the names the parent's JSON gives them.
    for p in seen.iter() {
        let Some(parent) = names.get(p).cloned() else { continue };
        for f in structs[p].iter().filter(|f| is_inline(f, &parent, &structs)) {
            if let Some(t) = &f.ty {
                names.entry(t.clone()).or_insert_with(|| parent.clone());
            }
        }
    }
    let mut kept = BTreeSet::new();
    for p in seen.iter().filter(|p| !SPECIAL.contains(&p.as_str())) {
        let n = match names.get(p) {
            Some(n) => n.clone(),
            // Newer than k8s-openapi's newest version: names from the proto names.
            None => {
                eprintln!("protobuf_codegen: {p}: not in k8s-openapi, JSON names from proto names");
                Vec::new()
            }
        };
        emit(p, &structs[p], &n, &structs, &mut kept, &mut code)?;
    }
    check_go_fields(&kept)?;
    Ok(code)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => {
            print!("{code}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("protobuf_codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
