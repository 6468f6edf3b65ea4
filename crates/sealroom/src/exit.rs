//! Exit codes. Each kind of failure has its own code, documented in `docs/exit-codes.md`;
//! scripts can tell a wrong key from a tampered file without parsing messages.

use std::process::ExitCode;

use sealroom_client::ClientError;
use sealroom_envelope::Error as EnvelopeError;

use crate::cmd::api::{NotSignedIn, Usage};

/// Anything without a more specific code (also `criteria check`: the document is invalid).
pub const FAILURE: u8 = 1;
/// The command line is wrong (clap uses this code too).
pub const USAGE: u8 = 2;
/// The file was sealed with another CEK.
pub const WRONG_KEY: u8 = 10;
/// The sealed data was modified: a segment, the header, extra bytes, a manifest mismatch.
pub const TAMPERED: u8 = 11;
/// The sealed file is shorter than its header says.
pub const TRUNCATED: u8 = 12;
/// A sealed-file format version this build does not read.
pub const UNKNOWN_VERSION: u8 = 13;
/// The input is not a sealed file (or tree).
pub const NOT_SEALED: u8 = 14;
/// A key file cannot be read or is malformed; a WCEK does not unwrap.
pub const BAD_KEY: u8 = 15;
/// Reading or writing a file failed.
pub const IO: u8 = 16;
/// A peer's file (Fernet, OpenPGP) failed to import.
pub const IMPORT: u8 = 17;
/// Not signed in, or the server refused the token or password (HTTP 401).
pub const UNAUTHENTICATED: u8 = 20;
/// Signed in, but your role or organization may not do this (HTTP 403).
pub const FORBIDDEN: u8 = 21;
/// No such object, or you may not know it exists (HTTP 404).
pub const NOT_FOUND: u8 = 22;
/// The object's state does not allow it: exists already, wrong run state, project paused or
/// deactivated, criteria not accepted, expired (HTTP 409, 410).
pub const CONFLICT: u8 = 23;
/// The server refused the input: malformed or out of range, too large, failed checks
/// (HTTP 400, 413, 415, 422).
pub const REJECTED: u8 = 24;
/// Too many attempts; wait and retry (HTTP 429).
pub const RATE_LIMITED: u8 = 25;
/// The server failed or answered something unexpected (HTTP 5xx, a non-API response).
pub const SERVER_ERROR: u8 = 26;
/// The server cannot be reached: connection refused, DNS, TLS, timeout.
pub const UNREACHABLE: u8 = 27;
/// The feature is not built yet (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;

/// The exit code for an envelope error.
pub fn envelope_code(err: &EnvelopeError) -> u8 {
    match err {
        EnvelopeError::NotSealed { .. } => NOT_SEALED,
        EnvelopeError::UnknownVersion { .. } => UNKNOWN_VERSION,
        EnvelopeError::WrongKey { .. } => WRONG_KEY,
        EnvelopeError::TamperedHeader { .. }
        | EnvelopeError::TamperedSegment { .. }
        | EnvelopeError::Tampered { .. } => TAMPERED,
        EnvelopeError::Truncated { .. } => TRUNCATED,
        EnvelopeError::KeyFile { .. } | EnvelopeError::Key(_) => BAD_KEY,
        EnvelopeError::Import(_) => IMPORT,
        EnvelopeError::Usage(_) => USAGE,
        EnvelopeError::Io { .. } => IO,
    }
}

/// The exit code for a client error.
pub fn client_code(err: &ClientError) -> u8 {
    match err {
        ClientError::Api { status, .. } => match status {
            401 => UNAUTHENTICATED,
            403 => FORBIDDEN,
            404 => NOT_FOUND,
            409 | 410 => CONFLICT,
            429 => RATE_LIMITED,
            400..=499 => REJECTED,
            _ => SERVER_ERROR,
        },
        ClientError::UnexpectedResponse { .. } => SERVER_ERROR,
        ClientError::Transport { .. } => UNREACHABLE,
        ClientError::Io { .. } => IO,
        ClientError::Config(_) => USAGE,
    }
}

/// The exit code of an error chain: the first cause with a known kind decides.
pub fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<EnvelopeError>() {
            return envelope_code(e);
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return client_code(e);
        }
        if cause.is::<NotSignedIn>() {
            return UNAUTHENTICATED;
        }
        if cause.is::<Usage>() {
            return USAGE;
        }
    }
    FAILURE
}

/// Prints an error chain to stderr and returns its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let mut message = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!("\n  caused by: {text}"));
        }
    }
    eprintln!("{message}");
    ExitCode::from(code_of(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> anyhow::Error {
        ClientError::Api {
            status,
            code: "x".into(),
            message: "m".into(),
        }
        .into()
    }

    #[test]
    fn client_errors_map_by_status() {
        for (status, code) in [
            (401, UNAUTHENTICATED),
            (403, FORBIDDEN),
            (404, NOT_FOUND),
            (409, CONFLICT),
            (410, CONFLICT),
            (400, REJECTED),
            (413, REJECTED),
            (422, REJECTED),
            (429, RATE_LIMITED),
            (500, SERVER_ERROR),
            (503, SERVER_ERROR),
        ] {
            assert_eq!(code_of(&api(status)), code, "{status}");
        }
        let wrapped = api(404).context("while downloading");
        assert_eq!(code_of(&wrapped), NOT_FOUND);
        let not_signed_in: anyhow::Error = NotSignedIn {
            server: "http://x".into(),
        }
        .into();
        assert_eq!(code_of(&not_signed_in), UNAUTHENTICATED);
        assert_eq!(code_of(&anyhow::anyhow!("other")), FAILURE);
    }
}
