//! A type checker for rules, in the manner of cel-go's `checker`: every expression gets a type,
//! every call its matching overload ids, and what cel-go refuses to compile (an undeclared
//! reference, an undefined field, a call no overload matches) is an error at its position.
//!
//! It works on the parsed expression *before* macro expansion, so `all`/`exists`/`exists_one`/
//! `map`/`filter`/`has` are checked (and costed) as the macros they are.

use std::collections::HashMap;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SelectExpr};

use super::decl::DeclKind;
use super::types::{overloads, Bindings, Ty};

/// Comprehension macros: receiver-style calls whose first argument names the iteration variable.
pub(crate) const COMPREHENSIONS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];

/// Identifiers that name types.
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
];

pub(crate) struct Checked {
    pub(crate) types: HashMap<u64, Ty>,
    pub(crate) overloads: HashMap<u64, Vec<&'static str>>,
    pub(crate) uses_old_self: bool,
    pub(crate) result: Ty,
}

pub(crate) struct CheckError {
    pub(crate) id: u64,
    pub(crate) message: String,
}

struct Checker {
    scopes: Vec<(String, Ty)>,
    types: HashMap<u64, Ty>,
    overloads: HashMap<u64, Vec<&'static str>>,
    errors: Vec<CheckError>,
    uses_old_self: bool,
}

/// Check `expr` with the given variables (`self`, `oldSelf`).
pub(crate) fn check(expr: &IdedExpr, vars: &[(&str, Ty)]) -> Result<Checked, Vec<CheckError>> {
    let mut c = Checker {
        scopes: vars.iter().map(|(n, t)| (n.to_string(), t.clone())).collect(),
        types: HashMap::new(),
        overloads: HashMap::new(),
        errors: Vec::new(),
        uses_old_self: false,
    };
    let result = c.expr(expr);
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(Checked {
        types: c.types,
        overloads: c.overloads,
        uses_old_self: c.uses_old_self,
        result,
    })
}

/// The type both branches of a value may have: the common type, or `dyn`.
fn join(a: &Ty, b: &Ty) -> Ty {
    match (a, b) {
        (Ty::Null, t) | (t, Ty::Null) => t.clone(),
        (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(join(x, y))),
        (Ty::Map(xk, xv), Ty::Map(yk, yv)) => Ty::Map(Box::new(join(xk, yk)), Box::new(join(xv, yv))),
        (Ty::Object(x), Ty::Object(y)) if std::sync::Arc::ptr_eq(x, y) => a.clone(),
        (x, y) if std::mem::discriminant(x) == std::mem::discriminant(y) && !matches!(x, Ty::Object(_)) => x.clone(),
        _ => Ty::Dyn,
    }
}

impl Checker {
    fn error(&mut self, id: u64, message: String) -> Ty {
        self.errors.push(CheckError { id, message });
        Ty::Dyn
    }

    fn lookup(&self, name: &str) -> Option<Ty> {
        self.scopes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    }

    fn expr(&mut self, e: &IdedExpr) -> Ty {
        let t = match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => self.ident(e.id, name),
            Expr::Select(s) => self.select(e.id, s),
            Expr::Call(call) => self.call(e.id, call),
            Expr::List(l) => {
                let mut elem: Option<Ty> = None;
                for (i, item) in l.elements.iter().enumerate() {
                    let mut t = self.expr(item);
                    if l.optional_indices.contains(&i) {
                        if let Ty::Optional(inner) = t {
                            t = *inner;
                        }
                    }
                    elem = Some(match elem {
                        None => t,
                        Some(prev) => join(&prev, &t),
                    });
                }
                Ty::List(Box::new(elem.unwrap_or(Ty::Dyn)))
            }
            Expr::Map(m) => {
                let (mut key, mut val): (Option<Ty>, Option<Ty>) = (None, None);
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        let k = self.expr(&me.key);
                        let v = self.expr(&me.value);
                        key = Some(key.map_or(k.clone(), |p| join(&p, &k)));
                        val = Some(val.map_or(v.clone(), |p| join(&p, &v)));
                    }
                }
                Ty::Map(Box::new(key.unwrap_or(Ty::Dyn)), Box::new(val.unwrap_or(Ty::Dyn)))
            }
            Expr::Struct(s) => self.error(
                e.id,
                format!("undeclared reference to '{}' (in container '')", s.type_name),
            ),
            Expr::Comprehension(_) | Expr::Unspecified => Ty::Dyn,
        };
        self.types.insert(e.id, t.clone());
        t
    }

    fn ident(&mut self, id: u64, name: &str) -> Ty {
        if let Some(t) = self.lookup(name) {
            if name == "oldSelf" {
                self.uses_old_self = true;
            }
            return t;
        }
        if TYPE_NAMES.contains(&name) {
            return Ty::Type;
        }
        self.error(id, format!("undeclared reference to '{name}' (in container '')"))
    }

    fn field(&mut self, id: u64, operand: &Ty, field: &str) -> Ty {
        match operand {
            Ty::Object(decl) => match &decl.kind {
                DeclKind::Object(fields) => match fields.get(field) {
                    Some(f) => Ty::of_decl(&f.decl),
                    None => self.error(id, format!("undefined field '{field}'")),
                },
                _ => Ty::Dyn,
            },
            Ty::Map(_, v) => (**v).clone(),
            Ty::Dyn => Ty::Dyn,
            Ty::Optional(inner) => Ty::Optional(Box::new(self.field(id, inner, field))),
            other => self.error(id, format!("type '{}' does not support field selection", other.name())),
        }
    }

    fn select(&mut self, id: u64, s: &SelectExpr) -> Ty {
        let operand = self.expr(&s.operand);
        let t = self.field(id, &operand, &s.field);
        if s.test {
            Ty::Bool
        } else {
            t
        }
    }

    fn call(&mut self, id: u64, call: &CallExpr) -> Ty {
        let name = call.func_name.as_str();
        if let Some(target) = &call.target {
            if COMPREHENSIONS.contains(&name) && matches!(call.args.first().map(|a| &a.expr), Some(Expr::Ident(_))) {
                return self.comprehension(id, name, target, &call.args);
            }
            // `optional.of(x)`, `strings.quote(s)`: a namespaced global function.
            if let Expr::Ident(ns) = &target.expr {
                let qualified = format!("{ns}.{name}");
                if self.lookup(ns).is_none() && overloads(&qualified).is_some() {
                    return self.resolve(id, &qualified, None, &call.args);
                }
            }
        }
        match name {
            "has" if call.target.is_none() && call.args.len() == 1 => {
                if let Some(arg) = call.args.first() {
                    if let Expr::Select(s) = &arg.expr {
                        self.select(arg.id, s);
                        self.types.insert(arg.id, Ty::Bool);
                        return Ty::Bool;
                    }
                }
                self.error(id, "invalid argument to has() macro".into())
            }
            "_?._" if call.args.len() == 2 => {
                let operand = self.expr(&call.args[0]);
                self.expr(&call.args[1]);
                let field = match &call.args[1].expr {
                    Expr::Literal(LiteralValue::String(s)) => s.to_string(),
                    _ => return Ty::Optional(Box::new(Ty::Dyn)),
                };
                let inner = match operand {
                    Ty::Optional(inner) => *inner,
                    t => t,
                };
                match self.field(id, &inner, &field) {
                    Ty::Optional(t) => Ty::Optional(t),
                    t => Ty::Optional(Box::new(t)),
                }
            }
            _ => self.resolve(id, name, call.target.as_deref(), &call.args),
        }
    }

    fn comprehension(&mut self, id: u64, name: &str, target: &IdedExpr, args: &[IdedExpr]) -> Ty {
        let range = self.expr(target);
        let var_ty = match &range {
            Ty::List(e) => (**e).clone(),
            Ty::Map(k, _) => (**k).clone(),
            Ty::Dyn => Ty::Dyn,
            other => {
                return self.error(
                    id,
                    format!(
                        "expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)",
                        other.name()
                    ),
                )
            }
        };
        let (Some(Expr::Ident(var)), Some(var_id)) = (args.first().map(|a| &a.expr), args.first().map(|a| a.id)) else {
            return Ty::Dyn;
        };
        self.types.insert(var_id, var_ty.clone());
        self.scopes.push((var.clone(), var_ty.clone()));
        let body: Vec<Ty> = args.iter().skip(1).map(|a| self.expr(a)).collect();
        self.scopes.pop();
        let bool_arg = |t: Option<&Ty>| t.is_none_or(|t| matches!(t, Ty::Bool | Ty::Dyn));
        match name {
            "map" => {
                if body.len() == 2 && !bool_arg(body.first()) {
                    return self.error(
                        id,
                        "found no matching overload for '_?_:_' applied to '(non-bool, ...)'".into(),
                    );
                }
                Ty::List(Box::new(body.last().cloned().unwrap_or(Ty::Dyn)))
            }
            "filter" => {
                if !bool_arg(body.first()) {
                    return self.error(
                        id,
                        "found no matching overload for '_?_:_' applied to '(non-bool, ...)'".into(),
                    );
                }
                Ty::List(Box::new(var_ty))
            }
            _ => {
                if !bool_arg(body.first()) {
                    let t = body.first().map(Ty::name).unwrap_or_default();
                    return self.error(
                        id,
                        format!("found no matching overload for '_&&_' applied to '(bool, {t})'"),
                    );
                }
                Ty::Bool
            }
        }
    }

    fn resolve(&mut self, id: u64, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Ty {
        let target_ty = target.map(|t| self.expr(t));
        let arg_tys: Vec<Ty> = args.iter().map(|a| self.expr(a)).collect();
        let Some(candidates) = overloads(name) else {
            return self.error(id, format!("undeclared reference to '{name}' (in container '')"));
        };
        let mut all: Vec<&Ty> = Vec::new();
        if let Some(t) = &target_ty {
            all.push(t);
        }
        all.extend(arg_tys.iter());
        let mut ids = Vec::new();
        let mut result: Option<Ty> = None;
        for ov in candidates {
            if ov.member != target.is_some() || ov.params.len() != all.len() {
                continue;
            }
            let mut b = Bindings::default();
            if ov.params.iter().zip(all.iter()).all(|(p, t)| b.matches(*p, t)) {
                ids.push(ov.id);
                let r = b.result(ov.result);
                result = Some(match result {
                    None => r,
                    Some(prev) => join(&prev, &r),
                });
            }
        }
        match result {
            Some(r) => {
                self.overloads.insert(id, ids);
                r
            }
            None => {
                let list = arg_tys.iter().map(Ty::name).collect::<Vec<_>>().join(", ");
                let applied = match &target_ty {
                    Some(t) => format!("{}.({list})", t.name()),
                    None => format!("({list})"),
                };
                self.error(
                    id,
                    format!("found no matching overload for '{name}' applied to '{applied}'"),
                )
            }
        }
    }
}
