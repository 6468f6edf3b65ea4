//! Certificate handling shared by the SNP and TDX verifiers: bounded DER/PEM parsing with
//! `x509-cert`, signature checks with aws-lc-rs over the certificate's original TBS bytes, and
//! validity at an explicit time.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::crl::CertificateList;
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::error::{Error, Result};
use crate::VerificationTime;

/// Largest single certificate or CRL accepted (DER).
pub(crate) const MAX_CERT_DER: usize = 64 * 1024;
/// Most certificates accepted in one PEM chain.
pub(crate) const MAX_CHAIN: usize = 8;

const OID_RSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
const OID_ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const OID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const OID_P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: Oid = Oid::new_unwrap("1.3.132.0.34");
const OID_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");

/// The kind of public key a certificate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
}

/// A parsed certificate that keeps its original DER (the signature covers the original TBS
/// bytes, not a re-encoding).
#[derive(Clone)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    pub(crate) cert: Certificate,
    tbs: std::ops::Range<usize>,
    pub(crate) name: String,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({})", self.name)
    }
}

/// Reads one DER tag-length header; returns (header length, content length).
fn der_header(buf: &[u8]) -> Option<(usize, usize)> {
    let _tag = *buf.first()?;
    let l0 = *buf.get(1)?;
    if l0 < 0x80 {
        return Some((2, l0 as usize));
    }
    let n = (l0 & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *buf.get(2 + i)? as usize;
    }
    Some((2 + n, len))
}

/// The byte range of the first element inside the outer SEQUENCE (a certificate's TBS or a CRL's
/// TBSCertList).
fn first_inner_element(der: &[u8]) -> Option<std::ops::Range<usize>> {
    let (oh, olen) = der_header(der)?;
    if oh.checked_add(olen)? != der.len() {
        return None;
    }
    let inner = der.get(oh..)?;
    let (ih, ilen) = der_header(inner)?;
    let end = oh.checked_add(ih)?.checked_add(ilen)?;
    (end <= der.len()).then_some(oh..end)
}

impl Cert {
    pub(crate) fn from_der(what: &str, der: &[u8]) -> Result<Cert> {
        if der.len() > MAX_CERT_DER {
            return Err(Error::chain(
                what,
                format!("certificate is {} bytes, limit {MAX_CERT_DER}", der.len()),
            ));
        }
        let cert = Certificate::from_der(der)
            .map_err(|e| Error::chain(what, format!("not a DER certificate: {e}")))?;
        let tbs = first_inner_element(der)
            .ok_or_else(|| Error::chain(what, "cannot locate TBSCertificate"))?;
        let name = format!("{what} ({})", cert.tbs_certificate.subject);
        Ok(Cert {
            der: der.to_vec(),
            cert,
            tbs,
            name,
        })
    }

    pub(crate) fn from_pem(what: &str, pem: &[u8]) -> Result<Cert> {
        let mut v = pem_chain(what, pem)?;
        if v.len() != 1 {
            return Err(Error::chain(
                what,
                format!("expected one PEM certificate, found {}", v.len()),
            ));
        }
        Ok(v.remove(0))
    }

    pub(crate) fn tbs_bytes(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    pub(crate) fn spki_key(&self) -> &[u8] {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    pub(crate) fn key_kind(&self) -> Result<KeyKind> {
        let alg = &self.cert.tbs_certificate.subject_public_key_info.algorithm;
        if alg.oid == OID_RSA_ENCRYPTION {
            return Ok(KeyKind::Rsa);
        }
        if alg.oid == OID_EC_PUBLIC_KEY {
            let curve = alg
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<Oid>().ok())
                .ok_or_else(|| Error::chain(&self.name, "EC key without a named curve"))?;
            if curve == OID_P256 {
                return Ok(KeyKind::P256);
            }
            if curve == OID_P384 {
                return Ok(KeyKind::P384);
            }
            return Err(Error::chain(
                &self.name,
                format!("unsupported EC curve {curve}"),
            ));
        }
        Err(Error::chain(
            &self.name,
            format!("unsupported key algorithm {}", alg.oid),
        ))
    }

    pub(crate) fn serial_hex(&self) -> String {
        hex::encode(self.cert.tbs_certificate.serial_number.as_bytes())
    }

    pub(crate) fn extension(&self, oid: &str) -> Option<&[u8]> {
        let oid = Oid::new(oid).ok()?;
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    pub(crate) fn check_validity(&self, now: VerificationTime) -> Result<()> {
        let v = &self.cert.tbs_certificate.validity;
        now.check_within(
            format!("certificate {}", self.name),
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    fn is_ca_or_unconstrained(&self) -> bool {
        match self.extension(&OID_BASIC_CONSTRAINTS.to_string()) {
            None => true,
            Some(v) => x509_cert::ext::pkix::BasicConstraints::from_der(v)
                .map(|bc| bc.ca)
                .unwrap_or(false),
        }
    }

    /// Verifies that `self` was issued by `issuer`: names chain, validity at `now`, the issuer may
    /// issue certificates, and the signature verifies with the issuer's key.
    pub(crate) fn verify_issued_by(&self, issuer: &Cert, now: VerificationTime) -> Result<()> {
        let issuer_subject = issuer
            .cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|_| Error::Crypto("DER encode"))?;
        let my_issuer = self
            .cert
            .tbs_certificate
            .issuer
            .to_der()
            .map_err(|_| Error::Crypto("DER encode"))?;
        if issuer_subject != my_issuer {
            return Err(Error::chain(
                &self.name,
                format!(
                    "issuer {} is not {}",
                    self.cert.tbs_certificate.issuer, issuer.cert.tbs_certificate.subject
                ),
            ));
        }
        if !issuer.is_ca_or_unconstrained() {
            return Err(Error::chain(&issuer.name, "issuer is not a CA"));
        }
        self.check_validity(now)?;
        verify_signed(
            &self.name,
            issuer,
            &self.cert.signature_algorithm.oid,
            self.tbs_bytes(),
            self.cert.signature.raw_bytes(),
        )
    }
}

/// Verifies `sig` over `msg` with the key of `signer`, using the X.509 algorithm `alg`.
fn verify_signed(what: &str, signer: &Cert, alg: &Oid, msg: &[u8], sig: &[u8]) -> Result<()> {
    let kind = signer.key_kind()?;
    let algorithm: &'static dyn VerificationAlgorithm = match (kind, *alg) {
        (KeyKind::Rsa, a) if a == OID_RSA_PSS => &signature::RSA_PSS_2048_8192_SHA384,
        (KeyKind::P256, a) if a == OID_ECDSA_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::P384, a) if a == OID_ECDSA_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        (KeyKind::P384, a) if a == OID_ECDSA_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::P256, a) if a == OID_ECDSA_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        (k, a) => {
            return Err(Error::chain(
                what,
                format!("unsupported signature algorithm {a} with {k:?} issuer key"),
            ))
        }
    };
    UnparsedPublicKey::new(algorithm, signer.spki_key())
        .verify(msg, sig)
        .map_err(|_| {
            Error::chain(
                what,
                format!("signature does not verify with the key of {}", signer.name),
            )
        })
}

/// Splits a PEM bundle into certificates (bounded).
pub(crate) fn pem_chain(what: &str, pem: &[u8]) -> Result<Vec<Cert>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    if pem.len() > MAX_CERT_DER * MAX_CHAIN {
        return Err(Error::chain(what, "PEM chain too large"));
    }
    let text = std::str::from_utf8(pem).map_err(|_| Error::chain(what, "PEM is not UTF-8"))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let end = after
            .find(END)
            .ok_or_else(|| Error::chain(what, "unterminated PEM certificate"))?;
        let block = &after[..end + END.len()];
        let (label, der) = x509_cert::der::pem::decode_vec(block.as_bytes())
            .map_err(|e| Error::chain(what, format!("bad PEM: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(Error::chain(what, format!("unexpected PEM label {label}")));
        }
        if out.len() == MAX_CHAIN {
            return Err(Error::chain(
                what,
                format!("more than {MAX_CHAIN} certificates"),
            ));
        }
        out.push(Cert::from_der(&format!("{what}[{}]", out.len()), &der)?);
        rest = &after[end + END.len()..];
    }
    if out.is_empty() {
        return Err(Error::chain(what, "no PEM certificate found"));
    }
    Ok(out)
}

/// Checks that `root` is exactly the pinned trust anchor and is validly self-signed at `now`.
pub(crate) fn check_root(root: &Cert, pinned: &Cert, now: VerificationTime) -> Result<()> {
    if aws_lc_rs::constant_time::verify_slices_are_equal(root.spki_key(), pinned.spki_key())
        .is_err()
    {
        return Err(Error::chain(
            &root.name,
            format!("root key is not the trusted {}", pinned.name),
        ));
    }
    root.verify_issued_by(root, now)
}

/// A parsed, signature-checked CRL.
#[derive(Debug)]
pub(crate) struct Crl {
    revoked: Vec<Vec<u8>>,
}

impl Crl {
    /// Parses a DER CRL, checks its signature with `issuer` and that `now` is within
    /// thisUpdate..nextUpdate.
    pub(crate) fn verify(
        what: &'static str,
        der: &[u8],
        issuer: &Cert,
        now: VerificationTime,
    ) -> Result<Crl> {
        if der.len() > MAX_CERT_DER {
            return Err(Error::Collateral {
                what,
                reason: format!("{} bytes, limit {MAX_CERT_DER}", der.len()),
            });
        }
        let crl = CertificateList::from_der(der).map_err(|e| Error::Collateral {
            what,
            reason: format!("not a DER CRL: {e}"),
        })?;
        let tbs = first_inner_element(der).ok_or_else(|| Error::Collateral {
            what,
            reason: "cannot locate TBSCertList".into(),
        })?;
        let issuer_subject = issuer
            .cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|_| Error::Crypto("DER encode"))?;
        let crl_issuer = crl
            .tbs_cert_list
            .issuer
            .to_der()
            .map_err(|_| Error::Crypto("DER encode"))?;
        if issuer_subject != crl_issuer {
            return Err(Error::Collateral {
                what,
                reason: format!(
                    "issued by {}, expected {}",
                    crl.tbs_cert_list.issuer, issuer.cert.tbs_certificate.subject
                ),
            });
        }
        verify_signed(
            what,
            issuer,
            &crl.signature_algorithm.oid,
            &der[tbs],
            crl.signature.raw_bytes(),
        )
        .map_err(|e| Error::Collateral {
            what,
            reason: e.to_string(),
        })?;
        let this_update = crl.tbs_cert_list.this_update.to_unix_duration().as_secs();
        let next_update = crl
            .tbs_cert_list
            .next_update
            .map(|t| t.to_unix_duration().as_secs())
            .unwrap_or(u64::MAX);
        now.check_within(what, this_update, next_update)?;
        let revoked = crl
            .tbs_cert_list
            .revoked_certificates
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.serial_number.as_bytes().to_vec())
            .collect();
        Ok(Crl { revoked })
    }

    pub(crate) fn check_not_revoked(&self, crl: &'static str, cert: &Cert) -> Result<()> {
        let serial = cert.cert.tbs_certificate.serial_number.as_bytes();
        if self.revoked.iter().any(|s| s.as_slice() == serial) {
            return Err(Error::Revoked {
                cert: cert.name.clone(),
                serial: cert.serial_hex(),
                crl,
            });
        }
        Ok(())
    }
}

/// Reads a DER INTEGER (as found in AMD's VCEK TCB extensions) into a u32.
pub(crate) fn der_small_uint(bytes: &[u8]) -> Option<u32> {
    let i = x509_cert::der::asn1::Uint::from_der(bytes).ok()?;
    let b = i.as_bytes();
    if b.len() > 4 {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, x| (acc << 8) | *x as u32))
}

/// Splits DER content into its top-level TLVs as (tag, content). Bounded: at most 64 elements,
/// single-byte tags only.
pub(crate) fn der_tlvs(mut buf: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if out.len() == 64 {
            return None;
        }
        let tag = buf[0];
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (h, len) = der_header(buf)?;
        let end = h.checked_add(len)?;
        let content = buf.get(h..end)?;
        out.push((tag, content));
        buf = &buf[end..];
    }
    Some(out)
}

/// Content bytes of a dotted OID (for comparing against DER).
pub(crate) fn oid_bytes(oid: &str) -> Vec<u8> {
    Oid::new(oid)
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_default()
}
