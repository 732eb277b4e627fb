//! The kinds the inventory keeps: everything a policy in Palisade can match.

/// `(apiVersion, kind, plural)`, namespaces first (their labels decide what namespace selectors
/// match), then workloads, networking, identities and RBAC.
pub const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "namespaces"),
    ("v1", "Pod", "pods"),
    ("apps/v1", "Deployment", "deployments"),
    ("apps/v1", "ReplicaSet", "replicasets"),
    ("apps/v1", "StatefulSet", "statefulsets"),
    ("apps/v1", "DaemonSet", "daemonsets"),
    ("batch/v1", "Job", "jobs"),
    ("batch/v1", "CronJob", "cronjobs"),
    ("v1", "ReplicationController", "replicationcontrollers"),
    ("v1", "Service", "services"),
    ("networking.k8s.io/v1", "Ingress", "ingresses"),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ("v1", "ServiceAccount", "serviceaccounts"),
    ("rbac.authorization.k8s.io/v1", "Role", "roles"),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
    ),
];

/// The apiVersion of a kept kind.
pub fn api_version_of(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|k| k.1 == kind).map(|k| k.0)
}

/// The RBAC rule that reading `kind` needs, as an operator writes it in a ClusterRole:
/// `get, list, watch on "apps" deployments` (`""` is the core group).
pub fn rule_for(kind: &str) -> String {
    let Some((api_version, _, plural)) = KINDS.iter().find(|k| k.1 == kind) else {
        return String::new();
    };
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    format!("get, list, watch on \"{group}\" {plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_kept_once_and_names_its_rule() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "a kind is listed twice");
        assert_eq!(
            rule_for("Deployment"),
            "get, list, watch on \"apps\" deployments"
        );
        assert_eq!(rule_for("Pod"), "get, list, watch on \"\" pods");
        assert_eq!(rule_for("Secret"), "");
        // Every workload kind a scan reads is kept.
        for (api_version, kind) in palisade_engine::pss::WORKLOAD_KINDS {
            assert_eq!(api_version_of(kind), Some(*api_version), "{kind}");
        }
    }
}
