//! `v1`: pods and pod templates, Service, Secret, Namespace, PersistentVolumeClaim.

use std::cmp::Ordering;
use std::collections::HashSet;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::quantity::Quantity;
use super::{
    each, invalid, join, metadata, object_at, or_set, or_set_int, or_set_str, reset_status,
    set_generation, Op, ViewError,
};

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// A whole Pod: `SetObjectDefaults_Pod`, then, on create, the pod strategy's `PrepareForCreate`
/// (on an update the status and generation are the caller's).
pub(super) fn pod(object: &mut Map<String, Value>, op: Op) -> Result<(), ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    let ephemeral = spec.get("ephemeralContainers").and_then(Value::as_array);
    if op == Op::Create && ephemeral.is_some_and(|e| !e.is_empty()) {
        return Err(invalid(
            "spec.ephemeralContainers",
            "Forbidden: cannot be set on create",
        ));
    }
    pod_spec(spec, "spec", true)?;
    if op == Op::Update {
        default_tolerations(spec);
        return Ok(());
    }
    admit_pod(spec)?;
    let qos = qos_class(spec);
    set_generation(object);
    let mut status = Map::new();
    status.insert("phase".into(), Value::from("Pending"));
    status.insert("qosClass".into(), Value::from(qos));
    object.insert("status".into(), Value::Object(status));
    Ok(())
}

/// A pod template (`spec.template` of a workload) at `path`: its metadata, and its spec defaulted
/// as the workload's defaulting does (a pod's spec defaults, not the Pod-only ones).
pub(super) fn pod_template(
    parent: &mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<(), ViewError> {
    let Some(template) = object_at(parent, key) else {
        return Err(invalid(path, "must be an object"));
    };
    or_set(template, "metadata", Map::new());
    metadata(template, &join(path, "metadata"))?;
    let spec = object_at(template, "spec")
        .ok_or_else(|| invalid(&join(path, "spec"), "must be an object"))?;
    let ephemeral = spec.get("ephemeralContainers").and_then(Value::as_array);
    if ephemeral.is_some_and(|e| !e.is_empty()) {
        return Err(invalid(
            &join(path, "spec.ephemeralContainers"),
            "Forbidden: ephemeral containers not allowed in pod template",
        ));
    }
    pod_spec(spec, &join(path, "spec"), false)
}

/// A pod spec at `path`; `whole_pod` adds what only a Pod's own defaulting does.
fn pod_spec(spec: &mut Map<String, Value>, path: &str, whole_pod: bool) -> Result<(), ViewError> {
    or_set(spec, "containers", Vec::<Value>::new());
    check_containers(spec, path)?;
    check_init_containers(spec, path)?;
    check_volume_mounts(spec, path)?;
    check_windows(spec, path)?;
    check_host_process(spec, path)?;

    if whole_pod {
        if spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|n| n < 0)
        {
            spec.insert("terminationGracePeriodSeconds".into(), Value::from(1));
        }
        for list in ["containers", "initContainers"] {
            for (_, container) in each(spec, list) {
                requests_from_limits(container);
            }
        }
        or_set(spec, "enableServiceLinks", true);
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for list in ["containers", "initContainers"] {
                for (_, container) in each(spec, list) {
                    for (_, port) in each(container, "ports") {
                        if port.get("hostPort").is_none_or(|p| p.as_i64() == Some(0)) {
                            if let Some(container_port) = port.get("containerPort").cloned() {
                                port.insert("hostPort".into(), container_port);
                            }
                        }
                    }
                }
            }
        }
    }

    // SetDefaults_PodSpec
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| spec.get("serviceAccount").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    if account.is_empty() {
        spec.remove("serviceAccountName");
        spec.remove("serviceAccount");
    } else {
        spec.insert("serviceAccountName".into(), Value::from(account.clone()));
        spec.insert("serviceAccount".into(), Value::from(account));
    }
    or_set_str(spec, "dnsPolicy", "ClusterFirst");
    or_set_str(spec, "restartPolicy", "Always");
    or_set(spec, "securityContext", Map::new());
    or_set(spec, "terminationGracePeriodSeconds", 30);
    or_set_str(spec, "schedulerName", "default-scheduler");

    check_sleep_hooks(spec, path)?;
    for (i, volume) in each(spec, "volumes") {
        self::volume(volume, &format!("{path}.volumes[{i}]"))?;
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, container) in each(spec, list) {
            self::container(container, &format!("{path}.{list}[{i}]"))?;
        }
    }
    resource_list(spec, "overhead", &join(path, "overhead"))?;
    if let Some(resources) = spec.get_mut("resources").and_then(Value::as_object_mut) {
        let at = join(path, "resources");
        resource_list(resources, "limits", &join(&at, "limits"))?;
        resource_list(resources, "requests", &join(&at, "requests"))?;
    }
    Ok(())
}

/// Names and images of containers: present, and names unique across the pod.
fn check_containers(spec: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let mut names = HashSet::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(items) = spec.get(list) else {
            continue;
        };
        let Some(items) = items.as_array() else {
            return Err(invalid(
                &join(path, list),
                "cannot unmarshal into an array of containers",
            ));
        };
        for (i, container) in items.iter().enumerate() {
            let at = format!("{path}.{list}[{i}]");
            let name = match container.get("name") {
                None => "",
                Some(Value::String(name)) => name.as_str(),
                Some(other) => {
                    return Err(invalid(
                        &format!("{at}.name"),
                        format!("cannot unmarshal {other} into a string"),
                    ))
                }
            };
            if name.is_empty() {
                return Err(invalid(&format!("{at}.name"), "Required value"));
            }
            if !names.insert(name) {
                return Err(invalid(
                    &format!("{at}.name"),
                    format!("Duplicate value: {name:?}"),
                ));
            }
            match container.get("image") {
                Some(Value::String(image)) if !image.trim().is_empty() => {}
                Some(Value::String(_)) | None if list != "ephemeralContainers" => {
                    return Err(invalid(&format!("{at}.image"), "Required value"))
                }
                Some(Value::String(_)) | None => {}
                Some(other) => {
                    return Err(invalid(
                        &format!("{at}.image"),
                        format!("cannot unmarshal {other} into a string"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// An init container that is not a sidecar (`restartPolicy: Always`) may have no probes and no
/// lifecycle hooks.
fn check_init_containers(spec: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let init = spec.get("initContainers").and_then(Value::as_array);
    for (i, container) in init.into_iter().flatten().enumerate() {
        if container.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            continue;
        }
        for field in [
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
        ] {
            if container.get(field).is_some() {
                return Err(invalid(
                    &format!("{path}.initContainers[{i}].{field}"),
                    "Forbidden: may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
    Ok(())
}

/// A Windows pod (`os.name: windows`) sets none of the Linux-only fields.
fn check_windows(spec: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    const POD_CONTEXT: &[&str] = &[
        "appArmorProfile",
        "seLinuxOptions",
        "seccompProfile",
        "fsGroup",
        "fsGroupChangePolicy",
        "runAsUser",
        "runAsGroup",
        "supplementalGroups",
        "supplementalGroupsPolicy",
        "seLinuxChangePolicy",
    ];
    const CONTAINER_CONTEXT: &[&str] = &[
        "appArmorProfile",
        "seLinuxOptions",
        "seccompProfile",
        "capabilities",
        "readOnlyRootFilesystem",
        "privileged",
        "allowPrivilegeEscalation",
        "procMount",
        "runAsUser",
        "runAsGroup",
    ];
    let windows = spec
        .get("os")
        .and_then(|os| os.get("name"))
        .and_then(Value::as_str);
    if windows != Some("windows") {
        return Ok(());
    }
    let forbidden = |at: String| Err(invalid(&at, "Forbidden: cannot be set for a windows pod"));
    if let Some(context) = spec.get("securityContext").and_then(Value::as_object) {
        for field in POD_CONTEXT {
            if context.contains_key(*field) {
                return forbidden(format!("{path}.securityContext.{field}"));
            }
        }
        let sysctls = context.get("sysctls").and_then(Value::as_array);
        if sysctls.is_some_and(|s| !s.is_empty()) {
            return forbidden(format!("{path}.securityContext.sysctls"));
        }
    }
    if spec.contains_key("hostUsers") || spec.contains_key("shareProcessNamespace") {
        let field = if spec.contains_key("hostUsers") {
            "hostUsers"
        } else {
            "shareProcessNamespace"
        };
        return forbidden(join(path, field));
    }
    for field in ["hostPID", "hostIPC"] {
        if spec.get(field).and_then(Value::as_bool) == Some(true) {
            return forbidden(join(path, field));
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (i, container) in containers.into_iter().flatten().enumerate() {
            let Some(context) = container.get("securityContext").and_then(Value::as_object) else {
                continue;
            };
            for field in CONTAINER_CONTEXT {
                if context.contains_key(*field) {
                    return forbidden(format!("{path}.{list}[{i}].securityContext.{field}"));
                }
            }
        }
    }
    Ok(())
}

/// A `sleep` lifecycle hook sleeps no longer than the pod's grace period (defaulted by now).
fn check_sleep_hooks(spec: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let Some(grace) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
    else {
        return Ok(());
    };
    for list in ["initContainers", "containers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (i, container) in containers.into_iter().flatten().enumerate() {
            for hook in ["postStart", "preStop"] {
                let seconds = container
                    .get("lifecycle")
                    .and_then(|l| l.get(hook))
                    .and_then(|h| h.get("sleep"))
                    .and_then(|s| s.get("seconds"))
                    .and_then(Value::as_i64);
                if let Some(seconds) = seconds.filter(|s| *s < 0 || *s > grace) {
                    return Err(invalid(
                        &format!("{path}.{list}[{i}].lifecycle.{hook}.sleep"),
                        format!(
                            "Invalid value: {seconds}: must be non-negative and less than \
                             terminationGracePeriodSeconds ({grace})"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Windows HostProcess containers: all of a pod's containers or none, and only with the host's
/// network. A container's `windowsOptions.hostProcess` overrides the pod's.
fn check_host_process(spec: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let host_process = |context: Option<&Value>| {
        context
            .and_then(|c| c.get("windowsOptions"))
            .and_then(|w| w.get("hostProcess"))
            .and_then(Value::as_bool)
    };
    let pod = host_process(spec.get("securityContext"));
    let mut any = false;
    let mut all = true;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for container in containers.into_iter().flatten() {
            let on = host_process(container.get("securityContext"))
                .or(pod)
                .unwrap_or(false);
            any |= on;
            all &= on;
        }
    }
    if !any {
        return Ok(());
    }
    if !all {
        return Err(invalid(
            path,
            "Invalid value: \"\": If pod contains any hostProcess containers then all \
             containers must be HostProcess",
        ));
    }
    if spec.get("hostNetwork").and_then(Value::as_bool) != Some(true) {
        return Err(invalid(
            &join(path, "hostNetwork"),
            "Invalid value: false: hostNetwork must be true if pod contains any hostProcess \
             containers",
        ));
    }
    Ok(())
}

/// Each volume mount names a volume of the pod.
fn check_volume_mounts(spec: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let volumes: HashSet<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (i, container) in containers.into_iter().flatten().enumerate() {
            let mounts = container.get("volumeMounts").and_then(Value::as_array);
            for (j, mount) in mounts.into_iter().flatten().enumerate() {
                let name = mount
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !volumes.contains(name) {
                    return Err(invalid(
                        &format!("{path}.{list}[{i}].volumeMounts[{j}].name"),
                        format!("Not found: {name:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A Pod's container without a request gets its limit as the request.
fn requests_from_limits(container: &mut Map<String, Value>) {
    let Some(resources) = container
        .get_mut("resources")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(requests) = object_at(resources, "requests") else {
        return;
    };
    for (name, limit) in limits {
        requests.entry(name).or_insert(limit);
    }
}

fn container(container: &mut Map<String, Value>, path: &str) -> Result<(), ViewError> {
    if container
        .get("imagePullPolicy")
        .is_none_or(|p| p.as_str() == Some(""))
    {
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        container.insert("imagePullPolicy".into(), Value::from(pull_policy(image)));
    }
    or_set_str(container, "terminationMessagePath", "/dev/termination-log");
    or_set_str(container, "terminationMessagePolicy", "File");
    for (_, port) in each(container, "ports") {
        or_set_str(port, "protocol", "TCP");
    }
    for (_, env) in each(container, "env") {
        if let Some(from) = env.get_mut("valueFrom").and_then(Value::as_object_mut) {
            if let Some(field) = from.get_mut("fieldRef").and_then(Value::as_object_mut) {
                or_set_str(field, "apiVersion", "v1");
            }
            if let Some(file) = from.get_mut("fileKeyRef").and_then(Value::as_object_mut) {
                or_set(file, "optional", false);
            }
        }
    }
    if let Some(resources) = container
        .get_mut("resources")
        .and_then(Value::as_object_mut)
    {
        let at = join(path, "resources");
        resource_list(resources, "limits", &join(&at, "limits"))?;
        resource_list(resources, "requests", &join(&at, "requests"))?;
        requests_within_limits(resources, &at)?;
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe).and_then(Value::as_object_mut) {
            or_set_int(probe, "timeoutSeconds", 1);
            or_set_int(probe, "periodSeconds", 10);
            or_set_int(probe, "successThreshold", 1);
            or_set_int(probe, "failureThreshold", 3);
            http_get(probe);
            if let Some(grpc) = probe.get_mut("grpc").and_then(Value::as_object_mut) {
                or_set(grpc, "service", "");
            }
        }
    }
    if let Some(lifecycle) = container
        .get_mut("lifecycle")
        .and_then(Value::as_object_mut)
    {
        for hook in ["postStart", "preStop"] {
            if let Some(hook) = lifecycle.get_mut(hook).and_then(Value::as_object_mut) {
                http_get(hook);
            }
        }
    }
    Ok(())
}

fn http_get(handler: &mut Map<String, Value>) {
    if let Some(get) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        or_set_str(get, "path", "/");
        or_set_str(get, "scheme", "HTTP");
    }
}

/// The pull policy for an image without one: `Always` for `latest` or no tag, else
/// `IfNotPresent` (a digest without a tag, and a reference that does not parse, included).
pub(super) fn pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference as the kubelet's parser reads it: `latest` when there is neither
/// a tag nor a digest, `None` with a digest only or when the reference is not valid.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if name.is_empty() || digest.is_some_and(|d| !d.contains(':')) {
        return None;
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    // The first component is a registry when it has a dot, a port or is localhost, or has capitals.
    let path = match repository.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            rest
        }
        _ => repository,
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if !path.split('/').all(component_ok) {
        return None;
    }
    match tag {
        Some(tag) => {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            ok.then(|| tag.to_owned())
        }
        None if digest.is_some() => None,
        None => Some("latest".into()),
    }
}

/// A resource list at `key`: each quantity decoded, rounded up to a milli-unit and written back.
fn resource_list(map: &mut Map<String, Value>, key: &str, path: &str) -> Result<(), ViewError> {
    let Some(list) = map.get_mut(key) else {
        return Ok(());
    };
    let Some(list) = list.as_object_mut() else {
        return Err(invalid(path, "cannot unmarshal into a map of quantities"));
    };
    for (name, value) in list.iter_mut() {
        let at = format!("{path}.{name}");
        let parsed = Quantity::from_json(value).map_err(|why| invalid(&at, why))?;
        if parsed.is_negative() {
            return Err(invalid(
                &at,
                format!(
                    "Invalid value: {:?}: must be greater than or equal to 0",
                    parsed.text()
                ),
            ));
        }
        let text = parsed.rounded_to_milli().text();
        if value.as_str() != Some(text.as_str()) {
            *value = Value::from(text);
        }
    }
    Ok(())
}

/// A single quantity field at `key` (not a resource list: no rounding).
fn quantity_field(map: &mut Map<String, Value>, key: &str, path: &str) -> Result<(), ViewError> {
    if let Some(value) = map.get_mut(key) {
        let text = Quantity::from_json(value)
            .map_err(|why| invalid(&join(path, key), why))?
            .text();
        if value.as_str() != Some(text.as_str()) {
            *value = Value::from(text);
        }
    }
    Ok(())
}

fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

/// A container's requests against its limits, in the apiserver's words.
fn requests_within_limits(resources: &Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let empty = Map::new();
    let limits = resources
        .get("limits")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let requests = resources
        .get("requests")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let decode = |v: &Value| Quantity::from_json(v).ok();
    let mut names: Vec<&String> = requests.keys().collect();
    names.sort();
    for name in names {
        let Some(request) = requests.get(name).and_then(decode) else {
            continue;
        };
        match limits.get(name).and_then(decode) {
            Some(limit) => {
                let order = request.compare(&limit);
                if order != Ordering::Equal && !overcommit_allowed(name) {
                    return Err(invalid(
                        &join(path, "requests"),
                        format!(
                            "Invalid value: {:?}: must be equal to {name} limit of {}",
                            request.text(),
                            limit.text()
                        ),
                    ));
                }
                if order == Ordering::Greater {
                    return Err(invalid(
                        &join(path, "requests"),
                        format!(
                            "Invalid value: {:?}: must be less than or equal to {name} limit of {}",
                            request.text(),
                            limit.text()
                        ),
                    ));
                }
            }
            None if !overcommit_allowed(name) => {
                return Err(invalid(
                    &join(path, "limits"),
                    "Required value: Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
    Ok(())
}

fn volume(volume: &mut Map<String, Value>, path: &str) -> Result<(), ViewError> {
    if !VOLUME_SOURCES.iter().any(|s| volume.contains_key(*s)) {
        volume.insert("emptyDir".into(), Value::Object(Map::new()));
    }
    if let Some(image) = volume.get_mut("image").and_then(Value::as_object_mut) {
        if image
            .get("pullPolicy")
            .is_none_or(|p| p.as_str() == Some(""))
        {
            let reference = image
                .get("reference")
                .and_then(Value::as_str)
                .unwrap_or_default();
            image.insert("pullPolicy".into(), Value::from(pull_policy(reference)));
        }
    }
    if let Some(host_path) = volume.get_mut("hostPath").and_then(Value::as_object_mut) {
        or_set(host_path, "type", "");
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = volume.get_mut(key).and_then(Value::as_object_mut) {
            or_set(s, "defaultMode", 420);
        }
    }
    if let Some(iscsi) = volume.get_mut("iscsi").and_then(Value::as_object_mut) {
        or_set_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = volume.get_mut("rbd").and_then(Value::as_object_mut) {
        or_set_str(rbd, "pool", "rbd");
        or_set_str(rbd, "user", "admin");
        or_set_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(downward) = volume.get_mut("downwardAPI").and_then(Value::as_object_mut) {
        field_refs(downward);
    }
    if let Some(disk) = volume.get_mut("azureDisk").and_then(Value::as_object_mut) {
        or_set(disk, "cachingMode", "ReadWrite");
        or_set(disk, "fsType", "ext4");
        or_set(disk, "readOnly", false);
        or_set(disk, "kind", "Shared");
    }
    if let Some(projected) = volume.get_mut("projected").and_then(Value::as_object_mut) {
        for (_, source) in each(projected, "sources") {
            if let Some(downward) = source.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                field_refs(downward);
            }
            if let Some(token) = source
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                or_set(token, "expirationSeconds", 3600);
            }
        }
    }
    if let Some(scale_io) = volume.get_mut("scaleIO").and_then(Value::as_object_mut) {
        or_set_str(scale_io, "storageMode", "ThinProvisioned");
        or_set_str(scale_io, "fsType", "xfs");
    }
    if let Some(empty_dir) = volume.get_mut("emptyDir").and_then(Value::as_object_mut) {
        quantity_field(empty_dir, "sizeLimit", &join(path, "emptyDir"))?;
    }
    if let Some(template) = volume
        .get_mut("ephemeral")
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(Value::as_object_mut)
    {
        if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
            claim_spec(spec, &join(path, "ephemeral.volumeClaimTemplate.spec"))?;
        }
    }
    Ok(())
}

fn field_refs(downward: &mut Map<String, Value>) {
    for (_, item) in each(downward, "items") {
        if let Some(field) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
            or_set_str(field, "apiVersion", "v1");
        }
    }
}

/// The QoS class the pod strategy computes (requests and limits of cpu and memory).
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    fn resources_qos(resources: Option<&Value>) -> &'static str {
        let get = |key: &str| {
            resources
                .and_then(|r| r.get(key))
                .and_then(Value::as_object)
        };
        let (requests, limits) = (get("requests"), get("limits"));
        if requests.is_none_or(Map::is_empty) && limits.is_none_or(Map::is_empty) {
            return "BestEffort";
        }
        let zero = Quantity::parse("0").ok();
        let amount = |list: Option<&Map<String, Value>>, name: &str| {
            list.and_then(|l| l.get(name))
                .and_then(|v| Quantity::from_json(v).ok())
                .or_else(|| zero.clone())
        };
        let mut class = "";
        for name in ["cpu", "memory"] {
            let (request, limit) = (amount(requests, name), amount(limits, name));
            let this = match (request, limit) {
                (Some(r), Some(l)) if r.compare(&l) != Ordering::Equal => return "Burstable",
                (Some(r), _) if r.is_zero() => "BestEffort",
                _ => "Guaranteed",
            };
            if class.is_empty() {
                class = this;
            } else if class != this {
                return "Burstable";
            }
        }
        class
    }
    let pod_level = spec.get("resources").filter(|r| {
        ["requests", "limits"].iter().any(|k| {
            r.get(*k).and_then(Value::as_object).is_some_and(|l| {
                l.keys()
                    .any(|n| n == "cpu" || n == "memory" || n.starts_with("hugepages-"))
            })
        })
    });
    if pod_level.is_some() {
        return resources_qos(pod_level);
    }
    let mut class = "";
    for list in ["initContainers", "containers"] {
        for container in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let this = resources_qos(container.get("resources"));
            if this == "Burstable" {
                return this;
            }
            if class.is_empty() {
                class = this;
            } else if class != this {
                return "Burstable";
            }
        }
    }
    if class.is_empty() {
        "BestEffort"
    } else {
        class
    }
}

/// A Service's defaults; on create, checked here (an update checks it after its preparation,
/// which may clear a cluster IP: [`check_service`]).
pub(super) fn service(object: &mut Map<String, Value>, op: Op) -> Result<(), ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    if op == Op::Create {
        check_service(spec)?;
    }
    or_set_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some();
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    serde_json::json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    or_set_str(spec, "type", "ClusterIP");
    for (_, port) in each(spec, "ports") {
        or_set_str(port, "protocol", "TCP");
        let unset = port
            .get("targetPort")
            .is_none_or(|t| t.as_i64() == Some(0) || t.as_str() == Some(""));
        if unset {
            let number = port.get("port").cloned().unwrap_or(Value::from(0));
            port.insert("targetPort".into(), number);
        }
    }
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let externally_accessible = kind == "LoadBalancer"
        || kind == "NodePort"
        || (kind == "ClusterIP"
            && spec
                .get("externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|ips| !ips.is_empty()));
    if externally_accessible {
        or_set_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        or_set(spec, "internalTrafficPolicy", "Cluster");
    }
    if kind == "LoadBalancer" {
        or_set(spec, "allocateLoadBalancerNodePorts", true);
    }
    object.insert("status".into(), serde_json::json!({"loadBalancer": {}}));
    Ok(())
}

/// Ports unless the Service is headless or an ExternalName; no cluster IP for an ExternalName, no
/// headless NodePort or LoadBalancer.
pub(super) fn check_service(spec: &Map<String, Value>) -> Result<(), ViewError> {
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let headless = cluster_ip == "None";
    let ports = spec.get("ports").and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && !headless && kind != "ExternalName" {
        return Err(invalid("spec.ports", "Required value"));
    }
    match kind {
        "LoadBalancer" | "NodePort" if headless => Err(invalid(
            "spec.clusterIPs[0]",
            format!("Invalid value: \"None\": may not be set to 'None' for {kind} services"),
        )),
        "ExternalName" if !cluster_ip.is_empty() => Err(invalid(
            "spec.clusterIPs",
            "Forbidden: may not be set for ExternalName services",
        )),
        _ => Ok(()),
    }
}

/// A Secret: type `Opaque`; `stringData` merged into `data` (base64), as conversion does.
pub(super) fn secret(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    or_set_str(object, "type", "Opaque");
    if let Some(string_data) = object.remove("stringData") {
        let Some(string_data) = string_data.as_object() else {
            return Err(invalid(
                "stringData",
                "cannot unmarshal into a map of strings",
            ));
        };
        if !string_data.is_empty() {
            let data = object_at(object, "data").ok_or_else(|| invalid("data", "must be a map"))?;
            for (key, value) in string_data {
                let Some(text) = value.as_str() else {
                    return Err(invalid(
                        &format!("stringData.{key}"),
                        "cannot unmarshal into a string",
                    ));
                };
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(key.clone(), Value::from(encoded));
            }
        }
    }
    Ok(())
}

/// A Namespace: its name label, the `kubernetes` finalizer, phase `Active`.
pub(super) fn namespace(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if let Some(name) = name {
        if let Some(labels) = object_at(object, "metadata").and_then(|m| object_at(m, "labels")) {
            labels.insert("kubernetes.io/metadata.name".into(), Value::from(name));
        }
    }
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    let finalizers = spec
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(finalizers) = finalizers.as_array_mut() {
        if !finalizers.iter().any(|f| f.as_str() == Some("kubernetes")) {
            finalizers.push(Value::from("kubernetes"));
        }
    }
    object.insert("status".into(), serde_json::json!({"phase": "Active"}));
    Ok(())
}

/// Which PersistentVolumeClaim [`persistent_volume_claim`] prepares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// A claim being created: its status cleared, the protection finalizer added.
    Created,
    /// A claim being updated: its status is the stored one (the caller's).
    Updated,
    /// A StatefulSet's claim template: status `Pending`.
    Template,
}

/// A PersistentVolumeClaim at `path` (the object itself, or a StatefulSet's claim template):
/// volume mode `Filesystem`, quantities, and the status as `claim` says.
pub(super) fn persistent_volume_claim(
    object: &mut Map<String, Value>,
    path: &str,
    claim: Claim,
) -> Result<(), ViewError> {
    let spec_path = join(path, "spec");
    let spec = object_at(object, "spec").ok_or_else(|| invalid(&spec_path, "must be an object"))?;
    claim_spec(spec, &spec_path)?;
    if claim == Claim::Created {
        reset_status(object, &[]);
        // StorageObjectInUseProtection (admission, on create only): the finalizer that keeps a
        // claim in use.
        if let Some(meta) = object_at(object, "metadata") {
            add_finalizer(meta, "kubernetes.io/pvc-protection");
        }
    }
    let status =
        object_at(object, "status").ok_or_else(|| invalid(path, "status must be an object"))?;
    or_set_str(status, "phase", "Pending");
    Ok(())
}

fn claim_spec(spec: &mut Map<String, Value>, path: &str) -> Result<(), ViewError> {
    or_set(spec, "volumeMode", "Filesystem");
    if let Some(resources) = spec.get_mut("resources").and_then(Value::as_object_mut) {
        let at = join(path, "resources");
        resource_list(resources, "limits", &join(&at, "limits"))?;
        resource_list(resources, "requests", &join(&at, "requests"))?;
    }
    Ok(())
}

/// Appends `finalizer` to `metadata.finalizers` unless it is there.
fn add_finalizer(meta: &mut Map<String, Value>, finalizer: &str) {
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut() {
        if !list.iter().any(|f| f.as_str() == Some(finalizer)) {
            list.push(Value::from(finalizer));
        }
    }
}

/// The built-in priority classes: name, value.
const PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// The mutating admission plugins on by default that change a Pod on create (templates are not
/// Pods: they pass untouched). `Priority`: the priority of the pod's class (0 and
/// `PreemptLowerPriority` without a class, as when no class is the global default; a class that
/// is not built in is left as written). `DefaultTolerationSeconds`: tolerations of 300 s for the
/// `not-ready` and `unreachable` NoExecute taints, unless a toleration already covers them.
fn admit_pod(spec: &mut Map<String, Value>) -> Result<(), ViewError> {
    let class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let priority = if class.is_empty() {
        Some(0)
    } else {
        PRIORITY_CLASSES
            .iter()
            .find(|(name, _)| *name == class)
            .map(|(_, value)| *value)
    };
    if let Some(priority) = priority {
        if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
            if given != priority {
                return Err(invalid(
                    "spec.priority",
                    format!(
                        "Forbidden: the integer value of priority ({given}) must not be provided \
                         in pod spec; priority admission controller computed {priority} from the \
                         given PriorityClass name"
                    ),
                ));
            }
        }
        or_set(spec, "priority", priority);
        or_set(spec, "preemptionPolicy", "PreemptLowerPriority");
    }

    default_tolerations(spec);
    Ok(())
}

/// `DefaultTolerationSeconds` (on create and update): tolerations of 300 s for the `not-ready` and
/// `unreachable` NoExecute taints, unless a toleration already covers them.
fn default_tolerations(spec: &mut Map<String, Value>) {
    let covers = |toleration: &Value, key: &str| {
        let field = |name: &str| {
            toleration
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        (field("key") == key || field("key").is_empty())
            && (field("effect") == "NoExecute" || field("effect").is_empty())
    };
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(tolerations) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            if !tolerations.iter().any(|t| covers(t, key)) {
                tolerations.push(serde_json::json!({
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }));
            }
        }
    }
}
