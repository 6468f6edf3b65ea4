//! Criteria (a Cerberus schema) parsed once into typed rules.
//!
//! What Cerberus 1.3.8's schema validation refuses is refused here, with the field path and the
//! problem; rules outside Sealroom's set are refused as unsupported rather than ignored.

use std::collections::HashMap;
use std::fmt;

use crate::json::{Object, Value};
use crate::py;
use crate::pyre::{PyRegex, RegexError};

/// A mapping schema: field name → rules, in the criteria's order.
#[derive(Debug, Clone)]
pub struct Schema {
    pub(crate) fields: Vec<(String, RuleSet)>,
    index: HashMap<String, usize>,
}

impl Schema {
    pub(crate) fn get(&self, field: &str) -> Option<&RuleSet> {
        self.index.get(field).map(|&i| &self.fields[i].1)
    }

    /// The field names, in order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }
}

/// The rules for one field (or for each list item / mapping key / mapping value).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub(crate) nullable: bool,
    pub(crate) required: bool,
    pub(crate) type_rule: Option<TypeRule>,
    pub(crate) empty: Option<bool>,
    /// The remaining rules in the criteria's order (Cerberus evaluates them in that order).
    pub(crate) rules: Vec<Rule>,
}

/// The types of Cerberus's `type` rule. `Binary`, `Date`, `Datetime` and `Set` exist in Cerberus
/// but no JSON value has them, so they never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeName {
    Boolean,
    Integer,
    Float,
    Number,
    String,
    Dict,
    List,
    Container,
    Binary,
    Date,
    Datetime,
    Set,
}

impl TypeName {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "float" => Self::Float,
            "number" => Self::Number,
            "string" => Self::String,
            "dict" => Self::Dict,
            "list" => Self::List,
            "container" => Self::Container,
            "binary" => Self::Binary,
            "date" => Self::Date,
            "datetime" => Self::Datetime,
            "set" => Self::Set,
            _ => return None,
        })
    }

    /// Cerberus's `types_mapping`, applied to values from `json.loads` (`bool` is an `int`).
    pub(crate) fn matches(self, v: &Value) -> bool {
        match self {
            Self::Boolean => matches!(v, Value::Bool(_)),
            Self::Integer => matches!(v, Value::Int(_) | Value::Bool(_)),
            Self::Float => matches!(v, Value::Float(_) | Value::Int(_) | Value::Bool(_)),
            Self::Number => matches!(v, Value::Float(_) | Value::Int(_)),
            Self::String => matches!(v, Value::Str(_)),
            Self::Dict => matches!(v, Value::Object(_)),
            Self::List => matches!(v, Value::List(_)),
            Self::Container => matches!(v, Value::List(_) | Value::Object(_)),
            Self::Binary | Self::Date | Self::Datetime | Self::Set => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TypeRule {
    pub(crate) types: Vec<TypeName>,
    /// `str(constraint)` for the message.
    pub(crate) display: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Rule {
    Min(Value),
    Max(Value),
    MinLength(Value),
    MaxLength(Value),
    Allowed(Vec<Value>),
    Regex(Box<PyRegex>),
    Schema(Box<SchemaRule>),
    KeysRules(Box<RuleSet>),
    ValuesRules(Box<RuleSet>),
}

/// Cerberus's `schema` rule means a mapping schema for dict values and a rules set for each item
/// of list values; a constraint may be valid as either or both.
#[derive(Debug, Clone)]
pub(crate) struct SchemaRule {
    /// Whether every value of the constraint is an object.
    pub(crate) all_objects: bool,
    pub(crate) mapping: Option<Schema>,
    pub(crate) items: Option<RuleSet>,
}

/// How a criteria document is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaErrorKind {
    /// Cerberus refuses it too (or crashes on it).
    Invalid,
    /// Valid Cerberus, but outside the rules Sealroom supports.
    Unsupported,
    /// Over Sealroom's limits.
    Limit,
}

/// A criteria document that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaError {
    pub kind: SchemaErrorKind,
    /// Where: field names, with `[]` for list-item rules, `{keys}`/`{values}` for keysrules and
    /// valuesrules. Empty for the document as a whole.
    pub path: Vec<String>,
    /// The rule concerned, if any.
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "criteria")?;
        } else {
            write!(f, "criteria field '{}'", self.path.join("."))?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ", rule '{rule}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Sealroom's limits on untrusted criteria.
#[derive(Debug, Clone)]
pub struct SchemaLimits {
    /// Deepest nesting of rule sets (a `schema`/`keysrules`/`valuesrules` inside another adds one).
    pub max_rule_depth: usize,
    /// Most `regex` rules in one criteria document.
    pub max_regexes: usize,
    /// Most rule sets (fields, list items, keys, values) in one criteria document.
    pub max_rule_sets: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_rule_depth: 32,
            max_regexes: 256,
            max_rule_sets: 10_000,
        }
    }
}

/// Rules Cerberus has and Sealroom does not run.
const UNSUPPORTED_RULES: &[&str] = &[
    "allof",
    "anyof",
    "noneof",
    "oneof",
    "allow_unknown",
    "require_all",
    "check_with",
    "validator",
    "coerce",
    "contains",
    "default",
    "default_setter",
    "dependencies",
    "excludes",
    "forbidden",
    "items",
    "purge_unknown",
    "readonly",
    "rename",
    "rename_handler",
    "keyschema",
    "valueschema",
    "anyof_type",
    "allof_type",
    "oneof_type",
    "noneof_type",
    "anyof_schema",
    "oneof_schema",
    "allof_schema",
    "noneof_schema",
    "anyof_regex",
    "oneof_regex",
];

struct Ctx<'l> {
    limits: &'l SchemaLimits,
    regexes: usize,
    rule_sets: usize,
}

type R<T> = Result<T, SchemaError>;

fn err(
    kind: SchemaErrorKind,
    path: &[String],
    rule: Option<&str>,
    message: impl Into<String>,
) -> SchemaError {
    SchemaError {
        kind,
        path: path.to_vec(),
        rule: rule.map(str::to_string),
        message: message.into(),
    }
}

/// Parses a criteria document (already decoded JSON).
pub fn parse_criteria(v: &Value, limits: &SchemaLimits) -> R<Schema> {
    let Value::Object(obj) = v else {
        let kind = if matches!(v, Value::List(_)) {
            SchemaErrorKind::Unsupported
        } else {
            SchemaErrorKind::Invalid
        };
        return Err(err(
            kind,
            &[],
            None,
            format!(
                "must be a JSON object mapping field names to rules, not {}",
                v.kind()
            ),
        ));
    };
    check_hashable(v, &mut Vec::new())?;
    let mut ctx = Ctx {
        limits,
        regexes: 0,
        rule_sets: 0,
    };
    let schema = parse_schema(obj, &[], 0, &mut ctx)?;
    lint_schema(&schema, &[])?;
    check_type_lists(v, &mut Vec::new())?;
    Ok(schema)
}

/// Cerberus's schema check raises `TypeError` on a `type` list holding a non-string wherever it
/// reads the object as rules, including readings it then discards (a `schema` constraint is read
/// both as a dict schema and as list-item rules, `meta` contents included). Refuse such lists
/// anywhere rather than guess which readings Cerberus attempts.
fn check_type_lists(v: &Value, path: &mut Vec<String>) -> R<()> {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter() {
                if k == "type" {
                    if let Value::List(items) = x {
                        if items.iter().any(|i| !matches!(i, Value::Str(_))) {
                            return Err(err(
                                SchemaErrorKind::Unsupported,
                                path,
                                Some("type"),
                                "a \"type\" list holding a non-string (Cerberus fails on it wherever it \
                                 reads it as a rule)",
                            ));
                        }
                    }
                }
                path.push(k.clone());
                check_type_lists(x, path)?;
                path.pop();
            }
        }
        Value::List(items) => {
            for x in items {
                check_type_lists(x, path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Refuses `schema` constraints that Cerberus accepts but would misapply to a value that can
/// reach them (checked after parsing, so that which readings are valid stays Cerberus's):
/// a dict schema on a field that may hold a list (Cerberus applies the field names to each item
/// as rules, and usually crashes), and list-item rules made only of objects on a field that may
/// hold a dict (Cerberus treats the rule names as field names).
fn lint_schema(schema: &Schema, path: &[String]) -> R<()> {
    for (name, rs) in &schema.fields {
        let mut p = path.to_vec();
        p.push(name.clone());
        lint_rule_set(rs, &p)?;
    }
    Ok(())
}

fn lint_rule_set(rs: &RuleSet, path: &[String]) -> R<()> {
    let possible = |kind: TypeName| match &rs.type_rule {
        None => true,
        Some(t) => {
            t.types.is_empty()
                || t.types
                    .iter()
                    .any(|ty| *ty == kind || *ty == TypeName::Container)
        }
    };
    for rule in &rs.rules {
        match rule {
            Rule::Schema(sr) => {
                if possible(TypeName::List) {
                    match &sr.items {
                        None => {
                            return Err(err(
                                SchemaErrorKind::Unsupported,
                                path,
                                Some("schema"),
                                "this is a schema for dict values, yet the field may hold a list: Cerberus \
                                 would apply it to each item as rules, and usually crash (add \"type\": \"dict\")",
                            ))
                        }
                        Some(items) => {
                            let mut p = path.to_vec();
                            p.push("[]".into());
                            lint_rule_set(items, &p)?;
                        }
                    }
                }
                if possible(TypeName::Dict) {
                    match &sr.mapping {
                        None if sr.all_objects => {
                            return Err(err(
                                SchemaErrorKind::Unsupported,
                                path,
                                Some("schema"),
                                "these are rules for list items, yet the field may hold a dict: Cerberus would \
                                 take the rule names for field names (add \"type\": \"list\", or fix the dict schema)",
                            ))
                        }
                        None => {}
                        Some(m) => lint_schema(m, path)?,
                    }
                }
            }
            // Keys are strings: no `schema` under `keysrules` is ever applied.
            Rule::ValuesRules(r) if possible(TypeName::Dict) => {
                let mut p = path.to_vec();
                p.push("{values}".into());
                lint_rule_set(r, &p)?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Cerberus hashes every schema (`mapping_hash`), turning arrays into tuples; an array directly
/// inside an array stays a `list` and the hash raises `TypeError`. Refuse what Cerberus crashes on.
fn check_hashable(v: &Value, path: &mut Vec<String>) -> R<()> {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter() {
                path.push(k.clone());
                check_hashable(x, path)?;
                path.pop();
            }
        }
        Value::List(items) => {
            for x in items {
                if matches!(x, Value::List(_)) {
                    return Err(err(
                        SchemaErrorKind::Invalid,
                        path,
                        None,
                        "an array directly inside an array (Cerberus cannot hash it and fails)",
                    ));
                }
                check_hashable(x, path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn parse_schema(obj: &Object, path: &[String], depth: usize, ctx: &mut Ctx<'_>) -> R<Schema> {
    let mut fields = Vec::with_capacity(obj.len());
    let mut index = HashMap::with_capacity(obj.len());
    for (name, def) in obj.iter() {
        let mut p = path.to_vec();
        p.push(name.clone());
        let rules = match def {
            Value::Object(o) => parse_rule_set(o, &p, depth + 1, ctx)?,
            Value::Str(_) => {
                return Err(err(
                    SchemaErrorKind::Invalid,
                    &p,
                    None,
                    "rules must be an object (rules-set registry references are not supported)",
                ))
            }
            other => {
                return Err(err(
                    SchemaErrorKind::Invalid,
                    &p,
                    None,
                    format!("rules must be an object, not {}", other.kind()),
                ))
            }
        };
        index.insert(name.clone(), fields.len());
        fields.push((name.clone(), rules));
    }
    Ok(Schema { fields, index })
}

fn want_bool(c: &Value, path: &[String], rule: &str) -> R<bool> {
    match c {
        Value::Bool(b) => Ok(*b),
        Value::Null => Err(err(
            SchemaErrorKind::Invalid,
            path,
            Some(rule),
            "null value not allowed",
        )),
        other => Err(err(
            SchemaErrorKind::Invalid,
            path,
            Some(rule),
            format!("must be of boolean type, not {}", other.kind()),
        )),
    }
}

fn parse_rule_set(obj: &Object, path: &[String], depth: usize, ctx: &mut Ctx<'_>) -> R<RuleSet> {
    if depth > ctx.limits.max_rule_depth {
        return Err(err(
            SchemaErrorKind::Limit,
            path,
            None,
            format!(
                "rules nested deeper than the limit of {}",
                ctx.limits.max_rule_depth
            ),
        ));
    }
    ctx.rule_sets += 1;
    if ctx.rule_sets > ctx.limits.max_rule_sets {
        return Err(err(
            SchemaErrorKind::Limit,
            path,
            None,
            format!("more than {} rule sets", ctx.limits.max_rule_sets),
        ));
    }
    let mut rs = RuleSet::default();
    for (rule, c) in obj.iter() {
        let r = Some(rule.as_str());
        let invalid = |m: String| err(SchemaErrorKind::Invalid, path, r, m);
        let unsupported_here = |m: &str| err(SchemaErrorKind::Unsupported, path, r, m);
        match rule.as_str() {
            "type" => {
                let (names, display): (Vec<&str>, String) = match c {
                    Value::Str(s) => (vec![s.as_str()], s.clone()),
                    Value::List(items) => {
                        let mut names = Vec::new();
                        for i in items {
                            match i {
                                Value::Str(s) => names.push(s.as_str()),
                                other => return Err(invalid(format!("type names must be strings, not {}", other.kind()))),
                            }
                        }
                        (names, py::repr(c))
                    }
                    Value::Null => return Err(invalid("null value not allowed".into())),
                    other => return Err(invalid(format!("must be of ['string', 'list'] type, not {}", other.kind()))),
                };
                let mut types = Vec::new();
                let mut unknown = Vec::new();
                for n in names {
                    match TypeName::parse(n) {
                        Some(t) => types.push(t),
                        None => unknown.push(n),
                    }
                }
                if !unknown.is_empty() {
                    return Err(invalid(format!("Unsupported types: {}", unknown.join(", "))));
                }
                rs.type_rule = Some(TypeRule { types, display });
            }
            "required" => rs.required = want_bool(c, path, rule)?,
            "nullable" => rs.nullable = want_bool(c, path, rule)?,
            "empty" => rs.empty = Some(want_bool(c, path, rule)?),
            "min" | "max" => {
                if matches!(c, Value::Null) {
                    return Err(invalid("null value not allowed".into()));
                }
                rs.rules.push(if rule == "min" { Rule::Min(c.clone()) } else { Rule::Max(c.clone()) });
            }
            "minlength" | "maxlength" => {
                match c {
                    Value::Int(_) | Value::Bool(_) => {}
                    Value::Null => return Err(invalid("null value not allowed".into())),
                    other => return Err(invalid(format!("must be of integer type, not {}", other.kind()))),
                }
                rs.rules.push(if rule == "minlength" { Rule::MinLength(c.clone()) } else { Rule::MaxLength(c.clone()) });
            }
            "allowed" => {
                let values = match c {
                    Value::List(items) => items.clone(),
                    // `x in dict` tests the keys.
                    Value::Object(o) => o.keys().map(|k| Value::Str(k.clone())).collect(),
                    Value::Null => return Err(invalid("null value not allowed".into())),
                    other => return Err(invalid(format!("must be of container type, not {}", other.kind()))),
                };
                rs.rules.push(Rule::Allowed(values));
            }
            "regex" => {
                let Value::Str(p) = c else {
                    return Err(invalid(format!("must be of string type, not {}", c.kind())));
                };
                ctx.regexes += 1;
                if ctx.regexes > ctx.limits.max_regexes {
                    return Err(err(SchemaErrorKind::Limit, path, r, format!("more than {} regex rules", ctx.limits.max_regexes)));
                }
                let re = PyRegex::cerberus(p).map_err(|e| {
                    let kind = match e {
                        RegexError::Python(_) => SchemaErrorKind::Invalid,
                        RegexError::Unsupported(_) => SchemaErrorKind::Unsupported,
                        RegexError::TooLarge(_) => SchemaErrorKind::Limit,
                    };
                    err(kind, path, r, format!("{e} in {}", py::str_repr(p)))
                })?;
                rs.rules.push(Rule::Regex(Box::new(re)));
            }
            "schema" => {
                let Value::Object(o) = c else {
                    return Err(match c {
                        Value::Str(_) => unsupported_here("schema registry references are not supported"),
                        Value::Null => invalid("null value not allowed".into()),
                        other => invalid(format!("must be of dict type, not {}", other.kind())),
                    });
                };
                let mut sub = path.to_vec();
                let mapping = parse_schema(o, path, depth, ctx);
                sub.push("[]".into());
                let items = parse_rule_set(o, &sub, depth + 1, ctx);
                for e in [mapping.as_ref().err(), items.as_ref().err()].into_iter().flatten() {
                    if e.kind == SchemaErrorKind::Limit {
                        return Err(e.clone());
                    }
                }
                match (mapping, items) {
                    (Err(me), Err(ie)) => {
                        // Report the reading Cerberus's own heuristic picks: a mapping schema when
                        // every value is an object.
                        let looks_mapping = o.iter().all(|(_, v)| matches!(v, Value::Object(_)));
                        let pick = if looks_mapping { me } else { ie };
                        return Err(pick);
                    }
                    (m, i) => rs.rules.push(Rule::Schema(Box::new(SchemaRule {
                        mapping: m.ok(),
                        items: i.ok(),
                        all_objects: o.iter().all(|(_, v)| matches!(v, Value::Object(_))),
                    }))),
                }
            }
            "keysrules" | "valuesrules" => {
                let Value::Object(o) = c else {
                    return Err(match c {
                        Value::Str(_) => unsupported_here("rules-set registry references are not supported"),
                        Value::Null => invalid("null value not allowed".into()),
                        other => invalid(format!("must be of dict type, not {}", other.kind())),
                    });
                };
                let mut sub = path.to_vec();
                sub.push(if rule == "keysrules" { "{keys}".into() } else { "{values}".into() });
                let set = Box::new(parse_rule_set(o, &sub, depth + 1, ctx)?);
                rs.rules.push(if rule == "keysrules" { Rule::KeysRules(set) } else { Rule::ValuesRules(set) });
            }
            "meta" => {
                if matches!(c, Value::Null) {
                    return Err(invalid("null value not allowed".into()));
                }
            }
            other if UNSUPPORTED_RULES.contains(&other) => {
                return Err(err(
                    SchemaErrorKind::Unsupported,
                    path,
                    r,
                    "this Cerberus rule is not supported by Sealroom (supported: type, schema, required, nullable, \
                     min, max, minlength, maxlength, allowed, regex, keysrules, valuesrules, empty, meta)",
                ))
            }
            _ => return Err(invalid("unknown rule".into())),
        }
    }
    Ok(rs)
}
