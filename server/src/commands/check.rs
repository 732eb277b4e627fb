//! `palisade check [--policy FILE]... [--pss LEVEL[:VERSION]] [--library ID]... RESOURCE_PATH...`:
//! evaluate resources against policies and print each verdict. Exit 1 when anything would be denied,
//! 0 otherwise, 2 on bad input (a resource the apiserver would refuse before admission included).
//! Manifests are checked as the apiserver's admission sees them (`palisade_engine::apiview`):
//! decoded and defaulted, with a note for each field the apiserver would drop.

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::source::{parse_documents, Document, SourceError};
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
    let resources = load_resources(&inputs)?;
    if resources.is_empty() {
        return Err(vec!["no resources to check in the given paths".into()]);
    }

    let context = Context {
        namespaces: resources
            .iter()
            .filter(|r| r.value.get("kind").and_then(Value::as_str) == Some("Namespace"))
            .map(|r| r.value.clone())
            .collect(),
        ..Context::default()
    };

    let results = evaluate_all(&bundle, &context, resources)?;

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

/// Every resource's verdict, in the order of the resources.
fn evaluate_all(
    bundle: &Bundle,
    context: &Context,
    resources: Vec<Resource>,
) -> Result<Vec<Checked>, Vec<String>> {
    // A thread is worth starting for a few dozen resources.
    in_parallel(resources, 64, |resource| {
        let Resource {
            source,
            line,
            value,
        } = resource;
        // A manifest is checked as the apiserver's admission sees it; a review as it was sent.
        let (value, notes) = if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview")
        {
            (value, Vec::new())
        } else {
            let view = apiview::into_admission_view(value)
                .map_err(|err| format!("{source}:{line}: {err}"))?;
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
    })
    .into_iter()
    .collect::<Result<Vec<_>, String>>()
    .map_err(|error| vec![error])
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

fn load_resources(inputs: &[Input]) -> Result<Vec<Resource>, Vec<String>> {
    let mut resources = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match parse_stream(&input.name, &input.text) {
            Ok(documents) => {
                for document in documents {
                    // `kubectl get -o yaml` writes a `List`; check its items one by one.
                    let items = match document.value.get("kind").and_then(Value::as_str) {
                        Some(kind) if kind == "List" || kind.ends_with("List") => document
                            .value
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default(),
                        _ => vec![document.value],
                    };
                    for value in items {
                        resources.push(Resource {
                            source: input.name.clone(),
                            line: document.first_line,
                            value,
                        });
                    }
                }
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(resources)
    } else {
        Err(errors)
    }
}

/// [`parse_documents`] of a whole YAML stream, a large one cut at document markers into runs that
/// are read on several threads. The documents, their lines and the first error are those of reading
/// the stream at once.
fn parse_stream(file: &str, text: &str) -> Result<Vec<Document>, SourceError> {
    let runs = runs_of_documents(text, threads());
    // Each run is a large part of the stream.
    let parsed = in_parallel(runs, 2, |(offset, run)| {
        let shift = |line: usize| if line == 0 { 0 } else { line + offset };
        match parse_documents(file, run) {
            Ok(documents) => Ok(documents
                .into_iter()
                .map(|mut document| {
                    document.first_line = shift(document.first_line);
                    document
                })
                .collect::<Vec<_>>()),
            Err(mut error) => {
                error.line = shift(error.line);
                Err(error)
            }
        }
    });
    let mut documents = Vec::new();
    for run in parsed {
        documents.extend(run?);
    }
    Ok(documents)
}

/// `text` cut into about `parts` runs of whole documents, each with the number of lines before it.
/// A run ends before a line that starts a document (`---` alone, or followed by a space or a tab, as
/// [`parse_documents`] reads them); a stream under 256 KiB stays whole.
fn runs_of_documents(text: &str, parts: usize) -> Vec<(usize, &str)> {
    if parts < 2 || text.len() < 256 * 1024 {
        return vec![(0, text)];
    }
    let target = text.len() / parts;
    let mut runs = Vec::new();
    let (mut start, mut lines_before, mut line) = (0, 0, 0);
    let mut at = 0;
    for piece in text.split_inclusive('\n') {
        let starts_document = piece.starts_with("---")
            && matches!(
                piece[3..].chars().next(),
                None | Some(' ' | '\t' | '\n' | '\r')
            );
        if starts_document && at - start >= target && runs.len() + 1 < parts {
            runs.push((lines_before, &text[start..at]));
            start = at;
            lines_before = line;
        }
        at += piece.len();
        line += 1;
    }
    runs.push((lines_before, &text[start..]));
    runs
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

    /// A stream of many documents, some with content on the marker line, a `...` end and CRLF.
    fn stream(documents: usize) -> String {
        let mut text = String::from("# leading comment\n");
        for i in 0..documents {
            match i % 4 {
                0 => text.push_str(&format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  labels: {{x: \"{}\"}}\n", "y".repeat(100))),
                1 => text.push_str(&format!("--- {{apiVersion: v1, kind: Pod, metadata: {{name: p{i}}}}}\n")),
                2 => text.push_str(&format!("---\r\napiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: p{i}\r\n...\r\n")),
                _ => text.push_str(&format!("---\t# comment\nkind: Pod\napiVersion: v1\nmetadata: {{name: p{i}}}\nspec:\n  x: |\n    ---- not a marker\n")),
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
        let checked =
            evaluate_all(&Bundle::default(), &Context::default(), vec![resource(pod)]).unwrap();
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
            evaluate_all(
                &Bundle::default(),
                &Context::default(),
                vec![resource(invalid)]
            )
            .unwrap_err(),
            ["r.yaml:1: invalid: spec.containers[0].image: Required value"]
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

    #[test]
    fn a_large_stream_reads_as_one_read_at_once() {
        let text = stream(6_000);
        assert!(text.len() > 256 * 1024);
        let runs = runs_of_documents(&text, 3);
        assert_eq!(runs.len(), 3);
        assert_eq!(
            runs.iter().map(|(_, run)| run.len()).sum::<usize>(),
            text.len()
        );
        let whole = parse_documents("s.yaml", &text).unwrap();
        let cut: Vec<(usize, Value)> = runs
            .iter()
            .flat_map(|(offset, run)| {
                parse_documents("s.yaml", run)
                    .unwrap()
                    .into_iter()
                    .map(move |d| (d.first_line + offset, d.value))
            })
            .collect();
        let at_once: Vec<(usize, Value)> =
            whole.into_iter().map(|d| (d.first_line, d.value)).collect();
        assert_eq!(cut, at_once);
        let parsed: Vec<(usize, Value)> = parse_stream("s.yaml", &text)
            .unwrap()
            .into_iter()
            .map(|d| (d.first_line, d.value))
            .collect();
        assert_eq!(parsed, at_once);
    }

    #[test]
    fn an_error_is_placed_as_in_the_whole_stream() {
        let mut text = stream(6_000);
        text.push_str("---\nkind: Pod\nmetadata: [unclosed\n");
        text.push_str(&stream(10));
        let whole = parse_documents("s.yaml", &text).unwrap_err();
        assert_eq!(parse_stream("s.yaml", &text).unwrap_err(), whole);
        assert!(whole.line > 30_000, "{whole}");
    }
}
