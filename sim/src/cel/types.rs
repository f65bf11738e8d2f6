//! The CEL types the checker infers, and the overloads of the functions and operators the
//! simulator supports (cel-go's standard library, its strings extension, Kubernetes' list and
//! regex libraries and optional values), with cel-go's overload ids: the cost estimator keys on
//! them as cel-go's does.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::decl::{Decl, DeclKind};

#[derive(Clone, Debug)]
pub(crate) enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    Type,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// A schema object with declared properties.
    Object(Arc<Decl>),
    Optional(Box<Ty>),
}

impl Ty {
    pub(crate) fn of_decl(d: &Arc<Decl>) -> Ty {
        match &d.kind {
            DeclKind::Object(_) => Ty::Object(Arc::clone(d)),
            DeclKind::List(e) => Ty::List(Box::new(Ty::of_decl(e))),
            DeclKind::Map(e) => Ty::Map(Box::new(Ty::String), Box::new(Ty::of_decl(e))),
            DeclKind::String => Ty::String,
            DeclKind::Bytes => Ty::Bytes,
            DeclKind::Int => Ty::Int,
            DeclKind::Double => Ty::Double,
            DeclKind::Bool => Ty::Bool,
            DeclKind::IntOrString => Ty::Dyn,
            DeclKind::Timestamp => Ty::Timestamp,
            DeclKind::Duration => Ty::Duration,
        }
    }

    /// cel-go's name of the type, as its checker messages print it.
    pub(crate) fn name(&self) -> String {
        match self {
            Ty::Dyn => "dyn".into(),
            Ty::Null => "null_type".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Duration => "google.protobuf.Duration".into(),
            Ty::Timestamp => "google.protobuf.Timestamp".into(),
            Ty::Type => "type".into(),
            Ty::List(e) => format!("list({})", e.name()),
            Ty::Map(k, v) => format!("map({}, {})", k.name(), v.name()),
            Ty::Object(_) => "object".into(),
            Ty::Optional(t) => format!("optional_type({})", t.name()),
        }
    }

    pub(crate) fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    pub(crate) fn is_string_or_bytes(&self) -> bool {
        matches!(self, Ty::String | Ty::Bytes)
    }

    /// A value of a constant size (cel-go `isScalar`).
    pub(crate) fn is_scalar(&self) -> bool {
        match self {
            Ty::Bool | Ty::Double | Ty::Duration | Ty::Int | Ty::Timestamp | Ty::Uint => true,
            Ty::Optional(t) => t.is_scalar(),
            _ => false,
        }
    }
}

/// A parameter or result pattern of an overload; `A`/`B` are type parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Pat {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    Type,
    A,
    B,
    ListA,
    ListString,
    MapAB,
    OptA,
    OptB,
}

#[derive(Debug)]
pub(crate) struct Overload {
    pub(crate) id: &'static str,
    pub(crate) member: bool,
    pub(crate) params: Vec<Pat>,
    pub(crate) result: Pat,
}

#[derive(Default, Clone)]
pub(crate) struct Bindings {
    a: Option<Ty>,
    b: Option<Ty>,
}

/// Can values of `x` and `y` be the same type parameter?
fn compatible(x: &Ty, y: &Ty) -> bool {
    match (x, y) {
        (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
        (Ty::List(a), Ty::List(b)) => compatible(a, b),
        (Ty::Map(ak, av), Ty::Map(bk, bv)) => compatible(ak, bk) && compatible(av, bv),
        (Ty::Optional(a), Ty::Optional(b)) => compatible(a, b),
        (Ty::Object(_), Ty::Object(_)) => true,
        _ => std::mem::discriminant(x) == std::mem::discriminant(y),
    }
}

fn bind(slot: &mut Option<Ty>, t: &Ty) -> bool {
    match slot {
        None => {
            *slot = Some(t.clone());
            true
        }
        Some(bound) => {
            if !compatible(bound, t) {
                return false;
            }
            if matches!(bound, Ty::Null) {
                *slot = Some(t.clone());
            }
            true
        }
    }
}

fn prim(p: Pat) -> Option<Ty> {
    Some(match p {
        Pat::Bool => Ty::Bool,
        Pat::Int => Ty::Int,
        Pat::Uint => Ty::Uint,
        Pat::Double => Ty::Double,
        Pat::String => Ty::String,
        Pat::Bytes => Ty::Bytes,
        Pat::Duration => Ty::Duration,
        Pat::Timestamp => Ty::Timestamp,
        Pat::Type => Ty::Type,
        _ => return None,
    })
}

impl Bindings {
    pub(crate) fn matches(&mut self, p: Pat, t: &Ty) -> bool {
        if t.is_dyn() {
            return match p {
                Pat::A => bind(&mut self.a, t),
                Pat::B => bind(&mut self.b, t),
                _ => true,
            };
        }
        match (p, t) {
            (Pat::Dyn, _) => true,
            (Pat::A, _) => bind(&mut self.a, t),
            (Pat::B, _) => bind(&mut self.b, t),
            (Pat::ListA, Ty::List(e)) => bind(&mut self.a, e),
            (Pat::ListString, Ty::List(e)) => matches!(**e, Ty::String | Ty::Dyn),
            (Pat::MapAB, Ty::Map(k, v)) => bind(&mut self.a, k) && bind(&mut self.b, v),
            (Pat::OptA, Ty::Optional(e)) => bind(&mut self.a, e),
            (Pat::OptB, Ty::Optional(e)) => bind(&mut self.b, e),
            (p, t) => prim(p).is_some_and(|pt| std::mem::discriminant(&pt) == std::mem::discriminant(t)),
        }
    }

    pub(crate) fn result(&self, p: Pat) -> Ty {
        let a = || self.a.clone().unwrap_or(Ty::Dyn);
        let b = || self.b.clone().unwrap_or(Ty::Dyn);
        match p {
            Pat::Dyn => Ty::Dyn,
            Pat::A => a(),
            Pat::B => b(),
            Pat::ListA => Ty::List(Box::new(a())),
            Pat::ListString => Ty::List(Box::new(Ty::String)),
            Pat::MapAB => Ty::Map(Box::new(a()), Box::new(b())),
            Pat::OptA => Ty::Optional(Box::new(a())),
            Pat::OptB => Ty::Optional(Box::new(b())),
            p => prim(p).unwrap_or(Ty::Dyn),
        }
    }
}

fn o(id: &'static str, member: bool, params: &[Pat], result: Pat) -> Overload {
    Overload {
        id,
        member,
        params: params.to_vec(),
        result,
    }
}

fn arithmetic(t: &mut HashMap<&'static str, Vec<Overload>>) {
    use Pat::*;
    t.insert(
        "_+_",
        vec![
            o("add_int64", false, &[Int, Int], Int),
            o("add_uint64", false, &[Uint, Uint], Uint),
            o("add_double", false, &[Double, Double], Double),
            o("add_string", false, &[String, String], String),
            o("add_bytes", false, &[Bytes, Bytes], Bytes),
            o("add_list", false, &[ListA, ListA], ListA),
            o("add_timestamp_duration", false, &[Timestamp, Duration], Timestamp),
            o("add_duration_timestamp", false, &[Duration, Timestamp], Timestamp),
            o("add_duration_duration", false, &[Duration, Duration], Duration),
        ],
    );
    t.insert(
        "_-_",
        vec![
            o("subtract_int64", false, &[Int, Int], Int),
            o("subtract_uint64", false, &[Uint, Uint], Uint),
            o("subtract_double", false, &[Double, Double], Double),
            o("subtract_timestamp_timestamp", false, &[Timestamp, Timestamp], Duration),
            o("subtract_timestamp_duration", false, &[Timestamp, Duration], Timestamp),
            o("subtract_duration_duration", false, &[Duration, Duration], Duration),
        ],
    );
    for (op, name) in [("_*_", "multiply"), ("_/_", "divide")] {
        t.insert(
            op,
            vec![
                o(leak(format!("{name}_int64")), false, &[Int, Int], Int),
                o(leak(format!("{name}_uint64")), false, &[Uint, Uint], Uint),
                o(leak(format!("{name}_double")), false, &[Double, Double], Double),
            ],
        );
    }
    t.insert(
        "_%_",
        vec![
            o("modulo_int64", false, &[Int, Int], Int),
            o("modulo_uint64", false, &[Uint, Uint], Uint),
        ],
    );
    t.insert(
        "-_",
        vec![
            o("negate_int64", false, &[Int], Int),
            o("negate_double", false, &[Double], Double),
        ],
    );
}

/// Overload ids are built once, for the life of the process.
fn leak(s: std::string::String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn comparisons(t: &mut HashMap<&'static str, Vec<Overload>>) {
    use Pat::*;
    let kinds: [(&str, Pat); 8] = [
        ("bool", Bool),
        ("int64", Int),
        ("uint64", Uint),
        ("double", Double),
        ("string", String),
        ("bytes", Bytes),
        ("timestamp", Timestamp),
        ("duration", Duration),
    ];
    let cross: [(&str, Pat, &str, Pat); 6] = [
        ("int64", Int, "double", Double),
        ("int64", Int, "uint64", Uint),
        ("uint64", Uint, "double", Double),
        ("uint64", Uint, "int64", Int),
        ("double", Double, "int64", Int),
        ("double", Double, "uint64", Uint),
    ];
    for (op, name) in [
        ("_<_", "less"),
        ("_<=_", "less_equals"),
        ("_>_", "greater"),
        ("_>=_", "greater_equals"),
    ] {
        let mut list: Vec<Overload> = kinds
            .iter()
            .map(|(k, p)| o(leak(format!("{name}_{k}")), false, &[*p, *p], Bool))
            .collect();
        list.extend(
            cross
                .iter()
                .map(|(ka, pa, kb, pb)| o(leak(format!("{name}_{ka}_{kb}")), false, &[*pa, *pb], Bool)),
        );
        t.insert(op, list);
    }
    t.insert("_==_", vec![o("equals", false, &[A, A], Bool)]);
    t.insert("_!=_", vec![o("not_equals", false, &[A, A], Bool)]);
    t.insert("!_", vec![o("logical_not", false, &[Bool], Bool)]);
    t.insert("_&&_", vec![o("logical_and", false, &[Bool, Bool], Bool)]);
    t.insert("_||_", vec![o("logical_or", false, &[Bool, Bool], Bool)]);
    t.insert("_?_:_", vec![o("conditional", false, &[Bool, A, A], A)]);
    t.insert(
        "@in",
        vec![
            o("in_list", false, &[A, ListA], Bool),
            o("in_map", false, &[A, MapAB], Bool),
        ],
    );
    t.insert(
        "_[_]",
        vec![
            o("index_list", false, &[ListA, Int], A),
            o("index_map", false, &[MapAB, A], B),
        ],
    );
    t.insert(
        "_[?_]",
        vec![
            o("list_optindex_optional_int", false, &[ListA, Int], OptA),
            o("map_optindex_optional_value", false, &[MapAB, A], OptB),
        ],
    );
}

fn conversions(t: &mut HashMap<&'static str, Vec<Overload>>) {
    use Pat::*;
    t.insert(
        "size",
        vec![
            o("size_string", false, &[String], Int),
            o("size_bytes", false, &[Bytes], Int),
            o("size_list", false, &[ListA], Int),
            o("size_map", false, &[MapAB], Int),
            o("string_size", true, &[String], Int),
            o("bytes_size", true, &[Bytes], Int),
            o("list_size", true, &[ListA], Int),
            o("map_size", true, &[MapAB], Int),
        ],
    );
    t.insert("type", vec![o("type", false, &[A], Type)]);
    t.insert("dyn", vec![o("to_dyn", false, &[A], Dyn)]);
    t.insert(
        "int",
        vec![
            o("int64_to_int64", false, &[Int], Int),
            o("uint64_to_int64", false, &[Uint], Int),
            o("double_to_int64", false, &[Double], Int),
            o("string_to_int64", false, &[String], Int),
            o("timestamp_to_int64", false, &[Timestamp], Int),
        ],
    );
    t.insert(
        "uint",
        vec![
            o("uint64_to_uint64", false, &[Uint], Uint),
            o("int64_to_uint64", false, &[Int], Uint),
            o("double_to_uint64", false, &[Double], Uint),
            o("string_to_uint64", false, &[String], Uint),
        ],
    );
    t.insert(
        "double",
        vec![
            o("double_to_double", false, &[Double], Double),
            o("int64_to_double", false, &[Int], Double),
            o("uint64_to_double", false, &[Uint], Double),
            o("string_to_double", false, &[String], Double),
        ],
    );
    t.insert(
        "string",
        vec![
            o("string_to_string", false, &[String], String),
            o("int64_to_string", false, &[Int], String),
            o("uint64_to_string", false, &[Uint], String),
            o("double_to_string", false, &[Double], String),
            o("bool_to_string", false, &[Bool], String),
            o("bytes_to_string", false, &[Bytes], String),
            o("timestamp_to_string", false, &[Timestamp], String),
            o("duration_to_string", false, &[Duration], String),
        ],
    );
    t.insert(
        "bytes",
        vec![
            o("bytes_to_bytes", false, &[Bytes], Bytes),
            o("string_to_bytes", false, &[String], Bytes),
        ],
    );
    t.insert(
        "bool",
        vec![
            o("bool_to_bool", false, &[Bool], Bool),
            o("string_to_bool", false, &[String], Bool),
        ],
    );
    t.insert("duration", vec![o("string_to_duration", false, &[String], Duration)]);
    t.insert(
        "timestamp",
        vec![
            o("string_to_timestamp", false, &[String], Timestamp),
            o("int64_to_timestamp", false, &[Int], Timestamp),
        ],
    );
}

fn strings(t: &mut HashMap<&'static str, Vec<Overload>>) {
    use Pat::*;
    t.insert(
        "matches",
        vec![
            o("matches", false, &[String, String], Bool),
            o("matches_string", true, &[String, String], Bool),
        ],
    );
    t.insert("contains", vec![o("contains_string", true, &[String, String], Bool)]);
    t.insert(
        "startsWith",
        vec![o("starts_with_string", true, &[String, String], Bool)],
    );
    t.insert("endsWith", vec![o("ends_with_string", true, &[String, String], Bool)]);
    t.insert("charAt", vec![o("string_char_at_int", true, &[String, Int], String)]);
    for name in ["indexOf", "lastIndexOf"] {
        t.insert(
            name,
            vec![
                o(leak(format!("string_{name}_string")), true, &[String, String], Int),
                o(
                    leak(format!("string_{name}_string_int")),
                    true,
                    &[String, String, Int],
                    Int,
                ),
                // Kubernetes' list library
                o(leak(format!("list_a_{name}")), true, &[ListA, A], Int),
            ],
        );
    }
    for name in ["lowerAscii", "upperAscii", "trim", "reverse"] {
        t.insert(name, vec![o(leak(format!("string_{name}")), true, &[String], String)]);
    }
    t.insert(
        "replace",
        vec![
            o("string_replace_string_string", true, &[String, String, String], String),
            o(
                "string_replace_string_string_int",
                true,
                &[String, String, String, Int],
                String,
            ),
        ],
    );
    t.insert(
        "split",
        vec![
            o("string_split_string", true, &[String, String], ListString),
            o("string_split_string_int", true, &[String, String, Int], ListString),
        ],
    );
    t.insert(
        "substring",
        vec![
            o("string_substring_int", true, &[String, Int], String),
            o("string_substring_int_int", true, &[String, Int, Int], String),
        ],
    );
    t.insert(
        "join",
        vec![
            o("list_join", true, &[ListString], String),
            o("list_join_string", true, &[ListString, String], String),
        ],
    );
    t.insert("strings.quote", vec![o("strings_quote", false, &[String], String)]);
    // Kubernetes' regex library
    t.insert("find", vec![o("string_find_string", true, &[String, String], String)]);
    t.insert(
        "findAll",
        vec![
            o("string_find_all_string", true, &[String, String], ListString),
            o("string_find_all_string_int", true, &[String, String, Int], ListString),
        ],
    );
}

fn lists_and_optionals(t: &mut HashMap<&'static str, Vec<Overload>>) {
    use Pat::*;
    t.insert("isSorted", vec![o("list_a_is_sorted", true, &[ListA], Bool)]);
    for name in ["sum", "min", "max"] {
        t.insert(name, vec![o(leak(format!("list_a_{name}")), true, &[ListA], A)]);
    }
    t.insert("optional.of", vec![o("optional_of", false, &[A], OptA)]);
    t.insert(
        "optional.ofNonZeroValue",
        vec![o("optional_ofNonZeroValue", false, &[A], OptA)],
    );
    t.insert("optional.none", vec![o("optional_none", false, &[], OptA)]);
    t.insert("hasValue", vec![o("optional_hasValue", true, &[OptA], Bool)]);
    t.insert("value", vec![o("optional_value", true, &[OptA], A)]);
    t.insert("orValue", vec![o("optional_orValue_value", true, &[OptA, A], A)]);
    t.insert("or", vec![o("optional_or_optional", true, &[OptA, OptA], OptA)]);
}

/// Every overload of `name`, or `None` when the function is not declared.
pub(crate) fn overloads(name: &str) -> Option<&'static [Overload]> {
    static TABLE: OnceLock<HashMap<&'static str, Vec<Overload>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        arithmetic(&mut t);
        comparisons(&mut t);
        conversions(&mut t);
        strings(&mut t);
        lists_and_optionals(&mut t);
        t
    });
    table.get(name).map(Vec::as_slice)
}
