//! The OpenAPI 3.1 document of `/api/v1`, assembled from each module's [`Endpoint`]s and served at
//! `/api/v1/openapi.json`. Each route is declared once, as an [`Operation`] with its handler: the
//! router and this document are both built from that one list, so no route can be served without
//! being documented (and without passing the authorization table test, which walks the document).
//! The operations are listed by hand (one list per module keeps the description next to the
//! handler it describes); their request and response schemas are derived from the wire types
//! themselves (`schemars`), so a field added to a type is documented without anyone writing it, and
//! the integration tests check every JSON response they receive against this document.

use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use palisade_app::auth::Action;
use palisade_app::state::AppState;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// Writes the JSON Schema of one wire type into a generator; made by [`schema`].
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, as an operation's request or response.
pub fn schema<T: JsonSchema>() -> SchemaFn {
    |generator| generator.subschema_for::<T>()
}

/// One documented route.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The OpenAPI path template, e.g. `/api/v1/policies/{id}`.
    pub path: &'static str,
    /// What the caller must be allowed to do; `None` only for public operations (this document).
    pub action: Option<Action>,
    /// A stable name, `verb_noun`, e.g. `list_policies`.
    pub id: &'static str,
    pub summary: &'static str,
    /// The request body's type, if any.
    pub request: Option<SchemaFn>,
    /// A valid request body: shown in the document and sent by the authorization table test.
    pub example: Option<Value>,
    /// The successful response's type.
    pub response: SchemaFn,
    /// The status of a successful response, e.g. 200 or 201.
    pub success: u16,
}

/// A documented route and the handler that serves it.
pub struct Endpoint {
    pub operation: Operation,
    pub handler: MethodRouter<AppState>,
}

impl Operation {
    /// This operation, served by `handler` for its method.
    pub fn with<H, T>(self, handler: H) -> Endpoint
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match self.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            // Every method is spelled in this file's modules; the unit test below reads them all.
            _ => MethodFilter::TRACE,
        };
        Endpoint {
            handler: on(filter, handler),
            operation: self,
        }
    }
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![Operation {
        method: "GET",
        path: "/api/v1/openapi.json",
        action: None,
        id: "get_openapi",
        summary: "This document.",
        request: None,
        example: None,
        response: schema::<Value>(),
        success: 200,
    }
    .with(document)]
}

async fn document() -> Json<Value> {
    Json(build(&super::operations()))
}

/// The whole document for `operations`.
pub fn build(operations: &[Operation]) -> Value {
    // Responses name their types in `components/schemas`, as they are written (serialised);
    // request bodies are inlined, as they are read (fields with defaults are optional there).
    let mut responses = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.contract = Contract::Serialize;
        })
        .into_generator();
    let mut requests = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut paths = Map::new();
    for op in operations {
        let entry = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            let described = describe(
                op,
                (op.response)(&mut responses).to_value(),
                op.request.map(|request| request(&mut requests).to_value()),
            );
            methods.insert(op.method.to_ascii_lowercase(), described);
        }
    }
    let mut schemas = responses.take_definitions(true);
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Palisade API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Author, test and stage Kubernetes security policies. Authenticate with an API token (Settings → API tokens) sent as `Authorization: Bearer <token>`. Each operation's `x-palisade-role` is the lowest role allowed to call it (viewer < author < approver < admin). Errors are JSON objects with one key naming the kind: NotFound, Unauthenticated, Forbidden, Invalid, Conflict or Internal.",
        },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "An API token." },
                "session": { "type": "apiKey", "in": "cookie", "name": "palisade_session" },
                "clusterToken": { "type": "http", "scheme": "bearer", "description": "A cluster's ingest token (pali_…), for /api/v1/ingest only." },
            },
            "schemas": schemas,
        },
        "paths": paths,
    })
}

fn describe(op: &Operation, response: Value, request: Option<Value>) -> Value {
    let mut responses = Map::new();
    let success = if op.success == 204 {
        json!({ "description": "Done; no content" })
    } else {
        json!({
            "description": "Success",
            "content": { "application/json": { "schema": response } },
        })
    };
    responses.insert(op.success.to_string(), success);
    let error = |text: &str| {
        json!({
            "description": text,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
        })
    };
    responses.insert("400".into(), error("Invalid input: says what and where"));
    if op.action.is_some() {
        responses.insert("401".into(), error("No valid session or token"));
        responses.insert("403".into(), error("The caller's role is too low"));
    }
    let mut parameters = Vec::new();
    for part in op.path.split('/') {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            parameters.push(json!({
                "name": name, "in": "path", "required": true, "schema": { "type": "string" },
            }));
        }
    }
    let mut operation = json!({
        "operationId": op.id,
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if op.path.starts_with("/api/v1/ingest/") {
        // Clusters, not people: their own ingest token.
        operation["responses"]["401"] = error("No valid cluster ingest token");
        operation["responses"]["429"] =
            error("Too many batches at once: send it again after Retry-After");
        operation["security"] = json!([{ "clusterToken": [] }]);
        operation["x-palisade-auth"] = json!("cluster-ingest-token");
        if let Some(schema) = &request {
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema, "example": op.example } } });
        }
        return operation;
    }
    match op.action {
        Some(action) => {
            operation["security"] = json!([{ "bearer": [] }, { "session": [] }]);
            operation["x-palisade-action"] = json!(action);
            operation["x-palisade-role"] = json!(action.required_role());
        }
        None => operation["security"] = json!([]),
    }
    if let Some(schema) = &request {
        let mut content = json!({ "schema": schema });
        if let Some(example) = &op.example {
            content["example"] = example.clone();
        }
        operation["requestBody"] =
            json!({ "required": true, "content": { "application/json": content } });
    }
    operation
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "One key naming the kind of error; its value (if any) says what and where.",
        "minProperties": 1,
        "maxProperties": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_unique_named_and_authorized_unless_public() {
        let operations = crate::rest::operations();
        for op in &operations {
            assert!(
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&op.method),
                "{} {}: unknown method",
                op.method,
                op.path
            );
        }
        let mut seen = std::collections::HashSet::new();
        for op in &operations {
            assert!(
                seen.insert((op.method, op.path)),
                "{} {} twice",
                op.method,
                op.path
            );
            assert!(op.path.starts_with("/api/v1/"), "{}", op.path);
            if op.action.is_none() && !op.path.starts_with("/api/v1/ingest/") {
                assert_eq!(op.id, "get_openapi", "only the document itself is public");
            }
            if op.request.is_some() {
                assert!(op.example.is_some(), "{} needs an example body", op.id);
            }
        }
        let document = build(&operations);
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["paths"]["/api/v1/me"]["get"]["x-palisade-role"],
            "viewer"
        );
        // Ingest is for clusters, with their own tokens; never public.
        let ingest = &document["paths"]["/api/v1/ingest/audit"]["post"];
        assert_eq!(ingest["x-palisade-auth"], "cluster-ingest-token");
        assert_eq!(ingest["security"][0]["clusterToken"], serde_json::json!([]));
        assert!(ingest["responses"]["429"].is_object());
    }

    /// The document as served, held against `server/openapi.json`: a change to any route, schema or
    /// description shows in review as a diff of that file. `PALISADE_SNAPSHOT_WRITE=1` rewrites it.
    #[test]
    fn the_document_matches_its_snapshot() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let document = build(&crate::rest::operations());
        let text = serde_json::to_string_pretty(&document).unwrap() + "\n";
        if std::env::var_os("PALISADE_SNAPSHOT_WRITE").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "{}: {err}; write it with PALISADE_SNAPSHOT_WRITE=1",
                path.display()
            )
        });
        assert!(
            stored == text,
            "the OpenAPI document differs from {}; if the change is meant, rewrite it with \
             PALISADE_SNAPSHOT_WRITE=1 cargo test -p palisade-server --lib openapi",
            path.display()
        );
    }
}
