//! The bits of Python's object model that Cerberus's rules and messages depend on: `==`, `<`/`>`
//! (with `TypeError`), `len`, `str()` and `repr()` of values decoded by `json.loads`.
//!
//! Python facts reproduced here: `bool` is a subclass of `int` (`True == 1`, `True < 2`);
//! `int`/`float` comparisons are exact; `str` compares by code point; lists compare
//! lexicographically; `dict < dict` and any comparison with `None` raise `TypeError`.

use std::cmp::Ordering;
use std::fmt::Write;

use num_bigint::BigInt;
use num_traits::FromPrimitive;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::json::Value;

/// A number as Python sees it (`bool` counts as the int 0 or 1).
enum Num<'a> {
    Int(std::borrow::Cow<'a, BigInt>),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num<'_>> {
    match v {
        Value::Bool(b) => Some(Num::Int(std::borrow::Cow::Owned(BigInt::from(u8::from(
            *b,
        ))))),
        Value::Int(i) => Some(Num::Int(std::borrow::Cow::Borrowed(i))),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// Exact comparison of an integer with a float, as CPython's `float_richcompare`.
/// `None` when `f` is NaN (every comparison is false).
fn cmp_int_float(i: &BigInt, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f == f64::INFINITY {
        return Some(Ordering::Less);
    }
    if f == f64::NEG_INFINITY {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // `t` is finite and integral, so the conversion is exact.
    let ti = BigInt::from_f64(t)?;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            if frac > 0.0 {
                Some(Ordering::Less)
            } else if frac < 0.0 {
                Some(Ordering::Greater)
            } else {
                Some(Ordering::Equal)
            }
        }
        o => Some(o),
    }
}

fn cmp_num(a: &Num<'_>, b: &Num<'_>) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, *y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, *x).map(Ordering::reverse),
    }
}

/// Python `a == b` for JSON-decoded values.
pub fn eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return cmp_num(&x, &y) == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            if x.len() <= 16 {
                return x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)));
            }
            let ys: std::collections::HashMap<&str, &Value> =
                y.iter().map(|(k, v)| (k.as_str(), v)).collect();
            x.iter()
                .all(|(k, v)| ys.get(k.as_str()).is_some_and(|w| eq(v, w)))
        }
        _ => false,
    }
}

/// Python's `TypeError` from an unorderable comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unorderable;

#[derive(Clone, Copy)]
enum Op {
    Lt,
    Gt,
}

fn compare(a: &Value, b: &Value, op: Op) -> Result<bool, Unorderable> {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        let o = cmp_num(&x, &y);
        return Ok(match op {
            Op::Lt => o == Some(Ordering::Less),
            Op::Gt => o == Some(Ordering::Greater),
        });
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(match op {
            // UTF-8 byte order is code point order.
            Op::Lt => x < y,
            Op::Gt => x > y,
        }),
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !eq(p, q) {
                    return compare(p, q, op);
                }
            }
            Ok(match op {
                Op::Lt => x.len() < y.len(),
                Op::Gt => x.len() > y.len(),
            })
        }
        _ => Err(Unorderable),
    }
}

/// Python `a < b`.
pub fn lt(a: &Value, b: &Value) -> Result<bool, Unorderable> {
    compare(a, b, Op::Lt)
}

/// Python `a > b`.
pub fn gt(a: &Value, b: &Value) -> Result<bool, Unorderable> {
    compare(a, b, Op::Gt)
}

/// Python `len(v)` for sized values (`str` counts code points).
pub fn len(v: &Value) -> Option<usize> {
    match v {
        Value::Str(s) => Some(s.chars().count()),
        Value::List(l) => Some(l.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

/// `len(v) < bound` / `len(v) > bound` with an int-or-bool bound, exactly.
pub fn cmp_len(len: usize, bound: &Value) -> Option<Ordering> {
    let n = BigInt::from(len);
    match bound {
        Value::Int(i) => Some(n.cmp(i)),
        Value::Bool(b) => Some(n.cmp(&BigInt::from(u8::from(*b)))),
        _ => None,
    }
}

/// Python `repr(float)`: the shortest string that round-trips, in Python's layout.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "0e0".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Value = 0.d1d2d3... * 10^decpt
    let decpt = exp + 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..(-decpt) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let d = decpt as usize;
        if digits.len() <= d {
            out.push_str(&digits);
            for _ in digits.len()..d {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..d]);
            out.push('.');
            out.push_str(&digits[d..]);
        }
    }
    out
}

/// Python `str.isprintable()` for one character (Unicode data of this crate's version).
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

/// Python `repr(str)`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push(quote);
    out
}

/// Python `repr(v)`.
pub fn repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out);
    out
}

fn write_repr(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => out.push_str(&str_repr(s)),
        Value::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&str_repr(k));
                out.push_str(": ");
                write_repr(x, out);
            }
            out.push('}');
        }
        other => out.push_str(&str(other)),
    }
}

/// Python `str(v)` (what `'{}'.format(v)` writes).
pub fn str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_repr(*f),
        Value::Str(s) => s.clone(),
        Value::List(_) | Value::Object(_) => repr(v),
    }
}

/// Python `repr(tuple(items))`.
pub fn tuple_repr(items: &[&Value]) -> String {
    let mut out = String::from("(");
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_repr(x, &mut out);
    }
    if items.len() == 1 {
        out.push(',');
    }
    out.push(')');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn i(n: i64) -> Value {
        Value::Int(n.into())
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e20, "1e+20"),
            (1.5e300, "1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123.456, "123.456"),
            (5e-324, "5e-324"),
            (1e22, "1e+22"),
            (100.0, "100.0"),
        ] {
            assert_eq!(float_repr(f), s, "{f}");
        }
    }

    #[test]
    fn comparisons_follow_python() {
        assert!(eq(&Value::Bool(true), &i(1)));
        assert!(eq(&i(1), &Value::Float(1.0)));
        assert!(!eq(&Value::Str("1".into()), &i(1)));
        let big: BigInt = (BigInt::from(1u64) << 53u32) + 1;
        assert_eq!(
            gt(&Value::Int(big.clone()), &Value::Float(9007199254740992.0)),
            Ok(true)
        );
        assert!(!eq(&Value::Int(big), &Value::Float(9007199254740992.0)));
        assert_eq!(lt(&i(1), &Value::Float(1.5)), Ok(true));
        assert_eq!(lt(&i(-2), &Value::Float(-1.5)), Ok(true));
        assert_eq!(lt(&Value::Str("a".into()), &i(1)), Err(Unorderable));
        assert_eq!(lt(&Value::Null, &Value::Null), Err(Unorderable));
        let l1 = Value::List(vec![i(1), i(2)]);
        let l2 = Value::List(vec![i(1), i(3)]);
        assert_eq!(lt(&l1, &l2), Ok(true));
        assert_eq!(
            lt(&l1, &Value::List(vec![i(1), Value::Str("x".into())])),
            Err(Unorderable)
        );
        assert_eq!(gt(&Value::Float(f64::INFINITY), &i(10)), Ok(true));
    }

    #[test]
    fn reprs_follow_python() {
        assert_eq!(str_repr("a'b"), "\"a'b\"");
        assert_eq!(str_repr("a'b\""), "'a\\'b\"'");
        assert_eq!(
            str_repr("\u{0}\u{7f}\u{85}\u{a0}é\u{200b}\u{1f600}\u{e000}"),
            "'\\x00\\x7f\\x85\\xa0é\\u200b\u{1f600}\\ue000'"
        );
        let v = Value::List(vec![
            i(1),
            Value::Null,
            Value::Bool(false),
            Value::Float(2.0),
            Value::Str("x".into()),
        ]);
        assert_eq!(repr(&v), "[1, None, False, 2.0, 'x']");
        assert_eq!(tuple_repr(&[&i(3)]), "(3,)");
        assert_eq!(tuple_repr(&[]), "()");
    }
}
