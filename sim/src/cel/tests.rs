//! Estimates checked against kube-apiserver's own expectations (apiextensions-apiserver
//! `schema/cel/compilation_test.go` `TestCostEstimation`: the same schemas and rules, with and
//! without bounds), compile errors, and evaluation.

use serde_json::{json, Value};

use super::compile::{compile, RuleSpec};
use super::decl::decl_of;

fn cost(schema: Value, rule: &str) -> u64 {
    let decl = decl_of(&schema, false).expect("decl");
    let c = compile(
        RuleSpec {
            rule: rule.into(),
            ..Default::default()
        },
        &decl,
        &schema,
    );
    assert!(c.error.is_none(), "{rule}: {:?}", c.error);
    c.max_cost
}

fn compile_error(schema: Value, rule: &str) -> String {
    let decl = decl_of(&schema, false).expect("decl");
    compile(
        RuleSpec {
            rule: rule.into(),
            ..Default::default()
        },
        &decl,
        &schema,
    )
    .error
    .unwrap_or_default()
}

fn prim(ty: &str) -> Value {
    match ty {
        "int-or-string" => json!({"x-kubernetes-int-or-string": true}),
        "duration" | "date" | "date-time" => json!({"type": "string", "format": ty}),
        t => json!({"type": t}),
    }
}

fn array(ty: &str, max: Option<i64>) -> Value {
    let mut a = json!({"type": "array", "items": prim(ty)});
    if let Some(m) = max {
        a["maxItems"] = json!(m);
    }
    a
}

fn map(ty: &str, max: Option<i64>) -> Value {
    let mut a = json!({"type": "object", "additionalProperties": prim(ty)});
    if let Some(m) = max {
        a["maxProperties"] = json!(m);
    }
    a
}

fn string(max: Option<i64>) -> Value {
    let mut s = json!({"type": "string"});
    if let Some(m) = max {
        s["maxLength"] = json!(m);
    }
    s
}

#[test]
fn comprehension_costs_match_kube_apiserver() {
    let cases: &[(&str, i64, u64, u64)] = &[
        ("number", 10, 4_718_591, 32),
        ("string", 20, 3_145_727, 62),
        ("boolean", 5, 1_887_437, 17),
        ("int-or-string", 10, 4_718_591, 32),
        ("duration", 5, 2_359_295, 17),
        ("date", 15, 725_936, 47),
        ("date-time", 25, 428_963, 77),
    ];
    for (ty, set, calc, with_max) in cases {
        assert_eq!(cost(array(ty, None), "self.all(x, true)"), *calc, "{ty} array");
        assert_eq!(
            cost(array(ty, Some(*set)), "self.all(x, true)"),
            *with_max,
            "{ty} array, maxItems"
        );
    }
    let maps: &[(&str, i64, u64, u64)] = &[
        ("number", 10, 1_348_169, 32),
        ("string", 3, 1_179_647, 11),
        ("boolean", 100, 943_718, 302),
        ("int-or-string", 15, 1_348_169, 47),
        ("duration", 5, 1_048_577, 17),
        ("date", 10, 524_288, 32),
        ("date-time", 25, 349_526, 77),
    ];
    for (ty, set, calc, with_max) in maps {
        assert_eq!(cost(map(ty, None), "self.all(x, true)"), *calc, "{ty} map");
        assert_eq!(
            cost(map(ty, Some(*set)), "self.all(x, true)"),
            *with_max,
            "{ty} map, maxProperties"
        );
        // kube-apiserver's test leaves this unchecked (expected 0 means "not checked"); with
        // presence tests free, `has(self.x)` costs the `self` identifier.
        assert_eq!(cost(map(ty, None), "has(self.x)"), 1, "{ty} map has");
    }
    let nested = json!({"type": "array", "items": {"type": "array", "items": {"type": "number"}}});
    assert_eq!(cost(nested, "self.all(x, true)"), 3_145_727);
    assert!(cost(array("number", None), "self.all(x, self.all(y, true))") > 10_000_000);
    assert_eq!(cost(array("number", Some(10)), "self.all(x, self.all(y, true))"), 352);
    assert_eq!(
        cost(array("number", Some(10)), "self.all(x, self.all(y, self.all(z, true)))"),
        3552
    );
    assert_eq!(cost(array("number", None), "self.all(x, x == 0.0)"), 6_291_454);
}

#[test]
fn string_and_library_costs_match_kube_apiserver() {
    let cases: &[(&str, i64, u64, u64)] = &[
        ("self.contains('test')", 10, 314_574, 5),
        ("self.startsWith('test')", 15, 2, 2),
        ("self.endsWith('test')", 30, 2, 2),
        ("size(self + \"hello\") > size(\"hello\")", 4, 314_578, 7),
        ("self.matches(\"x\")", 50, 314_574, 22),
        ("\"\".matches(\"(((((((((())))))))))[0-9]\")", 10, 7, 7),
        ("self.matches(\"\")", 100, 1, 1),
        ("self == \"x\"", 0, 2, 1),
        ("self.find('[0-9]+') == ''", 10, 629_147, 11),
        ("self.lowerAscii() == 'lower!'", 10, 314_575, 6),
    ];
    for (rule, set, calc, with_max) in cases {
        assert_eq!(cost(string(None), rule), *calc, "{rule}");
        assert_eq!(cost(string(Some(*set)), rule), *with_max, "{rule} with maxLength");
    }
    assert_eq!(cost(array("number", None), "self[1] == 0.0"), 2);
    assert_eq!(cost(array("string", None), "self[1] == self[1]"), 314_577);
    assert_eq!(cost(array("int-or-string", None), "self[0] == 5"), 3);
    assert_eq!(cost(array("boolean", None), "self[0] == false"), 2);
    assert_eq!(cost(map("integer", None), "oldSelf.size() == self.size()"), 5);
    assert_eq!(cost(map("date-time", None), "self[\"a\"] == self[\"b\"]"), 8);
    assert_eq!(cost(map("duration", None), "self[\"c\"] == self[\"d\"]"), 8);
    let strings = |max: Option<i64>| {
        let mut a = json!({"type": "array", "items": string(max)});
        if let Some(m) = max {
            a["maxItems"] = json!(m);
        }
        a
    };
    assert_eq!(cost(strings(None), "self.join(' ') == 'aa bb'"), 329_853_068_905);
    assert_eq!(cost(strings(Some(10)), "self.join(' ') == 'aa bb'"), 43);
    assert_eq!(cost(strings(None), "self.isSorted() == true"), 329_854_432_052);
    assert_eq!(cost(strings(Some(10)), "self.isSorted() == true"), 52);
    let replace = |max: Option<i64>| {
        json!({"type": "object", "properties": {
            "str": string(max), "before": string(Some(2)), "after": string(Some(4)),
        }})
    };
    let r = "self.str.replace(self.before, self.after) == 'does not matter'";
    assert_eq!(cost(replace(None), r), 629_154);
    assert_eq!(cost(replace(Some(4)), r), 12);
    let split =
        |max: Option<i64>| json!({"type": "object", "properties": {"str": string(max), "separator": string(max)}});
    assert_eq!(cost(split(None), "self.str.split(self.separator) == []"), 629_160);
    assert_eq!(cost(split(Some(10)), "self.str.split(self.separator) == []"), 22);
    let e = json!({"type": "string", "enum": ["A", "B", "C", "LongValue"]});
    assert_eq!(cost(e.clone(), "self.contains('A')"), 2);
    let mut e_max = e;
    e_max["maxLength"] = json!(1000);
    assert_eq!(cost(e_max, "self.contains('A')"), 401);
}

#[test]
fn compile_errors_use_cel_go_wording() {
    let obj = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    assert_eq!(
        compile_error(obj.clone(), "self.b == 1"),
        "compilation failed: ERROR: <input>:1:5: undefined field 'b'\n | self.b == 1\n | ....^"
    );
    assert_eq!(
        compile_error(obj.clone(), "foo == 1"),
        "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
    );
    assert!(compile_error(obj.clone(), "self.a + 'x' == 1")
        .contains("found no matching overload for '_+_' applied to '(int, string)'"));
    assert_eq!(
        compile_error(obj.clone(), "self.a"),
        "cel expression must evaluate to a bool"
    );
    assert!(compile_error(obj, "self.a ==").starts_with("compilation failed: ERROR: <input>:1:10: Syntax error:"));
}
