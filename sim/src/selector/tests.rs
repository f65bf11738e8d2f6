//! Unit tests of the parent module.
use super::validation::go_quote;
use super::*;
use serde_json::json;
use std::collections::BTreeMap;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn parse_basic_forms() {
    let s = LabelSelector::parse("a=b").unwrap();
    assert_eq!(s.to_string(), "a=b");
    assert!(s.matches(&labels(&[("a", "b")])));
    assert!(!s.matches(&labels(&[("a", "c")])));
    assert!(!s.matches(&labels(&[])));

    let s = LabelSelector::parse("a==b").unwrap();
    assert_eq!(s.requirements()[0].op, Operator::DoubleEquals);
    assert_eq!(s.to_string(), "a==b");
    assert!(s.matches(&labels(&[("a", "b")])));

    let s = LabelSelector::parse("a!=b").unwrap();
    assert!(s.matches(&labels(&[])));
    assert!(s.matches(&labels(&[("a", "c")])));
    assert!(!s.matches(&labels(&[("a", "b")])));

    let s = LabelSelector::parse("env in (prod, staging)").unwrap();
    assert_eq!(s.to_string(), "env in (prod,staging)");
    assert!(s.matches(&labels(&[("env", "staging")])));
    assert!(!s.matches(&labels(&[("env", "dev")])));
    assert!(!s.matches(&labels(&[])));

    let s = LabelSelector::parse("env notin (prod)").unwrap();
    assert!(s.matches(&labels(&[])));
    assert!(s.matches(&labels(&[("env", "dev")])));
    assert!(!s.matches(&labels(&[("env", "prod")])));

    let s = LabelSelector::parse("a").unwrap();
    assert_eq!(s.requirements()[0].op, Operator::Exists);
    assert!(s.matches(&labels(&[("a", "")])));
    assert!(!s.matches(&labels(&[("b", "")])));

    let s = LabelSelector::parse("!a").unwrap();
    assert_eq!(s.to_string(), "!a");
    assert!(!s.matches(&labels(&[("a", "")])));
    assert!(s.matches(&labels(&[("b", "")])));

    let s = LabelSelector::parse("  x > 1 , y<10").unwrap();
    assert_eq!(s.to_string(), "x>1,y<10");
    assert!(s.matches(&labels(&[("x", "2"), ("y", "9")])));
    assert!(!s.matches(&labels(&[("x", "1"), ("y", "9")])));
    assert!(!s.matches(&labels(&[("x", "abc"), ("y", "9")])));
}

#[test]
fn parse_sorts_by_key_and_values() {
    let s = LabelSelector::parse("z=1,a in (y,x,x),!m").unwrap();
    assert_eq!(s.to_string(), "a in (x,y),!m,z=1");
    assert_eq!(s.requirements()[0].values, vec!["x", "y"]);
}

#[test]
fn parse_empty_and_whitespace() {
    assert!(LabelSelector::parse("").unwrap().is_empty());
    assert!(LabelSelector::parse("   ").unwrap().is_empty());
    assert!(LabelSelector::parse("").unwrap().matches(&labels(&[("a", "b")])));
    assert!(!LabelSelector::parse("a").unwrap().is_empty());
}

#[test]
fn parse_empty_values() {
    // "x in (foo,,baz),y,z notin ()" from the Go doc comment.
    let s = LabelSelector::parse("x in (foo,,baz),y,z notin ()").unwrap();
    assert_eq!(s.requirements()[0].values, vec!["", "baz", "foo"]);
    assert_eq!(s.requirements()[2].values, vec![""]);
    let s = LabelSelector::parse("a=").unwrap();
    assert_eq!(s.requirements()[0].values, vec![""]);
    assert!(s.matches(&labels(&[("a", "")])));
    let s = LabelSelector::parse("a=,b=c").unwrap();
    assert_eq!(s.to_string(), "a=,b=c");
    let s = LabelSelector::parse("x in (,a)").unwrap();
    assert_eq!(s.requirements()[0].values, vec!["", "a"]);
}

#[test]
fn keywords_as_keys_and_values() {
    let s = LabelSelector::parse("in in (in,notin)").unwrap();
    assert_eq!(s.requirements()[0].key, "in");
    assert_eq!(s.requirements()[0].values, vec!["in", "notin"]);
    let s = LabelSelector::parse("notin=in").unwrap();
    assert!(s.matches(&labels(&[("notin", "in")])));
}

#[test]
fn prefixed_keys() {
    let s = LabelSelector::parse("app.kubernetes.io/name=web").unwrap();
    assert!(s.matches(&labels(&[("app.kubernetes.io/name", "web")])));
    assert!(is_valid_label_key("example.com/My_Name-1.x"));
    assert!(!is_valid_label_key("Example.com/x"));
    assert!(!is_valid_label_key("a/b/c"));
    assert!(!is_valid_label_key(&"a".repeat(64)));
    assert!(is_valid_label_key(&"a".repeat(63)));
    assert!(is_valid_label_value(""));
    assert!(!is_valid_label_value("-a"));
}

#[test]
fn parse_errors() {
    let e = LabelSelector::parse("a=b c").unwrap_err();
    assert_eq!(e, "found 'c', expected: ',' or 'end of string'");

    let e = LabelSelector::parse("a,").unwrap_err();
    assert_eq!(e, "found '', expected: identifier after ','");

    let e = LabelSelector::parse("=a").unwrap_err();
    assert_eq!(e, "found '=', expected: !, identifier, or 'end of string'");

    let e = LabelSelector::parse("!").unwrap_err();
    assert_eq!(e, "unable to parse requirement: found '', expected: identifier");

    let e = LabelSelector::parse("a in b").unwrap_err();
    assert_eq!(e, "unable to parse requirement: found 'b' expected: '('");

    let e = LabelSelector::parse("a in (b").unwrap_err();
    assert_eq!(e, "unable to parse requirement: found '', expected: ',' or ')'");

    let e = LabelSelector::parse("a in (b c)").unwrap_err();
    assert_eq!(e, "unable to parse requirement: found 'c', expected: ',' or ')'");

    let e = LabelSelector::parse("a in (=)").unwrap_err();
    assert_eq!(
        e,
        "unable to parse requirement: found '=', expected: ',', ')' or identifier"
    );

    let e = LabelSelector::parse("a b").unwrap_err();
    assert_eq!(
        e,
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );

    let e = LabelSelector::parse("a=(").unwrap_err();
    assert_eq!(e, "unable to parse requirement: found '(', expected: identifier");

    let e = LabelSelector::parse("a>b").unwrap_err();
    assert_eq!(
            e,
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
}

#[test]
fn validation_errors() {
    let e = LabelSelector::parse("-a=b").unwrap_err();
    assert_eq!(
            e,
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
    let long = "a".repeat(64);
    let e = LabelSelector::parse(&long).unwrap_err();
    assert!(e.contains("name part must be no more than 63 characters"), "{e}");

    let e = LabelSelector::parse("a=-b").unwrap_err();
    assert_eq!(
            e,
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
    let e = LabelSelector::parse("a in (-x,-y)").unwrap_err();
    assert!(e.starts_with("unable to parse requirement: [values[0][a]"), "{e}");
    assert!(e.contains("values[1][a]"), "{e}");

    let e = LabelSelector::parse("/a").unwrap_err();
    assert!(e.contains("prefix part must be non-empty"), "{e}");
    let e = LabelSelector::parse("Foo.com/a").unwrap_err();
    assert!(e.contains("prefix part a lowercase RFC 1123 subdomain"), "{e}");
    let e = LabelSelector::parse("a/b/c").unwrap_err();
    assert!(e.contains("a qualified name must consist"), "{e}");
}

#[test]
fn odd_inputs_do_not_panic() {
    for s in [
        "(",
        ")",
        ",",
        "!!",
        "!=",
        "a!",
        "a in",
        "a in (",
        "a notin ()",
        "\u{0}",
        "é=ü",
        "a=b\u{0}junk",
        "a in (b,",
        "a in (,",
        "a in (,,",
        "a==",
        "a !=",
    ] {
        let _ = LabelSelector::parse(s);
    }
    // Like the Go lexer, a NUL where a token should start ends the input; inside a
    // token it only terminates that token.
    let s = LabelSelector::parse("a=b \u{0}junk").unwrap();
    assert_eq!(s.to_string(), "a=b");
    assert!(LabelSelector::parse("a=b\u{0}junk").is_err());
}

#[test]
fn from_json() {
    let v = json!({
        "matchLabels": {"app": "web", "tier": "fe"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "gone", "operator": "DoesNotExist"}
        ]
    });
    let s = from_label_selector_json(&v).unwrap();
    assert_eq!(to_selector_string(&s), "app=web,env in (dev,prod),!gone,tier=fe");
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("env", "dev")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "fe")])));

    let empty = from_label_selector_json(&json!({})).unwrap();
    assert!(empty.is_empty());
    assert!(empty.matches(&labels(&[("x", "y")])));
    assert_eq!(to_selector_string(&empty), "");

    let nothing = from_label_selector_json(&json!(null)).unwrap();
    assert!(!nothing.is_empty());
    assert!(nothing.is_nothing());
    assert!(!nothing.matches(&labels(&[])));

    let e = from_label_selector_json(&json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})).unwrap_err();
    assert_eq!(e, "\"Foo\" is not a valid label selector operator");
    let e = from_label_selector_json(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}))
        .unwrap_err();
    assert_eq!(
        e,
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    let e = from_label_selector_json(&json!({"matchLabels": {"-a": "b"}})).unwrap_err();
    assert!(e.starts_with("key: Invalid value: \"-a\""), "{e}");
    assert!(from_label_selector_json(&json!({"matchLabels": {"a": 1}})).is_err());
    assert!(from_label_selector_json(&json!("x")).is_err());

    assert_eq!(format_label_selector_json(&json!({})), "<none>");
    assert_eq!(format_label_selector_json(&json!({"matchLabels": {"a": "b"}})), "a=b");
    assert_eq!(
        format_label_selector_json(&json!({"matchExpressions": [{"key": "a", "operator": "X"}]})),
        "<error>"
    );
}

#[test]
fn exact_match_and_helpers() {
    let s = LabelSelector::parse("a=b,c in (d),e in (f,g)").unwrap();
    assert_eq!(s.requires_exact_match("a").as_deref(), Some("b"));
    assert_eq!(s.requires_exact_match("c").as_deref(), Some("d"));
    assert_eq!(s.requires_exact_match("e"), None);
    assert_eq!(s.requires_exact_match("zz"), None);
    let set = labels(&[("b", "2"), ("a", "1")]);
    assert_eq!(LabelSelector::from_set(&set).to_string(), "a=1,b=2");
    assert_eq!(format_labels(&set), "a=1,b=2");
    assert_eq!(format_labels(&labels(&[])), "<none>");
}

#[test]
fn field_selector_parse_and_match() {
    let s = FieldSelector::parse("status.phase!=Running,metadata.name=x").unwrap();
    // Terms are sorted by their raw text.
    assert_eq!(s.fields(), vec!["metadata.name", "status.phase"]);
    let get = |f: &str| match f {
        "metadata.name" => Some("x".to_string()),
        "status.phase" => Some("Pending".to_string()),
        _ => None,
    };
    assert!(s.matches(&get));
    let s2 = FieldSelector::parse("metadata.name==y").unwrap();
    assert!(!s2.matches(&get));
    // Absent fields compare as "".
    let s3 = FieldSelector::parse("spec.nodeName=").unwrap();
    assert!(s3.matches(&get));
    let s4 = FieldSelector::parse("spec.nodeName!=").unwrap();
    assert!(!s4.matches(&get));
    assert_eq!(s.requires_exact_match("metadata.name").as_deref(), Some("x"));
    assert_eq!(s.requires_exact_match("status.phase"), None);
    assert_eq!(s.to_string(), "metadata.name=x,status.phase!=Running");
}

#[test]
fn field_selector_empty_and_escapes() {
    assert!(FieldSelector::parse("").unwrap().is_empty());
    assert!(FieldSelector::parse(",").unwrap().is_empty());
    let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
    assert_eq!(s.terms()[0].value, r"a,b=c\d");
    assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d");
    // Escaped comma does not split.
    assert_eq!(FieldSelector::parse(r"a=x\,y,b=z").unwrap().terms().len(), 2);
    // Operator precedence: first operator occurrence, `!=` before `==` before `=`.
    let s = FieldSelector::parse("a==b").unwrap();
    assert_eq!(s.terms()[0].value, "b");
    let s = FieldSelector::parse("a!==b");
    assert_eq!(
        s.unwrap_err(),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        FieldSelector::one_term_equal("metadata.name", "a,b").to_string(),
        r"metadata.name=a\,b"
    );
}

#[test]
fn field_selector_errors() {
    assert_eq!(
        FieldSelector::parse("foo").unwrap_err(),
        "invalid selector: 'foo'; can't understand 'foo'"
    );
    assert_eq!(
        FieldSelector::parse("a=b,foo").unwrap_err(),
        "invalid selector: 'a=b,foo'; can't understand 'foo'"
    );
    assert_eq!(
        FieldSelector::parse(r"a=b\x").unwrap_err(),
        r"invalid field selector: invalid escape sequence: \x"
    );
    assert_eq!(
        FieldSelector::parse("a=b\\").unwrap_err(),
        r"invalid field selector: invalid escape sequence: \"
    );
    assert_eq!(
        FieldSelector::parse("a=b=c").unwrap_err(),
        "invalid field selector: unescaped character in value: 61"
    );
    for s in ["=", "!=", "==", "\\", "é=\\é", "a=é"] {
        let _ = FieldSelector::parse(s);
    }
    // Empty field name is accepted by the parser (the server rejects it later).
    assert_eq!(FieldSelector::parse("=x").unwrap().fields(), vec![""]);
}

#[test]
fn go_quote_escapes() {
    assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
    assert_eq!(go_quote("é"), "\"é\"");
}
