//! Compiling one `x-kubernetes-validations` rule as apiextensions' `cel.Compile` does: parse,
//! type-check against the schema node (`self`, `oldSelf`), require a bool result, estimate the
//! cost, and the same for `messageExpression`. Error details use cel-go's wording and layout
//! (`compilation failed: ERROR: <input>:1:6: undeclared reference to 'foo' (in container '')`
//! followed by the source line and a caret).

use std::sync::Arc;

use cel::common::ast::SourceInfo;
use cel::Program;
use serde_json::Value;

use super::check::{check, CheckError, Checked};
use super::decl::Decl;
use super::types::Ty;
use super::{cost, fieldpath, library};

/// A rule as written in the schema.
#[derive(Clone, Debug, Default)]
pub(crate) struct RuleSpec {
    pub(crate) rule: String,
    pub(crate) message: String,
    pub(crate) message_expression: String,
    pub(crate) reason: Option<String>,
    pub(crate) field_path: String,
    pub(crate) optional_old_self: Option<bool>,
}

impl RuleSpec {
    pub(crate) fn from_json(v: &Value) -> RuleSpec {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        RuleSpec {
            rule: s("rule"),
            message: s("message"),
            message_expression: s("messageExpression"),
            reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
            field_path: s("fieldPath"),
            optional_old_self: v.get("optionalOldSelf").and_then(Value::as_bool),
        }
    }

    /// `ruleErrorString`: the message if there is one, else the rule.
    pub(crate) fn error_string(&self) -> &str {
        let m = self.message.trim();
        if m.is_empty() {
            self.rule.trim()
        } else {
            m
        }
    }
}

pub(crate) struct Compiled {
    pub(crate) spec: RuleSpec,
    pub(crate) program: Option<Program>,
    pub(crate) error: Option<String>,
    pub(crate) uses_old_self: bool,
    pub(crate) max_cost: u64,
    pub(crate) message_program: Option<Program>,
    pub(crate) message_error: Option<String>,
    pub(crate) message_cost: u64,
    pub(crate) field_path: Option<String>,
}

/// cel-go's error layout: position, message, the source line and a caret under the column.
fn render_error(source: &str, line: usize, col: usize, msg: &str) -> String {
    let mut out = format!("ERROR: <input>:{line}:{col}: {msg}");
    if let Some(snippet) = source.lines().nth(line.saturating_sub(1)) {
        let snippet = snippet.replace('\t', " ");
        let dots = col.saturating_sub(1).min(snippet.chars().count());
        out.push_str(&format!("\n | {snippet}\n | {}^", ".".repeat(dots)));
    }
    out
}

fn position(source: &str, offset: usize) -> (usize, usize) {
    let before: String = source.chars().take(offset).collect();
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn check_errors(source: &str, info: &SourceInfo, errors: &[CheckError]) -> String {
    errors
        .iter()
        .map(|e| {
            let offset = info.offset_for(e.id).map_or(0, |(start, _)| start as usize);
            let (line, col) = position(source, offset);
            render_error(source, line, col, &e.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse (macros unexpanded) and type-check `source`; the error is cel-go's issues text.
pub(crate) fn parse_and_check(source: &str, vars: &[(&str, Ty)]) -> Result<(cel::IdedExpr, Checked), String> {
    let (expr, info) = cel::Env::default()
        .parser()
        .parse_with_source_info(source)
        .map_err(|errs| {
            errs.errors
                .iter()
                .map(|e| {
                    let (line, col) = (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize);
                    render_error(source, line, col, &e.msg)
                })
                .collect::<Vec<_>>()
                .join("\n")
        })?;
    let checked = check(&expr, vars).map_err(|errs| check_errors(source, &info, &errs))?;
    Ok((expr, checked))
}

/// Compile `spec` for the schema node `schema` whose declaration type is `decl`.
pub(crate) fn compile(spec: RuleSpec, decl: &Arc<Decl>, schema: &Value) -> Compiled {
    let mut c = Compiled {
        spec,
        program: None,
        error: None,
        uses_old_self: false,
        max_cost: 0,
        message_program: None,
        message_error: None,
        message_cost: 0,
        field_path: None,
    };
    let rule = c.spec.rule.clone();
    if rule.trim().is_empty() {
        return c;
    }
    let self_ty = Ty::of_decl(decl);
    let old_ty = if c.spec.optional_old_self == Some(true) {
        Ty::Optional(Box::new(self_ty.clone()))
    } else {
        self_ty.clone()
    };
    let vars = [("self", self_ty), ("oldSelf", old_ty)];
    let (expr, checked) = match parse_and_check(&rule, &vars) {
        Ok(x) => x,
        Err(e) => {
            c.error = Some(format!("compilation failed: {e}"));
            return c;
        }
    };
    if !matches!(checked.result, Ty::Bool) {
        c.error = Some("cel expression must evaluate to a bool".into());
        return c;
    }
    c.uses_old_self = checked.uses_old_self;
    match library::env().compile(&rule) {
        Ok(p) => c.program = Some(p),
        Err(e) => {
            c.error = Some(format!("program instantiation failed: {e}"));
            return c;
        }
    }
    c.max_cost = cost::estimate(&expr, &checked, decl);
    let msg = c.spec.message_expression.clone();
    if !msg.is_empty() {
        match parse_and_check(&msg, &vars) {
            Err(e) => c.message_error = Some(format!("messageExpression compilation failed: {e}")),
            Ok((_, checked)) if !matches!(checked.result, Ty::String) => {
                c.message_error = Some("messageExpression must evaluate to a string".into())
            }
            Ok((mexpr, mchecked)) => match library::env().compile(&msg) {
                Ok(p) => {
                    c.message_cost = cost::estimate(&mexpr, &mchecked, decl);
                    c.message_program = Some(p);
                }
                Err(e) => c.message_error = Some(format!("messageExpression instantiation failed: {e}")),
            },
        }
    }
    if !c.spec.field_path.is_empty() {
        c.field_path = fieldpath::valid_field_path(&c.spec.field_path, schema).ok();
    }
    c
}
