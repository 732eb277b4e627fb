//! The cluster pages: the list with the registration form (`/clusters`), and one cluster's page
//! (`/clusters/:id`) with what runs there and what it reports.

mod detail;
mod list;
mod posture;

pub use detail::ClusterPage;
pub use list::{webhook_kubeconfig, ClustersPage};

use super::Capabilities;

/// The names of the admission APIs a cluster serves, in a fixed order, each with whether it is
/// there and what it means for Palisade.
pub fn capability_list(capabilities: &Capabilities) -> [(&'static str, bool, &'static str); 4] {
    [
        (
            "ValidatingAdmissionPolicy",
            capabilities.validating_admission_policy,
            "Pod Security and CEL policies are enforced by the apiserver itself.",
        ),
        (
            "Gatekeeper",
            capabilities.gatekeeper,
            "Rego policies (ConstraintTemplates and constraints) can be rolled out here.",
        ),
        (
            "Kyverno",
            capabilities.kyverno,
            "Kyverno's policy API is installed.",
        ),
        (
            "PolicyReports",
            capabilities.policy_reports,
            "Engines report their findings as PolicyReports.",
        ),
    ]
}

/// The capabilities a cluster has, by name, or "none detected".
pub fn capability_names(capabilities: &Capabilities) -> String {
    let names: Vec<&str> = capability_list(capabilities)
        .into_iter()
        .filter(|(_, present, _)| *present)
        .map(|(name, _, _)| name)
        .collect();
    if names.is_empty() {
        "none detected".to_owned()
    } else {
        names.join(", ")
    }
}

/// Labels as the forms write them: `key=value, key=value`.
pub fn labels_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_named_in_order_or_none() {
        let none = Capabilities::default();
        assert_eq!(capability_names(&none), "none detected");
        let some = Capabilities {
            gatekeeper: true,
            validating_admission_policy: true,
            ..Capabilities::default()
        };
        assert_eq!(
            capability_names(&some),
            "ValidatingAdmissionPolicy, Gatekeeper"
        );
    }

    #[test]
    fn labels_read_back_as_the_form_writes_them() {
        let labels = super::super::parse_labels("tier=1, team=payments").unwrap_or_default();
        assert_eq!(labels_text(&labels), "team=payments, tier=1");
        assert_eq!(
            super::super::parse_labels(&labels_text(&labels)).ok(),
            Some(labels)
        );
    }
}
