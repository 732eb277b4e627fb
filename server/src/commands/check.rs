//! `palisade check [--policy FILE]... [--pss LEVEL[:VERSION]] [--library ID]... RESOURCE_PATH...`:
//! evaluate resources against policies and print each verdict. Exit 1 when anything would be denied,
//! 0 otherwise, 2 on bad input.

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::pss::LevelVersion;
use palisade_engine::source::parse_documents;
use palisade_engine::vap::types::ValidationAction;
use palisade_engine::{library, AdmissionRequest, Mode, UserInfo, Verdict};
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
    let bundle = load_bundle(args)?;
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

    let mut results = Vec::new();
    for resource in resources {
        let mut request = AdmissionRequest::from_value(resource.value.clone())
            .map_err(|err| vec![format!("{}:{}: {err}", resource.source, resource.line)])?;
        if request.user_info.username.is_empty() {
            request.user_info = UserInfo::tester();
        }
        let verdict = bundle.evaluate(&request, &context);
        results.push(Checked {
            source: resource.source,
            line: resource.line,
            kind: request.kind.kind.clone(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            action: verdict.action(),
            verdict,
        });
    }

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

fn load_bundle(args: &CheckArgs) -> Result<Bundle, Vec<String>> {
    let mut bundle = Bundle::default();
    let mut errors = Vec::new();
    let policy_inputs = read_inputs(&args.policies).map_err(|err| vec![err.to_string()])?;
    if let Err(found) = bundle.add_sources(
        policy_inputs
            .iter()
            .map(|i| (i.name.as_str(), i.text.as_str())),
    ) {
        errors.extend(found.into_iter().map(|e| e.to_string()));
    }
    for level in &args.pod_security {
        match level.parse::<LevelVersion>() {
            Ok(level) => bundle.add_pod_security(level, Mode::Enforce),
            Err(err) => errors.push(format!("--pss {level}: {err}")),
        }
    }
    let entries = library::entries().map_err(|err| vec![err.to_string()])?;
    for wanted in &args.library {
        let chosen: Vec<_> = if wanted == "all" {
            entries.iter().collect()
        } else {
            entries.iter().filter(|e| e.id == wanted.as_str()).collect()
        };
        if chosen.is_empty() {
            let known: Vec<_> = library::ids().collect();
            errors.push(format!(
                "--library {wanted}: no such library entry (known: all, {})",
                known.join(", ")
            ));
        }
        for entry in chosen {
            if let Err(found) = bundle.add_library_entry(entry) {
                errors.extend(found.into_iter().map(|e| e.to_string()));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for warning in bundle.warnings() {
        eprintln!("palisade: warning: {warning}");
    }
    let unbound = bundle.unbound_policies();
    if !unbound.is_empty() {
        eprintln!(
            "palisade: note: no binding for {}; checking as if bound to everything with validationActions [Deny]",
            unbound.join(", ")
        );
        bundle.bind_unbound(&[ValidationAction::Deny]);
    }
    if bundle.is_empty() {
        return Err(vec![
            "nothing to check against: give --policy FILE, --pss LEVEL[:VERSION] or --library ID"
                .into(),
        ]);
    }
    Ok(bundle)
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
        match parse_documents(&input.name, &input.text) {
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

fn print_text(report: &Report<'_>) {
    for result in report.results {
        let subject = if result.namespace.is_empty() {
            format!("{} {}", result.kind, result.name)
        } else {
            format!("{} {}/{}", result.kind, result.namespace, result.name)
        };
        if result.verdict.findings.is_empty() && result.verdict.not_evaluable.is_empty() {
            println!("allow  {subject}  ({}:{})", result.source, result.line);
            continue;
        }
        println!(
            "{:<6} {subject}  ({}:{})",
            result.action.as_str(),
            result.source,
            result.line
        );
        for finding in &result.verdict.findings {
            println!(
                "  {:<6} {}: {}",
                finding.action.as_str(),
                finding.policy,
                finding.message
            );
        }
        for skipped in &result.verdict.not_evaluable {
            println!(
                "  ?      {}: not evaluable locally: {}",
                skipped.policy, skipped.reason
            );
        }
    }
    println!(
        "{} denied, {} warned, {} audited, {} allowed",
        report.denied, report.warned, report.audited, report.allowed
    );
}
