#![no_main]
//! SEV-SNP report parser, and the signature check with each DER-certificate-shaped suffix.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealroom_attest::snp::SnpReport::parse(data);
    if data.len() > sealroom_attest::snp::REPORT_LEN {
        let (report, cert) = data.split_at(sealroom_attest::snp::REPORT_LEN);
        let _ = sealroom_attest::snp::verify_report_signature_only(report, cert);
    }
});
