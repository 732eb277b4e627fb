//! `/api/v1/policies` and `/api/v1/library`: policies, their versions, diffs, test runs, staging
//! and manifests, and the built-in library. Handlers extract, authorize and call the same service
//! the UI's server functions call (`palisade_app::policies::ssr`).

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::db::now_ms;
use palisade_app::policies::{
    self, ssr as service, Content, Mode, NewPolicy, PolicyFilter, Problem, SaveOutcome,
};
use palisade_app::staging::ssr as staging;
use palisade_app::staging::Staging;
use palisade_app::state::AppState;
use palisade_app::{AppError, ServerError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::openapi::{schema, SchemaFn};
use super::{Endpoint, Operation};

/// A save refused by the engine: 400, with one problem per line as `part:line:column: message`.
fn saved_or_invalid(outcome: SaveOutcome) -> Result<(String, i64), ServerError> {
    match outcome {
        SaveOutcome::Saved {
            policy_id, version, ..
        } => Ok((policy_id, version)),
        SaveOutcome::Invalid { problems } => Err(AppError::Invalid(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .into()),
    }
}

async fn list_policies(
    caller: Caller,
    State(state): State<AppState>,
    Query(filter): Query<PolicyFilter>,
) -> Result<Json<Vec<policies::PolicySummary>>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::list(&state.db, &who, &filter).await.map(Json)
}

async fn create_policy(
    caller: Caller,
    State(state): State<AppState>,
    Json(new): Json<NewPolicy>,
) -> Result<(StatusCode, Json<policies::PolicyDetail>), ServerError> {
    let who = caller.require(Action::EditPolicies)?;
    let (id, _) = saved_or_invalid(service::create(&state.db, &who, now_ms(), new).await?)?;
    let detail = service::detail(&state.db, &who, &id).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// What the engine says of a draft.
#[derive(Debug, Serialize, JsonSchema)]
struct CheckReply {
    /// False when any problem blocks saving (warnings do not).
    valid: bool,
    problems: Vec<Problem>,
}

async fn check_policy(
    caller: Caller,
    Json(content): Json<Content>,
) -> Result<Json<CheckReply>, ServerError> {
    caller.require(Action::Read)?;
    let problems = service::validate::check(&content).problems;
    Ok(Json(CheckReply {
        valid: !Problem::any_blocking(&problems),
        problems,
    }))
}

async fn get_policy(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<policies::PolicyDetail>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::detail(&state.db, &who, &id).await.map(Json)
}

async fn list_versions(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<policies::VersionInfo>>, ServerError> {
    let who = caller.require(Action::Read)?;
    Ok(Json(service::detail(&state.db, &who, &id).await?.versions))
}

/// The body of a save: the whole new content, the version it was based on and a note.
#[derive(Debug, Deserialize, JsonSchema)]
struct SaveRequest {
    /// The version the edit started from: if another was saved since, the save is a 409.
    base_version: i64,
    /// Why this version exists, for the history.
    #[serde(default)]
    note: String,
    #[serde(flatten)]
    content: Content,
}

async fn save_version(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<SaveRequest>,
) -> Result<(StatusCode, Json<policies::Version>), ServerError> {
    let who = caller.require(Action::EditPolicies)?;
    let outcome = service::save(
        &state.db,
        &who,
        now_ms(),
        &id,
        request.base_version,
        request.content,
        &request.note,
    )
    .await?;
    let (policy_id, number) = saved_or_invalid(outcome)?;
    let version = service::version(&state.db, &who, &policy_id, number).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

async fn get_version(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, number)): Path<(String, i64)>,
) -> Result<Json<policies::Version>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::version(&state.db, &who, &id, number)
        .await
        .map(Json)
}

/// Both are required; optional here so that a caller without them learns about authorization
/// first, and then gets a message naming them.
#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

async fn diff_versions(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(range): Query<DiffQuery>,
) -> Result<Json<policies::VersionDiff>, ServerError> {
    let who = caller.require(Action::Read)?;
    let (Some(from), Some(to)) = (range.from, range.to) else {
        return Err(AppError::Invalid("say which versions to compare: ?from=1&to=2".into()).into());
    };
    service::diff(&state.db, &who, &id, from, to)
        .await
        .map(Json)
}

async fn run_tests(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, number)): Path<(String, i64)>,
) -> Result<(StatusCode, Json<policies::TestRun>), ServerError> {
    let who = caller.require(Action::EditPolicies)?;
    let run = palisade_app::testruns::ssr::run(&state.db, &who, now_ms(), &id, number).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

async fn get_test_run(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, number)): Path<(String, i64)>,
) -> Result<Json<policies::TestRun>, ServerError> {
    let who = caller.require(Action::Read)?;
    Ok(service::latest_run(&state.db, &who, &id, number)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("version {number} has not been tested yet")))?)
}

async fn get_staging(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Staging>, ServerError> {
    let who = caller.require(Action::Read)?;
    staging::view(&state.db, &who, &id, now_ms())
        .await
        .map(Json)
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ModeRequest {
    /// `audit`, `warn`, `enforce`, or null to clear.
    mode: Option<Mode>,
}

async fn set_mode(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, environment)): Path<(String, String)>,
    Json(request): Json<ModeRequest>,
) -> Result<Json<Staging>, ServerError> {
    let who = caller.require(Action::EditPolicies)?;
    let now = now_ms();
    service::set_mode(&state.db, &who, now, &id, &environment, request.mode).await?;
    staging::view(&state.db, &who, &id, now).await.map(Json)
}

async fn get_manifests(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, mode)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    let who = caller.require(Action::Read)?;
    let mode = Mode::parse(&mode).ok_or_else(|| {
        AppError::Invalid(format!("mode must be audit, warn or enforce, not {mode:?}"))
    })?;
    let detail = service::detail(&state.db, &who, &id).await?;
    let yaml = staging::manifests(&state.db, &who, &detail.policy.id, mode, now_ms()).await?;
    let file = format!(
        "attachment; filename=\"{}-v{}-{}.yaml\"",
        detail.policy.name,
        detail.policy.current_version,
        mode.as_str()
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, file),
        ],
        yaml,
    )
        .into_response())
}

/// `?version=N&format=json|csv` of the impact export.
#[derive(Debug, Deserialize)]
struct ImpactQuery {
    version: Option<i64>,
    format: Option<String>,
}

async fn get_impact(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ImpactQuery>,
) -> Result<Response, ServerError> {
    let who = caller.require(Action::Read)?;
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(AppError::Invalid(format!("format: json or csv, not {format:?}")).into());
    }
    let impact = palisade_app::impact::ssr::service::impact(
        &state.db,
        &who,
        now_ms(),
        &id,
        query.version,
        None,
        None,
    )
    .await?;
    Ok(if format == "csv" {
        let file = format!(
            "attachment; filename=\"{}-v{}-impact.csv\"",
            impact.policy_name,
            impact.version.unwrap_or_default()
        );
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file),
            ],
            impact.to_csv(),
        )
            .into_response()
    } else {
        Json(impact).into_response()
    })
}

async fn list_library(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<policies::LibraryEntry>>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::library(&state.db, &who).await.map(Json)
}

const EXAMPLE_SOURCE: &str = "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata:\n  name: pod-security-baseline-api\nspec:\n  level: baseline\n  version: latest\n";

pub fn endpoints() -> Vec<Endpoint> {
    let op = |method,
              path,
              action,
              id,
              summary,
              request: Option<(SchemaFn, Value)>,
              response,
              success| {
        let (request, example) = match request {
            Some((schema, example)) => (Some(schema), Some(example)),
            None => (None, None),
        };
        Operation {
            method,
            path,
            action: Some(action),
            id,
            summary,
            request,
            example,
            response,
            success,
        }
    };
    vec![
        op("GET", "/api/v1/policies", Action::Read, "list_policies",
            "Policies, by name. Query parameters (all optional): q (searches name, title and description), engine (vap, gatekeeper, pod-security), category, framework (cis, nsa-cisa, pci-dss, soc2), mode (audit, warn, enforce, or none for policies with no intended mode).",
            None, schema::<Vec<policies::PolicySummary>>(), 200)
        .with(list_policies),
        op("POST", "/api/v1/policies", Action::EditPolicies, "create_policy",
            "Create a policy from a library entry ({from: library, entry}), from pasted YAML ({from: yaml, source, params}; the engine is detected) or from a blank template ({from: blank, engine, name}). Nothing is saved unless the engine accepts it; a refusal is 400 with one problem per line, `part:line:column: message`.",
            Some((schema::<NewPolicy>(), json!({ "from": "yaml", "source": EXAMPLE_SOURCE }))),
            schema::<policies::PolicyDetail>(), 201)
        .with(create_policy),
        op("POST", "/api/v1/policies/check", Action::Read, "check_policy",
            "Validate a draft with the engine without saving it: every problem with its part (source, params, controls, policy or {test: index}), line and column. A problem with `warning: true` (for example a Rego call that cannot be evaluated locally) does not make the draft invalid.",
            Some((schema::<Content>(), json!({ "source": EXAMPLE_SOURCE }))),
            schema::<CheckReply>(), 200)
        .with(check_policy),
        op("GET", "/api/v1/policies/{id}", Action::Read, "get_policy",
            "A policy (by id or name) with its current version and its history.",
            None, schema::<policies::PolicyDetail>(), 200)
        .with(get_policy),
        op("GET", "/api/v1/policies/{id}/versions", Action::Read, "list_versions",
            "Every version of a policy, newest first, with author, time, note, content hash and the newest test run.",
            None, schema::<Vec<policies::VersionInfo>>(), 200)
        .with(list_versions),
        op("POST", "/api/v1/policies/{id}/versions", Action::EditPolicies, "save_version",
            "Save a new immutable version. base_version is the version you edited: if another was saved since, 409. A save that changes nothing is 400; one the engine refuses is 400 with the problems.",
            Some((schema::<SaveRequest>(), json!({ "base_version": 1, "note": "audit first", "source": EXAMPLE_SOURCE.replace("baseline", "restricted").replace("pod-security-restricted-api", "pod-security-baseline-api") }))),
            schema::<policies::Version>(), 201)
        .with(save_version),
        op("GET", "/api/v1/policies/{id}/versions/{number}", Action::Read, "get_version",
            "One version: source, parameters, description, remediation, control tags and test cases.",
            None, schema::<policies::Version>(), 200)
        .with(get_version),
        op("GET", "/api/v1/policies/{id}/diff", Action::Read, "diff_versions",
            "The line diff between two versions (query parameters from and to), part by part, with line numbers; only parts that differ are listed.",
            None, schema::<policies::VersionDiff>(), 200)
        .with(diff_versions),
        op("POST", "/api/v1/policies/{id}/versions/{number}/test-runs", Action::EditPolicies, "run_tests",
            "Run the version's test cases and store the results with it: each case's expected and actual action, pass or fail, and the engine's messages.",
            None, schema::<policies::TestRun>(), 201)
        .with(run_tests),
        op("GET", "/api/v1/policies/{id}/versions/{number}/test-runs/latest", Action::Read, "get_test_run",
            "The newest stored test run of a version (404 if it was never run).",
            None, schema::<policies::TestRun>(), 200)
        .with(get_test_run),
        op("GET", "/api/v1/policies/{id}/staging", Action::Read, "get_staging",
            "Intended mode per environment, what is live where (empty until rollouts exist) and the manifests of the current version for each mode.",
            None, schema::<Staging>(), 200)
        .with(get_staging),
        op("PUT", "/api/v1/policies/{id}/modes/{environment}", Action::EditPolicies, "set_mode",
            "Set the intended mode (audit, warn, enforce) of the policy in an environment, or clear it with null.",
            Some((schema::<ModeRequest>(), json!({ "mode": "audit" }))),
            schema::<Staging>(), 200)
        .with(set_mode),
        op("GET", "/api/v1/policies/{id}/manifests/{mode}", Action::Read, "get_manifests",
            "The manifests each engine receives for the current version in a mode (audit, warn, enforce), as a YAML download (application/yaml).",
            None, schema::<String>(), 200)
        .with(get_manifests),
        op("GET", "/api/v1/policies/{id}/impact", Action::Read, "get_impact",
            "What enforcing a version (query `version`, default the current one) would do on every enabled cluster, from the inventory: per cluster the workloads it would deny, warn of and audit, grouped by namespace and owner, with active exceptions and the version running there now. `format=csv` downloads the workloads as CSV.",
            None, schema::<palisade_app::impact::Impact>(), 200)
        .with(get_impact),
        op("GET", "/api/v1/library", Action::Read, "list_library",
            "The built-in library: each entry's title, category, severity, engine, description, remediation, control tags, number of test cases, and the policy adopted from it if any. Adopt with POST /api/v1/policies {from: library, entry}.",
            None, schema::<Vec<policies::LibraryEntry>>(), 200)
        .with(list_library),
    ]
}
