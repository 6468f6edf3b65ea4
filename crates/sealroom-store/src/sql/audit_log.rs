//! The append-only, hash-chained audit log.

use async_trait::async_trait;
use sealroom_types::*;
use sqlx::query;

use super::rows::R;
use super::{page_limit, SqlStore};
use crate::audit::{entry_hash, AuditFields, GENESIS_HASH};
use crate::{AuditProblem, AuditStore, AuditVerification, NewAuditEntry, Result};

/// Largest detail JSON kept, in bytes.
const MAX_DETAIL: usize = 16 * 1024;
/// Rows read per page while verifying.
const VERIFY_PAGE: i64 = 5000;

const AUDIT_COLS: &str =
    "seq, at, actor, action, outcome, project_id, object, detail, prev_hash, hash";

/// The raw text of a row, as hashed.
struct RawEntry {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    outcome: String,
    project_id: Option<String>,
    object: Option<String>,
    detail: String,
    prev_hash: String,
    hash: String,
}

impl RawEntry {
    fn read(row: &sqlx::any::AnyRow) -> Result<Self> {
        let r = R::new(row, "audit_log");
        Ok(RawEntry {
            seq: r.i("seq")?,
            at: r.i("at")?,
            actor: r.s("actor")?,
            action: r.s("action")?,
            outcome: r.s("outcome")?,
            project_id: r.os("project_id")?,
            object: r.os("object")?,
            detail: r.s("detail")?,
            prev_hash: r.s("prev_hash")?,
            hash: r.s("hash")?,
        })
    }

    fn computed_hash(&self) -> String {
        entry_hash(&AuditFields {
            seq: self.seq,
            at_ms: self.at,
            actor: &self.actor,
            action: &self.action,
            outcome: &self.outcome,
            project_id: self.project_id.as_deref(),
            object: self.object.as_deref(),
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        })
    }

    fn entry(self) -> Result<AuditEntry> {
        let bad = |column: &str, detail: String| crate::StoreError::Corrupt {
            table: "audit_log",
            column: column.into(),
            detail,
        };
        Ok(AuditEntry {
            seq: self.seq,
            at: Timestamp::from_millis(self.at),
            actor: self
                .actor
                .parse()
                .map_err(|e: IdError| bad("actor", e.to_string()))?,
            action: self.action,
            outcome: self
                .outcome
                .parse()
                .map_err(|e: UnknownVariant| bad("outcome", e.to_string()))?,
            project_id: self
                .project_id
                .map(|p| p.parse())
                .transpose()
                .map_err(|e: IdError| bad("project_id", e.to_string()))?,
            object: self.object,
            detail: self.detail,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, e: NewAuditEntry) -> Result<AuditEntry> {
        let mut detail = e.detail.to_string();
        if detail.len() > MAX_DETAIL {
            detail = serde_json::json!({ "truncated": true, "bytes": detail.len() }).to_string();
        }
        let action: String = e.action.chars().take(100).collect();
        let object: Option<String> = e.object.map(|o| o.chars().take(200).collect());
        let mut tx = self.write().await?;
        // Touch the head first: on PostgreSQL this takes the row lock that orders appends.
        tx.exec(query("UPDATE audit_head SET seq = seq WHERE id = 1"))
            .await?;
        let head = tx
            .one(query("SELECT seq, hash FROM audit_head WHERE id = 1"))
            .await?;
        let hr = R::new(&head, "audit_head");
        let seq = hr.i("seq")? + 1;
        let prev_hash = hr.s("hash")?;
        let at = Timestamp::now();
        let raw = RawEntry {
            seq,
            at: at.as_millis(),
            actor: e.actor.to_string(),
            action,
            outcome: e.outcome.as_str().to_owned(),
            project_id: e.project_id.map(|p| p.to_string()),
            object,
            detail,
            prev_hash,
            hash: String::new(),
        };
        let hash = raw.computed_hash();
        tx.exec(
            query(&format!(
                "INSERT INTO audit_log ({AUDIT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(seq)
            .bind(raw.at)
            .bind(raw.actor.clone())
            .bind(raw.action.clone())
            .bind(raw.outcome.clone())
            .bind(raw.project_id.clone())
            .bind(raw.object.clone())
            .bind(raw.detail.clone())
            .bind(raw.prev_hash.clone())
            .bind(hash.clone()),
        )
        .await?;
        tx.exec(
            query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(seq)
                .bind(hash.clone()),
        )
        .await?;
        tx.commit().await?;
        RawEntry { hash, ..raw }.entry()
    }

    async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.fetch_all(
            query(&format!(
                "SELECT {AUDIT_COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .bind(after_seq)
            .bind(page_limit(limit)),
        )
        .await?
        .iter()
        .map(|row| RawEntry::read(row)?.entry())
        .collect()
    }

    async fn verify_audit_chain(&self) -> Result<AuditVerification> {
        let head = self
            .fetch_all(query("SELECT seq, hash FROM audit_head WHERE id = 1"))
            .await?;
        let (head_seq, head_hash) = match head.first() {
            Some(h) => {
                let r = R::new(h, "audit_head");
                (r.i("seq")?, r.s("hash")?)
            }
            None => (0, GENESIS_HASH.to_owned()),
        };
        let mut problems = Vec::new();
        let mut checked = 0u64;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut after = 0i64;
        loop {
            let rows = self
                .fetch_all(
                    query(&format!(
                        "SELECT {AUDIT_COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                    ))
                    .bind(after)
                    .bind(VERIFY_PAGE),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let e = RawEntry::read(row)?;
                checked += 1;
                after = e.seq;
                if e.seq > expected_seq {
                    problems.push(AuditProblem::Missing {
                        from_seq: expected_seq,
                        to_seq: e.seq - 1,
                    });
                }
                if e.computed_hash() != e.hash {
                    problems.push(AuditProblem::Modified { seq: e.seq });
                } else if e.prev_hash != prev_hash && e.seq <= expected_seq {
                    // A row whose own hash is intact but whose link is wrong (re-chained).
                    problems.push(AuditProblem::BrokenLink { seq: e.seq });
                }
                prev_hash = e.hash;
                expected_seq = e.seq + 1;
            }
        }
        // Rows deleted from the end: the head remembers how far the chain went.
        if expected_seq <= head_seq {
            problems.push(AuditProblem::Missing {
                from_seq: expected_seq,
                to_seq: head_seq,
            });
        } else if expected_seq - 1 == head_seq && prev_hash != head_hash && head_seq > 0 {
            let last = head_seq;
            if !problems
                .iter()
                .any(|p| matches!(p, AuditProblem::Modified { seq } if *seq == last))
            {
                problems.push(AuditProblem::BrokenLink { seq: last });
            }
        }
        Ok(AuditVerification {
            entries_checked: checked,
            head_seq,
            problems,
        })
    }
}
