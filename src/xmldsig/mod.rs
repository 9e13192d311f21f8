//! XML signatures as DUIS uses them (enveloped, exclusive c14n, SHA-256, ECDSA P-256).
pub mod c14n;
