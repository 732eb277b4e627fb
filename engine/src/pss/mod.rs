//! Pod Security Standards: a native port of the upstream Pod Security Admission checks
//! (kubernetes/pod-security-admission), exact per Kubernetes minor version.
//!
//! - [`Level`], [`Version`], [`LevelVersion`]: what a namespace label asks for
//!   (`restricted`, `v1.30`, `restricted:latest`).
//! - [`check_pod`] runs the checks of one level and version on a pod's metadata and spec;
//!   [`check_object`] finds the pod template of a Pod or a workload first.
//! - [`PssResult::message`] words a denial exactly as the apiserver does
//!   (`violates PodSecurity "restricted:latest": …`).
//! - [`evaluate`] applies Pod Security Admission's rules about which requests each mode looks at,
//!   and answers in the engine's [`Verdict`].
//!
//! Checks work directly on `serde_json::Value`: a pod that passes is checked without allocating.
//! Fields are read as the apiserver's typed decoding would read them; values of the wrong JSON
//! type count as absent (the apiserver would have refused such a pod before admission).
//!
//! [`CompactPod`] is the same pod reduced to what the checks read, built straight from JSON text
//! in one pass that skips the rest: for checking many objects that arrive as text (impact,
//! scans), or many times. Its verdicts and messages are those of [`verdict_object`] and
//! [`check_object`]: the rules are one code, reading either form through the same views.

mod checks;
mod compact;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::admission::{AdmissionRequest, Operation};
use crate::mode::{Mode, PsaLabel};
use crate::verdict::{Action, EngineKind, Finding, Verdict};

pub use checks::NEWEST_MINOR;
pub use compact::CompactPod;

/// A Pod Security Standards level, from the most permissive to the strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Everything is allowed.
    Privileged,
    /// Known privilege escalations are forbidden.
    Baseline,
    /// Hardening best practices on top of baseline.
    Restricted,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Privileged, Level::Baseline, Level::Restricted];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy version: a Kubernetes 1.x minor, or `latest`. Versions newer than the newest check
/// change evaluate like `latest`, as the apiserver does; they still print as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Latest,
    /// Kubernetes `v1.<minor>`.
    Minor(u32),
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Version::Latest, Version::Latest) => std::cmp::Ordering::Equal,
            (Version::Latest, Version::Minor(_)) => std::cmp::Ordering::Greater,
            (Version::Minor(_), Version::Latest) => std::cmp::Ordering::Less,
            (Version::Minor(a), Version::Minor(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(minor) => write!(f, "v1.{minor}"),
        }
    }
}

/// A level, version or `level:version` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePssError {
    #[error("unknown Pod Security level `{0}`: expected one of privileged, baseline, restricted")]
    Level(String),
    #[error("invalid Pod Security version `{0}`: expected `latest` or `v1.<minor>` (for example `v1.30`)")]
    Version(String),
}

impl FromStr for Level {
    type Err = ParsePssError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| ParsePssError::Level(s.to_owned()))
    }
}

impl FromStr for Version {
    type Err = ParsePssError;

    /// `latest`, `v1.25` or `1.25`. Minors have no leading zeros, as in the apiserver.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let err = || ParsePssError::Version(s.to_owned());
        let rest = s.strip_prefix('v').unwrap_or(s);
        let minor = rest.strip_prefix("1.").ok_or_else(err)?;
        let well_formed = !minor.is_empty()
            && minor.bytes().all(|b| b.is_ascii_digit())
            && (minor == "0" || !minor.starts_with('0'));
        if !well_formed {
            return Err(err());
        }
        minor.parse().map(Version::Minor).map_err(|_| err())
    }
}

/// A level at a version: what one Pod Security Admission mode enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl LevelVersion {
    pub fn new(level: Level, version: Version) -> Self {
        LevelVersion { level, version }
    }

    /// `level` at `latest`.
    pub fn latest(level: Level) -> Self {
        LevelVersion::new(level, Version::Latest)
    }

    /// The IDs of the checks this level runs at this version, in the order violations are
    /// reported (upstream's check IDs, e.g. `allowPrivilegeEscalation`).
    pub fn check_ids(self) -> impl Iterator<Item = &'static str> {
        checks::check_ids(self)
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

impl FromStr for LevelVersion {
    type Err = ParsePssError;

    /// `restricted`, `restricted:latest`, `baseline:v1.30`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (level, version) = match s.split_once(':') {
            Some((level, version)) => (level.parse()?, version.parse()?),
            None => (s.parse()?, Version::Latest),
        };
        Ok(LevelVersion { level, version })
    }
}

/// One check a pod fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// Upstream's check ID, e.g. `capabilities_restricted`.
    pub check_id: &'static str,
    /// The short reason, e.g. `unrestricted capabilities`.
    pub reason: &'static str,
    /// What exactly is wrong, e.g. `container "app" must set securityContext.capabilities.drop=["ALL"]`.
    pub detail: String,
}

/// The outcome of checking one pod: every failed check, in the apiserver's reporting order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PssResult {
    pub forbidden: Vec<Forbidden>,
}

impl PssResult {
    pub fn allowed(&self) -> bool {
        self.forbidden.is_empty()
    }

    /// `reason (detail), reason (detail)`: the failures as the apiserver lists them.
    pub fn details(&self) -> String {
        let mut out = String::new();
        for (i, f) in self.forbidden.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(f.reason);
            if !f.detail.is_empty() {
                out.push_str(" (");
                out.push_str(&f.detail);
                out.push(')');
            }
        }
        out
    }

    /// `reason, reason`: the short form the apiserver uses when it checks existing pods.
    pub fn reasons(&self) -> String {
        self.forbidden
            .iter()
            .map(|f| f.reason)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The enforce error, `violates PodSecurity "<level:version>": <details>`; `None` when
    /// allowed. The apiserver prefixes it with `<resource> "<name>" is forbidden: `.
    pub fn message(&self, lv: LevelVersion) -> Option<String> {
        (!self.allowed()).then(|| format!("violates PodSecurity \"{lv}\": {}", self.details()))
    }

    /// The warning and audit text, `would violate PodSecurity "<level:version>": <details>`.
    pub fn warning(&self, lv: LevelVersion) -> Option<String> {
        (!self.allowed()).then(|| format!("would violate PodSecurity \"{lv}\": {}", self.details()))
    }
}

/// Which checks a pod fails, found without wording anything: what a scan needs per pod. `Copy`,
/// and computing it allocates nothing; [`check_pod`] gives the same checks with the apiserver's
/// wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PssVerdict {
    lv: LevelVersion,
    /// Bit `i`: the `i`-th check of `lv`'s plan (see [`LevelVersion::check_ids`]) fails.
    failed: u64,
}

impl PssVerdict {
    pub fn allowed(&self) -> bool {
        self.failed == 0
    }

    /// The level and version the pod was checked at.
    pub fn level_version(&self) -> LevelVersion {
        self.lv
    }

    /// How many checks fail.
    pub fn failed_count(&self) -> usize {
        self.failed.count_ones() as usize
    }

    /// The IDs of the failed checks (upstream's, e.g. `runAsNonRoot`), in reporting order: the
    /// same as the `check_id`s of [`PssResult::forbidden`].
    pub fn failed_checks(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.lv
            .check_ids()
            .enumerate()
            .filter(|(i, _)| *i < 64 && self.failed & (1u64 << i) != 0)
            .map(|(_, id)| id)
    }
}

/// Runs the checks of `lv` on a Pod's `metadata` and `spec` (either may be `null`).
///
/// The spec is read as the apiserver sees it after defaulting a Pod: in a `hostNetwork` pod a
/// container port without `hostPort` counts as using its `containerPort` on the host, and a
/// volume without any source is an `emptyDir`. For a workload's pod template use
/// [`check_template`] (templates get only the volume default). For the verdict alone, without
/// wording, use [`verdict_pod`].
pub fn check_pod(lv: LevelVersion, pod_metadata: &Value, pod_spec: &Value) -> PssResult {
    check(lv, pod_metadata, pod_spec, true)
}

/// Runs the checks of `lv` on a pod template's `metadata` and `spec`, as for a Deployment.
pub fn check_template(lv: LevelVersion, metadata: &Value, spec: &Value) -> PssResult {
    check(lv, metadata, spec, false)
}

/// [`check_pod`]'s verdict without the wording: allocation-free.
pub fn verdict_pod(lv: LevelVersion, pod_metadata: &Value, pod_spec: &Value) -> PssVerdict {
    verdict(lv, pod_metadata, pod_spec, true)
}

/// [`check_template`]'s verdict without the wording.
pub fn verdict_template(lv: LevelVersion, metadata: &Value, spec: &Value) -> PssVerdict {
    verdict(lv, metadata, spec, false)
}

/// [`check_object`]'s verdict without the wording; `None` where `check_object` gives `None`.
pub fn verdict_object(lv: LevelVersion, object: &Value) -> Option<PssVerdict> {
    let (metadata, spec) = pod_template(object)?;
    let is_pod = object.get("kind").and_then(Value::as_str) == Some("Pod");
    Some(verdict(lv, metadata, spec, is_pod))
}

fn verdict(lv: LevelVersion, metadata: &Value, spec: &Value, pod_defaults: bool) -> PssVerdict {
    let steps = checks::plan(lv);
    let failed = if steps.is_empty() {
        0
    } else {
        checks::flag(steps, &checks::PodFacts::read(metadata, spec, pod_defaults))
    };
    PssVerdict { lv, failed }
}

fn check(lv: LevelVersion, metadata: &Value, spec: &Value, pod_defaults: bool) -> PssResult {
    let mut result = PssResult::default();
    let steps = checks::plan(lv);
    if steps.is_empty() {
        return result;
    }
    let pod = checks::PodFacts::read(metadata, spec, pod_defaults);
    let failed = checks::flag(steps, &pod);
    if failed != 0 {
        checks::describe(steps, &pod, failed, &mut result.forbidden);
    }
    result
}

/// Finds the pod template of a Pod, PodTemplate, ReplicationController, Deployment, ReplicaSet,
/// StatefulSet, DaemonSet, Job or CronJob and checks it; `None` for other kinds, and for a
/// ReplicationController without a template (which the apiserver does not check either).
pub fn check_object(lv: LevelVersion, object: &Value) -> Option<PssResult> {
    let (metadata, spec) = pod_template(object)?;
    let is_pod = object.get("kind").and_then(Value::as_str) == Some("Pod");
    Some(check(lv, metadata, spec, is_pod))
}

static NULL: Value = Value::Null;

fn of_template(template: Option<&Value>) -> (&Value, &Value) {
    let template = template.unwrap_or(&NULL);
    (
        template.get("metadata").unwrap_or(&NULL),
        template.get("spec").unwrap_or(&NULL),
    )
}

/// The `(metadata, spec)` of the pod an object is or creates, by its `apiVersion` and `kind`.
pub fn pod_template(object: &Value) -> Option<(&Value, &Value)> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let group = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|v| v.split_once('/').map_or("", |(group, _)| group));
    let in_group = |expected: &str| group.is_none_or(|g| g == expected);
    let spec = object.get("spec");
    match kind {
        "Pod" if in_group("") => Some((
            object.get("metadata").unwrap_or(&NULL),
            spec.unwrap_or(&NULL),
        )),
        "PodTemplate" if in_group("") => Some(of_template(object.get("template"))),
        "ReplicationController" if in_group("") => {
            // The template is optional here; without one there is nothing to check.
            let template = spec
                .and_then(|s| s.get("template"))
                .filter(|t| !t.is_null())?;
            Some(of_template(Some(template)))
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" if in_group("apps") => {
            Some(of_template(spec.and_then(|s| s.get("template"))))
        }
        "Job" if in_group("batch") => Some(of_template(spec.and_then(|s| s.get("template")))),
        "CronJob" if in_group("batch") => Some(of_template(
            spec.and_then(|s| s.get("jobTemplate"))
                .and_then(|j| j.get("spec"))
                .and_then(|s| s.get("template")),
        )),
        _ => None,
    }
}

/// Every kind whose objects are or create a pod: [`pod_template`] finds none in an object of any
/// other kind, so such an object passes every level whatever it holds.
pub const POD_KINDS: &[&str] = &[
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
];

/// The workload kinds people write, with their `apiVersion`: each carries a pod template that
/// [`check_object`] finds (scans read these; the sample generator makes them).
pub const WORKLOAD_KINDS: &[(&str, &str)] = &[
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
];

/// Pod subresources Pod Security Admission never looks at.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// What Pod Security Admission with one namespace label (`enforce`, `warn` or `audit`) at
/// `lv` does with `request`: `None` when it admits silently.
///
/// - Only CREATE and UPDATE are looked at.
/// - Pods: ignored subresources (`status`, `exec`, `log`, …) pass; an UPDATE that changes no
///   container image and adds no ephemeral container passes; otherwise `enforce` denies.
/// - Workloads (Deployment, CronJob, …): subresources pass; `enforce` does not apply to them,
///   `warn` and `audit` do.
pub fn evaluate_label(
    lv: LevelVersion,
    label: PsaLabel,
    request: &AdmissionRequest,
) -> Option<Finding> {
    labelled(lv, label, request, &mut None)
}

/// [`evaluate_label`], keeping the checks' outcome in `checked` (`None` until checked; then the
/// outcome, `None` when the object has no pod template): it depends only on `lv` and the
/// object, so the labels of one mode check a request once.
fn labelled(
    lv: LevelVersion,
    label: PsaLabel,
    request: &AdmissionRequest,
    checked: &mut Option<Option<PssResult>>,
) -> Option<Finding> {
    if lv.level == Level::Privileged
        || !matches!(request.operation, Operation::Create | Operation::Update)
    {
        return None;
    }
    let object = request.object.as_ref()?;
    let is_pod = request.resource.group.is_empty() && request.resource.resource == "pods";
    if is_pod {
        if IGNORED_POD_SUBRESOURCES.contains(&request.sub_resource.as_str()) {
            return None;
        }
        if request.operation == Operation::Update {
            if let Some(old) = &request.old_object {
                if !significant_pod_update(object, old) {
                    return None;
                }
            }
        }
    } else if !request.sub_resource.is_empty() || label == PsaLabel::Enforce {
        return None;
    }
    let result = checked
        .get_or_insert_with(|| {
            if is_pod {
                Some(check_pod(
                    lv,
                    object.get("metadata").unwrap_or(&NULL),
                    object.get("spec").unwrap_or(&NULL),
                ))
            } else {
                check_object(lv, object)
            }
        })
        .as_ref()?;
    let (action, message) = match label {
        PsaLabel::Enforce => (Action::Deny, result.message(lv)?),
        PsaLabel::Warn => (Action::Warn, result.warning(lv)?),
        PsaLabel::Audit => (Action::Audit, result.warning(lv)?),
    };
    Some(Finding {
        engine: EngineKind::PodSecurity,
        policy: lv.to_string(),
        action,
        message,
    })
}

/// Pod Security at `lv` in a Palisade [`Mode`], rendered as that mode's namespace labels
/// ([`Mode::psa_labels`]). The strictest label that has something to say gives the one finding:
/// in `enforce` mode a violating Pod is denied, while a violating workload template is only
/// warned about (enforce does not apply to templates, the `warn` label does). The finding's
/// `policy` is the level and version, e.g. `restricted:latest`.
pub fn evaluate(lv: LevelVersion, mode: Mode, request: &AdmissionRequest) -> Verdict {
    let mut checked = None;
    let finding = mode
        .psa_labels()
        .iter()
        .find_map(|label| labelled(lv, *label, request, &mut checked));
    Verdict {
        findings: finding.into_iter().collect(),
        not_evaluable: Vec::new(),
    }
}

/// Upstream's test of whether a pod UPDATE is worth checking: container counts, an image, or an
/// ephemeral container changed.
fn significant_pod_update(pod: &Value, old: &Value) -> bool {
    let list = |pod: &'_ Value, key: &str| -> Vec<Value> {
        pod.get("spec")
            .and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let image = |c: &Value| {
        c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let name = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    for key in ["containers", "initContainers"] {
        let (new, old) = (list(pod, key), list(old, key));
        if new.len() != old.len() || new.iter().zip(&old).any(|(n, o)| image(n) != image(o)) {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(pod, "ephemeralContainers").iter().any(|c| {
        match old_ephemeral.iter().find(|o| name(o) == name(c)) {
            None => true,
            Some(o) => image(o) != image(c),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lv(s: &str) -> LevelVersion {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_pod_kinds_have_a_pod() {
        // Every place a pod template can sit, so each pod kind finds one.
        let object = |kind: &str| {
            json!({"kind": kind, "metadata": {}, "template": {},
                   "spec": {"template": {}, "jobTemplate": {"spec": {"template": {}}}}})
        };
        for kind in POD_KINDS {
            assert!(pod_template(&object(kind)).is_some(), "{kind}");
        }
        let others = [
            "Namespace",
            "Service",
            "Ingress",
            "Role",
            "ClusterRoleBinding",
            "Node",
        ];
        for kind in others {
            assert!(pod_template(&object(kind)).is_none(), "{kind}");
        }
    }

    #[test]
    fn versions_and_levels_parse_and_print() {
        assert_eq!("latest".parse::<Version>(), Ok(Version::Latest));
        assert_eq!("v1.25".parse::<Version>(), Ok(Version::Minor(25)));
        assert_eq!("1.0".parse::<Version>(), Ok(Version::Minor(0)));
        for bad in ["v2.1", "v1.", "v1.01", "1", "v1.2x", ""] {
            let err = bad.parse::<Version>().unwrap_err();
            assert!(
                err.to_string()
                    .contains("expected `latest` or `v1.<minor>`"),
                "{bad}: {err}"
            );
        }
        assert_eq!(lv("restricted:v1.30").to_string(), "restricted:v1.30");
        assert_eq!(lv("baseline").to_string(), "baseline:latest");
        assert_eq!(lv("restricted:1.30"), lv("restricted:v1.30"));
        assert_eq!(
            "strict:latest"
                .parse::<LevelVersion>()
                .unwrap_err()
                .to_string(),
            "unknown Pod Security level `strict`: expected one of privileged, baseline, restricted"
        );
        assert!(Version::Latest > Version::Minor(1000));
    }

    fn restricted_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "app", "image": "a:1", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
            }
        })
    }

    #[test]
    fn messages_follow_the_apiserver() {
        let pod = json!({"spec": {"containers": [{"name": "x", "image": "i",
            "securityContext": {"privileged": true}}], "hostNetwork": true}});
        let result = check_object(
            lv("restricted:latest"),
            &json!({
                "apiVersion": "v1", "kind": "Pod", "spec": pod["spec"]
            }),
        )
        .unwrap();
        assert_eq!(
            result.message(lv("restricted:latest")).unwrap(),
            "violates PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true), \
             privileged (container \"x\" must not set securityContext.privileged=true), \
             allowPrivilegeEscalation != false (container \"x\" must set \
             securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
             (container \"x\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"x\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"x\" must set securityContext.seccompProfile.type \
             to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(
            result.reasons(),
            "host namespaces, privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
        );
        assert!(check_pod(lv("privileged"), &Value::Null, &pod["spec"]).allowed());
    }

    #[test]
    fn templates_are_found_in_workloads() {
        let template = json!({"metadata": {}, "spec": {"hostPID": true}});
        let objects = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": template}}),
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}}),
            json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": template}}),
        ];
        for object in &objects {
            let result = check_object(lv("baseline"), object).unwrap();
            assert_eq!(result.forbidden[0].check_id, "hostNamespaces", "{object}");
        }
        assert!(check_object(
            lv("baseline"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap"})
        )
        .is_none());
        assert!(check_object(
            lv("baseline"),
            &json!({"apiVersion": "example.com/v1", "kind": "Deployment"})
        )
        .is_none());
        assert!(check_object(
            lv("baseline"),
            &json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {}})
        )
        .is_none());
    }

    #[test]
    fn enforce_denies_pods_and_only_warns_about_templates() {
        let mut bad = restricted_pod();
        bad["spec"]["hostIPC"] = json!(true);
        let request = AdmissionRequest::create(bad.clone()).unwrap();
        let verdict = evaluate(lv("restricted"), Mode::Enforce, &request);
        assert_eq!(verdict.action(), Action::Deny);
        assert!(verdict.findings[0]
            .message
            .starts_with("violates PodSecurity \"restricted:latest\": host namespaces"));

        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"metadata": bad["metadata"], "spec": bad["spec"]}}});
        let request = AdmissionRequest::create(deployment).unwrap();
        let verdict = evaluate(lv("baseline"), Mode::Enforce, &request);
        assert_eq!(verdict.action(), Action::Warn);
        assert!(verdict.findings[0]
            .message
            .starts_with("would violate PodSecurity \"baseline:latest\""));
        assert_eq!(
            evaluate(lv("baseline"), Mode::Audit, &request).action(),
            Action::Audit
        );

        let good = AdmissionRequest::create(restricted_pod()).unwrap();
        assert_eq!(
            evaluate(lv("restricted"), Mode::Enforce, &good).action(),
            Action::Allow
        );
    }

    #[test]
    fn updates_that_change_no_image_pass() {
        let mut old = restricted_pod();
        old["spec"]["hostPID"] = json!(true);
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        let mut request = AdmissionRequest::for_object(Operation::Update, relabelled).unwrap();
        request.old_object = Some(old.clone());
        assert_eq!(
            evaluate(lv("baseline"), Mode::Enforce, &request).action(),
            Action::Allow
        );

        let mut new_image = old.clone();
        new_image["spec"]["containers"][0]["image"] = json!("a:2");
        request.object = Some(new_image);
        assert_eq!(
            evaluate(lv("baseline"), Mode::Enforce, &request).action(),
            Action::Deny
        );

        request.sub_resource = "status".into();
        assert_eq!(
            evaluate(lv("baseline"), Mode::Enforce, &request).action(),
            Action::Allow
        );
        let delete = AdmissionRequest::for_object(Operation::Delete, old).unwrap();
        assert_eq!(
            evaluate(lv("baseline"), Mode::Enforce, &delete).action(),
            Action::Allow
        );
    }

    #[test]
    fn pods_are_read_as_the_apiserver_defaults_them_and_templates_are_not() {
        let spec = json!({"hostNetwork": true, "containers": [
            {"name": "web", "image": "i", "ports": [{"containerPort": 8080}]}]});
        let lv = lv("baseline:latest");
        assert_eq!(
            check_pod(lv, &Value::Null, &spec).details(),
            "host namespaces (hostNetwork=true), hostPort (container \"web\" uses hostPort 8080)"
        );
        assert_eq!(
            check_template(lv, &Value::Null, &spec).details(),
            "host namespaces (hostNetwork=true)"
        );

        let metadata = json!({"annotations": {
            "container.apparmor.security.beta.kubernetes.io/web": "unconfined"}});
        let spec = json!({"containers": [{"name": "web", "image": "i"}]});
        let annotation = "container.apparmor.security.beta.kubernetes.io/web=\"unconfined\"";
        assert_eq!(
            check_pod(lv, &metadata, &spec).details(),
            format!("forbidden AppArmor profiles (container \"web\" and annotation must not set AppArmor profile type to \"Unconfined\", \"{annotation}\")")
        );
        assert_eq!(
            check_template(lv, &metadata, &spec).details(),
            format!("forbidden AppArmor profile (annotation must not set AppArmor profile type to \"{annotation}\")")
        );
    }

    #[test]
    fn versions_change_what_is_checked() {
        let spec = json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "w", "image": "i"}]});
        assert!(!check_pod(lv("restricted:v1.24"), &Value::Null, &spec).allowed());
        assert!(check_pod(lv("restricted:v1.25"), &Value::Null, &spec).allowed());
        let sysctl =
            json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]}});
        assert!(!check_pod(lv("baseline:v1.36"), &Value::Null, &sysctl).allowed());
        assert!(check_pod(lv("baseline:v1.37"), &Value::Null, &sysctl).allowed());
        assert!(check_pod(lv("baseline:latest"), &Value::Null, &sysctl).allowed());
        assert_eq!(
            lv("restricted:v1.21").check_ids().collect::<Vec<_>>(),
            [
                "appArmorProfile",
                "capabilities_baseline",
                "hostNamespaces",
                "hostPorts",
                "privileged",
                "procMount",
                "seLinuxOptions",
                "sysctls",
                "windowsHostProcess",
                "allowPrivilegeEscalation",
                "restrictedVolumes",
                "runAsNonRoot",
                "seccompProfile_restricted",
            ]
        );
    }

    #[test]
    fn malformed_input_never_panics() {
        let spec = json!({"containers": [1, null, {"name": 3, "securityContext": "x",
            "ports": [{"hostPort": "80"}, 7]}], "volumes": [null, 1, {}], "securityContext": []});
        for level in ["baseline:v1.0", "restricted:v1.18", "restricted:latest"] {
            let _ = check_pod(lv(level), &json!({"annotations": 5}), &spec);
            let _ = check_pod(lv(level), &json!(null), &json!("spec"));
        }
    }
}
