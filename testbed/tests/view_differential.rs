//! Differential test of the engine's admission view (`palisade_engine::apiview`) against real
//! kube-apiservers: seeded, varied objects of every kind the view knows are sent with a server-side
//! dry-run create (`dryRun=All`), and the object the apiserver answers with — decoded, defaulted,
//! prepared and mutated by its default admission plugins, exactly what a validating policy sees —
//! is compared field by field with the view. What the view documents as the cluster's own choice
//! (system metadata, a Service's allocated IPs) is left out of the comparison, nothing else.
//!
//! Updates likewise: seeded objects are created for real, then a seeded change of each (allowed
//! ones and ones the apiserver refuses, immutable fields among them) is sent as a PUT with
//! `dryRun=All`; its answer is compared with the update view's object, and the stored object with
//! the view's `oldObject`. The PUT carries what a client sends back of a Job's generated selector
//! and labels, as the view assumes.
//!
//! Needs running clusters: `e2e/clusters up && eval "$(e2e/clusters env)"`. Without them the test
//! fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use kube::Client;
use palisade_engine::apiview::{admission_view, ViewError};
use palisade_engine::sample::{self, Rng};
use palisade_testbed::{delete_namespace, unique_name};
use serde_json::{json, Value};

/// Objects generated per kind and run.
const PER_KIND: usize = 150;
/// The seed of the run (`VIEW_SEED`, decimal or 0x-hex, gives another); the note of each failure
/// names it with the object's index.
const SEED: u64 = 0x0016_a1e1_d000;

/// Where a kind is created: its collection path under the namespace (or the cluster).
fn collection(kind: &str, namespace: &str) -> String {
    let namespaced = |group: &str, resource: &str| {
        if group.is_empty() {
            format!("/api/v1/namespaces/{namespace}/{resource}")
        } else {
            format!("/apis/{group}/namespaces/{namespace}/{resource}")
        }
    };
    match kind {
        "Pod" => namespaced("", "pods"),
        "Service" => namespaced("", "services"),
        "ConfigMap" => namespaced("", "configmaps"),
        "Secret" => namespaced("", "secrets"),
        "ServiceAccount" => namespaced("", "serviceaccounts"),
        "PersistentVolumeClaim" => namespaced("", "persistentvolumeclaims"),
        "Namespace" => "/api/v1/namespaces".to_owned(),
        "Deployment" => namespaced("apps/v1", "deployments"),
        "ReplicaSet" => namespaced("apps/v1", "replicasets"),
        "StatefulSet" => namespaced("apps/v1", "statefulsets"),
        "DaemonSet" => namespaced("apps/v1", "daemonsets"),
        "Job" => namespaced("batch/v1", "jobs"),
        "CronJob" => namespaced("batch/v1", "cronjobs"),
        "NetworkPolicy" => namespaced("networking.k8s.io/v1", "networkpolicies"),
        "Ingress" => namespaced("networking.k8s.io/v1", "ingresses"),
        "Role" => namespaced("rbac.authorization.k8s.io/v1", "roles"),
        "RoleBinding" => namespaced("rbac.authorization.k8s.io/v1", "rolebindings"),
        "ClusterRole" => "/apis/rbac.authorization.k8s.io/v1/clusterroles".to_owned(),
        "ClusterRoleBinding" => "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_owned(),
        "PodDisruptionBudget" => namespaced("policy/v1", "poddisruptionbudgets"),
        other => panic!("no collection for {other}"),
    }
}

/// A quantity written the ways people write them: a number (integer, fraction, exponent), a
/// plain string, a suffixed one, odd but valid spellings (`+1`, `1.0`, `0.001`, `1e6`).
fn quantity(rng: &mut Rng, memory: bool) -> Value {
    if memory {
        rng.pick(&[
            json!(134_217_728),
            json!("128Mi"),
            json!("1.5Gi"),
            json!("100M"),
            json!("1e3"),
            json!("0.5Gi"),
            json!("1e6"),
            json!("+64Mi"),
            json!("1.0Gi"),
            json!(1e9),
            json!("2048Ki"),
            json!("1G"),
        ])
    } else {
        rng.pick(&[
            json!(2),
            json!(0.5),
            json!("250m"),
            json!("1000m"),
            json!("0.1"),
            json!("1"),
            json!(1.5),
            json!("0.001"),
            json!("1.0"),
            json!("+1"),
            json!(0.25),
            json!("100m"),
        ])
    }
}

/// A probe with one of the four handlers, and some of its settings written (zeros included).
fn probe(rng: &mut Rng) -> Value {
    let mut probe = match rng.below(5) {
        0 => {
            json!({"httpGet": {"path": "/healthz", "port": rng.pick(&[json!(8080), json!("http")])}})
        }
        1 => {
            json!({"httpGet": {"port": 8080, "scheme": "HTTPS", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}})
        }
        2 => json!({"tcpSocket": {"port": rng.pick(&[json!(8080), json!("http")])}}),
        3 => json!({"exec": {"command": ["cat", "/tmp/ready"]}}),
        _ => json!({"grpc": {"port": 9090}}),
    };
    if rng.chance(50) {
        probe["periodSeconds"] = json!(5);
    }
    if rng.chance(30) {
        probe["initialDelaySeconds"] = json!(rng.pick(&[0, 10]));
    }
    if rng.chance(20) {
        probe["timeoutSeconds"] = json!(rng.pick(&[0, 3]));
    }
    if rng.chance(15) {
        probe["failureThreshold"] = json!(rng.pick(&[0, 5]));
    }
    probe
}

/// A lifecycle hook with one of its handlers.
fn hook(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!({"exec": {"command": ["sh", "-c", "sleep 5"]}}),
        1 => json!({"httpGet": {"path": "/stop", "port": 8080}}),
        _ => json!({"sleep": {"seconds": 5}}),
    }
}

/// A container with some fields left out and quantities written in every form.
fn container(rng: &mut Rng, name: &str) -> Value {
    let image = rng.pick(&[
        "nginx",
        "nginx:latest",
        "nginx:1.27",
        "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "busybox:1.36",
    ]);
    let mut c = json!({"name": name, "image": image});
    if rng.chance(60) {
        let cpu = quantity(rng, false);
        let memory = quantity(rng, true);
        let mut resources = json!({});
        if rng.chance(70) {
            resources["limits"] = json!({"cpu": cpu.clone(), "memory": memory.clone()});
        }
        if rng.chance(50) {
            resources["requests"] = json!({"cpu": cpu, "memory": memory});
        }
        c["resources"] = resources;
    }
    if rng.chance(50) {
        let mut port = json!({"containerPort": 8080 + rng.below(10)});
        if rng.chance(50) {
            port["name"] = json!("http");
        }
        if rng.chance(30) {
            port["protocol"] = json!("UDP");
        }
        c["ports"] = json!([port]);
    }
    if rng.chance(30) {
        c["imagePullPolicy"] = json!(rng.pick(&["Always", "IfNotPresent", "Never"]));
    }
    for field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if rng.chance(15) {
            c[field] = probe(rng);
        }
    }
    if rng.chance(10) {
        c["lifecycle"] = json!({rng.pick(&["preStop", "postStart"]): hook(rng)});
    }
    if rng.chance(25) {
        c["securityContext"] = rng.pick(&[
            json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false}),
            json!({}),
            json!({"privileged": false, "readOnlyRootFilesystem": false}),
            json!({"capabilities": {"drop": ["ALL"], "add": []}}),
        ]);
    }
    if rng.chance(25) {
        c["env"] = rng.pick(&[
            json!([{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
            json!([]),
            json!([{"name": "EMPTY", "value": ""}]),
            json!([{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]),
            json!([{"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}}}]),
            json!([{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": true}}},
                   {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]),
        ]);
    }
    if rng.chance(10) {
        c["envFrom"] =
            json!([{"configMapRef": {"name": "c"}}, {"prefix": "S_", "secretRef": {"name": "s"}}]);
    }
    if rng.chance(15) {
        c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    }
    // Empty, null and zero values written out, as generated manifests often have them.
    if rng.chance(10) {
        c["command"] = rng.pick(&[json!(null), json!([]), json!(["/bin/app", "--serve"])]);
    }
    if rng.chance(10) {
        c["args"] = rng.pick(&[json!(null), json!([]), json!(["-v", "2"])]);
    }
    if rng.chance(8) {
        c["resources"] = rng.pick(&[
            json!(null),
            json!({}),
            json!({"limits": {}, "requests": null}),
        ]);
    }
    if rng.chance(8) {
        c["ports"] = json!([]);
    }
    if rng.chance(8) {
        c[rng.pick(&["stdin", "tty", "stdinOnce"])] = json!(false);
    }
    if rng.chance(5) {
        c["workingDir"] = json!("");
    }
    if rng.chance(5) {
        c["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    }
    c
}

/// A pod spec: the engine's varied sample pods, plus the fields defaulting touches.
fn pod_spec(rng: &mut Rng, name: &str) -> Value {
    let mut spec = sample::pod(rng, name)["spec"].clone();
    let containers = 1 + rng.below(2) as usize;
    spec["containers"] = Value::Array(
        (0..containers)
            .map(|i| container(rng, &format!("c{i}")))
            .collect(),
    );
    if rng.chance(20) {
        spec["initContainers"] = json!([container(rng, "init")]);
    }
    if let Some(init) = spec.get_mut("initContainers").and_then(|i| i.get_mut(0)) {
        // Probes and hooks only on sidecars; now and then one is left on a plain init container
        // (the apiserver refuses it).
        let hooked = [
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
        ]
        .iter()
        .any(|k| init.get(*k).is_some());
        if (hooked && !rng.chance(5)) || rng.chance(20) {
            init["restartPolicy"] = json!("Always");
        }
    }
    let mounts = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
        .any(|c| c.get("volumeMounts").is_some());
    if mounts || rng.chance(40) {
        let volume = volume(rng);
        spec["volumes"] = json!([volume]);
    }
    if rng.chance(20) {
        spec["restartPolicy"] = json!("OnFailure");
    }
    if rng.chance(15) {
        spec["terminationGracePeriodSeconds"] = json!(rng.pick(&[0, 10]));
    }
    if rng.chance(15) {
        spec["tolerations"] = rng.pick(&[
            json!([{"key": "dedicated", "operator": "Exists"}]),
            json!([]),
            json!([{"operator": "Exists"}]),
            json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]),
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]),
        ]);
    }
    let twists = [
        ("nodeSelector", json!({})),
        ("nodeSelector", json!(null)),
        ("nodeSelector", json!({"kubernetes.io/os": "linux"})),
        ("dnsPolicy", json!("")),
        ("dnsPolicy", json!("Default")),
        ("hostname", json!("")),
        ("priorityClassName", json!("system-cluster-critical")),
        ("priorityClassName", json!("system-node-critical")),
        ("priorityClassName", json!("")),
        ("priority", json!(0)),
        ("activeDeadlineSeconds", json!(600)),
        ("enableServiceLinks", json!(false)),
        ("imagePullSecrets", json!([])),
        ("imagePullSecrets", json!([{"name": "regcred"}])),
        ("securityContext", json!({})),
        ("securityContext", json!(null)),
        ("schedulerName", json!("")),
        (
            "affinity",
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}),
        ),
        (
            "topologySpreadConstraints",
            json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": name}}}]),
        ),
        ("serviceAccountName", json!("builder")),
        ("serviceAccount", json!("builder")),
        ("readinessGates", json!([])),
        (
            "hostAliases",
            json!([{"ip": "10.0.0.1", "hostnames": ["db"]}]),
        ),
        (
            "dnsConfig",
            json!({"options": [{"name": "ndots", "value": "2"}]}),
        ),
    ];
    for _ in 0..rng.below(3) {
        let (key, value) = rng.pick(&twists);
        spec[key] = value;
    }
    spec
}

/// A volume named `data` of one of the sources the view defaults.
fn volume(rng: &mut Rng) -> Value {
    let source = match rng.below(14) {
        0 => json!({"emptyDir": {}}),
        1 => json!({"emptyDir": {"sizeLimit": quantity(rng, true)}}),
        2 => json!({"emptyDir": {"medium": rng.pick(&["Memory", ""])}}),
        3 => json!({"hostPath": {"path": "/var/data"}}),
        4 => {
            json!({"hostPath": {"path": "/var/data", "type": rng.pick(&["", "DirectoryOrCreate", "Directory"])}})
        }
        5 => json!({"secret": {"secretName": "s"}}),
        6 => json!({"secret": {"secretName": "s", "defaultMode": 256, "optional": false,
            "items": [{"key": "k", "path": "p", "mode": 292}]}}),
        7 => json!({"configMap": {"name": "c"}}),
        8 => {
            json!({"configMap": {"name": "c", "items": [{"key": "k", "path": "p"}], "defaultMode": 420}})
        }
        9 => json!({"downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c0", "resource": "limits.cpu"}}]}}),
        10 => json!({"projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "c"}},
            {"secret": {"name": "s", "items": [{"key": "k", "path": "k"}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}),
        11 => json!({"projected": {"defaultMode": 256, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 7200, "audience": "vault"}}]}}),
        12 => {
            json!({"ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": quantity(rng, true)}}}}}})
        }
        _ => json!({"persistentVolumeClaim": {"claimName": "data", "readOnly": false}}),
    };
    let mut volume = source;
    volume["name"] = json!("data");
    volume
}

fn labels(rng: &mut Rng, app: &str) -> Value {
    let mut labels = json!({"app": app});
    if rng.chance(30) {
        labels["tier"] = json!(rng.pick(&["web", "db", "cache"]));
    }
    labels
}

fn template(rng: &mut Rng, app: &str, restart: Option<&str>) -> Value {
    let mut spec = pod_spec(rng, app);
    match restart {
        Some(policy) => spec["restartPolicy"] = json!(policy),
        None => {
            if let Some(map) = spec.as_object_mut() {
                map.remove("restartPolicy");
            }
        }
    }
    json!({"metadata": {"labels": labels(rng, app)}, "spec": spec})
}

/// One object of `kind`, named `name`.
fn object(rng: &mut Rng, kind: &str, name: &str) -> Value {
    let meta = |rng: &mut Rng| {
        let mut meta = json!({"name": name});
        if rng.chance(40) {
            meta["labels"] = labels(rng, name);
        }
        if rng.chance(20) {
            meta["annotations"] = json!({"team": "payments"});
        }
        if rng.chance(8) {
            let (key, empty) = rng.pick(&[
                ("labels", json!({})),
                ("annotations", json!({})),
                ("finalizers", json!([])),
            ]);
            meta[key] = rng.pick(&[json!(null), empty]);
        }
        meta
    };
    let selector = |app: &str| json!({"matchLabels": {"app": app}});
    match kind {
        "Pod" => {
            let mut spec = pod_spec(rng, name);
            let token = spec["volumes"][0]["projected"]["sources"][0]
                .get("serviceAccountToken")
                .is_some();
            if token && spec.get("serviceAccountName").is_none() {
                // A token projection needs a service account; in a production cluster the
                // ServiceAccount admission plugin names `default` before validation, the test
                // bed runs without it.
                spec["serviceAccountName"] = json!("default");
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(rng), "spec": spec})
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            let mut spec =
                json!({"selector": selector(name), "template": template(rng, name, None)});
            if kind != "DaemonSet" && rng.chance(50) {
                spec["replicas"] = json!(rng.below(5));
            }
            if kind == "StatefulSet" && rng.chance(50) {
                spec["serviceName"] = json!(name);
            }
            if kind == "Deployment" && rng.chance(40) {
                spec["strategy"] = rng.pick(&[
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}),
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0}}),
                    json!({"rollingUpdate": {"maxUnavailable": "25%"}}),
                    json!({"type": "Recreate"}),
                    json!({}),
                ]);
            }
            if kind == "Deployment" && rng.chance(15) {
                spec["minReadySeconds"] = json!(rng.pick(&[0, 5]));
            }
            if kind == "StatefulSet" && rng.chance(25) {
                spec["updateStrategy"] = rng.pick(&[
                    json!({"type": "OnDelete"}),
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                    json!({"rollingUpdate": {"maxUnavailable": "50%"}}),
                ]);
            }
            if kind == "StatefulSet" && rng.chance(25) {
                spec["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": quantity(rng, true)}}}}]);
            }
            if kind == "StatefulSet" && rng.chance(15) {
                spec["podManagementPolicy"] = json!("Parallel");
            }
            if kind == "DaemonSet" && rng.chance(25) {
                spec["updateStrategy"] = rng.pick(&[
                    json!({"type": "OnDelete"}),
                    json!({"rollingUpdate": {"maxUnavailable": "10%"}}),
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
                ]);
            }
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta(rng), "spec": spec})
        }
        "Job" => {
            let restart = rng.pick(&["Never", "OnFailure"]);
            let mut spec = json!({"template": template(rng, name, Some(restart))});
            if rng.chance(40) {
                spec["backoffLimit"] = json!(2);
            }
            if rng.chance(30) {
                spec["completions"] = json!(3);
                spec["parallelism"] = json!(2);
            }
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(rng), "spec": spec})
        }
        "CronJob" => {
            let job = json!({"template": template(rng, name, Some("OnFailure"))});
            let mut spec = json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": job}});
            if rng.chance(30) {
                spec["concurrencyPolicy"] = json!("Forbid");
            }
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(rng), "spec": spec})
        }
        "Service" => {
            let kind = rng.pick(&[
                "",
                "ClusterIP",
                "NodePort",
                "LoadBalancer",
                "ExternalName",
                "headless",
            ]);
            let mut port = json!({"port": 80 + rng.below(3)});
            match rng.below(4) {
                0 => port["targetPort"] = json!(8080),
                1 => port["targetPort"] = json!("http"),
                2 => port["targetPort"] = json!(0),
                _ => {}
            }
            if rng.chance(30) {
                port["name"] = json!("web");
            }
            if rng.chance(15) {
                port["protocol"] = json!(rng.pick(&["UDP", "TCP", "SCTP"]));
            }
            if rng.chance(10) {
                port["appProtocol"] = json!("http");
            }
            let mut spec = json!({"selector": {"app": name}, "ports": [port]});
            match kind {
                "" => {}
                "headless" => spec["clusterIP"] = json!("None"),
                "ExternalName" => {
                    spec["type"] = json!(kind);
                    spec["externalName"] = json!("db.example.com");
                    if rng.chance(50) {
                        spec.as_object_mut().unwrap().remove("ports");
                        spec.as_object_mut().unwrap().remove("selector");
                    }
                }
                _ => spec["type"] = json!(kind),
            }
            if matches!(kind, "NodePort" | "LoadBalancer") && rng.chance(30) {
                spec["externalTrafficPolicy"] = json!(rng.pick(&["Local", "Cluster"]));
            }
            if kind == "LoadBalancer" && rng.chance(30) {
                spec["allocateLoadBalancerNodePorts"] = json!(false);
            }
            if kind != "ExternalName" && rng.chance(20) {
                spec["sessionAffinity"] = json!("ClientIP");
                if rng.chance(50) {
                    spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 600}});
                }
            }
            if rng.chance(10) {
                spec["publishNotReadyAddresses"] = json!(false);
            }
            if rng.chance(10) {
                spec["selector"] = json!({});
            }
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(rng), "spec": spec})
        }
        "ConfigMap" => {
            let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(rng)});
            match rng.below(5) {
                0 => cm["data"] = json!({}),
                1 => cm["binaryData"] = json!({"blob": "AAEC"}),
                2 => cm["data"] = json!(null),
                _ => cm["data"] = json!({"key": "value", "empty": ""}),
            }
            if rng.chance(15) {
                cm["immutable"] = json!(rng.pick(&[true, false]));
            }
            cm
        }
        "Secret" => {
            let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(rng)});
            if rng.chance(50) {
                secret["stringData"] = json!({"password": "hunter2"});
            } else {
                secret["data"] = json!({"password": "aHVudGVyMg=="});
            }
            if rng.chance(30) {
                secret["type"] = json!("kubernetes.io/basic-auth");
                secret["stringData"] = json!({"username": "u", "password": "p"});
            }
            secret
        }
        "ServiceAccount" => {
            let mut sa =
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(rng)});
            if rng.chance(30) {
                sa["automountServiceAccountToken"] = json!(rng.pick(&[true, false]));
            }
            if rng.chance(20) {
                sa["imagePullSecrets"] = rng.pick(&[json!([]), json!([{"name": "regcred"}])]);
            }
            if rng.chance(10) {
                sa["secrets"] = json!([]);
            }
            sa
        }
        "PersistentVolumeClaim" => {
            let storage = quantity(rng, true);
            let mut spec = json!({"accessModes": [rng.pick(&["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"])],
                "resources": {"requests": {"storage": storage}}});
            if rng.chance(20) {
                spec["volumeMode"] = json!(rng.pick(&["Block", "Filesystem"]));
            }
            if rng.chance(20) {
                spec["storageClassName"] = json!(rng.pick(&["", "fast"]));
            }
            if rng.chance(10) {
                spec["selector"] = json!({"matchLabels": {"tier": "gold"}});
            }
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(rng), "spec": spec})
        }
        "Namespace" => {
            let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(rng)});
            if rng.chance(20) {
                ns["spec"] = rng.pick(&[json!({}), json!({"finalizers": []})]);
            }
            ns
        }
        "NetworkPolicy" => {
            let mut spec = json!({"podSelector": selector(name)});
            if rng.chance(60) {
                spec["ingress"] =
                    json!([{"ports": [{"port": rng.pick(&[json!(443), json!("https")])}]}]);
            }
            if rng.chance(30) {
                spec["egress"] = rng.pick(&[
                    json!([{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]),
                    json!([{}]),
                    json!([{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 8000, "endPort": 9000}]}]),
                ]);
            }
            if rng.chance(15) {
                spec["policyTypes"] =
                    rng.pick(&[json!([]), json!(["Egress"]), json!(["Ingress", "Egress"])]);
            }
            if rng.chance(10) {
                spec["podSelector"] = json!({});
            }
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(rng), "spec": spec})
        }
        "Ingress" => {
            let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
            let path_type = rng.pick(&["Prefix", "Exact", "ImplementationSpecific"]);
            let mut spec = json!({"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": path_type, "backend": backend}]}}]});
            if rng.chance(25) {
                spec["defaultBackend"] =
                    json!({"service": {"name": "web", "port": {"name": "http"}}});
            }
            if rng.chance(25) {
                spec["tls"] = json!([{"hosts": ["a.example.com"], "secretName": "tls"}]);
            }
            if rng.chance(20) {
                spec["ingressClassName"] = json!("nginx");
            }
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(rng), "spec": spec})
        }
        "Role" | "ClusterRole" => {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta(rng),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let mut subject = json!({"kind": "User", "name": "alice"});
            if rng.chance(50) {
                subject =
                    json!({"kind": "ServiceAccount", "name": "default", "namespace": "default"});
            }
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta(rng),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [subject]})
        }
        "PodDisruptionBudget" => {
            let mut spec = json!({"selector": selector(name)});
            match rng.below(3) {
                0 => spec["minAvailable"] = rng.pick(&[json!(1), json!("50%"), json!(0)]),
                1 => spec["maxUnavailable"] = rng.pick(&[json!(1), json!("25%")]),
                _ => {}
            }
            if rng.chance(20) {
                spec["unhealthyPodEvictionPolicy"] =
                    json!(rng.pick(&["AlwaysAllow", "IfHealthyBudget"]));
            }
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(rng), "spec": spec})
        }
        other => panic!("no generator for {other}"),
    }
}

/// Percent of the objects given one of the mistakes [`break_it`] makes.
const BROKEN: u64 = 6;

/// One of the mistakes people make that the apiserver refuses: a request above its limit, two
/// containers with the same name, a label value that is a number or not a valid value, an
/// ephemeral container on create, a negative replica count.
fn break_it(rng: &mut Rng, object: &mut Value) {
    let at = match object["kind"].as_str().unwrap_or_default() {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    let has_pod = object
        .pointer(at)
        .and_then(|s| s.get("containers"))
        .is_some();
    let choice = if has_pod { rng.below(6) } else { rng.below(2) };
    match choice {
        0 => object["metadata"]["labels"] = json!({"app": 5}),
        1 => object["metadata"]["labels"] = json!({"app": rng.pick(&["-web", "a b", "web_"])}),
        2 if object["spec"].get("replicas").is_some() || object["kind"] == "Deployment" => {
            object["spec"]["replicas"] = json!(-1);
        }
        _ => {
            let Some(spec) = object.pointer_mut(at) else {
                return;
            };
            match choice {
                3 => {
                    spec["containers"][0]["resources"] = json!({"requests": {"cpu": "2"}, "limits": {"cpu": rng.pick(&[json!(1), json!("500m")])}});
                }
                4 => {
                    let copy = spec["containers"][0].clone();
                    spec["containers"].as_array_mut().unwrap().push(copy);
                }
                _ => {
                    spec["ephemeralContainers"] =
                        json!([{"name": "debug", "image": "busybox", "targetContainerName": "c0"}]);
                }
            }
        }
    }
}

/// Leave out what the cluster itself decides (see the view's documentation): system metadata, a
/// Service's allocated addresses, and the UID in a Job's generated selector and labels (the view
/// writes a placeholder there; every place that holds the UID is compared with it).
fn without_cluster_choices(kind: &str, object: &mut Value) {
    let uid = object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !uid.is_empty() {
        replace_text(object, &uid, palisade_engine::apiview::JOB_UID_PLACEHOLDER);
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "managedFields",
        ] {
            meta.remove(key);
        }
    }
    if kind == "Service" {
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            // healthCheckNodePort: allocated for `externalTrafficPolicy: Local`, as node ports are.
            for key in [
                "clusterIP",
                "clusterIPs",
                "ipFamilies",
                "ipFamilyPolicy",
                "healthCheckNodePort",
            ] {
                spec.remove(key);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports {
                    if let Some(port) = port.as_object_mut() {
                        port.remove("nodePort");
                    }
                }
            }
        }
    }
}

/// Replace every string equal to `from` by `to`.
fn replace_text(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(text) if text == from => *text = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_text(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_text(v, from, to)),
        _ => {}
    }
}

/// Every path where `a` and `b` differ, with both values.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (left, right) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{key}"), left, right, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (left, right)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), left, right, out);
            }
        }
        _ if a == b => {}
        // A dry run answers with the object as it would be stored: written in the storage's
        // protobuf and read back, which makes an empty list a missing one. Admission (and so the
        // view) still has the empty list.
        (Value::Null, Value::Array(items)) if items.is_empty() => {}
        _ => out.push(format!("{path}: apiserver {a}, view {b}")),
    }
}

/// What the apiserver made of `object` on a dry-run create: the object, or its refusal.
async fn dry_run(client: &Client, path: &str, object: &Value) -> Result<Result<Value, String>> {
    send(
        client,
        http::Method::POST,
        &format!("{path}?dryRun=All"),
        object,
    )
    .await
}

const KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "Namespace",
    "NetworkPolicy",
    "Ingress",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "PodDisruptionBudget",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_admission_view_is_what_the_apiserver_admits() {
    let tb = testbed();
    let cluster = tb.clusters[0].clone();
    let client = cluster.admin_client().await.unwrap();
    let namespace = unique_name("view");
    let created = dry_run_free_namespace(&client, &namespace).await;
    created.unwrap();

    let seed = seed_from("VIEW_SEED", SEED);
    let mut rng = Rng::new(seed);
    let mut disagreements: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut compared = 0usize;
    for kind in KINDS {
        for index in 0..PER_KIND {
            let name = format!("{}-{index:03}", kind.to_lowercase());
            let mut sent = object(&mut rng, kind, &name);
            if rng.chance(BROKEN) {
                break_it(&mut rng, &mut sent);
            }
            if !matches!(*kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding") {
                sent["metadata"]["namespace"] = json!(namespace);
            }
            let answer = dry_run(&client, &collection(kind, &namespace), &sent)
                .await
                .unwrap();
            let view = admission_view(&sent);
            compared += 1;
            let found = match (answer, view) {
                (Ok(mut admitted), Ok(view)) => {
                    let mut ours = view.object;
                    without_cluster_choices(kind, &mut admitted);
                    without_cluster_choices(kind, &mut ours);
                    let mut out = Vec::new();
                    differences("", &admitted, &ours, &mut out);
                    out
                }
                // Refused before a validating policy sees it: 422 from validation, 400 when the
                // body does not decode into the type (a label value that is a number), 403 from a
                // mutating admission plugin (Priority: a priority that is not its class's).
                (Err(refusal), Err(ViewError::Invalid(_)))
                    if ["400", "403", "422"]
                        .iter()
                        .any(|code| refusal.starts_with(code)) =>
                {
                    Vec::new()
                }
                (Err(refusal), Ok(_)) => vec![format!(
                    "the apiserver refused it ({refusal}), the view did not"
                )],
                (Ok(_), Err(error)) => vec![format!(
                    "the view refused it ({error}), the apiserver did not"
                )],
                (Err(refusal), Err(error)) => vec![format!(
                    "both refused, differently: apiserver {refusal}; view {error}"
                )],
            };
            if !found.is_empty() {
                disagreements.entry(kind).or_default().push(format!(
                    "seed {seed:#x} {name}: sent {sent}\n      {}",
                    found.join("\n      ")
                ));
            }
        }
    }
    let _ = delete_namespace(&client, &namespace).await;
    let mut report = String::new();
    let mut failed = 0;
    for (kind, found) in &disagreements {
        failed += found.len();
        report.push_str(&format!(
            "\n== {kind}: {} of {PER_KIND} disagree\n",
            found.len()
        ));
        for line in found.iter().take(3) {
            report.push_str(&format!("  {line}\n"));
        }
    }
    report.push_str("\n== every kind of difference, with how many objects show it\n");
    for (class, count) in classes(&disagreements) {
        report.push_str(&format!("  {count:4}  {class}\n"));
    }
    eprintln!(
        "admission view: {compared} objects of {} kinds compared, {failed} disagree",
        KINDS.len()
    );
    assert!(disagreements.is_empty(), "{report}");
}

/// The differences of every object, each written without its object's indexes and values (the
/// path and which side has what), counted once per object.
fn classes(disagreements: &BTreeMap<&str, Vec<String>>) -> BTreeMap<String, usize> {
    let mut classes = BTreeMap::new();
    for (kind, found) in disagreements {
        for object in found {
            let mut seen = std::collections::BTreeSet::new();
            for line in object.lines().skip(1) {
                let line = line.trim();
                let class = match line.split_once(": apiserver ") {
                    Some((path, values)) => {
                        let path: String = path
                            .split('[')
                            .map(|part| part.split_once(']').map_or(part, |(_, rest)| rest))
                            .collect::<Vec<_>>()
                            .join("[]");
                        let (ours, theirs) = values.split_once(", view ").unwrap_or((values, ""));
                        let shape = |v: &str| match v {
                            "null" => "absent",
                            _ => "present",
                        };
                        format!(
                            "{kind} {path}: apiserver {}, view {}",
                            shape(ours),
                            shape(theirs)
                        )
                    }
                    None => format!("{kind} {}", line.chars().take(160).collect::<String>()),
                };
                seen.insert(class);
            }
            for class in seen {
                *classes.entry(class).or_insert(0) += 1;
            }
        }
    }
    classes
}

/// A namespace for the dry runs (created for real: dry runs need it to exist).
async fn dry_run_free_namespace(client: &Client, name: &str) -> Result<()> {
    let request = http::Request::post("/api/v1/namespaces")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )?)?;
    let reply = palisade_testbed::send_with_warnings(client, request).await?;
    anyhow::ensure!(
        reply.status.is_success(),
        "creating namespace {name}: {}",
        reply.message()
    );
    Ok(())
}

/// Objects created per kind for the update differential.
const UPDATES_PER_KIND: usize = 100;

/// A change people make to a stored object, seeded: allowed ones (labels, images, replicas,
/// ports, data, …) and ones the apiserver refuses (immutable fields), and now and then none.
fn modify(rng: &mut Rng, kind: &str, old: &Value) -> Value {
    let mut new = old.clone();
    if rng.chance(10) {
        return new;
    }
    if rng.chance(30) {
        new["metadata"]["labels"]["changed"] = json!("yes");
    }
    if rng.chance(15) {
        new["metadata"]["annotations"] = json!({"note": "edited"});
    }
    let pod_at = match kind {
        "Pod" => Some("/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            Some("/spec/template/spec")
        }
        _ => None,
    };
    let choice = rng.below(8);
    match (kind, choice) {
        (_, 0) if pod_at.is_some() => {
            let spec = new.pointer_mut(pod_at.unwrap()).unwrap();
            spec["containers"][0]["image"] = json!(rng.pick(&["nginx:1.28", "busybox:1.37"]));
        }
        ("Pod", 1) => {
            let tolerations = new["spec"]["tolerations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut tolerations = tolerations;
            tolerations.push(json!({"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}));
            new["spec"]["tolerations"] = json!(tolerations);
        }
        ("Pod", 2) => new["spec"]["activeDeadlineSeconds"] = json!(rng.pick(&[30, 900])),
        ("Pod", 3) => {
            new["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "3"}});
        }
        ("Pod", 4) => {
            let extra = container(rng, "extra");
            new["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(extra);
        }
        ("Pod", 5) => new["spec"]["restartPolicy"] = json!("Never"),
        ("Pod", 6) => new["spec"]["terminationGracePeriodSeconds"] = json!(5),
        ("Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job", 6) => {
            // Quantities written as numbers, normalised on update as on create.
            new["spec"]["template"]["spec"]["containers"][0]["resources"] =
                json!({"limits": {"cpu": 2, "memory": 1e9}});
        }
        ("Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet", 7) => {
            // A field the old manifest set, left out: defaulted again.
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove("strategy");
                spec.remove("updateStrategy");
                spec.remove("revisionHistoryLimit");
            }
        }
        ("Service", 5) if old["spec"].get("clusterIP").is_none() => {
            new["spec"]["type"] = json!("LoadBalancer");
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove("externalName");
            }
        }
        ("Deployment" | "ReplicaSet" | "StatefulSet", 1 | 2) => {
            new["spec"]["replicas"] = json!(rng.below(4));
        }
        ("Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet", 3) => {
            let name = old["metadata"]["name"].as_str().unwrap();
            let other = format!("{name}-v2");
            new["spec"]["selector"] = json!({"matchLabels": {"app": other}});
            new["spec"]["template"]["metadata"]["labels"] = json!({"app": other});
        }
        ("StatefulSet", 4) => new["spec"]["serviceName"] = json!("renamed"),
        ("StatefulSet", 5) => new["spec"]["podManagementPolicy"] = json!("Parallel"),
        ("Deployment", 4) => new["spec"]["strategy"] = json!({"type": "Recreate"}),
        ("DaemonSet", 4) => new["spec"]["updateStrategy"] = json!({"type": "OnDelete"}),
        ("Deployment" | "ReplicaSet" | "DaemonSet", 5) => {
            new["spec"]["template"]["metadata"]["annotations"] = json!({"restartedAt": "now"});
        }
        ("Job", 1) => new["spec"]["parallelism"] = json!(rng.pick(&[1, 4])),
        ("Job", 2) => new["spec"]["backoffLimit"] = json!(rng.pick(&[0, 9])),
        ("Job", 3) => new["spec"]["completions"] = json!(rng.pick(&[1, 5])),
        ("Job", 4) => new["spec"]["suspend"] = json!(true),
        ("Job", 5) => new["spec"]["selector"] = json!({"matchLabels": {"mine": "yes"}}),
        ("Job", 7) => {
            let template = &mut new["spec"]["template"];
            template["spec"]["nodeSelector"] = json!({"zone": "a"});
            template["metadata"]["annotations"] = json!({"placed": "yes"});
        }
        ("CronJob", 1) => new["spec"]["schedule"] = json!("0 * * * *"),
        ("CronJob", 2) => new["spec"]["suspend"] = json!(true),
        ("Service", 1) => new["spec"]["ports"] = json!([{"port": 8443, "targetPort": "https"}]),
        ("Service", 2) => new["spec"]["clusterIP"] = json!("None"),
        ("Service", 3) => new["spec"]["selector"] = json!({"app": "other"}),
        ("Service", 4) if old["spec"].get("clusterIP").is_none() => {
            new["spec"]["type"] = json!("NodePort");
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove("externalName");
            }
        }
        ("ConfigMap", 1 | 2) => new["data"] = json!({"key": "changed"}),
        ("ConfigMap", 3) => new["immutable"] = json!(rng.pick(&[true, false])),
        ("ConfigMap", 4) => new["data"] = json!({}),
        ("Secret", 1 | 2) => {
            new["stringData"] = json!({"password": "changed"});
        }
        ("Secret", 3) => new["type"] = json!(rng.pick(&["Opaque", "kubernetes.io/basic-auth"])),
        ("Secret", 4) => new["immutable"] = json!(true),
        ("ServiceAccount", 1 | 2) => new["automountServiceAccountToken"] = json!(rng.chance(50)),
        ("PersistentVolumeClaim", 1 | 2) => {
            new["spec"]["resources"]["requests"]["storage"] = json!("20Gi");
        }
        ("PersistentVolumeClaim", 3) => new["spec"]["storageClassName"] = json!("slow"),
        ("PersistentVolumeClaim", 4) => new["spec"]["volumeName"] = json!("pv-1"),
        ("Namespace", 1) => new["spec"] = json!({"finalizers": []}),
        ("NetworkPolicy", 1 | 2) => {
            new["spec"]["ingress"] = json!([{"ports": [{"port": 8443}]}]);
        }
        ("Ingress", 1 | 2) => new["spec"]["rules"][0]["host"] = json!("b.example.com"),
        ("Role" | "ClusterRole", 1 | 2) => {
            new["rules"] = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]);
        }
        ("RoleBinding" | "ClusterRoleBinding", 1 | 2) => {
            new["roleRef"]["name"] = json!("edit");
        }
        ("RoleBinding" | "ClusterRoleBinding", 3) => {
            new["subjects"] = json!([{"kind": "Group", "name": "team"}]);
        }
        ("PodDisruptionBudget", 1 | 2) => {
            new["spec"]["minAvailable"] = json!(rng.pick(&[json!(2), json!("75%")]));
        }
        _ => {}
    }
    if rng.chance(8) {
        // A field the typed decoder does not know.
        new["spec"]["notAField"] = json!(true);
    }
    new
}

/// What a client sends back of what the apiserver generated (see the view's documentation): a
/// Job's generated selector and template labels, when the manifest leaves them out.
fn as_a_client_sends(kind: &str, new: &mut Value, stored: &Value) {
    if kind != "Job" || new["spec"]["manualSelector"] == json!(true) {
        return;
    }
    if new["spec"].get("selector").is_none() {
        new["spec"]["selector"] = stored["spec"]["selector"].clone();
    }
    let labels = stored["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for key in [
        "job-name",
        "batch.kubernetes.io/job-name",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
    ] {
        let mine = &mut new["spec"]["template"]["metadata"]["labels"];
        if mine.get(key).is_none() {
            if let Some(value) = labels.get(key) {
                mine[key] = value.clone();
            }
        }
    }
}

/// Sends `object` to `path` with `method`, dry run or not: the object the apiserver answers with,
/// or its refusal.
async fn send(
    client: &Client,
    method: http::Method,
    path: &str,
    object: &Value,
) -> Result<Result<Value, String>> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(object)?)?;
    let reply = palisade_testbed::send_with_warnings(client, request).await?;
    Ok(if reply.status.is_success() {
        Ok(serde_json::from_slice(&reply.body).context("JSON answer")?)
    } else {
        Err(format!("{} {}", reply.status.as_u16(), reply.message()))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_update_view_is_what_the_apiserver_admits_on_update() {
    let tb = testbed();
    let cluster = tb.clusters[0].clone();
    let client = cluster.admin_client().await.unwrap();
    let namespace = unique_name("viewup");
    dry_run_free_namespace(&client, &namespace).await.unwrap();

    let seed = seed_from("VIEW_SEED", SEED);
    let mut rng = Rng::new(seed ^ 0x0005_eed0_0000);
    let mut disagreements: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut compared = 0usize;
    let mut refused = 0usize;
    let mut created = Vec::new();
    let mut not_created: BTreeMap<String, usize> = BTreeMap::new();
    for kind in KINDS {
        for index in 0..UPDATES_PER_KIND {
            let name = format!("{namespace}-{}-{index:03}", kind.to_lowercase());
            let mut old = object(&mut rng, kind, &name);
            let scoped = matches!(*kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding");
            if !scoped {
                old["metadata"]["namespace"] = json!(namespace);
            }
            if *kind == "Job" && rng.chance(40) {
                // Suspended and never started: more of its template may change.
                old["spec"]["suspend"] = json!(true);
            }
            let path = collection(kind, &namespace);
            let stored = match send(&client, http::Method::POST, &path, &old)
                .await
                .unwrap()
            {
                Ok(stored) => stored,
                // Objects the apiserver does not create (the create differential covers them).
                Err(refusal) => {
                    let refusal: String = refusal.chars().take(150).collect();
                    *not_created.entry(refusal).or_insert(0) += 1;
                    continue;
                }
            };
            created.push((*kind, format!("{path}/{name}"), name.clone()));
            let new = modify(&mut rng, kind, &old);
            let mut sent = new.clone();
            as_a_client_sends(kind, &mut sent, &stored);
            sent["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
            let answer = send(
                &client,
                http::Method::PUT,
                &format!("{path}/{name}?dryRun=All"),
                &sent,
            )
            .await
            .unwrap();
            let view = palisade_engine::apiview::update_view(&new, &old);
            compared += 1;
            let mut found = Vec::new();
            match (answer, view) {
                (Ok(mut admitted), Ok(view)) => {
                    let mut ours = view.object;
                    without_cluster_choices(kind, &mut admitted);
                    without_cluster_choices(kind, &mut ours);
                    differences("", &admitted, &ours, &mut found);
                    let (mut theirs_old, mut ours_old) = (stored.clone(), view.old_object);
                    without_cluster_choices(kind, &mut theirs_old);
                    without_cluster_choices(kind, &mut ours_old);
                    let mut old_found = Vec::new();
                    differences("", &theirs_old, &ours_old, &mut old_found);
                    found.extend(old_found.into_iter().map(|d| format!("oldObject{d}")));
                }
                (Err(refusal), Err(ViewError::Invalid(_)))
                    if ["400", "403", "422"]
                        .iter()
                        .any(|code| refusal.starts_with(code)) =>
                {
                    refused += 1;
                }
                (Err(refusal), Ok(_)) => found.push(format!(
                    "the apiserver refused it ({refusal}), the view did not"
                )),
                (Ok(_), Err(error)) => found.push(format!(
                    "the view refused it ({error}), the apiserver did not"
                )),
                (Err(refusal), Err(error)) => found.push(format!(
                    "both refused, differently: apiserver {refusal}; view {error}"
                )),
            }
            if !found.is_empty() {
                disagreements.entry(kind).or_default().push(format!(
                    "seed {seed:#x} {name}: old {old}\n      new {new}\n      {}",
                    found.join("\n      ")
                ));
            }
        }
    }
    remove_all(&client, &created).await;
    let _ = delete_namespace(&client, &namespace).await;
    let mut report = String::new();
    let mut failed = 0;
    for (kind, found) in &disagreements {
        failed += found.len();
        report.push_str(&format!("\n== {kind}: {} disagree\n", found.len()));
        for line in found.iter().take(3) {
            report.push_str(&format!("  {line}\n"));
        }
    }
    eprintln!(
        "update view: {compared} updates of {} kinds compared ({refused} refused by both), \
         {failed} disagree",
        KINDS.len()
    );
    let not_created_count: usize = not_created.values().sum();
    eprintln!("  {not_created_count} generated objects the apiserver did not create, for example:");
    for refusal in not_created.keys().take(3) {
        eprintln!("    {refusal}");
    }
    // A refusal that is not the object's fault (an exhausted range, an unreachable etcd) would
    // quietly thin out the comparison.
    let broken: Vec<&String> = not_created.keys().filter(|r| !r.starts_with('4')).collect();
    assert!(
        broken.is_empty(),
        "the test bed could not create objects: {broken:?}"
    );
    assert!(
        compared > KINDS.len() * UPDATES_PER_KIND * 9 / 10,
        "too few objects were created"
    );
    assert!(
        refused > 0,
        "no update was refused: the immutable fields went untested"
    );
    assert!(disagreements.is_empty(), "{report}");
}

/// Deletes what the update differential created. The test bed runs no controllers: a claim's
/// protection finalizer is taken off by hand, a namespace is finalized, and nothing in a
/// namespace goes with it (a Service would keep its cluster IP).
async fn remove_all(client: &Client, created: &[(&str, String, String)]) {
    for (kind, path, name) in created {
        if *kind == "Namespace" {
            let _ = delete_namespace(client, name).await;
            continue;
        }
        let request = http::Request::delete(path.as_str())
            .body(Vec::new())
            .unwrap();
        let _ = palisade_testbed::send_with_warnings(client, request).await;
        if *kind == "PersistentVolumeClaim" {
            let request = http::Request::patch(path.as_str())
                .header("content-type", "application/merge-patch+json")
                .body(br#"{"metadata":{"finalizers":null}}"#.to_vec())
                .unwrap();
            let _ = palisade_testbed::send_with_warnings(client, request).await;
        }
    }
}
