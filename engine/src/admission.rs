//! The admission request every engine evaluates: what is being done (operation), to what (object,
//! old object, kind, resource, namespace, name) and by whom (user info).
//!
//! It mirrors `admission.k8s.io/v1` `AdmissionRequest`. A bare object is treated as a CREATE, as
//! `kubectl apply` of a new object would be; who sends it is left empty (gator does the same) and
//! callers that need a user take [`UserInfo::tester`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    #[default]
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

/// `authentication.k8s.io/v1` `UserInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

impl UserInfo {
    /// The user a request comes from when a test case or `palisade check` does not say: an
    /// authenticated, unprivileged user. The apiserver never admits a request without a user, and
    /// policies may look at `request.userInfo.username`.
    pub fn tester() -> UserInfo {
        UserInfo {
            username: "palisade:tester".into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        }
    }
}

/// One admission request, as the apiserver hands it to admission plugins and webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub resource: GroupVersionResource,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_sub_resource: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub operation: Operation,
    #[serde(default)]
    pub user_info: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// Why a value could not be read as an admission request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("the object has no `kind`")]
    MissingKind,
    #[error("the object has no `apiVersion`")]
    MissingApiVersion,
    #[error("an AdmissionReview needs a `request`")]
    MissingRequest,
    #[error("the AdmissionReview request is malformed: {0}")]
    Malformed(String),
}

impl AdmissionRequest {
    /// A request made by `operation` on `object` (for DELETE, pass the object being deleted; it goes to
    /// `oldObject`, as the apiserver does).
    pub fn for_object(operation: Operation, object: Value) -> Result<Self, AdmissionError> {
        let kind = gvk_of(&object)?;
        let resource = GroupVersionResource {
            group: kind.group.clone(),
            version: kind.version.clone(),
            resource: resource_for_kind(&kind.kind),
        };
        let metadata = object.get("metadata");
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (name, namespace) = (text("name"), text("namespace"));
        // The object moves into the request: a deep copy per request shows in scans and impact.
        let (object, old_object) = match operation {
            Operation::Delete => (None, Some(object)),
            _ => (Some(object), None),
        };
        Ok(AdmissionRequest {
            uid: String::new(),
            kind,
            resource,
            name,
            namespace,
            operation,
            user_info: UserInfo::default(),
            object,
            old_object,
            ..AdmissionRequest::default()
        })
    }

    /// A CREATE of `object`.
    pub fn create(object: Value) -> Result<Self, AdmissionError> {
        Self::for_object(Operation::Create, object)
    }

    /// Read a bare object (treated as CREATE) or an `admission.k8s.io` `AdmissionReview`.
    pub fn from_value(value: Value) -> Result<Self, AdmissionError> {
        if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            let request = value
                .get("request")
                .cloned()
                .ok_or(AdmissionError::MissingRequest)?;
            let mut request: AdmissionRequest = serde_json::from_value(request)
                .map_err(|e| AdmissionError::Malformed(e.to_string()))?;
            request.fill_in_from_objects();
            return Ok(request);
        }
        Self::create(value)
    }

    /// The object this request is about: the new object, or for DELETE the old one.
    pub fn subject(&self) -> Option<&Value> {
        self.object.as_ref().or(self.old_object.as_ref())
    }

    /// AdmissionReviews written by hand often leave out `kind`, `resource`, `name` or `namespace`; take
    /// them from the object when they are missing.
    fn fill_in_from_objects(&mut self) {
        let Some(subject) = self.subject().cloned() else {
            return;
        };
        if self.kind.kind.is_empty() {
            if let Ok(kind) = gvk_of(&subject) {
                self.kind = kind;
            }
        }
        if self.resource.resource.is_empty() && !self.kind.kind.is_empty() {
            self.resource = GroupVersionResource {
                group: self.kind.group.clone(),
                version: self.kind.version.clone(),
                resource: resource_for_kind(&self.kind.kind),
            };
        }
        let metadata = subject.get("metadata");
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if self.name.is_empty() {
            self.name = text("name").unwrap_or_default();
        }
        if self.namespace.is_empty() {
            self.namespace = text("namespace").unwrap_or_default();
        }
    }
}

/// Group, version and kind from an object's `apiVersion` and `kind`.
pub fn gvk_of(object: &Value) -> Result<GroupVersionKind, AdmissionError> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(AdmissionError::MissingKind)?;
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(AdmissionError::MissingApiVersion)?;
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    Ok(GroupVersionKind {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
    })
}

/// The plural resource name the apiserver uses for a kind. Known kinds come from a table; others
/// follow the apiserver's default rules for unknown kinds (lower-case, then `y`→`ies`, `s`→`ses`, else `s`).
pub fn resource_for_kind(kind: &str) -> String {
    const IRREGULAR: &[(&str, &str)] = &[
        ("Endpoints", "endpoints"),
        ("PodSecurityPolicy", "podsecuritypolicies"),
        ("NetworkPolicy", "networkpolicies"),
        ("Ingress", "ingresses"),
        ("IngressClass", "ingressclasses"),
        ("StorageClass", "storageclasses"),
        ("PriorityClass", "priorityclasses"),
        ("RuntimeClass", "runtimeclasses"),
        ("ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
        (
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        ),
        ("ResourceQuota", "resourcequotas"),
    ];
    if let Some((_, plural)) = IRREGULAR.iter().find(|(k, _)| *k == kind) {
        return (*plural).to_owned();
    }
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    if lower.ends_with('s')
        || lower.ends_with("x")
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plural_resources() {
        assert_eq!(resource_for_kind("Pod"), "pods");
        assert_eq!(resource_for_kind("Deployment"), "deployments");
        assert_eq!(resource_for_kind("NetworkPolicy"), "networkpolicies");
        assert_eq!(resource_for_kind("Ingress"), "ingresses");
        assert_eq!(resource_for_kind("Endpoints"), "endpoints");
        assert_eq!(resource_for_kind("Gateway"), "gateways");
        assert_eq!(
            resource_for_kind("ClusterRoleBinding"),
            "clusterrolebindings"
        );
    }

    #[test]
    fn a_bare_object_is_a_create() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"}});
        let request = AdmissionRequest::from_value(pod.clone()).unwrap();
        assert_eq!(request.operation, Operation::Create);
        assert_eq!(request.kind.kind, "Pod");
        assert_eq!(request.kind.group, "");
        assert_eq!(request.resource.resource, "pods");
        assert_eq!(request.namespace, "team");
        assert_eq!(request.object, Some(pod));
    }

    #[test]
    fn an_admission_review_keeps_its_operation_and_user() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "operation": "DELETE",
                "userInfo": {"username": "alice", "groups": ["dev"]},
                "oldObject": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}}
            }
        });
        let request = AdmissionRequest::from_value(review).unwrap();
        assert_eq!(request.operation, Operation::Delete);
        assert_eq!(request.user_info.username, "alice");
        assert_eq!(request.kind.group, "apps");
        assert_eq!(request.resource.resource, "deployments");
        assert_eq!(request.name, "d");
        assert!(request.object.is_none());
    }

    #[test]
    fn objects_without_kind_are_refused() {
        assert_eq!(
            AdmissionRequest::create(json!({"apiVersion": "v1"})).unwrap_err(),
            AdmissionError::MissingKind
        );
    }
}
