//! A bounded JSON parser that keeps what Python's `json.loads` keeps and Cerberus relies on.
//!
//! `serde_json` (without `arbitrary_precision`) turns an integer that does not fit 64 bits into a
//! float and sorts object keys; Cerberus sees a Python `int` and a `dict` in insertion order. This
//! parser keeps integers exact ([`num_bigint::BigInt`]), integers apart from floats (`1` vs `1.0`),
//! object keys in first-seen order, and enforces size and depth limits on untrusted input.
//!
//! Differences from `json.loads`, all of them refusals: `NaN`/`Infinity`, lone UTF-16 surrogates
//! (`"\ud800"`), a byte-order mark, and (when [`ParseOptions::reject_duplicate_keys`] is set) an
//! object that names a key twice. Python keeps the last value of a duplicated key at the position
//! of the first; so does this parser when duplicates are allowed.

use std::collections::HashMap;
use std::fmt;

use num_bigint::BigInt;

/// A JSON value with Python's distinctions (int vs float, insertion-ordered objects).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer literal (no fraction, no exponent): Python `int`, exact.
    Int(BigInt),
    /// A literal with a fraction or exponent: Python `float` (`1e400` is infinity, as in Python).
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Object(Object),
}

/// A JSON object: unique keys in first-seen order (Python `dict` order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    entries: Vec<(String, Value)>,
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Linear lookup (objects in criteria are small; the validator indexes large ones itself).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Appends, or replaces the value of an existing key in place (Python `d[k] = v`).
    pub fn insert(&mut self, key: String, value: Value) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// Appends without looking for `key` (the caller knows it is new).
    pub(crate) fn push_unchecked(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

/// Limits and strictness for [`parse`].
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and objects (the top-level value is depth 1).
    pub max_depth: usize,
    /// Refuse an object that names a key twice (Python silently keeps the last value).
    pub reject_duplicate_keys: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
            max_depth: 128,
            reject_duplicate_keys: true,
        }
    }
}

/// Why a JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line} column {column}")]
pub struct JsonError {
    pub message: String,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
}

/// Python's `int(str)` refuses more than 4300 digits (CPython's `sys.int_info.default_max_str_digits`).
const MAX_INT_DIGITS: usize = 4300;

/// Parses one JSON text (surrounding whitespace allowed) within `opts`' limits.
pub fn parse(input: &[u8], opts: &ParseOptions) -> Result<Value, JsonError> {
    if input.len() > opts.max_bytes {
        return Err(JsonError {
            message: format!(
                "input is {} bytes, more than the limit of {}",
                input.len(),
                opts.max_bytes
            ),
            line: 1,
            column: 1,
        });
    }
    let text = match std::str::from_utf8(input) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            return Err(error_at(input, at, "invalid UTF-8"));
        }
    };
    if text.starts_with('\u{feff}') {
        return Err(error_at(input, 0, "unexpected UTF-8 byte-order mark"));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        opts,
    };
    p.ws();
    let v = p.value(1)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("extra data after the JSON value"));
    }
    Ok(v)
}

fn error_at(input: &[u8], at: usize, message: &str) -> JsonError {
    let before = &input[..at.min(input.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    JsonError {
        message: message.to_string(),
        line,
        column,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    opts: &'a ParseOptions,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> JsonError {
        error_at(self.s, self.pos, message)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.s.get(self.pos) {
            None => Err(self.err("expected a value, found the end of the input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'N' | b'I') => Err(self.err("NaN and Infinity are not JSON")),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, JsonError> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn enter(&self, depth: usize) -> Result<(), JsonError> {
        if depth > self.opts.max_depth {
            Err(self.err(&format!(
                "nesting deeper than the limit of {}",
                self.opts.max_depth
            )))
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.enter(depth)?;
        self.pos += 1;
        let mut obj = Object::new();
        // Index of keys once an object grows beyond a few entries (keeps parsing linear).
        let mut index: Option<HashMap<String, usize>> = None;
        self.ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Object(obj));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_pos = self.pos;
            let key = self.string()?;
            self.ws();
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.err("expected ':' after an object key"));
            }
            self.pos += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            let existing = match &index {
                Some(ix) => ix.get(&key).copied(),
                None => obj.entries.iter().position(|(k, _)| *k == key),
            };
            match existing {
                Some(i) => {
                    if self.opts.reject_duplicate_keys {
                        return Err(error_at(
                            self.s,
                            key_pos,
                            &format!("duplicate object key {key:?}"),
                        ));
                    }
                    obj.entries[i].1 = v;
                }
                None => {
                    if let Some(ix) = &mut index {
                        ix.insert(key.clone(), obj.entries.len());
                    }
                    obj.push_unchecked(key, v);
                    if index.is_none() && obj.entries.len() > 16 {
                        index = Some(
                            obj.entries
                                .iter()
                                .enumerate()
                                .map(|(i, (k, _))| (k.clone(), i))
                                .collect(),
                        );
                    }
                }
            }
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(obj));
                }
                _ => return Err(self.err("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                _ => return Err(self.err("expected ',' or ']' in an array")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("incomplete \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let h = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + h;
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // `start..pos` lies on char boundaries: it begins after an ASCII byte and stops before one.
            out.push_str(&self.text[start..self.pos]);
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.s.get(self.pos) {
                        None => return Err(self.err("unterminated string")),
                        Some(c) => *c,
                    };
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(self.err("lone UTF-16 surrogate in \\u escape"));
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    return Err(self.err("lone UTF-16 surrogate in \\u escape"));
                                }
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("lone UTF-16 surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            match char::from_u32(cp) {
                                Some(ch) => out.push(ch),
                                None => return Err(self.err("invalid \\u escape")),
                            }
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.s.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.s.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                    self.pos += 1;
                }
            }
            Some(b'I') => return Err(self.err("NaN and Infinity are not JSON")),
            _ => return Err(self.err("expected a digit")),
        }
        let mut is_float = false;
        if self.s.get(self.pos) == Some(&b'.') {
            is_float = true;
            self.pos += 1;
            if !matches!(self.s.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.err("expected a digit after '.'"));
            }
            while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.pos) {
            is_float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.s.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(self.s.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.err("expected a digit in the exponent"));
            }
            while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                self.pos += 1;
            }
        }
        let lit = &self.text[start..self.pos];
        if is_float {
            match lit.parse::<f64>() {
                Ok(f) => Ok(Value::Float(f)),
                Err(_) => Err(error_at(self.s, start, "invalid number")),
            }
        } else {
            let digits = lit.trim_start_matches('-').len();
            if digits > MAX_INT_DIGITS {
                return Err(error_at(
                    self.s,
                    start,
                    &format!("integer with {digits} digits, more than Python's limit of {MAX_INT_DIGITS}"),
                ));
            }
            match lit.parse::<BigInt>() {
                Ok(i) => Ok(Value::Int(i)),
                Err(_) => Err(error_at(self.s, start, "invalid number")),
            }
        }
    }
}

impl Value {
    /// The JSON type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Compact JSON for exactly this value (keys in order, floats as Python writes them).
    /// Forward this, not the bytes that were validated: raw JSON can carry data in whitespace,
    /// duplicate keys and redundant digits that the validator never sees.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => {
                if f.is_finite() {
                    out.push_str(&crate::py::float_repr(*f));
                } else if *f > 0.0 {
                    out.push_str("1e999");
                } else {
                    out.push_str("-1e999");
                }
            }
            Value::Str(s) => write_json_string(s, out),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

/// Writes `s` as a JSON string literal (escapes `"`, `\` and control characters only).
pub fn write_json_string(s: &str, out: &mut String) {
    use fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Value, JsonError> {
        parse(
            s.as_bytes(),
            &ParseOptions {
                reject_duplicate_keys: false,
                ..ParseOptions::default()
            },
        )
    }

    #[test]
    fn ints_stay_ints_and_exact() {
        assert_eq!(p("1").unwrap(), Value::Int(1.into()));
        assert_eq!(p("1.0").unwrap(), Value::Float(1.0));
        assert_eq!(p("1e2").unwrap(), Value::Float(100.0));
        assert_eq!(p("-0").unwrap(), Value::Int(0.into()));
        let big = "123456789012345678901234567890";
        assert_eq!(p(big).unwrap().to_json(), big);
        assert_eq!(p("1e400").unwrap(), Value::Float(f64::INFINITY));
    }

    #[test]
    fn keys_keep_first_position_last_value() {
        let v = p(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(v.to_json(), r#"{"b":3,"a":2}"#);
        let strict = parse(br#"{"b":1,"b":3}"#, &ParseOptions::default());
        assert!(strict.unwrap_err().message.contains("duplicate"));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "[1,]",
            "{\"a\":1,}",
            "NaN",
            "-Infinity",
            "\"\\ud800\"",
            "\"a\nb\"",
            "\u{feff}1",
            "[1] 2",
            "{'a':1}",
            "tru",
            "\"\\x41\"",
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be refused");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(p(&deep).unwrap_err().message.contains("nesting"));
        let opts = ParseOptions {
            max_bytes: 3,
            ..ParseOptions::default()
        };
        assert!(parse(b"[1,2]", &opts).is_err());
        assert!(p(&"9".repeat(4301)).is_err());
    }

    #[test]
    fn strings_and_escapes() {
        let v = p(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(
            v,
            Value::Str("a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}".into())
        );
        assert_eq!(v.to_json(), "\"a\\\"\\\\/\\b\\f\\n\\r\\t\u{e9}\u{1f600}\"");
    }

    #[test]
    fn error_position() {
        let e = p("{\n  \"a\": tru }").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
    }
}
