//! TLS settings: rustls with the aws-lc-rs provider; roots from a given CA file, or the system's
//! CA bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::{ClientError, Result};

/// Largest CA file read (a system bundle is about 200 KiB).
const MAX_CA_FILE: u64 = 8 << 20;

/// Where distributions keep their CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine, macOS
];

/// The TLS configuration: `ca_cert` alone when given; otherwise the system bundle, loaded only
/// when the server is `https://` (a plain-HTTP client needs none).
pub(crate) fn config(ca_cert: Option<&Path>, https: bool) -> Result<TlsConfig> {
    let roots = match ca_cert {
        Some(path) => Some(read_pem_certs(path)?),
        None if https => Some(read_pem_certs(&system_bundle()?)?),
        None => None,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider);
    let builder = match roots {
        Some(certs) => builder.root_certs(RootCerts::from(certs)),
        // No https: no roots needed; an empty set refuses every certificate.
        None => builder.root_certs(RootCerts::from(Vec::<Certificate<'static>>::new())),
    };
    Ok(builder.build())
}

fn system_bundle() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ClientError::Config(
                "no system CA bundle found (looked at SSL_CERT_FILE and the usual paths); \
                 give the server's CA certificate with --ca-cert / SEALROOM_CA_CERT"
                    .into(),
            )
        })
}

/// Every certificate of a PEM file.
pub(crate) fn read_pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let what = || format!("cannot read the CA file {}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| ClientError::io(what(), e))?;
    if meta.len() > MAX_CA_FILE {
        return Err(ClientError::Config(format!(
            "the CA file {} is larger than {MAX_CA_FILE} bytes",
            path.display()
        )));
    }
    let pem = std::fs::read(path).map_err(|e| ClientError::io(what(), e))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(ClientError::Config(format!(
                    "the CA file {} is not valid PEM: {e}",
                    path.display()
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(ClientError::Config(format!(
            "the CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        assert!(matches!(
            read_pem_certs(&empty),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            read_pem_certs(&dir.path().join("missing.pem")),
            Err(ClientError::Io { .. })
        ));
        // A plain-HTTP client needs no roots at all.
        assert!(config(None, false).is_ok());
    }
}
