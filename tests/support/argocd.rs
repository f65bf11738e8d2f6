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
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, message) = text.split_once('\t').unwrap_or((text.as_str(), ""));
    (status.to_string(), message.to_string())
}
