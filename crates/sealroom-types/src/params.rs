//! Runtime parameters of a run request: name/value pairs passed to the algorithm as environment
//! variables.

use std::collections::BTreeSet;

/// Longest parameter name, in bytes.
pub const MAX_PARAM_NAME_LEN: usize = 128;
/// Longest parameter value, in bytes.
pub const MAX_PARAM_VALUE_LEN: usize = 4096;
/// Most parameters on one run request.
pub const MAX_PARAMS: usize = 64;

/// Environment variables that Sealroom itself sets in the enclave; a parameter may not shadow them.
const RESERVED: &[&str] = &[
    "ESCROW_PROJECT_ID",
    "ESCROW_RUN_ID",
    "ESCROW_RUN_CONFIG_ID",
    "ENCLAVE_API_URL",
];

/// A rejected runtime parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The name does not match `^[A-Za-z][A-Za-z0-9]*([_.-][A-Za-z0-9]+)*$`.
    #[error("invalid parameter name {name:?}: {reason} (a letter first, then letters and digits, optionally separated by single _ - or .)")]
    InvalidName {
        /// The rejected name, cut to 64 characters.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The name is one Sealroom sets itself.
    #[error("parameter name {0:?} is reserved by Sealroom")]
    Reserved(String),
    /// The value is too long or contains a NUL byte (not representable in an environment).
    #[error("value of parameter {name:?} is invalid: {reason}")]
    InvalidValue {
        /// The parameter.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The same name twice.
    #[error("parameter {0:?} is given more than once")]
    Duplicate(String),
    /// More than [`MAX_PARAMS`] parameters.
    #[error("too many runtime parameters (at most {MAX_PARAMS})")]
    TooMany,
}

/// A runtime parameter name: a letter first, then letters/digits, optionally separated by single
/// `_`, `-` or `.` (the EscrowAI rule `^[a-zA-Z][a-zA-Z0-9]*([_\-.][a-zA-Z0-9]+)*$`), at most
/// [`MAX_PARAM_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuntimeParamName(String);

impl RuntimeParamName {
    /// Validates a name.
    pub fn parse(s: &str) -> Result<Self, ParamError> {
        let bad = |reason| ParamError::InvalidName {
            name: s.chars().take(64).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > MAX_PARAM_NAME_LEN {
            return Err(bad("too long"));
        }
        let b = s.as_bytes();
        if !b[0].is_ascii_alphabetic() {
            return Err(bad("must start with a letter"));
        }
        let mut prev_sep = false;
        for &c in &b[1..] {
            if c.is_ascii_alphanumeric() {
                prev_sep = false;
            } else if matches!(c, b'_' | b'-' | b'.') {
                if prev_sep {
                    return Err(bad("two separators in a row"));
                }
                prev_sep = true;
            } else {
                return Err(bad("only letters, digits and _ - . are allowed"));
            }
        }
        if prev_sep {
            return Err(bad("must not end with a separator"));
        }
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)) {
            return Err(ParamError::Reserved(s.to_owned()));
        }
        Ok(RuntimeParamName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RuntimeParamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RuntimeParamName {
    type Err = ParamError;
    fn from_str(s: &str) -> Result<Self, ParamError> {
        Self::parse(s)
    }
}

impl serde::Serialize for RuntimeParamName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RuntimeParamName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One runtime parameter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuntimeParam {
    /// Its name (also the environment variable's name).
    pub name: RuntimeParamName,
    /// Its value: free-form text, no NUL, at most [`MAX_PARAM_VALUE_LEN`] bytes.
    pub value: String,
}

/// The runtime parameters of one run request: unique names, at most [`MAX_PARAMS`], in the order
/// given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RuntimeParams(Vec<RuntimeParam>);

impl RuntimeParams {
    /// Validates a list of parameters.
    pub fn new(params: Vec<RuntimeParam>) -> Result<Self, ParamError> {
        if params.len() > MAX_PARAMS {
            return Err(ParamError::TooMany);
        }
        let mut seen = BTreeSet::new();
        for p in &params {
            if p.value.len() > MAX_PARAM_VALUE_LEN {
                return Err(ParamError::InvalidValue {
                    name: p.name.0.clone(),
                    reason: "longer than 4096 bytes",
                });
            }
            if p.value.contains('\0') {
                return Err(ParamError::InvalidValue {
                    name: p.name.0.clone(),
                    reason: "contains a NUL character",
                });
            }
            if !seen.insert(p.name.as_str()) {
                return Err(ParamError::Duplicate(p.name.0.clone()));
            }
        }
        Ok(RuntimeParams(params))
    }

    /// Validates `(name, value)` string pairs.
    pub fn from_pairs<I, N, V>(pairs: I) -> Result<Self, ParamError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: Into<String>,
    {
        let mut v = Vec::new();
        for (n, val) in pairs {
            if v.len() == MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            v.push(RuntimeParam {
                name: RuntimeParamName::parse(n.as_ref())?,
                value: val.into(),
            });
        }
        Self::new(v)
    }

    /// The parameters.
    pub fn as_slice(&self) -> &[RuntimeParam] {
        &self.0
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> serde::Deserialize<'de> for RuntimeParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = <Vec<RuntimeParam> as serde::Deserialize>::deserialize(d)?;
        RuntimeParams::new(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "learning_rate",
            "Epochs2",
            "a.b-c_d",
            "X1y2",
            "a1.b2.c3",
        ] {
            assert!(RuntimeParamName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1a", "_a", "a__b", "a_", "a-.b", "a b", "a=b", "é", "a\u{0}", "a/b", "-a",
        ] {
            assert!(
                matches!(
                    RuntimeParamName::parse(bad),
                    Err(ParamError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
        assert!(RuntimeParamName::parse(&"a".repeat(129)).is_err());
        assert!(matches!(
            RuntimeParamName::parse("escrow_run_id"),
            Err(ParamError::Reserved(_))
        ));
    }

    #[test]
    fn lists() {
        let p = RuntimeParams::from_pairs([("epochs", "10"), ("lr", "0.01")]).unwrap();
        assert_eq!(p.len(), 2);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"epochs","value":"10"},{"name":"lr","value":"0.01"}]"#
        );
        assert_eq!(serde_json::from_str::<RuntimeParams>(&json).unwrap(), p);
        assert_eq!(
            RuntimeParams::from_pairs([("a", "1"), ("a", "2")]),
            Err(ParamError::Duplicate("a".into()))
        );
        assert!(RuntimeParams::from_pairs([("a", "x\0")]).is_err());
        assert!(RuntimeParams::from_pairs([("a", "x".repeat(4097))]).is_err());
        let many: Vec<_> = (0..65).map(|i| (format!("p{i}"), "v")).collect();
        assert_eq!(RuntimeParams::from_pairs(many), Err(ParamError::TooMany));
        assert!(serde_json::from_str::<RuntimeParams>(r#"[{"name":"9x","value":""}]"#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn matches_regex_definition(s in "[a-zA-Z0-9_.\\- ]{0,12}") {
            // The reference: the EscrowAI regular expression, written out by hand.
            let reference = {
                let b = s.as_bytes();
                !b.is_empty() && b[0].is_ascii_alphabetic()
                    && s.split(['_', '-', '.']).all(|part| !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric()))
            };
            let reserved = RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&s));
            proptest::prop_assert_eq!(RuntimeParamName::parse(&s).is_ok(), reference && !reserved);
        }
    }
}
