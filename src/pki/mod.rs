//! The dev PKI in the SMKI Organisation profile (helper B fills this).
