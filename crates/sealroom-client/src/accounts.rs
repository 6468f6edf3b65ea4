//! Sign-in, tokens, organizations, users and sites (`docs/api/accounts.md`).

use sealroom_types::{OrgId, Organization, Site, Timestamp, User, UserId};
use serde::{Deserialize, Serialize};

use crate::{encode, Call, Client, Result};

/// A token, shown once (login, `POST /api/v1/tokens`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub token: String,
    /// Its ID (to revoke it).
    pub id: String,
    /// `session`, `api` or `site`.
    pub kind: String,
    /// When it stops working; absent: until revoked.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// The signed-in user (login only).
    #[serde(default)]
    pub user: Option<User>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The caller and its organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The user.
    pub user: User,
    /// Its organization.
    pub organization: Organization,
}

/// An API token without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// ID.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Label.
    pub name: String,
    /// Created.
    pub created_at: Timestamp,
    /// Expires.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// A new user.
#[derive(Debug, Clone, Serialize)]
pub struct NewUser<'a> {
    /// Its organization.
    pub org_id: OrgId,
    /// Login name.
    pub username: &'a str,
    /// Name shown to people (default: the username).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<&'a str>,
    /// Initial password (at least 12 characters).
    pub password: &'a str,
    /// Platform admin.
    pub is_admin: bool,
}

/// A site and its agent's token (shown once).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCreated {
    /// The site.
    pub site: Site,
    /// The agent's token.
    pub token: String,
}

impl std::fmt::Debug for SiteCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteCreated")
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `POST /api/v1/auth/login`: a session token (use it with [`Client::with_token`]).
    pub fn login(&self, username: &str, password: &str) -> Result<TokenResponse> {
        #[derive(Serialize)]
        struct Body<'a> {
            username: &'a str,
            password: &'a str,
        }
        self.json(Call::post("/api/v1/auth/login").json(&Body { username, password })?)
    }

    /// `POST /api/v1/auth/logout`: revokes the token this client carries.
    pub fn logout(&self) -> Result<()> {
        self.empty(Call::post("/api/v1/auth/logout"))
    }

    /// `GET /api/v1/me`.
    pub fn me(&self) -> Result<Me> {
        self.json(Call::get("/api/v1/me"))
    }

    /// `PUT /api/v1/me/password`.
    pub fn change_password(&self, current: &str, new: &str) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            current_password: &'a str,
            new_password: &'a str,
        }
        self.empty(Call::put("/api/v1/me/password").json(&Body {
            current_password: current,
            new_password: new,
        })?)
    }

    /// `POST /api/v1/tokens`: a new API token (shown once).
    pub fn create_token(&self, name: &str, expires_in_days: Option<u32>) -> Result<TokenResponse> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            expires_in_days: Option<u32>,
        }
        self.json(Call::post("/api/v1/tokens").json(&Body {
            name,
            expires_in_days,
        })?)
    }

    /// `GET /api/v1/tokens`: the caller's live API tokens.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.list(Call::get("/api/v1/tokens"))
    }

    /// `DELETE /api/v1/tokens/{token_id}`.
    pub fn revoke_token(&self, token_id: &str) -> Result<()> {
        self.empty(Call::delete(format!("/api/v1/tokens/{}", encode(token_id))))
    }

    /// `POST /api/v1/orgs` (admin).
    pub fn create_org(&self, name: &str) -> Result<Organization> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
        }
        self.json(Call::post("/api/v1/orgs").json(&Body { name })?)
    }

    /// `GET /api/v1/orgs` (admin).
    pub fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.list(Call::get("/api/v1/orgs"))
    }

    /// `POST /api/v1/users` (admin).
    pub fn create_user(&self, user: &NewUser<'_>) -> Result<User> {
        self.json(Call::post("/api/v1/users").json(user)?)
    }

    /// `GET /api/v1/users?org_id=` (admin).
    pub fn list_users(&self, org_id: Option<OrgId>) -> Result<Vec<User>> {
        self.list(Call::get("/api/v1/users").query_opt("org_id", org_id))
    }

    /// `PUT /api/v1/users/{user_id}/disabled` (admin).
    pub fn set_user_disabled(&self, user_id: UserId, disabled: bool) -> Result<()> {
        #[derive(Serialize)]
        struct Body {
            disabled: bool,
        }
        self.empty(Call::put(format!("/api/v1/users/{user_id}/disabled")).json(&Body { disabled })?)
    }

    /// `POST /api/v1/orgs/{org_id}/sites` (admin): a DS site and its agent's token.
    pub fn create_site(&self, org_id: OrgId, name: &str) -> Result<SiteCreated> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
        }
        self.json(Call::post(format!("/api/v1/orgs/{org_id}/sites")).json(&Body { name })?)
    }
}
