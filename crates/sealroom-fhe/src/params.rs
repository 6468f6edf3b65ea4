//! TFHE parameter sets (tfhe-rs `core_crypto`).
//!
//! Both sets reuse the cryptographic parameters (dimensions, noise, decompositions) of tfhe-rs
//! 1.x classic KS-PBS Gaussian sets, which tfhe-rs states give 128-bit security. How Sealroom uses
//! the phase space (one bootstrap per neuron over the whole half torus, see `docs/fhe.md`) differs
//! from shortint, so the *error rate* of a bootstrap is not shortint's 2^-128: it is measured
//! (the `exactness` figure of the benchmark) and simulated (`sim`).

use serde::{Deserialize, Serialize};

/// A named parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSet {
    /// Stable identifier written in keys and ciphertexts.
    pub id: ParamId,
    /// Small LWE dimension n (input of the bootstrap).
    pub lwe_dimension: usize,
    /// GLWE dimension k.
    pub glwe_dimension: usize,
    /// Polynomial size N.
    pub polynomial_size: usize,
    /// Standard deviation of LWE noise (torus units, i.e. fraction of 2^64).
    pub lwe_noise_std: f64,
    /// Standard deviation of GLWE noise (torus units).
    pub glwe_noise_std: f64,
    /// Bootstrap key decomposition base log.
    pub pbs_base_log: usize,
    /// Bootstrap key decomposition level count.
    pub pbs_level: usize,
    /// Key-switching key decomposition base log.
    pub ks_base_log: usize,
    /// Key-switching key decomposition level count.
    pub ks_level: usize,
}

/// Identifier of a parameter set, as written on the wire and in the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamId {
    /// N = 2048, n = 866: about 4x faster, coarser phase resolution (the default).
    Fast,
    /// N = 4096, n = 930: twice the phase resolution, slower bootstraps.
    Precise,
}

impl ParamId {
    /// Wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            ParamId::Fast => 1,
            ParamId::Precise => 2,
        }
    }

    /// From the wire byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(ParamId::Fast),
            2 => Some(ParamId::Precise),
            _ => None,
        }
    }

    /// Name used in the CLI and documents.
    pub fn name(self) -> &'static str {
        match self {
            ParamId::Fast => "fast",
            ParamId::Precise => "precise",
        }
    }

    /// The parameter set.
    pub fn params(self) -> ParamSet {
        match self {
            ParamId::Fast => FAST,
            ParamId::Precise => PRECISE,
        }
    }
}

impl std::str::FromStr for ParamId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fast" => Ok(ParamId::Fast),
            "precise" => Ok(ParamId::Precise),
            other => Err(format!(
                "unknown parameter set {other:?} (expected fast or precise)"
            )),
        }
    }
}

impl std::fmt::Display for ParamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// tfhe-rs `V1_1_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128` cryptographic parameters.
pub const FAST: ParamSet = ParamSet {
    id: ParamId::Fast,
    lwe_dimension: 866,
    glwe_dimension: 1,
    polynomial_size: 2048,
    lwe_noise_std: 2.046151696979124e-06,
    glwe_noise_std: 2.845267479601915e-15,
    pbs_base_log: 23,
    pbs_level: 1,
    ks_base_log: 3,
    ks_level: 5,
};

/// tfhe-rs `V1_1_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128` cryptographic parameters.
pub const PRECISE: ParamSet = ParamSet {
    id: ParamId::Precise,
    lwe_dimension: 930,
    glwe_dimension: 1,
    polynomial_size: 4096,
    lwe_noise_std: 6.782362904013915e-07,
    glwe_noise_std: 2.168404344971009e-19,
    pbs_base_log: 15,
    pbs_level: 2,
    ks_base_log: 3,
    ks_level: 6,
};

impl ParamSet {
    /// Dimension of the "big" LWE key (the GLWE key flattened): k·N.
    pub fn big_lwe_dimension(&self) -> usize {
        self.glwe_dimension * self.polynomial_size
    }

    /// Standard deviation of the phase error at the bootstrap's input, in units of one
    /// bootstrap box (2^64 / 2N), as used by the plaintext simulation. Dominated by the modulus
    /// switch: rounding n mask elements against a binary key gives n/24 boxes², of which the
    /// server removes the known mean (`eval::centered_modulus_switch`), leaving n/48, plus 1/12
    /// for the body; plus the key switch noise.
    pub fn bootstrap_noise_std_boxes(&self) -> f64 {
        let n = self.lwe_dimension as f64;
        let ms_var = n / 48.0 + 1.0 / 12.0;
        // Key switch: k·N·l digits in [-B/2, B/2) times fresh LWE noise, plus the bits of the
        // input mask below B^l that the decomposition drops (against a binary key).
        let big = self.big_lwe_dimension() as f64;
        let base = (1u64 << self.ks_base_log) as f64;
        let digit_var = base * base / 12.0;
        let kept_bits = (self.ks_base_log * self.ks_level) as i32;
        let drop_var = (big / 2.0) * 2f64.powi(-2 * kept_bits) / 12.0;
        let ks_var_torus =
            big * self.ks_level as f64 * digit_var * self.lwe_noise_std.powi(2) + drop_var;
        let box_torus = 1.0 / (2.0 * self.polynomial_size as f64);
        let ks_var_boxes = ks_var_torus / (box_torus * box_torus);
        (ms_var + ks_var_boxes).sqrt()
    }
}
