//! Rendering a version into what each engine receives in a mode.

use palisade_engine::render::{render, to_yaml};
use palisade_engine::source::parse_documents;
use serde_json::Value;

use super::validate::SOURCE_FILE;
use crate::policies::{Content, Mode};

/// The rendered manifests of `content` in `mode`, and its parameter objects.
fn rendered(
    content: &Content,
    mode: Mode,
) -> Result<
    (
        Vec<palisade_engine::render::Manifest>,
        Vec<palisade_engine::source::Document>,
    ),
    String,
> {
    let manifests = render(SOURCE_FILE, &content.source, mode).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let params = if content.params.trim().is_empty() {
        Vec::new()
    } else {
        parse_documents("params.yaml", &content.params).map_err(|e| e.to_string())?
    };
    // Saving refuses these already; a version stored before that rule is refused here.
    let source = parse_documents(SOURCE_FILE, &content.source).map_err(|e| e.to_string())?;
    let kinds = palisade_engine::render::param_kinds(&source);
    for document in &params {
        if let Some(why) = palisade_engine::render::refusal(&document.value, &kinds) {
            return Err(format!("params.yaml:{}: {why}", document.first_line));
        }
    }
    Ok((manifests, params))
}

/// The objects a cluster receives for `mode`, as JSON, in the order they are applied: the
/// rendered manifests, then the version's parameter objects (which replace samples of the
/// same kind and name in the source).
pub fn objects(content: &Content, mode: Mode) -> Result<Vec<Value>, String> {
    let (manifests, params) = rendered(content, mode)?;
    let same = |a: &Value, b: &Value| {
        a.get("kind") == b.get("kind") && a.pointer("/metadata/name") == b.pointer("/metadata/name")
    };
    let mut objects: Vec<Value> = manifests
        .into_iter()
        .map(|m| m.object)
        .filter(|object| !params.iter().any(|p| same(object, &p.value)))
        .collect();
    objects.extend(params.into_iter().map(|p| p.value));
    Ok(objects)
}

/// The objects an apply of `content` in `mode` sends: the rendered manifests, with each Pod
/// Security Namespace patch repeated for every namespace, and the policy's active exceptions
/// written into each engine's exclusion (`palisade_engine::exclusions`).
pub fn desired_objects(
    content: &Content,
    mode: Mode,
    namespaces: &[String],
    exclusions: &[palisade_engine::exclusions::Exclusion],
) -> Result<Vec<Value>, String> {
    let objects = objects(content, mode)?;
    let mut out = Vec::new();
    for object in objects {
        let per_namespace = object.get("kind").and_then(Value::as_str) == Some("Namespace")
            && object.pointer("/metadata/name").and_then(Value::as_str)
                == Some(palisade_engine::render::EACH_NAMESPACE);
        if per_namespace {
            if namespaces.is_empty() {
                return Err(
                    "a Pod Security policy labels namespaces: name at least one namespace".into(),
                );
            }
            for namespace in namespaces {
                let mut patch = object.clone();
                patch["metadata"]["name"] = serde_json::json!(namespace);
                out.push(patch);
            }
        } else {
            out.push(object);
        }
    }
    palisade_engine::exclusions::apply(out, exclusions)
}

/// The manifests for `mode` as one YAML stream, or why they cannot be rendered. The version's
/// parameter objects go along, replacing samples of the same kind and name in the source.
pub fn manifests(content: &Content, mode: Mode) -> Result<String, String> {
    manifests_excluding(content, mode, &[])
}

/// [`manifests`] with the policy's active exceptions written into each engine's exclusion,
/// as the next rollout applies them.
pub fn manifests_excluding(
    content: &Content,
    mode: Mode,
    exclusions: &[palisade_engine::exclusions::Exclusion],
) -> Result<String, String> {
    let (mut manifests, params) = rendered(content, mode)?;
    if !exclusions.is_empty() {
        let ids: Vec<&str> = exclusions.iter().map(|e| e.id.as_str()).collect();
        for manifest in &mut manifests {
            if manifest.object.is_null() {
                continue;
            }
            let before = manifest.object.clone();
            let after = palisade_engine::exclusions::apply(vec![before.clone()], exclusions)?
                .pop()
                .unwrap_or(Value::Null);
            if after != before {
                let note = format!("Carries the exclusions of exceptions {}.", ids.join(", "));
                manifest.note = Some(match manifest.note.take() {
                    Some(old) => format!("{old} {note}"),
                    None => note,
                });
            }
            manifest.object = after;
        }
    }
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut yaml_params = String::new();
    for param in &params {
        let kind = text(&param.value, "kind");
        let name = param
            .value
            .get("metadata")
            .map(|m| text(m, "name"))
            .unwrap_or_default();
        manifests.retain(|m| !(m.kind == kind && m.name == name));
        yaml_params.push_str(&format!(
            "---\n# {kind} {name} (parameters of this version)\n"
        ));
        yaml_params.push_str(&serde_yaml_ng::to_string(&param.value).map_err(|e| e.to_string())?);
    }
    let mut out = to_yaml(&manifests);
    if out.is_empty() {
        yaml_params = yaml_params.trim_start_matches("---\n").to_owned();
    }
    out.push_str(&yaml_params);
    Ok(out)
}
