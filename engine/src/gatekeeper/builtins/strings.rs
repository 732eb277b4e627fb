use super::Builtin;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[];
