//! Argo CD's health scripts (`config/argocd/`) run as Argo CD runs them: by a Lua 5.1
//! interpreter (Debian's `lua5.1`; Argo CD embeds gopher-lua, a Lua 5.1), with the object in the
//! global `obj`.
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const LUA: &str = "/usr/bin/lua5.1";

/// `v` as a Lua value (a table constructor for objects and arrays; null leaves the key out).
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

/// (status, message) of `script` (an Argo CD health.lua) on `obj`, run by Lua 5.1.
pub(crate) fn argocd_health(script: &str, obj: &Value) -> (String, String) {
    let path = format!("{}/config/argocd/{script}", env!("CARGO_MANIFEST_DIR"));
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(hs.status, \"\\t\", hs.message or \"\")\n",
        lua(obj),
        lua(&Value::String(path))
    );
    let text = run(&program);
    let (status, message) = text.split_once('\t').unwrap_or((text.as_str(), ""));
    (status.to_string(), message.to_string())
}

/// Run `config/argocd/<kind>/actions/<action>/action.lua` on `obj` as Argo CD does, and return
/// what it changed as a JSON merge patch (the annotations it set, `spec.paused`): what Argo CD
/// writes back.
pub(crate) fn argocd_action(kind: &str, action: &str, obj: &Value) -> Value {
    let path = format!(
        "{}/config/argocd/{kind}/actions/{action}/action.lua",
        env!("CARGO_MANIFEST_DIR")
    );
    let literal = lua(obj);
    let program = format!(
        r#"obj = {literal}
local before = {literal}
local out = dofile({path})
local function json(s) return '"' .. string.gsub(s, '(["\\])', '\\%1') .. '"' end
local was = before.metadata.annotations or {{}}
local parts = {{}}
for k, v in pairs(out.metadata.annotations or {{}}) do
  if was[k] ~= v then table.insert(parts, json(k) .. ":" .. json(v)) end
end
io.write('{{"metadata":{{"annotations":{{' .. table.concat(parts, ",") .. '}}}}')
local paused = out.spec and out.spec.paused
if paused ~= (before.spec and before.spec.paused) then
  io.write(',"spec":{{"paused":' .. tostring(paused == true) .. '}}')
end
io.write('}}')
"#,
        path = lua(&Value::String(path))
    );
    serde_json::from_str(&run(&program)).expect("the action's changes as JSON")
}

/// The actions `discovery.lua` of `kind` offers on `obj`: name → enabled.
pub(crate) fn argocd_actions(kind: &str, obj: &Value) -> std::collections::BTreeMap<String, bool> {
    let path = format!(
        "{}/config/argocd/{kind}/actions/discovery.lua",
        env!("CARGO_MANIFEST_DIR")
    );
    let program = format!(
        "obj = {}\nfor name, a in pairs(dofile({})) do io.write(name, \"\\t\", tostring(not a.disabled), \"\\n\") end\n",
        lua(obj),
        lua(&Value::String(path))
    );
    run(&program)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, e)| (n.to_string(), e == "true"))
        .collect()
}

/// Run `program` with Lua 5.1; its standard output.
fn run(program: &str) -> String {
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
    assert!(
        out.status.success(),
        "lua5.1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}
