//! Sign-in and accounts: login/logout, the caller's own user, API tokens; organizations, users
//! and sites (admin only).
//!
//! | method path | who |
//! |---|---|
//! | `POST /api/v1/auth/login` | anyone (rate limited) |
//! | `POST /api/v1/auth/logout` | a user |
//! | `GET /api/v1/me` | a user |
//! | `PUT /api/v1/me/password` | a user |
//! | `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{token_id}` | a user (own tokens) |
//! | `GET/POST /api/v1/orgs` | admin |
//! | `GET/POST /api/v1/users`, `PUT /api/v1/users/{user_id}/disabled` | admin |
//! | `POST /api/v1/orgs/{org_id}/sites` | admin |

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sealroom_store::{NewToken, NewUser, TokenKind, TokenSubject};
use sealroom_types::{
    ApiTokenId, AuditOutcome, ErrorCode, Name, OrgId, Organization, Site, Timestamp, User, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::auth;
use crate::extract::{parse_id, Caller, ClientAddr, JsonBody, PathId, Q};
use crate::{ApiResult, ControlState, Failure};

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(create_user, list_users))
        .routes(routes!(set_user_disabled))
        .routes(routes!(create_site))
}

/// Sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username (case-insensitive).
    pub username: String,
    /// Password.
    pub password: String,
}

/// A token, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token: send it as `Authorization: Bearer <token>`. Shown only now.
    pub token: String,
    /// Its ID (to revoke it).
    pub id: String,
    /// `session`, `api` or `site`.
    pub kind: String,
    /// When it stops working, RFC 3339; absent: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
    /// The signed-in user (login only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub user: Option<User>,
}

/// Sign in with a password; returns a session token (12 hours).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = tags::ACCOUNTS, security(()),
    request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "wrong username or password"),
        (status = 429, description = "too many failed attempts")))]
async fn login(
    State(state): State<ControlState>,
    ClientAddr(addr): ClientAddr,
    JsonBody(req): JsonBody<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    if let Some(wait) = state.inner.limiter.retry_after(&req.username, addr) {
        login_denied(&state, &req.username, "rate limited").await;
        return Err(Failure::new(
            ErrorCode::RateLimited,
            format!("too many failed sign-ins; try again in {wait} s"),
        ));
    }
    let creds = if req.username.len() <= 128 {
        state.store().user_credentials(&req.username).await?
    } else {
        None
    };
    let password = zeroize::Zeroizing::new(req.password);
    let (phc, user) = match &creds {
        Some(c) if !c.user.disabled => (c.password_hash.clone(), Some(c.user.clone())),
        _ => (auth::dummy_hash().to_string(), None),
    };
    let ok = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || auth::verify_password(&password, &phc)).await?
    };
    let Some(user) = user.filter(|_| ok) else {
        state.inner.limiter.failed(&req.username, addr);
        login_denied(&state, &req.username, "wrong username or password").await;
        return Err(Failure::unauthenticated("wrong username or password"));
    };
    state.inner.limiter.succeeded(&req.username);
    let (token, hash) = auth::mint_token(TokenKind::Session);
    let expires_at = Timestamp::now().plus_secs(auth::SESSION_TTL_SECS);
    let record = state
        .store()
        .create_token(NewToken {
            kind: TokenKind::Session,
            subject: TokenSubject::User(user.id),
            token_hash: hash,
            name: "session".into(),
            expires_at: Some(expires_at),
        })
        .await?;
    let caller = Caller::User(crate::extract::UserCaller {
        user: user.clone(),
        token_id: record.id.clone(),
        token_kind: TokenKind::Session,
    });
    state
        .audit_required(
            &caller,
            "auth.login",
            AuditOutcome::Success,
            None,
            Some(format!("user:{}", user.id)),
            serde_json::json!({}),
        )
        .await?;
    Ok(Json(TokenResponse {
        token: token.to_string(),
        id: record.id,
        kind: TokenKind::Session.as_str().into(),
        expires_at: Some(expires_at),
        user: Some(user),
    }))
}

/// Audits a refused sign-in (the username as given, cut to 64 characters).
async fn login_denied(state: &ControlState, username: &str, reason: &str) {
    state
        .audit(
            &Caller::Anonymous { bad_token: false },
            "auth.login",
            AuditOutcome::Denied,
            None,
            Some(format!(
                "username:{}",
                username.chars().take(64).collect::<String>()
            )),
            serde_json::json!({ "reason": reason }),
        )
        .await;
}

/// Ends the session (revokes the token this request carries).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = tags::ACCOUNTS,
    responses((status = 204), (status = 401)))]
async fn logout(State(state): State<ControlState>, caller: Caller) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    state.store().revoke_token(&user.token_id).await?;
    state.forget_tokens();
    state
        .audit(
            &caller,
            "auth.logout",
            AuditOutcome::Success,
            None,
            Some(format!("token:{}", user.token_id)),
            serde_json::json!({}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller and its organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    /// The user.
    #[schema(value_type = Object)]
    pub user: User,
    /// Its organization.
    #[schema(value_type = Object)]
    pub organization: Organization,
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/me", tag = tags::ACCOUNTS,
    responses((status = 200, body = MeResponse), (status = 401)))]
async fn me(State(state): State<ControlState>, caller: Caller) -> ApiResult<Json<MeResponse>> {
    let user = caller.user()?;
    let organization = state.store().get_org(user.user.org_id).await?;
    Ok(Json(MeResponse {
        user: user.user.clone(),
        organization,
    }))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new one (at least 12 characters).
    pub new_password: String,
}

/// Changes the caller's password (the first admin's one-time password is changed this way).
#[utoipa::path(put, path = "/api/v1/me/password", tag = tags::ACCOUNTS,
    request_body = PasswordChange,
    responses((status = 204), (status = 400), (status = 401), (status = 403)))]
async fn change_password(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<PasswordChange>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?.user.clone();
    let current = zeroize::Zeroizing::new(req.current_password);
    let new = zeroize::Zeroizing::new(req.new_password);
    auth::check_new_password(&new).map_err(Failure::invalid)?;
    let creds = state
        .store()
        .user_credentials(&user.username)
        .await?
        .ok_or_else(|| Failure::unauthenticated("the user no longer exists"))?;
    let new_hash = tokio::task::spawn_blocking(move || {
        if auth::verify_password(&current, &creds.password_hash) {
            auth::hash_password(&new).map(Some)
        } else {
            Ok(None)
        }
    })
    .await?
    .map_err(Failure::internal)?;
    let Some(new_hash) = new_hash else {
        let f = Failure::forbidden("the current password is wrong");
        state
            .deny(
                &caller,
                "user.password",
                None,
                Some(format!("user:{}", user.id)),
                &f,
            )
            .await;
        return Err(f);
    };
    state.store().set_password_hash(user.id, &new_hash).await?;
    state
        .audit_required(
            &caller,
            "user.password",
            AuditOutcome::Success,
            None,
            Some(format!("user:{}", user.id)),
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// A label ("laptop CLI").
    pub name: String,
    /// Days until it expires (1-366); absent: until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token without its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// ID.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Label.
    pub name: String,
    /// Created.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Expires.
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
}

impl From<sealroom_store::TokenRecord> for TokenInfo {
    fn from(r: sealroom_store::TokenRecord) -> Self {
        TokenInfo {
            id: r.id,
            kind: r.kind.as_str().into(),
            name: r.name,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

fn check_label(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Failure::new(
            ErrorCode::InvalidName,
            "a token name must have 1 to 100 characters",
        ));
    }
    Ok(())
}

/// Creates an API token for the CLI (shown once).
#[utoipa::path(post, path = "/api/v1/tokens", tag = tags::ACCOUNTS,
    request_body = NewTokenRequest,
    responses((status = 201, body = TokenResponse), (status = 400), (status = 401)))]
async fn create_token(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewTokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let user = caller.user()?.user.clone();
    check_label(&req.name)?;
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d @ 1..=366) => Some(Timestamp::now().plus_secs(i64::from(d) * 86_400)),
        Some(_) => return Err(Failure::invalid("expires_in_days must be 1 to 366")),
    };
    let (token, hash) = auth::mint_token(TokenKind::Api);
    let record = state
        .store()
        .create_token(NewToken {
            kind: TokenKind::Api,
            subject: TokenSubject::User(user.id),
            token_hash: hash,
            name: req.name,
            expires_at,
        })
        .await?;
    state
        .audit_required(
            &caller,
            "token.create",
            AuditOutcome::Success,
            None,
            Some(format!("token:{}", record.id)),
            serde_json::json!({ "kind": "api" }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            token: token.to_string(),
            id: record.id,
            kind: TokenKind::Api.as_str().into(),
            expires_at,
            user: None,
        }),
    ))
}

/// The caller's live API tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = tags::ACCOUNTS,
    responses((status = 200, body = Vec<TokenInfo>), (status = 401)))]
async fn list_tokens(
    State(state): State<ControlState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let user = caller.user()?;
    let tokens = state
        .store()
        .list_tokens(user.user.id, TokenKind::Api, Timestamp::now())
        .await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = tags::ACCOUNTS,
    params(("token_id" = String, Path, description = "the token's ID")),
    responses((status = 204), (status = 400, description = "invalid_id"), (status = 401), (status = 404)))]
async fn revoke_token(
    State(state): State<ControlState>,
    caller: Caller,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    // Parsed after the caller is known: anonymous callers get 401 whatever the path holds.
    let token_id = parse_id::<ApiTokenId>(&raw)?.to_string();
    let mine = state
        .store()
        .list_tokens(user.user.id, TokenKind::Api, Timestamp::now())
        .await?
        .into_iter()
        .any(|t| t.id == token_id);
    if !mine {
        let f = Failure::not_found("token", &token_id);
        state.deny(&caller, "token.revoke", None, None, &f).await;
        return Err(f);
    }
    state.store().revoke_token(&token_id).await?;
    state.forget_tokens();
    state
        .audit_required(
            &caller,
            "token.revoke",
            AuditOutcome::Success,
            None,
            Some(format!("token:{token_id}")),
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Requires an admin, auditing a refusal.
async fn admin<'c>(
    state: &ControlState,
    caller: &'c Caller,
    action: &str,
) -> ApiResult<&'c crate::extract::UserCaller> {
    match caller.admin() {
        Ok(u) => Ok(u),
        Err(f) => {
            state.deny(caller, action, None, None, &f).await;
            Err(f)
        }
    }
}

/// A new organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgRequest {
    /// Unique name.
    pub name: String,
}

fn parse_name(s: &str) -> ApiResult<Name> {
    Name::parse(s).map_err(|e| Failure::new(ErrorCode::InvalidName, e.to_string()))
}

/// Creates an organization (admin).
#[utoipa::path(post, path = "/api/v1/orgs", tag = tags::ACCOUNTS,
    request_body = NewOrgRequest,
    responses((status = 201, body = Object), (status = 400), (status = 401), (status = 403), (status = 409)))]
async fn create_org(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewOrgRequest>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    admin(&state, &caller, "org.create").await?;
    let name = parse_name(&req.name)?;
    let org = state.store().create_org(&name).await?;
    state
        .audit_required(
            &caller,
            "org.create",
            AuditOutcome::Success,
            None,
            Some(format!("org:{}", org.id)),
            serde_json::json!({ "name": org.name }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// Every organization (admin).
#[utoipa::path(get, path = "/api/v1/orgs", tag = tags::ACCOUNTS,
    responses((status = 200, body = Vec<Object>), (status = 401), (status = 403)))]
async fn list_orgs(
    State(state): State<ControlState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Organization>>> {
    admin(&state, &caller, "org.list").await?;
    Ok(Json(state.store().list_orgs().await?))
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// The organization.
    pub org_id: String,
    /// Login name (letters, digits, `.`, `_`, `-`, `@`; 2-64).
    pub username: String,
    /// Name shown to people.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Initial password (at least 12 characters).
    pub password: String,
    /// Platform admin.
    #[serde(default)]
    pub is_admin: bool,
}

fn check_username(u: &str) -> ApiResult<()> {
    let ok = (2..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::InvalidName,
            "a username has 2 to 64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// Creates a user in an organization (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = tags::ACCOUNTS,
    request_body = NewUserRequest,
    responses((status = 201, body = Object), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn create_user(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    admin(&state, &caller, "user.create").await?;
    let org_id: OrgId = parse_id(&req.org_id)?;
    check_username(&req.username)?;
    let password = zeroize::Zeroizing::new(req.password);
    auth::check_new_password(&password).map_err(Failure::invalid)?;
    let display_name = req.display_name.unwrap_or_else(|| req.username.clone());
    if display_name.chars().count() > 200 {
        return Err(Failure::new(
            ErrorCode::InvalidName,
            "a display name has at most 200 characters",
        ));
    }
    state.store().get_org(org_id).await?;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await?
        .map_err(Failure::internal)?;
    let user = state
        .store()
        .create_user(NewUser {
            org_id,
            username: req.username,
            display_name,
            is_admin: req.is_admin,
            password_hash: hash,
        })
        .await?;
    state
        .audit_required(
            &caller,
            "user.create",
            AuditOutcome::Success,
            None,
            Some(format!("user:{}", user.id)),
            serde_json::json!({ "org_id": org_id, "username": user.username, "is_admin": user.is_admin }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `?org_id=` filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only this organization's users.
    pub org_id: Option<String>,
}

/// Users, optionally of one organization (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = tags::ACCOUNTS, params(UserFilter),
    responses((status = 200, body = Vec<Object>), (status = 401), (status = 403)))]
async fn list_users(
    State(state): State<ControlState>,
    caller: Caller,
    Q(filter): Q<UserFilter>,
) -> ApiResult<Json<Vec<User>>> {
    admin(&state, &caller, "user.list").await?;
    let org = filter.org_id.as_deref().map(parse_id).transpose()?;
    Ok(Json(state.store().list_users(org).await?))
}

/// Enable or disable.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisabledRequest {
    /// Disabled users cannot sign in; their tokens stop working.
    pub disabled: bool,
}

/// Disables or re-enables a user (admin).
#[utoipa::path(put, path = "/api/v1/users/{user_id}/disabled", tag = tags::ACCOUNTS,
    params(("user_id" = String, Path)), request_body = DisabledRequest,
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn set_user_disabled(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(user_id): PathId<UserId>,
    JsonBody(req): JsonBody<DisabledRequest>,
) -> ApiResult<StatusCode> {
    let me = admin(&state, &caller, "user.disable").await?;
    if me.user.id == user_id && req.disabled {
        return Err(Failure::invalid("an admin cannot disable itself"));
    }
    state.store().get_user(user_id).await?;
    state
        .store()
        .set_user_disabled(user_id, req.disabled)
        .await?;
    state.forget_tokens();
    state
        .audit_required(
            &caller,
            if req.disabled {
                "user.disable"
            } else {
                "user.enable"
            },
            AuditOutcome::Success,
            None,
            Some(format!("user:{user_id}")),
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new DS site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSiteRequest {
    /// Name shown to people.
    pub name: String,
}

/// A site and its agent's token (shown once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SiteCreated {
    /// The site.
    #[schema(value_type = Object)]
    pub site: Site,
    /// The agent's token: `sealroom agent --token ...`.
    pub token: String,
}

/// Registers a site of an organization and issues its agent's token (admin).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/sites", tag = tags::ACCOUNTS,
    params(("org_id" = String, Path)), request_body = NewSiteRequest,
    responses((status = 201, body = SiteCreated), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn create_site(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(org_id): PathId<OrgId>,
    JsonBody(req): JsonBody<NewSiteRequest>,
) -> ApiResult<(StatusCode, Json<SiteCreated>)> {
    admin(&state, &caller, "site.create").await?;
    let name = parse_name(&req.name)?;
    state.store().get_org(org_id).await?;
    let site = state.store().create_site(org_id, &name).await?;
    let (token, hash) = auth::mint_token(TokenKind::Site);
    let record = state
        .store()
        .create_token(NewToken {
            kind: TokenKind::Site,
            subject: TokenSubject::Site(site.id),
            token_hash: hash,
            name: format!("agent of {}", site.name),
            expires_at: None,
        })
        .await?;
    state
        .audit_required(
            &caller,
            "site.create",
            AuditOutcome::Success,
            None,
            Some(format!("site:{}", site.id)),
            serde_json::json!({ "org_id": org_id, "token_id": record.id }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SiteCreated {
            site,
            token: token.to_string(),
        }),
    ))
}
