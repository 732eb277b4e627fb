//! Copies of one pod template: judged once by what the policies read, each copy still named.

use super::*;

/// An approved exception for policy `p1` that covers `scope` until far ahead.
fn exception(scope: crate::exceptions::Scope) -> crate::exceptions::Exception {
    use crate::exceptions::{Exception, ExceptionState};
    Exception::example("e1", "p1", scope, ExceptionState::Approved, i64::MAX)
}

#[test]
fn copies_of_one_pod_template_are_judged_once_with_each_copy_named() {
    // Each object of the varied inventory, and three copies of it under other names and uids
    // (the Pods of one ReplicaSet), the last with a label of its own too.
    let mut objects = Vec::new();
    for object in varied_inventory() {
        let has_uid = object["metadata"]["uid"].is_string();
        objects.push(object.clone());
        for copy in 0..3 {
            let mut object = object.clone();
            if has_uid {
                let name = format!("{}-{copy}", object["metadata"]["name"].as_str().unwrap());
                object["metadata"]["name"] = json!(name);
                object["metadata"]["uid"] = json!(format!("{name}-uid"));
                if copy == 2 {
                    object["metadata"]["labels"] = json!({"canary": "yes"});
                }
            }
            objects.push(object);
        }
    }
    let namespaces: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .cloned()
        .collect();
    let (deployed, errors) =
        Deployed::from_deployments(&[("p1".to_owned(), pods_and_deployments_only())]);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!deployed.reads_identity() && !deployed.reads_labels());
    let deployed = Arc::new(deployed);
    // The same answer as judging every copy.
    let judged_within = |deployed: &Arc<Deployed>, by_content: bool, room: usize| {
        let mut judge = Judge::new(deployed.clone(), None, namespaces.clone(), 0);
        assert_eq!(judge.said.is_some(), by_content);
        judge.said_room = room;
        for object in &objects {
            judge.add_held(&held_of(object)).unwrap();
        }
        let kept = judge.said.as_ref().map_or(0, HashMap::len);
        (judge.findings(usize::MAX), kept, judge.finish(false))
    };
    let judged = |deployed: &Arc<Deployed>, by_content: bool| {
        judged_within(deployed, by_content, SAID_BYTES)
    };
    let (findings, kept, once) = judged(&deployed, true);
    let mut every = Judge::new(deployed.clone(), None, namespaces.clone(), 0);
    every.said = None;
    for object in &objects {
        every.add_held(&held_of(object)).unwrap();
    }
    assert_eq!(findings, every.findings(usize::MAX));
    assert_eq!(once, every.finish(false));
    // Pods and Deployments are judged: a copy is told what its original was.
    let judged_kinds = objects
        .iter()
        .filter(|o| o["kind"] == "Pod" || o["kind"] == "Deployment")
        .count();
    assert!(
        kept > 0 && kept * 4 <= judged_kinds,
        "{kept} answers kept for {judged_kinds} objects"
    );
    // With room for a few keys only, a few answers are kept and the rest judged each time: the
    // same answer.
    let (few_findings, few, few_once) = judged_within(&deployed, true, 1_000);
    assert!(
        few > 0 && few < kept,
        "{few} answers kept in 1,000 bytes, {kept} in all"
    );
    assert_eq!(few_findings, findings);
    assert_eq!(few_once, once);
    // Every copy of a privileged Pod is named, each by its own name.
    let denied: BTreeSet<&str> = findings
        .0
        .iter()
        .filter(|f| f.kind == "Pod")
        .map(|f| f.name.as_str())
        .collect();
    for name in ["mesh-1-a", "mesh-1-a-0", "mesh-1-a-1", "mesh-1-a-2"] {
        assert!(denied.contains(name), "{name}: {denied:?}");
    }
    // An exception for one copy by name: each copy is judged, and only that one is excepted.
    let mut one_copy =
        Deployed::from_deployments(&[("p1".to_owned(), pods_and_deployments_only())]).0;
    one_copy.exceptions.insert(
        "p1".to_owned(),
        vec![exception(crate::exceptions::Scope::Resource {
            resource_kind: "Pod".to_owned(),
            namespace: "team".to_owned(),
            name: "mesh-1-a-1".to_owned(),
        })],
    );
    assert!(one_copy.reads_identity());
    let (findings, kept, _) = judged(&Arc::new(one_copy), false);
    assert_eq!(kept, 0);
    let excepted: Vec<&str> = findings
        .0
        .iter()
        .filter(|f| f.excepted)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(excepted, ["mesh-1-a-1"]);
    // An exception by labels keeps judging by content, the labels part of it: the copy with a
    // label of its own is judged on its own, and only it is excepted.
    let mut by_labels =
        Deployed::from_deployments(&[("p1".to_owned(), pods_and_deployments_only())]).0;
    by_labels.exceptions.insert(
        "p1".to_owned(),
        vec![exception(crate::exceptions::Scope::Selector {
            labels: [("canary".to_owned(), "yes".to_owned())].into(),
        })],
    );
    assert!(!by_labels.reads_identity() && by_labels.reads_labels());
    let (findings, kept_with_labels, _) = judged(&Arc::new(by_labels), true);
    assert!(kept_with_labels > kept, "{kept_with_labels} against {kept}");
    let excepted: BTreeSet<&str> = findings
        .0
        .iter()
        .filter(|f| f.excepted)
        .map(|f| f.name.as_str())
        .collect();
    assert!(excepted.contains("mesh-1-a-2"), "{excepted:?}");
    assert!(
        excepted.iter().all(|name| name.ends_with("-2")),
        "{excepted:?}"
    );
}
