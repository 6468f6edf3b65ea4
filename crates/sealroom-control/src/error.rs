//! The one error type of every control-plane handler, rendered as the JSON body of
//! [`sealroom_types::ApiError`] with the code's HTTP status.
//!
//! Messages are for people and never carry secrets; the cause of a 5xx goes to the server's log
//! only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealroom_types::{ApiError, ErrorCode};

/// A failed request: the API error sent back, plus (for 5xx) the cause kept for the log.
#[derive(Debug)]
pub struct Failure {
    /// What the caller receives.
    pub error: ApiError,
    /// What only the log receives.
    cause: Option<String>,
}

/// Result alias of handlers.
pub type ApiResult<T> = std::result::Result<T, Failure>;

impl Failure {
    /// A failure with a code and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            error: ApiError::new(code, message),
            cause: None,
        }
    }

    /// 404 for an object the caller may not know about (or that does not exist).
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} {id} not found"))
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 500 with the cause kept for the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Failure {
            error: ApiError::new(
                ErrorCode::Internal,
                "internal error; the server's log has the details",
            ),
            cause: Some(cause.to_string()),
        }
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.error.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Some(cause) = &self.cause {
            tracing::error!(code = %self.error.code, %cause, "request failed");
        }
        (status, Json(self.error)).into_response()
    }
}

impl From<sealroom_store::StoreError> for Failure {
    fn from(e: sealroom_store::StoreError) -> Self {
        let code = e.code();
        match code {
            ErrorCode::Internal => Failure::internal(e),
            ErrorCode::Unavailable => Failure {
                error: ApiError::new(
                    ErrorCode::Unavailable,
                    "the metadata database is unavailable; try again",
                ),
                cause: Some(e.to_string()),
            },
            _ => Failure::new(code, e.to_string()),
        }
    }
}

impl From<sealroom_blob::BlobError> for Failure {
    fn from(e: sealroom_blob::BlobError) -> Self {
        use sealroom_blob::BlobError as B;
        match &e {
            B::NotFound(_) => Failure::new(ErrorCode::NotFound, e.to_string()),
            B::AlreadyExists(_) => Failure::new(ErrorCode::AlreadyExists, e.to_string()),
            B::InvalidKey(_) => Failure::new(ErrorCode::InvalidRequest, e.to_string()),
            B::TooLarge { .. } => Failure::new(ErrorCode::PayloadTooLarge, e.to_string()),
            B::Mismatch { .. } => Failure::new(ErrorCode::InvalidUpload, e.to_string()),
            B::RangeNotSatisfiable { .. } => Failure::new(ErrorCode::InvalidRequest, e.to_string()),
            _ => Failure::internal(e),
        }
    }
}

impl From<sealroom_broker::BrokerError> for Failure {
    fn from(e: sealroom_broker::BrokerError) -> Self {
        use sealroom_broker::ErrorClass as C;
        match e.class() {
            C::BadWcek => Failure::new(ErrorCode::WcekDoesNotUnwrap, e.to_string()),
            C::BadRecipient => Failure::new(ErrorCode::InvalidRequest, e.to_string()),
            C::ProviderUnavailable => Failure {
                error: ApiError::new(ErrorCode::Unavailable, "the key provider is unavailable"),
                cause: Some(e.to_string()),
            },
            C::BadKeyBlob | C::Config | C::Internal => Failure::internal(e),
        }
    }
}

impl From<tokio::task::JoinError> for Failure {
    fn from(e: tokio::task::JoinError) -> Self {
        Failure::internal(format!("background task failed: {e}"))
    }
}
