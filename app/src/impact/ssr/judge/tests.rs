//! What the judge finds on inventories of our own: owners, what runs now, limits, referential
//! templates, the text paths against the value path, and the time budget.

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::model::Mode;
use crate::policies::Content;

/// What `proposed` (the policy as it would be deployed) does to each of `objects` (one cluster's
/// inventory, namespaces included), against what `running` (the version deployed there now, if
/// any) does. `out_of_time` is asked now and then; once it says so, evaluation stops and the
/// answer is marked partial.
fn judge(
    proposed: Arc<Deployed>,
    running: Option<Arc<Deployed>>,
    objects: &[Value],
    now_ms: i64,
    out_of_time: &mut dyn FnMut() -> bool,
) -> Judgement {
    let namespaces = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .cloned()
        .collect();
    let mut judge = Judge::new(proposed, running, namespaces, now_ms);
    // Owners are resolved at the end: an object's owner may come after it.
    for (i, object) in objects.iter().enumerate() {
        if i % 64 == 0 && out_of_time() {
            return judge.finish(true);
        }
        judge.add(object.clone());
    }
    judge.finish(false)
}

fn pod_security(level: &str) -> Arc<Deployed> {
    let content = Content {
            source: format!(
                "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {{name: {level}}}\nspec: {{level: {level}, version: latest}}\n"
            ),
            ..Content::default()
        };
    let objects = crate::policies::ssr::render::desired_objects(
        &content,
        Mode::Enforce,
        &["team".to_owned()],
        &[],
    )
    .unwrap();
    let (deployed, errors) = Deployed::from_deployments(&[("p1".to_owned(), objects)]);
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(deployed)
}

fn owned(
    kind: &str,
    name: &str,
    uid: &str,
    owner: Option<(&str, &str, &str)>,
    spec: Value,
) -> Value {
    let mut object = json!({
        "apiVersion": if kind == "Pod" { "v1" } else { "apps/v1" },
        "kind": kind,
        "metadata": {"name": name, "namespace": "team", "uid": uid},
    });
    if let Some((kind, name, uid)) = owner {
        object["metadata"]["ownerReferences"] =
            json!([{"kind": kind, "name": name, "uid": uid, "controller": true}]);
    }
    if kind == "Pod" {
        object["spec"] = spec;
    } else {
        object["spec"] = json!({"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}});
    }
    object
}

fn inventory() -> Vec<Value> {
    let privileged = json!({"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]});
    let root = json!({"containers": [{"name": "c", "image": "i"}]});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "ns"}}),
        owned("Deployment", "web", "d1", None, privileged.clone()),
        owned(
            "ReplicaSet",
            "web-1",
            "r1",
            Some(("Deployment", "web", "d1")),
            privileged.clone(),
        ),
        owned(
            "Pod",
            "web-1-a",
            "p1",
            Some(("ReplicaSet", "web-1", "r1")),
            privileged.clone(),
        ),
        owned(
            "Pod",
            "web-1-b",
            "p2",
            Some(("ReplicaSet", "web-1", "r1")),
            privileged,
        ),
        owned("Pod", "tool", "p3", None, root),
    ]
}

/// A template of our own that reads `data.inventory`: a Service whose selector another
/// Service of its namespace already has.
fn same_selector() -> Vec<Value> {
    let template: Value = serde_yaml_ng::from_str(
        r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8ssameselector}
spec:
  crd: {spec: {names: {kind: K8sSameSelector}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8ssameselector
        violation[{"msg": msg}] {
          svc := input.review.object
          other := data.inventory.namespace[svc.metadata.namespace]["v1"]["Service"][name]
          name != svc.metadata.name
          other.spec.selector == svc.spec.selector
          msg := sprintf("selector also used by %v", [name])
        }
"#,
    )
    .unwrap();
    let constraint = json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSameSelector",
            "metadata": {"name": "same"},
            "spec": {"enforcementAction": "deny", "match": {"kinds": [{"apiGroups": [""], "kinds": ["Service"]}]}}});
    vec![template, constraint]
}

#[test]
fn referential_templates_see_the_inventory_as_data_inventory() {
    let manifests = same_selector();
    assert!(crate::impact::ssr::service::reads_inventory(&manifests));
    assert!(!crate::impact::ssr::service::reads_inventory(
        &manifests[1..]
    ));
    let (deployed, errors) = Deployed::from_deployments(&[("p1".to_owned(), manifests)]);
    assert!(errors.is_empty(), "{errors:?}");
    let deployed = Arc::new(deployed);
    let service = |name: &str, app: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}")},
                   "spec": {"selector": {"app": app}}})
    };
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "ns"}}),
        service("web", "shop"),
        service("web-copy", "shop"),
        service("api", "api"),
    ];
    // Without the inventory nothing is known of other Services: nothing is found.
    let alone = judge(deployed.clone(), None, &objects, 1, &mut || false);
    assert_eq!(alone.deny, 0);
    // With it, the two Services that share a selector are each denied, naming the other.
    let mut judge = Judge::new(deployed, None, vec![objects[0].clone()], 1)
        .with_inventory(palisade_engine::gatekeeper::Inventory::from_objects(&objects).unwrap());
    for object in &objects {
        judge.add(object.clone());
    }
    let found = judge.finish(false);
    assert_eq!(found.deny, 2, "{:?}", found.workloads);
    let messages: Vec<&str> = found.workloads.iter().map(|w| w.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("selector also used by web-copy")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("selector also used by web")),
        "{messages:?}"
    );
}

#[test]
fn pods_are_denied_and_named_by_their_deployment_whose_template_is_warned() {
    let got = judge(pod_security("baseline"), None, &inventory(), 1, &mut || {
        false
    });
    assert_eq!(got.objects, 6);
    assert!(!got.partial);
    // Pod Security enforce denies the two Pods; both belong to one workload.
    let denied: Vec<_> = got
        .workloads
        .iter()
        .filter(|w| w.action == Action::Deny)
        .collect();
    assert_eq!(denied.len(), 1, "{:#?}", got.workloads);
    let web = denied[0];
    assert_eq!(
        (web.owner_kind.as_str(), web.owner_name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(web.objects, 2);
    assert_eq!(web.examples, ["Pod/web-1-a", "Pod/web-1-b"]);
    assert_eq!(web.change, Change::New);
    assert!(web.message.contains("privileged"), "{}", web.message);
    // Enforce includes warn: the Deployment's and the ReplicaSet's templates are warned of,
    // not denied; a denied Pod is not warned of again for the same policy.
    let warned = got
        .workloads
        .iter()
        .find(|w| w.action == Action::Warn)
        .unwrap();
    assert_eq!(warned.owner_name, "web");
    assert_eq!(warned.examples, ["Deployment/web", "ReplicaSet/web-1"]);
    // Audit records everything it sees, denied or not.
    let audited = got
        .workloads
        .iter()
        .find(|w| w.action == Action::Audit)
        .unwrap();
    assert_eq!(audited.objects, 4);
    assert_eq!(
        (got.deny, got.newly_denied, got.no_longer_denied),
        (1, 1, 0)
    );
    // The root Pod passes baseline.
    assert!(got.workloads.iter().all(|w| w.owner_name != "tool"));
}

#[test]
fn against_what_runs_now_it_says_what_it_would_stop_denying() {
    // Restricted runs now and denies both workloads; baseline would deny only `web`.
    let restricted = pod_security("restricted");
    let got = judge(
        pod_security("baseline"),
        Some(restricted),
        &inventory(),
        1,
        &mut || false,
    );
    assert_eq!(
        (got.newly_denied, got.no_longer_denied),
        (0, 1),
        "{:#?}",
        got.workloads
    );
    let web = got
        .workloads
        .iter()
        .find(|w| w.action == Action::Deny && w.owner_name == "web")
        .unwrap();
    assert_eq!(web.change, Change::Same);
    let tool = got
        .workloads
        .iter()
        .find(|w| w.owner_name == "tool")
        .unwrap();
    assert_eq!((tool.action, tool.change), (Action::Deny, Change::Stops));
}

#[test]
fn findings_name_each_object_its_workload_and_policy_and_count_past_the_limit() {
    let proposed = pod_security("baseline");
    let mut judge = Judge::new(proposed, None, Vec::new(), 1);
    // The Pods come before their owners: owners are resolved when findings are asked for.
    for object in inventory().into_iter().rev() {
        judge.add(object);
    }
    let (all, counts) = judge.findings(usize::MAX);
    // Two Pods denied (and audited); the Deployment and the ReplicaSet warned and audited.
    assert_eq!(
        (counts.deny, counts.warn, counts.audit, counts.total),
        (2, 2, 4, 8),
        "{all:#?}"
    );
    let first = &all[0];
    assert_eq!(
        (
            first.kind.as_str(),
            first.namespace.as_str(),
            first.name.as_str(),
            first.action
        ),
        ("Pod", "team", "web-1-a", Action::Deny)
    );
    assert_eq!(
        first.owner,
        OwnerRef {
            kind: "Deployment".into(),
            name: "web".into()
        }
    );
    assert_eq!(first.policy, "pod-security:baseline");
    assert!(first.message.contains("privileged"), "{}", first.message);
    assert!(!first.excepted);
    // Denials first, then warnings, then audits.
    let actions: Vec<Action> = all.iter().map(|f| f.action).collect();
    let mut sorted = actions.clone();
    sorted.sort_by_key(|a| std::cmp::Reverse(*a));
    assert_eq!(actions, sorted);
    // An object without an owner is its own workload.
    let deployment = all
        .iter()
        .find(|f| f.kind == "Deployment" && f.action == Action::Warn)
        .unwrap();
    assert_eq!(deployment.owner.name, "web");
    // A limit keeps the first findings; the counts stay exact.
    let (some, same) = judge.findings(3);
    assert_eq!(some, all[..3]);
    assert_eq!(same, counts);
    // Asking for findings changes nothing of the grouped answer.
    let grouped = judge.finish(false);
    assert_eq!((grouped.deny, grouped.warn, grouped.audit), (1, 1, 1));
}

/// The inventory of [`inventory`], the sample workloads of every kind (in `team` and in a
/// system namespace) and odd objects.
fn varied_inventory() -> Vec<Value> {
    let mut objects = inventory();
    for (i, mut object) in palisade_engine::sample::workloads(5, 400)
        .into_iter()
        .enumerate()
    {
        let namespace = if i % 10 == 0 { "kube-system" } else { "team" };
        object["metadata"]["namespace"] = json!(namespace);
        object["metadata"]["uid"] = json!(format!("sample-{i}"));
        objects.push(object);
    }
    let restricted = json!({"containers": [{"name": "c", "image": "i", "securityContext": {
            "runAsNonRoot": true, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]});
    let mut injected = restricted.clone();
    injected["containers"][0]["securityContext"]["privileged"] = json!(true);
    objects.extend([
            owned("Deployment", "mesh", "md", None, restricted.clone()),
            owned("ReplicaSet", "mesh-1", "mr", Some(("Deployment", "mesh", "md")), restricted),
            owned("Pod", "mesh-1-a", "mp", Some(("ReplicaSet", "mesh-1", "mr")), injected),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team", "uid": "c"}}),
            json!({"kind": "Pod", "metadata": {"name": "no-api-version", "namespace": "team", "uid": "x"}, "spec": {"hostPID": true}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd", "namespace": "team", "uid": "y"}, "spec": {"containers": [null, 5, {"name": 3}]}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": "m", "spec": {}}),
        ]);
    objects
}

#[test]
fn from_text_the_judge_finds_exactly_what_it_finds_from_values() {
    let objects = varied_inventory();
    let namespaces: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .cloned()
        .collect();
    let cases = [
        (pod_security("restricted"), None),
        (pod_security("baseline"), None),
        (pod_security("baseline"), Some(pod_security("restricted"))),
        (pod_security("restricted"), Some(pod_security("baseline"))),
    ];
    for (proposed, running) in cases {
        let new = || Judge::new(proposed.clone(), running.clone(), namespaces.clone(), 0);
        let (mut from_values, mut from_text) = (new(), new());
        assert!(from_text.pod_security_only);
        let mut passed_compact = 0;
        for object in &objects {
            let held = held_of(object);
            passed_compact += usize::from(from_text.without_findings(&held));
            from_values.add(object.clone());
            from_text.add_held(&held).unwrap();
        }
        assert!(passed_compact > 50, "{passed_compact}");
        assert!(passed_compact < objects.len(), "{passed_compact}");
        let (findings, counts) = from_values.findings(usize::MAX);
        assert_eq!((findings.clone(), counts), from_text.findings(usize::MAX));
        // A Pod unlike its template is named by the Deployment over its ReplicaSet, both of
        // which pass and so were learnt from the columns alone.
        let injected = findings.iter().find(|f| f.name == "mesh-1-a").unwrap();
        assert_eq!(
            (injected.owner.kind.as_str(), injected.owner.name.as_str()),
            ("Deployment", "mesh")
        );
        let (want, got) = (from_values.finish(false), from_text.finish(false));
        assert!(want.deny + want.warn > 0, "{want:?}");
        assert_eq!(want, got);
    }
    let mut judge = Judge::new(pod_security("restricted"), None, namespaces, 0);
    let text = |kind: &str, object: &str| Held {
        kind: kind.to_owned(),
        namespace: "team".to_owned(),
        object: object.to_owned(),
        ..held_of(&json!({}))
    };
    assert!(judge
        .add_held(&text("Pod", r#"{"kind": "Pod", "spec": {"#))
        .is_err());
    assert!(judge
        .add_held(&text("Pod", r#"{"kind": "Pod"} x"#))
        .is_err());
    // An object of a kind without a pod has no finding, and its text is not read.
    judge.add_held(&text("ConfigMap", "not read")).unwrap();
    assert_eq!(judge.objects(), 1);
}

/// `object` as the inventory holds it; one the keeper would not hold (no uid) as it is.
fn held_of(object: &Value) -> Held {
    crate::inventory::ssr::changes::held(object.clone()).unwrap_or_else(|| Held {
        uid: String::new(),
        kind: object["kind"].as_str().unwrap_or_default().to_owned(),
        namespace: String::new(),
        name: String::new(),
        controller: None,
        object: object.to_string(),
    })
}

#[test]
fn out_of_time_the_answer_is_partial() {
    let mut asked = 0;
    let got = judge(pod_security("baseline"), None, &inventory(), 1, &mut || {
        asked += 1;
        true
    });
    assert!(got.partial);
    assert_eq!(got.objects, 0);
    assert_eq!(asked, 1);
}

/// A template of our own judged by CEL, its constraint matching Pods alone, and a
/// ValidatingAdmissionPolicy matching Deployments alone: privileged containers are denied.
fn pods_and_deployments_only() -> Vec<Value> {
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(
        r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8snoprivileged}
spec:
  crd: {spec: {names: {kind: K8sNoPrivileged}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
              - expression: "!has(variables.anyObject.spec.containers) || variables.anyObject.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)"
                message: privileged pod
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoPrivileged
metadata: {name: no-privileged}
spec:
  enforcementAction: deny
  match: {kinds: [{apiGroups: [""], kinds: ["Pod"]}]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-privileged-deployments}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
    - expression: "object.spec.template.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)"
      message: privileged deployment
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-privileged-deployments}
spec:
  policyName: no-privileged-deployments
  validationActions: [Deny]
"#,
    )
    .map(|document| Value::deserialize(document).unwrap())
    .collect();
    documents
}

#[test]
fn objects_of_kinds_no_policy_matches_are_counted_without_being_read() {
    let (deployed, errors) =
        Deployed::from_deployments(&[("p1".to_owned(), pods_and_deployments_only())]);
    assert!(errors.is_empty(), "{errors:?}");
    let deployed = Arc::new(deployed);
    for (kind, judged) in [
        ("Pod", true),
        ("Deployment", true),
        ("ReplicaSet", false),
        ("Role", false),
        ("ConfigMap", false),
    ] {
        assert_eq!(deployed.may_judge_kind(kind), judged, "{kind}");
    }
    // The same answer from text, where other kinds are skipped, as from values, where they
    // are evaluated.
    let objects = varied_inventory();
    let namespaces: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .cloned()
        .collect();
    let new = || Judge::new(deployed.clone(), None, namespaces.clone(), 0);
    let (mut from_values, mut from_text) = (new(), new());
    for object in &objects {
        from_values.add(object.clone());
        from_text.add_held(&held_of(object)).unwrap();
    }
    assert_eq!(
        from_values.findings(usize::MAX),
        from_text.findings(usize::MAX)
    );
    let (want, got) = (from_values.finish(false), from_text.finish(false));
    assert!(want.deny >= 2, "{want:?}");
    let messages: Vec<&str> = want.workloads.iter().map(|w| w.message.as_str()).collect();
    for expected in ["privileged pod", "privileged deployment"] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {messages:?}"
        );
    }
    assert_eq!(want, got);
    // A Kyverno rule for Pods, which autogen extends to their controllers: again the same
    // answer from text, where the other kinds are skipped.
    let kyverno: Value = serde_yaml_ng::from_str(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: need-owner}
spec:
  validationFailureAction: Enforce
  rules:
  - name: owner-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: every pod needs an owner label
      pattern: {metadata: {labels: {owner: "?*"}}}
"#,
    )
    .unwrap();
    let (owner, errors) = Deployed::from_deployments(&[("p2".to_owned(), vec![kyverno])]);
    assert!(errors.is_empty(), "{errors:?}");
    let owner = Arc::new(owner);
    assert!(owner.may_judge_kind("Deployment") && !owner.may_judge_kind("Role"));
    let new_owner = || Judge::new(owner.clone(), None, namespaces.clone(), 0);
    let (mut from_values, mut from_text) = (new_owner(), new_owner());
    for object in &objects {
        from_values.add(object.clone());
        from_text.add_held(&held_of(object)).unwrap();
    }
    let (want, got) = (from_values.finish(false), from_text.finish(false));
    assert!(want.deny > 0, "{want:?}");
    assert_eq!(want, got);
    // Text of a kind nothing matches is not read; a Pod's still is.
    let mut judge = new();
    let text = |kind: &str, object: &str| Held {
        kind: kind.to_owned(),
        namespace: "team".to_owned(),
        object: object.to_owned(),
        ..held_of(&json!({}))
    };
    judge.add_held(&text("ReplicaSet", "not read")).unwrap();
    judge.add_held(&text("Role", "not read")).unwrap();
    assert!(judge.add_held(&text("Pod", "not JSON")).is_err());
    assert_eq!(judge.objects(), 2);
}

mod copies;
