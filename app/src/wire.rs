//! Enums written as text: [`wire_enum!`] from `palisade-model`, used by every wire enum of the app.

pub use palisade_model::wire::UnknownValue;
pub use palisade_model::wire_enum;
