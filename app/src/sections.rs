//! The sections of the product, as one table: navigation and the empty states both read it.
//!
//! A section that has no data yet says plainly what will appear there and how it gets there. It never
//! shows made-up numbers.

use crate::ui::{EmptyState, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

/// One entry of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// The URL path, e.g. `/policies`.
    pub href: &'static str,
    /// The name in the navigation and the page heading.
    pub title: &'static str,
    /// One sentence on what the section is for.
    pub purpose: &'static str,
    /// What the empty state says will appear here, and what makes it appear.
    pub empty: &'static str,
}

pub const OVERVIEW: Section = Section {
    href: "/",
    title: "Overview",
    purpose: "Posture across every cluster at a glance.",
    empty: "",
};

pub const POLICIES: Section = Section {
    href: "/policies",
    title: "Policies",
    purpose: "Author Pod Security, ValidatingAdmissionPolicy (CEL), Gatekeeper (Rego), NetworkPolicy and RBAC policies, with their test cases and versions.",
    empty: "No policies yet. Policies you write or import will be listed here with their engine, current version, test results and the mode they run in on each cluster.",
};

pub const LIBRARY: Section = Section {
    href: "/library",
    title: "Library",
    purpose: "Built-in policies for the common mistakes, each tagged with the controls it satisfies.",
    empty: "The built-in library is not installed yet. Its entries (run as non-root, no privileged containers, no :latest images, default-deny NetworkPolicy and more) will be listed here, ready to adopt as a policy.",
};

pub const ROLLOUTS: Section = Section {
    href: "/rollouts",
    title: "Rollouts",
    purpose: "Stage a policy through audit, warn and enforce, wave by wave, with approvals.",
    empty: "No rollouts yet. A rollout proposed for a policy version will appear here with its waves, approvals and the progress of each cluster.",
};

pub const EXCEPTIONS: Section = Section {
    href: "/exceptions",
    title: "Exceptions",
    purpose: "Leave a policy out for a namespace, a label selector or one resource, with a justification, a ticket and an expiry, approved by someone else.",
    empty: "No exceptions yet. An exception requested for a policy will be listed here with its scope, expiry and approval; once approved it is rendered into each engine's exclusion at the policy's next rollout.",
};

pub const VIOLATIONS: Section = Section {
    href: "/violations",
    title: "Violations",
    purpose: "What the clusters report back: audited, warned and denied requests, and scan findings.",
    empty: "No violations recorded. Once a cluster is connected and a policy runs on it, every audited, warned or denied request will be counted here by policy, cluster and namespace.",
};

pub const CLUSTERS: Section = Section {
    href: "/clusters",
    title: "Clusters",
    purpose: "The clusters Palisade pushes policies to, with their version, capabilities and health.",
    empty: "No clusters connected. A cluster you register will appear here with its environment, Kubernetes version, admission capabilities and health.",
};

pub const COMPLIANCE: Section = Section {
    href: "/compliance",
    title: "Compliance",
    purpose: "Posture per framework: CIS Kubernetes Benchmark, NSA/CISA, PCI-DSS and SOC 2.",
    empty: "Nothing to assess yet. Once policies run on clusters, each framework's controls will show here as covered, partly covered or missing, with evidence to export.",
};

pub const AUDIT_LOG: Section = Section {
    href: "/audit",
    title: "Audit log",
    purpose: "Who did what, when, and to what.",
    empty: "No entries yet. Every sign-in, policy change, approval, rollout and exception will be recorded here.",
};

pub const SETTINGS: Section = Section {
    href: "/settings",
    title: "Settings",
    purpose: "Single sign-on, roles, API tokens and notification settings.",
    empty: "Nothing to configure here yet. Single sign-on, role mapping from groups and API tokens will be managed on this page.",
};

/// Every section, in navigation order.
pub const SECTIONS: [&Section; 10] = [
    &OVERVIEW,
    &POLICIES,
    &LIBRARY,
    &ROLLOUTS,
    &EXCEPTIONS,
    &VIOLATIONS,
    &CLUSTERS,
    &COMPLIANCE,
    &AUDIT_LOG,
    &SETTINGS,
];

/// The page of a section that has no data of its own yet: heading, purpose and an honest empty state.
#[component]
pub fn SectionPage(section: &'static Section) -> impl IntoView {
    view! {
        <Title text=section.title />
        <PageHeader title={section.title} purpose={section.purpose} />
        <EmptyState message=section.empty />
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_a_unique_path_and_says_what_will_appear() {
        let mut hrefs: Vec<_> = SECTIONS.iter().map(|s| s.href).collect();
        hrefs.sort_unstable();
        hrefs.dedup();
        assert_eq!(hrefs.len(), SECTIONS.len());
        for section in SECTIONS.iter().filter(|s| s.href != "/") {
            assert!(section.href.starts_with('/'), "{}", section.title);
            assert!(
                section.empty.len() > 40,
                "{} needs a real empty state",
                section.title
            );
        }
    }
}
