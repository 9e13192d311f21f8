//! The gateway as its own process.
