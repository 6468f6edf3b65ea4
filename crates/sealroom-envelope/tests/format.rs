//! The sealed format's guarantees: round trips at segment boundaries, and every modification,
//! truncation or wrong key detected with the matching error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;

use common::{key, pattern, seal_bytes, unseal_bytes};
use sealroom_envelope::access::SealedFile;
use sealroom_envelope::header::{HEADER_LEN, SEALED_SEGMENT_SIZE, SEGMENT_SIZE};
use sealroom_envelope::Error;

const SEG: usize = SEGMENT_SIZE;

#[test]
fn round_trips_around_segment_and_batch_boundaries() {
    let cek = key(1);
    for len in [
        0,
        1,
        SEG - 1,
        SEG,
        SEG + 1,
        2 * SEG,
        64 * SEG - 1,
        64 * SEG,
        64 * SEG + 1,
        130 * SEG + 17,
    ] {
        let plain = pattern(len, len as u64);
        let sealed = seal_bytes(&plain, &cek);
        let segments = len.div_ceil(SEG).max(1);
        assert_eq!(sealed.len(), HEADER_LEN + len + 16 * segments, "len {len}");
        assert_eq!(unseal_bytes(&sealed, &cek).unwrap(), plain, "len {len}");
    }
}

#[test]
fn same_plaintext_seals_differently_each_time() {
    let cek = key(2);
    let plain = pattern(1000, 1);
    assert_ne!(seal_bytes(&plain, &cek), seal_bytes(&plain, &cek));
}

#[test]
fn wrong_key_names_both_key_ids() {
    let sealed = seal_bytes(b"hello", &key(3));
    let err = unseal_bytes(&sealed, &key(4)).unwrap_err();
    match &err {
        Error::WrongKey { sealed, given } => {
            assert_eq!(*sealed, key(3).key_id());
            assert_eq!(*given, key(4).key_id());
        }
        other => panic!("expected WrongKey, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&key(3).key_id().to_string()), "{text}");
    assert!(text.contains(&key(4).key_id().to_string()), "{text}");
}

fn expect_kind(err: &Error, offset: usize, len: usize) {
    let ok = match offset {
        0..=7 => matches!(err, Error::NotSealed { .. }),
        8 => matches!(err, Error::UnknownVersion { .. }),
        9..=111 => matches!(err, Error::TamperedHeader { .. }),
        _ => {
            let index = ((offset - HEADER_LEN) / SEALED_SEGMENT_SIZE) as u64;
            matches!(err, Error::TamperedSegment { index: i, .. } if *i == index)
        }
    };
    assert!(ok, "flip at {offset} of {len}: unexpected {err:?}");
}

#[test]
fn flipping_any_byte_of_a_small_file_is_detected() {
    let cek = key(5);
    let plain = pattern(300, 9);
    let sealed = seal_bytes(&plain, &cek);
    for offset in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[offset] ^= bit;
            let err = unseal_bytes(&bad, &cek).unwrap_err();
            expect_kind(&err, offset, sealed.len());
        }
    }
}

#[test]
fn flipping_bytes_of_a_multi_segment_file_names_the_segment() {
    let cek = key(6);
    let plain = pattern(3 * SEG + 500, 10);
    let sealed = seal_bytes(&plain, &cek);
    let mut offsets: Vec<usize> = (0..sealed.len()).step_by(251).collect();
    for s in 0..4 {
        let start = HEADER_LEN + s * SEALED_SEGMENT_SIZE;
        let end = (start + SEALED_SEGMENT_SIZE).min(sealed.len());
        offsets.extend([start, start + 1, end - 17, end - 16, end - 1]);
    }
    for offset in offsets {
        let mut bad = sealed.clone();
        bad[offset] ^= 0x40;
        let err = unseal_bytes(&bad, &cek).unwrap_err();
        expect_kind(&err, offset, sealed.len());
    }
}

#[test]
fn truncating_anywhere_is_detected() {
    let cek = key(7);
    let plain = pattern(2 * SEG + 10, 11);
    let sealed = seal_bytes(&plain, &cek);
    let mut cuts: Vec<usize> = (0..HEADER_LEN + 40).collect();
    cuts.extend((HEADER_LEN..sealed.len()).step_by(997));
    cuts.extend([
        HEADER_LEN + SEALED_SEGMENT_SIZE,
        HEADER_LEN + 2 * SEALED_SEGMENT_SIZE,
        sealed.len() - 1,
    ]);
    for cut in cuts {
        let err = unseal_bytes(&sealed[..cut], &cek).unwrap_err();
        let ok = match cut {
            0 => matches!(err, Error::NotSealed { .. }),
            _ => matches!(err, Error::Truncated { .. }),
        };
        assert!(ok, "cut at {cut}: unexpected {err:?}");
    }
}

#[test]
fn appended_bytes_and_swapped_segments_are_detected() {
    let cek = key(8);
    let plain = pattern(3 * SEG, 12);
    let sealed = seal_bytes(&plain, &cek);
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        unseal_bytes(&longer, &cek),
        Err(Error::Tampered { .. })
    ));

    // Swap segments 0 and 1: both authenticate individually, but not at each other's position.
    let mut swapped = sealed.clone();
    let (a, b) = (HEADER_LEN, HEADER_LEN + SEALED_SEGMENT_SIZE);
    let seg0 = sealed[a..b].to_vec();
    swapped.copy_within(b..b + SEALED_SEGMENT_SIZE, a);
    swapped[b..b + SEALED_SEGMENT_SIZE].copy_from_slice(&seg0);
    assert!(matches!(
        unseal_bytes(&swapped, &cek),
        Err(Error::TamperedSegment { index: 0, .. })
    ));

    // Splice: a segment from another file sealed with the same key at the same position.
    let other = seal_bytes(&pattern(3 * SEG, 13), &cek);
    let mut spliced = sealed.clone();
    spliced[b..b + SEALED_SEGMENT_SIZE].copy_from_slice(&other[b..b + SEALED_SEGMENT_SIZE]);
    assert!(matches!(
        unseal_bytes(&spliced, &cek),
        Err(Error::TamperedSegment { index: 1, .. })
    ));
}

#[test]
fn not_sealed_and_unknown_version() {
    let cek = key(9);
    assert!(matches!(
        unseal_bytes(b"", &cek),
        Err(Error::NotSealed { .. })
    ));
    assert!(matches!(
        unseal_bytes(b"PK\x03\x04 a zip file", &cek),
        Err(Error::NotSealed { .. })
    ));
    let mut sealed = seal_bytes(b"x", &cek);
    sealed[8] = 2;
    assert!(matches!(
        unseal_bytes(&sealed, &cek),
        Err(Error::UnknownVersion {
            found: 2,
            supported: 1
        })
    ));
}

#[test]
fn random_access_reads_any_range_and_checks_only_touched_segments() {
    let cek = key(10);
    let len = 5 * SEG + 123;
    let plain = pattern(len, 14);
    let sealed = seal_bytes(&plain, &cek);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.sealed");
    std::fs::write(&path, &sealed).unwrap();
    let file = SealedFile::open(std::fs::File::open(&path).unwrap(), &cek).unwrap();
    assert_eq!(file.len(), len as u64);
    let ranges = [
        (0, 0),
        (0, 1),
        (SEG - 1, SEG + 1),
        (SEG, 2 * SEG),
        (3 * SEG + 7, len),
        (len - 1, len),
        (0, len),
        (len, len + 10),
    ];
    for (start, end) in ranges {
        let mut got = Vec::new();
        file.range_reader(start as u64..end as u64)
            .read_to_end(&mut got)
            .unwrap();
        let end = end.min(len);
        assert_eq!(got, &plain[start..end], "range {start}..{end}");
        let mut buf = vec![0u8; end - start];
        let n = file.read_at(start as u64, &mut buf).unwrap();
        assert_eq!(&buf[..n], &plain[start..end]);
    }

    // Damage segment 4: ranges in segments 0..4 still read, segment 4 reports tampering.
    let mut bad = sealed.clone();
    bad[HEADER_LEN + 4 * SEALED_SEGMENT_SIZE + 10] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let file = SealedFile::open(std::fs::File::open(&path).unwrap(), &cek).unwrap();
    let mut buf = vec![0u8; 100];
    assert_eq!(file.read_at(SEG as u64, &mut buf).unwrap(), 100);
    assert!(matches!(
        file.read_at(4 * SEG as u64, &mut buf),
        Err(Error::TamperedSegment { index: 4, .. })
    ));

    // A truncated file is refused at open.
    std::fs::write(&path, &sealed[..sealed.len() - 5]).unwrap();
    assert!(matches!(
        SealedFile::open(std::fs::File::open(&path).unwrap(), &cek),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn parallel_file_path_agrees_with_the_stream_path() {
    use sealroom_envelope::parallel;
    let cek = key(11);
    let dir = tempfile::tempdir().unwrap();
    for len in [0, 1, SEG, 16 * SEG, 16 * SEG + 1, 40 * SEG + 3] {
        let plain = pattern(len, 99 + len as u64);
        let p_in = dir.path().join("in");
        let p_sealed = dir.path().join("sealed");
        let p_out = dir.path().join("out");
        std::fs::write(&p_in, &plain).unwrap();
        let _ = std::fs::remove_file(&p_sealed);
        let sealed_file = std::fs::File::create(&p_sealed).unwrap();
        parallel::seal_file(
            &std::fs::File::open(&p_in).unwrap(),
            &sealed_file,
            &cek,
            &(),
        )
        .unwrap();
        let sealed = std::fs::read(&p_sealed).unwrap();
        // The parallel sealer's output unseals with the stream path, and vice versa.
        assert_eq!(unseal_bytes(&sealed, &cek).unwrap(), plain, "len {len}");
        std::fs::write(&p_sealed, seal_bytes(&plain, &cek)).unwrap();
        let _ = std::fs::remove_file(&p_out);
        let out = std::fs::File::create(&p_out).unwrap();
        parallel::unseal_file(&std::fs::File::open(&p_sealed).unwrap(), &out, &cek, &()).unwrap();
        assert_eq!(std::fs::read(&p_out).unwrap(), plain, "len {len}");

        // Same errors for a flipped byte in the last segment and for a wrong key.
        let mut bad = std::fs::read(&p_sealed).unwrap();
        let n = bad.len();
        bad[n - 1] ^= 1;
        std::fs::write(&p_sealed, &bad).unwrap();
        let out = std::fs::File::create(&p_out).unwrap();
        let err = parallel::unseal_file(&std::fs::File::open(&p_sealed).unwrap(), &out, &cek, &())
            .unwrap_err();
        let last = len.div_ceil(SEG).max(1) as u64 - 1;
        assert!(
            matches!(err, Error::TamperedSegment { index, .. } if index == last),
            "{err:?}"
        );
        let err = parallel::unseal_file(
            &std::fs::File::open(&p_sealed).unwrap(),
            &out,
            &key(12),
            &(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::WrongKey { .. }), "{err:?}");
    }
}
