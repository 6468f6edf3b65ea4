//! Stable API error codes and the JSON error body.
//!
//! Clients match on [`ErrorCode`] (its wire name never changes); [`ApiError::message`] is for
//! people. The cause of an internal error goes to the server's log, never into the body.

use crate::wire_enum;

/// A stable, machine-readable error code. Each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request is not well-formed for this endpoint (a field out of range, ...).
    InvalidRequest,
    /// 400: the body is not valid JSON or does not match the endpoint's shape.
    MalformedJson,
    /// 400: an ID in the path or body is not a well-formed ID.
    InvalidId,
    /// 400: a name, tag or description is not acceptable.
    InvalidName,
    /// 400: a runtime parameter name or value is not acceptable.
    InvalidParameter,
    /// 400: vCPU/RAM not among the project's technology's choices.
    InvalidComputeSize,
    /// 400: the dataset URL carries no readable signature/expiry.
    DatasetUrlInvalid,
    /// 400: validation criteria are not valid JSON / schema.
    InvalidCriteria,
    /// 401: no or bad credentials.
    Unauthenticated,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: no such object, or the caller may not know it exists.
    NotFound,
    /// 409: the object already exists (name taken, ...).
    AlreadyExists,
    /// 409: a run configuration for this algorithm version × dataset version exists.
    DuplicateRunConfiguration,
    /// 409: the configuration already has an open request or an active run.
    RunAlreadyOpen,
    /// 409: the run is not in a state that allows this.
    InvalidStateTransition,
    /// 409: the project is paused (no new runs) or deactivated (read-only).
    ProjectNotActive,
    /// 409: validation criteria not accepted by the DS yet.
    CriteriaNotAccepted,
    /// 409: a precondition of the workflow is not met (missing WCEK, ...).
    PreconditionFailed,
    /// 410: a signed URL or a token has expired.
    Expired,
    /// 413: the body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// 415: wrong `Content-Type`.
    UnsupportedMediaType,
    /// 422: the dataset URL expires in less than 24 hours.
    DatasetUrlExpired,
    /// 422: the WCEK does not unwrap under the role's KEK.
    WcekDoesNotUnwrap,
    /// 422: an uploaded package or file fails its checks.
    InvalidUpload,
    /// 429: too many attempts (login rate limit).
    RateLimited,
    /// 500: something went wrong on the server (details in its log).
    Internal,
    /// 503: a dependency (database, key provider) is unavailable.
    Unavailable,
}
wire_enum!(ErrorCode, "error code", {
    InvalidRequest => "invalid_request",
    MalformedJson => "malformed_json",
    InvalidId => "invalid_id",
    InvalidName => "invalid_name",
    InvalidParameter => "invalid_parameter",
    InvalidComputeSize => "invalid_compute_size",
    DatasetUrlInvalid => "dataset_url_invalid",
    InvalidCriteria => "invalid_criteria",
    Unauthenticated => "unauthenticated",
    Forbidden => "forbidden",
    NotFound => "not_found",
    AlreadyExists => "already_exists",
    DuplicateRunConfiguration => "duplicate_run_configuration",
    RunAlreadyOpen => "run_already_open",
    InvalidStateTransition => "invalid_state_transition",
    ProjectNotActive => "project_not_active",
    CriteriaNotAccepted => "criteria_not_accepted",
    PreconditionFailed => "precondition_failed",
    Expired => "expired",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    DatasetUrlExpired => "dataset_url_expired",
    WcekDoesNotUnwrap => "wcek_does_not_unwrap",
    InvalidUpload => "invalid_upload",
    RateLimited => "rate_limited",
    Internal => "internal",
    Unavailable => "unavailable",
});

impl ErrorCode {
    /// The HTTP status for this code.
    pub const fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest | MalformedJson | InvalidId | InvalidName | InvalidParameter
            | InvalidComputeSize | DatasetUrlInvalid | InvalidCriteria => 400,
            Unauthenticated => 401,
            Forbidden => 403,
            NotFound => 404,
            AlreadyExists
            | DuplicateRunConfiguration
            | RunAlreadyOpen
            | InvalidStateTransition
            | ProjectNotActive
            | CriteriaNotAccepted
            | PreconditionFailed => 409,
            Expired => 410,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            DatasetUrlExpired | WcekDoesNotUnwrap | InvalidUpload => 422,
            RateLimited => 429,
            Internal => 500,
            Unavailable => 503,
        }
    }
}

/// The JSON body of every API error: `{"code":"not_found","message":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_mapped() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()));
            assert!((400..600).contains(&c.http_status()));
            assert_eq!(c.as_str().parse::<ErrorCode>().unwrap(), *c);
        }
        assert_eq!(ErrorCode::DuplicateRunConfiguration.http_status(), 409);
        let e = ApiError::new(ErrorCode::NotFound, "no such project");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"not_found","message":"no such project"}"#
        );
    }
}
