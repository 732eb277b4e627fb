//! `batch/v1`: Job, CronJob.

use serde_json::{Map, Value};

use super::core::pod_template;
use super::{
    count, each, invalid, object_at, or_set, or_set_str, reset_status, set_generation, Op,
    ViewError, JOB_UID_PLACEHOLDER,
};

/// A Job's spec at `path`, as far as a CronJob's job template gets it too.
fn job_spec(spec: &mut Map<String, Value>, path: &str) -> Result<(), ViewError> {
    count(spec, "parallelism", path)?;
    count(spec, "completions", path)?;
    if let Some(policy) = spec
        .get_mut("podFailurePolicy")
        .and_then(Value::as_object_mut)
    {
        for (_, rule) in each(policy, "rules") {
            for (_, pattern) in each(rule, "onPodConditions") {
                or_set_str(pattern, "status", "True");
            }
        }
    }
    pod_template(spec, "template", &format!("{path}.template"))
}

/// A Job; on create with the strategy's generated selector (on an update the stored Job's is
/// carried over before, see `update`).
pub(super) fn job(object: &mut Map<String, Value>, op: Op) -> Result<(), ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    job_spec(spec, "spec")?;
    if !spec.contains_key("completions") && !spec.contains_key("parallelism") {
        spec.insert("completions".into(), Value::from(1));
    }
    or_set(spec, "parallelism", 1);
    let backoff = if spec.contains_key("backoffLimitPerIndex") {
        i64::from(i32::MAX)
    } else {
        6
    };
    or_set(spec, "backoffLimit", backoff);
    or_set(spec, "completionMode", "NonIndexed");
    or_set(spec, "suspend", false);
    let replacement = if spec.contains_key("podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    or_set(spec, "podReplacementPolicy", replacement);
    or_set(spec, "manualSelector", false);
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned();
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);

    // The strategy's generated selector (with the Job's UID, here a placeholder).
    if !manual && op == Op::Create {
        let name = object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
        if let Some(labels) = object_at(spec, "template")
            .and_then(|t| object_at(t, "metadata"))
            .and_then(|m| object_at(m, "labels"))
        {
            for key in ["job-name", "batch.kubernetes.io/job-name"] {
                or_set(labels, key, name.as_str());
            }
            for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
                or_set(labels, key, JOB_UID_PLACEHOLDER);
            }
        }
        if let Some(match_labels) =
            object_at(spec, "selector").and_then(|s| object_at(s, "matchLabels"))
        {
            or_set(
                match_labels,
                "batch.kubernetes.io/controller-uid",
                JOB_UID_PLACEHOLDER,
            );
        }
    }
    // The Job's own labels default to its template's. Defaulting shares the template's map with
    // the Job, so the labels the strategy adds to the template show on the Job too.
    if let Some(Value::Object(_)) = template_labels {
        let labels = object
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(meta) = object_at(object, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            if empty {
                meta.insert("labels".into(), Value::Object(labels));
            }
        }
    }
    reset_status(object, &[]);
    set_generation(object);
    Ok(())
}

pub(super) fn cron_job(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    or_set_str(spec, "concurrencyPolicy", "Allow");
    or_set(spec, "suspend", false);
    or_set(spec, "successfulJobsHistoryLimit", 3);
    or_set(spec, "failedJobsHistoryLimit", 1);
    let template = object_at(spec, "jobTemplate")
        .ok_or_else(|| invalid("spec.jobTemplate", "must be an object"))?;
    or_set(template, "metadata", Map::new());
    super::metadata(template, "spec.jobTemplate.metadata")?;
    let job_spec_map = object_at(template, "spec")
        .ok_or_else(|| invalid("spec.jobTemplate.spec", "must be an object"))?;
    job_spec(job_spec_map, "spec.jobTemplate.spec")?;
    reset_status(object, &[]);
    set_generation(object);
    Ok(())
}
