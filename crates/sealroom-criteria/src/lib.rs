//! Sealroom's validation criteria: a Cerberus-compatible validator.
//!
//! An algorithm's final report leaves the enclave only if it validates against the criteria the
//! algorithm owner wrote and the data steward accepted. Criteria are EscrowAI's Cerberus schemas;
//! this crate validates with the semantics and the error output (`validator.errors`) of Python
//! `cerberus==1.3.8` for the rules `type`, `schema` (dicts and lists), `required`, `nullable`,
//! `min`, `max`, `minlength`, `maxlength`, `allowed`, `regex`, `keysrules`, `valuesrules`, `empty`
//! (and `meta`, which does nothing). Unknown fields are always errors (`allow_unknown=False`).
//!
//! ```
//! use sealroom_criteria::Criteria;
//!
//! let criteria = Criteria::from_json(br#"{"accuracy": {"type": "float", "min": 0, "max": 1}}"#)?;
//! let report = criteria.validate_json(br#"{"accuracy": 1.5, "patients": ["..."]}"#)?;
//! assert!(!report.is_valid());
//! assert_eq!(
//!     report.response_json(),
//!     r#"{"status":"failed","message":{"accuracy":["max value is 1"],"patients":["unknown field"]}}"#
//! );
//! # Ok::<(), sealroom_criteria::CriteriaError>(())
//! ```
//!
//! See `docs/criteria.md` for the differences from Cerberus (all of them refusals) and the limits.

pub mod json;
pub mod py;
pub mod pyre;
mod schema;
mod validate;

use serde::Serialize;

pub use json::{JsonError, Object, ParseOptions, Value};
pub use schema::{Schema, SchemaError, SchemaErrorKind, SchemaLimits, TypeName};
pub use validate::{ErrorTree, FieldErrors, PathKey};

/// Everything that can go wrong before a verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriteriaError {
    #[error("criteria are not valid JSON: {0}")]
    CriteriaJson(JsonError),
    #[error("{0}")]
    Schema(SchemaError),
    #[error("document is not valid JSON: {0}")]
    DocumentJson(JsonError),
    /// Cerberus raises `DocumentError` for a document that is not a mapping.
    #[error("document must be a JSON object, not {0}")]
    NotAnObject(&'static str),
}

pub type Result<T, E = CriteriaError> = std::result::Result<T, E>;

/// Limits on untrusted criteria and documents.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How criteria JSON is read (default: 1 MiB, depth 64, duplicate keys refused).
    pub criteria_json: ParseOptions,
    pub schema: SchemaLimits,
    /// How documents are read (default: 16 MiB, depth 128, duplicate keys refused).
    pub document_json: ParseOptions,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            criteria_json: ParseOptions {
                max_bytes: 1 << 20,
                max_depth: 64,
                reject_duplicate_keys: true,
            },
            schema: SchemaLimits::default(),
            document_json: ParseOptions {
                max_bytes: 16 << 20,
                max_depth: 128,
                reject_duplicate_keys: true,
            },
        }
    }
}

/// Parsed, checked criteria, ready to validate any number of documents.
#[derive(Debug, Clone)]
pub struct Criteria {
    schema: Schema,
    document_json: ParseOptions,
}

impl Criteria {
    /// Parses and checks criteria JSON with the default [`Limits`].
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Self::from_json_with(bytes, &Limits::default())
    }

    /// Parses and checks criteria JSON.
    pub fn from_json_with(bytes: &[u8], limits: &Limits) -> Result<Self> {
        let v = json::parse(bytes, &limits.criteria_json).map_err(CriteriaError::CriteriaJson)?;
        let schema = schema::parse_criteria(&v, &limits.schema).map_err(CriteriaError::Schema)?;
        Ok(Self {
            schema,
            document_json: limits.document_json.clone(),
        })
    }

    /// Checks already-decoded criteria.
    pub fn from_value(v: &Value, limits: &Limits) -> Result<Self, SchemaError> {
        let schema = schema::parse_criteria(v, &limits.schema)?;
        Ok(Self {
            schema,
            document_json: limits.document_json.clone(),
        })
    }

    /// The top-level field names, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.schema.field_names()
    }

    /// Validates a decoded document (Cerberus's `Validator(schema).validate(document)`).
    pub fn validate(&self, document: &Value) -> Result<Report> {
        match document {
            Value::Object(o) => Ok(Report {
                errors: validate::validate_root(&self.schema, o),
            }),
            other => Err(CriteriaError::NotAnObject(other.kind())),
        }
    }

    /// Parses (within the document limits) and validates a JSON document.
    pub fn validate_json(&self, bytes: &[u8]) -> Result<Report> {
        let v = json::parse(bytes, &self.document_json).map_err(CriteriaError::DocumentJson)?;
        self.validate(&v)
    }
}

/// The verdict on one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    errors: ErrorTree,
}

/// The Enclave API's `POST /api/v1/validate` response body.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateResponse<'a> {
    /// `"successful"` or `"failed"`.
    pub status: &'static str,
    /// Cerberus's `validator.errors` (`{}` when valid).
    pub message: &'a ErrorTree,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// Cerberus's `validator.errors`.
    pub fn errors(&self) -> &ErrorTree {
        &self.errors
    }

    /// The body the Enclave API answers `POST /api/v1/validate` with.
    pub fn response(&self) -> ValidateResponse<'_> {
        ValidateResponse {
            status: if self.is_valid() {
                "successful"
            } else {
                "failed"
            },
            message: &self.errors,
        }
    }

    /// [`Report::response`] as compact JSON.
    pub fn response_json(&self) -> String {
        let mut out = String::from("{\"status\":\"");
        out.push_str(self.response().status);
        out.push_str("\",\"message\":");
        out.push_str(&self.errors.to_json());
        out.push('}');
        out
    }
}

/// The fuzzing entry point (`fuzz/fuzz_targets/criteria.rs`), kept here so tests run it too.
///
/// Splits `data` at the first NUL byte into criteria and document, parses and validates both, and
/// checks invariants that must hold for any input: no panic, a deterministic verdict, an error
/// tree that is empty exactly when valid, and JSON output that parses back.
pub fn fuzz_one(data: &[u8]) {
    let (crit, doc) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let limits = Limits {
        criteria_json: ParseOptions {
            max_bytes: 64 << 10,
            max_depth: 32,
            reject_duplicate_keys: false,
        },
        schema: SchemaLimits {
            max_rule_depth: 16,
            max_regexes: 16,
            max_rule_sets: 2_000,
        },
        document_json: ParseOptions {
            max_bytes: 64 << 10,
            max_depth: 32,
            reject_duplicate_keys: false,
        },
    };
    let Ok(criteria) = Criteria::from_json_with(crit, &limits) else {
        // Still exercise the document parser.
        let _ = json::parse(doc, &limits.document_json);
        return;
    };
    let Ok(report) = criteria.validate_json(doc) else {
        return;
    };
    let again = criteria.validate_json(doc).map(|r| r.errors().clone());
    assert_eq!(
        again.as_ref().ok(),
        Some(report.errors()),
        "validation is deterministic"
    );
    assert_eq!(report.is_valid(), report.errors().flatten().is_empty());
    let out = report.response_json();
    let parsed = json::parse(
        out.as_bytes(),
        &ParseOptions {
            max_depth: 1024,
            ..ParseOptions::default()
        },
    );
    assert!(parsed.is_ok(), "response JSON parses: {out}");
}
