//! Outbound messages signed off the async workers, a few at a time: a batch of Service
//! Responses or alerts (up to 256) would otherwise hold one worker for ~10 ms.

use super::Replies;
use crate::offload::CHUNK;
use crate::xmldsig;

impl Replies {
    /// Each document signed, in order (`None`: it could not be, and the operator is told),
    /// [`CHUNK`] documents per offloaded job.
    pub(super) async fn sign_all(&self, docs: &[&str]) -> Vec<Option<Vec<u8>>> {
        let offload = self.gateway.offload();
        let mut signed = Vec::with_capacity(docs.len());
        for chunk in docs.chunks(CHUNK) {
            let part = offload
                .run(|| chunk.iter().map(|xml| self.sign(xml)).collect::<Vec<_>>())
                .await;
            signed.extend(part);
        }
        signed
    }

    pub(super) fn sign(&self, xml: &str) -> Option<Vec<u8>> {
        let (key, limits) = (self.gateway.signer(), self.gateway.c14n_limits());
        match xmldsig::sign_document(xml, key, limits) {
            Ok(signed) => Some(signed.into_bytes()),
            Err(e) => {
                tracing::error!(error = %e, "Signing an outbound message failed; check the DCC signing key.");
                None
            }
        }
    }
}
