//! Unit-level behaviour of the validator: the API, the error shapes, the refusals and limits.
//! (Agreement with Cerberus on generated corpora is `differential.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealroom_criteria::{
    fuzz_one, json, Criteria, CriteriaError, Limits, ParseOptions, SchemaErrorKind, SchemaLimits,
};

fn check(schema: &str, doc: &str) -> String {
    let c = Criteria::from_json(schema.as_bytes()).unwrap_or_else(|e| panic!("{schema}: {e}"));
    c.validate_json(doc.as_bytes())
        .unwrap_or_else(|e| panic!("{doc}: {e}"))
        .errors()
        .to_json()
}

fn schema_error(schema: &str) -> sealroom_criteria::SchemaError {
    match Criteria::from_json(schema.as_bytes()) {
        Err(CriteriaError::Schema(e)) => e,
        other => panic!("{schema}: expected a schema error, got {other:?}"),
    }
}

const SEED: &str = r#"{"report": {"type": "dict", "schema": {
    "accuracy": {"type": "dict", "schema": {
        "value": {"type": "float", "min": 0, "max": 1},
        "CI": {"type": "float", "min": 0, "max": 1},
        "n": {"type": "integer", "min": 1}}}}}}"#;

#[test]
fn seed_example_valid_and_invalid() {
    assert_eq!(
        check(
            SEED,
            r#"{"report": {"accuracy": {"value": 0.9, "CI": 0.1, "n": 10}}}"#
        ),
        "{}"
    );
    // Fields are optional unless `required`; ints are floats, as in Python.
    assert_eq!(
        check(SEED, r#"{"report": {"accuracy": {"value": 1}}}"#),
        "{}"
    );
    assert_eq!(
        check(
            SEED,
            r#"{"report": {"accuracy": {"value": -1, "n": 0.5, "leak": "x"}}, "extra": {}}"#
        ),
        r#"{"extra":["unknown field"],"report":[{"accuracy":[{"leak":["unknown field"],"n":["must be of integer type"],"value":["min value is 0"]}]}]}"#
    );
}

#[test]
fn response_shape() {
    let c = Criteria::from_json(SEED.as_bytes()).unwrap();
    let ok = c.validate_json(b"{}").unwrap();
    assert!(ok.is_valid());
    assert_eq!(
        ok.response_json(),
        r#"{"status":"successful","message":{}}"#
    );
    let bad = c.validate_json(br#"{"report": 1}"#).unwrap();
    assert_eq!(
        bad.response_json(),
        r#"{"status":"failed","message":{"report":["must be of dict type"]}}"#
    );
    // The serde form is the same JSON, keys in Cerberus's order.
    assert_eq!(
        serde_json::to_string(&bad.response()).unwrap(),
        bad.response_json()
    );
    assert_eq!(
        bad.errors().flatten(),
        vec![("report".to_string(), "must be of dict type".to_string())]
    );
}

#[test]
fn python_type_semantics() {
    let s = r#"{"i": {"type": "integer"}, "f": {"type": "float"}, "n": {"type": "number"}, "b": {"type": "boolean"}}"#;
    // bool is an int in Python: integer and float accept it, number does not.
    assert_eq!(
        check(s, r#"{"i": true, "f": false, "n": true, "b": 1}"#),
        r#"{"b":["must be of boolean type"],"n":["must be of number type"]}"#
    );
    assert_eq!(
        check(s, r#"{"i": 1.0}"#),
        r#"{"i":["must be of integer type"]}"#
    );
    assert_eq!(
        check(s, r#"{"i": 123456789012345678901234567890, "f": 1e400}"#),
        "{}"
    );
}

#[test]
fn messages_format_values_as_python() {
    assert_eq!(
        check(r#"{"a": {"max": 1e20}}"#, r#"{"a": 1e21}"#),
        r#"{"a":["max value is 1e+20"]}"#
    );
    assert_eq!(
        check(r#"{"a": {"min": 0.5}}"#, r#"{"a": 0}"#),
        r#"{"a":["min value is 0.5"]}"#
    );
    assert_eq!(
        check(
            r#"{"a": {"allowed": ["x"]}}"#,
            r#"{"a": ["it's", 1.0, null, true]}"#
        ),
        r#"{"a":["unallowed values (\"it's\", 1.0, None, True)"]}"#
    );
    assert_eq!(
        check(r#"{"a": {"allowed": ["x"]}}"#, r#"{"a": 2.5}"#),
        r#"{"a":["unallowed value 2.5"]}"#
    );
    assert_eq!(
        check(r#"{"a": {"type": ["integer", "list"]}}"#, r#"{"a": "s"}"#),
        r#"{"a":["must be of ['integer', 'list'] type"]}"#
    );
    assert_eq!(
        check(r#"{"a": {"regex": "\\d+"}}"#, r#"{"a": "x"}"#),
        r#"{"a":["value does not match regex '\\d+'"]}"#
    );
}

#[test]
fn list_items_and_ordering() {
    let s = r#"{"a": {"type": "list", "schema": {"type": "integer", "max": 5}}}"#;
    // Indices sort as numbers (2 before 10), as Python ints do.
    assert_eq!(
        check(s, r#"{"a": [0, 1, 9, 3, 4, 5, 6, 7, 8, 9, 10]}"#),
        r#"{"a":[{"2":["max value is 5"],"6":["max value is 5"],"7":["max value is 5"],"8":["max value is 5"],"9":["max value is 5"],"10":["max value is 5"]}]}"#
    );
    // Field keys sort by code point, errors of one field by rule name.
    assert_eq!(
        check(
            r#"{"b": {"min": 5, "allowed": [9]}, "A": {}}"#,
            r#"{"é": 1, "b": 1, "Z": 1}"#
        ),
        r#"{"Z":["unknown field"],"b":["unallowed value 1","min value is 5"],"é":["unknown field"]}"#
    );
}

#[test]
fn nullable_empty_and_required() {
    assert_eq!(
        check(r#"{"a": {"type": "integer"}}"#, r#"{"a": null}"#),
        r#"{"a":["null value not allowed"]}"#
    );
    assert_eq!(
        check(
            r#"{"a": {"type": "integer", "nullable": true, "min": 3}}"#,
            r#"{"a": null}"#
        ),
        "{}"
    );
    assert_eq!(
        check(
            r#"{"a": {"empty": false, "minlength": 3, "regex": "x+"}}"#,
            r#"{"a": ""}"#
        ),
        r#"{"a":["empty values not allowed"]}"#
    );
    assert_eq!(
        check(
            r#"{"a": {"required": true}, "b": {"required": true, "nullable": true}}"#,
            r#"{"b": null}"#
        ),
        r#"{"a":["required field"]}"#
    );
}

#[test]
fn schema_errors_name_the_field_and_problem() {
    let e = schema_error(r#"{"report": {"type": "dict", "schema": {"n": {"type": "integr"}}}}"#);
    assert_eq!(e.kind, SchemaErrorKind::Invalid);
    assert_eq!(
        e.to_string(),
        "criteria field 'report.n', rule 'type': Unsupported types: integr"
    );
    let e = schema_error(r#"{"xs": {"type": "list", "schema": {"type": "integer", "mni": 1}}}"#);
    assert_eq!(
        e.to_string(),
        "criteria field 'xs.[]', rule 'mni': unknown rule"
    );
    let e = schema_error(r#"{"a": {"anyof": [{"type": "integer"}]}}"#);
    assert_eq!(e.kind, SchemaErrorKind::Unsupported);
    let e = schema_error(r#"{"a": {"allow_unknown": true}}"#);
    assert_eq!(e.kind, SchemaErrorKind::Unsupported);
    let e = schema_error(r#"{"a": {"regex": "(a)\\1"}}"#);
    assert_eq!(e.kind, SchemaErrorKind::Unsupported);
    assert!(e.to_string().contains("backreferences"), "{e}");
    // Cerberus appends `$`: "[a-" becomes "[a-$", a bad range for Python.
    let e = schema_error(r#"{"a": {"regex": "[a-"}}"#);
    assert!(e.to_string().contains("bad character range"), "{e}");
    let e = schema_error(r#"{"a": {"regex": "[ab"}}"#);
    assert_eq!(e.kind, SchemaErrorKind::Invalid);
    assert!(e.to_string().contains("unterminated character set"), "{e}");
    let e = schema_error(r#"{"a": {"required": 1}}"#);
    assert!(e.to_string().contains("must be of boolean type"), "{e}");
    let e = schema_error(r#"[["a", {}]]"#);
    assert_eq!(e.kind, SchemaErrorKind::Unsupported);
    let e = schema_error(r#"{"a": {"allowed": [[1]]}}"#);
    assert_eq!(e.kind, SchemaErrorKind::Invalid);
}

#[test]
fn duplicate_keys_are_refused_by_default() {
    // Python keeps the last value; the raw text a reviewer reads shows the first. Refuse both.
    match Criteria::from_json(br#"{"a": {"max": 1}, "a": {}}"#) {
        Err(CriteriaError::CriteriaJson(e)) => assert!(e.message.contains("duplicate")),
        other => panic!("{other:?}"),
    }
    let c = Criteria::from_json(br#"{"a": {"max": 1}}"#).unwrap();
    assert!(matches!(
        c.validate_json(br#"{"a": "secret", "a": 1}"#),
        Err(CriteriaError::DocumentJson(_))
    ));
    // When allowed (Python's behaviour), the last value counts.
    let lenient = Limits {
        document_json: ParseOptions {
            reject_duplicate_keys: false,
            ..Limits::default().document_json
        },
        ..Limits::default()
    };
    let c = Criteria::from_json_with(br#"{"a": {"max": 1}}"#, &lenient).unwrap();
    assert!(c
        .validate_json(br#"{"a": "secret", "a": 1}"#)
        .unwrap()
        .is_valid());
}

#[test]
fn documents_must_be_objects() {
    let c = Criteria::from_json(SEED.as_bytes()).unwrap();
    assert_eq!(
        c.validate_json(b"[1]"),
        Err(CriteriaError::NotAnObject("array"))
    );
    assert!(matches!(
        c.validate_json(b"{\"report\": NaN}"),
        Err(CriteriaError::DocumentJson(_))
    ));
}

#[test]
fn limits_hold() {
    let deep = "{\"a\":".repeat(200) + "1" + &"}".repeat(200);
    let c = Criteria::from_json(b"{}").unwrap();
    assert!(matches!(
        c.validate_json(deep.as_bytes()),
        Err(CriteriaError::DocumentJson(_))
    ));
    // Deeply nested criteria.
    let mut s = String::from(r#"{"type": "integer"}"#);
    for _ in 0..40 {
        s = format!(r#"{{"type": "dict", "schema": {{"x": {s}}}}}"#);
    }
    let crit = format!(r#"{{"x": {s}}}"#);
    // The JSON depth limit (64) stops it first; with a laxer one, the rule depth limit (32).
    assert!(matches!(
        Criteria::from_json(crit.as_bytes()),
        Err(CriteriaError::CriteriaJson(_))
    ));
    let lax = Limits {
        criteria_json: ParseOptions {
            max_depth: 1000,
            ..Limits::default().criteria_json
        },
        ..Limits::default()
    };
    match Criteria::from_json_with(crit.as_bytes(), &lax) {
        Err(CriteriaError::Schema(e)) => assert_eq!(e.kind, SchemaErrorKind::Limit),
        other => panic!("{other:?}"),
    }
    // Self-similar `schema` nesting that would make a naive parser exponential is bounded.
    let mut s = String::from("{}");
    for _ in 0..30 {
        s = format!(r#"{{"schema": {s}}}"#);
    }
    let limits = Limits {
        schema: SchemaLimits {
            max_rule_depth: 64,
            ..SchemaLimits::default()
        },
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let r = Criteria::from_json_with(format!(r#"{{"a": {s}}}"#).as_bytes(), &limits);
    assert!(started.elapsed().as_secs() < 5);
    assert!(matches!(r, Err(CriteriaError::Schema(e)) if e.kind == SchemaErrorKind::Limit));
    let big = vec![b' '; (1 << 20) + 1];
    assert!(matches!(
        Criteria::from_json(&big),
        Err(CriteriaError::CriteriaJson(_))
    ));
}

#[test]
fn canonical_json_round_trips() {
    let text = r#"{"b": [1, 2.0, 1e+20, "é\n"], "a": {"x": null, "y": true, "z": 123456789012345678901234567890}}"#;
    let v = json::parse(text.as_bytes(), &ParseOptions::default()).unwrap();
    let out = v.to_json();
    assert_eq!(
        out,
        r#"{"b":[1,2.0,1e+20,"é\n"],"a":{"x":null,"y":true,"z":123456789012345678901234567890}}"#
    );
    assert_eq!(
        json::parse(out.as_bytes(), &ParseOptions::default()).unwrap(),
        v
    );
}

#[test]
fn fuzz_entry_point_on_seeds_and_mutations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/criteria");
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        seeds.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!seeds.is_empty());
    let mut x: u64 = 0x1234_5678;
    for seed in &seeds {
        fuzz_one(seed);
        for _ in 0..300 {
            let mut m = seed.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len();
                match x % 3 {
                    0 => m[i] = (x >> 32) as u8,
                    1 => {
                        m.remove(i);
                    }
                    _ => m.insert(i, b"{}[]\",:0\\"[(x >> 40) as usize % 9]),
                }
                if m.is_empty() {
                    break;
                }
            }
            fuzz_one(&m);
        }
    }
}

#[test]
fn large_documents_stay_fast() {
    // 200 000 unknown fields, and a 20 000-key dict compared against an allowed dict of that size.
    let mut doc = String::from("{");
    for i in 0..200_000 {
        doc.push_str(&format!("\"f{i}\":{i},"));
    }
    doc.push_str("\"a\":[{");
    let keys: Vec<String> = (0..20_000).map(|i| format!("\"k{i}\":{i}")).collect();
    doc.push_str(&keys.join(","));
    doc.push_str("}]}");
    let mut rev = keys.clone();
    rev.reverse();
    let criteria = format!(
        r#"{{"a": {{"allowed": [{{{}}}], "type": "list"}}}}"#,
        rev.join(",")
    );
    let started = std::time::Instant::now();
    let c = Criteria::from_json(criteria.as_bytes()).unwrap();
    let r = c.validate_json(doc.as_bytes()).unwrap();
    assert_eq!(
        r.errors().iter().count(),
        200_000,
        "only the unknown fields fail"
    );
    assert!(r.response_json().len() > 200_000 * 10);
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}
