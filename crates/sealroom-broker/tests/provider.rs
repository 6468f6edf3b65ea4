//! One key-provider test suite, run against every provider: the file provider, and the PKCS#11
//! provider on SoftHSM2 (`scripts/setup/50-softhsm.sh` makes the token and writes its settings
//! to `target/test-env.sh`). Under `CI=true` a missing SoftHSM2 setup fails the PKCS#11 tests;
//! elsewhere they are skipped with a loud message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealroom_broker::file::{FileKeyProvider, MasterKey};
use sealroom_broker::{
    BrokerError, ErrorClass, KeyLabel, KeyProvider, ProviderKind, SealedPrivateKey,
};
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::recipient::{EnclaveKeyPair, RecipientError, ReleaseInfo};
use sealroom_envelope::Cek;

fn label() -> KeyLabel {
    KeyLabel::for_project_role("0190-test-project", "ds").unwrap()
}

fn file_provider() -> Arc<dyn KeyProvider> {
    let dir = tempfile::tempdir().unwrap();
    Arc::new(FileKeyProvider::new(
        MasterKey::load_or_create(dir.path()).unwrap(),
    ))
}

#[cfg(feature = "pkcs11")]
mod hsm {
    use super::*;
    use sealroom_broker::pkcs11::{Pkcs11KeyProvider, Pkcs11Settings};

    pub const WRAP_LABEL: &str = "sealroom-test-wrap";

    pub struct Env {
        pub module: String,
        pub token: String,
        pub pin: String,
    }

    /// The SoftHSM2 settings, or `None` (after saying so loudly) outside CI.
    pub fn env() -> Option<Env> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (
            get("SOFTHSM2_CONF"),
            get("SEALROOM_TEST_PKCS11_MODULE"),
            get("SEALROOM_TEST_PKCS11_TOKEN"),
            get("SEALROOM_TEST_PKCS11_PIN"),
        ) {
            (Some(_), Some(module), Some(token), Some(pin)) => Some(Env { module, token, pin }),
            _ => {
                let msg = "SoftHSM2 is not set up: run `bash scripts/setup/50-softhsm.sh && \
                           source target/test-env.sh` (SOFTHSM2_CONF, SEALROOM_TEST_PKCS11_MODULE, \
                           SEALROOM_TEST_PKCS11_TOKEN, SEALROOM_TEST_PKCS11_PIN)";
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{msg}");
                }
                eprintln!("\n!!! SKIPPING PKCS#11 TEST: {msg}\n");
                None
            }
        }
    }

    pub fn open_with(env: &Env, wrap_label: &str) -> Pkcs11KeyProvider {
        Pkcs11KeyProvider::open(Pkcs11Settings {
            module: env.module.clone().into(),
            token_label: env.token.clone(),
            pin: env.pin.clone().into(),
            wrapping_key_label: wrap_label.to_string(),
        })
        .unwrap()
    }

    pub fn provider() -> Option<Arc<dyn KeyProvider>> {
        let env = env()?;
        Some(Arc::new(open_with(&env, WRAP_LABEL)))
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod file_provider {
            $( #[test] fn $name() { super::$name(&super::file_provider()); } )*
        }
        #[cfg(feature = "pkcs11")]
        mod pkcs11_provider {
            $( #[test] fn $name() {
                if let Some(p) = super::hsm::provider() { super::$name(&p); }
            } )*
        }
    };
}

suite!(
    generates_rsa4096_kek_pairs,
    accepts_a_wcek_and_reports_only_facts,
    refuses_wceks_that_do_not_unwrap,
    releases_a_cek_sealed_to_the_enclave,
    refuses_damaged_blobs,
    refuses_a_blob_of_another_label,
    is_shared_across_threads,
);

fn generates_rsa4096_kek_pairs(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    assert_eq!(KekPublic::from_der(&kek.public_der).unwrap().bits(), 4096);
    let info = kek.sealed_private.describe().unwrap();
    assert_eq!(info.provider, p.kind());
    assert_eq!(info.label, label().as_str());
    assert!(!kek.key_ref.is_empty());
    // The private key is not in the blob in the clear: the PKCS#8 RSA OID prefix is absent and
    // two keys for the same label differ.
    let other = p.generate_kek(&label()).unwrap();
    assert_ne!(other.public_der, kek.public_der);
    assert_ne!(
        other.sealed_private.as_bytes(),
        kek.sealed_private.as_bytes()
    );
    let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    assert!(!kek
        .sealed_private
        .as_bytes()
        .windows(rsa_oid.len())
        .any(|w| w == rsa_oid));
}

fn accepts_a_wcek_and_reports_only_facts(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    let check = p.check_wcek(&kek.sealed_private, &label(), &wcek).unwrap();
    assert_eq!(check.cek_key_id, cek.key_id());
    let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &wcek);
    assert_eq!(check.fingerprint(), hex::encode(want.as_ref()));
    // The stored bytes survive a trip through the store.
    let stored = SealedPrivateKey::from_bytes(kek.sealed_private.clone().into_bytes());
    assert_eq!(
        p.check_wcek(&stored, &label(), &wcek).unwrap().cek_key_id,
        cek.key_id()
    );
}

fn refuses_wceks_that_do_not_unwrap(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    let other = p.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wrapped_to_other = KekPublic::from_der(&other.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    let mut modified = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    modified[100] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrapped to another KEK", wrapped_to_other),
        ("modified", modified.clone()),
        ("truncated", modified[..511].to_vec()),
        ("empty", Vec::new()),
        ("huge", vec![0u8; 100_000]),
    ];
    for (what, wcek) in cases {
        let err = p
            .check_wcek(&kek.sealed_private, &label(), &wcek)
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::WcekDoesNotUnwrap { .. }),
            "{what}: {err}"
        );
        assert_eq!(err.class(), ErrorClass::BadWcek);
        assert!(err.to_string().contains("does not unwrap"), "{what}: {err}");
        let enclave = EnclaveKeyPair::generate().unwrap();
        let err = p
            .release(
                &kek.sealed_private,
                &label(),
                &wcek,
                enclave.public_key(),
                b"i",
            )
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::WcekDoesNotUnwrap { .. }),
            "{what}: {err}"
        );
    }
}

fn releases_a_cek_sealed_to_the_enclave(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    let enclave = EnclaveKeyPair::generate().unwrap();
    let info = ReleaseInfo::new(
        "0190-test-project",
        "run-1",
        "ds",
        &cek.key_id().to_string(),
    )
    .to_bytes();
    let sealed = p
        .release(
            &kek.sealed_private,
            &label(),
            &wcek,
            enclave.public_key(),
            &info,
        )
        .unwrap();
    assert_eq!(sealed.info, info);
    assert_eq!(enclave.open(&sealed, &info).unwrap().expose(), cek.expose());
    // Only that enclave key opens it.
    let other = EnclaveKeyPair::generate().unwrap();
    assert!(matches!(
        other.open(&sealed, &info).unwrap_err(),
        RecipientError::OpenFailed
    ));
    // A low-order "public key" is refused as a recipient error.
    let zero = sealroom_envelope::recipient::EnclavePublicKey::from_slice(&[0u8; 32]).unwrap();
    let err = p
        .release(&kek.sealed_private, &label(), &wcek, &zero, &info)
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRecipient, "{err}");
}

fn refuses_damaged_blobs(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    let good = kek.sealed_private.as_bytes().to_vec();
    let len = good.len();
    let label_at = good
        .windows(label().as_str().len())
        .position(|w| w == label().as_str().as_bytes())
        .unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [len - 1, len - 20, len / 2, len - 300] {
        let mut b = good.clone();
        b[at] ^= 0x40;
        cases.push((format!("payload byte {at} flipped"), b));
    }
    let mut b = good.clone();
    b[label_at] ^= 0x01; // 'p' -> 'q': still a valid label, but not the one sealed
    cases.push(("label in the header changed".into(), b));
    cases.push(("truncated".into(), good[..len - 1].to_vec()));
    cases.push(("extended".into(), [good.clone(), vec![0]].concat()));
    cases.push(("empty".into(), Vec::new()));
    cases.push(("not a blob".into(), b"-----BEGIN PRIVATE KEY-----".to_vec()));
    for (what, bytes) in cases {
        let err = p
            .check_wcek(&SealedPrivateKey::from_bytes(bytes), &label(), &wcek)
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::DamagedKeyBlob { .. }),
            "{what}: {err}"
        );
        assert_eq!(err.class(), ErrorClass::BadKeyBlob, "{what}");
    }
}

fn refuses_a_blob_of_another_label(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    let ao = KeyLabel::for_project_role("0190-test-project", "ao").unwrap();
    let err = p.check_wcek(&kek.sealed_private, &ao, &wcek).unwrap_err();
    assert!(matches!(err, BrokerError::LabelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("role ds"), "{err}");
}

fn is_shared_across_threads(p: &Arc<dyn KeyProvider>) {
    let kek = p.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let p = Arc::clone(p);
            let (kek, wcek, cek) = (&kek, &wcek, &cek);
            s.spawn(move || {
                for _ in 0..3 {
                    let check = p.check_wcek(&kek.sealed_private, &label(), wcek).unwrap();
                    assert_eq!(check.cek_key_id, cek.key_id());
                }
            });
        }
    });
}

// ---- file provider only ----------------------------------------------------------------------

#[test]
fn file_master_key_is_created_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p1 = FileKeyProvider::new(MasterKey::load_or_create(dir.path()).unwrap());
    let path = dir.path().join("master.key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let kek = p1.generate_kek(&label()).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();

    // A restarted server (same data dir) opens the blobs it made.
    let p2 = FileKeyProvider::new(MasterKey::load_or_create(dir.path()).unwrap());
    assert_eq!(p2.master_key_id(), p1.master_key_id());
    assert_eq!(
        p2.check_wcek(&kek.sealed_private, &label(), &wcek)
            .unwrap()
            .cek_key_id,
        cek.key_id()
    );

    // The same key through the environment-variable form (base64 text of the file).
    let text = std::fs::read_to_string(&path).unwrap();
    let p3 = FileKeyProvider::new(MasterKey::from_base64(&text, "test").unwrap());
    assert_eq!(p3.master_key_id(), p1.master_key_id());

    // Group- or world-readable: refused, with the fix in the message.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = MasterKey::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, BrokerError::MasterKey { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
    assert!(MasterKey::load_or_create(dir.path()).is_err());
}

#[test]
fn file_master_key_creation_tolerates_a_race() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    MasterKey::load_or_create(dir.path())
                        .unwrap()
                        .id()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    // Only the key file is left behind, no temporary files.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("master.key")]);
}

#[test]
fn file_bad_master_keys_are_refused() {
    for text in ["", "not base64!", "AAAA", &"A".repeat(100)] {
        let err = MasterKey::from_base64(text, "$SEALROOM_MASTER_KEY").unwrap_err();
        assert!(
            matches!(err, BrokerError::MasterKey { .. }),
            "{text:?}: {err}"
        );
        assert!(err.to_string().contains("SEALROOM_MASTER_KEY"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("master.key")).unwrap();
    let err = MasterKey::load_or_create(dir.path()).unwrap_err();
    assert!(err.to_string().contains("regular file"), "{err}");
}

#[test]
fn file_blob_under_another_master_key_is_named_as_such() {
    let p1 = file_provider();
    let p2 = file_provider();
    let kek = p1.generate_kek(&label()).unwrap();
    let err = p2
        .check_wcek(&kek.sealed_private, &label(), &[0u8; 512])
        .unwrap_err();
    assert!(matches!(err, BrokerError::WrongMasterKey { .. }), "{err}");
    assert!(err.to_string().contains("another master key"), "{err}");
    assert_eq!(err.class(), ErrorClass::BadKeyBlob);
}

#[test]
fn factory_opens_the_file_provider_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"kind": "file", "data_dir": dir.path()});
    let config: sealroom_broker::KeyProviderConfig = serde_json::from_value(json).unwrap();
    // Only when the environment does not override the master key.
    if std::env::var_os("SEALROOM_MASTER_KEY").is_none() {
        let p = sealroom_broker::open_provider(&config).unwrap();
        assert_eq!(p.kind(), ProviderKind::File);
        assert!(dir.path().join("master.key").exists());
    }
    let bad = serde_json::json!({"kind": "vault", "data_dir": "/x"});
    assert!(serde_json::from_value::<sealroom_broker::KeyProviderConfig>(bad).is_err());
    let unknown = serde_json::json!({"kind": "file", "data_dir": "/x", "extra": 1});
    assert!(serde_json::from_value::<sealroom_broker::KeyProviderConfig>(unknown).is_err());
}

// ---- PKCS#11 provider only -------------------------------------------------------------------

#[cfg(feature = "pkcs11")]
mod pkcs11_only {
    use super::hsm;
    use super::*;
    use sealroom_broker::pkcs11::{Pkcs11KeyProvider, Pkcs11Settings};

    fn settings(env: &hsm::Env) -> Pkcs11Settings {
        Pkcs11Settings {
            module: env.module.clone().into(),
            token_label: env.token.clone(),
            pin: env.pin.clone().into(),
            wrapping_key_label: hsm::WRAP_LABEL.into(),
        }
    }

    #[test]
    fn wrong_pin_missing_module_and_missing_token_are_named() {
        let Some(env) = hsm::env() else { return };
        let mut s = settings(&env);
        s.pin = "0000-wrong".to_string().into();
        let err = Pkcs11KeyProvider::open(s).unwrap_err();
        assert!(matches!(err, BrokerError::HsmLogin { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::ProviderUnavailable);
        assert!(!err.to_string().contains("0000-wrong"), "{err}");

        let mut s = settings(&env);
        s.module = "/nonexistent/libpkcs11.so".into();
        let err = Pkcs11KeyProvider::open(s).unwrap_err();
        assert!(matches!(err, BrokerError::HsmUnavailable { .. }), "{err}");

        let mut s = settings(&env);
        s.token_label = "no-such-token".into();
        let err = Pkcs11KeyProvider::open(s).unwrap_err();
        assert!(matches!(err, BrokerError::HsmUnavailable { .. }), "{err}");
        assert!(err.to_string().contains("no-such-token"), "{err}");
    }

    #[test]
    fn blob_needs_its_own_wrapping_key() {
        let Some(env) = hsm::env() else { return };
        let p = hsm::open_with(&env, hsm::WRAP_LABEL);
        let kek = p.generate_kek(&label()).unwrap();
        // A provider configured with another wrapping key label does not have it.
        let other_label = format!("sealroom-test-other-{}", std::process::id());
        let other = hsm::open_with(&env, &other_label);
        let err = other
            .check_wcek(&kek.sealed_private, &label(), &[0u8; 512])
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::WrappingKeyMissing { .. }),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::ProviderUnavailable);

        // Neither does the file provider, which names the provider that made it.
        let err = file_provider()
            .check_wcek(&kek.sealed_private, &label(), &[0u8; 512])
            .unwrap_err();
        assert!(matches!(err, BrokerError::WrongProvider { .. }), "{err}");
    }

    #[test]
    fn concurrent_first_use_of_a_new_wrapping_key_converges() {
        let Some(env) = hsm::env() else { return };
        // A label no other test or run uses, so that every thread races to create it.
        let wrap = format!(
            "sealroom-test-race-{}-{}",
            std::process::id(),
            sealroom_envelope::key::random_hex(4).unwrap()
        );
        let keks: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (env, wrap) = (&env, &wrap);
                    s.spawn(move || {
                        let p = hsm::open_with(env, wrap);
                        let kek = p.generate_kek(&label()).unwrap();
                        (kek, p)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Every blob opens with a fresh provider, whichever wrapping key it was made under.
        let fresh = hsm::open_with(&env, &wrap);
        for (kek, _) in &keks {
            let cek = Cek::generate().unwrap();
            let wcek = KekPublic::from_der(&kek.public_der)
                .unwrap()
                .wrap(&cek)
                .unwrap();
            assert_eq!(
                fresh
                    .check_wcek(&kek.sealed_private, &label(), &wcek)
                    .unwrap()
                    .cek_key_id,
                cek.key_id()
            );
        }
    }

    #[test]
    fn factory_opens_the_pkcs11_provider_from_config() {
        let Some(env) = hsm::env() else { return };
        let pin_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pin_file.path(), format!("{}\n", env.pin)).unwrap();
        let json = serde_json::json!({
            "kind": "pkcs11",
            "module": env.module,
            "token_label": env.token,
            "pin_file": pin_file.path(),
            "wrapping_key_label": hsm::WRAP_LABEL,
        });
        let config: sealroom_broker::KeyProviderConfig = serde_json::from_value(json).unwrap();
        let p = sealroom_broker::open_provider(&config).unwrap();
        assert_eq!(p.kind(), ProviderKind::Pkcs11);
        assert!(!format!("{p:?}").contains(&env.pin));

        let json = serde_json::json!({
            "kind": "pkcs11",
            "module": env.module,
            "token_label": env.token,
            "pin_env": "SEALROOM_TEST_PKCS11_PIN",
        });
        let config: sealroom_broker::KeyProviderConfig = serde_json::from_value(json).unwrap();
        assert_eq!(
            sealroom_broker::open_provider(&config).unwrap().kind(),
            ProviderKind::Pkcs11
        );

        let json = serde_json::json!({
            "kind": "pkcs11", "module": env.module, "token_label": env.token,
        });
        let config: sealroom_broker::KeyProviderConfig = serde_json::from_value(json).unwrap();
        let err = sealroom_broker::open_provider(&config).unwrap_err();
        assert!(err.to_string().contains("needs a PIN"), "{err}");
    }
}
