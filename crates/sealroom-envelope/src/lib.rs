//! Sealroom's envelope: the sealed file format, content keys and their wrapping, and importers
//! for peers' encrypted files.
//!
//! * [`Cek`]: a 32-byte content encryption key, its [`KeyId`], key files.
//! * [`kek`]: RSA KEKs and WCEKs (RSA-OAEP-SHA256, interoperable with Web Crypto and OpenSSL).
//! * [`stream`]: sealing and unsealing streams on all cores; [`access::SealedFile`] reads any
//!   byte range, verifying only the segments it touches.
//! * [`dir`]: directory trees sealed file by file with a sealed manifest.
//! * [`import`]: Fernet tokens and OpenPGP symmetric files, streamed.
//!
//! The format is specified in `docs/format.md`.
//!
//! ```
//! use std::io::Cursor;
//! use sealroom_envelope::{stream, Cek};
//!
//! let cek = Cek::generate()?;
//! let plaintext = b"patient_id,age\n1,54\n".to_vec();
//! let (sealed, summary) = stream::seal(&mut &plaintext[..], Cursor::new(Vec::new()), &cek, &())?;
//! assert_eq!(summary.plaintext_len, plaintext.len() as u64);
//! let (opened, _) = stream::unseal(&mut &sealed.get_ref()[..], Vec::new(), &cek, &())?;
//! assert_eq!(opened, plaintext);
//! # Ok::<(), sealroom_envelope::Error>(())
//! ```

pub mod access;
pub mod atomic;
pub mod dir;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod import;
pub mod kek;
pub mod key;
pub mod parallel;
pub mod recipient;
pub mod stream;

pub use error::{Error, Result};
pub use key::{Cek, KeyId};
