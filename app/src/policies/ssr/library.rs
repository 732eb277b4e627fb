//! The built-in library as policies: an entry becomes the content of a first version.

use palisade_engine::library::{self, Entry, EntryKind};
use palisade_engine::source::parse_documents;
use serde_json::{json, Map, Value};

use crate::error::{AppError, OrFault, ServerResult};
use crate::policies::{Content, Engine, Expect, LibraryEntry, TestCase};

/// Every entry of the library, read from the binary once per process.
pub fn entries() -> ServerResult<&'static [Entry]> {
    library::shared_entries().or_fault()
}

pub fn engine_of(entry: &Entry) -> Engine {
    match entry.kind {
        EntryKind::Vap => Engine::Vap,
        EntryKind::PodSecurity { .. } => Engine::PodSecurity,
    }
}

/// How the library page and the API show an entry.
pub fn describe(entry: &Entry, adopted_as: Option<String>) -> LibraryEntry {
    LibraryEntry {
        id: entry.id.to_owned(),
        title: entry.title.clone(),
        category: entry.category.as_str().to_owned(),
        severity: entry.severity.as_str().to_owned(),
        engine: engine_of(entry),
        description: entry.description.clone(),
        remediation: entry.remediation.clone(),
        controls: entry.controls.iter().map(ToString::to_string).collect(),
        test_count: test_count(entry.id),
        adopted_as,
    }
}

/// How many cases the suite of entry `id` has, counted once per process (the library is part of
/// the binary).
fn test_count(id: &str) -> usize {
    static COUNTS: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    COUNTS
        .get_or_init(|| {
            entries()
                .unwrap_or_default()
                .iter()
                .map(|entry| (entry.id, content(entry).map_or(0, |c| c.tests.len())))
                .collect()
        })
        .get(id)
        .copied()
        .unwrap_or(0)
}

fn yaml(value: &Value) -> ServerResult<String> {
    serde_yaml_ng::to_string(value).or_fault()
}

/// The first version of a policy adopted from `entry`: its policy, parameters, texts, controls
/// and every case of its suite (a case that sends UPDATE, DELETE or a subresource request becomes
/// an AdmissionReview).
pub fn content(entry: &Entry) -> ServerResult<Content> {
    let suite_file = format!("library/{}/palisade-test.yaml", entry.id);
    let suite = parse_documents(&suite_file, entry.test_yaml)
        .or_fault()?
        .into_iter()
        .next()
        .map(|d| d.value)
        .unwrap_or(Value::Null);
    let mut params = String::new();
    if let Some(list) = suite.get("params").and_then(Value::as_array) {
        for (index, param) in list.iter().enumerate() {
            if index > 0 {
                params.push_str("---\n");
            }
            params.push_str(&yaml(param)?);
        }
    }
    let mut tests = Vec::new();
    for case in suite
        .get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        tests.push(test_case(entry, case)?);
    }
    Ok(Content {
        source: entry.policy_yaml.to_owned(),
        params,
        description: entry.description.clone(),
        remediation: entry.remediation.clone(),
        controls: entry.controls.iter().map(ToString::to_string).collect(),
        tests,
    })
}

fn test_case(entry: &Entry, case: &Value) -> ServerResult<TestCase> {
    let field = |key: &str| case.get(key).filter(|v| !v.is_null());
    let name = field("name")
        .and_then(Value::as_str)
        .unwrap_or("case")
        .to_owned();
    let expect = field("expect")
        .and_then(Value::as_str)
        .and_then(Expect::parse)
        .unwrap_or(Expect::Allow);
    let message = field("message").and_then(Value::as_str).map(str::to_owned);
    let object = match (field("object"), field("file").and_then(Value::as_str)) {
        (Some(object), _) => Some(object.clone()),
        (None, Some(path)) => {
            let text = entry
                .file(path)
                .ok_or_else(|| AppError::internal("library case", format!("no file {path}")))?;
            parse_documents(path, text)
                .or_fault()?
                .into_iter()
                .next()
                .map(|d| d.value)
        }
        (None, None) => None,
    };
    let needs_review = ["operation", "oldObject", "subResource", "userInfo"]
        .iter()
        .any(|key| field(key).is_some());
    let value = if needs_review {
        let mut request = Map::new();
        request.insert(
            "operation".into(),
            field("operation")
                .cloned()
                .unwrap_or_else(|| json!("CREATE")),
        );
        if let Some(object) = object {
            request.insert("object".into(), object);
        }
        for (from, to) in [
            ("oldObject", "oldObject"),
            ("subResource", "subResource"),
            ("userInfo", "userInfo"),
        ] {
            if let Some(value) = field(from) {
                request.insert(to.into(), value.clone());
            }
        }
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        })
    } else {
        object.unwrap_or(Value::Null)
    };
    Ok(TestCase {
        name,
        yaml: yaml(&value)?,
        expect,
        message,
    })
}
