//! A Gatekeeper template judged by its CEL code reads of an object only what that code and the
//! constraint's matching read (`Bundle::object_reads`): for every gatekeeper-library template with
//! CEL code and sample constraints (`$PALISADE_ORACLES/gatekeeper-library/library`), varied Pods
//! and workloads and the library's own example objects get the same verdict read as that
//! projection as read whole.

// Test code: a missing or unreadable oracle file should stop the test loudly.
#![allow(clippy::unwrap_used)]

mod common;

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::AdmissionRequest;
use serde_json::Value;

#[test]
fn every_cel_template_judges_the_projection_as_the_whole_object() {
    let Some(root) = common::oracle_dir("gatekeeper-library/library") else {
        return;
    };
    let templates = common::files_under(&root, |path| {
        path.file_name().is_some_and(|n| n == "template.yaml")
    });
    let varied: Vec<Value> = palisade_engine::sample::pods(21, 100)
        .into_iter()
        .chain(palisade_engine::sample::workloads(22, 100))
        .collect();
    let context = Context::default();
    let (mut judged_templates, mut findings, mut bytes) = (0, 0, (0, 0));
    // Templates whose CEL reads what the analysis does not follow (read whole, and still judged).
    let mut whole_templates = Vec::new();
    for template in templates {
        let text = std::fs::read_to_string(&template).unwrap();
        if !text.contains("K8sNativeValidation") {
            continue;
        }
        let samples = common::files_under(&template.parent().unwrap().join("samples"), |p| {
            p.extension().is_some_and(|e| e == "yaml")
        });
        let constraints: Vec<_> = samples
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "constraint.yaml"))
            .collect();
        if constraints.is_empty() {
            continue;
        }
        let mut bundle = Bundle::default();
        bundle.add_source("template.yaml", &text).unwrap();
        for constraint in &constraints {
            let text = std::fs::read_to_string(constraint).unwrap();
            bundle.add_source("constraint.yaml", &text).unwrap();
        }
        let reads = bundle.object_reads();
        let name = template
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if reads.is_whole() {
            whole_templates.push(name.clone());
        }
        // The library's examples (objects only: Gatekeeper's own kinds are not reviewed here).
        let examples = samples
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n != "constraint.yaml"))
            .flat_map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                palisade_engine::source::parse_documents("example.yaml", &text).unwrap_or_default()
            })
            .map(|document| document.value)
            .filter(|value| {
                let api_version = value["apiVersion"].as_str().unwrap_or_default();
                !api_version.contains("gatekeeper.sh") && value["kind"] != "AdmissionReview"
            });
        for object in varied.iter().cloned().chain(examples) {
            let text = serde_json::to_string(&object).unwrap();
            let projected = reads.read(&text).unwrap();
            bytes.0 += text.len();
            bytes.1 += serde_json::to_string(&projected).unwrap().len();
            let (Ok(whole), Ok(part)) = (
                AdmissionRequest::create(object.clone()),
                AdmissionRequest::create(projected),
            ) else {
                continue;
            };
            let whole = bundle.evaluate(&whole, &context);
            let part = bundle.evaluate(&part, &context);
            assert_eq!(whole, part, "{} on {object}", template.display());
            assert!(
                whole.not_evaluable.is_empty(),
                "{}: {:?}",
                template.display(),
                whole.not_evaluable
            );
            findings += usize::from(!whole.findings.is_empty());
        }
        judged_templates += 1;
    }
    println!(
        "{judged_templates} templates judged by CEL ({} read whole: {whole_templates:?}); \
         {findings} objects with findings; the projections kept {} of {} bytes",
        whole_templates.len(),
        bytes.1,
        bytes.0
    );
    assert!(
        whole_templates.len() * 3 < judged_templates,
        "{whole_templates:?} read whole"
    );
    assert!(
        judged_templates >= 15,
        "only {judged_templates} templates with CEL code"
    );
    assert!(findings > 200, "only {findings} objects with findings");
    assert!(bytes.1 < bytes.0 / 2, "{bytes:?}");
}
