//! How a watch's changes become writes to the inventory. Pure: the keeper passes the time in and
//! applies what this decides.

use serde_json::Value;

use super::owners::{controller_of, Controller};
use crate::clusters::ssr::{Change, ClusterError};

/// One object as the inventory holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The owner reference it marks as its controller: who owns it can be told without
    /// reading the text.
    pub controller: Option<Controller>,
    /// The object as JSON text, without what only bloats it.
    pub object: String,
}

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `object` as the inventory keeps it: without `managedFields` and the last-applied annotation.
/// `None` for an object without a uid (the apiserver gives every stored object one).
pub fn held(mut object: Value) -> Option<Held> {
    let metadata = object.get_mut("metadata")?.as_object_mut()?;
    metadata.remove("managedFields");
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_owned();
    let uid = text(metadata.get("uid"));
    if uid.is_empty() {
        return None;
    }
    let namespace = text(metadata.get("namespace"));
    let name = text(metadata.get("name"));
    let controller = metadata.get("ownerReferences").and_then(controller_of);
    let kind = text(object.get("kind"));
    Some(Held {
        uid,
        kind,
        namespace,
        name,
        controller,
        object: object.to_string(),
    })
}

/// A write to the inventory of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Hold this object, seen now.
    Put { held: Held, seen_ms: i64 },
    /// The object with this uid is gone.
    Remove { uid: String },
    /// A complete list of `kind` finished at `at_ms`: forget what the list started at
    /// `started_ms` did not name, and say the kind is readable.
    Listed {
        kind: String,
        started_ms: i64,
        at_ms: i64,
    },
    /// A change of `kind` arrived at `at_ms`.
    Changed { kind: String, at_ms: i64 },
    /// `kind` cannot be read now: why, and the rule that would let it (empty unless refused).
    Failed {
        kind: String,
        error: String,
        needs: String,
    },
}

/// Where a watch of one kind stands: when its current list started (`None`: no list yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub started_ms: Option<i64>,
}

/// The writes that `changes` of `kind`, arriving at `now_ms`, make.
pub fn writes(
    kind: &str,
    pass: &mut Pass,
    changes: Vec<Result<Change, ClusterError>>,
    now_ms: i64,
) -> Vec<Write> {
    let mut out = Vec::new();
    let mut changed = false;
    for change in changes {
        match change {
            Ok(Change::Restart) => pass.started_ms = Some(now_ms),
            Ok(Change::Listed(object)) => out.extend(held(object).map(|held| Write::Put {
                held,
                seen_ms: now_ms,
            })),
            Ok(Change::Synced) => {
                if let Some(started_ms) = pass.started_ms.take() {
                    out.push(Write::Listed {
                        kind: kind.to_owned(),
                        started_ms,
                        at_ms: now_ms,
                    });
                }
            }
            Ok(Change::Applied(object)) => {
                changed = true;
                out.extend(held(object).map(|held| Write::Put {
                    held,
                    seen_ms: now_ms,
                }));
            }
            Ok(Change::Deleted(object)) => {
                changed = true;
                if let Some(held) = held(object) {
                    out.push(Write::Remove { uid: held.uid });
                }
            }
            Err(err) => {
                let needs = match &err {
                    ClusterError::Api { code: 403, .. } => super::kinds::rule_for(kind),
                    _ => String::new(),
                };
                out.push(Write::Failed {
                    kind: kind.to_owned(),
                    error: err.to_string(),
                    needs,
                });
            }
        }
    }
    if changed {
        out.push(Write::Changed {
            kind: kind.to_owned(),
            at_ms: now_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(uid: &str, name: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": name, "namespace": "team", "uid": uid,
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {LAST_APPLIED: "{\"huge\": true}"},
            },
            "spec": {"replicas": 1},
        })
    }

    #[test]
    fn the_copy_leaves_out_managed_fields_and_the_last_applied_annotation() {
        let held = held(deployment("u1", "web")).unwrap();
        assert_eq!(
            (held.kind.as_str(), held.namespace.as_str()),
            ("Deployment", "team")
        );
        let object: Value = serde_json::from_str(&held.object).unwrap();
        assert!(
            object["metadata"].get("managedFields").is_none(),
            "{object}"
        );
        assert!(object["metadata"].get("annotations").is_none(), "{object}");
        assert_eq!(object["spec"]["replicas"], 1);
        assert_eq!(held.controller, None);
        // The controller among the owner references is kept beside the text.
        let mut owned = deployment("u3", "web-1");
        owned["metadata"]["ownerReferences"] = json!([
            {"kind": "Other", "name": "o", "uid": "x"},
            {"kind": "Deployment", "name": "web", "uid": "u1", "controller": true},
        ]);
        let controller = self::held(owned).unwrap().controller.unwrap();
        assert_eq!(
            (
                controller.uid.as_str(),
                controller.kind.as_str(),
                controller.name.as_str()
            ),
            ("u1", "Deployment", "web")
        );
        // Other annotations stay.
        let mut kept = deployment("u2", "api");
        kept["metadata"]["annotations"]["team"] = json!("payments");
        let object: Value = serde_json::from_str(&held_text(kept)).unwrap();
        assert_eq!(
            object["metadata"]["annotations"],
            json!({"team": "payments"})
        );
        // Without a uid there is nothing to key it by.
        assert!(super::held(json!({"metadata": {"name": "x"}})).is_none());
    }

    fn held_text(object: Value) -> String {
        held(object).unwrap().object
    }

    #[test]
    fn a_complete_list_forgets_what_it_did_not_name_and_changes_follow() {
        let mut pass = Pass::default();
        let first = writes(
            "Deployment",
            &mut pass,
            vec![
                Ok(Change::Restart),
                Ok(Change::Listed(deployment("u1", "web"))),
            ],
            100,
        );
        assert!(
            matches!(&first[..], [Write::Put { seen_ms: 100, .. }]),
            "{first:?}"
        );
        assert_eq!(pass.started_ms, Some(100));
        let done = writes("Deployment", &mut pass, vec![Ok(Change::Synced)], 130);
        assert_eq!(
            done,
            vec![Write::Listed {
                kind: "Deployment".into(),
                started_ms: 100,
                at_ms: 130
            }]
        );
        assert_eq!(pass.started_ms, None);
        let later = writes(
            "Deployment",
            &mut pass,
            vec![
                Ok(Change::Applied(deployment("u2", "api"))),
                Ok(Change::Deleted(deployment("u1", "web"))),
            ],
            200,
        );
        assert!(matches!(&later[0], Write::Put { held, seen_ms: 200 } if held.uid == "u2"));
        assert_eq!(later[1], Write::Remove { uid: "u1".into() });
        assert_eq!(
            later[2],
            Write::Changed {
                kind: "Deployment".into(),
                at_ms: 200
            }
        );
        // A `Synced` without a list under way (a watch resumed) forgets nothing.
        assert!(writes("Deployment", &mut pass, vec![Ok(Change::Synced)], 300).is_empty());
    }

    #[test]
    fn a_refusal_names_the_rule_that_is_missing() {
        let mut pass = Pass::default();
        let out = writes(
            "Ingress",
            &mut pass,
            vec![Err(ClusterError::Api {
                code: 403,
                message: "ingresses.networking.k8s.io is forbidden".into(),
            })],
            1,
        );
        let [Write::Failed { error, needs, .. }] = &out[..] else {
            panic!("{out:?}");
        };
        assert!(error.contains("403"), "{error}");
        assert_eq!(needs, "get, list, watch on \"networking.k8s.io\" ingresses");
        let out = writes(
            "Ingress",
            &mut pass,
            vec![Err(ClusterError::Unreachable("connection refused".into()))],
            2,
        );
        assert!(matches!(&out[..], [Write::Failed { needs, .. }] if needs.is_empty()));
    }
}
