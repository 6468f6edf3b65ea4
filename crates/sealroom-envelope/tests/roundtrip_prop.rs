//! Property: unseal(seal(x)) = x, for sizes clustered around segment boundaries and random content,
//! and through the `Write` interface with arbitrary write sizes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Cursor, Write};

use proptest::prelude::*;
use sealroom_envelope::header::SEGMENT_SIZE;
use sealroom_envelope::stream::SealWriter;
use sealroom_envelope::Cek;

fn boundary_len() -> impl Strategy<Value = usize> {
    (0usize..4, -3i64..=3).prop_map(|(k, d)| (k as i64 * SEGMENT_SIZE as i64 + d).max(0) as usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn unseal_inverts_seal(len in boundary_len(), seed in any::<u64>(), key in any::<[u8; 32]>()) {
        let cek = Cek::from_bytes(key);
        let plain = common::pattern(len, seed);
        let sealed = common::seal_bytes(&plain, &cek);
        prop_assert_eq!(common::unseal_bytes(&sealed, &cek).unwrap(), plain);
    }

    #[test]
    fn write_interface_matches(len in boundary_len(), chunk in 1usize..100_000, seed in any::<u64>()) {
        let cek = common::key(42);
        let plain = common::pattern(len, seed);
        let mut w = SealWriter::new(Cursor::new(Vec::new()), &cek).unwrap();
        for piece in plain.chunks(chunk) {
            w.write_all(piece).unwrap();
        }
        let (out, summary) = w.finish().unwrap();
        prop_assert_eq!(summary.plaintext_len, len as u64);
        prop_assert_eq!(common::unseal_bytes(out.get_ref(), &cek).unwrap(), plain);
    }
}
