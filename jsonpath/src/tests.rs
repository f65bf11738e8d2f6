//! Unit tests of the parent module.
use super::*;
use serde_json::json;

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "labels": {"app.kubernetes.io/version": "1.2", "app": "web"},
            "annotations": {"a.b": "dotted"},
            "deletionTimestamp": null
        },
        "spec": {
            "replicas": 3,
            "ratio": 1.5,
            "containers": [
                {"name": "a", "image": "nginx:1", "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "busybox"}
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "False", "count": 2},
                {"type": "PodScheduled", "status": "True", "count": 5}
            ]
        }
    })
}

fn ev(expr: &str) -> Vec<Value> {
    eval(&pod(), expr).unwrap()
}

#[test]
fn simple_fields() {
    assert_eq!(ev(".spec.replicas"), vec![json!(3)]);
    assert_eq!(ev("{.spec.replicas}"), vec![json!(3)]);
    assert_eq!(ev("{.status.phase}"), vec![json!("Running")]);
    assert_eq!(ev("spec.replicas"), vec![json!(3)]);
    assert_eq!(ev("{$.status.phase}"), vec![json!("Running")]);
    assert!(ev(".spec.missing").is_empty());
    assert!(ev(".spec.missing.deeper").is_empty());
    // A present null is a result.
    assert_eq!(ev(".metadata.deletionTimestamp"), vec![Value::Null]);
    // Fields of arrays do not exist.
    assert!(ev(".spec.containers.image").is_empty());
    assert!(ev("").is_empty());
}

#[test]
fn filters() {
    assert_eq!(
        ev(r#".status.conditions[?(@.type=="Ready")].status"#),
        vec![json!("False")]
    );
    assert_eq!(
        ev(r#"{.status.conditions[?(@.type == 'Ready')].status}"#),
        vec![json!("False")]
    );
    assert_eq!(
        ev(r#".status.conditions[?(@.status!="True")].type"#),
        vec![json!("Ready")]
    );
    assert_eq!(
        ev(".status.conditions[?(@.count)].type"),
        vec![json!("Ready"), json!("PodScheduled")]
    );
    // Missing field on some elements: upstream errors ("can only compare one element").
    assert!(ev(".status.conditions[?(@.count>3)].type").is_empty());
    let obj = json!({"items": [{"n": 1}, {"n": 5}, {"n": 10}]});
    let r = eval(&obj, ".items[?(@.n>3)].n").unwrap();
    assert_eq!(r, vec![json!(5), json!(10)]);
    let r = eval(&obj, ".items[?(@.n<=5)].n").unwrap();
    assert_eq!(r, vec![json!(1), json!(5)]);
    let r = eval(&obj, ".items[?(@.n>=5)].n").unwrap();
    assert_eq!(r, vec![json!(5), json!(10)]);
    let r = eval(&obj, ".items[?(@.n<5)].n").unwrap();
    assert_eq!(r, vec![json!(1)]);
    // int vs float comparison is an error upstream → no result.
    assert!(eval(&obj, ".items[?(@.n>3.0)].n").unwrap().is_empty());
    let obj = json!({"items": [{"b": true}, {"b": false}]});
    assert_eq!(eval(&obj, ".items[?(@.b==true)]").unwrap(), vec![json!({"b": true})]);
}

#[test]
fn indices_and_slices() {
    let obj = json!({"items": [{"metadata": {"name": "x"}}, {"metadata": {"name": "y"}}, {"metadata": {"name": "z"}}]});
    assert_eq!(eval(&obj, ".items[0].metadata.name").unwrap(), vec![json!("x")]);
    assert_eq!(eval(&obj, ".items[-1].metadata.name").unwrap(), vec![json!("z")]);
    assert_eq!(
        eval(&obj, ".items[0:2].metadata.name").unwrap(),
        vec![json!("x"), json!("y")]
    );
    assert_eq!(
        eval(&obj, ".items[::2].metadata.name").unwrap(),
        vec![json!("x"), json!("z")]
    );
    assert_eq!(
        eval(&obj, ".items[1:].metadata.name").unwrap(),
        vec![json!("y"), json!("z")]
    );
    assert_eq!(
        eval(&obj, ".items[0,2].metadata.name").unwrap(),
        vec![json!("x"), json!("z")]
    );
    // Out of bounds: upstream error → empty.
    assert!(eval(&obj, ".items[5].metadata.name").unwrap().is_empty());
    assert!(eval(&obj, ".items[2:1]").unwrap().is_empty());
    assert!(eval(&obj, ".items[::0]").unwrap().is_empty());
    // Empty selection.
    assert!(eval(&obj, ".items[1:1]").unwrap().is_empty());
    // Indexing a non-array is an error → empty.
    assert!(eval(&obj, ".items[0].metadata[0]").unwrap().is_empty());
    assert_eq!(
        ev(".spec.containers[*].image"),
        vec![json!("nginx:1"), json!("busybox")]
    );
    assert_eq!(ev(".spec.containers[*].ports[*].containerPort"), vec![json!(80)]);
}

#[test]
fn escaped_dots_and_bracket_keys() {
    assert_eq!(ev(r".metadata.labels.app\.kubernetes\.io/version"), vec![json!("1.2")]);
    assert_eq!(ev(r"{.metadata.annotations.a\.b}"), vec![json!("dotted")]);
    assert_eq!(ev(".metadata['labels']['app']"), vec![json!("web")]);
    // Upstream quirk: ['a.b'] means .a.b, not the key "a.b".
    assert!(ev(".metadata.annotations['a.b']").is_empty());
    let obj = json!({"a": {"b": 1}, "a.b": 2});
    assert_eq!(eval(&obj, "{['a.b']}").unwrap(), vec![json!(1)]);
    // ... but an escaped dot inside the brackets works.
    assert_eq!(eval(&obj, r"{['a\.b']}").unwrap(), vec![json!(2)]);
}

#[test]
fn wildcard_recursive_union() {
    let obj = json!({"a": {"name": "x", "b": {"name": "y"}}, "c": [{"name": "z"}]});
    let mut r = eval(&obj, "{..name}").unwrap();
    r.sort_by_key(|v| v.to_string());
    assert_eq!(r, vec![json!("x"), json!("y"), json!("z")]);
    assert_eq!(eval(&obj, "{.a.*}").unwrap().len(), 2);
    assert_eq!(
        eval(&json!({"x": 1, "y": 2}), "{['x','y']}").unwrap(),
        vec![json!(1), json!(2)]
    );
    assert!(eval(&obj, "{.....name}").is_err());
}

#[test]
fn templates_and_range() {
    let obj = json!({"kind": "List", "items": [{"metadata": {"name": "x"}}, {"metadata": {"name": "y"}}]});
    let r = eval(&obj, "kind={.kind}").unwrap();
    assert_eq!(r, vec![json!("kind="), json!("List")]);
    let r = eval(&obj, r#"{range .items[*]}{.metadata.name}{"\n"}{end}"#).unwrap();
    assert_eq!(r, vec![json!("x"), json!("\n"), json!("y"), json!("\n")]);
    let r = eval(&obj, "{range .items[*]}[{.metadata.name}]{end}{.kind}").unwrap();
    assert_eq!(
        r,
        vec![
            json!("["),
            json!("x"),
            json!("]"),
            json!("["),
            json!("y"),
            json!("]"),
            json!("List")
        ]
    );
    let segs = eval_results(&obj, "{.kind} {.items[*].metadata.name}").unwrap();
    assert_eq!(segs.len(), 3);
    assert_eq!(segs[2], vec![json!("x"), json!("y")]);
    // Stray end / unknown identifier are runtime errors.
    assert!(matches!(eval_results(&obj, "{end}"), Err(EvalError::Runtime(_))));
    assert!(matches!(eval_results(&obj, "{.kind}{foo}"), Err(EvalError::Runtime(_))));
    assert!(eval(&obj, "{range .items[*]}{.metadata.name}").is_ok());
}

#[test]
fn parse_errors() {
    assert_eq!(eval(&pod(), "{.a").unwrap_err(), "unclosed action");
    assert_eq!(eval(&pod(), "{.a[0}").unwrap_err(), "unterminated array");
    assert_eq!(eval(&pod(), "{.a[x]}").unwrap_err(), "invalid array index x");
    assert_eq!(eval(&pod(), "{.a[?(@.x==1}").unwrap_err(), "unterminated filter");
    assert_eq!(eval(&pod(), "{.a[?(@.x==1)x}").unwrap_err(), "unclosed array expect ]");
    assert_eq!(
        eval(&pod(), "{.a | .b}").unwrap_err(),
        "unrecognized character in action: U+007C '|'"
    );
    assert_eq!(eval(&pod(), r#"{"abc}"#).unwrap_err(), "unterminated quoted string");
    assert!(validate(".spec.replicas").is_ok());
    assert!(validate("{.a").is_err());
}

#[test]
fn no_panics_on_garbage() {
    let p = pod();
    for e in [
        "{",
        "}",
        "{{}}",
        "[",
        "{[}",
        "{[?(}",
        "{[?()]}",
        "{..}",
        "{.}",
        "{@}",
        "{$}",
        "{-}",
        "{+}",
        "{1.2.3}",
        "{'}",
        "{\"\\\"}",
        "{[-]}",
        "{[:]}",
        "{[::]}",
        "{[1:2:3:4]}",
        "{[99999999999999999999]}",
        "{[?(@.a=='x\\'')]}",
        "{[?(@==)]}",
        "{.a\\}",
        "{.é}",
        "{range}",
        "{end}{end}",
        "{range .x}{range .y}{end}",
        "{[?(@.x)]}",
        "{.a[,]}",
        "{['']}",
        "{[?(==1)]}",
    ] {
        let _ = eval(&p, e);
        let _ = eval(&json!([1, 2, 3]), e);
        let _ = eval(&json!("str"), e);
        let _ = eval(&Value::Null, e);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{{}a{}}}", "['".repeat(100), "']".repeat(100));
    let _ = eval(&json!({}), &deep);
    let deep = format!("{{{}{}}}", "[?(@".repeat(200), ")]".repeat(200));
    let _ = eval(&json!({}), &deep);
    let mut e = String::from("{.a}");
    for _ in 0..100 {
        e = format!("{{['{}']}}", e.replace(['{', '}'], ""));
    }
    let _ = eval(&json!({}), &e);
}

#[test]
fn literals() {
    assert_eq!(eval(&json!({}), "{1}").unwrap(), vec![json!(1)]);
    assert_eq!(eval(&json!({}), "{1.5}").unwrap(), vec![json!(1.5)]);
    assert_eq!(eval(&json!({}), "{true}").unwrap(), vec![json!(true)]);
    assert_eq!(eval(&json!({}), r#"{"a\tb"}"#).unwrap(), vec![json!("a\tb")]);
    assert_eq!(eval(&json!({}), "{'x'}").unwrap(), vec![json!("x")]);
}

#[test]
fn text_rendering() {
    assert_eq!(to_text(&json!("s")), "s");
    assert_eq!(to_text(&json!(3)), "3");
    assert_eq!(to_text(&json!(1.5)), "1.5");
    assert_eq!(to_text(&json!(null)), "<nil>");
    assert_eq!(to_text(&json!([1, "a"])), "[1 a]");
    assert_eq!(to_text(&json!({"b": 1, "a": [true]})), "map[a:[true] b:1]");
    // Scalars go through Go's fmt.Fprint (%v): exponent form from 1e6 (not 1e21, which is
    // encoding/json's cut-off); whole numbers decode as integers and print whole.
    assert_eq!(to_text(&json!(1500000.5)), "1.5000005e+06");
    assert_eq!(to_text(&json!(999999.5)), "999999.5");
    assert_eq!(to_text(&json!(1e20)), "1e+20");
    assert_eq!(to_text(&json!(0.00001)), "1e-05");
    assert_eq!(to_text(&json!(1000000)), "1000000");
}

#[test]
fn a_template_is_parsed_as_client_go_parses_it() {
    let obj = json!({"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]});
    let t = Template::parse("{.items[*].metadata.name}").unwrap();
    assert_eq!(t.find_results(&obj).unwrap(), vec![vec![json!("a"), json!("b")]]);
    // Without braces the whole template is text, as with kubectl -o jsonpath=.
    let t = Template::parse(".items[*].metadata.name").unwrap();
    assert_eq!(
        t.find_results(&obj).unwrap(),
        vec![vec![json!(".items[*].metadata.name")]]
    );
    assert_eq!(Template::parse("{.items[*").unwrap_err(), "unterminated array");
    assert!(Template::parse("{.items[5]}").unwrap().find_results(&obj).is_err());
}
