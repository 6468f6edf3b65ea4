//! `sealroom import fernet|gpg` end to end, with inputs made by the real tools (Python
//! `cryptography.fernet`, `gpg --symmetric`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealroom_envelope::{stream, Cek};

const BIN: &str = env!("CARGO_BIN_EXE_sealroom");
/// `exit::IMPORT`: a peer's file failed to import.
const EXIT_IMPORT: i32 = 17;
/// `exit::USAGE`.
const EXIT_USAGE: i32 = 2;

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

fn sealroom(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("sealroom runs")
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The directory holds exactly `names` (no temporary files left behind).
fn assert_only(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want);
}

fn python_fernet(dir: &Path, plain: &[u8]) -> (PathBuf, PathBuf) {
    let plain_path = dir.join("plain.in");
    std::fs::write(&plain_path, plain).unwrap();
    let key = dir.join("fernet.key");
    let token = dir.join("data.token");
    let script = "import sys\nfrom cryptography.fernet import Fernet\nk = Fernet.generate_key()\nopen(sys.argv[1], 'wb').write(k + b'\\n')\nopen(sys.argv[3], 'wb').write(Fernet(k).encrypt(open(sys.argv[2], 'rb').read()))\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&key)
        .arg(&plain_path)
        .arg(&token)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(&plain_path).unwrap();
    (key, token)
}

#[test]
fn fernet_to_plaintext_and_to_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = data(300_000, 1);
    let (key, token) = python_fernet(d, &plain);
    let out = d.join("plain.out");

    let run = sealroom(&[
        os("import"),
        os("fernet"),
        os("--key"),
        key.as_os_str(),
        token.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read(&out).unwrap() == plain);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // OUT exists: refused without --force, left as it was.
    std::fs::write(&out, b"keep me").unwrap();
    let run = sealroom(&[
        os("import"),
        os("fernet"),
        os("--key"),
        key.as_os_str(),
        token.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(EXIT_USAGE), "{}", stderr(&run));
    assert!(stderr(&run).contains("--force"), "{}", stderr(&run));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let run = sealroom(&[
        os("import"),
        os("fernet"),
        os("--force"),
        os("--key"),
        key.as_os_str(),
        token.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read(&out).unwrap() == plain);

    // With --cek the output is a sealed file that unseals to the plaintext.
    let cek = Cek::generate().unwrap();
    let cek_path = d.join("cek.key");
    cek.write_new_file(&cek_path).unwrap();
    let sealed = d.join("data.sealed");
    let run = sealroom(&[
        os("import"),
        os("fernet"),
        os("--key"),
        key.as_os_str(),
        token.as_os_str(),
        os("-o"),
        sealed.as_os_str(),
        os("--cek"),
        cek_path.as_os_str(),
        os("--json"),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["format"], "fernet");
    assert_eq!(json["plaintext_bytes"], plain.len() as u64);
    assert_eq!(json["sealed"], true);
    let sealed_bytes = std::fs::read(&sealed).unwrap();
    assert!(!sealed_bytes.windows(64).any(|w| w == &plain[1000..1064]));
    let (opened, _) = stream::unseal(&mut &sealed_bytes[..], Vec::new(), &cek, &()).unwrap();
    assert!(opened == plain);
    assert_only(
        d,
        &[
            "fernet.key",
            "data.token",
            "plain.out",
            "cek.key",
            "data.sealed",
        ],
    );
}

#[test]
fn fernet_failures_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = data(100_000, 2);
    let (key, token) = python_fernet(d, &plain);
    let other = d.join("other.key");
    std::fs::write(&other, "J0j3dbo1pS7kK5cW0Rrl3cR7sH3zj2tXBfS6b0R4Rgo=\n").unwrap();
    let out = d.join("out");

    let run = sealroom(&[
        os("import"),
        os("fernet"),
        os("--key"),
        other.as_os_str(),
        token.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(EXIT_IMPORT), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("authentication failed"),
        "{}",
        stderr(&run)
    );
    assert_only(d, &["fernet.key", "data.token", "other.key"]);

    // A flipped character in the middle, and a truncated token.
    let text = std::fs::read(&token).unwrap();
    let mut flipped = text.clone();
    let mid = text.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let bad = d.join("bad.token");
    for bytes in [&flipped[..], &text[..text.len() - 10]] {
        std::fs::write(&bad, bytes).unwrap();
        let run = sealroom(&[
            os("import"),
            os("fernet"),
            os("--key"),
            key.as_os_str(),
            bad.as_os_str(),
            os("-o"),
            out.as_os_str(),
        ]);
        assert_eq!(run.status.code(), Some(EXIT_IMPORT), "{}", stderr(&run));
        assert_only(d, &["fernet.key", "data.token", "other.key", "bad.token"]);
    }

    // A key file that is not a Fernet key.
    let run = sealroom(&[
        os("import"),
        os("fernet"),
        os("--key"),
        token.as_os_str(),
        token.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("invalid Fernet key"),
        "{}",
        stderr(&run)
    );
    assert!(!out.exists());
}

struct Gpg {
    home: PathBuf,
    passphrase_file: PathBuf,
}

impl Gpg {
    fn new(dir: &Path, passphrase: &str) -> Gpg {
        let home = dir.join("gnupg");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let passphrase_file = dir.join("passphrase");
        std::fs::write(&passphrase_file, format!("{passphrase}\n")).unwrap();
        Gpg {
            home,
            passphrase_file,
        }
    }

    fn encrypt(&self, input: &Path, output: &Path, args: &[&str]) {
        let status = Command::new("gpg")
            .env("GNUPGHOME", &self.home)
            .args([
                "--batch",
                "--yes",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--s2k-count",
                "65536",
            ])
            .arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .args(args)
            .arg("--symmetric")
            .arg("--output")
            .arg(output)
            .arg(input)
            .status()
            .unwrap();
        assert!(status.success());
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

#[test]
fn gpg_to_plaintext_and_to_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpg = Gpg::new(d, "a passphrase with spaces");
    let plain = data(1_500_000, 3);
    let input = d.join("model.bin");
    std::fs::write(&input, &plain).unwrap();
    let out = d.join("model.out");
    for args in [
        &["--cipher-algo", "AES256"][..],
        &["--cipher-algo", "AES256", "--compress-algo", "none"],
        &["--armor"],
    ] {
        let enc = d.join("model.gpg");
        gpg.encrypt(&input, &enc, args);
        let run = sealroom(&[
            os("import"),
            os("gpg"),
            os("--passphrase-file"),
            gpg.passphrase_file.as_os_str(),
            enc.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("--force"),
        ]);
        assert!(run.status.success(), "{args:?}: {}", stderr(&run));
        assert!(std::fs::read(&out).unwrap() == plain, "{args:?}");
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let cek = Cek::generate().unwrap();
    let cek_path = d.join("cek.key");
    cek.write_new_file(&cek_path).unwrap();
    let enc = d.join("model.gpg");
    let sealed = d.join("model.sealed");
    let run = sealroom(&[
        os("import"),
        os("gpg"),
        os("--passphrase-file"),
        gpg.passphrase_file.as_os_str(),
        enc.as_os_str(),
        os("-o"),
        sealed.as_os_str(),
        os("--cek"),
        cek_path.as_os_str(),
        os("--json"),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["format"], "openpgp");
    assert_eq!(json["armored"], true);
    let sealed_bytes = std::fs::read(&sealed).unwrap();
    let (opened, _) = stream::unseal(&mut &sealed_bytes[..], Vec::new(), &cek, &()).unwrap();
    assert!(opened == plain);
}

#[test]
fn gpg_failures_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpg = Gpg::new(d, "right");
    let plain = data(200_000, 4);
    let input = d.join("p.bin");
    std::fs::write(&input, &plain).unwrap();
    let enc = d.join("p.gpg");
    gpg.encrypt(&input, &enc, &["--compress-algo", "none"]);
    let wrong = d.join("wrong");
    std::fs::write(&wrong, "wrong\n").unwrap();
    let cek_path = d.join("cek.key");
    Cek::generate().unwrap().write_new_file(&cek_path).unwrap();
    let out = d.join("out");
    let base = ["gnupg", "passphrase", "p.bin", "p.gpg", "wrong", "cek.key"];

    for cek in [false, true] {
        let mut args = vec![
            os("import"),
            os("gpg"),
            os("--passphrase-file"),
            wrong.as_os_str(),
            enc.as_os_str(),
            os("-o"),
            out.as_os_str(),
        ];
        if cek {
            args.extend([os("--cek"), cek_path.as_os_str()]);
        }
        let run = sealroom(&args);
        assert_eq!(run.status.code(), Some(EXIT_IMPORT), "{}", stderr(&run));
        assert!(
            stderr(&run).contains("wrong passphrase"),
            "{}",
            stderr(&run)
        );
        assert_only(d, &base);
    }

    let bytes = std::fs::read(&enc).unwrap();
    let bad = d.join("bad.gpg");
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 100] ^= 0x20;
    for (what, content) in [
        ("flipped", flipped),
        ("truncated", bytes[..bytes.len() - 1].to_vec()),
    ] {
        std::fs::write(&bad, &content).unwrap();
        for cek in [false, true] {
            let mut args = vec![
                os("import"),
                os("gpg"),
                os("--passphrase-file"),
                gpg.passphrase_file.as_os_str(),
                bad.as_os_str(),
                os("-o"),
                out.as_os_str(),
            ];
            if cek {
                args.extend([os("--cek"), cek_path.as_os_str()]);
            }
            let run = sealroom(&args);
            assert_eq!(
                run.status.code(),
                Some(EXIT_IMPORT),
                "{what}: {}",
                stderr(&run)
            );
            assert!(
                stderr(&run).contains("truncated"),
                "{what}: {}",
                stderr(&run)
            );
            let mut names = base.to_vec();
            names.push("bad.gpg");
            assert_only(d, &names);
        }
    }
}

#[test]
fn help_explains_the_subcommands() {
    let run = sealroom(&[os("import"), os("--help")]);
    assert!(run.status.success());
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("fernet") && text.contains("gpg"), "{text}");
    let run = sealroom(&[os("import"), os("gpg"), os("--help")]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("--passphrase-file") && text.contains("--cek") && text.contains("--force"),
        "{text}"
    );
}

#[test]
fn passphrase_file_is_read_as_gpg_reads_it() {
    // gpg takes the first line up to '\n' and keeps a '\r' before it: a CRLF passphrase file
    // that worked with gpg works here too.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpg = Gpg::new(d, "crlf\r");
    let plain = data(5000, 9);
    let input = d.join("p.bin");
    std::fs::write(&input, &plain).unwrap();
    let enc = d.join("p.gpg");
    gpg.encrypt(&input, &enc, &[]);
    let out = d.join("out");
    let run = sealroom(&[
        os("import"),
        os("gpg"),
        os("--passphrase-file"),
        gpg.passphrase_file.as_os_str(),
        enc.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read(&out).unwrap() == plain);
}
