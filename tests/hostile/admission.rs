//! Admission bounds.
