//! `palisade check [--policy FILE]... [--pss LEVEL[:VERSION]] [--library ID]... RESOURCE_PATH...`:
//! evaluate resources against policies and print each verdict. Exit 1 when anything would be denied,
//! 0 otherwise, 2 on bad input (a resource the apiserver would refuse before admission included).
//! Manifests are checked as the apiserver's admission sees them (`palisade_engine::apiview`):
//! decoded and defaulted, with a note for each field the apiserver would drop.

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::source::{parse_document, split_documents, Document, SourceError};
use palisade_engine::{apiview, AdmissionRequest, UserInfo, Verdict};
use serde::Serialize;
use serde_json::Value;

use super::inputs::{read_inputs, Input};
use super::{Exit, OutputFormat};

/// What `palisade check` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct CheckArgs {
    pub policies: Vec<String>,
    pub pod_security: Vec<String>,
    pub library: Vec<String>,
    pub resources: Vec<String>,
    pub output: OutputFormat,
}

/// One resource's verdict, as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Checked {
    source: String,
    line: usize,
    kind: String,
    namespace: String,
    name: String,
    action: palisade_engine::Action,
    #[serde(flatten)]
    verdict: Verdict,
    /// What the apiserver's decoding changed that the manifest's author may not expect (fields it
    /// drops).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    results: &'a [Checked],
    denied: usize,
    warned: usize,
    audited: usize,
    allowed: usize,
}

pub fn run(args: &CheckArgs) -> Exit {
    match check(args) {
        Ok(exit) => exit,
        Err(errors) => {
            for error in errors {
                eprintln!("palisade: error: {error}");
            }
            Exit::BadInput
        }
    }
}

fn check(args: &CheckArgs) -> Result<Exit, Vec<String>> {
    let bundle = super::bundle::load(&args.policies, &args.pod_security, &args.library)?;
    let inputs = read_inputs(&args.resources).map_err(|err| vec![err.to_string()])?;
    let results = check_inputs(&bundle, &inputs)?;

    let count = |action| results.iter().filter(|r| r.action == action).count();
    let report = Report {
        denied: count(palisade_engine::Action::Deny),
        warned: count(palisade_engine::Action::Warn),
        audited: count(palisade_engine::Action::Audit),
        allowed: count(palisade_engine::Action::Allow),
        results: &results,
    };
    match args.output {
        OutputFormat::Text => print_text(&report),
        OutputFormat::Json => super::print_json(&report),
    }
    Ok(if report.denied > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

/// Every resource of the inputs checked against `bundle`, in order. Each document is read,
/// checked and dropped in turn (on several threads), so memory holds a few documents at a time
/// rather than all of them; only the documents that may be Namespaces are read first, since every
/// resource is checked knowing the Namespaces among all of them. The errors are those of reading
/// everything first: each input's first unreadable document, then the first resource that cannot
/// be checked.
fn check_inputs(bundle: &Bundle, inputs: &[Input]) -> Result<Vec<Checked>, Vec<String>> {
    let chunks = in_parallel(chunks_of(inputs), 64, |chunk| {
        if may_be_namespace(chunk.pending()) {
            chunk.read(inputs)
        } else {
            chunk
        }
    });
    let context = Context {
        namespaces: chunks.iter().flat_map(Chunk::namespaces).collect(),
        ..Context::default()
    };
    let checked = in_parallel(chunks, 64, |chunk| {
        let input = chunk.input;
        (input, chunk.read(inputs).check(bundle, &context, inputs))
    });
    outcome(inputs.len(), checked)
}

/// Could this document's text be a Namespace, or a list holding one? Only a text that names the kind,
/// or could spell it otherwise (an escape in a quoted string, a tag), can.
fn may_be_namespace(text: Option<&str>) -> bool {
    text.is_some_and(|text| text.contains("Namespace") || text.contains(['\\', '!']))
}

/// The checked resources, or the errors as reading every input first would report them: each
/// input's first unreadable document (in the order of the inputs); then, when all could be read, the
/// first resource that could not be checked; and no resource at all is an error too.
fn outcome(
    inputs: usize,
    checked: Vec<(usize, Result<Vec<Checked>, Failure>)>,
) -> Result<Vec<Checked>, Vec<String>> {
    let mut unreadable: Vec<Option<String>> = vec![None; inputs];
    let mut first_unchecked = None;
    let mut results = Vec::new();
    for (input, result) in checked {
        match result {
            Ok(mut found) => results.append(&mut found),
            Err(Failure::Unreadable(error)) => {
                unreadable[input].get_or_insert(error);
            }
            Err(Failure::Unchecked(error)) => {
                first_unchecked.get_or_insert(error);
            }
        }
    }
    let unreadable: Vec<String> = unreadable.into_iter().flatten().collect();
    if !unreadable.is_empty() {
        return Err(unreadable);
    }
    if let Some(error) = first_unchecked {
        return Err(vec![error]);
    }
    if results.is_empty() {
        return Err(vec!["no resources to check in the given paths".into()]);
    }
    Ok(results)
}

/// Why a document gave no verdicts.
#[derive(Debug)]
enum Failure {
    /// It is not YAML (the error as [`parse_documents`] words it).
    Unreadable(String),
    /// One of its resources cannot be checked (for example the apiserver would refuse it).
    Unchecked(String),
}

/// One document's text from the inputs, read or not yet.
struct Chunk {
    /// The index of its input.
    input: usize,
    first_line: usize,
    state: ChunkState,
}

enum ChunkState {
    Pending(String),
    Read(Result<Option<Document>, SourceError>),
}

/// Every document's text of every input, in order.
fn chunks_of(inputs: &[Input]) -> Vec<Chunk> {
    inputs
        .iter()
        .enumerate()
        .flat_map(|(input, Input { text, .. })| {
            split_documents(text)
                .into_iter()
                .map(move |(first_line, text)| Chunk {
                    input,
                    first_line,
                    state: ChunkState::Pending(text),
                })
        })
        .collect()
}

impl Chunk {
    /// Its text, while it is not read yet.
    fn pending(&self) -> Option<&str> {
        match &self.state {
            ChunkState::Pending(text) => Some(text),
            ChunkState::Read(_) => None,
        }
    }

    /// The chunk with its document read (once).
    fn read(self, inputs: &[Input]) -> Chunk {
        let ChunkState::Pending(text) = self.state else {
            return self;
        };
        let file = &inputs[self.input].name;
        Chunk {
            state: ChunkState::Read(parse_document(file, self.first_line, text)),
            ..self
        }
    }

    /// The Namespaces among its resources, once read.
    fn namespaces(&self) -> Vec<Value> {
        let ChunkState::Read(Ok(Some(document))) = &self.state else {
            return Vec::new();
        };
        let value = &document.value;
        let resources: Vec<&Value> = if is_list(value) {
            value
                .get("items")
                .and_then(Value::as_array)
                .map(|items| items.iter().collect())
                .unwrap_or_default()
        } else {
            vec![value]
        };
        resources
            .into_iter()
            .filter(|value| value.get("kind").and_then(Value::as_str) == Some("Namespace"))
            .cloned()
            .collect()
    }

    /// Every resource of its (read) document checked.
    fn check(
        self,
        bundle: &Bundle,
        context: &Context,
        inputs: &[Input],
    ) -> Result<Vec<Checked>, Failure> {
        let document = match self.state {
            ChunkState::Read(Ok(Some(document))) => document,
            ChunkState::Read(Ok(None)) | ChunkState::Pending(_) => return Ok(Vec::new()),
            ChunkState::Read(Err(error)) => return Err(Failure::Unreadable(error.to_string())),
        };
        let source = &inputs[self.input].name;
        resources_in(document.value)
            .into_iter()
            .map(|value| {
                let resource = Resource {
                    source: source.clone(),
                    line: document.first_line,
                    value,
                };
                evaluate(bundle, context, resource).map_err(Failure::Unchecked)
            })
            .collect()
    }
}

/// Is this document a list of resources (`kubectl get -o yaml` writes a `List`)?
fn is_list(value: &Value) -> bool {
    value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
}

/// The resources a document holds: itself, or the items of a list, checked one by one.
fn resources_in(value: Value) -> Vec<Value> {
    if !is_list(&value) {
        return vec![value];
    }
    match value {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// How many threads share the work of a large check: the machine's cores, at most eight.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Apply `work` to every item, in order, on up to [`threads`] threads (each takes a contiguous
/// run of items); fewer than `at_least` items stay on this thread.
fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    at_least: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let threads = threads();
    if threads < 2 || items.len() < at_least.max(2) {
        return items.into_iter().map(work).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let run: Vec<T> = items.by_ref().take(per_thread).collect();
        if run.is_empty() {
            break;
        }
        runs.push(run);
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| scope.spawn(move || run.into_iter().map(work).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// One resource's verdict.
fn evaluate(bundle: &Bundle, context: &Context, resource: Resource) -> Result<Checked, String> {
    let Resource {
        source,
        line,
        value,
    } = resource;
    // A manifest is checked as the apiserver's admission sees it; a review as it was sent.
    let (value, notes) = if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        (value, Vec::new())
    } else {
        let view =
            apiview::into_admission_view(value).map_err(|err| format!("{source}:{line}: {err}"))?;
        (view.object, view.notes)
    };
    let mut request = request_for(value).map_err(|err| format!("{source}:{line}: {err}"))?;
    if request.user_info.username.is_empty() {
        request.user_info = UserInfo::tester();
    }
    let verdict = bundle.evaluate(&request, context);
    Ok(Checked {
        source,
        line,
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        action: verdict.action(),
        verdict,
        notes,
    })
}

/// The request checked for one resource, as [`AdmissionRequest::from_value`] reads it: an
/// AdmissionReview's request, or a CREATE of a bare object. A bare object is moved into its request
/// rather than copied: the request is made from the fields that name the object (all
/// [`AdmissionRequest::create`] reads besides keeping it) and then given the object itself.
fn request_for(
    value: Value,
) -> Result<AdmissionRequest, palisade_engine::admission::AdmissionError> {
    if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        return AdmissionRequest::from_value(value);
    }
    let mut names = serde_json::Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(field) = value.get(key) {
            names.insert(key.to_owned(), field.clone());
        }
    }
    let mut metadata = serde_json::Map::new();
    for key in ["name", "namespace"] {
        if let Some(field) = value.get("metadata").and_then(|m| m.get(key)) {
            metadata.insert(key.to_owned(), field.clone());
        }
    }
    names.insert("metadata".to_owned(), Value::Object(metadata));
    let mut request = AdmissionRequest::create(Value::Object(names))?;
    request.object = Some(value);
    Ok(request)
}

/// One resource document from the inputs, with where it came from.
struct Resource {
    source: String,
    line: usize,
    value: Value,
}

/// The report as text, written to standard output at once (a line per resource otherwise costs a
/// write each).
fn print_text(report: &Report<'_>) {
    use std::fmt::Write;
    let mut out = String::new();
    for result in report.results {
        let subject = if result.namespace.is_empty() {
            format!("{} {}", result.kind, result.name)
        } else {
            format!("{} {}/{}", result.kind, result.namespace, result.name)
        };
        if result.verdict.findings.is_empty() && result.verdict.not_evaluable.is_empty() {
            let _ = writeln!(out, "allow  {subject}  ({}:{})", result.source, result.line);
            write_notes(&mut out, &result.notes);
            continue;
        }
        let _ = writeln!(
            out,
            "{:<6} {subject}  ({}:{})",
            result.action.as_str(),
            result.source,
            result.line
        );
        for finding in &result.verdict.findings {
            let _ = writeln!(
                out,
                "  {:<6} {}: {}",
                finding.action.as_str(),
                finding.policy,
                finding.message
            );
        }
        for skipped in &result.verdict.not_evaluable {
            let _ = writeln!(
                out,
                "  ?      {}: not evaluable locally: {}",
                skipped.policy, skipped.reason
            );
        }
        write_notes(&mut out, &result.notes);
    }
    let _ = writeln!(
        out,
        "{} denied, {} warned, {} audited, {} allowed",
        report.denied, report.warned, report.audited, report.allowed
    );
    print!("{out}");
}

/// A resource's notes under its line, `  note   …` each.
fn write_notes(out: &mut String, notes: &[String]) {
    use std::fmt::Write;
    for note in notes {
        let _ = writeln!(out, "  note   {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_engine::source::parse_documents;

    /// A stream of many documents, some with content on the marker line, a `...` end and CRLF.
    fn stream(documents: usize) -> String {
        let mut text = String::from("# leading comment\n");
        for i in 0..documents {
            match i % 4 {
                0 => text.push_str(&format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p{i}\n  labels: {{x: \"{}\"}}\n", "y".repeat(60))),
                1 => text.push_str(&format!("--- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: p{i}}}}}\n")),
                2 => text.push_str(&format!("---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: p{i}\r\n...\r\n")),
                _ => text.push_str(&format!("---\t# comment\nkind: ConfigMap\napiVersion: v1\nmetadata: {{name: p{i}}}\ndata:\n  x: |\n    ---- not a marker\n")),
            }
        }
        text
    }

    #[test]
    fn a_resource_becomes_the_request_from_value_makes() {
        let values = [
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}}, "spec": {"containers": []}}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": "odd"}),
            serde_json::json!({"apiVersion": "v1", "kind": "Node"}),
            serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u", "operation": "DELETE", "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "old"}}}}),
        ];
        for value in values {
            assert_eq!(
                request_for(value.clone()).unwrap(),
                AdmissionRequest::from_value(value.clone()).unwrap(),
                "{value}"
            );
        }
        for bad in [
            serde_json::json!({"kind": "Pod"}),
            serde_json::json!({"apiVersion": "v1"}),
            serde_json::json!([1]),
        ] {
            assert_eq!(
                request_for(bad.clone()).unwrap_err().to_string(),
                AdmissionRequest::from_value(bad.clone())
                    .unwrap_err()
                    .to_string(),
                "{bad}"
            );
        }
    }

    #[test]
    fn resources_are_checked_as_the_apiserver_admits_them() {
        let resource = |value: Value| Resource {
            source: "r.yaml".into(),
            line: 1,
            value,
        };
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"hostNetwerk": true, "containers": [{"name": "c", "image": "nginx", "resources": {"limits": {"cpu": 0.5}}}]}});
        let checked = [evaluate(&Bundle::default(), &Context::default(), resource(pod)).unwrap()];
        assert_eq!(
            checked[0].notes,
            ["unknown field spec.hostNetwerk dropped, as the apiserver drops it"]
        );
        let mut text = String::new();
        write_notes(&mut text, &checked[0].notes);
        assert_eq!(
            text,
            "  note   unknown field spec.hostNetwerk dropped, as the apiserver drops it\n"
        );

        let invalid = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            evaluate(&Bundle::default(), &Context::default(), resource(invalid)).unwrap_err(),
            "r.yaml:1: invalid: spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn work_is_shared_between_threads_and_keeps_its_order() {
        let done = in_parallel((0..6).collect(), 2, |i| (i, std::thread::current().id()));
        assert_eq!(
            done.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        let used: std::collections::HashSet<_> = done.iter().map(|(_, id)| *id).collect();
        assert_eq!(used.len(), threads().min(6), "{done:?}");
        let alone = in_parallel(vec![1, 2], 64, |_| std::thread::current().id());
        assert!(alone.iter().all(|id| *id == std::thread::current().id()));
    }

    fn input(name: &str, text: &str) -> Input {
        Input {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_large_stream_checked_document_by_document_is_the_stream_read_at_once() {
        let text = stream(6_000);
        let checked = check_inputs(&Bundle::default(), &[input("s.yaml", &text)]).unwrap();
        let at_once: Vec<(usize, String)> = parse_documents("s.yaml", &text)
            .unwrap()
            .into_iter()
            .map(|d| (d.first_line, d.value["metadata"]["name"].to_string()))
            .collect();
        let each: Vec<(usize, String)> = checked
            .iter()
            .map(|c| (c.line, Value::from(c.name.as_str()).to_string()))
            .collect();
        assert_eq!(each, at_once);
        assert!(checked.iter().all(|c| c.source == "s.yaml"));
    }

    #[test]
    fn errors_are_each_inputs_first_as_in_the_whole_stream() {
        let broken = "---\nkind: ConfigMap\nmetadata: [unclosed\n";
        let mut first = stream(6_000);
        first.push_str(broken);
        first.push_str(&stream(10));
        first.push_str(broken);
        let whole = parse_documents("a.yaml", &first).unwrap_err();
        assert!(whole.line > 30_000, "{whole}");
        let inputs = [
            input("a.yaml", &first),
            input("b.yaml", &stream(3)),
            input("c.yaml", &format!("{broken}{broken}")),
        ];
        let c = parse_documents("c.yaml", &inputs[2].text).unwrap_err();
        assert_eq!(
            check_inputs(&Bundle::default(), &inputs).unwrap_err(),
            [whole.to_string(), c.to_string()]
        );
        // Readable, but a resource the apiserver refuses: the first such one.
        let refused = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n";
        let inputs = [
            input("a.yaml", &format!("{}{refused}", stream(100))),
            input("b.yaml", refused),
        ];
        let error = check_inputs(&Bundle::default(), &inputs).unwrap_err();
        assert_eq!(error.len(), 1);
        assert!(error[0].starts_with("a.yaml:"), "{error:?}");
        assert!(error[0].contains("spec.containers[0].image"), "{error:?}");
        assert_eq!(
            check_inputs(&Bundle::default(), &[input("e.yaml", "# nothing\n---\n")]).unwrap_err(),
            ["no resources to check in the given paths"]
        );
    }

    #[test]
    fn a_namespace_can_only_be_written_with_its_name_an_escape_or_a_tag() {
        let spellings = [
            "kind: Namespace",
            "kind: \"Name\\x73pace\"",
            "kind: \"\\u004eamespace\"",
            "kind: \"Name\\\n  space\"",
            "kind: !!str Namespace",
            "apiVersion: v1\nkind: List\nitems: [{kind: Namespace}]",
        ];
        for text in spellings {
            assert!(may_be_namespace(Some(text)), "{text}");
        }
        for text in ["kind: Pod\nmetadata: {namespace: n}", "kind: 'Name space'"] {
            assert!(!may_be_namespace(Some(text)), "{text}");
        }
        assert!(!may_be_namespace(None));
    }

    #[test]
    fn every_resource_is_checked_knowing_every_namespace() {
        let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-prod-config}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - {expression: "false", message: "no config in prod"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-prod-config}
spec:
  policyName: no-prod-config
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {env: prod}
"#;
        let mut bundle = Bundle::default();
        bundle.add_source("policy.yaml", policy).unwrap();
        let config = |ns: &str| {
            format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: {ns}}}\n"
            )
        };
        let mut first = String::new();
        for ns in ["a", "b", "c", "d"] {
            first.push_str(&config(ns));
        }
        first.push_str(&stream(200));
        let second = "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a, labels: {env: prod}}}\n\
                      ---\napiVersion: v1\nkind: \"Name\\x73pace\"\nmetadata: {name: b, labels: {env: prod}}\n\
                      ---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c, labels: {env: dev}}\n";
        let checked = check_inputs(
            &bundle,
            &[input("first.yaml", &first), input("second.yaml", second)],
        )
        .unwrap();
        let denied: Vec<&str> = checked
            .iter()
            .filter(|c| c.name == "c" && c.action == palisade_engine::Action::Deny)
            .map(|c| c.namespace.as_str())
            .collect();
        assert_eq!(denied, ["a", "b"]);
        assert_eq!(checked.len(), 4 + 200 + 3);
    }
}
