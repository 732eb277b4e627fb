//! Reading kube-apiserver audit events (`audit.k8s.io/v1` EventList) into violations.
//!
//! Pure: bytes in, observations out. What counts as a violation:
//! - a ValidatingAdmissionPolicy `validation_failure` annotation (one per failed validation; the
//!   binding's actions say whether it was audited, warned or denied);
//! - a Pod Security `audit-violations` annotation (audited);
//! - a request the admission chain refused: Pod Security enforce, a ValidatingAdmissionPolicy with
//!   `Deny` (unless its annotation already said so), or a validating webhook such as Gatekeeper's.
//!
//! Only the `ResponseComplete` (or `Panic`) stage counts, so one request is one event whatever the
//! audit policy's stages.

use serde::Deserialize;

use crate::violations::Action;

/// The annotation the apiserver writes for every failed ValidatingAdmissionPolicy validation whose
/// binding has the `Audit` action: a JSON array.
pub const VAP_ANNOTATION: &str = "validation.policy.admission.k8s.io/validation_failure";
/// The annotation Pod Security writes when a request would violate the namespace's `audit` level.
pub const PSA_AUDIT_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";

/// One violation seen in one audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The event's audit ID (the apiserver's id of the request).
    pub audit_id: String,
    /// When the apiserver finished the request, in ms since the epoch.
    pub at_ms: i64,
    /// The policy name as reported: a ValidatingAdmissionPolicy, a Gatekeeper constraint,
    /// `pod-security:<level>`, or an admission webhook.
    pub policy: String,
    /// `group/resource` (`pods` for the core group).
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub action: Action,
    pub message: String,
}

/// Why a body is not an audit EventList.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit.k8s.io/v1 EventList: {0}")]
pub struct NotAnEventList(pub String);

/// An audit.k8s.io/v1 EventList, as an apiserver's audit webhook posts it: only the fields read.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventList<'a> {
    #[serde(borrow, default)]
    kind: Option<&'a str>,
    #[serde(default)]
    items: Vec<Event>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "auditID", default)]
    audit_id: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
    #[serde(default)]
    response_status: Option<Status>,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
    #[serde(default)]
    stage_timestamp: Option<String>,
    #[serde(default)]
    request_received_timestamp: Option<String>,
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    api_group: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Status {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ValidationFailure {
    #[serde(default)]
    message: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    validation_actions: Vec<String>,
}

/// Every violation in a posted batch, and how many events it held. `now_ms` stands in for an
/// event without a readable timestamp.
pub fn parse(body: &[u8], now_ms: i64) -> Result<(usize, Vec<Observed>), NotAnEventList> {
    let list: EventList =
        serde_json::from_slice(body).map_err(|err| NotAnEventList(err.to_string()))?;
    if list.kind.is_some_and(|kind| kind != "EventList") {
        return Err(NotAnEventList(format!(
            "kind is {}",
            list.kind.unwrap_or_default()
        )));
    }
    let events = list.items.len();
    let mut out = Vec::new();
    for event in list.items {
        observe(event, now_ms, &mut out);
    }
    Ok((events, out))
}

fn observe(event: Event, now_ms: i64, out: &mut Vec<Observed>) {
    if !matches!(event.stage.as_str(), "ResponseComplete" | "Panic") || event.audit_id.is_empty() {
        return;
    }
    let at_ms = event
        .stage_timestamp
        .as_deref()
        .or(event.request_received_timestamp.as_deref())
        .and_then(rfc3339_ms)
        .unwrap_or(now_ms);
    let object = event.object_ref.unwrap_or_default();
    let resource = if object.api_group.is_empty() {
        object.resource.clone()
    } else {
        format!("{}/{}", object.api_group, object.resource)
    };
    let seen = |policy: String, action: Action, message: String| Observed {
        audit_id: event.audit_id.clone(),
        at_ms,
        policy,
        resource: resource.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        uid: object.uid.clone(),
        action,
        message,
    };
    let mut denied_by_annotation = Vec::new();
    if let Some(failures) = event.annotations.get(VAP_ANNOTATION) {
        let failures: Vec<ValidationFailure> = serde_json::from_str(failures).unwrap_or_default();
        for failure in failures {
            let has = |a: &str| failure.validation_actions.iter().any(|x| x == a);
            let action = if has("Deny") {
                denied_by_annotation.push(failure.policy.clone());
                Action::Deny
            } else if has("Warn") {
                Action::Warn
            } else {
                Action::Audit
            };
            out.push(seen(failure.policy, action, failure.message));
        }
    }
    if let Some(text) = event.annotations.get(PSA_AUDIT_ANNOTATION) {
        let (level, detail) = pod_security_parts(text);
        out.push(seen(
            format!("pod-security:{level}"),
            Action::Audit,
            detail.to_owned(),
        ));
    }
    let Some(status) = event.response_status else {
        return;
    };
    if !(400..500).contains(&status.code) {
        return;
    }
    for (policy, message) in denials(&status.message) {
        if !denied_by_annotation.contains(&policy) {
            out.push(seen(policy, Action::Deny, message));
        }
    }
}

/// `would violate PodSecurity "restricted:latest": x, y` (or `violates …`) as the level and the
/// list of what failed.
fn pod_security_parts(text: &str) -> (&str, &str) {
    let Some(start) = text.find("PodSecurity \"") else {
        return ("unknown", text);
    };
    let rest = &text[start + "PodSecurity \"".len()..];
    let Some(end) = rest.find('"') else {
        return ("unknown", text);
    };
    let level = rest[..end].split(':').next().unwrap_or("unknown");
    let detail = rest[end + 1..].trim_start_matches(':').trim();
    (level, detail)
}

/// The policies an admission refusal names, with their message.
fn denials(message: &str) -> Vec<(String, String)> {
    if message.contains("violates PodSecurity \"") {
        let (level, detail) = pod_security_parts(message);
        return vec![(format!("pod-security:{level}"), detail.to_owned())];
    }
    if let Some(start) = message.find("ValidatingAdmissionPolicy '") {
        let rest = &message[start + "ValidatingAdmissionPolicy '".len()..];
        if let Some(end) = rest.find('\'') {
            let detail = rest
                .find("denied request: ")
                .map_or(rest, |i| &rest[i + "denied request: ".len()..]);
            return vec![(rest[..end].to_owned(), detail.trim().to_owned())];
        }
    }
    if let Some(start) = message.find("admission webhook \"") {
        let rest = &message[start + "admission webhook \"".len()..];
        let Some(end) = rest.find('"') else {
            return Vec::new();
        };
        let webhook = &rest[..end];
        let detail = rest
            .find("denied the request: ")
            .map_or("", |i| &rest[i + "denied the request: ".len()..]);
        // Gatekeeper lists each refusing constraint as `[name] message`, one per line.
        let constraints: Vec<(String, String)> = detail
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let inner = line.strip_prefix('[')?;
                let (name, text) = inner.split_once(']')?;
                Some((name.to_owned(), text.trim().to_owned()))
            })
            .collect();
        if constraints.is_empty() {
            return vec![(webhook.to_owned(), detail.trim().to_owned())];
        }
        return constraints;
    }
    Vec::new()
}

/// `2026-12-02T21:00:00.123456Z` (or with an offset) in ms since the epoch.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't')
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let first3: String = fraction[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn event(annotations: serde_json::Value, status: serde_json::Value) -> serde_json::Value {
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": "a1", "stage": "ResponseComplete", "verb": "create",
            "objectRef": {"resource": "deployments", "namespace": "team-a", "name": "web",
                          "apiGroup": "apps", "apiVersion": "v1"},
            "responseStatus": status,
            "stageTimestamp": "2026-12-02T21:00:00.250000Z",
            "annotations": annotations,
        })
    }

    fn batch(items: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
        )
        .unwrap()
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2026-12-02T21:00:00.250000Z"),
            Some(1_796_245_200_250)
        );
        assert_eq!(
            rfc3339_ms("2026-12-02T22:00:00.25+01:00"),
            Some(1_796_245_200_250)
        );
        assert_eq!(rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(rfc3339_ms("yesterday"), None);
        assert_eq!(rfc3339_ms("2026-13-02T21:00:00Z"), None);
    }

    #[test]
    fn vap_failures_take_the_bindings_action() {
        let failures = json!([
            {"message": "no privileged", "policy": "p1", "binding": "b1", "expressionIndex": 0,
             "validationActions": ["Audit"]},
            {"message": "no hostPID", "policy": "p2", "binding": "b2", "expressionIndex": 1,
             "validationActions": ["Warn", "Audit"]},
        ])
        .to_string();
        let body = batch(vec![event(
            json!({ VAP_ANNOTATION: failures }),
            json!({"code": 201}),
        )]);
        let (n, seen) = parse(&body, 0).unwrap();
        assert_eq!(n, 1);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].policy, "p1");
        assert_eq!(seen[0].action, Action::Audit);
        assert_eq!(seen[0].resource, "apps/deployments");
        assert_eq!(seen[0].namespace, "team-a");
        assert_eq!(seen[0].at_ms, 1_796_245_200_250);
        assert_eq!(seen[1].action, Action::Warn);
        assert_eq!(seen[1].message, "no hostPID");
    }

    #[test]
    fn a_vap_deny_counts_once() {
        let failures =
            json!([{"message": "m", "policy": "p1", "validationActions": ["Deny", "Audit"]}])
                .to_string();
        let body = batch(vec![event(
            json!({ VAP_ANNOTATION: failures }),
            json!({"code": 403, "message": "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'p1' with binding 'b1' denied request: m"}),
        )]);
        let (_, seen) = parse(&body, 0).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].action, Action::Deny);
        // Without the annotation (a binding of [Deny] only) the refusal itself counts.
        let body = batch(vec![event(
            json!({}),
            json!({"code": 403, "message": "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'p1' with binding 'b1' denied request: m"}),
        )]);
        let (_, seen) = parse(&body, 0).unwrap();
        assert_eq!(
            (
                seen[0].policy.as_str(),
                seen[0].action,
                seen[0].message.as_str()
            ),
            ("p1", Action::Deny, "m")
        );
    }

    #[test]
    fn pod_security_audit_and_enforce() {
        let body = batch(vec![
            event(
                json!({ PSA_AUDIT_ANNOTATION: "would violate PodSecurity \"restricted:latest\": host namespaces (hostPID=true)" }),
                json!({"code": 201}),
            ),
            {
                let mut e = event(
                    json!({"pod-security.kubernetes.io/enforce-policy": "baseline:v1.37"}),
                    json!({"code": 403, "message": "pods \"x\" is forbidden: violates PodSecurity \"baseline:v1.37\": privileged (container \"c\" must not set securityContext.privileged=true)"}),
                );
                e["auditID"] = json!("a2");
                e
            },
        ]);
        let (_, seen) = parse(&body, 0).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].policy, "pod-security:restricted");
        assert_eq!(seen[0].action, Action::Audit);
        assert_eq!(seen[0].message, "host namespaces (hostPID=true)");
        assert_eq!(seen[1].policy, "pod-security:baseline");
        assert_eq!(seen[1].action, Action::Deny);
        assert_eq!(seen[1].audit_id, "a2");
    }

    #[test]
    fn gatekeeper_denials_name_each_constraint() {
        let body = batch(vec![event(
            json!({}),
            json!({"code": 403, "message": "admission webhook \"validation.gatekeeper.sh\" denied the request: [must-have-owner] you must provide labels: {\"owner\"}\n[no-latest] image uses latest"}),
        )]);
        let (_, seen) = parse(&body, 0).unwrap();
        let names: Vec<_> = seen.iter().map(|s| s.policy.as_str()).collect();
        assert_eq!(names, ["must-have-owner", "no-latest"]);
        assert_eq!(seen[1].message, "image uses latest");
    }

    #[test]
    fn other_events_are_not_violations() {
        let mut started = event(
            json!({ PSA_AUDIT_ANNOTATION: "would violate PodSecurity \"restricted:latest\": x" }),
            json!({"code": 201}),
        );
        started["stage"] = json!("ResponseStarted");
        let body = batch(vec![
            started,
            // RBAC refusals are not admission policy violations.
            event(
                json!({}),
                json!({"code": 403, "message": "deployments.apps is forbidden: User \"u\" cannot create resource"}),
            ),
            event(
                json!({"authorization.k8s.io/decision": "allow"}),
                json!({"code": 200}),
            ),
        ]);
        let (n, seen) = parse(&body, 0).unwrap();
        assert_eq!((n, seen.len()), (3, 0), "{seen:?}");
        assert!(parse(b"{\"kind\":\"Pod\"}", 0).is_err());
        assert!(parse(b"not json", 0).is_err());
    }
}
