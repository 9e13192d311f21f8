//! Certificate identity: User ID and SMKI role from a certificate (helper B fills this).
