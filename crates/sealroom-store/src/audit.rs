//! Canonical content and hashes of audit entries.
//!
//! `hash = hex(SHA-256(canonical))` where `canonical` is the compact JSON array
//! `[seq, at_ms, actor, action, outcome, project_id|null, object|null, detail, prev_hash]`
//! (serde_json escapes deterministically). Changing any stored field, or re-linking, changes it.

use aws_lc_rs::digest;

/// The `prev_hash` of the first entry.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The stored fields of one entry, as text.
pub(crate) struct AuditFields<'a> {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub project_id: Option<&'a str>,
    pub object: Option<&'a str>,
    pub detail: &'a str,
    pub prev_hash: &'a str,
}

pub(crate) fn entry_hash(f: &AuditFields<'_>) -> String {
    let canonical = serde_json::json!([
        f.seq,
        f.at_ms,
        f.actor,
        f.action,
        f.outcome,
        f.project_id,
        f.object,
        f.detail,
        f.prev_hash
    ])
    .to_string();
    hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field() {
        let base = AuditFields {
            seq: 1,
            at_ms: 2,
            actor: "system",
            action: "a",
            outcome: "success",
            project_id: None,
            object: None,
            detail: "{}",
            prev_hash: GENESIS_HASH,
        };
        let h = entry_hash(&base);
        assert_eq!(h.len(), 64);
        let variants = [
            AuditFields { seq: 2, ..base },
            AuditFields { at_ms: 3, ..base },
            AuditFields {
                actor: "anonymous",
                ..base
            },
            AuditFields {
                action: "b",
                ..base
            },
            AuditFields {
                outcome: "denied",
                ..base
            },
            AuditFields {
                project_id: Some("p"),
                ..base
            },
            AuditFields {
                object: Some(""),
                ..base
            },
            AuditFields {
                detail: "{ }",
                ..base
            },
            AuditFields {
                prev_hash: "1",
                ..base
            },
        ];
        for v in variants {
            assert_ne!(entry_hash(&v), h);
        }
    }
}
