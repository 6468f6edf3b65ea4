//! Keys, encryption and decryption on the client; key preparation on the server
//! (tfhe-rs `core_crypto`).

use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};
use tfhe::core_crypto::prelude::*;
use zeroize::Zeroize;

use crate::error::{malformed, FheError, Result};
use crate::params::{ParamId, ParamSet};
use crate::plan::decode_output;
use crate::wire::{self, Kind, Reader};

fn modulus() -> CiphertextModulus<u64> {
    CiphertextModulus::new_native()
}

fn gaussian(std: f64) -> DynamicDistribution<u64> {
    DynamicDistribution::new_gaussian_from_std_dev(StandardDev(std))
}

/// The client's secret keys. Never leaves the client; zeroized on drop; `Debug` prints no bits.
pub struct ClientKey {
    param: ParamId,
    small: LweSecretKeyOwned<u64>,
    glwe: GlweSecretKeyOwned<u64>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("param", &self.param)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientKey {
    fn drop(&mut self) {
        self.small.as_mut().zeroize();
        self.glwe.as_mut().zeroize();
    }
}

/// The evaluation keys as uploaded: a seeded bootstrap key and a seeded key-switching key.
pub struct CompressedServerKey {
    param: ParamId,
    bsk: SeededLweBootstrapKeyOwned<u64>,
    ksk: SeededLweKeyswitchKeyOwned<u64>,
    bsk_seed: u128,
    ksk_seed: u128,
}

impl std::fmt::Debug for CompressedServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedServerKey")
            .field("param", &self.param)
            .finish_non_exhaustive()
    }
}

/// Evaluation keys ready for use: the bootstrap key in the Fourier domain and the full
/// key-switching key.
pub struct ServerKey {
    param: ParamId,
    pub(crate) fourier_bsk: FourierLweBootstrapKeyOwned,
    pub(crate) ksk: LweKeyswitchKeyOwned<u64>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("param", &self.param)
            .finish_non_exhaustive()
    }
}

/// An encrypted input: a seeded LWE list under the big key (only the bodies and one seed).
#[derive(Debug, Clone)]
pub struct InputCiphertext {
    param: ParamId,
    seed: u128,
    bodies: Vec<u64>,
}

/// Encrypted activations (LWE list under the big key), as the server returns them.
#[derive(Debug, Clone)]
pub struct OutputCiphertext {
    pub(crate) param: ParamId,
    pub(crate) count: usize,
    /// `count × (k·N + 1)` values.
    pub(crate) data: Vec<u64>,
}

fn fresh_seed(seeder: &mut dyn Seeder) -> u128 {
    seeder.seed().0
}

impl ClientKey {
    /// Makes a new client key and the matching compressed server key.
    pub fn generate(param: ParamId) -> (ClientKey, CompressedServerKey) {
        let p = param.params();
        let mut boxed_seeder = new_seeder();
        let seeder = boxed_seeder.as_mut();
        let mut secret_gen = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
        let small = allocate_and_generate_new_binary_lwe_secret_key(
            LweDimension(p.lwe_dimension),
            &mut secret_gen,
        );
        let glwe = allocate_and_generate_new_binary_glwe_secret_key(
            GlweDimension(p.glwe_dimension),
            PolynomialSize(p.polynomial_size),
            &mut secret_gen,
        );
        let big = glwe.as_lwe_secret_key();

        let ksk_seed = fresh_seed(seeder);
        let mut ksk = SeededLweKeyswitchKey::new(
            0u64,
            DecompositionBaseLog(p.ks_base_log),
            DecompositionLevelCount(p.ks_level),
            big.lwe_dimension(),
            small.lwe_dimension(),
            CompressionSeed::from(Seed(ksk_seed)),
            modulus(),
        );
        generate_seeded_lwe_keyswitch_key(
            &big,
            &small,
            &mut ksk,
            gaussian(p.lwe_noise_std),
            seeder,
        );

        let bsk_seed = fresh_seed(seeder);
        let mut bsk = SeededLweBootstrapKey::new(
            0u64,
            GlweDimension(p.glwe_dimension).to_glwe_size(),
            PolynomialSize(p.polynomial_size),
            DecompositionBaseLog(p.pbs_base_log),
            DecompositionLevelCount(p.pbs_level),
            LweDimension(p.lwe_dimension),
            CompressionSeed::from(Seed(bsk_seed)),
            modulus(),
        );
        par_generate_seeded_lwe_bootstrap_key(
            &small,
            &glwe,
            &mut bsk,
            gaussian(p.glwe_noise_std),
            seeder,
        );
        (
            ClientKey { param, small, glwe },
            CompressedServerKey {
                param,
                bsk,
                ksk,
                bsk_seed,
                ksk_seed,
            },
        )
    }

    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.param
    }

    /// Serializes the secret keys (store them with care: this is the user's secret).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = wire::header(Kind::ClientKey, self.param);
        out.extend(self.small.as_ref().iter().map(|&b| b as u8));
        out.extend(self.glwe.as_ref().iter().map(|&b| b as u8));
        out
    }

    /// Reads secret keys written by [`ClientKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (param, rest) = wire::read_header(bytes, Kind::ClientKey)?;
        let p = param.params();
        wire::expect_len(
            rest,
            Kind::ClientKey,
            p.lwe_dimension.checked_add(p.big_lwe_dimension()),
        )?;
        let mut r = Reader::new(rest, Kind::ClientKey);
        let small_bits = r.bytes(p.lwe_dimension)?;
        let glwe_bits = r.bytes(p.big_lwe_dimension())?;
        r.finish()?;
        if small_bits.iter().chain(glwe_bits).any(|&b| b > 1) {
            return Err(malformed("client key", "key bits must be 0 or 1"));
        }
        let small = LweSecretKey::from_container(
            small_bits.iter().map(|&b| u64::from(b)).collect::<Vec<_>>(),
        );
        let glwe = GlweSecretKey::from_container(
            glwe_bits.iter().map(|&b| u64::from(b)).collect::<Vec<_>>(),
            PolynomialSize(p.polynomial_size),
        );
        Ok(ClientKey { param, small, glwe })
    }

    /// Encrypts an input vector with the split's input scale ([`crate::plan::ClientPlan`]).
    pub fn encrypt(&self, delta: u64, x: &[i64]) -> Result<InputCiphertext> {
        wire::check_count(x.len(), Kind::Input)?;
        let p = self.param.params();
        let plaintexts = PlaintextList::from_container(
            x.iter()
                .map(|&v| (v as u64).wrapping_mul(delta))
                .collect::<Vec<u64>>(),
        );
        let mut boxed_seeder = new_seeder();
        let seeder = boxed_seeder.as_mut();
        let seed = fresh_seed(seeder);
        let big = self.glwe.as_lwe_secret_key();
        let mut list = SeededLweCiphertextList::new(
            0u64,
            big.lwe_dimension().to_lwe_size(),
            LweCiphertextCount(x.len()),
            CompressionSeed::from(Seed(seed)),
            modulus(),
        );
        encrypt_seeded_lwe_ciphertext_list(
            &big,
            &mut list,
            &plaintexts,
            gaussian(p.glwe_noise_std),
            seeder,
        );
        Ok(InputCiphertext {
            param: self.param,
            seed,
            bodies: list.into_container(),
        })
    }

    /// Decrypts the server's output into activations of `output_bits` bits.
    pub fn decrypt(&self, output_bits: u32, ct: &OutputCiphertext) -> Result<Vec<i64>> {
        if ct.param != self.param {
            return Err(FheError::ParamMismatch(format!(
                "output uses parameter set {}, this key {}",
                ct.param, self.param
            )));
        }
        Ok(self
            .decrypt_phases(ct)
            .into_iter()
            .map(|ph| decode_output(ph, output_bits))
            .collect())
    }

    /// Raw phases (for tests and noise measurement).
    pub fn decrypt_phases(&self, ct: &OutputCiphertext) -> Vec<u64> {
        let big = self.glwe.as_lwe_secret_key();
        let list = LweCiphertextList::from_container(
            ct.data.as_slice(),
            big.lwe_dimension().to_lwe_size(),
            modulus(),
        );
        list.iter()
            .map(|c| decrypt_lwe_ciphertext(&big, &c).0)
            .collect()
    }
}

impl CompressedServerKey {
    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.param
    }

    /// Serializes the compressed key (this is what the client uploads).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = wire::header(Kind::ServerKey, self.param);
        out.extend_from_slice(&self.bsk_seed.to_le_bytes());
        out.extend_from_slice(&self.ksk_seed.to_le_bytes());
        wire::put_u64s(&mut out, self.bsk.as_ref());
        wire::put_u64s(&mut out, self.ksk.as_ref());
        out
    }

    /// Parses an uploaded key (untrusted): exact size for its parameter set, or an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (param, rest) = wire::read_header(bytes, Kind::ServerKey)?;
        let p: ParamSet = param.params();
        wire::expect_len(bytes, Kind::ServerKey, Some(wire::server_key_bytes(&p)))?;
        let mut r = Reader::new(rest, Kind::ServerKey);
        let bsk_seed = r.u128()?;
        let ksk_seed = r.u128()?;
        let bsk_data = r.u64s(wire::seeded_bsk_len(&p))?;
        let ksk_data = r.u64s(wire::seeded_ksk_len(&p))?;
        r.finish()?;
        let bsk = SeededLweBootstrapKey::from_container(
            bsk_data,
            GlweDimension(p.glwe_dimension).to_glwe_size(),
            PolynomialSize(p.polynomial_size),
            DecompositionBaseLog(p.pbs_base_log),
            DecompositionLevelCount(p.pbs_level),
            CompressionSeed::from(Seed(bsk_seed)),
            modulus(),
        );
        let ksk = SeededLweKeyswitchKey::from_container(
            ksk_data,
            DecompositionBaseLog(p.ks_base_log),
            DecompositionLevelCount(p.ks_level),
            LweDimension(p.lwe_dimension).to_lwe_size(),
            CompressionSeed::from(Seed(ksk_seed)),
            modulus(),
        );
        Ok(CompressedServerKey {
            param,
            bsk,
            ksk,
            bsk_seed,
            ksk_seed,
        })
    }

    /// Expands the seeds and converts the bootstrap key to the Fourier domain (server side,
    /// once per upload).
    pub fn prepare(&self) -> ServerKey {
        let bsk: LweBootstrapKeyOwned<u64> =
            self.bsk.as_view().par_decompress_into_lwe_bootstrap_key();
        let mut fourier_bsk = FourierLweBootstrapKey::new(
            bsk.input_lwe_dimension(),
            bsk.glwe_size(),
            bsk.polynomial_size(),
            bsk.decomposition_base_log(),
            bsk.decomposition_level_count(),
        );
        par_convert_standard_lwe_bootstrap_key_to_fourier(&bsk, &mut fourier_bsk);
        let ksk = self.ksk.as_view().par_decompress_into_lwe_keyswitch_key();
        ServerKey {
            param: self.param,
            fourier_bsk,
            ksk,
        }
    }
}

impl ServerKey {
    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.param
    }
}

impl InputCiphertext {
    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.param
    }

    /// Number of encrypted values.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether it holds no value (never for a parsed one).
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// Serializes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = wire::header(Kind::Input, self.param);
        out.extend_from_slice(&self.seed.to_le_bytes());
        out.extend_from_slice(&(self.bodies.len() as u32).to_le_bytes());
        wire::put_u64s(&mut out, &self.bodies);
        out
    }

    /// Parses an uploaded input (untrusted).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (param, rest) = wire::read_header(bytes, Kind::Input)?;
        let mut r = Reader::new(rest, Kind::Input);
        let seed = r.u128()?;
        let count = r.u32()? as usize;
        wire::check_count(count, Kind::Input)?;
        wire::expect_len(
            rest,
            Kind::Input,
            count.checked_mul(8).and_then(|n| n.checked_add(20)),
        )?;
        let bodies = r.u64s(count)?;
        r.finish()?;
        Ok(InputCiphertext {
            param,
            seed,
            bodies,
        })
    }

    /// Expands the seeded list into full LWE ciphertexts (`count × (k·N + 1)` values).
    pub(crate) fn expand(&self) -> Vec<u64> {
        let p = self.param.params();
        let list = SeededLweCiphertextList::from_container(
            self.bodies.as_slice(),
            LweDimension(p.big_lwe_dimension()).to_lwe_size(),
            CompressionSeed::from(Seed(self.seed)),
            modulus(),
        );
        list.par_decompress_into_lwe_ciphertext_list()
            .into_container()
    }
}

impl OutputCiphertext {
    /// The parameter set.
    pub fn param(&self) -> ParamId {
        self.param
    }

    /// Number of encrypted activations.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Serializes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = wire::header(Kind::Output, self.param);
        out.extend_from_slice(&(self.count as u32).to_le_bytes());
        wire::put_u64s(&mut out, &self.data);
        out
    }

    /// Parses a server's answer (untrusted from the client's point of view).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (param, rest) = wire::read_header(bytes, Kind::Output)?;
        let p = param.params();
        let mut r = Reader::new(rest, Kind::Output);
        let count = r.u32()? as usize;
        wire::check_count(count, Kind::Output)?;
        let n = count.checked_mul(p.big_lwe_dimension() + 1);
        wire::expect_len(
            rest,
            Kind::Output,
            n.and_then(|n| n.checked_mul(8))
                .and_then(|n| n.checked_add(4)),
        )?;
        let data = r.u64s(n.unwrap_or(0))?;
        r.finish()?;
        Ok(OutputCiphertext { param, count, data })
    }
}

/// Parses bytes as whichever object their header says (for the fuzz target and diagnostics).
pub fn parse_any(bytes: &[u8]) -> Result<&'static str> {
    if bytes.len() < wire::HEADER_LEN {
        return Err(malformed("object", "shorter than the header"));
    }
    match bytes[6] {
        1 => CompressedServerKey::from_bytes(bytes).map(|_| "server key"),
        2 => InputCiphertext::from_bytes(bytes).map(|c| {
            // Expanding is cheap for small inputs and exercises the seeded decompression.
            if c.len() <= 64 {
                let _ = c.expand();
            }
            "input ciphertext"
        }),
        3 => OutputCiphertext::from_bytes(bytes).map(|_| "output ciphertext"),
        4 => ClientKey::from_bytes(bytes).map(|_| "client key"),
        k => Err(malformed("object", format!("unknown kind {k}"))),
    }
}
