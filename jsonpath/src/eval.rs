//! JSONPath evaluation: a port of `k8s.io/client-go/util/jsonpath/jsonpath.go`, on serde_json
//! values.

use serde_json::Value;
use std::borrow::Cow;

use super::ast::{Node, Param};
use super::compare::{cmp_equal, cmp_less};
use super::to_text;

type Vals<'a> = Vec<Cow<'a, Value>>;

/// Execute root-level nodes (`FindResults`), handling `{range ...}{end}` blocks.
pub(super) fn exec_nodes(nodes: &[Node], data: &Value, out: &mut Vec<Vec<Value>>) -> Result<(), String> {
    let mut i = 0;
    while i < nodes.len() {
        let node = &nodes[i];
        if let Node::List(list) = node {
            if let Some(Node::Identifier(id)) = list.first() {
                if id == "range" {
                    let results = eval_list(vec![Cow::Borrowed(data)], &list[1..])?;
                    let end =
                        find_matching_end(nodes, i + 1).ok_or_else(|| "not in range, nothing to end".to_string())?;
                    let body = &nodes[i + 1..end];
                    let owned: Vec<Value> = results.into_iter().map(Cow::into_owned).collect();
                    for v in &owned {
                        exec_nodes(body, v, out)?;
                    }
                    if owned.is_empty() {
                        // Upstream quirk: nodes after `{end}` only run inside the last iteration.
                        return Ok(());
                    }
                    i = end + 1;
                    continue;
                }
                if id == "end" && list.len() == 1 {
                    return Err("not in range, nothing to end".to_string());
                }
            }
        }
        let results = walk(vec![Cow::Borrowed(data)], node)?;
        out.push(results.into_iter().map(Cow::into_owned).collect());
        i += 1;
    }
    Ok(())
}

fn is_marker(node: &Node, name: &str) -> bool {
    matches!(node, Node::List(l) if matches!(l.first(), Some(Node::Identifier(id)) if id == name))
}

fn find_matching_end(nodes: &[Node], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, n) in nodes.iter().enumerate().skip(from) {
        if is_marker(n, "range") {
            depth += 1;
        } else if is_marker(n, "end") {
            if depth == 0 {
                return Some(j);
            }
            depth -= 1;
        }
    }
    None
}

fn walk<'a>(input: Vals<'a>, node: &Node) -> Result<Vals<'a>, String> {
    match node {
        Node::List(nodes) => eval_list(input, nodes),
        Node::Text(t) => Ok(vec![Cow::Owned(Value::String(t.clone()))]),
        Node::Field(name) => Ok(eval_field(input, name)),
        Node::Array(params) => eval_array(input, params),
        Node::Filter { left, right, op } => eval_filter(input, left, right, op),
        Node::Int(i) => Ok(input.iter().map(|_| Cow::Owned(Value::from(*i))).collect()),
        Node::Float(f) => Ok(input
            .iter()
            .map(|_| {
                Cow::Owned(
                    serde_json::Number::from_f64(*f)
                        .map(Value::Number)
                        .unwrap_or(Value::Null),
                )
            })
            .collect()),
        Node::Bool(b) => Ok(input.iter().map(|_| Cow::Owned(Value::Bool(*b))).collect()),
        Node::Wildcard => Ok(eval_wildcard(input)),
        Node::Recursive => Ok(eval_recursive(input)),
        Node::Union(lists) => {
            let mut out = Vec::new();
            for l in lists {
                out.extend(eval_list(input.clone(), l)?);
            }
            Ok(out)
        }
        Node::Identifier(name) => match name.as_str() {
            // `range` passes its input through; `end` outside of a range block is an error.
            "range" => Ok(input),
            "end" => Err("not in range, nothing to end".to_string()),
            _ => Err(format!("unrecognized identifier {name}")),
        },
    }
}

fn eval_list<'a>(input: Vals<'a>, nodes: &[Node]) -> Result<Vals<'a>, String> {
    let mut cur = input;
    for n in nodes {
        cur = walk(cur, n)?;
    }
    Ok(cur)
}

/// Child accessor preserving borrowedness.
fn child<'a>(v: &Cow<'a, Value>, f: impl Fn(&Value) -> Option<&Value>) -> Option<Cow<'a, Value>> {
    match v {
        Cow::Borrowed(r) => f(r).map(Cow::Borrowed),
        Cow::Owned(o) => f(o).map(|c| Cow::Owned(c.clone())),
    }
}

fn children<'a>(v: &Cow<'a, Value>) -> Vals<'a> {
    match &**v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            keys.iter().filter_map(|k| child(v, |x| x.get(k.as_str()))).collect()
        }
        Value::Array(a) => (0..a.len()).filter_map(|i| child(v, |x| x.get(i))).collect(),
        // Go indexes strings byte-wise (yielding uint8 values).
        Value::String(s) => s.bytes().map(|b| Cow::Owned(Value::from(u64::from(b)))).collect(),
        _ => Vec::new(),
    }
}

fn eval_field<'a>(input: Vals<'a>, name: &str) -> Vals<'a> {
    input
        .iter()
        .filter_map(|v| match &**v {
            Value::Object(_) => child(v, |x| x.get(name)),
            _ => None,
        })
        .collect()
}

fn eval_wildcard(input: Vals<'_>) -> Vals<'_> {
    input.iter().flat_map(children).collect()
}

fn eval_recursive(input: Vals<'_>) -> Vals<'_> {
    let mut result = Vec::new();
    for v in input {
        if v.is_null() {
            continue;
        }
        let kids = children(&v);
        if !kids.is_empty() {
            result.push(v);
            result.extend(eval_recursive(kids));
        }
    }
    result
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn eval_array<'a>(input: Vals<'a>, params: &[Param; 3]) -> Result<Vals<'a>, String> {
    let mut result = Vec::new();
    for v in &input {
        if v.is_null() {
            continue;
        }
        let Value::Array(arr) = &**v else {
            return Err(format!("{} is not array or slice", go_type_name(v)));
        };
        let len = arr.len() as i64;
        let mut p = *params;
        if !p[0].known {
            p[0].value = 0;
        }
        if p[0].value < 0 {
            p[0].value = p[0].value.saturating_add(len);
        }
        if !p[1].known {
            p[1].value = len;
        }
        if p[1].value < 0 || (p[1].value == 0 && p[1].derived) {
            p[1].value = p[1].value.saturating_add(len);
        }
        if p[1].value != p[0].value {
            if p[0].value >= len || p[0].value < 0 {
                return Err(format!(
                    "array index out of bounds: index {}, length {}",
                    p[0].value, len
                ));
            }
            if p[1].value > len || p[1].value < 0 {
                return Err(format!(
                    "array index out of bounds: index {}, length {}",
                    p[1].value.saturating_sub(1),
                    len
                ));
            }
            if p[0].value > p[1].value {
                return Err(format!(
                    "starting index {} is greater than ending index {}",
                    p[0].value, p[1].value
                ));
            }
        } else {
            // Upstream returns immediately here (dropping any remaining inputs).
            return Ok(result);
        }
        let mut step = 1usize;
        if p[2].known {
            if p[2].value <= 0 {
                return Err("step must be > 0".to_string());
            }
            step = usize::try_from(p[2].value).unwrap_or(usize::MAX);
        }
        let (start, end) = (p[0].value as usize, p[1].value as usize);
        for i in (start..end).step_by(step) {
            if let Some(c) = child(v, |x| x.get(i)) {
                result.push(c);
            }
        }
    }
    Ok(result)
}

fn eval_filter<'a>(input: Vals<'a>, left: &[Node], right: &[Node], op: &str) -> Result<Vals<'a>, String> {
    let mut results = Vec::new();
    for v in &input {
        let Value::Array(arr) = &**v else {
            return Err(format!("{} is not array or slice and cannot be filtered", to_text(v)));
        };
        for i in 0..arr.len() {
            let Some(item) = child(v, |x| x.get(i)) else {
                continue;
            };
            let lefts = eval_list(vec![item.clone()], left);
            if op == "exists" {
                if lefts.as_ref().is_ok_and(|l| !l.is_empty()) {
                    results.push(item);
                }
                continue;
            }
            let lefts = lefts?;
            if lefts.len() != 1 {
                return Err("can only compare one element at a time".to_string());
            }
            let rights = eval_list(vec![item.clone()], right)?;
            if rights.len() != 1 {
                return Err("can only compare one element at a time".to_string());
            }
            let (l, r) = (&*lefts[0], &*rights[0]);
            let pass = match op {
                "<" => cmp_less(l, r)?,
                ">" => !(cmp_less(l, r)? || cmp_equal(l, r)?),
                "==" => cmp_equal(l, r)?,
                "!=" => !cmp_equal(l, r)?,
                "<=" => cmp_less(l, r)? || cmp_equal(l, r)?,
                ">=" => !cmp_less(l, r)?,
                _ => return Err(format!("unrecognized filter operator {op}")),
            };
            if pass {
                results.push(item);
            }
        }
    }
    Ok(results)
}
