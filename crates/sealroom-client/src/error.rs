//! The client's one error type.

use sealroom_types::ErrorCode;

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an API error (`{"code","message"}`).
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code (see [`ClientError::error_code`] for the typed one).
        code: String,
        /// The server's sentence for people.
        message: String,
    },
    /// The server answered something that is not the API's shape (a proxy's HTML page, a body
    /// that does not decode into the expected type).
    #[error("unexpected response from {url} (HTTP {status}): {detail}")]
    UnexpectedResponse {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The request did not get an answer: connection refused, DNS, TLS, timeout.
    #[error("cannot reach {url}: {source}")]
    Transport {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: ureq::Error,
    },
    /// Reading what was to be uploaded, or writing what was downloaded, failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The client is not configured correctly (bad server URL, unreadable CA file).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status of an API error or unexpected response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::UnexpectedResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The typed error code of an API error, when this build knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => code.parse().ok(),
            _ => None,
        }
    }

    /// True for an API error with this code.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.error_code() == Some(code)
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ClientError::Io {
            what: what.into(),
            source,
        }
    }
}
