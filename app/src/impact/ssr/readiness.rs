//! Pod Security readiness per namespace: the strictest level (at `latest`) a namespace could
//! enforce today with nothing denied, what keeps it from the next level — each workload (top
//! owner) and the checks it fails — and the newest Pod Security version at which that next level
//! would already deny nothing (pinning `enforce-version` there is a step up that breaks
//! nothing). Pods and pod templates are both checked, and nothing is capped by count. Pure.

use std::collections::{BTreeMap, BTreeSet};

use palisade_engine::bundle::SYSTEM_NAMESPACES;
use palisade_engine::pss::{self, Level, LevelVersion, Version, NEWEST_MINOR};
use serde_json::Value;

use crate::impact::{Blocker, NamespaceReadiness};
use crate::inventory::ssr::owners::{Owner, Owners};
use crate::inventory::ssr::text_at;

/// Blockers listed per namespace at most (the count of blocking workloads stays exact).
const BLOCKERS: usize = 50;

fn at(level: Level) -> LevelVersion {
    LevelVersion {
        level,
        version: Version::Latest,
    }
}

/// What fails `level` in `object`: `(check id, reason (detail))`; empty when it passes or has no
/// pod template.
fn failures(lv: LevelVersion, object: &Value) -> Vec<(&'static str, String)> {
    let result = if object["kind"] == "Pod" {
        Some(pss::check_pod(
            lv,
            object.get("metadata").unwrap_or(&Value::Null),
            object.get("spec").unwrap_or(&Value::Null),
        ))
    } else {
        pss::check_object(lv, object)
    };
    result
        .map(|r| {
            r.forbidden
                .into_iter()
                .map(|f| {
                    let text = if f.detail.is_empty() {
                        f.reason.to_owned()
                    } else {
                        format!("{} ({})", f.reason, f.detail)
                    };
                    (f.check_id, text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Readiness of every namespace among `objects` (one cluster's inventory), system namespaces
/// left out, by name.
pub fn readiness(objects: &[Value]) -> Vec<NamespaceReadiness> {
    let mut owners = Owners::default();
    for object in objects {
        owners.learn(object);
    }
    // namespace → level → owner → (objects, failures)
    type Failing = BTreeMap<Owner, (BTreeSet<String>, BTreeSet<String>)>;
    // namespace → (workloads, failing per level, objects with a pod template)
    type Namespace<'a> = (BTreeSet<Owner>, [Failing; 2], Vec<&'a Value>);
    let mut namespaces: BTreeMap<String, Namespace> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| !SYSTEM_NAMESPACES.contains(n))
        .map(|n| (n.to_owned(), Default::default()))
        .collect();
    for object in objects {
        let Some(namespace) = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let Some((workloads, failing, templated)) = namespaces.get_mut(namespace) else {
            continue;
        };
        if pss::pod_template(object).is_none() {
            continue;
        }
        templated.push(object);
        let text = |pointer: &str| text_at(object, pointer).to_owned();
        let owner = owners.top(&text("/metadata/uid")).unwrap_or(Owner {
            kind: text("/kind"),
            name: text("/metadata/name"),
        });
        workloads.insert(owner.clone());
        for (i, level) in [Level::Baseline, Level::Restricted].into_iter().enumerate() {
            let failed = failures(at(level), object);
            if failed.is_empty() {
                continue;
            }
            let entry = failing[i].entry(owner.clone()).or_default();
            entry
                .0
                .insert(format!("{}/{}", text("/kind"), text("/metadata/name")));
            entry.1.extend(failed.into_iter().map(|(_, text)| text));
        }
    }
    namespaces
        .into_iter()
        .map(
            |(namespace, (workloads, [baseline, restricted], templated))| {
                let (ready, next, blocking) = if !baseline.is_empty() {
                    (Level::Privileged, Some(Level::Baseline), baseline)
                } else if !restricted.is_empty() {
                    (Level::Baseline, Some(Level::Restricted), restricted)
                } else {
                    (Level::Restricted, None, BTreeMap::new())
                };
                let next_version = next
                    .and_then(|level| passes_at(level, &templated))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                NamespaceReadiness {
                    namespace,
                    ready: ready.as_str().to_owned(),
                    next: next.map(|l| l.as_str().to_owned()).unwrap_or_default(),
                    next_version,
                    workloads: i64::try_from(workloads.len()).unwrap_or(i64::MAX),
                    blocking: i64::try_from(blocking.len()).unwrap_or(i64::MAX),
                    blockers: blocking
                        .into_iter()
                        .take(BLOCKERS)
                        .map(|(owner, (objects, checks))| Blocker {
                            owner_kind: owner.kind,
                            owner_name: owner.name,
                            objects: i64::try_from(objects.len()).unwrap_or(i64::MAX),
                            checks: checks.into_iter().collect(),
                        })
                        .collect(),
                }
            },
        )
        .collect()
}

/// The newest version below `latest` at which every object passes `level`, if any. Each version
/// is checked in full (versions also relax rules, e.g. allow more sysctls, so passing a newer
/// version says nothing of an older one).
fn passes_at(level: Level, objects: &[&Value]) -> Option<Version> {
    (0..NEWEST_MINOR)
        .rev()
        .map(Version::Minor)
        .find(|&version| {
            let lv = LevelVersion::new(level, version);
            objects.iter().all(|object| failures(lv, object).is_empty())
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn namespace(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": format!("ns-{name}")}})
    }

    fn pod(
        namespace: &str,
        name: &str,
        security: Value,
        owner: Option<(&str, &str, &str)>,
    ) -> Value {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("{namespace}-{name}")},
            "spec": {"containers": [{"name": "c", "image": "i", "securityContext": security}]}});
        if let Some((kind, name, uid)) = owner {
            pod["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": name, "uid": uid, "controller": true}]);
        }
        pod
    }

    fn hardened() -> Value {
        json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false,
               "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    }

    #[test]
    fn each_namespace_gets_the_strictest_level_nothing_fails_and_its_blockers() {
        let objects = vec![
            namespace("locked"),
            namespace("plain"),
            namespace("wild"),
            namespace("kube-system"),
            namespace("empty"),
            pod("locked", "a", hardened(), None),
            pod("plain", "b", json!({}), None),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "wild", "uid": "d1"},
                   "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]}}}}),
            pod(
                "wild",
                "web-1",
                json!({"privileged": true}),
                Some(("Deployment", "web", "d1")),
            ),
            pod("kube-system", "etcd", json!({"privileged": true}), None),
        ];
        let got = readiness(&objects);
        let summary: Vec<(&str, &str, &str, i64)> = got
            .iter()
            .map(|n| {
                (
                    n.namespace.as_str(),
                    n.ready.as_str(),
                    n.next.as_str(),
                    n.blocking,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("empty", "restricted", "", 0),
                ("locked", "restricted", "", 0),
                ("plain", "baseline", "restricted", 1),
                ("wild", "privileged", "baseline", 1),
            ]
        );
        let wild = &got[3];
        let web = &wild.blockers[0];
        assert_eq!(
            (
                web.owner_kind.as_str(),
                web.owner_name.as_str(),
                web.objects
            ),
            ("Deployment", "web", 2)
        );
        assert!(
            web.checks.iter().any(|c| c.starts_with("privileged")),
            "{:?}",
            web.checks
        );
        let plain = &got[2].blockers[0];
        assert!(
            plain.checks.iter().any(|c| c.contains("runAsNonRoot")),
            "{:?}",
            plain.checks
        );
        // A privileged container fails baseline at every version; an unhardened one fails
        // restricted at every version too (restricted always required non-root).
        assert_eq!(got[3].next_version, "");
        assert_eq!(got[2].next_version, "");
    }

    #[test]
    fn the_newest_version_where_the_next_level_already_passes_is_named() {
        // Hardened but without a seccomp profile (restricted requires one from v1.19) and
        // without dropping capabilities (from v1.22): restricted passes up to v1.18.
        let loose = json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false});
        let objects = vec![namespace("old"), pod("old", "a", loose, None)];
        let got = readiness(&objects);
        assert_eq!(
            (
                got[0].ready.as_str(),
                got[0].next.as_str(),
                got[0].next_version.as_str()
            ),
            ("baseline", "restricted", "v1.18")
        );
        // Held to the engine: at that version nothing fails, at the next one something does.
        let pod = &objects[1];
        assert!(failures(
            LevelVersion::new(Level::Restricted, Version::Minor(18)),
            pod
        )
        .is_empty());
        assert!(!failures(
            LevelVersion::new(Level::Restricted, Version::Minor(19)),
            pod
        )
        .is_empty());
    }
}
