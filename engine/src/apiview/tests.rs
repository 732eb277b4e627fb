use serde_json::{json, Value};

use super::*;

fn view(object: Value) -> AdmissionView {
    admission_view(&object).unwrap()
}

fn refused(object: Value) -> String {
    admission_view(&object).unwrap_err().to_string()
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

#[test]
fn a_minimal_pod_is_defaulted_as_the_apiserver_defaults_it() {
    let got = view(pod(json!({
        "containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": 2, "memory": "1.5Gi"}},
            "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "a"}, {"name": "b", "hostPath": {"path": "/x"}},
            {"name": "c", "secret": {"secretName": "s"}}, {"name": "d", "configMap": {"name": "m"}},
            {"name": "e", "emptyDir": {"sizeLimit": "0.5Gi"}}]
    })));
    assert_eq!(
        got.object,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "generation": 1},
            "spec": {
                "containers": [{"name": "app", "image": "nginx", "imagePullPolicy": "Always",
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "2", "memory": "1536Mi"},
                                  "requests": {"cpu": "2", "memory": "1536Mi"}},
                    "livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}}],
                "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/x", "type": ""}},
                    {"name": "c", "secret": {"secretName": "s", "defaultMode": 420}},
                    {"name": "d", "configMap": {"name": "m", "defaultMode": 420}},
                    {"name": "e", "emptyDir": {"sizeLimit": "512Mi"}}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                "securityContext": {}, "terminationGracePeriodSeconds": 30, "enableServiceLinks": true,
                "priority": 0, "preemptionPolicy": "PreemptLowerPriority",
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Pending", "qosClass": "Guaranteed"}})
    );
    assert!(got.notes.is_empty());
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v2", "IfNotPresent"),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
        (
            "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Always",
        ),
        ("Nginx", "IfNotPresent"),
    ] {
        let got = view(pod(json!({"containers": [{"name": "c", "image": image}]})));
        assert_eq!(
            got.object["spec"]["containers"][0]["imagePullPolicy"], policy,
            "{image}"
        );
    }
}

#[test]
fn qos_class_is_computed_from_requests_and_limits() {
    let class = |resources: Value| {
        view(pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": resources}]}),
        ))
        .object["status"]["qosClass"]
            .clone()
    };
    assert_eq!(class(json!({})), "BestEffort");
    assert_eq!(
        class(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
        "Guaranteed"
    );
    assert_eq!(class(json!({"requests": {"cpu": "1"}})), "Burstable");
    assert_eq!(
        class(json!({"limits": {"cpu": "1000m", "memory": "1Gi"}, "requests": {"cpu": 1}})),
        "Guaranteed"
    );
}

#[test]
fn a_pod_template_gets_the_pod_spec_defaults_but_not_the_pod_ones() {
    let got = view(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1", "resources": {"limits": {"cpu": "0.5"}}}]}}}}),
    );
    assert_eq!(
        got.object,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": 1},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicas": 1,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "resources": {"limits": {"cpu": "500m"}}}],
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                        "securityContext": {}, "terminationGracePeriodSeconds": 30}}},
            "status": {}})
    );
}

fn workload(kind: &str, api_version: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"containers": [{"name": "c", "image": "i:1"}]}});
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}, "spec": spec})
}

#[test]
fn workloads_are_defaulted() {
    let rs = view(workload("ReplicaSet", "apps/v1", json!({}))).object;
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["status"], json!({"replicas": 0}));
    assert_eq!(rs["spec"]["template"]["metadata"], json!({}));

    let sts = view(workload("StatefulSet", "apps/v1", json!({"volumeClaimTemplates": [
        {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1000Mi"}}}}]})))
    .object;
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0],
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"resources": {"requests": {"storage": "1000Mi"}}, "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}})
    );
    assert_eq!(
        sts["status"],
        json!({"replicas": 0, "availableReplicas": 0})
    );

    let ds = view(workload("DaemonSet", "apps/v1", json!({}))).object;
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(ds["metadata"]["generation"], 1);

    let job = view(workload("Job", "batch/v1", json!({}))).object;
    let spec = &job["spec"];
    for (field, value) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
        ("manualSelector", json!(false)),
    ] {
        assert_eq!(spec[field], value, "{field}");
    }
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID_PLACEHOLDER}})
    );
    assert_eq!(
        spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "w"
    );
    assert_eq!(job["status"], json!({}));

    let cron = view(
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}}),
    )
    .object;
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cron["spec"]["suspend"], false);
    assert_eq!(cron["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cron["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cron["spec"]["jobTemplate"]["metadata"], json!({}));
    let template = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(template["restartPolicy"], "Never");
    assert_eq!(template["containers"][0]["imagePullPolicy"], "Always");
    assert!(cron["spec"]["jobTemplate"]["spec"]
        .get("completions")
        .is_none());
}

#[test]
fn the_core_kinds_are_defaulted() {
    let svc = view(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
    )
    .object;
    assert_eq!(
        svc["spec"],
        json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
            {"port": 443, "targetPort": "https", "protocol": "TCP"}],
            "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"})
    );
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    let lb = view(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
    )
    .object;
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );

    let secret = view(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "stringData": {"a": "hello"}}),
    )
    .object;
    assert_eq!(
        secret,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "Opaque", "data": {"a": "aGVsbG8="}})
    );

    let ns =
        view(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})).object;
    assert_eq!(
        ns,
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    );

    let pvc = view(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1.0Gi"}}}}))
    .object;
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));
    assert_eq!(
        pvc["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );

    for unchanged in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"a": "b"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"}, "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
    ] {
        assert_eq!(view(unchanged.clone()).object, unchanged);
    }
}

#[test]
fn networking_rbac_and_policy_kinds_are_defaulted() {
    let np = view(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
        "spec": {"egress": [{"ports": [{"port": 53}]}]}}))
    .object;
    assert_eq!(
        np["spec"],
        json!({"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}],
        "policyTypes": ["Ingress", "Egress"]})
    );
    assert_eq!(np["metadata"]["generation"], 1);

    let ing = view(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {}})).object;
    assert_eq!(ing["status"], json!({"loadBalancer": {}}));

    let rb = view(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa"}, {"kind": "Group", "name": "g"}]}))
    .object;
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(
        rb["subjects"],
        json!([{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "ServiceAccount", "name": "sa"}, {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}])
    );
    let crb = view(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
        "roleRef": {"kind": "ClusterRole", "name": "r"}}))
    .object;
    assert_eq!(crb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");

    let pdb = view(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
        "spec": {"minAvailable": 1}}),
    )
    .object;
    assert_eq!(pdb["spec"], json!({"minAvailable": 1}));
    assert_eq!(
        pdb["status"],
        json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
    );
}

#[test]
fn int_or_string_fields_stay_as_written() {
    let d = view(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": "10%"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    )
    .object;
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 2, "maxUnavailable": "10%"})
    );
}

#[test]
fn unknown_fields_are_dropped_with_a_note() {
    let got = view(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labelz": {}},
        "extra": 1, "spec": {"foo": true, "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Never", "cpu": 1}]}}),
    );
    assert_eq!(
        got.notes,
        [
            "unknown field extra dropped, as the apiserver drops it",
            "unknown field metadata.labelz dropped, as the apiserver drops it",
            "unknown field spec.foo dropped, as the apiserver drops it",
            "unknown field spec.containers[0].cpu dropped, as the apiserver drops it",
        ]
    );
    assert!(got.object.get("extra").is_none());
    assert!(got.object["spec"].get("foo").is_none());
    assert!(got.object["spec"]["containers"][0].get("cpu").is_none());
}

#[test]
fn what_the_apiserver_refuses_is_invalid() {
    let container = |extra: Value| {
        let mut c = json!({"name": "c", "image": "i"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        pod(json!({"containers": [c]}))
    };
    assert_eq!(
        refused(container(json!({"resources": {"requests": {"cpu": 2}, "limits": {"cpu": "1"}}}))),
        "invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
    );
    assert_eq!(
        refused(container(json!({"resources": {"requests": {"nvidia.com/gpu": 1}}}))),
        "invalid: spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"
    );
    assert_eq!(
        refused(container(json!({"resources": {"limits": {"cpu": "two"}}}))),
        "invalid: spec.containers[0].resources.limits.cpu: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        refused(container(json!({"resources": {"limits": {"memory": "-1"}}}))),
        "invalid: spec.containers[0].resources.limits.memory: Invalid value: \"-1\": must be greater than or equal to 0"
    );
    assert_eq!(
        refused(pod(json!({"containers": [{"image": "i"}]}))),
        "invalid: spec.containers[0].name: Required value"
    );
    assert_eq!(
        refused(pod(json!({"containers": [{"name": "c"}]}))),
        "invalid: spec.containers[0].image: Required value"
    );
    assert_eq!(
        refused(pod(
            json!({"containers": [{"name": "c", "image": "i"}], "initContainers": [{"name": "c", "image": "i"}]})
        )),
        "invalid: spec.initContainers[0].name: Duplicate value: \"c\""
    );
    let mut deployment = workload("Deployment", "apps/v1", json!({"replicas": -1}));
    assert_eq!(
        refused(deployment.clone()),
        "invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    deployment["spec"]["replicas"] = json!("3");
    assert!(refused(deployment).starts_with("invalid: spec.replicas: cannot unmarshal string"));
    let labelled = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "labels": {"version": 1}}});
    assert!(
        refused(labelled).starts_with("invalid: metadata.labels.version: cannot unmarshal number")
    );
    let bad_label = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "labels": {"a": "-x"}}});
    assert!(refused(bad_label).starts_with("invalid: metadata.labels: Invalid value: \"-x\""));
}

#[test]
fn other_objects_pass_through_unchanged() {
    for object in [
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"x": null}}),
        json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels", "spec": {}}),
        json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "spec": {}}),
        json!({"kind": "Pod"}),
    ] {
        let got = view(object.clone());
        assert_eq!(got.object, object);
        assert!(got.notes.is_empty());
    }
}

#[test]
fn the_encoder_writes_structs_and_leaves_out_empty_omitempty_fields() {
    let got = view(pod(json!({
        "containers": [{"name": "app", "image": "nginx:1.27", "stdin": false, "env": [],
            "ports": [{"containerPort": 80, "hostPort": 0}]}],
        "hostIPC": false, "automountServiceAccountToken": false, "nodeSelector": {},
        "tolerations": [{"operator": "Exists"}]
    })))
    .object;
    let spec = &got["spec"];
    assert_eq!(spec["containers"][0]["resources"], json!({}));
    assert!(spec["containers"][0].get("stdin").is_none());
    assert!(spec["containers"][0].get("env").is_none());
    assert_eq!(
        spec["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert!(spec.get("hostIPC").is_none());
    assert!(spec.get("nodeSelector").is_none());
    assert_eq!(spec["automountServiceAccountToken"], false);
    // A toleration of every taint covers the ones DefaultTolerationSeconds would add.
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));

    let ds = view(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .object;
    assert_eq!(
        ds["metadata"]["annotations"],
        json!({"deprecated.daemonset.template.generation": "1"})
    );
    // Templates are not Pods: the admission plugins leave them alone.
    assert!(ds["spec"]["template"]["spec"].get("tolerations").is_none());
    assert!(ds["spec"]["template"]["spec"].get("priority").is_none());

    let sts = view(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .object;
    assert_eq!(sts["spec"]["serviceName"], "");
}

#[test]
fn common_pod_mistakes_are_refused() {
    let probe_on_init = refused(pod(json!({
        "initContainers": [{"name": "i", "image": "x", "startupProbe": {"exec": {"command": ["true"]}}}],
        "containers": [{"name": "app", "image": "nginx"}]
    })));
    assert!(
        probe_on_init.contains("initContainers[0].startupProbe: Forbidden"),
        "{probe_on_init}"
    );
    let mount = refused(pod(json!({
        "containers": [{"name": "app", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]
    })));
    assert!(
        mount.contains("volumeMounts[0].name: Not found: \"data\""),
        "{mount}"
    );
    let windows = refused(pod(json!({
        "os": {"name": "windows"},
        "containers": [{"name": "app", "image": "nginx", "securityContext": {"allowPrivilegeEscalation": false}}]
    })));
    assert!(
        windows.contains("cannot be set for a windows pod"),
        "{windows}"
    );
    let priority = refused(pod(json!({
        "priorityClassName": "system-node-critical", "priority": 0,
        "containers": [{"name": "app", "image": "nginx"}]
    })));
    assert!(priority.contains("computed 2000001000"), "{priority}");
    let sleep = refused(pod(json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "nginx", "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}]
    })));
    assert!(sleep.contains("lifecycle.preStop.sleep"), "{sleep}");
    let ephemeral = refused(pod(json!({
        "containers": [{"name": "app", "image": "nginx"}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
    })));
    assert!(ephemeral.contains("cannot be set on create"), "{ephemeral}");
    let deadline = refused(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"activeDeadlineSeconds": 60, "containers": [{"name": "c", "image": "nginx"}]}}}}),
    );
    assert!(
        deadline.contains("activeDeadlineSeconds in ReplicaSet"),
        "{deadline}"
    );
    let critical = view(pod(json!({
        "priorityClassName": "system-cluster-critical",
        "containers": [{"name": "app", "image": "nginx"}]
    })))
    .object;
    assert_eq!(critical["spec"]["priority"], 2_000_000_000);
}

fn updated(new: Value, old: Value) -> UpdateView {
    update_view(&new, &old).unwrap()
}

fn update_refused(new: Value, old: Value) -> String {
    update_view(&new, &old).unwrap_err().to_string()
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

#[test]
fn an_update_is_defaulted_and_its_old_object_is_the_stored_one() {
    let old = deployment(1, "nginx:1");
    let got = updated(deployment(2, "nginx:1"), old.clone());
    assert_eq!(got.old_object, view(old).object);
    assert_eq!(got.object["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        got.object["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(got.object["status"], json!({}));
}

#[test]
fn generation_bumps_only_when_the_spec_changes() {
    let generation =
        |new: Value, old: Value| updated(new, old).object["metadata"]["generation"].clone();
    assert_eq!(
        generation(deployment(2, "nginx:1"), deployment(1, "nginx:1")),
        2
    );
    assert_eq!(
        generation(deployment(1, "nginx:2"), deployment(1, "nginx:1")),
        2
    );
    assert_eq!(
        generation(deployment(1, "nginx:1"), deployment(1, "nginx:1")),
        1
    );
    let mut labelled = deployment(1, "nginx:1");
    labelled["metadata"]["labels"] = json!({"team": "x"});
    assert_eq!(generation(labelled, deployment(1, "nginx:1")), 1);
    // A Deployment's annotations are copied to its ReplicaSets: changing them bumps it too.
    let mut annotated = deployment(1, "nginx:1");
    annotated["metadata"]["annotations"] = json!({"note": "x"});
    assert_eq!(generation(annotated, deployment(1, "nginx:1")), 2);
    // A ConfigMap has no generation; an update does not give it one.
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": v}});
    assert_eq!(generation(cm("2"), cm("1")), Value::Null);
}

#[test]
fn the_status_is_the_stored_one_not_the_manifests() {
    let old = pod(
        json!({"containers": [{"name": "c", "image": "nginx:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
    );
    let mut new = old.clone();
    new["status"] = json!({"phase": "Running"});
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    let got = updated(new, old);
    assert_eq!(
        got.object["status"],
        json!({"phase": "Pending", "qosClass": "Guaranteed"})
    );
    assert_eq!(got.object["metadata"]["generation"], 2);
}

#[test]
fn a_pod_keeps_its_priority_and_gets_the_default_tolerations() {
    let old = pod(
        json!({"priorityClassName": "system-node-critical", "containers": [{"name": "c", "image": "nginx:1"}]}),
    );
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    let got = updated(new, old);
    assert_eq!(got.object["spec"]["priority"], 2_000_001_000);
    assert_eq!(
        got.object["spec"]["preemptionPolicy"],
        "PreemptLowerPriority"
    );
    assert_eq!(
        got.object["spec"]["tolerations"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn a_pod_update_may_change_only_what_the_apiserver_lets_it() {
    let old = pod(json!({"containers": [{"name": "c", "image": "nginx:1"}]}));
    let with = |change: &dyn Fn(&mut Value)| {
        let mut new = old.clone();
        change(&mut new);
        update_view(&new, &old)
    };
    assert!(with(&|p| p["spec"]["containers"][0]["image"] = json!("busybox:1")).is_ok());
    // Without a tag the pull policy defaults to Always: a change of the defaulted policy.
    assert!(with(&|p| p["spec"]["containers"][0]["image"] = json!("busybox")).is_err());
    assert!(with(&|p| p["spec"]["activeDeadlineSeconds"] = json!(60)).is_ok());
    assert!(
        with(&|p| p["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}])).is_ok()
    );
    let refusal =
        with(&|p| p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": 1}}))
            .unwrap_err()
            .to_string();
    assert!(
        refusal
            .starts_with("invalid: spec: Forbidden: pod updates may not change fields other than"),
        "{refusal}"
    );
    let refusal = with(&|p| {
        p["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "d", "image": "nginx"}));
    })
    .unwrap_err()
    .to_string();
    assert_eq!(
        refusal,
        "invalid: spec.containers: Forbidden: pod updates may not add or remove containers"
    );
    let mut deadline = old.clone();
    deadline["spec"]["activeDeadlineSeconds"] = json!(60);
    let mut longer = deadline.clone();
    longer["spec"]["activeDeadlineSeconds"] = json!(120);
    assert_eq!(
        update_refused(longer, deadline),
        "invalid: spec.activeDeadlineSeconds: Invalid value: 120: must be less than or equal to \
         previous value"
    );
}

fn job(spec: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec})
}

#[test]
fn a_job_keeps_its_generated_selector_and_its_template() {
    let template = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    let old = job(json!({"template": template}));
    // Without completions an update defaults none (only a Job without both gets one): keep it.
    let got = updated(
        job(json!({"template": template, "parallelism": 3, "completions": 1})),
        old.clone(),
    );
    assert_eq!(
        got.object["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID_PLACEHOLDER}})
    );
    assert_eq!(
        got.object["spec"]["template"]["metadata"]["labels"]["job-name"],
        "j"
    );
    assert_eq!(got.object["metadata"]["generation"], 2);
    let mut changed = template.clone();
    changed["spec"]["containers"][0]["image"] = json!("busybox:2");
    assert_eq!(
        update_refused(job(json!({"template": changed})), old.clone()),
        "invalid: spec.template: Invalid value: {…}: field is immutable"
    );
    assert_eq!(
        update_refused(
            job(json!({"template": template, "completions": 4})),
            old.clone()
        ),
        "invalid: spec.completions: Invalid value: 4: field is immutable"
    );
    let refusal = update_refused(
        job(json!({"template": template, "selector": {"matchLabels": {"x": "y"}}})),
        old,
    );
    assert_eq!(
        refusal,
        "invalid: spec.selector: Invalid value: {…}: field is immutable"
    );
}

#[test]
fn a_suspended_job_may_change_its_scheduling_directives() {
    let template = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    let old = job(json!({"template": template, "suspend": true}));
    let mut placed = template.clone();
    placed["spec"]["nodeSelector"] = json!({"zone": "a"});
    placed["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}});
    placed["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": 2}});
    placed["metadata"] = json!({"labels": {"team": "x"}});
    assert!(update_view(
        &job(json!({"template": placed.clone(), "suspend": true})),
        &old
    )
    .is_ok());
    // Not suspended: the same change is refused.
    let running = job(json!({"template": template}));
    assert_eq!(
        update_refused(job(json!({"template": placed})), running),
        "invalid: spec.template: Invalid value: {…}: field is immutable"
    );
    let mut other = template.clone();
    other["spec"]["containers"][0]["image"] = json!("busybox:2");
    assert_eq!(
        update_refused(job(json!({"template": other, "suspend": true})), old),
        "invalid: spec.template.spec: Invalid value: {…}: field is immutable"
    );
}

#[test]
fn workload_selectors_and_stateful_set_identity_are_immutable() {
    let mut moved = deployment(1, "nginx:1");
    moved["spec"]["selector"] = json!({"matchLabels": {"a": "c"}});
    moved["spec"]["template"]["metadata"]["labels"] = json!({"a": "c"});
    assert_eq!(
        update_refused(moved, deployment(1, "nginx:1")),
        "invalid: spec.selector: Invalid value: {…}: field is immutable"
    );
    let set = |service: &str| {
        let mut s = deployment(1, "nginx:1");
        s["kind"] = json!("StatefulSet");
        s["spec"]["serviceName"] = json!(service);
        s
    };
    assert_eq!(
        update_refused(set("b"), set("a")),
        "invalid: spec.serviceName: Invalid value: \"b\": field is immutable"
    );
    assert!(update_view(&set("a"), &set("a")).is_ok());
}

#[test]
fn a_daemon_sets_template_generation_follows_its_template() {
    let ds = |image: &str| {
        let mut d = deployment(1, image);
        d["kind"] = json!("DaemonSet");
        d["spec"].as_object_mut().unwrap().remove("replicas");
        d
    };
    let generation = |new: Value, old: Value| {
        updated(new, old).object["metadata"]["annotations"]
            ["deprecated.daemonset.template.generation"]
            .clone()
    };
    assert_eq!(generation(ds("nginx:2"), ds("nginx:1")), "2");
    assert_eq!(generation(ds("nginx:1"), ds("nginx:1")), "1");
}

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec})
}

#[test]
fn a_services_cluster_ip_is_kept_and_may_not_change() {
    let headless = service(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    let got = updated(service(json!({"ports": [{"port": 81}]})), headless);
    assert_eq!(got.object["spec"]["clusterIP"], "None");
    assert_eq!(got.object["status"], json!({"loadBalancer": {}}));
    assert_eq!(
        update_refused(
            service(json!({"clusterIP": "None", "ports": [{"port": 80}]})),
            service(json!({"ports": [{"port": 80}]}))
        ),
        "invalid: spec.clusterIPs[0]: Invalid value: \"None\": may not change once set"
    );
}

fn claim(storage: &str, class: Option<&str>) -> Value {
    let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}});
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    c
}

#[test]
fn a_claims_spec_is_immutable_but_for_a_first_storage_class() {
    assert_eq!(
        update_refused(claim("2Gi", None), claim("1Gi", None)),
        "invalid: spec: Forbidden: spec is immutable after creation except resources.requests \
         and volumeAttributesClassName for bound claims"
    );
    let got = updated(claim("1Gi", Some("fast")), claim("1Gi", None));
    assert_eq!(got.object["spec"]["storageClassName"], "fast");
    // The protection finalizer is added on create only.
    assert_eq!(
        got.old_object["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    assert_eq!(got.object["metadata"].get("finalizers"), None);
    assert_eq!(got.object["status"], json!({"phase": "Pending"}));
    assert!(update_view(&claim("1Gi", Some("slow")), &claim("1Gi", Some("fast"))).is_err());
}

#[test]
fn immutable_config_maps_and_secrets_keep_their_data() {
    let cm = |data: Value, immutable: Option<bool>| {
        let mut c = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
        if let Some(immutable) = immutable {
            c["immutable"] = json!(immutable);
        }
        c
    };
    let frozen = cm(json!({"k": "v"}), Some(true));
    assert_eq!(
        update_refused(cm(json!({"k": "w"}), Some(true)), frozen.clone()),
        "invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    assert_eq!(
        update_refused(cm(json!({"k": "v"}), None), frozen.clone()),
        "invalid: immutable: Forbidden: field is immutable when `immutable` is set"
    );
    assert!(update_view(&cm(json!({"k": "v"}), Some(true)), &frozen).is_ok());
    assert!(update_view(&cm(json!({"k": "w"}), None), &cm(json!({"k": "v"}), None)).is_ok());
    // An empty map and none are the same.
    assert!(update_view(&cm(json!({}), Some(true)), &cm(json!(null), Some(true))).is_ok());

    let secret = |kind: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": kind, "stringData": {"username": "u", "password": "p"}})
    };
    assert_eq!(
        update_refused(secret("Opaque"), secret("kubernetes.io/basic-auth")),
        "invalid: type: Invalid value: \"Opaque\": field is immutable"
    );
}

#[test]
fn a_bindings_role_is_immutable() {
    let binding = |role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "name": "alice"}]})
    };
    assert_eq!(
        update_refused(binding("edit"), binding("view")),
        "invalid: roleRef: Invalid value: {…}: field is immutable"
    );
    assert!(update_view(&binding("view"), &binding("view")).is_ok());
}

#[test]
fn a_namespace_keeps_its_finalizers_and_phase() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}});
    let mut new = ns.clone();
    new["spec"] = json!({"finalizers": []});
    let got = updated(new, ns);
    assert_eq!(got.object["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(got.object["status"], json!({"phase": "Active"}));
}

#[test]
fn an_updates_notes_name_the_old_object_and_its_refusals_too() {
    let mut new = deployment(1, "nginx:1");
    new["spec"]["replicaz"] = json!(2);
    let mut old = deployment(1, "nginx:1");
    old["spec"]["paused2"] = json!(true);
    let got = updated(new, old);
    assert_eq!(
        got.notes,
        vec![
            "oldObject: unknown field spec.paused2 dropped, as the apiserver drops it".to_owned(),
            "unknown field spec.replicaz dropped, as the apiserver drops it".to_owned(),
        ]
    );
    let mut broken = deployment(1, "nginx:1");
    broken["spec"]["replicas"] = json!(-1);
    assert_eq!(
        update_refused(deployment(1, "nginx:1"), broken),
        "invalid: oldObject: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let mut renamed = deployment(1, "nginx:1");
    renamed["metadata"]["name"] = json!("e");
    assert_eq!(
        update_refused(renamed, deployment(1, "nginx:1")),
        "invalid: metadata.name: Invalid value: \"e\": field is immutable"
    );
}

#[test]
fn an_old_object_takes_the_objects_type_and_must_not_change_it() {
    let mut untyped = deployment(1, "nginx:1");
    untyped.as_object_mut().unwrap().remove("apiVersion");
    untyped.as_object_mut().unwrap().remove("kind");
    let got = updated(deployment(1, "nginx:1"), untyped);
    assert_eq!(got.old_object["kind"], "Deployment");
    let mut other = deployment(1, "nginx:1");
    other["kind"] = json!("ReplicaSet");
    assert_eq!(
        update_refused(deployment(1, "nginx:1"), other),
        "invalid: oldObject: is a apps/v1 ReplicaSet, the object a apps/v1 Deployment: an update \
         keeps the kind"
    );
    // Other kinds pass through, both objects as written.
    let custom = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 1}});
    let got = updated(custom.clone(), json!({"spec": {"size": 0}}));
    assert_eq!(
        (got.object, got.old_object),
        (custom, json!({"spec": {"size": 0}}))
    );
}

#[test]
fn a_stored_view_is_the_create_view_with_its_refusals_naming_the_old_object() {
    let d = deployment(1, "nginx:1");
    assert_eq!(into_stored_view(d.clone()).unwrap(), view(d));
    let mut broken = deployment(1, "nginx:1");
    broken["spec"]["replicas"] = json!(-1);
    assert!(into_stored_view(broken)
        .unwrap_err()
        .to_string()
        .starts_with("invalid: oldObject: spec.replicas"));
}

#[test]
fn a_disruption_budget_sets_one_of_its_bounds() {
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"},
        "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}}});
    assert_eq!(
        refused(pdb),
        "invalid: spec: Invalid value: {…}: minAvailable and maxUnavailable cannot be both set"
    );
}

#[test]
fn a_service_needs_ports_and_an_external_name_no_cluster_ip() {
    assert_eq!(
        refused(service(json!({"type": "LoadBalancer"}))),
        "invalid: spec.ports: Required value"
    );
    assert!(admission_view(&service(json!({"clusterIP": "None"}))).is_ok());
    assert_eq!(
        refused(service(
            json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "None"})
        )),
        "invalid: spec.clusterIPs: Forbidden: may not be set for ExternalName services"
    );
    assert_eq!(
        refused(service(
            json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})
        )),
        "invalid: spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for \
         NodePort services"
    );
}

#[test]
fn a_service_leaving_a_type_drops_what_only_that_type_uses() {
    let lb = service(
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    );
    let mut node_port = lb.clone();
    node_port["spec"]["type"] = json!("NodePort");
    let got = updated(node_port, lb.clone());
    assert_eq!(
        got.object["spec"].get("allocateLoadBalancerNodePorts"),
        None
    );
    assert_eq!(got.object["spec"]["externalTrafficPolicy"], "Cluster");
    let mut cluster_ip = lb.clone();
    cluster_ip["spec"]["type"] = json!("ClusterIP");
    cluster_ip["spec"]
        .as_object_mut()
        .unwrap()
        .remove("allocateLoadBalancerNodePorts");
    let got = updated(cluster_ip, lb);
    assert_eq!(got.object["spec"].get("externalTrafficPolicy"), None);
    // A headless Service becoming an ExternalName loses the cluster IP it kept as it was.
    let headless = service(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    let external = service(
        json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "None"}),
    );
    let got = updated(external, headless);
    assert_eq!(got.object["spec"].get("clusterIP"), None);
}
