//! Prepared evaluation keys, per model, identified by the SHA-256 of the uploaded bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use sealroom_fhe::ServerKey;
use sha2::{Digest, Sha256};

/// A bounded cache of prepared server keys (oldest evicted first).
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    entries: Mutex<VecDeque<(String, String, Arc<ServerKey>)>>,
}

/// The id of an uploaded key: the first 32 hex digits of the SHA-256 of its bytes.
pub fn key_id(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(&digest[..16])
}

impl KeyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        KeyCache {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Looks a key up for a model.
    pub fn get(&self, model: &str, id: &str) -> Option<Arc<ServerKey>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(m, k, _)| m == model && k == id)
            .map(|(_, _, key)| key.clone())
    }

    /// Stores a key for a model.
    pub fn insert(&self, model: &str, id: &str, key: Arc<ServerKey>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(m, k, _)| !(m == model && k == id));
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((model.to_string(), id.to_string(), key));
    }
}
