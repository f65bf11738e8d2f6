//! Argo CD's resource customizations (`config/argocd/<group>/<kind>/`, in the layout of argo-cd's
//! `resource_customizations/`) run as Argo CD runs them: by a Lua 5.1 interpreter (Debian's
//! `lua5.1`; Argo CD embeds gopher-lua, a Lua 5.1) with the object in the global `obj`, in the
//! sandbox Argo CD gives scripts from `argocd-cm` and every action (argo-cd `util/lua/lua.go`:
//! the base and table libraries, and `require("os")` for a safe `os` with only `time` and `date`;
//! no global `os`, no `string`, `math` or `io`). What a script returns is read as Argo CD reads it
//! (gopher-json's encoding, `cleanReturnedObj` for action outputs, the invalid-status rule for
//! health).
//!
//! The testdata next to the scripts is captured from the API server (baton-sim or the real control
//! plane) by the tests that drive each state ([`testdata`]), normalized so it does not change from
//! run to run ([`normalize`]).
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Map, Value};

const LUA: &str = "/usr/bin/lua5.1";

/// Set to `1` to write the captured testdata instead of checking it.
pub(crate) const UPDATE_ENV: &str = "BATON_UPDATE_ARGOCD_TESTDATA";

/// The time every timestamp of captured testdata is replaced with.
pub(crate) const FIXED_TIME: &str = "2000-01-01T00:00:00Z";
/// The `metadata.resourceVersion` of captured testdata.
pub(crate) const FIXED_RESOURCE_VERSION: &str = "1";

/// `config/argocd`, the root of the customizations.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/argocd")
}

/// `v` as a Lua value (a table constructor for objects and arrays; null leaves the key out, as
/// Argo CD's decodeValue does).
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(a) => format!("{{{}}}", a.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The harness around a script: the sandbox, and gopher-json's encoding of what it returns
/// (an empty table is `[]`; a table of keys 1..n an array; of string keys an object).
const HARNESS: &str = r#"
local function encode(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v == math.floor(v) and math.abs(v) < 2^53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t == "string" then
    return '"' .. string.gsub(v, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
  end
  if t ~= "table" then error("cannot encode a " .. t) end
  local n, count, strings = #v, 0, true
  for k in pairs(v) do
    count = count + 1
    if type(k) ~= "string" then strings = false end
  end
  local parts = {}
  if count == 0 then return "[]" end
  if count == n then
    for i = 1, n do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  if not strings then error("cannot encode mixed or invalid key types") end
  for k, x in pairs(v) do table.insert(parts, encode(k) .. ":" .. encode(x)) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local safe_os = {time = os.time, date = os.date}
local env = {obj = OBJ, actionParams = {}, _VERSION = _VERSION}
for _, name in ipairs({"assert", "collectgarbage", "error", "getfenv", "getmetatable", "ipairs",
    "load", "loadstring", "module", "next", "pairs", "pcall", "print", "rawequal", "rawget",
    "rawset", "select", "setfenv", "setmetatable", "tonumber", "tostring", "type", "unpack",
    "xpcall"}) do
  env[name] = _G[name]
end
env._G = env
env.table = {}
for k, f in pairs(table) do env.table[k] = f end
env.package = {loaded = {}, preload = {}}
env.require = function(name)
  if name == "os" then return safe_os end
  error("module '" .. tostring(name) .. "' not found")
end
local chunk = assert(loadfile(SCRIPT))
setfenv(chunk, env)
-- Without Argo CD's string library a string has no methods either.
local strings = getmetatable("")
local methods = strings.__index
strings.__index = nil
local ok, result = pcall(chunk)
strings.__index = methods
if not ok then
  io.stderr:write(tostring(result))
  os.exit(2)
end
io.write(encode(result))
"#;

/// What `script` returns on `obj`, as the JSON gopher-json makes of it (`null` for nil); the
/// script's error if it fails.
pub(crate) fn run_script(script: &Path, obj: &Value) -> Result<Value, String> {
    let program = format!(
        "local OBJ = {}\nlocal SCRIPT = {}\n{HARNESS}",
        lua(obj),
        lua(&Value::String(script.display().to_string()))
    );
    let mut child = Command::new(LUA)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{LUA} (Debian's lua5.1; `make deps` installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(program.as_bytes())
        .expect("writing the program");
    let out = child.wait_with_output().expect("lua5.1 ran");
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{}: output is not JSON: {e}", script.display()))
}

/// The statuses Argo CD accepts from a health script.
const HEALTH_STATUSES: [&str; 6] = ["Unknown", "Progressing", "Healthy", "Suspended", "Degraded", "Missing"];

/// (status, message) of health script `script` on `obj`, as Argo CD's `ExecuteHealthLua` makes
/// them: nil or an empty table is no status; an unknown status is `Unknown`.
pub(crate) fn health_at(script: &Path, obj: &Value) -> Result<(String, String), String> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match run_script(script, obj)? {
        Value::Null | Value::Array(_) => Ok((String::new(), String::new())),
        v @ Value::Object(_) if HEALTH_STATUSES.contains(&text(&v, "status").as_str()) => {
            Ok((text(&v, "status"), text(&v, "message")))
        }
        Value::Object(_) => Ok(("Unknown".into(), "Lua returned an invalid health status".into())),
        other => Err(format!("{}: returned {other}, not a table", script.display())),
    }
}

/// (status, message) of `config/argocd/<script>` (a health.lua) on `obj`.
pub(crate) fn argocd_health(script: &str, obj: &Value) -> (String, String) {
    health_at(&root().join(script), obj).unwrap_or_else(|e| panic!("{e}"))
}

/// The actions `discovery` offers on `obj`, as Argo CD's `ExecuteResourceActionDiscovery` lists
/// them (`ResourceAction`s: name, disabled, and the displayName, iconClass and params a script
/// sets), by name.
pub(crate) fn discover(discovery: &Path, obj: &Value) -> Result<BTreeMap<String, Value>, String> {
    let offered = match run_script(discovery, obj)? {
        Value::Object(m) => m,
        Value::Array(a) if a.is_empty() => Map::new(),
        other => return Err(format!("{}: returned {other}, not a table", discovery.display())),
    };
    Ok(offered
        .into_iter()
        .map(|(name, v)| {
            let mut action = json!({"name": name, "disabled": false});
            if let Value::Object(fields) = v {
                for (k, f) in fields {
                    if ["disabled", "displayName", "iconClass", "params"].contains(&k.as_str()) {
                        action[k] = f;
                    }
                }
            }
            (name, action)
        })
        .collect())
}

/// The actions `discovery.lua` of `config/argocd/<kind>` offers on `obj`: name → enabled.
pub(crate) fn argocd_actions(kind: &str, obj: &Value) -> BTreeMap<String, bool> {
    let path = root().join(kind).join("actions/discovery.lua");
    discover(&path, obj)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(n, a)| (n, a["disabled"] != json!(true)))
        .collect()
}

/// The object action script `script` returns for `obj`, as Argo CD's `ExecuteResourceAction`
/// takes it (an object: the patched resource, with `cleanReturnedObj` undoing Lua's empty
/// objects turned arrays).
pub(crate) fn act_at(script: &Path, obj: &Value) -> Result<Value, String> {
    match run_script(script, obj)? {
        out @ Value::Object(_) => Ok(clean_returned(out, obj)),
        other => Err(format!(
            "{}: returned {other}, not the patched object",
            script.display()
        )),
    }
}

/// argo-cd's `cleanReturnedObj`: where `old` had an object and Lua returned an empty array, an
/// empty object.
fn clean_returned(new: Value, old: &Value) -> Value {
    match (new, old) {
        (Value::Object(n), Value::Object(o)) => Value::Object(
            n.into_iter()
                .map(|(k, v)| {
                    let v = match o.get(&k) {
                        Some(ov) => clean_returned(v, ov),
                        None => v,
                    };
                    (k, v)
                })
                .collect(),
        ),
        (Value::Array(n), Value::Object(_)) if n.is_empty() => json!({}),
        (Value::Array(n), Value::Array(o)) => Value::Array(
            n.into_iter()
                .enumerate()
                .map(|(i, v)| match o.get(i) {
                    Some(ov) => clean_returned(v, ov),
                    None => v,
                })
                .collect(),
        ),
        (n, _) => n,
    }
}

/// The JSON merge patch from `live` to `new` (RFC 7386), as Argo CD computes it to write an
/// action's output back (`jsonpatch.CreateMergePatch`).
pub(crate) fn merge_patch(live: &Value, new: &Value) -> Value {
    match (live, new) {
        (Value::Object(l), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, lv) in l {
                match n.get(k) {
                    None => {
                        patch.insert(k.clone(), Value::Null);
                    }
                    Some(nv) if nv != lv => {
                        patch.insert(k.clone(), merge_patch(lv, nv));
                    }
                    Some(_) => {}
                }
            }
            for (k, nv) in n {
                if !l.contains_key(k) {
                    patch.insert(k.clone(), nv.clone());
                }
            }
            Value::Object(patch)
        }
        (_, n) => n.clone(),
    }
}

/// Run `config/argocd/<kind>/actions/<action>/action.lua` on `obj` as Argo CD does and return
/// what Argo CD writes back: the merge patch from `obj` to the action's output.
pub(crate) fn argocd_action(kind: &str, action: &str, obj: &Value) -> Value {
    let path = root().join(kind).join("actions").join(action).join("action.lua");
    let out = act_at(&path, obj).unwrap_or_else(|e| panic!("{e}"));
    merge_patch(obj, &out)
}

/// `s` is an RFC 3339 time in UTC (`2006-01-02T15:04:05Z`, maybe with a fraction): its fraction's
/// digit count.
pub(crate) fn utc_time_fraction(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[b.len() - 1] == b'Z';
    if !shape {
        return None;
    }
    match &s[19..s.len() - 1] {
        "" => Some(0),
        f if f.starts_with('.') && f.len() > 1 && f[1..].bytes().all(|c| c.is_ascii_digit()) => Some(f.len() - 1),
        _ => None,
    }
}

/// A string of captured testdata with its volatile parts fixed: a time is [`FIXED_TIME`] (with
/// as many fraction digits, all zero); a runtime-action request as the Argo CD actions write it
/// (`<time> rv <resourceVersion>`) is `FIXED_TIME rv FIXED_RESOURCE_VERSION`.
fn fixed_string(s: &str) -> Option<String> {
    if let Some(digits) = utc_time_fraction(s) {
        let fraction = if digits == 0 {
            String::new()
        } else {
            format!(".{}", "0".repeat(digits))
        };
        return Some(format!("{}{fraction}Z", &FIXED_TIME[..19]));
    }
    let (time, rv) = s.split_once(" rv ")?;
    (utc_time_fraction(time).is_some() && !rv.is_empty() && rv.bytes().all(|c| c.is_ascii_digit()))
        .then(|| format!("{FIXED_TIME} rv {FIXED_RESOURCE_VERSION}"))
}

/// `obj` as captured testdata: what differs from run to run replaced with fixed values, so a
/// fixture changes only when what the controller writes does. `metadata.uid`, `managedFields`
/// and `selfLink` are left out; `metadata.resourceVersion` is [`FIXED_RESOURCE_VERSION`]; every
/// string that is a time (`creationTimestamp`, `lastTransitionTime`, `startedAt`, a
/// `baton.dev/restartedAt`, a CLI's request) or an Argo CD action's request is fixed
/// ([`fixed_string`]).
pub(crate) fn normalize(obj: &Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(f) = fixed_string(s) {
                    *s = f;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(m) => m.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "managedFields", "selfLink"] {
            meta.remove(k);
        }
        if meta.contains_key("resourceVersion") {
            meta.insert("resourceVersion".into(), json!(FIXED_RESOURCE_VERSION));
        }
    }
    walk(&mut obj);
    obj
}

/// The fields of a fixture the drift check compares, as `path → value`: what the scripts read,
/// and all of `status`. What is under a path of `presence_only` (`*` or `[*]` matches one
/// segment) is compared by presence, not value: what changes from run to run.
pub(crate) struct Checked {
    pub(crate) presence_only: &'static [&'static str],
}

/// `v` flattened to `path → leaf` (arrays of objects with a `type`, like conditions, by type).
fn flatten(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(x, format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                let key = x
                    .get("type")
                    .and_then(Value::as_str)
                    .map_or(i.to_string(), str::to_string);
                flatten(x, format!("{path}[{key}]"), out);
            }
        }
        leaf => {
            out.insert(path, leaf.clone());
        }
    }
}

fn segments(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in s.split('.') {
        match part.find('[') {
            Some(i) if i > 0 => {
                out.push(&part[..i]);
                out.extend(part[i..].split_inclusive(']'));
            }
            _ => out.extend(part.split_inclusive(']')),
        }
    }
    out
}

/// The part of `path` that `pattern` (`*` or `[*]` for any one segment) is a prefix of.
fn matched_prefix(pattern: &str, path: &str) -> Option<String> {
    let (p, s) = (segments(pattern), segments(path));
    let hit = p.len() <= s.len() && p.iter().zip(&s).all(|(p, s)| p == s || *p == "*" || *p == "[*]");
    hit.then(|| {
        s[..p.len()].iter().fold(String::new(), |acc, seg| {
            if acc.is_empty() || seg.starts_with('[') {
                acc + seg
            } else {
                acc + "." + seg
            }
        })
    })
}

impl Checked {
    /// The checked fields of `obj`: `metadata.generation`, the `baton.dev/` and
    /// `kubernetes.io/change-cause` annotations, `spec.paused`, and all of `status`.
    pub(crate) fn fields(&self, obj: &Value) -> BTreeMap<String, Value> {
        let mut all = BTreeMap::new();
        flatten(obj, String::new(), &mut all);
        all.into_iter()
            .filter(|(p, _)| {
                p == ".metadata.generation"
                    || p == ".spec.paused"
                    || p.starts_with(".status")
                    || p.starts_with(".metadata.annotations.baton.dev/")
                    || p == ".metadata.annotations.kubernetes.io/change-cause"
            })
            .map(|(p, v)| {
                let p = p[1..].to_string();
                match self.presence_only.iter().find_map(|pat| matched_prefix(pat, &p)) {
                    Some(prefix) => (prefix, json!("(present)")),
                    None => (p, v),
                }
            })
            .collect()
    }
}

/// Check the captured `obj` against fixture `config/argocd/<rel>`, or write it there when
/// [`UPDATE_ENV`] is `1`. The check compares [`Checked::fields`] of both and fails naming every
/// difference.
pub(crate) fn testdata(rel: &str, obj: &Value, checked: &Checked) {
    let path = root().join(rel);
    let captured = normalize(obj);
    if std::env::var(UPDATE_ENV).as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("creating testdata/");
        let yaml = serde_saphyr::to_string(&captured).expect("YAML");
        std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; capture it with {UPDATE_ENV}=1 and review it", path.display()));
    let fixture: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (want, got) = (checked.fields(&fixture), checked.fields(&captured));
    let paths: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let diffs: Vec<String> = paths
        .into_iter()
        .filter(|p| want.get(*p) != got.get(*p))
        .map(|p| format!("  {p}: fixture {:?}, captured {:?}", want.get(p), got.get(p)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{rel}: the object the controller wrote differs from the fixture the Argo CD scripts are tested \
         on:\n{}\nIf the change is intended, rerun this test with {UPDATE_ENV}=1, review the diff \
         (git diff config/argocd) and update the expectations in health_test.yaml / action_test.yaml.",
        diffs.join("\n")
    );
}

/// Capture `live` as the input of action `action` of `config/argocd/<kind>` (fixture
/// `actions/testdata/<input>.yaml`) and the action's output on it (`<output>.yaml`).
pub(crate) fn action_testdata(kind: &str, action: &str, input: &str, output: &str, live: &Value, checked: &Checked) {
    let normalized = normalize(live);
    let script = root().join(kind).join("actions").join(action).join("action.lua");
    let out = act_at(&script, &normalized).unwrap_or_else(|e| panic!("{e}"));
    testdata(&format!("{kind}/actions/testdata/{input}.yaml"), &normalized, checked);
    testdata(&format!("{kind}/actions/testdata/{output}.yaml"), &out, checked);
}
