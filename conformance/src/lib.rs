//! rtbus conformance.
