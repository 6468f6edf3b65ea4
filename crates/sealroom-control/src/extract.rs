//! Request extractors that fail with Sealroom's JSON errors: the authenticated [`Caller`],
//! [`JsonBody`] (415 on a wrong content type, 413 over the body limit, 400 on malformed JSON),
//! [`Q`] for query strings, [`PathId`] for IDs in the path, and [`PageParams`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use bytes::Bytes;
use sealroom_store::{TokenKind, TokenSubject};
use sealroom_types::{ErrorCode, OrgId, Site, SiteId, Timestamp, User, UserId};
use serde::de::DeserializeOwned;

use super::error::{ApiResult, Failure};
use super::ControlState;

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct UserCaller {
    /// The user.
    pub user: User,
    /// The token's ID (to revoke it at logout).
    pub token_id: String,
    /// Session or API token.
    pub token_kind: TokenKind,
}

/// An agent, authenticated by its site token.
#[derive(Debug, Clone)]
pub struct SiteCaller {
    /// The site.
    pub site: Site,
    /// The token's ID.
    pub token_id: String,
}

/// Who is calling. Every handler takes one and checks it against what it does.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No (or no valid) `Authorization` header.
    Anonymous {
        /// Whether a token was presented but not valid (expired, revoked, unknown).
        bad_token: bool,
    },
    /// A user.
    User(UserCaller),
    /// A site's agent.
    Site(SiteCaller),
}

impl Caller {
    /// The user, or 401 (anonymous) / 403 (an agent).
    pub fn user(&self) -> ApiResult<&UserCaller> {
        match self {
            Caller::User(u) => Ok(u),
            Caller::Anonymous { bad_token: true } => Err(Failure::unauthenticated(
                "the token is expired, revoked or unknown; sign in again",
            )),
            Caller::Anonymous { bad_token: false } => Err(Failure::unauthenticated(
                "sign in first: send `Authorization: Bearer <token>`",
            )),
            Caller::Site(_) => Err(Failure::forbidden(
                "site tokens may only call the agent API",
            )),
        }
    }

    /// The user if a platform admin, else 401/403.
    pub fn admin(&self) -> ApiResult<&UserCaller> {
        let u = self.user()?;
        if u.user.is_admin {
            Ok(u)
        } else {
            Err(Failure::forbidden("only a platform admin may do this"))
        }
    }

    /// The site, or 401 / 403 (a user).
    pub fn site(&self) -> ApiResult<&SiteCaller> {
        match self {
            Caller::Site(s) => Ok(s),
            Caller::User(_) => Err(Failure::forbidden(
                "the agent API takes a site token, not a user's token",
            )),
            Caller::Anonymous { .. } => Err(Failure::unauthenticated(
                "the agent API needs `Authorization: Bearer <site token>`",
            )),
        }
    }

    /// The audit actor.
    pub fn actor(&self) -> sealroom_types::Actor {
        match self {
            Caller::User(u) => sealroom_types::Actor::User(u.user.id),
            Caller::Site(s) => sealroom_types::Actor::Site(s.site.id),
            Caller::Anonymous { .. } => sealroom_types::Actor::Anonymous,
        }
    }

    /// The caller's organization, if any.
    pub fn org(&self) -> Option<OrgId> {
        match self {
            Caller::User(u) => Some(u.user.org_id),
            Caller::Site(s) => Some(s.site.org_id),
            Caller::Anonymous { .. } => None,
        }
    }

    /// The user's ID, if a user.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Caller::User(u) => Some(u.user.id),
            _ => None,
        }
    }

    /// The site's ID, if an agent.
    pub fn site_id(&self) -> Option<SiteId> {
        match self {
            Caller::Site(s) => Some(s.site.id),
            _ => None,
        }
    }
}

/// Longest `Authorization` header looked at.
const MAX_TOKEN_LEN: usize = 256;

impl FromRequestParts<ControlState> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &ControlState) -> ApiResult<Self> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller::Anonymous { bad_token: false });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .ok_or_else(|| {
                Failure::unauthenticated("the Authorization header must be `Bearer <token>`")
            })?;
        let hash = super::auth::token_hash(token);
        if let Some(cached) = state.inner.token_cache.get(&hash) {
            return Ok(cached);
        }
        let Some(record) = state.store().find_token(&hash, Timestamp::now()).await? else {
            return Ok(Caller::Anonymous { bad_token: true });
        };
        let caller = match record.subject {
            TokenSubject::User(id) => {
                let user = state.store().get_user(id).await?;
                if user.disabled {
                    return Ok(Caller::Anonymous { bad_token: true });
                }
                Caller::User(UserCaller {
                    user,
                    token_id: record.id,
                    token_kind: record.kind,
                })
            }
            TokenSubject::Site(id) => Caller::Site(SiteCaller {
                site: state.store().get_site(id).await?,
                token_id: record.id,
            }),
        };
        state.inner.token_cache.put(hash, caller.clone());
        Ok(caller)
    }
}

/// The client's address, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A JSON request body. Requires `Content-Type: application/json`; bodies over the router's
/// limit are refused with 413; malformed or mis-shaped JSON with 400 `malformed_json` naming the
/// line, column and field.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Whether the request's content type is `mime` (parameters such as `charset` ignored).
pub fn has_content_type(headers: &axum::http::HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime))
}

/// Reads a whole (limited) body, mapping the limit to 413.
pub async fn read_body(req: Request, state: &ControlState) -> ApiResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than this endpoint accepts",
            )
        } else {
            Failure::invalid(format!("could not read the request body: {e}"))
        }
    })
}

impl<T: DeserializeOwned> FromRequest<ControlState> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &ControlState) -> ApiResult<Self> {
        if !has_content_type(req.headers(), "application/json") {
            return Err(Failure::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON with a 400 `malformed_json` that says where and what.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error_free(de).map_err(|e| {
        Failure::new(
            ErrorCode::MalformedJson,
            format!("the body is not the JSON this endpoint takes: {e}"),
        )
    })
}

fn serde_path_to_error_free<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, serde_json::Error> {
    let v = T::deserialize(&mut *de)?;
    de.end()?;
    Ok(v)
}

/// A query string, failing with 400 `invalid_request`.
#[derive(Debug, Clone)]
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Q(q.0))
            .map_err(|e| Failure::invalid(format!("query string: {}", e.body_text())))
    }
}

/// One ID from the path, parsed into its type; 400 `invalid_id` if it is not one.
#[derive(Debug, Clone, Copy)]
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: std::str::FromStr + Send,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| Failure::invalid(format!("path: {}", e.body_text())))?;
        parse_id(&raw).map(PathId)
    }
}

/// Parses an ID (path segment, body field) with 400 `invalid_id`.
pub fn parse_id<T: std::str::FromStr>(raw: &str) -> ApiResult<T> {
    raw.parse().map_err(|_| {
        Failure::new(
            ErrorCode::InvalidId,
            format!(
                "{:?} is not a valid ID",
                raw.chars().take(64).collect::<String>()
            ),
        )
    })
}

/// Default page size.
pub const DEFAULT_PAGE: u32 = 50;
/// Largest page size.
pub const MAX_PAGE: u32 = 500;

/// `?cursor=...&limit=...` of a paginated list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (default 50, at most 500).
    pub limit: Option<u32>,
}

impl PageParams {
    /// The limit, defaulted and checked.
    pub fn limit(&self) -> ApiResult<u32> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(0) => Err(Failure::invalid("limit must be at least 1")),
            Some(n) if n > MAX_PAGE => Err(Failure::invalid(format!(
                "limit must be at most {MAX_PAGE}"
            ))),
            Some(n) => Ok(n),
        }
    }

    /// The cursor parsed as an ID.
    pub fn cursor<T: std::str::FromStr>(&self) -> ApiResult<Option<T>> {
        self.cursor.as_deref().map(parse_id).transpose()
    }
}
