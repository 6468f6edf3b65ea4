//! Organizations, users, sites and tokens.

use async_trait::async_trait;
use sealroom_types::*;
use sqlx::query;

use super::rows::{self, ORG_COLS, R, USER_COLS};
use super::{is_fk_violation, is_unique_violation, SqlStore};
use crate::{
    AccountStore, NewToken, NewUser, Result, StoreError, TokenKind, TokenRecord, TokenSubject,
    UserCredentials,
};

fn token(row: &sqlx::any::AnyRow) -> Result<TokenRecord> {
    let r = R::new(row, "tokens");
    let kind_s = r.s("kind")?;
    let kind = TokenKind::parse(&kind_s).ok_or_else(|| StoreError::Corrupt {
        table: "tokens",
        column: "kind".into(),
        detail: kind_s.clone(),
    })?;
    let subject = match (r.op::<UserId>("user_id")?, r.op::<SiteId>("site_id")?) {
        (Some(u), None) => TokenSubject::User(u),
        (None, Some(s)) => TokenSubject::Site(s),
        _ => {
            return Err(StoreError::Corrupt {
                table: "tokens",
                column: "user_id".into(),
                detail: "exactly one of user_id and site_id must be set".into(),
            })
        }
    };
    Ok(TokenRecord {
        id: r.s("id")?,
        kind,
        subject,
        name: r.s("name")?,
        created_at: r.ts("created_at")?,
        expires_at: r.ots("expires_at")?,
    })
}

const TOKEN_COLS: &str = "t.id, t.kind, t.user_id, t.site_id, t.name, t.created_at, t.expires_at";

fn valid_username(u: &str) -> Result<String> {
    let lower = u.trim().to_lowercase();
    let ok = (1..=64).contains(&lower.len())
        && lower
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(lower)
    } else {
        Err(StoreError::invalid(
            "username",
            "1 to 64 characters: letters, digits and . _ - @",
        ))
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_org(&self, name: &Name) -> Result<Organization> {
        let org = Organization {
            id: OrgId::new(),
            name: name.clone(),
            created_at: Timestamp::now(),
        };
        let mut tx = self.write().await?;
        let r = tx
            .exec(
                query("INSERT INTO organizations (id, name, name_key, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(org.id.to_string())
                    .bind(name.as_str().to_owned())
                    .bind(name.as_str().to_lowercase())
                    .bind(org.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(
                    &e,
                    &["organizations_name_key", "organizations.name_key"],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "organization",
                    detail: name.to_string(),
                })
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(org)
    }

    async fn get_org(&self, id: OrgId) -> Result<Organization> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {ORG_COLS} FROM organizations WHERE id = $1"
                ))
                .bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("organization", id))?;
        rows::org(&row)
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.fetch_all(query(&format!(
            "SELECT {ORG_COLS} FROM organizations ORDER BY name_key"
        )))
        .await?
        .iter()
        .map(rows::org)
        .collect()
    }

    async fn create_user(&self, u: NewUser) -> Result<User> {
        let username = valid_username(&u.username)?;
        let user = User {
            id: UserId::new(),
            org_id: u.org_id,
            username,
            display_name: u.display_name.trim().chars().take(200).collect(),
            is_admin: u.is_admin,
            disabled: false,
            created_at: Timestamp::now(),
        };
        let mut tx = self.write().await?;
        let r = tx
            .exec(
                query(
                    "INSERT INTO users (id, org_id, username, display_name, password_hash, is_admin, disabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
                )
                .bind(user.id.to_string())
                .bind(user.org_id.to_string())
                .bind(user.username.clone())
                .bind(user.display_name.clone())
                .bind(u.password_hash)
                .bind(i64::from(user.is_admin))
                .bind(user.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e) if is_unique_violation(&e, &["users_username", "users.username"]) => {
                return Err(StoreError::AlreadyExists {
                    what: "user",
                    detail: user.username,
                })
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("organization", user.org_id))
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(user)
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        let row = self
            .fetch_optional(
                query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1")).bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("user", id))?;
        rows::user(&row)
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {USER_COLS} FROM users WHERE username = $1"
                ))
                .bind(username.trim().to_lowercase()),
            )
            .await?;
        row.map(|row| {
            Ok(UserCredentials {
                user: rows::user(&row)?,
                password_hash: R::new(&row, "users").s("password_hash")?,
            })
        })
        .transpose()
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash.to_owned())
                    .bind(id.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("user", id));
        }
        tx.commit().await
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(i64::from(disabled))
                    .bind(id.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("user", id));
        }
        if disabled {
            tx.exec(
                query(
                    "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(Timestamp::now().as_millis())
                .bind(id.to_string()),
            )
            .await?;
        }
        tx.commit().await
    }

    async fn list_users(&self, org: Option<OrgId>) -> Result<Vec<User>> {
        let rows = match org {
            Some(o) => {
                self.fetch_all(
                    query(&format!(
                        "SELECT {USER_COLS} FROM users WHERE org_id = $1 ORDER BY username"
                    ))
                    .bind(o.to_string()),
                )
                .await?
            }
            None => {
                self.fetch_all(query(&format!(
                    "SELECT {USER_COLS} FROM users ORDER BY username"
                )))
                .await?
            }
        };
        rows.iter().map(rows::user).collect()
    }

    async fn has_admin(&self) -> Result<bool> {
        let row = self
            .fetch_optional(query("SELECT id FROM users WHERE is_admin = 1 LIMIT 1"))
            .await?;
        Ok(row.is_some())
    }

    async fn create_site(&self, org_id: OrgId, name: &Name) -> Result<Site> {
        let site = Site {
            id: SiteId::new(),
            org_id,
            name: name.clone(),
            created_at: Timestamp::now(),
        };
        let mut tx = self.write().await?;
        let r = tx
            .exec(
                query("INSERT INTO sites (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(site.id.to_string())
                    .bind(org_id.to_string())
                    .bind(name.as_str().to_owned())
                    .bind(site.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("organization", org_id))
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(site)
    }

    async fn get_site(&self, id: SiteId) -> Result<Site> {
        let row = self
            .fetch_optional(
                query("SELECT id, org_id, name, created_at FROM sites WHERE id = $1")
                    .bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("site", id))?;
        let r = R::new(&row, "sites");
        Ok(Site {
            id: r.p("id")?,
            org_id: r.p("org_id")?,
            name: r.name("name")?,
            created_at: r.ts("created_at")?,
        })
    }

    async fn create_token(&self, t: NewToken) -> Result<TokenRecord> {
        if t.token_hash.len() != 64 || !t.token_hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::invalid(
                "token hash",
                "expected 64 hex digits (SHA-256)",
            ));
        }
        let (user_id, site_id) = match (t.kind, t.subject) {
            (TokenKind::Site, TokenSubject::Site(s)) => (None, Some(s.to_string())),
            (TokenKind::Session | TokenKind::Api, TokenSubject::User(u)) => {
                (Some(u.to_string()), None)
            }
            _ => {
                return Err(StoreError::invalid(
                    "token",
                    "site tokens belong to sites, session and API tokens to users",
                ))
            }
        };
        let id = match t.kind {
            TokenKind::Session => SessionId::new().to_string(),
            TokenKind::Api => ApiTokenId::new().to_string(),
            TokenKind::Site => SiteTokenId::new().to_string(),
        };
        let rec = TokenRecord {
            id,
            kind: t.kind,
            subject: t.subject,
            name: t.name.chars().take(200).collect(),
            created_at: Timestamp::now(),
            expires_at: t.expires_at,
        };
        let mut tx = self.write().await?;
        let r = tx
            .exec(
                query(
                    "INSERT INTO tokens (id, kind, token_hash, user_id, site_id, name, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(rec.id.clone())
                .bind(t.kind.as_str())
                .bind(t.token_hash.to_ascii_lowercase())
                .bind(user_id)
                .bind(site_id)
                .bind(rec.name.clone())
                .bind(rec.created_at.as_millis())
                .bind(rec.expires_at.map(Timestamp::as_millis)),
            )
            .await;
        match r {
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::invalid("token", "no such user or site"))
            }
            Err(e) if is_unique_violation(&e, &["tokens_hash", "tokens.token_hash"]) => {
                return Err(StoreError::AlreadyExists {
                    what: "token",
                    detail: "token hash".into(),
                })
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(rec)
    }

    async fn find_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<TokenRecord>> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {TOKEN_COLS} FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
                     WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
                       AND (t.expires_at IS NULL OR t.expires_at > $2) \
                       AND (u.id IS NULL OR u.disabled = 0)"
                ))
                .bind(token_hash.to_ascii_lowercase())
                .bind(now.as_millis()),
            )
            .await?;
        row.as_ref().map(token).transpose()
    }

    async fn revoke_token(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(Timestamp::now().as_millis())
                    .bind(id.to_owned()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("token", id));
        }
        tx.commit().await
    }

    async fn list_tokens(
        &self,
        user: UserId,
        kind: TokenKind,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>> {
        self.fetch_all(
            query(&format!(
                "SELECT {TOKEN_COLS} FROM tokens t WHERE t.user_id = $1 AND t.kind = $2 \
                 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $3) \
                 ORDER BY t.created_at"
            ))
            .bind(user.to_string())
            .bind(kind.as_str())
            .bind(now.as_millis()),
        )
        .await?
        .iter()
        .map(token)
        .collect()
    }
}
