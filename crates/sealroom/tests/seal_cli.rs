//! The key and encryption commands as a user runs them: interoperability with OpenSSL, exit
//! codes, messages, and no output left behind by any failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WRONG_KEY: i32 = 10;
const TAMPERED: i32 = 11;
const TRUNCATED: i32 = 12;
const UNKNOWN_VERSION: i32 = 13;
const NOT_SEALED: i32 = 14;
const BAD_KEY: i32 = 15;

fn sealroom(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("sealroom runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = sealroom(dir, args);
    assert!(
        out.status.success(),
        "sealroom {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(dir: &Path, args: &[&str], code: i32, message: &str) {
    let out = sealroom(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "sealroom {args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "sealroom {args:?}: expected {message:?} in {stderr}"
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// No file in `dir` besides `expected` (temporary files included).
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "unexpected files in {}", dir.display());
}

fn random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x1234_5678_9abc_def1 ^ len as u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(path, data).unwrap();
}

#[test]
fn wcek_interoperates_with_openssl_both_ways() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(
        d,
        &["keys", "kek", "--private", "kek.pem", "--public", "kek.der"],
    );
    ok(d, &["keys", "cek", "-o", "cek.key"]);
    assert_eq!(fs::read(d.join("cek.key")).unwrap().len(), 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(d.join("cek.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(d.join("kek.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Ours -> OpenSSL.
    let out = ok(
        d,
        &[
            "keys", "wrap", "--kek", "kek.der", "--cek", "cek.key", "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let wcek = PathBuf::from(v["path"].as_str().unwrap());
    let name = wcek.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("wcek_") && name.ends_with(".key.bkenc"),
        "{name}"
    );
    openssl(
        d,
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            "kek.pem",
            "-in",
            &name,
            "-out",
            "from-openssl.key",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
    assert_eq!(
        fs::read(d.join("from-openssl.key")).unwrap(),
        fs::read(d.join("cek.key")).unwrap()
    );

    // OpenSSL -> ours.
    openssl(
        d,
        &[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            "kek.der",
            "-out",
            "kek.pub.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "kek.pub.pem",
            "-in",
            "cek.key",
            "-out",
            "openssl.bkenc",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
    ok(
        d,
        &[
            "keys",
            "unwrap",
            "--private",
            "kek.pem",
            "openssl.bkenc",
            "-o",
            "unwrapped.key",
        ],
    );
    assert_eq!(
        fs::read(d.join("unwrapped.key")).unwrap(),
        fs::read(d.join("cek.key")).unwrap()
    );

    // A key made by OpenSSL itself works too (PKCS#8 PEM private, PEM public).
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
            "o.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkey", "-in", "o.pem", "-pubout", "-outform", "DER", "-out", "o.der",
        ],
    );
    ok(
        d,
        &[
            "keys", "wrap", "--kek", "o.der", "--cek", "cek.key", "-o", "o.bkenc",
        ],
    );
    ok(
        d,
        &[
            "keys",
            "unwrap",
            "--private",
            "o.pem",
            "o.bkenc",
            "-o",
            "o-unwrapped.key",
        ],
    );
    assert_eq!(
        fs::read(d.join("o-unwrapped.key")).unwrap(),
        fs::read(d.join("cek.key")).unwrap()
    );

    // OAEP with SHA-1 (OpenSSL's default) is refused, and names the problem.
    openssl(
        d,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "kek.pub.pem",
            "-in",
            "cek.key",
            "-out",
            "sha1.bkenc",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
        ],
    );
    fails(
        d,
        &[
            "keys",
            "unwrap",
            "--private",
            "kek.pem",
            "sha1.bkenc",
            "-o",
            "no.key",
        ],
        BAD_KEY,
        "does not unwrap",
    );
    assert!(!d.join("no.key").exists());
}

#[test]
fn file_round_trip_and_every_failure_leaves_no_output() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keys", "cek", "-o", "a.key"]);
    ok(d, &["keys", "cek", "-o", "b.key"]);
    random_file(&d.join("data.bin"), 3 * 65536 + 1000);
    ok(
        d,
        &["encrypt", "--cek", "a.key", "data.bin", "-o", "data.sealed"],
    );
    ok(
        d,
        &["decrypt", "--cek", "a.key", "data.sealed", "-o", "data.out"],
    );
    assert_eq!(
        fs::read(d.join("data.bin")).unwrap(),
        fs::read(d.join("data.out")).unwrap()
    );
    fs::remove_file(d.join("data.out")).unwrap();
    let base = ["a.key", "b.key", "data.bin", "data.sealed"];

    // Wrong key.
    fails(
        d,
        &["decrypt", "--cek", "b.key", "data.sealed", "-o", "out"],
        WRONG_KEY,
        "sealed with key id",
    );
    assert_only(d, &base);

    let sealed = fs::read(d.join("data.sealed")).unwrap();
    let check = |bytes: &[u8], code: i32, message: &str| {
        fs::write(d.join("bad.sealed"), bytes).unwrap();
        fails(
            d,
            &["decrypt", "--cek", "a.key", "bad.sealed", "-o", "out"],
            code,
            message,
        );
        let mut with_bad = base.to_vec();
        with_bad.push("bad.sealed");
        assert_only(d, &with_bad);
    };
    // A flipped byte in the last segment (the first ones are written before it is read).
    let mut bad = sealed.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    check(&bad, TAMPERED, "segment 3 failed authentication");
    let mut bad = sealed.clone();
    bad[100] ^= 1;
    check(&bad, TAMPERED, "header");
    let mut bad = sealed.clone();
    bad[8] = 9;
    check(&bad, UNKNOWN_VERSION, "version 9");
    check(&sealed[..sealed.len() - 1], TRUNCATED, "truncated");
    check(&sealed[..50], TRUNCATED, "truncated");
    check(b"plain text", NOT_SEALED, "not a sealed file");

    // Key files.
    fs::write(d.join("short.key"), [1u8; 20]).unwrap();
    fails(
        d,
        &["decrypt", "--cek", "short.key", "data.sealed", "-o", "out"],
        BAD_KEY,
        "short.key",
    );
    fails(
        d,
        &[
            "decrypt",
            "--cek",
            "missing.key",
            "data.sealed",
            "-o",
            "out",
        ],
        BAD_KEY,
        "missing.key",
    );
    assert!(!d.join("out").exists());

    // Refuses to overwrite unless --force.
    fails(
        d,
        &["encrypt", "--cek", "a.key", "data.bin", "-o", "data.sealed"],
        2,
        "already exists",
    );
    ok(
        d,
        &[
            "encrypt",
            "--cek",
            "a.key",
            "data.bin",
            "-o",
            "data.sealed",
            "--force",
        ],
    );
}

#[test]
fn directory_round_trip_and_tree_tampering() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keys", "cek", "-o", "k.key"]);
    fs::create_dir_all(d.join("in/sub/deeper")).unwrap();
    fs::create_dir_all(d.join("in/empty")).unwrap();
    random_file(&d.join("in/a.csv"), 100);
    random_file(&d.join("in/sub/b.bin"), 70_000);
    random_file(&d.join("in/sub/deeper/c"), 0);
    let out = ok(
        d,
        &["encrypt", "--cek", "k.key", "in", "-o", "sealed", "--json"],
    );
    assert!(out.contains("\"files\":3"), "{out}");
    assert!(d.join("sealed/.sealroom-manifest").is_file());
    assert!(d.join("sealed/empty").is_dir());
    ok(d, &["decrypt", "--cek", "k.key", "sealed", "-o", "plain"]);
    for f in ["a.csv", "sub/b.bin", "sub/deeper/c"] {
        assert_eq!(
            fs::read(d.join("in").join(f)).unwrap(),
            fs::read(d.join("plain").join(f)).unwrap()
        );
    }
    assert!(d.join("plain/empty").is_dir());

    // Swap two sealed files (both valid under the key): caught by the manifest.
    fs::rename(d.join("sealed/a.csv"), d.join("a.tmp")).unwrap();
    fs::copy(d.join("sealed/sub/deeper/c"), d.join("sealed/a.csv")).unwrap();
    fails(
        d,
        &["decrypt", "--cek", "k.key", "sealed", "-o", "p2"],
        TAMPERED,
        "a.csv does not match the manifest",
    );
    assert!(!d.join("p2").exists());
    fs::rename(d.join("a.tmp"), d.join("sealed/a.csv")).unwrap();

    // An extra file, and a missing one.
    fs::copy(d.join("sealed/a.csv"), d.join("sealed/extra")).unwrap();
    fails(
        d,
        &["decrypt", "--cek", "k.key", "sealed", "-o", "p2"],
        TAMPERED,
        "extra is not listed",
    );
    fs::remove_file(d.join("sealed/extra")).unwrap();
    fs::rename(d.join("sealed/sub/b.bin"), d.join("b.tmp")).unwrap();
    fails(
        d,
        &["decrypt", "--cek", "k.key", "sealed", "-o", "p2"],
        TAMPERED,
        "sub/b.bin is listed in the manifest but missing",
    );
    fs::rename(d.join("b.tmp"), d.join("sealed/sub/b.bin")).unwrap();

    // A modified byte inside a file of the tree names the file.
    let mut b = fs::read(d.join("sealed/sub/b.bin")).unwrap();
    b[200] ^= 4;
    fs::write(d.join("sealed/sub/b.bin"), b).unwrap();
    fails(
        d,
        &["decrypt", "--cek", "k.key", "sealed", "-o", "p2"],
        TAMPERED,
        "sub/b.bin: segment 0",
    );
    assert!(!d.join("p2").exists());
    let leftovers: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("sealroom-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
