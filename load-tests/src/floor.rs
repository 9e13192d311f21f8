//! The crypto floor: what the cryptography a request needs costs on this machine, measured in the
//! same run with the same library the gateway uses (ring): the ECDSA P-256 verifications a
//! request needs (its signature; for a critical pair, both requests' and the User's signature on
//! the pre-command) and the signatures the gateway makes for it (the answer's; with routing, also
//! the command to the hub and the asynchronous response). SHA-256 of the body and
//! canonicalisation are not in the floor: they are the gateway's own work.

use std::time::Instant;

use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error("ring could not make or use a P-256 key")]
    Ring,
}

/// Microseconds per operation, single thread.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct CryptoFloor {
    pub verify_us: f64,
    pub sign_us: f64,
    pub signs_per_request: f64,
    pub verifies_per_request: f64,
    /// `verifies_per_request × verify_us + signs_per_request × sign_us`.
    pub floor_us: f64,
    pub iterations: u32,
}

/// Times `iterations` signatures and verifications over a 32-byte message (what ECDSA signs is
/// a digest; the message length does not matter beyond one hash block).
pub fn measure(
    iterations: u32,
    verifies_per_request: f64,
    signs_per_request: f64,
) -> Result<CryptoFloor, FloorError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| FloorError::Ring)?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| FloorError::Ring)?;
    let public =
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref().to_vec());
    let message = [0x5Au8; 32];
    let iterations = iterations.max(1);
    // Warm up caches and the CPU's clock.
    let sig = key.sign(&rng, &message).map_err(|_| FloorError::Ring)?;
    let t = Instant::now();
    let mut last = sig;
    for _ in 0..iterations {
        last = key.sign(&rng, &message).map_err(|_| FloorError::Ring)?;
    }
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    let t = Instant::now();
    for _ in 0..iterations {
        public
            .verify(&message, last.as_ref())
            .map_err(|_| FloorError::Ring)?;
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    Ok(CryptoFloor {
        verify_us,
        sign_us,
        signs_per_request,
        verifies_per_request,
        floor_us: verifies_per_request * verify_us + signs_per_request * sign_us,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_adds_one_verify_and_the_signatures() {
        let f = measure(20, 1.0, 2.2).unwrap();
        assert!(f.verify_us > 0.0 && f.sign_us > 0.0);
        let expected = f.verify_us + 2.2 * f.sign_us;
        assert!((f.floor_us - expected).abs() < 1e-9);
        assert!((f.signs_per_request - 2.2).abs() < 1e-12);
    }

    #[test]
    fn floor_counts_every_verification() {
        let f = measure(20, 1.5, 2.0).unwrap();
        let expected = 1.5 * f.verify_us + 2.0 * f.sign_us;
        assert!((f.floor_us - expected).abs() < 1e-9);
        assert!((f.verifies_per_request - 1.5).abs() < 1e-12);
    }
}
