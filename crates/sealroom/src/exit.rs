//! Exit codes. Each kind of failure has its own code, documented in `docs/exit-codes.md`;
//! scripts can tell a wrong key from a tampered file without parsing messages.

use std::process::ExitCode;

use sealroom_envelope::Error as EnvelopeError;

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
    let code = err
        .chain()
        .find_map(|c| c.downcast_ref::<EnvelopeError>())
        .map(envelope_code)
        .unwrap_or(FAILURE);
    ExitCode::from(code)
}
