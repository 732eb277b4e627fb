//! The API keeps its word: every JSON answer an integration test receives from `/api/v1` with a
//! success status is checked against the schema the OpenAPI document gives for that operation (the
//! schemas are derived from the wire types; this proves the handlers send those types). A test
//! that gets an answer the document does not describe fails there, naming the operation and the
//! first mismatch.

use std::sync::OnceLock;

use serde_json::Value;

/// One documented operation: its method, its path split into literal segments (`None` for a
/// `{parameter}`), and the validator of its success body (`None` when it has no JSON body).
struct Route {
    method: String,
    template: String,
    segments: Vec<Option<String>>,
    validator: Option<jsonschema::Validator>,
}

fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let document = palisade_server::rest::openapi::build(&palisade_server::rest::operations());
        let mut routes = Vec::new();
        for (template, methods) in document["paths"].as_object().expect("paths") {
            for (method, operation) in methods.as_object().expect("methods") {
                let success = operation["responses"]
                    .as_object()
                    .expect("responses")
                    .iter()
                    .find(|(status, _)| status.starts_with('2'))
                    .map(|(_, response)| response.clone())
                    .expect("a success response");
                let validator = success["content"]["application/json"]["schema"]
                    .as_object()
                    .map(|schema| {
                        // The schema's `$ref`s point into the document's components.
                        let mut root = Value::Object(schema.clone());
                        root["components"] = document["components"].clone();
                        jsonschema::options()
                            .with_draft(jsonschema::Draft::Draft202012)
                            .build(&root)
                            .unwrap_or_else(|err| {
                                panic!("{method} {template}: its schema does not compile: {err}")
                            })
                    });
                routes.push(Route {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: template
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                        .collect(),
                    validator,
                });
            }
        }
        routes
    })
}

/// The documented operation `method path` is, preferring literal segments over parameters
/// (`/clusters/contexts` over `/clusters/{id}`).
fn route(method: &str, path: &str) -> Option<&'static Route> {
    let parts: Vec<&str> = path.split('/').collect();
    routes()
        .iter()
        .filter(|r| r.method == method && r.segments.len() == parts.len())
        .filter(|r| {
            r.segments
                .iter()
                .zip(&parts)
                .all(|(segment, part)| segment.as_deref().is_none_or(|s| s == *part))
        })
        .max_by_key(|r| r.segments.iter().filter(|s| s.is_some()).count())
}

/// Checks one answer; a no-op for what the document does not promise as JSON.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &str) {
    let path = path.split('?').next().unwrap_or(path);
    if !path.starts_with("/api/v1/") || !(200..300).contains(&status) {
        return;
    }
    if !content_type.is_some_and(|c| c.starts_with("application/json")) {
        return;
    }
    let Some(route) = route(method, path) else {
        panic!("{method} {path} answered {status} but the OpenAPI document has no such operation");
    };
    let Some(validator) = &route.validator else {
        return;
    };
    let value: Value = serde_json::from_str(body)
        .unwrap_or_else(|err| panic!("{method} {path}: the answer is not JSON ({err}): {body}"));
    let mismatch = validator
        .iter_errors(&value)
        .next()
        .map(|error| format!("{error} at {}", error.instance_path()));
    if let Some(mismatch) = mismatch {
        panic!(
            "{method} {path} (documented as {} {}): the answer does not match its schema: \
             {mismatch}",
            route.method, route.template
        );
    }
}

#[test]
fn a_route_matches_literal_segments_first_and_a_wrong_body_is_caught() {
    assert_eq!(
        route("POST", "/api/v1/clusters/contexts").map(|r| r.template.as_str()),
        Some("/api/v1/clusters/contexts")
    );
    assert_eq!(
        route("GET", "/api/v1/clusters/abc").map(|r| r.template.as_str()),
        Some("/api/v1/clusters/{id}")
    );
    let wrong = std::panic::catch_unwind(|| {
        check(
            "GET",
            "/api/v1/me",
            200,
            Some("application/json"),
            r#"{"user_id": 7}"#,
        )
    });
    assert!(wrong.is_err(), "a body of the wrong shape must fail");
}
