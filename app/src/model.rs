//! The basic types every domain shares, from `palisade-model` (the engine uses the same ones):
//! which engine a policy runs on, how hard it bites, whether a cluster still holds what was
//! applied. They sit below every domain, so domains can name them without importing each other.

pub use palisade_model::{Drift, Engine, Mode};
