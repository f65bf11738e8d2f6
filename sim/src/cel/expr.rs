//! CEL expressions over dynamically typed variables, as admission policies use them
//! (`object`, `oldObject`, `request`, `variables`, ...): parsed and type-checked once (undeclared
//! names and wrong result types are compile errors, in cel-go's words), evaluated with the
//! same runtime library as CRD rules against plain JSON values.

use std::sync::Arc;

use cel::{Context, Program, Value};
use serde_json::Value as Json;

use super::compile::parse_and_check;
use super::types::Ty;
use super::{library, validator, value};

/// What an expression must evaluate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Bool,
    String,
    Any,
}

/// A compiled expression.
pub struct DynExpr {
    pub source: String,
    program: Program,
}

impl std::fmt::Debug for DynExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynExpr({:?})", self.source)
    }
}

/// Compile `source` with `vars` declared (as `dyn`); Err is kube-apiserver's message
/// (`compilation failed: ERROR: <input>:1:1: undeclared reference to 'x' ...`).
pub fn compile_dyn(source: &str, vars: &[&str], expect: Expect) -> Result<DynExpr, String> {
    let decls: Vec<(&str, Ty)> = vars.iter().map(|v| (*v, Ty::Dyn)).collect();
    let (_, checked) = parse_and_check(source, &decls).map_err(|e| format!("compilation failed: {e}"))?;
    match (expect, &checked.result) {
        (Expect::Bool, Ty::Bool | Ty::Dyn) | (Expect::String, Ty::String | Ty::Dyn) | (Expect::Any, _) => {}
        (Expect::Bool, _) => return Err("cel expression must evaluate to a bool".into()),
        (Expect::String, _) => return Err("must evaluate to string".into()),
    }
    let program = library::env()
        .compile(source)
        .map_err(|e| format!("program instantiation failed: {e}"))?;
    Ok(DynExpr {
        source: source.to_string(),
        program,
    })
}

impl DynExpr {
    /// Evaluate with `vars` bound; Err is cel-go's wording of the evaluation error.
    pub fn eval(&self, vars: &[(&str, Value)]) -> Result<Value, String> {
        let mut ctx = Context::with_env(library::env());
        for (name, v) in vars {
            ctx.add_variable_from_value(*name, v.clone());
        }
        self.program.execute(&ctx).map_err(|e| validator::eval_error(&e))
    }
}

/// JSON as a CEL value (objects are maps; no schema).
pub fn json_value(v: &Json) -> Value {
    value::plain(v)
}

/// A CEL map from string keys.
pub fn map_value(entries: Vec<(String, Value)>) -> Value {
    let m: std::collections::HashMap<cel::objects::Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (cel::objects::Key::String(Arc::new(k)), v))
        .collect();
    Value::Map(cel::objects::Map { map: Arc::new(m) })
}
