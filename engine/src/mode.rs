//! The one mode model: every policy has a mode per target, and each engine renders it natively.
//!
//! | mode    | Pod Security Admission labels | ValidatingAdmissionPolicyBinding actions |
//! |---------|-------------------------------|------------------------------------------|
//! | audit   | `audit`                       | `[Audit]`                                |
//! | warn    | `warn`, `audit`               | `[Warn, Audit]`                          |
//! | enforce | `enforce`, `warn`, `audit`    | `[Deny, Audit]`                          |
//!
//! The apiserver refuses a binding that carries both `Deny` and `Warn`, so no mode renders that pair.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How hard a policy bites on one target. Ordered: `Audit < Warn < Enforce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Record violations only; nobody is told, nothing is blocked.
    Audit,
    /// Admit, but return a warning to the client, and record it.
    Warn,
    /// Reject the request, and record it.
    Enforce,
}

/// A Pod Security Admission namespace label mode (`pod-security.kubernetes.io/<mode>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PsaLabel {
    Enforce,
    Warn,
    Audit,
}

/// One entry of a ValidatingAdmissionPolicyBinding's `validationActions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VapAction {
    Deny,
    Warn,
    Audit,
}

impl Mode {
    /// Every mode, from the mildest to the strictest.
    pub const ALL: [Mode; 3] = [Mode::Audit, Mode::Warn, Mode::Enforce];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Audit => "audit",
            Mode::Warn => "warn",
            Mode::Enforce => "enforce",
        }
    }

    /// The Pod Security Admission label modes to set on a namespace for this mode, strictest first.
    pub fn psa_labels(self) -> &'static [PsaLabel] {
        match self {
            Mode::Audit => &[PsaLabel::Audit],
            Mode::Warn => &[PsaLabel::Warn, PsaLabel::Audit],
            Mode::Enforce => &[PsaLabel::Enforce, PsaLabel::Warn, PsaLabel::Audit],
        }
    }

    /// The `validationActions` of a ValidatingAdmissionPolicyBinding for this mode.
    pub fn vap_actions(self) -> &'static [VapAction] {
        match self {
            Mode::Audit => &[VapAction::Audit],
            Mode::Warn => &[VapAction::Warn, VapAction::Audit],
            Mode::Enforce => &[VapAction::Deny, VapAction::Audit],
        }
    }
}

impl PsaLabel {
    /// The full label key, e.g. `pod-security.kubernetes.io/enforce`.
    pub fn key(self) -> &'static str {
        match self {
            PsaLabel::Enforce => "pod-security.kubernetes.io/enforce",
            PsaLabel::Warn => "pod-security.kubernetes.io/warn",
            PsaLabel::Audit => "pod-security.kubernetes.io/audit",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not `audit`, `warn` or `enforce`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}`: expected one of audit, warn, enforce")]
pub struct ParseModeError(pub String);

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| ParseModeError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_ordered_from_mildest_to_strictest() {
        assert!(Mode::Audit < Mode::Warn && Mode::Warn < Mode::Enforce);
    }

    #[test]
    fn no_mode_combines_deny_and_warn_in_one_binding() {
        for mode in Mode::ALL {
            let actions = mode.vap_actions();
            assert!(
                !(actions.contains(&VapAction::Deny) && actions.contains(&VapAction::Warn)),
                "{mode} renders both Deny and Warn"
            );
        }
    }

    #[test]
    fn every_mode_audits_and_stricter_modes_keep_milder_labels() {
        for mode in Mode::ALL {
            assert!(
                mode.vap_actions().contains(&VapAction::Audit),
                "{mode} must audit"
            );
            assert!(
                mode.psa_labels().contains(&PsaLabel::Audit),
                "{mode} must audit"
            );
        }
        assert_eq!(Mode::Enforce.psa_labels().len(), 3);
        assert_eq!(
            Mode::Warn
                .psa_labels()
                .iter()
                .map(|l| l.key())
                .collect::<Vec<_>>(),
            [
                "pod-security.kubernetes.io/warn",
                "pod-security.kubernetes.io/audit"
            ]
        );
    }

    #[test]
    fn parses_its_own_names_and_rejects_others_with_the_choices() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        let err = "deny".parse::<Mode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown mode `deny`: expected one of audit, warn, enforce"
        );
    }
}
