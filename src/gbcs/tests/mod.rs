//! Tests of the GBCS module: frames on the public samples and on generated input, signatures
//! against openssl, the use cases' content field by field, the SRV table against the mapping table.

mod frames;
