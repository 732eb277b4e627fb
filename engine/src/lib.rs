//! Palisade's policy engine.
//!
//! This crate is pure: no I/O, no clock, no network. It holds the parts of Palisade that decide what a
//! policy means (today the mode model; CEL, Rego and the Pod Security checks arrive with their own
//! issues), so they can be unit-tested, benchmarked and later compiled to the browser on their own.

pub mod mode;

pub use mode::{Mode, ParseModeError, PsaLabel, VapAction};
