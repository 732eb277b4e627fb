//! What tells against a control: the checks it names, the open findings and the failing workloads
//! counted against it; and the names of frameworks and controls, in our words.

use palisade_engine::library::{Control, Framework};

/// The words a finding's message names when it concerns `control`, for the controls that one policy
/// serves together with others (Pod Security's levels serve a dozen CIS controls, the host
/// namespaces policy three): a finding counts against the control only when its message names one
/// of them, ignoring case. The messages are the engines' own (the apiserver's Pod Security reasons,
/// such as `host namespaces (hostPID=true)`, and the library policies' messages). Empty: every
/// finding of a serving policy counts.
pub fn control_checks(control: &Control) -> &'static [&'static str] {
    match (control.framework, control.id.as_str()) {
        (Framework::Cis, "5.2.2") => &["privileged"],
        (Framework::Cis, "5.2.3") => &["hostPID"],
        (Framework::Cis, "5.2.4") => &["hostIPC"],
        (Framework::Cis, "5.2.5") => &["hostNetwork"],
        (Framework::Cis, "5.2.6") => &["allowPrivilegeEscalation", "privilege escalation"],
        (Framework::Cis, "5.2.7") => &["runAsNonRoot", "runAsUser", "as root"],
        (Framework::Cis, "5.2.8") => &["capabilities", "NET_RAW"],
        (Framework::Cis, "5.2.9") => &["capabilities"],
        (Framework::Cis, "5.2.10") => &["capabilities"],
        (Framework::Cis, "5.2.11") => &["hostProcess"],
        (Framework::Cis, "5.2.12") => &["hostPath"],
        (Framework::Cis, "5.2.13") => &["hostPort"],
        (Framework::Cis, "5.7.2") => &["seccomp"],
        _ => &[],
    }
}

/// Does a finding with `message` concern a control whose checks are `words`?
pub fn concerns(words: &[&str], message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    words.is_empty()
        || words
            .iter()
            .any(|word| message.contains(&word.to_ascii_lowercase()))
}

/// An open finding on a cluster, as the posture weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The Palisade policy it is of; empty when Palisade did not deploy what reported it.
    pub policy_id: String,
    /// The name the engine reported (`pod-security:baseline` for Pod Security).
    pub policy: String,
    pub message: String,
    /// How many open violations read so (objects that fail alike).
    pub count: i64,
}

/// The policies deployed on a cluster that serve one control: those serving only this control of
/// the framework (`whole`: every finding of theirs counts) and those serving several (`by_check`:
/// a finding counts only when it names the control's checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    pub whole: Vec<String>,
    pub by_check: Vec<String>,
    /// Pod Security serves the control: the apiserver's own Pod Security findings from namespaces
    /// labelled outside Palisade count too, by check.
    pub pod_security: bool,
}

/// How many of a cluster's open findings tell against one control. So nine findings of
/// `privileged` count against "privileged containers" and not against "host namespaces", and a
/// hostPID workload in a namespace Palisade never labelled still counts against "host process
/// namespace".
pub fn findings_against(control: &Control, serving: &Serving, findings: &[Finding]) -> i64 {
    let words = control_checks(control);
    findings
        .iter()
        .filter(|f| {
            serving.whole.contains(&f.policy_id)
                || ((serving.by_check.contains(&f.policy_id)
                    || (serving.pod_security
                        && f.policy_id.is_empty()
                        && f.policy.starts_with("pod-security:")))
                    && concerns(words, &f.message))
        })
        .map(|f| f.count)
        .sum()
}

/// How many workloads fail one control in `assessment`: those that `serving` entries found, each
/// `(entry, words)` counting only findings whose message concerns `words` (all of them when
/// `words` is empty), and each workload once however many entries found it. Past the workloads
/// kept per entry and namespace, an entry counted whole adds its exact count.
pub fn failing_against(
    assessment: &crate::posture::Assessment,
    serving: &[(&str, &[&str])],
) -> i64 {
    let mut seen: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    let mut beyond = 0;
    for (id, words) in serving {
        let Some(entry) = assessment.entry(id) else {
            continue;
        };
        for namespace in &entry.namespaces {
            for failing in &namespace.failing {
                if concerns(words, &failing.message) {
                    seen.insert((namespace.namespace.as_str(), failing.workload.as_str()));
                }
            }
            if words.is_empty() {
                let kept = i64::try_from(namespace.failing.len()).unwrap_or(i64::MAX);
                beyond += (namespace.workloads - kept).max(0);
            }
        }
    }
    i64::try_from(seen.len()).unwrap_or(i64::MAX) + beyond
}

/// The framework's name as people say it.
pub fn framework_name(framework: Framework) -> &'static str {
    match framework {
        Framework::Cis => "CIS Kubernetes Benchmark",
        Framework::NsaCisa => "NSA/CISA Kubernetes Hardening Guide",
        Framework::PciDss => "PCI DSS",
        Framework::Soc2 => "SOC 2",
    }
}

/// A short title of a control, in our words; the id alone when we have none.
pub fn control_title(control: &Control) -> String {
    let title = match (control.framework, control.id.as_str()) {
        (Framework::Cis, "5.1.1") => "The cluster-admin role is used only where required",
        (Framework::Cis, "5.1.3") => "Wildcards in Roles and ClusterRoles are avoided",
        (Framework::Cis, "5.1.6") => "Service account tokens are mounted only where needed",
        (Framework::Cis, "5.2.1") => "An active policy control mechanism admits pods",
        (Framework::Cis, "5.2.2") => "Privileged containers are not admitted",
        (Framework::Cis, "5.2.3") => "Containers do not share the host's process namespace",
        (Framework::Cis, "5.2.4") => "Containers do not share the host's IPC namespace",
        (Framework::Cis, "5.2.5") => "Containers do not share the host's network namespace",
        (Framework::Cis, "5.2.6") => "Privilege escalation is not allowed",
        (Framework::Cis, "5.2.7") => "Containers do not run as root",
        (Framework::Cis, "5.2.8") => "The NET_RAW capability is not granted",
        (Framework::Cis, "5.2.9") => "No capabilities are added",
        (Framework::Cis, "5.2.10") => "Capabilities are dropped",
        (Framework::Cis, "5.2.11") => "Windows HostProcess containers are not admitted",
        (Framework::Cis, "5.2.12") => "HostPath volumes are not used",
        (Framework::Cis, "5.2.13") => "Host ports are not used",
        (Framework::Cis, "5.3.2") => "Every namespace has NetworkPolicies",
        (Framework::Cis, "5.4.1") => "Secrets are read as files, not environment variables",
        (Framework::Cis, "5.5.1") => "Image provenance is controlled",
        (Framework::Cis, "5.7.2") => "A seccomp profile is set",
        (Framework::Cis, "5.7.3") => "A security context is applied to pods and containers",
        (Framework::NsaCisa, "immutable-filesystems") => "Container filesystems are read-only",
        (Framework::NsaCisa, "network-policies") => "Network traffic is separated by policy",
        (Framework::NsaCisa, "non-root-containers") => "Containers run as non-root users",
        (Framework::NsaCisa, "pod-security-enforcement") => "Pod security is enforced",
        (Framework::NsaCisa, "rbac") => "Access follows least privilege",
        (Framework::NsaCisa, "resource-policies") => "Resource use is limited",
        (Framework::NsaCisa, "secrets") => "Secrets are protected",
        (Framework::NsaCisa, "secure-images") => "Images come from trusted sources",
        (Framework::NsaCisa, "service-account-tokens") => "Service account tokens are limited",
        (Framework::PciDss, "1.3.2") => "Outbound traffic from sensitive systems is restricted",
        (Framework::PciDss, "12.5.1") => "An inventory of system components is kept",
        (Framework::PciDss, "2.2.6") => "System security parameters prevent misuse",
        (Framework::PciDss, "7.2.2") => "Access is granted by job function",
        (Framework::PciDss, "7.2.5") => "System accounts have the least privilege needed",
        (Framework::PciDss, "8.6.2") => "No passwords are hard-coded in configuration",
        (Framework::Soc2, "A1.1") => "Capacity is managed",
        (Framework::Soc2, "CC6.1") => "Logical access to systems is secured",
        (Framework::Soc2, "CC6.3") => "Access is granted by role",
        (Framework::Soc2, "CC6.6") => "System boundaries are protected",
        (Framework::Soc2, "CC6.8") => "Unauthorised software is prevented",
        (Framework::Soc2, "CC8.1") => "Changes are authorised and tested",
        _ => "",
    };
    if title.is_empty() {
        control.to_string()
    } else {
        title.to_owned()
    }
}

/// Orders control ids numerically where they are numbers (`5.2.10` after `5.2.9`).
pub(super) fn control_key(id: &str) -> Vec<(u64, String)> {
    id.split('.')
        .map(|part| match part.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, part.to_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A namespace of an entry's result: its name, failing workloads, and `(workload, message)`.
    type Namespace<'a> = (&'a str, i64, &'a [(&'a str, &'a str)]);

    fn assessed(entries: &[(&str, &[Namespace<'_>])]) -> crate::posture::Assessment {
        use crate::posture::{EntryPosture, Failing, NamespacePosture};
        crate::posture::Assessment {
            cluster_id: "c".to_owned(),
            cluster_name: "c".to_owned(),
            assessed_ms: 1,
            objects: 9,
            complete: true,
            entries: entries
                .iter()
                .map(|(entry, namespaces)| EntryPosture {
                    entry: (*entry).to_owned(),
                    title: String::new(),
                    controls: Vec::new(),
                    workloads: namespaces.iter().map(|n| n.1).sum(),
                    namespaces: namespaces
                        .iter()
                        .map(|(namespace, workloads, failing)| NamespacePosture {
                            namespace: (*namespace).to_owned(),
                            workloads: *workloads,
                            failing: failing
                                .iter()
                                .map(|(w, m)| Failing {
                                    workload: (*w).to_owned(),
                                    message: (*m).to_owned(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
            not_evaluable: Vec::new(),
        }
    }

    #[test]
    fn an_assessment_counts_against_a_control_by_its_checks_and_each_workload_once() {
        let assessment = assessed(&[
            (
                "disallow-privileged",
                &[("shop", 1, &[("Deployment/web", "privileged")])],
            ),
            (
                "pod-security-baseline",
                &[
                    (
                        "ops",
                        2,
                        &[
                            ("Pod/agent", "host namespaces (hostPID=true)"),
                            ("Pod/tool", "host namespaces (hostPID=true)"),
                        ],
                    ),
                    (
                        "shop",
                        1,
                        &[("Deployment/web", "privileged (container \"c\")")],
                    ),
                ],
            ),
            // More failing than kept: the rest is counted from the exact number.
            ("require-labels", &[("shop", 30, &[("Pod/a", "no labels")])]),
        ]);
        assert_eq!(
            failing_against(&assessment, &[("pod-security-baseline", &["hostPID"])]),
            2
        );
        // Privileged: the workload both entries found is one.
        assert_eq!(
            failing_against(
                &assessment,
                &[
                    ("disallow-privileged", &[]),
                    ("pod-security-baseline", &["privileged"])
                ]
            ),
            1
        );
        assert_eq!(
            failing_against(&assessment, &[("disallow-privileged", &[])]),
            1
        );
        assert_eq!(failing_against(&assessment, &[("require-labels", &[])]), 30);
        assert_eq!(failing_against(&assessment, &[("nothing-here", &[])]), 0);
    }

    fn finding(policy_id: &str, policy: &str, message: &str) -> Finding {
        Finding {
            policy_id: policy_id.into(),
            policy: policy.into(),
            message: message.into(),
            count: 1,
        }
    }

    fn cis(id: &str) -> Control {
        Control {
            framework: Framework::Cis,
            id: id.into(),
        }
    }

    #[test]
    fn findings_count_against_the_controls_whose_checks_they_name() {
        // Pod Security baseline (policy p-pss) serves many controls; nine findings, all of the
        // privileged check.
        let privileged = finding(
            "p-pss",
            "pod-security:baseline",
            "violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)",
        );
        let nine = vec![privileged; 9];
        let pss = Serving {
            by_check: vec!["p-pss".into()],
            pod_security: true,
            ..Serving::default()
        };
        assert_eq!(findings_against(&cis("5.2.2"), &pss, &nine), 9);
        assert_eq!(findings_against(&cis("5.2.3"), &pss, &nine), 0);
        assert_eq!(findings_against(&cis("5.2.12"), &pss, &nine), 0);
        // 5.2.1 (a policy mechanism admits pods) is served as a whole: every finding counts.
        assert_eq!(findings_against(&cis("5.2.1"), &pss, &nine), 9);

        // A hostPID workload in a namespace Palisade never labelled (the apiserver reports it
        // under its own name): it tells against "host process namespace" wherever Pod Security
        // serves the control, even though Palisade's enforce deployment is clean.
        let elsewhere = vec![finding(
            "",
            "pod-security:baseline",
            "would violate PodSecurity \"baseline:latest\": host namespaces (hostPID=true)",
        )];
        assert_eq!(findings_against(&cis("5.2.3"), &pss, &elsewhere), 1);
        assert_eq!(findings_against(&cis("5.2.5"), &pss, &elsewhere), 0);
        let not_pss = Serving {
            by_check: vec!["p-hostns".into()],
            ..Serving::default()
        };
        assert_eq!(findings_against(&cis("5.2.3"), &not_pss, &elsewhere), 0);

        // A policy that serves one control counts every finding of its own, whatever it says.
        let single = Serving {
            whole: vec!["p-priv".into()],
            ..Serving::default()
        };
        let own = vec![finding("p-priv", "disallow-privileged", "not allowed")];
        assert_eq!(findings_against(&cis("5.2.2"), &single, &own), 1);
        // Findings of policies that do not serve the control never count.
        assert_eq!(findings_against(&cis("5.2.2"), &pss, &own), 0);
    }

    #[test]
    fn every_tagged_control_has_a_title_and_ids_sort_as_numbers() {
        for entry in crate::policies::ssr::library::entries().unwrap() {
            for control in &entry.controls {
                assert_ne!(
                    control_title(control),
                    control.to_string(),
                    "no title for {control}"
                );
            }
        }
        let mut ids = vec!["5.2.10", "5.2.9", "5.1.1", "A1.1", "CC6.1"];
        ids.sort_by_key(|id| control_key(id));
        assert_eq!(ids, ["5.1.1", "5.2.9", "5.2.10", "A1.1", "CC6.1"]);
    }
}
