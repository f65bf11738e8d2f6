//! The CEL environment rules run in: cel-rust's standard library and strings extension, plus
//! Kubernetes' list library (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`) and regex
//! library (`find`, `findAll`), implemented here as `k8s.io/apiserver/pkg/cel/library` defines
//! them.

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use cel::common::types::{INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, Value};

/// The shared environment (functions only; variables are bound per evaluation).
pub(crate) fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(build().unwrap_or_else(|_| Env::stdlib()))))
}

fn build() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        last_index_of,
    )?;
    env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find)?;
    env.add_member_overload("findAll", "string_find_all", STRING_TYPE, vec![STRING_TYPE], find_all)?;
    env.add_member_overload(
        "findAll",
        "string_find_all_n",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all_n,
    )?;
    Ok(env)
}

fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

fn out<'b, 'v>(v: Value) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let boxed: Box<dyn Val> = Box::<dyn Val>::try_from(v)?;
    Ok(CowVal::from(boxed))
}

fn list(v: &Value, function: &str) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(Arc::clone(l)),
        other => Err(ExecutionError::no_such_member_overload(
            function,
            vec![format!("{:?}", other.type_of())],
        )),
    }
}

fn compare(a: &Value, b: &Value, function: &str) -> Result<Ordering, ExecutionError> {
    let comparable = matches!(
        (a, b),
        (Value::Int(_), Value::Int(_))
            | (Value::UInt(_), Value::UInt(_))
            | (Value::Float(_), Value::Float(_))
            | (Value::String(_), Value::String(_))
            | (Value::Bytes(_), Value::Bytes(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Timestamp(_), Value::Timestamp(_))
            | (Value::Duration(_), Value::Duration(_))
    );
    match a.partial_cmp(b) {
        Some(o) if comparable => Ok(o),
        _ => Err(ExecutionError::no_such_overload(
            function,
            vec![a.type_of().to_string(), b.type_of().to_string()],
        )),
    }
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let a = values(&args)?;
    let l = list(&a[0], "isSorted")?;
    for pair in l.windows(2) {
        if compare(&pair[0], &pair[1], "isSorted")? == Ordering::Greater {
            return out(Value::Bool(false));
        }
    }
    out(Value::Bool(true))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let a = values(&args)?;
    let l = list(&a[0], "sum")?;
    let mut it = l.iter();
    let Some(first) = it.next() else {
        return out(Value::Int(0));
    };
    let mut acc = first.clone();
    for v in it {
        acc = (acc + v.clone())?;
    }
    out(acc)
}

fn extreme<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    want: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let a = values(&args)?;
    let l = list(&a[0], function)?;
    let mut it = l.iter();
    let Some(first) = it.next() else {
        return Err(ExecutionError::function_error(
            function,
            format!("{function} called on empty list"),
        ));
    };
    let mut best = first.clone();
    for v in it {
        if compare(v, &best, function)? == want {
            best = v.clone();
        }
    }
    out(best)
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme(args, "min", Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme(args, "max", Ordering::Greater)
}

fn position<'b, 'v>(args: Vec<CowVal<'b, 'v>>, function: &str, last: bool) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let a = values(&args)?;
    let l = list(&a[0], function)?;
    let needle = a.get(1).cloned().unwrap_or(Value::Null);
    let found = if last {
        l.iter().rposition(|v| *v == needle)
    } else {
        l.iter().position(|v| *v == needle)
    };
    out(Value::Int(found.map_or(-1, |i| i as i64)))
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    position(args, "indexOf", false)
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    position(args, "lastIndexOf", true)
}

fn regex_args(args: &[CowVal<'_, '_>], function: &str) -> Result<(String, regex::Regex), ExecutionError> {
    let a = values(args)?;
    let (Some(Value::String(s)), Some(Value::String(re))) = (a.first(), a.get(1)) else {
        return Err(ExecutionError::no_such_member_overload(function, vec![]));
    };
    let re = regex::Regex::new(re).map_err(|e| ExecutionError::function_error(function, e.to_string()))?;
    Ok((s.to_string(), re))
}

fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, re) = regex_args(&args, "find")?;
    out(Value::from(
        re.find(&s).map(|m| m.as_str().to_string()).unwrap_or_default(),
    ))
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, re) = regex_args(&args, "findAll")?;
    let all: Vec<Value> = re.find_iter(&s).map(|m| Value::from(m.as_str())).collect();
    out(Value::List(Arc::new(all)))
}

fn find_all_n<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let n = match args.get(2).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::Int(n))) => n,
        _ => -1,
    };
    let (s, re) = regex_args(&args, "findAll")?;
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let all: Vec<Value> = re.find_iter(&s).take(limit).map(|m| Value::from(m.as_str())).collect();
    out(Value::List(Arc::new(all)))
}
