//! Entry points for the fuzz targets in `fuzz/`, kept in the library so that ordinary tests run
//! them too. Each takes arbitrary bytes and must never panic, whatever they hold.

use std::io::Cursor;

use crate::header::{FileKeys, Header, HEADER_LEN};
use crate::key::Cek;
use crate::stream;

/// The key of the committed test vectors (bytes 0..32), so vectors make good seeds.
fn fuzz_key() -> Cek {
    Cek::from_bytes(std::array::from_fn(|i| i as u8))
}

/// Header parsing and authentication, then unsealing, of an arbitrary "sealed file".
pub fn sealed_file(data: &[u8]) {
    let _ = Header::parse(data);
    let _ = stream::unseal(&mut Cursor::new(data), Vec::new(), &fuzz_key(), &());
}

/// The segment reader behind a valid header: the first 4 bytes choose the plaintext length
/// (below 1 MiB), the rest is the body.
pub fn segment_reader(data: &[u8]) {
    let Some((len, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let plaintext_len = u64::from(u32::from_le_bytes(*len) % (1 << 20));
    let cek = fuzz_key();
    let salt = [7u8; 32];
    let Ok(keys) = FileKeys::derive(&cek, &salt) else {
        return;
    };
    let header = Header {
        plaintext_len,
        key_id: cek.key_id(),
        salt,
    };
    let mut file = Vec::with_capacity(HEADER_LEN + body.len());
    file.extend_from_slice(&header.encode(&keys));
    file.extend_from_slice(body);
    let _ = stream::unseal(&mut Cursor::new(&file), Vec::new(), &cek, &());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_points_survive_junk() {
        let mut x: u32 = 1;
        for len in [0usize, 1, 4, 8, 111, 112, 113, 200, 70_000] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            sealed_file(&data);
            segment_reader(&data);
        }
    }
}
