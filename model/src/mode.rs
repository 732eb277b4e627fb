//! The one mode model: every policy has a mode per target, and each engine renders it natively.
//!
//! | mode    | Pod Security Admission labels | ValidatingAdmissionPolicyBinding actions |
//! |---------|-------------------------------|------------------------------------------|
//! | audit   | `audit`                       | `[Audit]`                                |
//! | warn    | `warn`, `audit`               | `[Warn, Audit]`                          |
//! | enforce | `enforce`, `warn`, `audit`    | `[Deny, Audit]`                          |
//!
//! The apiserver refuses a binding that carries both `Deny` and `Warn`, so no mode renders that pair.

use serde::{Deserialize, Serialize};

use crate::wire_enum;

wire_enum! {
    /// How hard a policy bites on one target. Ordered: `Audit < Warn < Enforce`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Mode as "mode" {
        /// Record violations only; nobody is told, nothing is blocked.
        Audit = "audit",
        /// Admit, but return a warning to the client, and record it.
        Warn = "warn",
        /// Reject the request, and record it.
        Enforce = "enforce",
    }
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
