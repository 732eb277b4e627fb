//! The mode model, shared with the server and the browser: it lives in `palisade-model`, so the
//! engine's [`Mode`] and the one a policy is staged with are the same type.

pub use palisade_model::mode::{Mode, PsaLabel, VapAction};

/// A mode name that is not `audit`, `warn` or `enforce`.
pub type ParseModeError = palisade_model::UnknownValue;
