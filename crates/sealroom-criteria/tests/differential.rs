//! Differential tests against Python `cerberus==1.3.8` (installed by scripts/setup/20-cerberus.sh).
//!
//! A deterministic generator writes hundreds of schemas and thousands of documents (the seed
//! manual's example criteria and hand-written nasty cases included); `tests/cerberus_oracle.py`
//! validates each with Cerberus; this crate must agree on validity and on the exact error tree
//! (keys, messages and their order). Where Cerberus itself crashes on a document, Sealroom must
//! call it invalid. Schemas Cerberus refuses, Sealroom refuses; schemas Sealroom refuses as
//! unsupported are counted and must come only from the generator's deliberate unsupported cases.
//! A second test compares Python `re` with the regex translation on generated patterns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use sealroom_criteria::pyre::{PyRegex, RegexError};
use sealroom_criteria::{
    json, Criteria, CriteriaError, Limits, Object, ParseOptions, SchemaErrorKind, Value,
};

// ---------------------------------------------------------------- deterministic randomness

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    fn pick_s(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------- helpers

fn int(n: i64) -> Value {
    Value::Int(n.into())
}
fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}
fn obj(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
fn parse(text: &str) -> Value {
    json::parse(text.as_bytes(), &lenient()).unwrap_or_else(|e| panic!("test JSON {text}: {e}"))
}
fn lenient() -> ParseOptions {
    ParseOptions {
        max_bytes: 1 << 24,
        max_depth: 512,
        reject_duplicate_keys: false,
    }
}
fn limits() -> Limits {
    Limits {
        criteria_json: lenient(),
        document_json: lenient(),
        ..Limits::default()
    }
}

fn python() -> anyhow::Result<()> {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import cerberus, sys; sys.exit(cerberus.__version__ != '1.3.8')",
        ])
        .status()
        .context("python3 not found")?
        .success();
    if !ok {
        bail!("Python cerberus 1.3.8 is not installed: run scripts/setup/20-cerberus.sh");
    }
    Ok(())
}

/// Runs the oracle on JSON-lines cases; returns its answers by id.
fn oracle(cases: &[String]) -> anyhow::Result<HashMap<u64, Value>> {
    python()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cerberus_oracle.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the cerberus oracle")?;
    let mut stdin = child.stdin.take().context("oracle stdin")?;
    let input = cases.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    if !out.status.success() {
        bail!("oracle failed: {}", out.status);
    }
    let mut answers = HashMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let v = parse(line);
        let Value::Object(o) = &v else {
            bail!("oracle line {line}")
        };
        let Some(Value::Int(id)) = o.get("id") else {
            bail!("oracle line {line}")
        };
        answers.insert(u64::try_from(id).context("id")?, v.clone());
    }
    if answers.len() != cases.len() {
        bail!("oracle answered {} of {} cases", answers.len(), cases.len());
    }
    Ok(answers)
}

fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(k),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Str(s)) => s.clone(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------- the corpus generator

const FIELD_NAMES: &[&str] = &[
    "a", "b", "c", "value", "CI", "n", "report", "accuracy", "x y", "é", "Zeta", "0", "10", "2",
    "", "_id", "type", "min", "schema", "meta", "ключ", "😀",
];

const REGEXES: &[&str] = &[
    "[a-z]+",
    "\\d+",
    "\\d{3}-\\d{4}",
    "^[A-Z][a-z]*$",
    "a|b",
    "a|bc",
    "(ab)*",
    "\\w+@\\w+\\.com",
    "[^\\s]+",
    ".*",
    "",
    "x?",
    "(?i)abc",
    "[0-9a-f]{2,8}",
    "\\s*",
    "a\\$",
    "\\.",
    "[.]",
    "colou?r",
    "(?:x|y){1,3}",
    "\\bword\\b",
    "[\\d\\s]+",
    "é+",
    "[а-я]+",
    "a{,2}",
    "{x}",
    "\\Aab\\Z",
    "(?s).+",
    "(?m)^a$",
    "[]]+",
    "[-a]+",
    "\\x41+",
    "\\u00e9",
    "\\101",
    "[\\w-]+",
    "(?P<n>a)b",
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "abc",
    "ABC",
    "aaa",
    "b",
    "bc",
    "ab",
    "abab",
    "123",
    "123-4567",
    "1234",
    "Hello",
    "hello",
    "x@y.com",
    "a b",
    " ",
    "\n",
    "a\n",
    "abc\n",
    "a\nb",
    "é",
    "éé",
    "ключ",
    "😀",
    "x",
    "xy",
    "xyz",
    "color",
    "colour",
    "AA",
    "ff00",
    "word",
    "a word here",
    "a$",
    "$",
    ".",
    "-",
    "]]",
    "-a-",
    "\u{1c}",
    "\u{a0}",
    "'",
    "\"",
    "\\",
    "'\"",
    "0",
    "true",
    "null",
    "1.5",
    "\u{0}",
    "\u{7f}",
    "\u{200b}",
    "\u{e000}",
    "Zeta",
    "value",
];

const TYPES: &[&str] = &[
    "integer", "float", "number", "string", "boolean", "dict", "list",
];
const RARE_TYPES: &[&str] = &["container", "date", "set", "binary", "datetime"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Num,
    Str,
    Bool,
    Dict,
    List,
    Any,
}

fn kind_of(t: &str) -> Kind {
    match t {
        "integer" => Kind::Int,
        "float" => Kind::Float,
        "number" => Kind::Num,
        "string" => Kind::Str,
        "boolean" => Kind::Bool,
        "dict" => Kind::Dict,
        "list" => Kind::List,
        _ => Kind::Any,
    }
}

fn rand_number(r: &mut Rng, float: bool) -> Value {
    if float {
        Value::Float(*r.pick(&[
            0.0, 0.5, 1.0, 1.5, -0.25, 1e16, 1e-5, 3.0, 0.1, -0.0, 2.5e-7, 123.456, 1e300, 0.95,
        ]))
    } else {
        match r.below(12) {
            0 => Value::Int("123456789012345678901234567890".parse().unwrap_or_default()),
            1 => Value::Int("9007199254740993".parse().unwrap_or_default()),
            2 => Value::Bool(r.chance(0.5)),
            _ => int(*r.pick(&[0, 1, -1, 2, 5, 10, 100, -7, 3, 1000])),
        }
    }
}

fn rand_scalar(r: &mut Rng) -> Value {
    match r.below(7) {
        0 => Value::Null,
        1 => Value::Bool(r.chance(0.5)),
        2 | 3 => {
            let f = r.chance(0.5);
            rand_number(r, f)
        }
        _ => s(r.pick_s(STRINGS)),
    }
}

fn rand_any(r: &mut Rng, depth: usize) -> Value {
    if depth == 0 {
        return rand_scalar(r);
    }
    match r.below(10) {
        0 | 1 => Value::List((0..r.below(4)).map(|_| rand_any(r, depth - 1)).collect()),
        2 => {
            let mut o = Object::new();
            for _ in 0..r.below(4) {
                o.insert(r.pick(FIELD_NAMES).to_string(), rand_any(r, depth - 1));
            }
            Value::Object(o)
        }
        _ => rand_scalar(r),
    }
}

/// A rules set. `kind` steers it towards coherent rules; `chaos` adds odd-but-valid constraints.
fn gen_rules(r: &mut Rng, depth: usize, stats: &mut GenStats) -> Value {
    let mut rules: Vec<(String, Value)> = Vec::new();
    let mut kind = Kind::Any;
    if r.chance(0.85) {
        if r.chance(0.12) {
            let n = 1 + r.below(2);
            let mut ts = Vec::new();
            for _ in 0..n {
                let t = if r.chance(0.1) {
                    r.pick(RARE_TYPES)
                } else {
                    r.pick(TYPES)
                };
                ts.push(s(t));
            }
            if r.chance(0.05) {
                ts.clear();
            }
            if let Some(Value::Str(t)) = ts.first() {
                kind = kind_of(t);
            }
            rules.push(("type".into(), Value::List(ts)));
        } else {
            let t = if depth == 0 {
                *r.pick(&TYPES[..5])
            } else {
                *r.pick(TYPES)
            };
            kind = kind_of(t);
            rules.push(("type".into(), s(t)));
        }
    }
    let add = |rules: &mut Vec<(String, Value)>, k: &str, v: Value| rules.push((k.to_string(), v));
    if r.chance(0.3) {
        add(&mut rules, "required", Value::Bool(r.chance(0.8)));
    }
    if r.chance(0.25) {
        add(&mut rules, "nullable", Value::Bool(r.chance(0.7)));
    }
    if r.chance(0.15) {
        add(&mut rules, "empty", Value::Bool(r.chance(0.3)));
    }
    match kind {
        Kind::Int | Kind::Float | Kind::Num | Kind::Any | Kind::Bool => {
            if r.chance(0.5) {
                add(&mut rules, "min", {
                    let f = r.chance(0.4);
                    rand_number(r, f)
                });
            }
            if r.chance(0.5) {
                add(&mut rules, "max", {
                    let f = r.chance(0.4);
                    rand_number(r, f)
                });
            }
            if r.chance(0.15) {
                let vals = (0..1 + r.below(4))
                    .map(|_| {
                        let f = r.chance(0.3);
                        rand_number(r, f)
                    })
                    .collect();
                add(&mut rules, "allowed", Value::List(vals));
            }
        }
        _ => {}
    }
    match kind {
        Kind::Str | Kind::Any => {
            if r.chance(0.35) {
                add(&mut rules, "regex", s(r.pick_s(REGEXES)));
            }
            if r.chance(0.3) {
                add(
                    &mut rules,
                    "allowed",
                    Value::List((0..1 + r.below(4)).map(|_| s(r.pick_s(STRINGS))).collect()),
                );
            }
            if r.chance(0.15) {
                add(&mut rules, "min", s(r.pick_s(STRINGS)));
            }
        }
        _ => {}
    }
    if matches!(kind, Kind::Str | Kind::List | Kind::Dict | Kind::Any) {
        if r.chance(0.3) {
            add(
                &mut rules,
                "minlength",
                if r.chance(0.1) {
                    Value::Bool(true)
                } else {
                    int(r.below(4) as i64)
                },
            );
        }
        if r.chance(0.3) {
            add(&mut rules, "maxlength", int(r.below(5) as i64));
        }
    }
    if depth > 0 {
        match kind {
            Kind::Dict | Kind::Any => {
                // A dict schema on a field that may hold a list is refused (docs/criteria.md):
                // give type-less fields one only sometimes.
                if r.chance(if kind == Kind::Dict { 0.7 } else { 0.1 }) {
                    add(&mut rules, "schema", gen_schema(r, depth - 1, stats));
                }
                if r.chance(0.2) {
                    add(&mut rules, "keysrules", gen_rules(r, 0, stats));
                }
                if r.chance(0.2) {
                    add(&mut rules, "valuesrules", gen_rules(r, depth - 1, stats));
                }
                if kind == Kind::Any && r.chance(0.2) {
                    add(&mut rules, "schema", gen_rules(r, depth - 1, stats));
                }
            }
            Kind::List => {
                if r.chance(0.8) {
                    add(&mut rules, "schema", gen_rules(r, depth - 1, stats));
                }
                if r.chance(0.2) {
                    let vals = (0..1 + r.below(3)).map(|_| rand_scalar(r)).collect();
                    add(&mut rules, "allowed", Value::List(vals));
                }
            }
            _ => {}
        }
    }
    // Odd but valid constraints.
    if r.chance(0.05) {
        add(&mut rules, "meta", rand_any(r, 2));
    }
    if r.chance(0.04) {
        add(&mut rules, "max", Value::List(vec![int(1), s("x")]));
    }
    if r.chance(0.04) {
        let keys = Value::Object(
            [("a".to_string(), int(1)), ("abc".to_string(), int(2))]
                .into_iter()
                .collect(),
        );
        add(&mut rules, "allowed", keys);
    }
    // Deliberately broken or unsupported rules.
    if r.chance(0.03) {
        stats.invalid += 1;
        let (k, v) = r
            .pick(&[
                ("bogus", int(1)),
                ("type", s("bogus")),
                ("required", int(1)),
                ("min", Value::Null),
                ("regex", int(5)),
                ("allowed", Value::List(vec![Value::List(vec![int(1)])])),
                ("schema", s("registry_name")),
                ("keysrules", int(3)),
                ("minlength", Value::Float(1.5)),
                ("nullable", Value::Null),
                ("type", Value::List(vec![int(1)])),
                ("allowed", s("abc")),
            ])
            .clone();
        rules.push((k.into(), v));
    } else if r.chance(0.02) {
        stats.unsupported += 1;
        let (k, v) = r
            .pick(&[
                ("forbidden", Value::List(vec![int(1)])),
                (
                    "anyof",
                    Value::List(vec![obj(vec![("type", s("integer"))])]),
                ),
                ("allow_unknown", Value::Bool(true)),
                (
                    "items",
                    Value::List(vec![obj(vec![("type", s("integer"))])]),
                ),
                ("regex", s("(a)\\1")),
                ("regex", s("(?=a)a")),
            ])
            .clone();
        rules.push((k.into(), v));
    }
    if r.chance(0.1) {
        // Shuffle the rule order (Cerberus evaluates non-priority rules in the given order).
        let n = rules.len();
        for i in (1..n).rev() {
            let j = r.below(i + 1);
            rules.swap(i, j);
        }
    }
    Value::Object(rules.into_iter().collect())
}

fn gen_schema(r: &mut Rng, depth: usize, stats: &mut GenStats) -> Value {
    let mut o = Object::new();
    for _ in 0..1 + r.below(4) {
        o.insert(r.pick(FIELD_NAMES).to_string(), gen_rules(r, depth, stats));
    }
    Value::Object(o)
}

#[derive(Default)]
struct GenStats {
    invalid: usize,
    unsupported: usize,
}

/// A value for `rules`: mostly plausible, sometimes mutated or random.
fn gen_value(r: &mut Rng, rules: &Value, depth: usize) -> Value {
    if depth == 0 || r.chance(0.25) {
        return rand_any(r, depth.min(2));
    }
    let t = match get(rules, "type") {
        Some(Value::Str(t)) => t.clone(),
        Some(Value::List(ts)) if !ts.is_empty() => text(ts.first()),
        _ => String::new(),
    };
    if let Some(Value::List(allowed)) = get(rules, "allowed") {
        if !allowed.is_empty() && r.chance(0.4) {
            if t == "list" {
                return Value::List(
                    (0..r.below(3))
                        .map(|_| allowed[r.below(allowed.len())].clone())
                        .collect(),
                );
            }
            return allowed[r.below(allowed.len())].clone();
        }
    }
    match t.as_str() {
        "integer" => rand_number(r, false),
        "float" | "number" => {
            let f = r.chance(0.6);
            rand_number(r, f)
        }
        "boolean" => Value::Bool(r.chance(0.5)),
        "string" => s(r.pick_s(STRINGS)),
        "dict" => match get(rules, "schema") {
            Some(sch @ Value::Object(_)) => gen_doc(r, sch, depth - 1),
            _ => rand_any(r, 2),
        },
        "list" => {
            let item_rules = get(rules, "schema")
                .cloned()
                .unwrap_or(Value::Object(Object::new()));
            Value::List(
                (0..r.below(4))
                    .map(|_| gen_value(r, &item_rules, depth - 1))
                    .collect(),
            )
        }
        _ => rand_any(r, 2),
    }
}

fn gen_doc(r: &mut Rng, schema: &Value, depth: usize) -> Value {
    let mut o = Object::new();
    if let Value::Object(fields) = schema {
        for (name, rules) in fields.iter() {
            if r.chance(0.85) {
                o.insert(name.clone(), gen_value(r, rules, depth));
            }
        }
    }
    if r.chance(0.15) {
        o.insert(r.pick(FIELD_NAMES).to_string(), rand_any(r, 1));
    }
    Value::Object(o)
}

// ---------------------------------------------------------------- fixed cases

const SEED_CRITERIA: &str = r#"{
  "report": {
    "type": "dict",
    "schema": {
      "accuracy": {
        "type": "dict",
        "schema": {
          "value": {"type": "float", "min": 0, "max": 1},
          "CI": {"type": "float", "min": 0, "max": 1},
          "n": {"type": "integer", "min": 1}
        }
      },
      "specificity": {
        "type": "dict",
        "schema": {
          "value": {"type": "float", "min": 0, "max": 1},
          "CI": {"type": "float", "min": 0, "max": 1},
          "n": {"type": "integer", "min": 1}
        }
      },
      "sensitivity": {
        "type": "dict",
        "schema": {
          "value": {"type": "float", "min": 0, "max": 1},
          "CI": {"type": "float", "min": 0, "max": 1},
          "n": {"type": "integer", "min": 1}
        }
      }
    }
  }
}"#;

const SEED_DOCUMENTS: &[&str] = &[
    r#"{"report": {"accuracy": {"value": 0.91, "CI": 0.05, "n": 200}, "specificity": {"value": 0.8, "CI": 0.1, "n": 150}, "sensitivity": {"value": 0.7, "CI": 0.2, "n": 50}}}"#,
    r#"{"report": {"accuracy": {"value": 1, "CI": 0, "n": 1}}}"#,
    r#"{}"#,
    r#"{"report": {"accuracy": {"value": 1.2, "CI": -0.1, "n": 0}, "specificity": {"value": "0.8", "n": 1.0}, "sensitivity": null}}"#,
    r#"{"report": {"accuracy": {"value": 0.9, "patient_ids": [1, 2, 3]}, "notes": "free text"}, "extra": 1}"#,
    r#"{"report": {"accuracy": [0.9], "specificity": {"value": true, "CI": false, "n": true}}}"#,
    r#"{"report": "accuracy 0.9"}"#,
    r#"{"report": {"accuracy": {"value": 0.5, "CI": 0.5, "n": 123456789012345678901234567890}}}"#,
    r#"{"report": {"accuracy": {"value": 1e-400, "CI": 1e400, "n": -5}}}"#,
];

/// (schema, document) pairs chosen to hit Cerberus's corners.
const NASTY: &[(&str, &str)] = &[
    (r#"{"a": {"type": "integer"}}"#, r#"{"a": true}"#),
    (r#"{"a": {"type": "number"}}"#, r#"{"a": false}"#),
    (r#"{"a": {"type": "float"}}"#, r#"{"a": 1}"#),
    (r#"{"a": {"type": "integer"}}"#, r#"{"a": 1.0}"#),
    (r#"{"a": {"type": ["integer", "string"]}}"#, r#"{"a": 1.5}"#),
    (r#"{"a": {"type": []}}"#, r#"{"a": 1.5}"#),
    (r#"{"a": {"type": "container"}}"#, r#"{"a": "str"}"#),
    (r#"{"a": {"type": "date"}}"#, r#"{"a": "2024-01-01"}"#),
    (r#"{"a": {"min": 2, "max": 1}}"#, r#"{"a": 1.5}"#),
    (r#"{"a": {"min": "b"}}"#, r#"{"a": "a"}"#),
    (r#"{"a": {"min": "b"}}"#, r#"{"a": 1}"#),
    (r#"{"a": {"min": [1, 2]}}"#, r#"{"a": [1, 1, 5]}"#),
    (r#"{"a": {"min": [1, 2]}}"#, r#"{"a": [1, "x"]}"#),
    (
        r#"{"a": {"max": 9007199254740992.0}}"#,
        r#"{"a": 9007199254740993}"#,
    ),
    (r#"{"a": {"max": 1e20}}"#, r#"{"a": 1e21}"#),
    (r#"{"a": {"min": 0.00001}}"#, r#"{"a": 0}"#),
    (r#"{"a": {"max": true}}"#, r#"{"a": 2}"#),
    (
        r#"{"a": {"allowed": [1, 2, "x"]}}"#,
        r#"{"a": [1, 3, "y", true, 1.0, null]}"#,
    ),
    (r#"{"a": {"allowed": [1, 2, "x"]}}"#, r#"{"a": "z"}"#),
    (
        r#"{"a": {"allowed": [1, 2, "x"]}}"#,
        r#"{"a": {"x": 1, "k": 2}}"#,
    ),
    (r#"{"a": {"allowed": [1, 2, "x"]}}"#, r#"{"a": 1.5}"#),
    (
        r#"{"a": {"allowed": [[1], {"b": 1}]}}"#,
        r#"{"a": [[1], {"b": 1.0}, [2], {"c": 1}]}"#,
    ),
    (r#"{"a": {"allowed": {"k": 1}}}"#, r#"{"a": "k"}"#),
    (
        r#"{"a": {"allowed": []}}"#,
        r#"{"a": "it's \"quoted\" é\u0000\u200b"}"#,
    ),
    (
        r#"{"a": {"allowed": ["x"]}}"#,
        r#"{"a": ["it's", "a\"b", "\n\t\\", "\u00a0\u0085\u2028", "\ud83d\ude00"]}"#,
    ),
    (
        r#"{"a": {"regex": "a+", "minlength": 5, "empty": false}}"#,
        r#"{"a": ""}"#,
    ),
    (
        r#"{"a": {"regex": "a+", "minlength": 5, "empty": true}}"#,
        r#"{"a": ""}"#,
    ),
    (r#"{"a": {"empty": false, "min": 5}}"#, r#"{"a": []}"#),
    (r#"{"a": {"empty": false}}"#, r#"{"a": 0}"#),
    (
        r#"{"a": {"nullable": true, "type": "integer", "min": 5}}"#,
        r#"{"a": null}"#,
    ),
    (
        r#"{"a": {"type": "integer", "required": true}}"#,
        r#"{"a": null}"#,
    ),
    (
        r#"{"a": {"required": true}, "b": {"required": true}, "c": {"required": false}}"#,
        r#"{"z": 1}"#,
    ),
    (
        r#"{"a": {"maxlength": 2}}"#,
        r#"{"a": {"x": 1, "y": 2, "z": 3}}"#,
    ),
    (
        r#"{"a": {"maxlength": 2, "minlength": 1}}"#,
        r#"{"a": "😀😀😀"}"#,
    ),
    (r#"{"a": {"minlength": true}}"#, r#"{"a": ""}"#),
    (
        r#"{"a": {"keysrules": {"type": "string", "regex": "[a-z]+"}, "valuesrules": {"type": "integer"}}}"#,
        r#"{"a": {"AB": "x", "cd": 1, "EF": 2}}"#,
    ),
    (
        r#"{"a": {"keysrules": {"type": "integer"}}}"#,
        r#"{"a": {"1": 1}}"#,
    ),
    (
        r#"{"a": {"valuesrules": {"type": "dict", "schema": {"x": {"type": "integer"}}}}}"#,
        r#"{"a": {"k1": {"x": "s"}, "k2": {"y": 1}, "k3": 5}}"#,
    ),
    (
        r#"{"a": {"type": "list", "schema": {"type": "integer", "min": 3}}}"#,
        r#"{"a": [1, "x", 5, null, 2, 2, 2, 2, 2, 2, 2, 1]}"#,
    ),
    (
        r#"{"a": {"type": "list", "schema": {"type": "dict", "schema": {"q": {"type": "string"}, "r": {"required": true}}}}}"#,
        r#"{"a": [{"q": 1}, {"r": 2, "s": 3}, 3, {}]}"#,
    ),
    (
        r#"{"a": {"schema": {"x": {"type": "integer"}}}}"#,
        r#"{"a": []}"#,
    ),
    (
        r#"{"a": {"schema": {"type": "integer"}}}"#,
        r#"{"a": {"x": 1}}"#,
    ),
    (
        r#"{"a": {"schema": {"type": "integer"}, "maxlength": 0}}"#,
        r#"{"a": {"x": 1}}"#,
    ),
    (
        r#"{"a": {"maxlength": 0, "schema": {"type": "integer"}}}"#,
        r#"{"a": {"x": 1}}"#,
    ),
    (r#"{"a": {"schema": {}}}"#, r#"{"a": {"type": 1}}"#),
    (r#"{"a": {"schema": {}}}"#, r#"{"a": [1]}"#),
    (
        r#"{"a": {"schema": {"meta": {"type": "integer"}}}}"#,
        r#"{"a": [1, 2]}"#,
    ),
    (
        r#"{"a": {"schema": {"meta": {"type": "integer"}}}}"#,
        r#"{"a": {"meta": "x"}}"#,
    ),
    (
        r#"{"a": {"type": "list", "schema": {"type": "list", "schema": {"type": "integer"}}}}"#,
        r#"{"a": [[1, "x"], 2, ["y"]]}"#,
    ),
    (
        r#"{"a": {"type": "dict", "schema": {"b": {"type": "dict", "schema": {"c": {"type": "integer", "max": 1}}}}}}"#,
        r#"{"a": {"b": {"c": 2, "d": 1}, "e": 1}, "f": 2}"#,
    ),
    (
        r#"{"10": {"type": "integer"}, "2": {"type": "integer"}, "b": {}, "A": {}}"#,
        r#"{"b": 1, "A": 2, "10": "x", "2": "y", "1": 3, "é": 4, "Z": 5}"#,
    ),
    (
        r#"{"a": {"type": "list", "schema": {"type": "integer"}}}"#,
        r#"{"a": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "x", 12]}"#,
    ),
    (r#"{"a": {"regex": "a|b"}}"#, r#"{"a": "ab"}"#),
    (r#"{"a": {"regex": "a+"}}"#, r#"{"a": "aa\n"}"#),
    (r#"{"a": {"regex": "it's"}}"#, r#"{"a": "x"}"#),
    (r#"{"a": {"regex": "a\\$"}}"#, r#"{"a": "a$bc"}"#),
    (r#"{"a": {"regex": "[a-z]+"}}"#, r#"{"a": 5}"#),
    (
        r#"{"a": {"meta": {"doc": "anything", "list": [1, {"x": [2]}]}, "type": "integer"}}"#,
        r#"{"a": 1}"#,
    ),
    (r#"{"": {"type": "integer"}}"#, r#"{"": "x"}"#),
    (
        r#"{"a": {"type": "dict"}}"#,
        r#"{"a": {"anything": {"goes": [1, 2, 3]}}}"#,
    ),
    (r#"{"a": {"type": "integer", "min": 0}}"#, r#"{"a": -0}"#),
    (r#"{"a": {"max": -0.0}}"#, r#"{"a": 0.0}"#),
    (r#"{"a": {"max": 1.5}}"#, r#"{"a": 1e400}"#),
    (r#"{"a": {"min": 1}}"#, r#"{"a": -1e400}"#),
    (r#"{}"#, r#"{"a": 1, "b": {"c": 2}}"#),
    (r#"{}"#, r#"{}"#),
    // Cerberus crashes on these documents; Sealroom must call them invalid.
    (r#"{"a": {"allowed": {"k": 1}}}"#, r#"{"a": [[1], "k"]}"#),
    (
        r#"{"a": {"schema": {"x": {"type": "integer"}}}}"#,
        r#"{"a": [1, 2]}"#,
    ),
    (
        r#"{"a": {"schema": {"type": "integer"}}}"#,
        r#"{"a": {"type": 1}}"#,
    ),
    // Schemas both must refuse.
    (r#"{"a": 5}"#, r#"{"a": 5}"#),
    (r#"{"a": "rules"}"#, r#"{"a": 5}"#),
    (r#"{"a": {"bogus": 2}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"type": "bogus"}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"type": ""}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"required": "yes"}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"nullable": 1}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"max": null}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"minlength": 1.0}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"allowed": "abc"}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"allowed": [[1, 2]]}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"meta": [[1]]}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"schema": {"x": {"bogus": 1}}}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"schema": 5}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"keysrules": {"bogus": 1}}}"#, r#"{"a": 5}"#),
    (r#"{"a": {"valuesrules": "ref"}}"#, r#"{"a": 5}"#),
    (
        r#"{"a": {"type": "list", "schema": {"type": "integer", "bogus": 1}}}"#,
        r#"{"a": 5}"#,
    ),
    (r#"7"#, r#"{"a": 5}"#),
];

// ---------------------------------------------------------------- the comparison

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    agreed_valid: usize,
    agreed_invalid: usize,
    both_refused_schema: usize,
    cerberus_crashed_sealroom_invalid: usize,
    unsupported_refused: usize,
    /// Why Sealroom refused schemas Cerberus accepts (reason → cases).
    unsupported_reasons: std::collections::BTreeMap<&'static str, usize>,
}

/// The documented reasons for refusing a schema that Cerberus accepts.
const UNSUPPORTED_REASONS: &[(&str, &str)] = &[
    ("not supported by Sealroom", "unsupported rule"),
    ("registry references", "registry reference"),
    ("unsupported regular expression feature", "regex feature"),
    ("may hold a list", "dict schema where a list may come"),
    ("may hold a dict", "item rules where a dict may come"),
    ("holding a non-string", "type list with a non-string"),
];

fn compare(
    id: u64,
    schema_text: &str,
    doc_text: &str,
    answer: &Value,
    tally: &mut Tally,
    failures: &mut Vec<String>,
) {
    tally.cases += 1;
    let result = text(get(answer, "result"));
    let ours = Criteria::from_json_with(schema_text.as_bytes(), &limits());
    let mut fail = |why: String| {
        failures.push(format!(
            "case {id}: {why}\n  schema: {schema_text}\n  doc: {doc_text}"
        ))
    };
    match (result.as_str(), ours) {
        ("schema_error" | "schema_raised", Err(CriteriaError::Schema(_))) => {
            tally.both_refused_schema += 1
        }
        ("schema_error" | "schema_raised", Ok(_)) => fail(format!(
            "Cerberus refused the schema ({}) but Sealroom accepted it",
            text(get(answer, "detail"))
        )),
        (_, Err(CriteriaError::Schema(e))) if e.kind != SchemaErrorKind::Invalid => {
            tally.unsupported_refused += 1;
            let text = e.to_string();
            match UNSUPPORTED_REASONS
                .iter()
                .find(|(needle, _)| text.contains(needle))
            {
                Some((_, reason)) => *tally.unsupported_reasons.entry(reason).or_default() += 1,
                None => fail(format!("refused for an undocumented reason: {e}")),
            }
        }
        (_, Err(e)) => fail(format!(
            "Cerberus accepted the schema ({result}) but Sealroom refused it: {e}"
        )),
        ("raised", Ok(c)) => match c.validate_json(doc_text.as_bytes()) {
            Ok(rep) if !rep.is_valid() => tally.cerberus_crashed_sealroom_invalid += 1,
            Ok(_) => fail(format!(
                "Cerberus raised ({}) but Sealroom says valid",
                text(get(answer, "detail"))
            )),
            Err(e) => fail(format!("Sealroom refused the document: {e}")),
        },
        ("ok", Ok(c)) => match c.validate_json(doc_text.as_bytes()) {
            Ok(rep) => {
                let want_valid = matches!(get(answer, "valid"), Some(Value::Bool(true)));
                let want_errors = get(answer, "errors")
                    .map(Value::to_json)
                    .unwrap_or_default();
                let got = rep.errors().to_json();
                if rep.is_valid() != want_valid || got != want_errors {
                    fail(format!("verdict differs\n  cerberus: {want_valid} {want_errors}\n  sealroom: {} {got}", rep.is_valid()));
                } else if want_valid {
                    tally.agreed_valid += 1;
                } else {
                    tally.agreed_invalid += 1;
                }
            }
            Err(e) => fail(format!("Sealroom refused the document: {e}")),
        },
        (other, _) => fail(format!("unexpected oracle result {other}")),
    }
}

#[test]
fn differential_against_cerberus() -> anyhow::Result<()> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for d in SEED_DOCUMENTS {
        pairs.push((SEED_CRITERIA.to_string(), d.to_string()));
    }
    for (sch, d) in NASTY {
        pairs.push((sch.to_string(), d.to_string()));
    }

    // SEALROOM_DIFF_SEED / SEALROOM_DIFF_SCHEMAS explore beyond the fixed corpus.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(env("SEALROOM_DIFF_SEED").unwrap_or(0x5EA1_2003));
    let mut stats = GenStats::default();
    let n_schemas = env("SEALROOM_DIFF_SCHEMAS").unwrap_or(600) as usize;
    for _ in 0..n_schemas {
        let schema = gen_schema(&mut rng, 3, &mut stats);
        for _ in 0..4 {
            let doc = gen_doc(&mut rng, &schema, 3);
            pairs.push((schema.to_json(), doc.to_json()));
        }
    }
    let cases: Vec<String> = pairs
        .iter()
        .enumerate()
        .map(|(i, (sch, d))| {
            obj(vec![
                ("id", int(i as i64)),
                ("schema", s(sch)),
                ("doc", s(d)),
            ])
            .to_json()
        })
        .collect();
    let answers = oracle(&cases)?;
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (i, (sch, d)) in pairs.iter().enumerate() {
        let answer = answers.get(&(i as u64)).context("missing answer")?;
        compare(i as u64, sch, d, answer, &mut tally, &mut failures);
    }
    eprintln!("differential corpus: {n_schemas} generated schemas + {} fixed cases: {tally:?}; generator: {} invalid, {} unsupported rules injected", SEED_DOCUMENTS.len() + NASTY.len(), stats.invalid, stats.unsupported);
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(15);
        bail!("{n} disagreements with Cerberus:\n{}", failures.join("\n"));
    }
    assert!(tally.cases >= 2000, "corpus too small: {}", tally.cases);
    assert!(
        tally.agreed_valid >= 200 && tally.agreed_invalid >= 800,
        "corpus unbalanced: {tally:?}"
    );
    // Refusals of schemas Cerberus accepts (all for documented reasons, checked above) stay a
    // minority of the corpus.
    assert!(tally.unsupported_refused * 5 <= tally.cases, "{tally:?}");
    Ok(())
}

// ---------------------------------------------------------------- regex differential

const PATTERN_ALPHABET: &[&str] = &[
    "a", "b", "é", ".", "*", "+", "?", "|", "(", ")", "[", "]", "^", "$", "\\", "{", "}", ",", "-",
    "0", "1", "2", "3", "d", "w", "s", "b", "A", "Z", "D", "W", "S", "B", ":", "?:", "(?i)",
    "(?P<g>", "(?#c)", "x", "n", "\\n", "{2}", "{1,3}", "{,2}", "[^", "\\d", "\\s", "\\w", "\\b",
    "\\.", "(?s)", "(?m)", " ", "\n", "'", "u", "U", "8",
];

const REGEX_STRINGS: &[&str] = &[
    "²",
    "e\u{301}",
    "٣",
    "Ⅻ",
    "_a1",
    "\u{2028}",
    "",
    "a",
    "b",
    "ab",
    "ba",
    "aa",
    "abab",
    "aab",
    "A",
    "AB",
    "é",
    "É",
    "a\n",
    "\n",
    "a\nb",
    "ab\n",
    "0",
    "12",
    "123",
    "a1",
    "_",
    " ",
    "\u{1c}",
    "\u{a0}",
    ".",
    "a.b",
    "$",
    "a$",
    "{",
    "{}",
    "a{2}",
    "x",
    "xx",
    "-",
    "]",
    "^",
    "\\",
    "ab\n\n",
    "\u{1F600}",
    "b\nb\n",
];

#[test]
fn regex_differential_against_python_re() -> anyhow::Result<()> {
    let mut rng = Rng(0x0005_EA1E);
    let mut patterns: Vec<String> = REGEXES.iter().map(|p| p.to_string()).collect();
    patterns.extend(
        [
            "(a)\\1",
            "(?=a)a",
            "(?<=a)b",
            "(?>a)",
            "a*+",
            "(?x)a b",
            "(?a)\\w+",
            "\\N{EM DASH}",
            "(?P<n>a)(?P=n)",
            "a**",
            "(",
            ")",
            "[",
            "[]",
            "[a-",
            "\\",
            "a\\",
            "\\q",
            "x{3,2}",
            "(?i",
            "a(?i)",
            "(?L)a",
            "[\\d-z]",
            "\\x4g",
            "\\u12",
            "\\U00110000",
            "\\777",
            "\\0",
            "\\08",
            "\\81",
            "(?P<a>x)(?P<a>y)",
            "(?z)",
            "(?-i:a)",
            "(?i-s:a.)",
            "(?u)a",
            "(?au)a",
            "(?t)a",
            "(?-t:a)",
            "(?i:a)*",
            "(?#x)*",
            "(?i)*",
            "a|*",
            "x{}",
            "x{,}",
            "x{1,}",
            "[\\b]",
            "[\\A]",
            "[\\0]",
            "[\\8]",
            "[a-\\d]",
            "[\\w-a]",
            "[a-]",
            "[-]",
            "[^]]",
            "[]-a]",
            "\\Z",
            "a$$",
            "$a",
            "^^",
            "\\bx\\b*",
            "(?m)$\\n",
            "a{4294967295}",
            "a{99999}",
            "(?P<é>a)",
            "(?P<1a>a)",
            "(?P=nope)",
            "(?P",
            "(?<n>a)",
            "\\ud800",
            "[\\ud800-\\ue000]",
        ]
        .iter()
        .map(|p| p.to_string()),
    );
    for _ in 0..2500 {
        let n = 1 + rng.below(7);
        let p: String = (0..n).map(|_| *rng.pick(PATTERN_ALPHABET)).collect();
        patterns.push(p);
    }
    let strings: Vec<Value> = REGEX_STRINGS.iter().map(|x| s(x)).collect();
    let cases: Vec<String> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            obj(vec![
                ("id", int(i as i64)),
                ("pattern", s(p)),
                ("strings", Value::List(strings.clone())),
            ])
            .to_json()
        })
        .collect();
    let answers = oracle(&cases)?;
    let (mut compiled, mut both_refused, mut unsupported, mut limit) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let a = answers.get(&(i as u64)).context("missing answer")?;
        let result = text(get(a, "result"));
        match (result.as_str(), PyRegex::cerberus(p)) {
            ("re_error", Err(RegexError::Python(_))) => both_refused += 1,
            ("re_error", Err(e)) => {
                // Refused either way; the reason should still be Python's.
                failures.push(format!(
                    "{p:?}: Python refuses ({}) but Sealroom calls it {e:?}",
                    text(get(a, "detail"))
                ))
            }
            ("re_error", Ok(_)) => failures.push(format!(
                "{p:?}: Python refuses ({}) but Sealroom compiles it",
                text(get(a, "detail"))
            )),
            ("compiled", Err(RegexError::Python(m))) => failures.push(format!(
                "{p:?}: Python compiles it, Sealroom says Python refuses: {m}"
            )),
            ("compiled", Err(RegexError::Unsupported(_))) => unsupported += 1,
            ("compiled", Err(RegexError::TooLarge(_))) => limit += 1,
            ("compiled", Ok(re)) => {
                compiled += 1;
                let Some(Value::List(want)) = get(a, "matches") else {
                    bail!("no matches for {p:?}")
                };
                for (x, w) in REGEX_STRINGS.iter().zip(want) {
                    let w = matches!(w, Value::Bool(true));
                    if re.is_match(x) != w {
                        failures.push(format!("{p:?} on {x:?}: Python {w}, Sealroom {}", !w));
                    }
                }
            }
            (other, _) => bail!("oracle said {other}"),
        }
    }
    eprintln!(
        "regex corpus: {} patterns x {} strings; compiled {compiled}, both refused {both_refused}, unsupported {unsupported}, over limits {limit}",
        patterns.len(),
        REGEX_STRINGS.len()
    );
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(25);
        bail!("{n} regex disagreements:\n{}", failures.join("\n"));
    }
    assert!(
        compiled >= 500 && both_refused >= 300,
        "regex corpus unbalanced"
    );
    Ok(())
}
