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
        "spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP"}}),
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
