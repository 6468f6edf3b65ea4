//! The importers stream: 256 MiB made by the real tools is piped straight into the decryptors,
//! and this process's peak memory stays far below the input's size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use aws_lc_rs::digest;
use sealroom_envelope::import::fernet::{self, FernetKey};
use sealroom_envelope::import::{openpgp, Limits};

const SIZE: u64 = 256 << 20;
/// Peak resident memory allowed for the whole test process.
const MAX_RSS_KIB: u64 = 32 * 1024;

/// A writer that hashes and counts, keeping nothing.
struct HashSink {
    ctx: digest::Context,
    len: u64,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ctx.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The plaintext: a repeating 1 MiB pattern, `SIZE` bytes.
fn pattern() -> Vec<u8> {
    (0..(1usize << 20)).map(|i| (i % 251) as u8).collect()
}

fn expected_sha256() -> Vec<u8> {
    let chunk = pattern();
    let mut ctx = digest::Context::new(&digest::SHA256);
    for _ in 0..(SIZE >> 20) {
        ctx.update(&chunk);
    }
    ctx.finish().as_ref().to_vec()
}

#[test]
fn openpgp_256_mib_from_a_pipe_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let pass = dir.path().join("pw");
    std::fs::write(&pass, "memory test\n").unwrap();
    let mut child = Command::new("gpg")
        .env("GNUPGHOME", &home)
        .args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--s2k-count",
            "65536",
        ])
        .args([
            "--cipher-algo",
            "AES256",
            "--compress-algo",
            "none",
            "--symmetric",
        ])
        .arg("--passphrase-file")
        .arg(&pass)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gpg runs");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = pattern();
        for _ in 0..(SIZE >> 20) {
            stdin.write_all(&chunk).unwrap();
        }
    });
    let stdout = child.stdout.take().unwrap();
    let mut sink = HashSink {
        ctx: digest::Context::new(&digest::SHA256),
        len: 0,
    };
    let summary = openpgp::decrypt(b"memory test", stdout, &mut sink, &Limits::default()).unwrap();
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "gpg-agent"])
        .status();
    assert_eq!(sink.len, SIZE);
    assert_eq!(summary.plaintext_len, SIZE);
    assert_eq!(sink.ctx.finish().as_ref(), &expected_sha256()[..]);
    let peak = peak_rss_kib();
    eprintln!("peak RSS of the test process: {peak} KiB");
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
}

/// Writes a Fernet token to stdout as a stream, with `cryptography`'s AES-CBC, PKCS7 and HMAC
/// (`Fernet.encrypt` itself needs the whole plaintext and its token in memory at once).
const FERNET_STREAM: &str = r#"
import sys, os, time, struct, base64
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.fernet import Fernet
key = base64.urlsafe_b64decode(sys.argv[1])
size = int(sys.argv[2])
iv = os.urandom(16)
mac = hmac.HMAC(key[:16], hashes.SHA256())
enc = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).encryptor()
pad = padding.PKCS7(128).padder()
out = sys.stdout.buffer
pending = b""
def emit(b, authenticate=True):
    global pending
    if authenticate:
        mac.update(b)
    pending += b
    n = len(pending) // 3 * 3
    out.write(base64.urlsafe_b64encode(pending[:n]))
    pending = pending[n:]
emit(b"\x80" + struct.pack(">Q", int(time.time())) + iv)
chunk = bytes(i % 251 for i in range(1 << 20))
for _ in range(size >> 20):
    emit(enc.update(pad.update(chunk)))
emit(enc.update(pad.finalize()) + enc.finalize())
emit(mac.finalize(), authenticate=False)
out.write(base64.urlsafe_b64encode(pending))
"#;

#[test]
fn fernet_256_mib_from_a_pipe_in_bounded_memory() {
    let raw: [u8; 32] = std::array::from_fn(|i| (i * 7 + 1) as u8);
    let key_text = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, raw);
    let mut child = Command::new("python3")
        .args(["-c", FERNET_STREAM, &key_text, &SIZE.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let key = FernetKey::parse(key_text.as_bytes()).unwrap();
    let mut sink = HashSink {
        ctx: digest::Context::new(&digest::SHA256),
        len: 0,
    };
    let summary = fernet::decrypt(&key, stdout, &mut sink).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(summary.plaintext_len, SIZE);
    assert_eq!(sink.ctx.finish().as_ref(), &expected_sha256()[..]);
    let peak = peak_rss_kib();
    eprintln!("peak RSS of the test process: {peak} KiB");
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");

    // The same script's output for a small size is accepted by `Fernet.decrypt` itself.
    let check = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "python3 -c '{}' {key_text} 1048576 | python3 -c 'import sys; from cryptography.fernet import Fernet; print(len(Fernet(sys.argv[1]).decrypt(sys.stdin.buffer.read())))' {key_text}",
            FERNET_STREAM.replace('\'', "'\\''")
        ))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "1048576");
}
