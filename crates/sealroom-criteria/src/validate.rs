//! Validation with Cerberus 1.3.8's semantics, and its `BasicErrorHandler` error tree.
//!
//! This follows `cerberus/validator.py` closely: each (sub)document is validated by a "child
//! validator" that yields `ValidationError`s with a document path and a schema path; errors are
//! sorted by (document path, schema path); group errors (`schema`, `keysrules`, `valuesrules`)
//! carry their child errors, whose schema paths are trimmed as `_drop_nodes_from_errorpaths`
//! does; and the tree is built as `BasicErrorHandler._insert_error` builds it. The order of keys
//! and messages in the output is therefore Cerberus's.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::json::{Object, Value};
use crate::py;
use crate::schema::{Rule, RuleSet, Schema};

/// One step of a path: a mapping key, or a list index (Python `int`, sorted before `str`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKey {
    Index(usize),
    Key(String),
}

impl fmt::Display for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathKey::Index(i) => write!(f, "{i}"),
            PathKey::Key(k) => f.write_str(k),
        }
    }
}

#[derive(Debug, Clone)]
struct VError {
    doc_path: Vec<PathKey>,
    schema_path: Vec<PathKey>,
    kind: VKind,
}

#[derive(Debug, Clone)]
enum VKind {
    Message(String),
    Group(Vec<VError>),
}

enum Child<'s> {
    Mapping(&'s Schema),
    /// The same rules for every key (list items, keysrules, valuesrules).
    Uniform(&'s RuleSet),
}

fn key(s: &str) -> PathKey {
    PathKey::Key(s.to_string())
}

fn join(base: &[PathKey], more: &[PathKey]) -> Vec<PathKey> {
    let mut v = Vec::with_capacity(base.len() + more.len());
    v.extend_from_slice(base);
    v.extend_from_slice(more);
    v
}

/// `Validator.validate` of one (sub)document, errors sorted.
fn validate_doc(
    fields: &[(PathKey, &Value)],
    schema: Child<'_>,
    dpath: &[PathKey],
    spath: &[PathKey],
) -> Vec<VError> {
    let mut errors = Vec::new();
    for (field, value) in fields {
        let rules = match &schema {
            Child::Mapping(s) => match field {
                PathKey::Key(k) => s.get(k),
                PathKey::Index(_) => None,
            },
            Child::Uniform(r) => Some(*r),
        };
        match rules {
            Some(r) => validate_definitions(r, field, value, dpath, spath, &mut errors),
            None => errors.push(VError {
                doc_path: join(dpath, std::slice::from_ref(field)),
                schema_path: spath.to_vec(),
                kind: VKind::Message("unknown field".into()),
            }),
        }
    }
    if let Child::Mapping(s) = schema {
        if s.fields.iter().any(|(_, r)| r.required) {
            let present: HashSet<&str> = fields
                .iter()
                .filter_map(|(k, _)| match k {
                    PathKey::Key(k) => Some(k.as_str()),
                    PathKey::Index(_) => None,
                })
                .collect();
            for (name, r) in &s.fields {
                if r.required && !present.contains(name.as_str()) {
                    errors.push(VError {
                        doc_path: join(dpath, &[key(name)]),
                        schema_path: join(spath, &[key(name), key("required")]),
                        kind: VKind::Message("required field".into()),
                    });
                }
            }
        }
    }
    sort_errors(&mut errors);
    errors
}

/// `ValidationError.__lt__`: by document path, then schema path (shorter prefix first).
fn sort_errors(errors: &mut [VError]) {
    errors.sort_by(|a, b| {
        a.doc_path
            .cmp(&b.doc_path)
            .then_with(|| a.schema_path.cmp(&b.schema_path))
    });
}

/// `_drop_nodes_from_errorpaths(errors, [], items)` relative to a schema path of length `base`.
fn drop_schema_nodes(errors: &mut [VError], base: usize, items: &[usize]) {
    for e in errors {
        for &i in items.iter().rev() {
            let at = base + i;
            if at < e.schema_path.len() {
                e.schema_path.remove(at);
            }
        }
        if let VKind::Group(children) = &mut e.kind {
            drop_schema_nodes(children, base, items);
        }
    }
}

fn object_fields(o: &Object) -> Vec<(PathKey, &Value)> {
    o.iter().map(|(k, v)| (key(k), v)).collect()
}

/// `__validate_definitions`: the rules of one field, in Cerberus's order and with its skips.
fn validate_definitions(
    rules: &RuleSet,
    field: &PathKey,
    value: &Value,
    dpath: &[PathKey],
    spath: &[PathKey],
    errors: &mut Vec<VError>,
) {
    let err = |rule: &str, message: String| VError {
        doc_path: join(dpath, std::slice::from_ref(field)),
        schema_path: join(spath, &[field.clone(), key(rule)]),
        kind: VKind::Message(message),
    };
    // `nullable` is evaluated for every field; a None value skips every other rule.
    if matches!(value, Value::Null) {
        if !rules.nullable {
            errors.push(err("nullable", "null value not allowed".into()));
        }
        return;
    }
    if let Some(t) = &rules.type_rule {
        if !t.types.is_empty() && !t.types.iter().any(|ty| ty.matches(value)) {
            errors.push(err("type", format!("must be of {} type", t.display)));
            return;
        }
    }
    // `empty` on an empty sized value skips allowed, minlength, maxlength and regex.
    let mut skip_content_rules = false;
    if let Some(empty_ok) = rules.empty {
        if py::len(value) == Some(0) {
            skip_content_rules = true;
            if !empty_ok {
                errors.push(err("empty", "empty values not allowed".into()));
            }
        }
    }
    let here = join(dpath, std::slice::from_ref(field));
    for rule in &rules.rules {
        match rule {
            Rule::Allowed(allowed) if !skip_content_rules => {
                let is_allowed = |x: &Value| allowed.iter().any(|a| py::eq(x, a));
                match value {
                    Value::List(items) => {
                        let bad: Vec<&Value> = items.iter().filter(|x| !is_allowed(x)).collect();
                        if !bad.is_empty() {
                            errors.push(err(
                                "allowed",
                                format!("unallowed values {}", py::tuple_repr(&bad)),
                            ));
                        }
                    }
                    Value::Object(o) => {
                        let keys: Vec<Value> = o.keys().map(|k| Value::Str(k.clone())).collect();
                        let bad: Vec<&Value> = keys.iter().filter(|x| !is_allowed(x)).collect();
                        if !bad.is_empty() {
                            errors.push(err(
                                "allowed",
                                format!("unallowed values {}", py::tuple_repr(&bad)),
                            ));
                        }
                    }
                    v => {
                        if !is_allowed(v) {
                            errors.push(err("allowed", format!("unallowed value {}", py::str(v))));
                        }
                    }
                }
            }
            Rule::MinLength(bound) if !skip_content_rules => {
                if let Some(n) = py::len(value) {
                    if py::cmp_len(n, bound) == Some(std::cmp::Ordering::Less) {
                        errors.push(err(
                            "minlength",
                            format!("min length is {}", py::str(bound)),
                        ));
                    }
                }
            }
            Rule::MaxLength(bound) if !skip_content_rules => {
                if let Some(n) = py::len(value) {
                    if py::cmp_len(n, bound) == Some(std::cmp::Ordering::Greater) {
                        errors.push(err(
                            "maxlength",
                            format!("max length is {}", py::str(bound)),
                        ));
                    }
                }
            }
            Rule::Regex(re) if !skip_content_rules => {
                if let Value::Str(s) = value {
                    if !re.is_match(s) {
                        errors.push(err(
                            "regex",
                            format!("value does not match regex '{}'", re.pattern()),
                        ));
                    }
                }
            }
            Rule::Allowed(_) | Rule::MinLength(_) | Rule::MaxLength(_) | Rule::Regex(_) => {}
            Rule::Min(bound) => {
                if py::lt(value, bound) == Ok(true) {
                    errors.push(err("min", format!("min value is {}", py::str(bound))));
                }
            }
            Rule::Max(bound) => {
                if py::gt(value, bound) == Ok(true) {
                    errors.push(err("max", format!("max value is {}", py::str(bound))));
                }
            }
            Rule::Schema(sr) => {
                let child_spath = join(spath, &[field.clone(), key("schema")]);
                match value {
                    Value::List(items) => match &sr.items {
                        Some(item_rules) => {
                            let fields: Vec<(PathKey, &Value)> = items
                                .iter()
                                .enumerate()
                                .map(|(i, v)| (PathKey::Index(i), v))
                                .collect();
                            let mut child = validate_doc(
                                &fields,
                                Child::Uniform(item_rules),
                                &here,
                                &child_spath,
                            );
                            if !child.is_empty() {
                                drop_schema_nodes(&mut child, spath.len(), &[2]);
                                errors.push(VError {
                                    doc_path: here.clone(),
                                    schema_path: child_spath,
                                    kind: VKind::Group(child),
                                });
                            }
                        }
                        // A mapping schema applied to list items: Cerberus raises (no handler for
                        // the field names as rules) unless the list is empty. Report it invalid.
                        None if items.is_empty() => {}
                        None => {
                            errors.push(err("schema", "must be of dict type".into()));
                            return;
                        }
                    },
                    Value::Object(o) => match &sr.mapping {
                        Some(schema) => {
                            let fields = object_fields(o);
                            let child =
                                validate_doc(&fields, Child::Mapping(schema), &here, &child_spath);
                            if !child.is_empty() {
                                errors.push(VError {
                                    doc_path: here.clone(),
                                    schema_path: child_spath,
                                    kind: VKind::Group(child),
                                });
                            }
                        }
                        // A list-item rules set applied to a mapping: Cerberus reports
                        // "must be of dict type" and stops evaluating this field's rules.
                        None => {
                            errors.push(err("schema", "must be of dict type".into()));
                            return;
                        }
                    },
                    _ => {}
                }
            }
            Rule::KeysRules(kr) => {
                if let Value::Object(o) = value {
                    let keys: Vec<Value> = o.keys().map(|k| Value::Str(k.clone())).collect();
                    let fields: Vec<(PathKey, &Value)> =
                        o.keys().zip(&keys).map(|(k, v)| (key(k), v)).collect();
                    let child_spath = join(spath, &[field.clone(), key("keysrules")]);
                    let mut child = validate_doc(&fields, Child::Uniform(kr), &here, &child_spath);
                    if !child.is_empty() {
                        drop_schema_nodes(&mut child, spath.len(), &[2, 4]);
                        errors.push(VError {
                            doc_path: here.clone(),
                            schema_path: child_spath,
                            kind: VKind::Group(child),
                        });
                    }
                }
            }
            Rule::ValuesRules(vr) => {
                if let Value::Object(o) = value {
                    let fields = object_fields(o);
                    let child_spath = join(spath, &[field.clone(), key("valuesrules")]);
                    let mut child = validate_doc(&fields, Child::Uniform(vr), &here, &child_spath);
                    if !child.is_empty() {
                        drop_schema_nodes(&mut child, spath.len(), &[2]);
                        errors.push(VError {
                            doc_path: here.clone(),
                            schema_path: child_spath,
                            kind: VKind::Group(child),
                        });
                    }
                }
            }
        }
    }
}

/// Validates a top-level document (a JSON object) against a schema.
pub(crate) fn validate_root(schema: &Schema, doc: &Object) -> ErrorTree {
    let fields = object_fields(doc);
    let errors = validate_doc(&fields, Child::Mapping(schema), &[], &[]);
    let mut tree = ErrorTree::default();
    for e in &errors {
        tree.add(e);
    }
    tree
}

/// Cerberus's `validator.errors`: `{field: [message, ..., {subfield: [...]}]}`.
///
/// Keys and messages are in Cerberus's order. A list item's errors are keyed by its index
/// (written as a string in JSON, as Python's `json.dumps` writes `int` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorTree {
    entries: Vec<(PathKey, FieldErrors)>,
    /// Position of each key in `entries` (documents may have very many fields).
    index: HashMap<PathKey, usize>,
}

/// The errors of one field: its own messages, then the errors of its subfields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    pub messages: Vec<String>,
    pub children: ErrorTree,
}

impl ErrorTree {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fields with errors, in Cerberus's order.
    pub fn iter(&self) -> impl Iterator<Item = (&PathKey, &FieldErrors)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    fn entry(&mut self, k: &PathKey) -> &mut FieldErrors {
        let pos = match self.index.get(k) {
            Some(&p) => p,
            None => {
                self.entries.push((k.clone(), FieldErrors::default()));
                self.index.insert(k.clone(), self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        &mut self.entries[pos].1
    }

    /// `BasicErrorHandler._insert_error`.
    fn insert(&mut self, path: &[PathKey], message: &str) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.entry(first);
        if rest.is_empty() {
            node.messages.push(message.to_string());
        } else {
            node.children.insert(rest, message);
        }
    }

    /// `BasicErrorHandler.add` (no logic errors: `*of` rules are not supported).
    fn add(&mut self, e: &VError) {
        match &e.kind {
            VKind::Message(m) => self.insert(&e.doc_path, m),
            VKind::Group(children) => {
                for c in children {
                    self.add(c);
                }
            }
        }
    }

    /// Every message with its dotted path (`report.accuracy.value`), depth first, in order.
    pub fn flatten(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.flatten_into("", &mut out);
        out
    }

    fn flatten_into(&self, prefix: &str, out: &mut Vec<(String, String)>) {
        for (k, fe) in &self.entries {
            let path = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            for m in &fe.messages {
                out.push((path.clone(), m.clone()));
            }
            fe.children.flatten_into(&path, out);
        }
    }

    /// The tree as a JSON value (`{"field": ["message", {...}]}`).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        for (k, fe) in &self.entries {
            let mut items: Vec<Value> = fe.messages.iter().map(|m| Value::Str(m.clone())).collect();
            if !fe.children.is_empty() {
                items.push(fe.children.to_value());
            }
            // Keys are unique: a tree level holds either mapping keys or list indices.
            o.push_unchecked(k.to_string(), Value::List(items));
        }
        Value::Object(o)
    }

    /// Compact JSON, keys in Cerberus's order.
    pub fn to_json(&self) -> String {
        self.to_value().to_json()
    }
}

impl Serialize for ErrorTree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, fe) in &self.entries {
            map.serialize_entry(&k.to_string(), fe)?;
        }
        map.end()
    }
}

impl Serialize for FieldErrors {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.messages.len() + usize::from(!self.children.is_empty());
        let mut seq = s.serialize_seq(Some(n))?;
        for m in &self.messages {
            seq.serialize_element(m)?;
        }
        if !self.children.is_empty() {
            seq.serialize_element(&self.children)?;
        }
        seq.end()
    }
}

impl fmt::Display for ErrorTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}
