//! Validating a draft with the engine, before anything is saved, and running its test cases.
//!
//! Everything here is pure (no database, no clock): [`check`] says what is wrong with a draft and
//! where, [`run_cases`] runs a version's cases through the engine's Palisade suite runner.

use std::collections::HashSet;
use std::time::Instant;

use palisade_engine::source::{parse_documents, Document, SourceError};
use palisade_engine::suite::palisade::{self as suite, Observed};
use palisade_engine::suite::{CaseStatus as EngineStatus, Files};
use serde_json::{json, Value};

use crate::policies::{
    CaseResult, CaseStatus, Content, Engine, Expect, Part, Problem, CATEGORIES, FRAMEWORKS,
};

/// The file name the policy source has in error messages and in the test suite.
pub const SOURCE_FILE: &str = "policy.yaml";
const PARAMS_FILE: &str = "params.yaml";

/// What [`check`] learned about a draft.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub engine: Option<Engine>,
    /// `metadata.name` of the policy document (VAP, ConstraintTemplate or PodSecurityEntry).
    pub name: Option<String>,
    /// The `palisade.dev/title` and `palisade.dev/category` annotations, if present.
    pub title: Option<String>,
    pub category: Option<String>,
    pub problems: Vec<Problem>,
}

/// A blocking problem (not a warning) at `line`:`column` of `part`.
pub(crate) fn problem(
    part: Part,
    line: usize,
    column: usize,
    message: impl Into<String>,
) -> Problem {
    Problem {
        part,
        line,
        column,
        message: message.into(),
        warning: false,
    }
}

fn from_source_error(part: Part, error: SourceError) -> Problem {
    problem(part, error.line, error.column, error.message)
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str()
}

/// Is `name` a valid Kubernetes object name (DNS-1123 subdomain)?
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 253
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Everything wrong with `content`, each problem at its part, line and column. A draft with no
/// problems loads into the engine, and its cases can run.
pub fn check(content: &Content) -> Checked {
    let mut checked = Checked::default();
    // The source and the parameters are parsed once; every check below reads those documents.
    let source = if content.source.trim().is_empty() {
        checked
            .problems
            .push(problem(Part::Source, 1, 1, "the policy is empty"));
        None
    } else {
        parse_documents(SOURCE_FILE, &content.source)
            .map_err(|error| {
                checked
                    .problems
                    .push(from_source_error(Part::Source, error))
            })
            .ok()
    };
    if let Some(source) = &source {
        check_source(source, &mut checked);
    }
    let params = parse_params(&content.params)
        .map_err(|error| {
            checked
                .problems
                .push(from_source_error(Part::Params, error))
        })
        .ok();
    if let Some(params) = &params {
        check_params(params, &mut checked.problems);
    }
    if let Some(source) = &source {
        let params = params.as_deref().unwrap_or_default();
        check_what_may_apply(source, params, &mut checked.problems);
    }
    check_controls(&content.controls, &mut checked.problems);
    check_tests(content, &mut checked.problems);
    checked
}

fn check_source(documents: &[Document], checked: &mut Checked) {
    let problems = &mut checked.problems;
    // Which engine: decided by the policy documents; parameter objects may sit beside a VAP.
    let mut mains: Vec<(Engine, &Document)> = Vec::new();
    let mut bindings = 0;
    let mut constraints = 0;
    for document in documents {
        let api_version = text(&document.value, &["apiVersion"]).unwrap_or_default();
        let group = api_version.split('/').next().unwrap_or_default();
        match (group, text(&document.value, &["kind"]).unwrap_or_default()) {
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
                mains.push((Engine::Vap, document))
            }
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => bindings += 1,
            ("templates.gatekeeper.sh", "ConstraintTemplate") => {
                mains.push((Engine::Gatekeeper, document))
            }
            ("constraints.gatekeeper.sh", _) => constraints += 1,
            ("palisade.dev", "PodSecurityEntry") => mains.push((Engine::PodSecurity, document)),
            ("kyverno.io", "ClusterPolicy" | "Policy")
            | ("policies.kyverno.io", "ValidatingPolicy" | "NamespacedValidatingPolicy") => {
                mains.push((Engine::Kyverno, document))
            }
            _ => {}
        }
    }
    let Some((engine, main)) = mains.first().copied() else {
        problems.push(problem(
            Part::Source,
            documents.first().map_or(1, |d| d.first_line),
            1,
            "no policy here: expected a ValidatingAdmissionPolicy with its binding, a Gatekeeper \
             ConstraintTemplate with a Constraint, a Kyverno ClusterPolicy, Policy or \
             ValidatingPolicy, or a palisade.dev/v1alpha1 PodSecurityEntry",
        ));
        return;
    };
    if let Some((other, document)) = mains.get(1) {
        let message = if *other == engine {
            "one policy per Palisade policy: split this document into a policy of its own".into()
        } else {
            format!(
                "this policy is already a {}; a {} belongs in a policy of its own",
                engine.label(),
                other.label()
            )
        };
        problems.push(problem(Part::Source, document.first_line, 1, message));
    }
    match engine {
        Engine::Vap if bindings == 0 => problems.push(problem(
            Part::Source,
            main.first_line,
            1,
            "the ValidatingAdmissionPolicy has no ValidatingAdmissionPolicyBinding: add one \
             (Palisade sets its validationActions for each mode)",
        )),
        Engine::Gatekeeper if constraints == 0 => problems.push(problem(
            Part::Source,
            main.first_line,
            1,
            "the ConstraintTemplate has no Constraint: add one of the kind it defines",
        )),
        _ => {}
    }
    checked.engine = Some(engine);
    let name = text(&main.value, &["metadata", "name"]).unwrap_or_default();
    if valid_name(name) {
        checked.name = Some(name.to_owned());
    } else {
        problems.push(problem(
            Part::Source,
            main.first_line,
            1,
            format!(
                "metadata.name {name:?} is not a valid name: lower-case letters, digits, `-` and \
                 `.`, starting and ending with a letter or digit"
            ),
        ));
    }
    let annotation = |key: &str| {
        main.value
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    // Kyverno's library writes its own title and category; Palisade's annotations win.
    checked.title =
        annotation("palisade.dev/title").or_else(|| annotation("policies.kyverno.io/title"));
    checked.category = annotation("palisade.dev/category")
        .filter(|c| CATEGORIES.contains(&c.as_str()))
        .or_else(|| {
            annotation("policies.kyverno.io/category")
                .filter(|c| c.starts_with("Pod Security"))
                .map(|_| "pod-security".to_owned())
        });
    // The engine itself: CEL and Rego compile, bindings refer to their policies, levels exist.
    let mut bundle = palisade_engine::bundle::Bundle::default();
    match bundle.add_documents(SOURCE_FILE, documents) {
        Err(errors) => problems.extend(
            errors
                .into_iter()
                .map(|e| from_source_error(Part::Source, e)),
        ),
        Ok(()) => problems.extend(bundle.warnings().into_iter().map(|e| Problem {
            warning: true,
            ..from_source_error(Part::Source, e)
        })),
    }
}

fn parse_params(params: &str) -> Result<Vec<Document>, SourceError> {
    if params.trim().is_empty() {
        return Ok(Vec::new());
    }
    parse_documents(PARAMS_FILE, params)
}

fn check_params(documents: &[Document], problems: &mut Vec<Problem>) {
    for document in documents {
        let named = text(&document.value, &["metadata", "name"]).is_some();
        if text(&document.value, &["kind"]).is_none()
            || text(&document.value, &["apiVersion"]).is_none()
            || !named
        {
            problems.push(problem(
                Part::Params,
                document.first_line,
                1,
                "a parameter object needs apiVersion, kind and metadata.name",
            ));
        }
    }
}

/// Refuses, at its line, every object of the source or the parameters that a policy may not apply
/// with Palisade's credentials (see `palisade_engine::render::refusal`).
fn check_what_may_apply(source: &[Document], extra: &[Document], problems: &mut Vec<Problem>) {
    use palisade_engine::render::{param_kinds, refusal};
    let params = param_kinds(source);
    for (part, documents) in [(Part::Source, source), (Part::Params, extra)] {
        for document in documents {
            if let Some(why) = refusal(&document.value, &params) {
                problems.push(problem(part, document.first_line, 1, why));
            }
        }
    }
}

fn check_controls(controls: &[String], problems: &mut Vec<Problem>) {
    for (index, control) in controls.iter().enumerate() {
        let known = control.split_once(':').is_some_and(|(framework, id)| {
            FRAMEWORKS.iter().any(|(f, _)| *f == framework) && !id.trim().is_empty()
        });
        if !known {
            problems.push(problem(
                Part::Controls,
                index + 1,
                0,
                format!(
                    "{control:?} is not a control tag: write framework:id with framework one of \
                     cis, nsa-cisa, pci-dss, soc2 (e.g. cis:5.2.2)"
                ),
            ));
        }
    }
}

fn check_tests(content: &Content, problems: &mut Vec<Problem>) {
    let mut names = HashSet::new();
    for (index, case) in content.tests.iter().enumerate() {
        let part = Part::Test(index);
        if case.name.trim().is_empty() {
            problems.push(problem(part, 0, 0, "the case needs a name"));
        } else if !names.insert(case.name.trim()) {
            problems.push(problem(
                part,
                0,
                0,
                format!("a case named {:?} comes earlier", case.name),
            ));
        }
        if let Err(message) = case_object(&case.yaml) {
            problems.push(from_source_error(part, message));
        }
        if let Some(pattern) = &case.message {
            if let Err(err) = regex::Regex::new(pattern) {
                problems.push(problem(
                    part,
                    0,
                    0,
                    format!("the message pattern is not a valid regular expression: {err}"),
                ));
            }
        }
    }
}

/// A case's YAML as one object (or AdmissionReview).
pub fn case_object(yaml: &str) -> Result<Value, SourceError> {
    let mut documents = parse_documents("case.yaml", yaml)?;
    if documents.len() != 1 {
        return Err(SourceError::new(
            "case.yaml",
            1,
            1,
            format!(
                "a case is one object or one AdmissionReview, found {} documents",
                documents.len()
            ),
        ));
    }
    let document = documents.remove(0);
    if text(&document.value, &["kind"]).is_none()
        || text(&document.value, &["apiVersion"]).is_none()
    {
        return Err(SourceError::new(
            "case.yaml",
            document.first_line,
            1,
            "the object needs apiVersion and kind",
        ));
    }
    Ok(document.value)
}

/// The policy source, as the one file the generated suite refers to.
struct PolicyFile<'a>(&'a str);

impl Files for PolicyFile<'_> {
    fn read(&self, path: &str) -> Result<String, String> {
        if path == SOURCE_FILE {
            Ok(self.0.to_owned())
        } else {
            Err(format!("only {SOURCE_FILE} is available"))
        }
    }
}

/// The outcome of running a version's cases.
#[derive(Debug, Clone)]
pub struct Ran {
    pub results: Vec<CaseResult>,
    /// Set when no case could run (the policy does not load).
    pub error: Option<String>,
    pub duration_us: i64,
}

/// Run every case of `content` against its policy, through the engine's Palisade suite runner.
pub fn run_cases(content: &Content) -> Ran {
    let started = Instant::now();
    let mut cases = Vec::new();
    let mut unusable: Vec<(usize, String)> = Vec::new();
    for (index, case) in content.tests.iter().enumerate() {
        match case_object(&case.yaml) {
            Ok(object) => {
                let mut entry = json!({
                    "name": case.name,
                    "object": object,
                    "expect": case.expect.as_str(),
                });
                if let Some(message) = &case.message {
                    entry["message"] = Value::from(message.as_str());
                }
                cases.push(entry);
            }
            Err(error) => unusable.push((index, error.to_string())),
        }
    }
    let params: Vec<Value> = parse_params(&content.params)
        .map(|documents| documents.into_iter().map(|d| d.value).collect())
        .unwrap_or_default();
    let document = Document {
        value: json!({
            "apiVersion": suite::API_VERSION,
            "kind": suite::KIND,
            "policies": [SOURCE_FILE],
            "params": params,
            "cases": cases,
        }),
        first_line: 1,
        text: String::new(),
    };
    let outcome = suite::run_observed("tests", &document, &PolicyFile(&content.source));
    let (ran, error) = match outcome {
        Ok(results) => (results, None),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let mut ran = ran.into_iter();
    let mut results = Vec::with_capacity(content.tests.len());
    for (index, case) in content.tests.iter().enumerate() {
        if let Some((_, why)) = unusable.iter().find(|(i, _)| *i == index) {
            results.push(CaseResult {
                name: case.name.clone(),
                expected: case.expect,
                actual: None,
                status: CaseStatus::Failed,
                reason: why.clone(),
                messages: Vec::new(),
            });
            continue;
        }
        let next = if error.is_none() { ran.next() } else { None };
        results.push(match next {
            Some((result, observed)) => convert(case.expect, result.status, observed),
            None => CaseResult {
                name: case.name.clone(),
                expected: case.expect,
                actual: None,
                status: CaseStatus::Skipped,
                reason: error
                    .clone()
                    .unwrap_or_else(|| "the engine returned no result".into()),
                messages: Vec::new(),
            },
        });
        if let Some(last) = results.last_mut() {
            last.name = case.name.clone();
        }
    }
    Ran {
        results,
        error,
        duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
    }
}

fn convert(expected: Expect, status: EngineStatus, observed: Option<Observed>) -> CaseResult {
    let (status, reason) = match status {
        EngineStatus::Passed => (CaseStatus::Passed, String::new()),
        EngineStatus::Failed(why) => (CaseStatus::Failed, why),
        EngineStatus::Skipped(why) => (CaseStatus::Skipped, why),
    };
    CaseResult {
        name: String::new(),
        expected,
        actual: observed.as_ref().map(|o| o.action.as_str().to_owned()),
        status,
        reason,
        messages: observed.map(|o| o.messages).unwrap_or_default(),
    }
}
