//! Static cost estimation of a rule, ported from cel-go's `checker/cost.go` with Kubernetes'
//! `library.CostEstimator` (function costs) and apiextensions' `sizeEstimator` (sizes from the
//! schema, looked up by field path from the rule's node).
//!
//! The estimator walks the expression before macro expansion and charges each macro what
//! cel-go's expansion of it costs (`all`: 3 + cost(predicate) per element, `exists`: 4 + …,
//! `exists_one`: 2 + …, `map`: 12 + cost(transform), `filter`: 13 + cost(predicate)).

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

use super::check::{Checked, COMPREHENSIONS};
use super::decl::{Decl, DeclKind};
use super::types::Ty;

mod overload;

use overload::overload_cost;

/// cel-go `common.StringTraversalCostFactor` and `RegexStringLengthCostFactor`.
const STRING_TRAVERSAL: f64 = 0.1;
const REGEX_STRING_LENGTH: f64 = 0.25;
const LIST_CREATE_BASE: u64 = 10;
const MAP_CREATE_BASE: u64 = 30;
const STRUCT_CREATE_BASE: u64 = 40;
/// Kubernetes' base environment keeps `has()` free (`checker.PresenceTestHasCost(false)`); the
/// operand is still charged.
const PRESENCE_TEST: u64 = 0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Est {
    pub(crate) min: u64,
    pub(crate) max: u64,
}

const UNKNOWN: Est = Est { min: 0, max: u64::MAX };

fn fixed(v: u64) -> Est {
    Est { min: v, max: v }
}

fn factor(x: u64, y: f64) -> u64 {
    let xf = x as f64;
    if xf > 0.0 && y > 0.0 && xf > u64::MAX as f64 / y {
        return u64::MAX;
    }
    let c = (xf * y).ceil();
    if c >= 18_446_744_073_709_551_616.0 {
        u64::MAX
    } else {
        c as u64
    }
}

impl Est {
    fn add(self, o: Est) -> Est {
        Est {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }
    fn mul(self, o: Est) -> Est {
        Est {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }
    fn by(self, f: f64) -> Est {
        Est {
            min: factor(self.min, f),
            max: factor(self.max, f),
        }
    }
    fn union(self, o: Est) -> Est {
        Est {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Container {
    List,
    Map,
}

#[derive(Clone, Copy)]
struct Entry {
    container: Container,
    key: Est,
    val: Est,
}

fn union_entry(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
    let (a, b) = (a?, b?);
    Some(Entry {
        container: a.container,
        key: a.key.union(b.key),
        val: a.val.union(b.val),
    })
}

#[derive(Clone)]
struct Local {
    path: Vec<String>,
    size: Option<Est>,
    entry: Option<Entry>,
}

struct Coster<'a> {
    checked: &'a Checked,
    root: &'a Arc<Decl>,
    paths: HashMap<u64, Vec<String>>,
    sizes: HashMap<u64, Est>,
    entries: HashMap<u64, Entry>,
    locals: HashMap<String, Vec<Local>>,
}

/// The estimated maximum cost of `expr`, checked against a rule at schema node `root`.
pub(crate) fn estimate(expr: &IdedExpr, checked: &Checked, root: &Arc<Decl>) -> u64 {
    let mut c = Coster {
        checked,
        root,
        paths: HashMap::new(),
        sizes: HashMap::new(),
        entries: HashMap::new(),
        locals: HashMap::new(),
    };
    c.cost(expr).max
}

/// What the estimator knows of an argument or target: its type, path and size.
struct Node {
    ty: Ty,
    path: Vec<String>,
    size: Option<Est>,
}

impl Coster<'_> {
    fn ty(&self, e: &IdedExpr) -> Ty {
        self.checked.types.get(&e.id).cloned().unwrap_or(Ty::Dyn)
    }

    fn local(&self, name: &str) -> Option<&Local> {
        self.locals.get(name).and_then(|v| v.last())
    }

    fn path(&self, e: &IdedExpr) -> Vec<String> {
        if let Expr::Ident(name) = &e.expr {
            if let Some(l) = self.local(name) {
                return l.path.clone();
            }
        }
        self.paths.get(&e.id).cloned().unwrap_or_default()
    }

    /// apiextensions' `sizeEstimator`: walk the rule's declaration type along the path, whatever
    /// variable the path starts with.
    fn estimate_size(&self, path: &[String]) -> Option<Est> {
        if path.is_empty() {
            return None;
        }
        let mut node: &Arc<Decl> = self.root;
        for name in &path[1..] {
            node = match (name.as_str(), &node.kind) {
                ("@items" | "@values", DeclKind::List(e) | DeclKind::Map(e)) => e,
                ("@keys", DeclKind::Map(_)) => return Some(fixed(0)),
                (_, DeclKind::Object(fields)) => &fields.get(name)?.decl,
                _ => return None,
            };
        }
        Some(Est {
            min: 0,
            max: u64::try_from(node.max_elements).unwrap_or(0),
        })
    }

    fn compute_size(&self, e: &IdedExpr) -> Option<Est> {
        if let Some(s) = self.sizes.get(&e.id) {
            return Some(*s);
        }
        let literal = match &e.expr {
            Expr::Literal(LiteralValue::String(s)) => Some(s.inner().chars().count() as u64),
            Expr::Literal(LiteralValue::Bytes(b)) => Some(b.inner().len() as u64),
            Expr::Literal(_) => Some(1),
            Expr::List(l) => Some(l.elements.len() as u64),
            Expr::Map(m) => Some(m.entries.len() as u64),
            _ => None,
        };
        if let Some(n) = literal {
            return Some(fixed(n));
        }
        if let Some(s) = self.estimate_size(&self.path(e)) {
            return Some(s);
        }
        if self.ty(e).is_scalar() {
            return Some(fixed(1));
        }
        if let Expr::Ident(name) = &e.expr {
            return self.local(name).and_then(|l| l.size);
        }
        None
    }

    fn size_or_unknown(&self, e: &IdedExpr) -> Est {
        self.compute_size(e).unwrap_or(UNKNOWN)
    }

    fn entry(&self, e: &IdedExpr) -> Option<Entry> {
        if let Some(en) = self.entries.get(&e.id) {
            return Some(*en);
        }
        if let Expr::Ident(name) = &e.expr {
            return self.local(name).and_then(|l| l.entry);
        }
        None
    }

    fn node(&self, e: &IdedExpr) -> Node {
        Node {
            ty: self.ty(e),
            path: self.path(e),
            size: self.compute_size(e),
        }
    }

    /// Kubernetes' `sizeEstimate`: the computed size, else the schema's, else unknown.
    fn k8s_size(&self, n: &Node) -> Est {
        n.size.or_else(|| self.estimate_size(&n.path)).unwrap_or(UNKNOWN)
    }

    fn cost(&mut self, e: &IdedExpr) -> Est {
        match &e.expr {
            Expr::Literal(_) => fixed(0),
            Expr::Ident(name) => {
                let path = match self.local(name) {
                    Some(l) => l.path.clone(),
                    None => vec![name.clone()],
                };
                self.paths.insert(e.id, path);
                fixed(1)
            }
            Expr::Select(s) => {
                if s.test {
                    return fixed(PRESENCE_TEST).add(self.cost(&s.operand));
                }
                let mut sum = self.cost(&s.operand);
                if matches!(self.ty(&s.operand), Ty::Map(..) | Ty::Object(_)) {
                    sum = sum.add(fixed(1));
                }
                let mut path = self.path(&s.operand);
                path.push(s.field.clone());
                self.paths.insert(e.id, path);
                sum
            }
            Expr::Call(call) => self.cost_call(e, call),
            Expr::List(l) => {
                let mut sum = fixed(0);
                let mut item = if l.elements.is_empty() {
                    fixed(0)
                } else {
                    Est { min: u64::MAX, max: 0 }
                };
                for el in &l.elements {
                    sum = sum.add(self.cost(el));
                    item = item.union(self.size_or_unknown(el));
                }
                self.entries.insert(
                    e.id,
                    Entry {
                        container: Container::List,
                        key: fixed(1),
                        val: item,
                    },
                );
                sum.add(fixed(LIST_CREATE_BASE))
            }
            Expr::Map(m) => {
                let mut sum = fixed(0);
                let empty = m.entries.is_empty();
                let start = if empty { fixed(0) } else { Est { min: u64::MAX, max: 0 } };
                let (mut key, mut val) = (start, start);
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        sum = sum.add(self.cost(&me.key)).add(self.cost(&me.value));
                        key = key.union(self.size_or_unknown(&me.key));
                        val = val.union(self.size_or_unknown(&me.value));
                    }
                }
                self.entries.insert(
                    e.id,
                    Entry {
                        container: Container::Map,
                        key,
                        val,
                    },
                );
                sum.add(fixed(MAP_CREATE_BASE))
            }
            Expr::Struct(s) => {
                let mut sum = fixed(STRUCT_CREATE_BASE);
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        sum = sum.add(self.cost(&f.value));
                    }
                }
                sum
            }
            Expr::Comprehension(_) | Expr::Unspecified => fixed(0),
        }
    }

    fn cost_call(&mut self, e: &IdedExpr, call: &CallExpr) -> Est {
        let name = call.func_name.as_str();
        if let Some(target) = &call.target {
            if COMPREHENSIONS.contains(&name) && matches!(call.args.first().map(|a| &a.expr), Some(Expr::Ident(_))) {
                return self.comprehension(e, name, target, &call.args);
            }
        }
        if name == "has" && call.target.is_none() {
            if let Some(Expr::Select(s)) = call.args.first().map(|a| &a.expr) {
                return fixed(PRESENCE_TEST).add(self.cost(&s.operand));
            }
        }
        if name == "dyn" && call.args.len() == 1 {
            let arg = &call.args[0];
            let c = fixed(1).add(self.cost(arg));
            if let Some(s) = self.compute_size(arg) {
                self.sizes.insert(e.id, s);
            }
            if let Some(en) = self.entry(arg) {
                self.entries.insert(e.id, en);
            }
            return c;
        }
        let arg_costs: Vec<Est> = call.args.iter().map(|a| self.cost(a)).collect();
        let args: Vec<Node> = call.args.iter().map(|a| self.node(a)).collect();
        let Some(ids) = self.checked.overloads.get(&e.id).cloned() else {
            return fixed(0);
        };
        let mut sum = fixed(0);
        // A namespaced global function (`optional.none()`) has no receiver.
        let member = call.target.as_deref().filter(|t| {
            !matches!(&t.expr, Expr::Ident(ns) if self.local(ns).is_none() && !self.checked.types.contains_key(&t.id))
        });
        let target = match member {
            Some(t) => {
                sum = sum.add(self.cost(t));
                Some(self.node(t))
            }
            None => None,
        };
        let mut fn_cost = Est { min: u64::MAX, max: 0 };
        let mut result: Option<Est> = None;
        for id in &ids {
            let (c, size) = self.function_cost(e, call, name, id, target.as_ref(), &args, &arg_costs);
            fn_cost = fn_cost.union(c);
            if let Some(s) = size {
                result = Some(result.map_or(s, |r| r.union(s)));
            }
            if matches!(*id, "index_list" | "index_map") {
                if let Some(a0) = call.args.first() {
                    result = self.entry(a0).map(|en| en.val);
                    let mut p = self.path(a0);
                    p.push(if *id == "index_list" { "@items" } else { "@values" }.to_string());
                    self.paths.insert(e.id, p);
                }
            }
            if result.is_none() {
                result = self.compute_size(e);
            }
        }
        if let Some(r) = result {
            self.sizes.insert(e.id, r);
        }
        sum.add(fn_cost)
    }

    /// cel-go's macro expansion, costed as `costComprehension` costs it.
    fn comprehension(&mut self, e: &IdedExpr, name: &str, range: &IdedExpr, args: &[IdedExpr]) -> Est {
        let mut sum = self.cost(range);
        let Some(Expr::Ident(var)) = args.first().map(|a| &a.expr) else {
            return sum;
        };
        // pushIterSingle
        let entry = self.entry(range);
        let is_list = match entry {
            Some(en) => en.container == Container::List,
            None => matches!(self.ty(range), Ty::List(_)),
        };
        let mut path = self.path(range);
        path.push(if is_list { "@items" } else { "@keys" }.to_string());
        let size = entry.map(|en| if is_list { en.val } else { en.key });
        self.locals.entry(var.clone()).or_default().push(Local {
            path,
            size,
            entry: None,
        });
        let body: Vec<Est> = args.iter().skip(1).map(|a| self.cost(a)).collect();
        let var_size = self.compute_size(&args[0]);
        if let Some(v) = self.locals.get_mut(var) {
            v.pop();
        }
        let p = body.first().copied().unwrap_or(fixed(0));
        let last = body.last().copied().unwrap_or(fixed(0));
        let range_cnt = self.size_or_unknown(range);
        // (init + result, per-element loop condition + step)
        let (fixed_cost, per_elem) = match name {
            "all" => (
                fixed(1),
                Est {
                    min: 3,
                    max: p.max.saturating_add(3),
                },
            ),
            "exists" => (
                fixed(1),
                Est {
                    min: 4,
                    max: p.max.saturating_add(4),
                },
            ),
            "exists_one" => (
                fixed(2),
                Est {
                    min: p.min.saturating_add(1),
                    max: p.max.saturating_add(2),
                },
            ),
            "map" if body.len() == 2 => (
                fixed(LIST_CREATE_BASE + 1),
                Est {
                    min: p.min.saturating_add(1),
                    max: p.max.saturating_add(12).saturating_add(last.max),
                },
            ),
            "map" => (fixed(LIST_CREATE_BASE + 1), fixed(12).add(last)),
            _ => (
                fixed(LIST_CREATE_BASE + 1),
                Est {
                    min: p.min.saturating_add(1),
                    max: p.max.saturating_add(13),
                },
            ),
        };
        sum = sum.add(fixed_cost).add(range_cnt.mul(per_elem));
        match name {
            "map" | "filter" => {
                self.sizes.insert(e.id, range_cnt);
                let item = if name == "map" {
                    args.last().map(|a| self.size_or_unknown(a)).unwrap_or(UNKNOWN)
                } else {
                    var_size.unwrap_or(UNKNOWN)
                };
                self.entries.insert(
                    e.id,
                    Entry {
                        container: Container::List,
                        key: fixed(1),
                        val: fixed(0).union(item),
                    },
                );
            }
            _ => {
                self.sizes.insert(e.id, fixed(1));
            }
        }
        sum
    }

    #[allow(clippy::too_many_arguments)]
    fn function_cost(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        function: &str,
        id: &str,
        target: Option<&Node>,
        args: &[Node],
        arg_costs: &[Est],
    ) -> (Est, Option<Est>) {
        let arg_sum = arg_costs.iter().fold(fixed(0), |s, c| s.add(*c));
        if let Some((c, size)) = self.k8s_call_cost(function, call, target, args) {
            return (c.add(arg_sum), size);
        }
        if let Some(r) = self.joining_cost(e, call, id, args, arg_costs, arg_sum) {
            return r;
        }
        overload_cost(id, target, args, arg_costs, arg_sum).unwrap_or((fixed(1).add(arg_sum), None))
    }

    /// The cost and size of the overloads whose result joins two operands (`?:` and `+` of
    /// strings, bytes and lists), which also carry the operands' map/list entries over.
    fn joining_cost(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        id: &str,
        args: &[Node],
        arg_costs: &[Est],
        arg_sum: Est,
    ) -> Option<(Est, Option<Est>)> {
        let size_of = |n: &Node| n.size.unwrap_or(UNKNOWN);
        match id {
            "conditional" => {
                let size = size_of(&args[1]).union(size_of(&args[2]));
                if let Some(en) = union_entry(self.entry(&call.args[1]), self.entry(&call.args[2])) {
                    self.entries.insert(e.id, en);
                }
                Some((arg_costs[0].add(arg_costs[1].union(arg_costs[2])), Some(size)))
            }
            "add_string" | "add_bytes" | "add_list" if args.len() == 2 => {
                let size = size_of(&args[0]).add(size_of(&args[1]));
                if let Some(en) = union_entry(self.entry(&call.args[0]), self.entry(&call.args[1])) {
                    self.entries.insert(e.id, en);
                }
                let c = if id == "add_list" {
                    fixed(1).add(arg_sum)
                } else {
                    size.by(STRING_TRAVERSAL).add(arg_sum)
                };
                Some((c, Some(size)))
            }
            _ => None,
        }
    }

    /// The element node of a list (`listElementNode`).
    fn element(&self, list: &Node) -> Option<Node> {
        let ty = match &list.ty {
            Ty::List(e) => (**e).clone(),
            Ty::Map(k, _) => (**k).clone(),
            Ty::Optional(t) => (**t).clone(),
            _ => return None,
        };
        let path = if list.path.is_empty() {
            Vec::new()
        } else {
            let mut p = list.path.clone();
            p.push("@items".into());
            p
        };
        Some(Node { ty, path, size: None })
    }

    /// Kubernetes' `library.CostEstimator.EstimateCallCost` for the functions it prices.
    fn k8s_call_cost(
        &self,
        function: &str,
        call: &CallExpr,
        target: Option<&Node>,
        args: &[Node],
    ) -> Option<(Est, Option<Est>)> {
        let t = target?;
        let sz = self.k8s_size(t);
        match function {
            "isSorted" | "sum" | "max" | "min" | "indexOf" | "lastIndexOf" => match self.element(t) {
                Some(el) => {
                    let mut el_cost = fixed(1);
                    if el.ty.is_string_or_bytes() {
                        el_cost = el_cost.add(self.k8s_size(&el).by(STRING_TRAVERSAL));
                    }
                    Some((sz.mul(el_cost), None))
                }
                None => Some((sz.by(STRING_TRAVERSAL), None)),
            },
            "lowerAscii" | "upperAscii" | "substring" | "trim" => Some((sz.by(STRING_TRAVERSAL), Some(sz))),
            "replace" if args.len() >= 2 => {
                let (from, with) = (self.k8s_size(&args[0]), self.k8s_size(&args[1]));
                Some((sz.by(2.0 * STRING_TRAVERSAL), Some(replace_size(sz, from, with))))
            }
            "split" => {
                let mut max = sz.max;
                if let Some(Expr::Literal(LiteralValue::Int(n))) = call.args.get(1).map(|a| &a.expr) {
                    max = *n.inner() as u64;
                }
                Some((sz.by(2.0 * STRING_TRAVERSAL), Some(Est { min: 0, max })))
            }
            "join" => {
                let mut size = fixed(0);
                if let Some(el) = self.element(t) {
                    size = sz.mul(self.k8s_size(&el));
                }
                if let Some(sep) = args.first() {
                    let seps = Est {
                        min: sz.min.saturating_sub(1),
                        max: sz.max.saturating_sub(1),
                    };
                    size = size.add(self.k8s_size(sep).mul(seps));
                }
                Some((size.by(STRING_TRAVERSAL), Some(size)))
            }
            "find" | "findAll" if !args.is_empty() => {
                let s = sz.add(fixed(1)).by(STRING_TRAVERSAL);
                let r = self.k8s_size(&args[0]).by(REGEX_STRING_LENGTH);
                Some((s.mul(r), Some(Est { min: 0, max: sz.max })))
            }
            _ => None,
        }
    }
}

/// The result size of `s.replace(from, with)`: each bound from the string's same bound and the
/// opposite bound of `from` (the shortest `from` makes the most replacements).
fn replace_size(sz: Est, from: Est, with: Est) -> Est {
    let (max_count, max_retained) = replacements(sz.max, from.min, with.max <= from.min);
    let (min_count, min_retained) = replacements(sz.min, from.max, from.max <= with.min);
    let count = Est {
        min: min_count,
        max: max_count,
    };
    let retained = Est {
        min: min_retained,
        max: max_retained,
    };
    count.mul(with).add(retained)
}

/// One bound of a replace: how many replacements a string of `size` takes with a `from` of
/// `from_size`, and how much of the string is counted as retained. A `from` that is no shorter
/// than the replacement (`not_shorter`) bounds the result by the string's own size.
fn replacements(size: u64, from_size: u64, not_shorter: bool) -> (u64, u64) {
    if from_size == 0 {
        (size.saturating_add(1), size)
    } else if not_shorter {
        (0, size)
    } else {
        ((size as f64 / from_size as f64).ceil() as u64, 0)
    }
}
