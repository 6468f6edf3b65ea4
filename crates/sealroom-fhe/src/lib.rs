//! FHE split inference for Sealroom.
//!
//! A user encrypts a private input with TFHE (tfhe-rs `core_crypto`), a server evaluates the
//! first `k` layers of a published quantized model on the ciphertext, the user decrypts the
//! intermediate activations, optionally adds noise, and the model owner runs the remaining layers
//! in the clear. See `docs/fhe.md` for the model format, the protocol, the encodings, benchmark
//! figures and what the activations leak.
//!
//! ```
//! use sealroom_fhe::{example, plan::Plan, sim};
//! let model = example::digits_model().unwrap();
//! let data = example::digits().unwrap();
//! let plan = Plan::new(&model, 2).unwrap();
//! let x = data.test[0].input();
//! // The noise-free simulation of the encrypted part, then the owner's part in the clear.
//! let mut rng = rand::thread_rng();
//! let acts = sim::simulate_encrypted(&model, &plan, 2048, 0.0, &x, &mut rng).unwrap();
//! let logits = model.forward_range(2, model.ops().len(), &acts).unwrap();
//! assert_eq!(logits.len(), 10);
//! ```

pub mod crypto;
pub mod error;
pub mod eval;
pub mod example;
pub mod leakage;
pub mod model;
pub mod params;
pub mod plan;
pub mod sim;
pub mod split;
pub mod wire;

pub use crypto::{ClientKey, CompressedServerKey, InputCiphertext, OutputCiphertext, ServerKey};
pub use error::{FheError, Result};
pub use model::{Model, ModelDoc};
pub use params::{ParamId, ParamSet};
