//! The evidence parsers and verifiers on random and mutated input: they return errors, never
//! panic (the same functions the fuzz targets drive).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use sealroom_attest::snp::{SnpPolicy, SnpReport, SnpVerifier, TcbVersion};
use sealroom_attest::tdx::{TdxPolicy, TdxQuote, TdxVerifier};
use sealroom_attest::{ReferenceMeasurements, ReportData, VerificationTime, Verifier};

fn snp_verifier() -> SnpVerifier {
    SnpVerifier::milan(SnpPolicy {
        measurements: ReferenceMeasurements::AnyCheckedByCaller,
        min_tcb: TcbVersion::default(),
        allow_debug: false,
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SnpReport::parse(&data);
        let _ = TdxQuote::parse(&data);
        let _ = sealroom_attest::azure::HclReport::parse(&data);
        let _ = sealroom_attest::azure::AzureEvidence::parse(&data);
        let _ = sealroom_attest::sim::SimulatedReport::parse(&data);
        let _ = snp_verifier().verify(&data, &ReportData([0; 64]), VerificationTime(1_750_000_000));
    }

    #[test]
    fn mutated_genuine_evidence(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        for file in ["tdx/tdx_quote", "snp/test-report.bin", "az-snp-vtpm/hcl-report.bin"] {
            let mut data = common::read(file);
            let i = pos.index(data.len());
            data[i] = byte;
            let _ = TdxQuote::parse(&data);
            let _ = SnpReport::parse(&data);
            let _ = sealroom_attest::azure::HclReport::parse(&data);
            let n = cut.index(data.len());
            let _ = TdxQuote::parse(&data[..n]);
            let _ = sealroom_attest::azure::HclReport::parse(&data[..n]);
        }
    }
}

#[test]
fn mutated_tdx_quote_through_the_verifier() {
    use base64::Engine as _;
    let quote = common::read("tdx/tdx_quote");
    let collateral: serde_json::Value =
        serde_json::from_slice(&common::read("tdx/tdx_quote_collateral.json")).unwrap();
    let v = TdxVerifier::new(TdxPolicy::strict(ReferenceMeasurements::AnyCheckedByCaller)).unwrap();
    let expected = TdxQuote::parse(&quote).unwrap().report.report_data;
    let now = common::at("2025-07-01T00:00:00Z");
    let genuine = serde_json::json!({
        "quote": base64::engine::general_purpose::STANDARD.encode(&quote),
        "collateral": collateral,
    });
    v.verify(&serde_json::to_vec(&genuine).unwrap(), &expected, now)
        .unwrap();
    // Every 7th byte of the quote, including the certification data and the PEM chain.
    for i in (0..quote.len()).step_by(7) {
        let mut q = quote.clone();
        q[i] ^= 0x80;
        let ev = serde_json::json!({
            "quote": base64::engine::general_purpose::STANDARD.encode(&q),
            "collateral": collateral,
        });
        let r = v.verify(&serde_json::to_vec(&ev).unwrap(), &expected, now);
        assert!(r.is_err(), "byte {i}");
    }
}
