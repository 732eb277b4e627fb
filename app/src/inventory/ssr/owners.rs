//! Who owns what: a Pod belongs to its ReplicaSet, which belongs to its Deployment; a Job to its
//! CronJob. Results name the top owner, the workload a team writes and owns. Pure.

use std::collections::HashMap;

use serde_json::Value;

use super::changes::Held;

/// An object's place in the ownership tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: String,
    name: String,
    controller: Option<Controller>,
}

/// The owner reference an object marks as its controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controller {
    pub uid: String,
    pub kind: String,
    pub name: String,
}

/// The controller among an object's `ownerReferences`, if they name one (with a uid: the
/// apiserver refuses a reference without). Control characters are left out of what it names,
/// as no real name holds one (the inventory joins its columns with some).
pub fn controller_of(owner_references: &Value) -> Option<Controller> {
    let text = |value: &Value| {
        let text = value.as_str().unwrap_or_default();
        text.chars().filter(|c| !c.is_control()).collect()
    };
    owner_references
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"] == true && r["uid"].as_str().is_some_and(|u| !u.is_empty()))
        .map(|r| Controller {
            uid: text(&r["uid"]),
            kind: text(&r["kind"]),
            name: text(&r["name"]),
        })
}

/// The top owner of an object: the kind and name of the workload it belongs to (itself when
/// nothing controls it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// Ownership of one cluster's objects, by uid.
#[derive(Debug, Default)]
pub struct Owners {
    nodes: HashMap<String, Node>,
}

/// How many owners up a chain is followed: real chains are two or three long; a longer one is
/// a loop or a mistake, and ends there.
const DEPTH: usize = 8;

impl Owners {
    /// Room for `objects` more without growing.
    pub fn reserve(&mut self, objects: usize) {
        self.nodes.reserve(objects);
    }

    /// Learn `object`'s identity and its controller.
    pub fn learn(&mut self, object: &Value) {
        let metadata = &object["metadata"];
        let Some(uid) = metadata["uid"].as_str() else {
            return;
        };
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        self.nodes.insert(
            uid.to_owned(),
            Node {
                kind: text(&object["kind"]),
                name: text(&metadata["name"]),
                controller: controller_of(&metadata["ownerReferences"]),
            },
        );
    }

    /// Learn an object from what the inventory keeps beside its text, without reading the text:
    /// the same as [`Owners::learn`] on the object (which passes over an object without a uid).
    pub fn learn_held(&mut self, held: &Held) {
        if held.uid.is_empty() {
            return;
        }
        self.nodes.insert(
            held.uid.clone(),
            Node {
                kind: held.kind.clone(),
                name: held.name.clone(),
                controller: held.controller.clone(),
            },
        );
    }

    /// The top owner of the object with `uid`, or `None` when it was never learnt.
    pub fn top(&self, uid: &str) -> Option<Owner> {
        let mut node = self.nodes.get(uid)?;
        let mut owner = Owner {
            kind: node.kind.clone(),
            name: node.name.clone(),
        };
        for _ in 0..DEPTH {
            let Some(Controller { uid, kind, name }) = &node.controller else {
                break;
            };
            // An owner Palisade does not hold (a Node for a static Pod, a custom resource) is
            // still the owner, named by the reference.
            owner = Owner {
                kind: kind.clone(),
                name: name.clone(),
            };
            match self.nodes.get(uid) {
                Some(next) => node = next,
                None => break,
            }
        }
        Some(owner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(kind: &str, name: &str, uid: &str, owner: Option<(&str, &str, &str)>) -> Value {
        let mut value = json!({"kind": kind, "metadata": {"name": name, "uid": uid}});
        if let Some((kind, name, uid)) = owner {
            value["metadata"]["ownerReferences"] = json!([
                {"kind": "Other", "name": "not-the-controller", "uid": "x"},
                {"kind": kind, "name": name, "uid": uid, "controller": true},
            ]);
        }
        value
    }

    #[test]
    fn a_controller_needs_a_uid_and_is_named_without_control_characters() {
        let refs = json!([
            {"kind": "ReplicaSet", "name": "no-uid", "controller": true},
            {"kind": "Replica\u{1f}Set", "name": "we\u{1e}b-1", "uid": "r1", "controller": true},
        ]);
        assert_eq!(
            controller_of(&refs),
            Some(Controller {
                uid: "r1".into(),
                kind: "ReplicaSet".into(),
                name: "web-1".into()
            })
        );
        assert_eq!(controller_of(&json!([{"name": "x", "uid": "y"}])), None);
    }

    #[test]
    fn pods_and_jobs_are_named_by_the_workload_that_owns_them() {
        let mut owners = Owners::default();
        // Kind, name and uid of each object, and `kind/name/uid` of the controller that owns it.
        for (kind, name, uid, controller) in [
            ("Deployment", "web", "d1", ""),
            ("ReplicaSet", "web-5d9", "r1", "Deployment/web/d1"),
            ("Pod", "web-5d9-abc", "p1", "ReplicaSet/web-5d9/r1"),
            ("CronJob", "backup", "c1", ""),
            ("Job", "backup-290", "j1", "CronJob/backup/c1"),
            ("Pod", "backup-290-x", "p2", "Job/backup-290/j1"),
            ("Pod", "etcd-node1", "p3", "Node/node1/n1"),
            ("Pod", "alone", "p4", ""),
        ] {
            let mut parts = controller.splitn(3, '/');
            let controller = parts.next().zip(parts.next()).zip(parts.next());
            owners.learn(&object(
                kind,
                name,
                uid,
                controller.map(|((kind, name), uid)| (kind, name, uid)),
            ));
        }
        let top = |uid: &str| owners.top(uid).map(|o| format!("{}/{}", o.kind, o.name));
        assert_eq!(top("p1").as_deref(), Some("Deployment/web"));
        assert_eq!(top("r1").as_deref(), Some("Deployment/web"));
        assert_eq!(top("d1").as_deref(), Some("Deployment/web"));
        assert_eq!(top("p2").as_deref(), Some("CronJob/backup"));
        assert_eq!(top("p3").as_deref(), Some("Node/node1"));
        assert_eq!(top("p4").as_deref(), Some("Pod/alone"));
        assert_eq!(top("unknown"), None);
    }

    #[test]
    fn a_loop_of_owners_ends() {
        let mut owners = Owners::default();
        owners.learn(&object(
            "ReplicaSet",
            "a",
            "a",
            Some(("ReplicaSet", "b", "b")),
        ));
        owners.learn(&object(
            "ReplicaSet",
            "b",
            "b",
            Some(("ReplicaSet", "a", "a")),
        ));
        assert!(owners.top("a").is_some());
    }
}
