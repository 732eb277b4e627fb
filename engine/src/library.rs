//! Palisade's built-in policy library: the common Kubernetes security mistakes, each as a
//! ready-to-apply policy with its own test suite and the compliance controls it serves.
//!
//! Every entry is a directory `engine/library/<id>/` (see `engine/library/README.md`):
//! `policy.yaml` (a ValidatingAdmissionPolicy, its binding and, for parameterised entries, a sample
//! parameter object) or `entry.yaml` (a Pod Security Standards level), `palisade-test.yaml` (its
//! cases) and optionally `template.yaml` (a resource to apply as is). The files are compiled into
//! the binary; [`entries`] reads the entry's metadata from the `palisade.dev/*` annotations.

use serde_json::Value;

use crate::source::{parse_documents, Document, SourceError};
use crate::suite::Files;

/// Annotation keys every entry carries on its policy (or `entry.yaml`).
pub mod annotation {
    pub const TITLE: &str = "palisade.dev/title";
    pub const CATEGORY: &str = "palisade.dev/category";
    pub const SEVERITY: &str = "palisade.dev/severity";
    pub const DESCRIPTION: &str = "palisade.dev/description";
    pub const REMEDIATION: &str = "palisade.dev/remediation";
    pub const CONTROLS: &str = "palisade.dev/controls";
}

/// The namespaces every library binding leaves alone, so a policy never blocks the control plane
/// or Palisade itself.
pub const SYSTEM_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "palisade-system",
];

/// Whether a namespace selector term (`matchExpressions` entry) leaves out every one of the
/// [`SYSTEM_NAMESPACES`] by name.
pub(crate) fn excludes_system_namespaces(term: &Value) -> bool {
    term["key"] == "kubernetes.io/metadata.name"
        && term["operator"] == "NotIn"
        && SYSTEM_NAMESPACES.iter().all(|ns| {
            term["values"]
                .as_array()
                .is_some_and(|v| v.contains(&(*ns).into()))
        })
}

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    PodSecurity,
    SupplyChain,
    Rbac,
    Network,
    Configuration,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::PodSecurity,
        Category::SupplyChain,
        Category::Rbac,
        Category::Network,
        Category::Configuration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::PodSecurity => "pod-security",
            Category::SupplyChain => "supply-chain",
            Category::Rbac => "rbac",
            Category::Network => "network",
            Category::Configuration => "configuration",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// How much harm the mistake an entry prevents can do. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A compliance framework whose controls entries are tagged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Framework {
    /// CIS Kubernetes Benchmark (v1.9 numbering), e.g. `5.2.2`.
    Cis,
    /// NSA/CISA Kubernetes Hardening Guide v1.2, by section slug, e.g. `pod-security-enforcement`.
    NsaCisa,
    /// PCI DSS v4.0 requirement, e.g. `2.2.6`.
    PciDss,
    /// SOC 2 Trust Services Criteria (2017), e.g. `CC6.1`.
    Soc2,
}

impl Framework {
    pub const ALL: [Framework; 4] = [
        Framework::Cis,
        Framework::NsaCisa,
        Framework::PciDss,
        Framework::Soc2,
    ];

    /// The tag prefix used in `palisade.dev/controls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Cis => "cis",
            Framework::NsaCisa => "nsa-cisa",
            Framework::PciDss => "pci-dss",
            Framework::Soc2 => "soc2",
        }
    }

    pub fn parse(text: &str) -> Option<Framework> {
        Framework::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// One control of one framework, e.g. `cis:5.2.2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Control {
    pub framework: Framework,
    pub id: String,
}

impl std::fmt::Display for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.framework.as_str(), self.id)
    }
}

/// How an entry is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A ValidatingAdmissionPolicy and its binding (in `policy_yaml`).
    Vap,
    /// A Pod Security Standards level, rendered as namespace labels.
    PodSecurity {
        /// `baseline` or `restricted`.
        level: String,
        /// `latest` or `v1.<minor>`.
        version: String,
    },
}

/// One entry of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Kebab-case id; also the directory name and the policy and binding name.
    pub id: &'static str,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    /// What to change, concretely, when the entry finds something.
    pub remediation: String,
    pub controls: Vec<Control>,
    /// `policy.yaml` for [`EntryKind::Vap`], `entry.yaml` for [`EntryKind::PodSecurity`].
    pub policy_yaml: &'static str,
    /// `palisade-test.yaml`: the entry's cases in Palisade's suite format.
    pub test_yaml: &'static str,
    /// `template.yaml`, a resource to apply as is (the default-deny NetworkPolicy), if any.
    pub template_yaml: Option<&'static str>,
    pub kind: EntryKind,
}

impl Entry {
    /// The name of the file `policy_yaml` came from.
    pub fn policy_file(&self) -> &'static str {
        match self.kind {
            EntryKind::Vap => "policy.yaml",
            EntryKind::PodSecurity { .. } => "entry.yaml",
        }
    }

    /// The entry's files by name, as its test suite refers to them.
    pub fn file(&self, name: &str) -> Option<&'static str> {
        let name = name.strip_prefix("./").unwrap_or(name);
        match name {
            "palisade-test.yaml" => Some(self.test_yaml),
            "template.yaml" => self.template_yaml,
            _ if name == self.policy_file() => Some(self.policy_yaml),
            _ => None,
        }
    }
}

/// An entry's files, for running its suite through [`Files`].
impl Files for Entry {
    fn read(&self, path: &str) -> Result<String, String> {
        self.file(path).map(str::to_owned).ok_or_else(|| {
            format!(
                "the library entry `{}` has no file `{path}` (it has {}, palisade-test.yaml{})",
                self.id,
                self.policy_file(),
                if self.template_yaml.is_some() {
                    ", template.yaml"
                } else {
                    ""
                }
            )
        })
    }
}

/// The embedded files of one entry.
struct Source {
    id: &'static str,
    vap: bool,
    policy: &'static str,
    test: &'static str,
    template: Option<&'static str>,
}

macro_rules! vap {
    ($id:literal) => {
        vap!($id, None)
    };
    ($id:literal, template) => {
        vap!(
            $id,
            Some(include_str!(concat!("../library/", $id, "/template.yaml")))
        )
    };
    ($id:literal, $template:expr) => {
        Source {
            id: $id,
            vap: true,
            policy: include_str!(concat!("../library/", $id, "/policy.yaml")),
            test: include_str!(concat!("../library/", $id, "/palisade-test.yaml")),
            template: $template,
        }
    };
}

macro_rules! pod_security {
    ($id:literal) => {
        Source {
            id: $id,
            vap: false,
            policy: include_str!(concat!("../library/", $id, "/entry.yaml")),
            test: include_str!(concat!("../library/", $id, "/palisade-test.yaml")),
            template: None,
        }
    };
}

/// Every entry, in the order the library presents them.
const SOURCES: &[Source] = &[
    vap!("disallow-privileged"),
    vap!("require-run-as-non-root"),
    vap!("require-read-only-root-filesystem"),
    vap!("require-resource-limits"),
    vap!("disallow-privilege-escalation"),
    vap!("require-drop-all-capabilities"),
    vap!("require-seccomp-runtime-default"),
    vap!("disallow-host-namespaces"),
    vap!("disallow-host-path"),
    vap!("disallow-latest-tag"),
    vap!("require-image-digest"),
    vap!("allowed-registries"),
    vap!("disallow-secrets-in-env"),
    vap!("disable-service-account-token-automount"),
    vap!("disallow-wildcard-rbac"),
    vap!("restrict-cluster-admin-bindings"),
    vap!("network-policy-dns-egress", template),
    vap!("require-labels"),
    pod_security!("pod-security-baseline"),
    pod_security!("pod-security-restricted"),
];

/// The ids of every entry, without parsing anything.
pub fn ids() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|s| s.id)
}

/// Every entry of the library with its metadata read from the annotations. Fails only if an
/// embedded file is malformed (the unit tests make sure none is), naming the file and line.
pub fn entries() -> Result<Vec<Entry>, SourceError> {
    SOURCES.iter().map(parse_entry).collect()
}

/// [`entries`], read once per process: the library is part of the binary, so what it says never
/// changes while it runs. For the server's pages, which would otherwise parse it per request.
pub fn shared_entries() -> Result<&'static [Entry], SourceError> {
    static ENTRIES: std::sync::OnceLock<Result<Vec<Entry>, SourceError>> =
        std::sync::OnceLock::new();
    ENTRIES
        .get_or_init(entries)
        .as_deref()
        .map_err(Clone::clone)
}

/// The entry `id`, if the library has it.
pub fn entry(id: &str) -> Result<Option<Entry>, SourceError> {
    SOURCES
        .iter()
        .find(|s| s.id == id)
        .map(parse_entry)
        .transpose()
}

fn parse_entry(source: &Source) -> Result<Entry, SourceError> {
    let file = format!(
        "library/{}/{}",
        source.id,
        if source.vap {
            "policy.yaml"
        } else {
            "entry.yaml"
        }
    );
    let documents = parse_documents(&file, source.policy)?;
    let (main_kind, api_version) = if source.vap {
        (
            "ValidatingAdmissionPolicy",
            "admissionregistration.k8s.io/v1",
        )
    } else {
        ("PodSecurityEntry", "palisade.dev/v1alpha1")
    };
    let main = documents
        .iter()
        .find(|d| {
            d.value.get("kind").and_then(Value::as_str) == Some(main_kind)
                && d.value.get("apiVersion").and_then(Value::as_str) == Some(api_version)
        })
        .ok_or_else(|| {
            SourceError::new(
                &file,
                0,
                0,
                format!("no {api_version} {main_kind} in the file"),
            )
        })?;
    let name = main.value.pointer("/metadata/name").and_then(Value::as_str);
    if name != Some(source.id) {
        return Err(main_error(
            &file,
            main,
            format!(
                "the {main_kind} is named {name:?}; it must be named after its directory, `{}`",
                source.id
            ),
        ));
    }
    let text = |key: &str| -> Result<String, SourceError> {
        main.value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                main_error(
                    &file,
                    main,
                    format!("annotation `{key}` is missing or empty"),
                )
            })
    };
    let category_text = text(annotation::CATEGORY)?;
    let category = Category::parse(&category_text).ok_or_else(|| {
        let choices: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
        main_error(
            &file,
            main,
            format!(
                "unknown category `{category_text}`: expected one of {}",
                choices.join(", ")
            ),
        )
    })?;
    let severity_text = text(annotation::SEVERITY)?;
    let severity = Severity::parse(&severity_text).ok_or_else(|| {
        main_error(
            &file,
            main,
            format!("unknown severity `{severity_text}`: expected low, medium or high"),
        )
    })?;
    let controls = parse_controls(&text(annotation::CONTROLS)?)
        .map_err(|message| main_error(&file, main, message))?;
    let kind = if source.vap {
        EntryKind::Vap
    } else {
        let field = |key: &str| {
            main.value
                .pointer(&format!("/spec/{key}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| main_error(&file, main, format!("`spec.{key}` is missing")))
        };
        EntryKind::PodSecurity {
            level: field("level")?,
            version: field("version")?,
        }
    };
    Ok(Entry {
        id: source.id,
        title: text(annotation::TITLE)?,
        category,
        severity,
        description: text(annotation::DESCRIPTION)?,
        remediation: text(annotation::REMEDIATION)?,
        controls,
        policy_yaml: source.policy,
        test_yaml: source.test,
        template_yaml: source.template,
        kind,
    })
}

fn main_error(file: &str, document: &Document, message: String) -> SourceError {
    SourceError::new(file, document.first_line, 0, message)
}

/// `cis:5.2.2, nsa-cisa:pod-security-enforcement` into controls.
pub fn parse_controls(text: &str) -> Result<Vec<Control>, String> {
    let mut controls = Vec::new();
    for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (framework, id) = tag
            .split_once(':')
            .ok_or_else(|| format!("control `{tag}` is not of the form framework:id"))?;
        let framework = Framework::parse(framework).ok_or_else(|| {
            format!("control `{tag}`: unknown framework `{framework}` (expected cis, nsa-cisa, pci-dss or soc2)")
        })?;
        if id.is_empty() {
            return Err(format!("control `{tag}` has no id"));
        }
        controls.push(Control {
            framework,
            id: id.to_owned(),
        });
    }
    if controls.is_empty() {
        return Err("no controls given".to_owned());
    }
    Ok(controls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Action;

    fn all() -> Vec<Entry> {
        entries().unwrap_or_else(|e| panic!("{e}"))
    }

    fn docs(entry: &Entry, name: &str, text: &str) -> Vec<Value> {
        parse_documents(&format!("{}/{name}", entry.id), text)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|d| d.value)
            .collect()
    }

    fn of_kind<'a>(values: &'a [Value], kind: &str) -> Vec<&'a Value> {
        values.iter().filter(|v| v["kind"] == kind).collect()
    }

    #[test]
    fn every_entry_parses_with_its_metadata() {
        let entries = all();
        assert_eq!(entries.len(), SOURCES.len());
        assert_eq!(entries.len(), 20);
        let mut ids: Vec<_> = entries.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), entries.len(), "duplicate ids");
        for entry in &entries {
            let id = entry.id;
            assert!(
                id.split('-').all(|part| !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
                "{id} is not kebab-case"
            );
            for (what, text) in [
                ("title", &entry.title),
                ("description", &entry.description),
                ("remediation", &entry.remediation),
            ] {
                assert!(text.len() >= 10, "{id}: {what} {text:?} is too short");
            }
            assert!(!entry.controls.is_empty(), "{id} has no control");
            assert_eq!(entry.file("palisade-test.yaml"), Some(entry.test_yaml));
            assert_eq!(entry.file(entry.policy_file()), Some(entry.policy_yaml));
        }
        // The library covers every category.
        for category in Category::ALL {
            assert!(
                entries.iter().any(|e| e.category == category),
                "no entry in {category:?}"
            );
        }
    }

    #[test]
    fn controls_use_known_shapes() {
        for entry in all() {
            for control in &entry.controls {
                let id = &control.id;
                let ok = match control.framework {
                    // CIS Kubernetes Benchmark section 5 (policies): 5.x.y
                    Framework::Cis => {
                        id.starts_with("5.")
                            && id.split('.').count() == 3
                            && id.split('.').all(|p| p.parse::<u32>().is_ok())
                    }
                    Framework::NsaCisa => NSA_CISA_SECTIONS.contains(&id.as_str()),
                    Framework::PciDss => {
                        id.split('.').count() >= 2
                            && id.split('.').all(|p| p.parse::<u32>().is_ok())
                    }
                    Framework::Soc2 => {
                        (id.starts_with("CC") || id.starts_with("A1.")) && id.contains('.')
                    }
                };
                assert!(ok, "{}: control {control} has an unexpected form", entry.id);
            }
        }
    }

    /// The section slugs of the NSA/CISA Kubernetes Hardening Guide v1.2 that entries may cite
    /// (listed with their titles in engine/library/README.md).
    const NSA_CISA_SECTIONS: [&str; 9] = [
        "non-root-containers",
        "immutable-filesystems",
        "secure-images",
        "pod-security-enforcement",
        "service-account-tokens",
        "network-policies",
        "resource-policies",
        "secrets",
        "rbac",
    ];

    #[test]
    fn controls_parse_and_reject_unknown_frameworks() {
        let controls = parse_controls("cis:5.2.2, soc2:CC6.1").unwrap();
        assert_eq!(controls.len(), 2);
        assert_eq!(controls[0].framework, Framework::Cis);
        assert_eq!(controls[1].to_string(), "soc2:CC6.1");
        assert!(parse_controls("iso:27001")
            .unwrap_err()
            .contains("unknown framework"));
        assert!(parse_controls("cis").unwrap_err().contains("framework:id"));
        assert!(parse_controls(" , ").is_err());
    }

    #[test]
    fn vap_entries_ship_a_policy_and_a_deny_binding_that_spares_system_namespaces() {
        for entry in all().iter().filter(|e| e.kind == EntryKind::Vap) {
            let id = entry.id;
            let values = docs(entry, "policy.yaml", entry.policy_yaml);
            let policies = of_kind(&values, "ValidatingAdmissionPolicy");
            let bindings = of_kind(&values, "ValidatingAdmissionPolicyBinding");
            assert_eq!(policies.len(), 1, "{id}: one policy");
            assert_eq!(bindings.len(), 1, "{id}: one binding");
            let (policy, binding) = (policies[0], bindings[0]);
            assert_eq!(policy["apiVersion"], "admissionregistration.k8s.io/v1");
            assert_eq!(binding["apiVersion"], "admissionregistration.k8s.io/v1");
            assert_eq!(binding["metadata"]["name"], id, "{id}: binding name");
            assert_eq!(binding["spec"]["policyName"], id, "{id}: policyName");
            assert_eq!(
                binding["spec"]["validationActions"],
                serde_json::json!(["Deny"]),
                "{id}"
            );
            assert_eq!(policy["spec"]["failurePolicy"], "Fail", "{id}");
            let expressions = binding["spec"]["matchResources"]["namespaceSelector"]
                ["matchExpressions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let excludes = expressions.iter().any(excludes_system_namespaces);
            assert!(
                excludes,
                "{id}: the binding must exclude {SYSTEM_NAMESPACES:?}"
            );
            let validations = policy["spec"]["validations"].as_array();
            assert!(
                validations.is_some_and(|v| !v.is_empty()),
                "{id}: no validations"
            );

            // Parameterised entries: a paramRef with an explicit not-found action, and a sample
            // parameter object of the paramKind under the referenced name.
            let param_kind = &policy["spec"]["paramKind"];
            let param_ref = &binding["spec"]["paramRef"];
            assert_eq!(
                param_kind.is_null(),
                param_ref.is_null(),
                "{id}: paramKind vs paramRef"
            );
            if !param_kind.is_null() {
                let action = param_ref["parameterNotFoundAction"].as_str();
                assert!(
                    matches!(action, Some("Deny" | "Allow")),
                    "{id}: parameterNotFoundAction {action:?}"
                );
                let kind = param_kind["kind"].as_str().unwrap_or_default();
                let sample = of_kind(&values, kind);
                assert!(
                    sample
                        .iter()
                        .any(|p| p["metadata"]["name"] == param_ref["name"]
                            && p["metadata"]["namespace"] == param_ref["namespace"]),
                    "{id}: no sample {kind} {}/{}",
                    param_ref["namespace"],
                    param_ref["name"]
                );
                assert!(
                    entry.description.contains("parameterNotFoundAction"),
                    "{id}: the description must explain the parameterNotFoundAction"
                );
            }
        }
    }

    #[test]
    fn pod_security_entries_name_a_level_and_version() {
        let levels: Vec<_> = all()
            .into_iter()
            .filter_map(|e| match e.kind {
                EntryKind::PodSecurity { level, version } => Some((e.id, level, version)),
                EntryKind::Vap => None,
            })
            .collect();
        assert_eq!(levels.len(), 2);
        for (id, level, version) in levels {
            assert_eq!(id, format!("pod-security-{level}"));
            assert!(["baseline", "restricted"].contains(&level.as_str()), "{id}");
            assert!(
                version == "latest"
                    || version
                        .strip_prefix("v1.")
                        .is_some_and(|m| m.parse::<u32>().is_ok()),
                "{id}: version {version}"
            );
        }
    }

    /// Pod rules must be proven on workload templates too, and every entry on a system namespace.
    #[test]
    fn every_suite_has_two_allowed_and_two_denied_cases_and_the_edges() {
        for entry in all() {
            let id = entry.id;
            let values = docs(&entry, "palisade-test.yaml", entry.test_yaml);
            assert_eq!(values.len(), 1, "{id}: one suite document");
            let suite = &values[0];
            assert_eq!(suite["apiVersion"], "palisade.dev/v1alpha1", "{id}");
            assert_eq!(suite["kind"], "PolicyTest", "{id}");
            assert_eq!(suite["metadata"]["name"], id, "{id}");
            for file in suite["policies"].as_array().into_iter().flatten() {
                let file = file.as_str().unwrap_or_default();
                assert!(entry.read(file).is_ok(), "{id}: policies names {file}");
            }
            let cases = suite["cases"].as_array().cloned().unwrap_or_default();
            let mut count = [0usize; 4];
            let mut pod_kinds = false;
            let mut workload = false;
            let mut system_allowed = false;
            for case in &cases {
                let name = case["name"].as_str().unwrap_or_default();
                let expect = case["expect"].as_str().and_then(Action::parse);
                let Some(expect) = expect else {
                    panic!("{id}: case {name:?} has no valid expect");
                };
                count[expect as usize] += 1;
                if let Some(file) = case["file"].as_str() {
                    assert!(entry.read(file).is_ok(), "{id}: case {name:?} names {file}");
                    continue;
                }
                let object = &case["object"];
                let kind = object["kind"].as_str().unwrap_or_default();
                pod_kinds |= kind == "Pod";
                // A workload: a kind that carries a pod template.
                workload |=
                    kind != "Pod" && kind != "PodTemplate" && crate::pss::POD_KINDS.contains(&kind);
                if object["metadata"]["namespace"] == "kube-system" && expect == Action::Allow {
                    system_allowed = true;
                }
                if let Some(message) = case["message"].as_str() {
                    assert!(
                        !message.is_empty(),
                        "{id}: case {name:?} has an empty message"
                    );
                }
            }
            let allowed = count[Action::Allow as usize];
            let denied = count[Action::Deny as usize];
            assert!(allowed >= 2, "{id}: {allowed} allowed cases, want >= 2");
            assert!(denied >= 2, "{id}: {denied} denied cases, want >= 2");
            assert!(system_allowed, "{id}: no allowed case in kube-system");
            if pod_kinds {
                assert!(workload, "{id}: pod rule without a workload-template case");
            }
        }
    }

    /// The embedded list and the directories on disk agree, so no entry is forgotten.
    #[test]
    fn every_library_directory_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ids().map(str::to_owned).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
        for entry in all() {
            let dir = root.join(entry.id);
            let template = dir.join("template.yaml");
            assert_eq!(
                entry.template_yaml.is_some(),
                template.exists(),
                "{}: template.yaml",
                entry.id
            );
        }
    }

    #[test]
    fn entries_read_their_own_files_and_nothing_else() {
        let network = entry("network-policy-dns-egress").unwrap().unwrap();
        assert!(network
            .read("template.yaml")
            .unwrap()
            .contains("default-deny"));
        assert!(network.read("./policy.yaml").is_ok());
        let err = network.read("../secrets.yaml").unwrap_err();
        assert!(err.contains("has no file `../secrets.yaml`"), "{err}");
        assert!(entry("no-such-entry").unwrap().is_none());
        let baseline = entry("pod-security-baseline").unwrap().unwrap();
        assert!(baseline.read("policy.yaml").is_err());
        assert!(baseline.read("entry.yaml").is_ok());
    }
}
