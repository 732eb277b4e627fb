//! Policies of every engine, loaded together and evaluated as one: what `palisade check`, Palisade
//! test suites and (later) scans and impact previews use.
//!
//! A [`Bundle`] reads YAML streams and sorts each document by kind: ValidatingAdmissionPolicies and
//! their bindings (and parameter objects) go to [`vap`](crate::vap), ConstraintTemplates and
//! Constraints to [`gatekeeper`](crate::gatekeeper), Kyverno policies to [`kyverno`](crate::kyverno),
//! Pod Security levels to [`pss`](crate::pss).
//! [`Bundle::evaluate`] asks every engine and merges their findings into one [`Verdict`].

use serde_json::Value;

use crate::admission::AdmissionRequest;
use crate::cel::projection::Projection;
use crate::gatekeeper::{self, Inventory};
use crate::kyverno;
use crate::library::{self, Entry, EntryKind};
use crate::mode::Mode;
use crate::namespaces::Namespaces;
use crate::pss::{self, LevelVersion};
use crate::source::{parse_documents, type_meta, Document, SourceError};
use crate::vap::types::ValidationAction;
use crate::vap::{self, EvalContext, PolicySet};
use crate::verdict::{Action, EngineKind, Finding, NotEvaluable, Verdict};

/// Namespaces Palisade never puts policies on: the control plane's own and Palisade's.
pub use crate::library::SYSTEM_NAMESPACES;

/// What evaluation knows about the cluster beyond the request.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Namespace objects (labels matter for selectors).
    pub namespaces: Namespaces,
    /// Parameter objects for `paramKind` policies, besides those loaded with the policies.
    pub params: Vec<Value>,
    /// Objects already in the cluster, for policies that look at others (Gatekeeper's
    /// `data.inventory`). Build it once with [`Inventory::from_objects`] and reuse it.
    pub inventory: Inventory,
}

/// Policies of every engine.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    vap: PolicySet,
    gatekeeper: gatekeeper::Library,
    kyverno: kyverno::PolicySet,
    pod_security: Vec<(LevelVersion, Mode)>,
}

impl Bundle {
    /// Load every document of a YAML stream. Nothing is added unless the whole file loads.
    pub fn add_source(&mut self, file: &str, text: &str) -> Result<(), Vec<SourceError>> {
        let documents = parse_documents(file, text).map_err(|e| vec![e])?;
        self.add_documents(file, &documents)
    }

    /// Load several files at once. ConstraintTemplates are read before everything else, so a
    /// Constraint finds its kind whichever file defines it. Every file's errors are reported.
    pub fn add_sources<'a>(
        &mut self,
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), Vec<SourceError>> {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for (file, text) in sources {
            match parse_documents(file, text) {
                Ok(documents) => parsed.push((file, documents)),
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let is_template = |d: &Document| gatekeeper::Template::is_template(&d.value);
        for first_templates in [true, false] {
            for (file, documents) in &parsed {
                let chosen: Vec<Document> = documents
                    .iter()
                    .filter(|d| is_template(d) == first_templates)
                    .cloned()
                    .collect();
                if chosen.is_empty() {
                    continue;
                }
                if let Err(mut found) = self.add_documents(file, &chosen) {
                    errors.append(&mut found);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// What the engines accept but want the author to know, at its place: calls in a
    /// ConstraintTemplate's Rego that Palisade cannot evaluate locally.
    pub fn warnings(&self) -> Vec<SourceError> {
        self.gatekeeper
            .templates()
            .flat_map(|t| t.not_local.iter().cloned())
            .collect()
    }

    /// Load parsed documents of `file`. Nothing is added unless all of them load.
    pub fn add_documents(
        &mut self,
        file: &str,
        documents: &[Document],
    ) -> Result<(), Vec<SourceError>> {
        let mut errors = Vec::new();
        let mut vap_documents = Vec::new();
        let mut gatekeeper_documents = Vec::new();
        let mut kyverno_documents = Vec::new();
        for document in documents {
            if kyverno::is_kyverno_document(&document.value) {
                kyverno_documents.push(document.clone());
                continue;
            }
            if gatekeeper::Template::is_template(&document.value)
                || gatekeeper::Constraint::is_constraint(&document.value)
            {
                gatekeeper_documents.push(document.clone());
                continue;
            }
            let (api_version, kind) = type_meta(&document.value);
            match (api_version, kind) {
                (_, "") => errors.push(SourceError::new(
                    file,
                    document.first_line,
                    0,
                    "this document has no `kind`: expected a policy (ValidatingAdmissionPolicy, \
                     ValidatingAdmissionPolicyBinding, ConstraintTemplate, a Constraint) or a parameter object",
                )),
                ("palisade.dev/v1alpha1", "PodSecurityEntry") => match pod_security_entry(&document.value) {
                    Ok(level) => self.pod_security.push((level, Mode::Enforce)),
                    Err(message) => errors.push(SourceError::new(file, document.first_line, 0, message)),
                },
                _ => vap_documents.push(document.clone()),
            }
        }
        let vap = match PolicySet::from_documents(file, &vap_documents) {
            Ok(set) => Some(set),
            Err(mut found) => {
                errors.append(&mut found);
                None
            }
        };
        let mut kyverno_set = kyverno::PolicySet::default();
        if let Err(mut found) = kyverno_set.add_documents(file, &kyverno_documents) {
            errors.append(&mut found);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if !gatekeeper_documents.is_empty() {
            self.gatekeeper.add_documents(file, &gatekeeper_documents)?;
        }
        self.kyverno.append(&mut kyverno_set);
        if let Some(set) = vap {
            self.vap.extend(set);
        }
        Ok(())
    }

    /// Parameter objects for `paramKind` policies. One with the same kind, namespace and name as an
    /// object already loaded (for example the sample shipped beside a policy) replaces it, as
    /// applying it to a cluster would.
    pub fn set_params(&mut self, params: &[Value]) {
        for param in params {
            let id = identity(param);
            self.vap.params.retain(|existing| identity(existing) != id);
            self.vap.params.push(param.clone());
        }
    }

    /// Enforce a Pod Security level in `mode` on every namespace except the system ones.
    pub fn add_pod_security(&mut self, level: LevelVersion, mode: Mode) {
        self.pod_security.push((level, mode));
    }

    /// Take the Pod Security levels out, to place them per namespace as a cluster's labels do.
    pub fn take_pod_security(&mut self) -> Vec<(LevelVersion, Mode)> {
        std::mem::take(&mut self.pod_security)
    }

    /// Add a built-in library entry.
    pub fn add_library_entry(&mut self, entry: &Entry) -> Result<(), Vec<SourceError>> {
        let file = format!("library/{}/{}", entry.id, entry.policy_file());
        match &entry.kind {
            EntryKind::Vap => self.add_source(&file, entry.policy_yaml),
            EntryKind::PodSecurity { level, version } => {
                let level: LevelVersion = format!("{level}:{version}")
                    .parse()
                    .map_err(|err| vec![SourceError::new(&file, 0, 0, format!("{err}"))])?;
                self.add_pod_security(level, Mode::Enforce);
                Ok(())
            }
        }
    }

    /// Add every entry of the built-in library.
    pub fn add_library(&mut self) -> Result<(), Vec<SourceError>> {
        for entry in library::entries().map_err(|e| vec![e])? {
            self.add_library_entry(&entry)?;
        }
        Ok(())
    }

    /// Does the bundle hold nothing to evaluate?
    pub fn is_empty(&self) -> bool {
        self.vap.policies.is_empty()
            && self.kyverno.is_empty()
            && self.pod_security.is_empty()
            && self.gatekeeper.constraints().next().is_none()
    }

    /// What evaluating the bundle can read of a request's object: the whole object, unless only
    /// ValidatingAdmissionPolicies (see [`PolicySet::object_reads`]) and Gatekeeper constraints
    /// judged by their templates' CEL code (see [`gatekeeper::Library::object_reads`]) are in it.
    pub fn object_reads(&self) -> Projection {
        if !self.kyverno.is_empty() || !self.pod_security.is_empty() {
            return Projection::whole();
        }
        let mut reads = self.vap.object_reads();
        if self.gatekeeper.constraints().next().is_some() {
            match self.gatekeeper.object_reads() {
                Some(gatekeeper) => reads.merge(&gatekeeper),
                None => return Projection::whole(),
            }
        }
        reads
    }

    /// Whether what the bundle says about an object may depend on which object it is, not only
    /// on what it holds. `false` only for ValidatingAdmissionPolicies and Gatekeeper constraints
    /// judged by CEL code that read neither the object's name nor its uid, match no names, and
    /// read the request only where it does not name the object (see
    /// [`vap::PolicySet::reads_identity`]): then two objects that differ only in `metadata.name`
    /// and `metadata.uid` get the same findings, messages and reasons, and an impact judges
    /// the copies of one pod template once.
    pub fn reads_identity(&self) -> bool {
        !self.kyverno.is_empty()
            || !self.pod_security.is_empty()
            || self.vap.reads_identity()
            || self.gatekeeper.reads_identity()
    }

    /// Whether what the bundle says about an object other than a Namespace may depend on its
    /// labels. `false` only where [`Bundle::reads_identity`] could be: for ValidatingAdmissionPolicies
    /// and Gatekeeper constraints judged by CEL code that select no objects by label and read no
    /// labels (see [`vap::PolicySet::reads_labels`]).
    pub fn reads_labels(&self) -> bool {
        !self.kyverno.is_empty()
            || !self.pod_security.is_empty()
            || self.vap.reads_labels()
            || self.gatekeeper.reads_labels()
    }

    /// Whether anything here could judge an object of `kind` (in any group): `false` only when no
    /// policy's rules, no constraint's kinds, no Kyverno policy (autogen included) and no Pod
    /// Security level can match that kind, so a caller may count such an object without reading
    /// it.
    pub fn may_judge_kind(&self, kind: &str) -> bool {
        self.kyverno.may_judge_kind(kind)
            || (!self.pod_security.is_empty() && pss::POD_KINDS.contains(&kind))
            || self.vap.may_match_kind(kind)
            || self.gatekeeper.may_match_kind(kind)
    }

    /// The ValidatingAdmissionPolicies that no binding refers to. The apiserver ignores those.
    pub fn unbound_policies(&self) -> Vec<String> {
        self.vap.unbound_policies()
    }

    /// Bind every unbound ValidatingAdmissionPolicy to all resources with `actions`, as a user who
    /// checks a lone policy file expects.
    pub fn bind_unbound(&mut self, actions: &[ValidationAction]) {
        for name in self.vap.unbound_policies() {
            self.vap
                .bindings
                .push(vap::Binding::unrestricted(&name, &name, actions));
        }
    }

    /// Everything every engine says about `request`.
    pub fn evaluate(&self, request: &AdmissionRequest, context: &Context) -> Verdict {
        let mut verdict = Verdict::default();
        if !self.vap.policies.is_empty() {
            let vap_context = EvalContext {
                namespaces: &context.namespaces,
                params: &context.params,
                authorizer: None,
            };
            verdict.merge(self.vap.evaluate(request, &vap_context).into_verdict());
        }
        if self.gatekeeper.constraints().next().is_some() {
            match self.gatekeeper.review(request, &context.inventory) {
                Ok(review) => verdict.merge(review.into_verdict()),
                Err(error) => verdict.not_evaluable.push(NotEvaluable {
                    engine: EngineKind::Gatekeeper,
                    policy: "(all constraints)".into(),
                    reason: error.to_string(),
                }),
            }
        }
        if !self.kyverno.is_empty() {
            let kyverno_context = kyverno::Context {
                namespaces: &context.namespaces,
            };
            verdict.merge(kyverno_verdict(
                self.kyverno.evaluate(request, &kyverno_context),
            ));
        }
        if !self.pod_security.is_empty() && !SYSTEM_NAMESPACES.contains(&request.namespace.as_str())
        {
            for (level, mode) in &self.pod_security {
                verdict.merge(pss::evaluate(*level, *mode, request));
            }
        }
        verdict
    }
}

/// Kyverno's answers as findings: a failed rule acts as its failure action says (`Enforce` denies);
/// a rule that errs does the same, as Kyverno's default failure policy (`Fail`) does; a rule that
/// needs what is not here is not evaluable. Passes and skips say nothing.
fn kyverno_verdict(results: Vec<kyverno::RuleResult>) -> Verdict {
    let mut verdict = Verdict::default();
    for result in results {
        let policy = if result.rule == result.policy {
            result.policy
        } else {
            format!("{}/{}", result.policy, result.rule)
        };
        let action = match result.action {
            kyverno::FailureAction::Audit => Action::Audit,
            kyverno::FailureAction::Warn => Action::Warn,
            kyverno::FailureAction::Enforce => Action::Deny,
        };
        let message = match result.outcome {
            kyverno::Outcome::Fail(message) => message,
            kyverno::Outcome::Error(error) => format!("the rule could not be evaluated: {error}"),
            kyverno::Outcome::NotEvaluable(reason) => {
                verdict.not_evaluable.push(NotEvaluable {
                    engine: EngineKind::Kyverno,
                    policy,
                    reason,
                });
                continue;
            }
            kyverno::Outcome::Pass | kyverno::Outcome::Skip(_) => continue,
        };
        verdict.findings.push(Finding {
            engine: EngineKind::Kyverno,
            policy,
            action,
            message,
        });
    }
    verdict
}

/// What makes an object itself in a cluster: API group, kind, namespace and name.
fn identity(object: &Value) -> (String, String, String, String) {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_owned();
    let api_version = text(object.get("apiVersion"));
    let group = match api_version.split_once('/') {
        Some((group, _)) => group.to_owned(),
        None => String::new(),
    };
    let metadata = object.get("metadata");
    (
        group,
        text(object.get("kind")),
        text(metadata.and_then(|m| m.get("namespace"))),
        text(metadata.and_then(|m| m.get("name"))),
    )
}

/// `palisade.dev/v1alpha1` `PodSecurityEntry`: `spec.level` and `spec.version`.
pub(crate) fn pod_security_entry(value: &Value) -> Result<LevelVersion, String> {
    let spec = value.get("spec");
    let level = spec
        .and_then(|s| s.get("level"))
        .and_then(Value::as_str)
        .ok_or("PodSecurityEntry needs spec.level (baseline or restricted)")?;
    let version = spec
        .and_then(|s| s.get("version"))
        .and_then(Value::as_str)
        .unwrap_or("latest");
    format!("{level}:{version}")
        .parse()
        .map_err(|err| format!("PodSecurityEntry: {err}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::verdict::{Action, EngineKind};

    const POLICY: &str = "\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-latest}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"
    message: no latest
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-latest}
spec: {policyName: no-latest, validationActions: [Warn]}
";

    fn pod(namespace: &str, image: &str, privileged: bool) -> AdmissionRequest {
        AdmissionRequest::create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": image, "securityContext": {"privileged": privileged}}]}
        }))
        .unwrap()
    }

    #[test]
    fn engines_answer_together_and_the_strictest_wins() {
        let mut bundle = Bundle::default();
        bundle.add_source("p.yaml", POLICY).unwrap();
        bundle.add_pod_security("baseline:latest".parse().unwrap(), Mode::Enforce);
        let verdict = bundle.evaluate(&pod("team", "nginx:latest", true), &Context::default());
        let engines: Vec<_> = verdict.findings.iter().map(|f| f.engine).collect();
        assert!(engines.contains(&EngineKind::Vap), "{verdict:?}");
        assert!(engines.contains(&EngineKind::PodSecurity), "{verdict:?}");
        assert_eq!(verdict.action(), Action::Deny);

        let only_warned = bundle.evaluate(&pod("team", "nginx:latest", false), &Context::default());
        assert_eq!(only_warned.action(), Action::Warn);
        let clean = bundle.evaluate(&pod("team", "nginx:1.27", false), &Context::default());
        assert_eq!(clean.action(), Action::Allow);
    }

    /// A Kyverno ValidatingPolicy and a `policies.kyverno.io` PolicyException loaded into a
    /// bundle: the exception holds there as in Kyverno's own set (it was once left out).
    #[test]
    fn a_kyverno_cel_exception_holds_in_a_bundle() {
        let policy = "\
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: no-latest}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"
    message: no latest
";
        let exception = "\
apiVersion: policies.kyverno.io/v1alpha1
kind: PolicyException
metadata: {name: team-ok}
spec:
  policyRefs: [{name: no-latest, kind: ValidatingPolicy}]
  matchConditions:
  - {name: team, expression: \"object.metadata.namespace == 'team'\"}
";
        let mut bundle = Bundle::default();
        bundle.add_source("policy.yaml", policy).unwrap();
        let denied = bundle.evaluate(&pod("team", "nginx:latest", false), &Context::default());
        assert_eq!(denied.action(), Action::Deny, "{denied:?}");
        bundle.add_source("exception.yaml", exception).unwrap();
        let excepted = bundle.evaluate(&pod("team", "nginx:latest", false), &Context::default());
        assert_eq!(excepted.action(), Action::Allow, "{excepted:?}");
        let elsewhere = bundle.evaluate(&pod("other", "nginx:latest", false), &Context::default());
        assert_eq!(elsewhere.action(), Action::Deny, "{elsewhere:?}");
    }

    #[test]
    fn pod_security_leaves_system_namespaces_alone() {
        let mut bundle = Bundle::default();
        bundle.add_pod_security("restricted:latest".parse().unwrap(), Mode::Enforce);
        let verdict = bundle.evaluate(&pod("kube-system", "pause:3.9", true), &Context::default());
        assert_eq!(verdict.action(), Action::Allow);
    }

    #[test]
    fn a_broken_file_adds_nothing() {
        let mut bundle = Bundle::default();
        let broken = POLICY.replace("!c.image.endsWith(':latest')", "!c.image.endsWith(");
        let errors = bundle.add_source("p.yaml", &broken).unwrap_err();
        assert!(errors[0].line > 0, "{errors:?}");
        assert!(bundle.is_empty());
    }

    #[test]
    fn lone_policies_can_be_bound_for_a_check() {
        let mut bundle = Bundle::default();
        let lone = POLICY.split("---").next().unwrap();
        bundle.add_source("p.yaml", lone).unwrap();
        assert_eq!(bundle.unbound_policies(), ["no-latest"]);
        bundle.bind_unbound(&[ValidationAction::Deny]);
        assert!(bundle.unbound_policies().is_empty());
        let verdict = bundle.evaluate(&pod("team", "nginx:latest", false), &Context::default());
        assert_eq!(verdict.action(), Action::Deny);
    }

    #[test]
    fn params_replace_the_sample_of_the_same_name() {
        let mut bundle = Bundle::default();
        let sample = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p", "namespace": "s"}, "data": {"a": "1"}});
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "q", "namespace": "s"}});
        bundle.set_params(&[sample, other.clone()]);
        let mine = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p", "namespace": "s"}, "data": {"a": "2"}});
        bundle.set_params(std::slice::from_ref(&mine));
        assert_eq!(bundle.vap.params, vec![other, mine]);
    }

    #[test]
    fn the_whole_library_loads() {
        let mut bundle = Bundle::default();
        bundle.add_library().unwrap();
        assert!(!bundle.is_empty());
        assert!(
            bundle.unbound_policies().is_empty(),
            "{:?}",
            bundle.unbound_policies()
        );
    }
}
