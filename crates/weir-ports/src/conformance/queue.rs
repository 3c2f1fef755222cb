//! Queue conformance suite (to be written).
