//! OpenPGP files made by the real `gpg --symmetric` (temporary GNUPGHOME, loopback pinentry),
//! decrypted by `import::openpgp` as a stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sealroom_envelope::import::openpgp::{self, Compression, SymmetricAlgorithm};
use sealroom_envelope::import::{ImportError, Limits};

const PASSPHRASE: &str = "correct horse battery staple";

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A temporary GNUPGHOME and passphrase file; stops its gpg-agent when dropped.
struct Gpg {
    dir: tempfile::TempDir,
    home: PathBuf,
    passphrase_file: PathBuf,
}

impl Gpg {
    fn new() -> Gpg {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("gnupg");
        std::fs::create_dir(&home).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        Gpg {
            dir,
            home,
            passphrase_file,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", &self.home)
            .args(["--batch", "--yes", "--quiet", "--pinentry-mode", "loopback"])
            .arg("--passphrase-file")
            .arg(&self.passphrase_file);
        cmd
    }

    /// `gpg [args] --symmetric` of `plain` (from a file, or through a pipe when `piped`).
    fn encrypt(&self, plain: &[u8], args: &[&str], piped: bool) -> Vec<u8> {
        let input = self.dir.path().join("input.bin");
        let output = self.dir.path().join("output.gpg");
        let _ = std::fs::remove_file(&output);
        let mut cmd = self.command();
        cmd.args(args)
            .arg("--symmetric")
            .arg("--output")
            .arg(&output);
        let status = if piped {
            let mut child = cmd.stdin(Stdio::piped()).spawn().expect("gpg runs");
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(plain).unwrap();
            drop(stdin);
            child.wait().unwrap()
        } else {
            std::fs::write(&input, plain).unwrap();
            cmd.arg(&input).status().expect("gpg runs")
        };
        assert!(status.success(), "gpg {args:?} --symmetric failed");
        std::fs::read(&output).unwrap()
    }

    /// Checks that gpg itself decrypts `file` to `plain` (the reference behaviour).
    fn assert_gpg_decrypts(&self, file: &[u8], plain: &[u8]) {
        let path = self.dir.path().join("check.gpg");
        std::fs::write(&path, file).unwrap();
        let out = self.command().arg("--decrypt").arg(&path).output().unwrap();
        assert!(out.status.success());
        assert!(out.stdout == plain);
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn decrypt(
    file: &[u8],
    passphrase: &str,
) -> Result<(Vec<u8>, openpgp::OpenPgpSummary), ImportError> {
    let mut out = Vec::new();
    let summary = openpgp::decrypt(passphrase.as_bytes(), file, &mut out, &Limits::default())?;
    Ok((out, summary))
}

/// Fast S2K for the many-file tests (the default count, 65011712, is tested separately).
const FAST: &[&str] = &["--s2k-count", "65536"];

#[test]
fn gpg_defaults_decrypt_byte_identically() {
    let gpg = Gpg::new();
    let plain = data(200_000, 1);
    // gpg 2.2's defaults: AES256, ZIP, iterated+salted SHA-1 S2K with the maximum count.
    let file = gpg.encrypt(&plain, &[], false);
    let (out, summary) = decrypt(&file, PASSPHRASE).unwrap();
    assert!(out == plain);
    assert_eq!(summary.cipher, SymmetricAlgorithm::Aes256);
    assert_eq!(summary.compression, Some(Compression::Zip));
    assert_eq!(summary.file_name, b"input.bin");
    assert_eq!(summary.literal_format, b'b');
    assert!(!summary.armored);
    assert_eq!(summary.plaintext_len, plain.len() as u64);
    assert_eq!(summary.input_len, file.len() as u64);
}

#[test]
fn sizes_around_64k_and_several_mib() {
    let gpg = Gpg::new();
    let sizes = [
        0usize,
        1,
        511,
        512,
        8191,
        8192,
        65_535,
        65_536,
        65_537,
        2 * 65_536 + 1,
        3 * 1024 * 1024 + 7,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let plain = data(size, 10 + i as u64);
        for compress in ["none", "zip"] {
            for piped in [false, true] {
                let args = [
                    FAST,
                    &["--cipher-algo", "AES256", "--compress-algo", compress],
                ]
                .concat();
                let file = gpg.encrypt(&plain, &args, piped);
                let (out, _) = decrypt(&file, PASSPHRASE)
                    .unwrap_or_else(|e| panic!("size {size}, {compress}, piped {piped}: {e}"));
                assert!(
                    out == plain,
                    "size {size}, {compress}, piped {piped}: plaintext differs"
                );
            }
        }
    }
}

#[test]
fn every_cipher_and_compression() {
    let gpg = Gpg::new();
    // Compressible and incompressible parts.
    let mut plain = b"patient_id,age,diagnosis\n".repeat(3000);
    plain.extend_from_slice(&data(70_000, 2));
    for (cipher, expect) in [
        ("AES", SymmetricAlgorithm::Aes128),
        ("AES192", SymmetricAlgorithm::Aes192),
        ("AES256", SymmetricAlgorithm::Aes256),
    ] {
        for (compress, expect_c) in [
            ("none", None),
            ("zip", Some(Compression::Zip)),
            ("zlib", Some(Compression::Zlib)),
            ("bzip2", Some(Compression::Bzip2)),
        ] {
            let args = [
                FAST,
                &["--cipher-algo", cipher, "--compress-algo", compress],
            ]
            .concat();
            let file = gpg.encrypt(&plain, &args, true);
            let (out, summary) =
                decrypt(&file, PASSPHRASE).unwrap_or_else(|e| panic!("{cipher}/{compress}: {e}"));
            assert!(out == plain, "{cipher}/{compress}");
            assert_eq!(summary.cipher, expect, "{cipher}/{compress}");
            assert_eq!(summary.compression, expect_c, "{cipher}/{compress}");
        }
    }
}

#[test]
fn s2k_modes_and_digests() {
    let gpg = Gpg::new();
    let plain = data(10_000, 3);
    for args in [
        &["--s2k-mode", "0"][..],
        &["--s2k-mode", "1"],
        &["--s2k-mode", "1", "--s2k-digest-algo", "SHA256"],
        &[
            "--s2k-mode",
            "3",
            "--s2k-digest-algo",
            "SHA512",
            "--s2k-count",
            "65536",
        ],
        &[
            "--s2k-mode",
            "3",
            "--s2k-digest-algo",
            "SHA224",
            "--s2k-count",
            "1024",
        ],
        &[
            "--s2k-mode",
            "3",
            "--s2k-digest-algo",
            "SHA384",
            "--s2k-count",
            "100000",
        ],
        &[
            "--s2k-mode",
            "3",
            "--s2k-digest-algo",
            "SHA1",
            "--s2k-count",
            "65536",
            "--cipher-algo",
            "AES",
        ],
    ] {
        let file = gpg.encrypt(&plain, args, false);
        let (out, _) = decrypt(&file, PASSPHRASE).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(out == plain, "{args:?}");
    }
}

#[test]
fn ascii_armor() {
    let gpg = Gpg::new();
    for size in [0usize, 100, 100_000] {
        let plain = data(size, 4);
        let file = gpg.encrypt(&plain, &[FAST, &["--armor"]].concat(), false);
        assert!(file.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        let (out, summary) = decrypt(&file, PASSPHRASE).unwrap();
        assert!(out == plain);
        assert!(summary.armored);
        // A changed base64 character fails (CRC-24, and the MDC behind it).
        let text = String::from_utf8(file.clone()).unwrap();
        let body_line = text.lines().nth(3).unwrap();
        let mut changed = body_line.to_owned().into_bytes();
        changed[10] = if changed[10] == b'A' { b'B' } else { b'A' };
        let bad = text.replacen(body_line, std::str::from_utf8(&changed).unwrap(), 1);
        decrypt(bad.as_bytes(), PASSPHRASE).expect_err("modified armor must fail");
    }
}

#[test]
fn session_key_encrypted_with_the_passphrase() {
    // `gpg --symmetric --encrypt` writes a public-key session key packet and a symmetric-key one
    // whose session key is encrypted with the passphrase-derived key (the ESK path).
    let gpg = Gpg::new();
    let status = gpg
        .command()
        .args([
            "--passphrase",
            "",
            "--quick-generate-key",
            "import-test@example.invalid",
            "future-default",
            "default",
            "never",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "gpg --quick-generate-key failed");
    let plain = data(50_000, 5);
    let args = [
        FAST,
        &[
            "--encrypt",
            "--recipient",
            "import-test@example.invalid",
            "--trust-model",
            "always",
        ],
    ]
    .concat();
    let file = gpg.encrypt(&plain, &args, false);
    let (out, _) = decrypt(&file, PASSPHRASE).unwrap();
    assert!(out == plain);
    let err = decrypt(&file, "not it").unwrap_err();
    assert!(matches!(err, ImportError::WrongPassphrase { .. }), "{err}");
}

#[test]
fn wrong_passphrase() {
    let gpg = Gpg::new();
    let plain = data(1000, 6);
    let file = gpg.encrypt(&plain, FAST, false);
    let err = decrypt(&file, "wrong").unwrap_err();
    assert!(matches!(err, ImportError::WrongPassphrase { .. }), "{err}");
    assert!(err.to_string().starts_with("wrong passphrase"), "{err}");
    // The trailing newline of a passphrase file is not part of the passphrase.
    let err = decrypt(&file, &format!("{PASSPHRASE}\n")).unwrap_err();
    assert!(matches!(err, ImportError::WrongPassphrase { .. }), "{err}");
}

#[test]
fn every_flipped_byte_and_every_truncation_fails() {
    let gpg = Gpg::new();
    let plain = data(300, 7);
    for compress in ["none", "zip"] {
        let file = gpg.encrypt(
            &plain,
            &[FAST, &["--compress-algo", compress]].concat(),
            false,
        );
        gpg.assert_gpg_decrypts(&file, &plain);
        assert!(decrypt(&file, PASSPHRASE).unwrap().0 == plain);
        let limits = Limits {
            // A flipped S2K count byte must not make each case hash 65 MB.
            max_s2k_count: 1 << 20,
            ..Limits::default()
        };
        for i in 0..file.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut bad = file.clone();
                bad[i] ^= bit;
                let result = openpgp::decrypt(PASSPHRASE.as_bytes(), &bad[..], Vec::new(), &limits);
                assert!(
                    result.is_err(),
                    "{compress}: flipping bit {bit:#x} of byte {i} went unnoticed"
                );
            }
        }
        for len in 0..file.len() {
            let result = openpgp::decrypt(PASSPHRASE.as_bytes(), &file[..len], Vec::new(), &limits);
            assert!(
                result.is_err(),
                "{compress}: truncation to {len} bytes went unnoticed"
            );
        }
        // A flip deep inside the ciphertext is reported as a modification.
        let mut bad = file.clone();
        let at = file.len() - 30;
        bad[at] ^= 0x04;
        let err = decrypt(&bad, PASSPHRASE).unwrap_err();
        assert!(
            matches!(err, ImportError::Modified { .. }),
            "{compress}: {err}"
        );
    }
}

#[test]
fn unprotected_and_unsupported_files_are_refused() {
    let gpg = Gpg::new();
    let plain = data(1000, 8);
    // --rfc2440 writes a Symmetrically Encrypted Data packet (tag 9) without an MDC.
    let file = gpg.encrypt(
        &plain,
        &[FAST, &["--rfc2440", "--cipher-algo", "AES256"]].concat(),
        false,
    );
    let err = decrypt(&file, PASSPHRASE).unwrap_err();
    assert!(matches!(err, ImportError::Unprotected), "{err}");
    assert!(err.to_string().contains("no integrity protection"), "{err}");

    for (algo, name) in [
        ("CAST5", "CAST5"),
        ("TWOFISH", "Twofish"),
        ("CAMELLIA256", "Camellia-256"),
    ] {
        let file = gpg.encrypt(&plain, &[FAST, &["--cipher-algo", algo]].concat(), false);
        let err = decrypt(&file, PASSPHRASE).unwrap_err();
        assert!(
            matches!(err, ImportError::Unsupported { .. }),
            "{algo}: {err}"
        );
        assert!(err.to_string().contains(name), "{algo}: {err}");
    }
}

#[test]
fn output_limit_and_ratio_limit() {
    let gpg = Gpg::new();
    let plain = vec![0u8; 3 << 20];
    let file = gpg.encrypt(
        &plain,
        &[FAST, &["--compress-algo", "bzip2"]].concat(),
        false,
    );
    assert!(
        file.len() < 10_000,
        "zeros compress well: {} bytes",
        file.len()
    );
    let limits = Limits {
        max_output: 1 << 20,
        ..Limits::default()
    };
    let err = openpgp::decrypt(PASSPHRASE.as_bytes(), &file[..], Vec::new(), &limits).unwrap_err();
    assert!(matches!(err, ImportError::LimitExceeded { .. }), "{err}");
    // The default limits let it through.
    assert!(decrypt(&file, PASSPHRASE).unwrap().0 == plain);
}

#[test]
fn not_openpgp() {
    for input in [
        &b""[..],
        b"plain text\n",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n",
    ] {
        let err = decrypt(input, PASSPHRASE).unwrap_err();
        assert!(matches!(err, ImportError::NotOpenPgp { .. }), "{err}");
    }
}

/// Random multi-byte mutations of the fuzz seeds (real gpg files under the passphrase "fuzz"):
/// never a panic, never success unless the file is unchanged.
#[test]
fn random_mutations_of_the_fuzz_seeds() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/import_openpgp");
    let limits = Limits {
        max_output: 16 << 20,
        max_ratio: 1000,
        max_s2k_count: 1 << 16,
        max_depth: 8,
    };
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut count = 0;
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        let mut out = Vec::new();
        openpgp::decrypt(b"fuzz", &seed[..], &mut out, &limits).unwrap();
        for _ in 0..400 {
            let mut m = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % m.len() as u64) as usize;
                match next() % 4 {
                    0 => m[at] ^= 1 << (next() % 8),
                    1 => m[at] = next() as u8,
                    2 => {
                        m.insert(at, next() as u8);
                    }
                    _ => {
                        m.remove(at);
                    }
                }
                if m.is_empty() {
                    m.push(0);
                }
            }
            if m == seed {
                continue;
            }
            let result = openpgp::decrypt(b"fuzz", &m[..], Vec::new(), &limits);
            assert!(result.is_err(), "a mutated seed decrypted");
            count += 1;
        }
    }
    assert!(count > 1000);
}
