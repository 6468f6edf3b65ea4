//! What the key broker keeps besides nonces and releases (those are in [`crate::RunStore`]):
//! each site's simulated-attester public key and each project's attestation policy.

use async_trait::async_trait;
use sealroom_types::{ProjectId, SiteId, Timestamp, UserId};
use sqlx::query;

use super::projects::{ensure_writable, project_in_tx};
use super::rows::R;
use super::{is_fk_violation, is_unique_violation, SqlStore};
use crate::{Result, StoreError};

/// Largest stored attestation policy (JSON text), in bytes.
pub const MAX_POLICY_LEN: usize = 64 * 1024;

/// A site's registered simulated-attester key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteAttestationKey {
    /// The site.
    pub site_id: SiteId,
    /// The Ed25519 public key (32 bytes).
    pub public_key: [u8; 32],
    /// When it was registered.
    pub registered_at: Timestamp,
}

/// What registering a site key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteKeyRegistration {
    /// The site had no key; this one is now registered.
    Registered(SiteAttestationKey),
    /// The same key was already registered (nothing changed).
    Unchanged(SiteAttestationKey),
}

impl SiteKeyRegistration {
    /// The key now registered.
    pub fn key(&self) -> &SiteAttestationKey {
        match self {
            SiteKeyRegistration::Registered(k) | SiteKeyRegistration::Unchanged(k) => k,
        }
    }
}

/// A project's stored attestation policy (the JSON is the control plane's to parse).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAttestationPolicy {
    /// The project.
    pub project_id: ProjectId,
    /// The policy document.
    pub policy: serde_json::Value,
    /// Who set it last.
    pub updated_by: UserId,
    /// When.
    pub updated_at: Timestamp,
}

/// Site attester keys and project attestation policies.
#[async_trait]
pub trait BrokerStore: Send + Sync {
    /// Registers a site's simulated-attester key. Registering the key already registered is a
    /// no-op; another key while one is registered is refused (`AlreadyExists`) until
    /// [`Self::delete_site_attestation_key`]. `NotFound` for an unknown site.
    async fn register_site_attestation_key(
        &self,
        site: SiteId,
        public_key: &[u8; 32],
    ) -> Result<SiteKeyRegistration>;
    /// The site's registered key, if any.
    async fn site_attestation_key(&self, site: SiteId) -> Result<Option<SiteAttestationKey>>;
    /// Removes the site's key; `NotFound` if it has none.
    async fn delete_site_attestation_key(&self, site: SiteId) -> Result<SiteAttestationKey>;
    /// The project's policy, if one was set (`None`: the technology's default applies).
    async fn attestation_policy(
        &self,
        project: ProjectId,
    ) -> Result<Option<StoredAttestationPolicy>>;
    /// Sets (replaces) the project's policy; refused for a deactivated project.
    async fn set_attestation_policy(
        &self,
        project: ProjectId,
        policy: &serde_json::Value,
        by: UserId,
    ) -> Result<StoredAttestationPolicy>;
}

fn site_key(row: &sqlx::any::AnyRow) -> Result<SiteAttestationKey> {
    let r = R::new(row, "site_attestation_keys");
    let text = r.s("public_key")?;
    let public_key = hex::decode(&text)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| StoreError::Corrupt {
            table: "site_attestation_keys",
            column: "public_key".into(),
            detail: "not 32 bytes of hex".into(),
        })?;
    Ok(SiteAttestationKey {
        site_id: r.p("site_id")?,
        public_key,
        registered_at: r.ts("registered_at")?,
    })
}

fn policy_row(row: &sqlx::any::AnyRow) -> Result<StoredAttestationPolicy> {
    let r = R::new(row, "project_attestation_policies");
    let text = r.s("policy")?;
    let policy = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        table: "project_attestation_policies",
        column: "policy".into(),
        detail: e.to_string(),
    })?;
    Ok(StoredAttestationPolicy {
        project_id: r.p("project_id")?,
        policy,
        updated_by: r.p("updated_by")?,
        updated_at: r.ts("updated_at")?,
    })
}

const KEY_COLS: &str = "site_id, public_key, registered_at";
const POLICY_COLS: &str = "project_id, policy, updated_by, updated_at";

#[async_trait]
impl BrokerStore for SqlStore {
    async fn register_site_attestation_key(
        &self,
        site: SiteId,
        public_key: &[u8; 32],
    ) -> Result<SiteKeyRegistration> {
        let mut tx = self.write().await?;
        if tx
            .opt(query("SELECT id FROM sites WHERE id = $1").bind(site.to_string()))
            .await?
            .is_none()
        {
            return Err(StoreError::not_found("site", site));
        }
        if let Some(row) = tx
            .opt(
                query(&format!(
                    "SELECT {KEY_COLS} FROM site_attestation_keys WHERE site_id = $1"
                ))
                .bind(site.to_string()),
            )
            .await?
        {
            let existing = site_key(&row)?;
            return if aws_lc_rs::constant_time::verify_slices_are_equal(
                &existing.public_key,
                public_key,
            )
            .is_ok()
            {
                Ok(SiteKeyRegistration::Unchanged(existing))
            } else {
                Err(StoreError::AlreadyExists {
                    what: "site attestation key",
                    detail: format!(
                        "site {site} already has another key; an admin must remove it first"
                    ),
                })
            };
        }
        let key = SiteAttestationKey {
            site_id: site,
            public_key: *public_key,
            registered_at: Timestamp::now(),
        };
        let res = tx
            .exec(
                query(
                    "INSERT INTO site_attestation_keys (site_id, public_key, registered_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(site.to_string())
                .bind(hex::encode(public_key))
                .bind(key.registered_at.as_millis()),
            )
            .await;
        match res {
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "site_attestation_keys_pkey",
                        "site_attestation_keys.site_id",
                    ],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "site attestation key",
                    detail: format!("site {site} registered a key concurrently"),
                })
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(SiteKeyRegistration::Registered(key))
    }

    async fn site_attestation_key(&self, site: SiteId) -> Result<Option<SiteAttestationKey>> {
        self.fetch_optional(
            query(&format!(
                "SELECT {KEY_COLS} FROM site_attestation_keys WHERE site_id = $1"
            ))
            .bind(site.to_string()),
        )
        .await?
        .as_ref()
        .map(site_key)
        .transpose()
    }

    async fn delete_site_attestation_key(&self, site: SiteId) -> Result<SiteAttestationKey> {
        let mut tx = self.write().await?;
        let row = tx
            .opt(
                query(&format!(
                    "SELECT {KEY_COLS} FROM site_attestation_keys WHERE site_id = $1"
                ))
                .bind(site.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("attestation key of site", site))?;
        let key = site_key(&row)?;
        tx.exec(
            query("DELETE FROM site_attestation_keys WHERE site_id = $1").bind(site.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn attestation_policy(
        &self,
        project: ProjectId,
    ) -> Result<Option<StoredAttestationPolicy>> {
        self.fetch_optional(
            query(&format!(
                "SELECT {POLICY_COLS} FROM project_attestation_policies WHERE project_id = $1"
            ))
            .bind(project.to_string()),
        )
        .await?
        .as_ref()
        .map(policy_row)
        .transpose()
    }

    async fn set_attestation_policy(
        &self,
        project: ProjectId,
        policy: &serde_json::Value,
        by: UserId,
    ) -> Result<StoredAttestationPolicy> {
        let text = policy.to_string();
        if text.len() > MAX_POLICY_LEN {
            return Err(StoreError::invalid(
                "attestation policy",
                format!("longer than {MAX_POLICY_LEN} bytes"),
            ));
        }
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, project).await?;
        ensure_writable(&p, "changing the attestation policy")?;
        let stored = StoredAttestationPolicy {
            project_id: project,
            policy: policy.clone(),
            updated_by: by,
            updated_at: Timestamp::now(),
        };
        let res = tx
            .exec(
                query(
                    "INSERT INTO project_attestation_policies (project_id, policy, updated_by, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (project_id) DO UPDATE SET policy = $2, updated_by = $3, updated_at = $4",
                )
                .bind(project.to_string())
                .bind(text)
                .bind(by.to_string())
                .bind(stored.updated_at.as_millis()),
            )
            .await;
        match res {
            Err(e) if is_fk_violation(&e) => return Err(StoreError::not_found("user", by)),
            r => r?,
        };
        tx.commit().await?;
        Ok(stored)
    }
}
