//! The Rego input of a review, built straight into regorus values: each object is read once, by
//! reference, into the value every constraint of the review then shares (regorus values are
//! reference-counted, so handing the review to a constraint copies no object).
//!
//! Going through serde (`regorus::Value::from(serde_json::Value)`) would need an owned copy of the
//! object first and pay for the deserializer's generality on every node; the value built here is the
//! same (the tests hold it to the serde route).

use std::collections::BTreeMap;

use regorus::Value as Rego;
use serde_json::Value;

/// `value` as a regorus value: objects, arrays, strings, numbers (unsigned and signed integers
/// stay integers, everything else is a float, as serde reads them), booleans and null.
pub fn to_rego(value: &Value) -> Rego {
    match value {
        Value::Null => Rego::Null,
        Value::Bool(b) => Rego::Bool(*b),
        Value::Number(n) => number(n),
        Value::String(s) => Rego::from(s.as_str()),
        Value::Array(items) => Rego::from(items.iter().map(to_rego).collect::<Vec<_>>()),
        Value::Object(map) => Rego::from(
            map.iter()
                .map(|(key, value)| (Rego::from(key.as_str()), to_rego(value)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

fn number(n: &serde_json::Number) -> Rego {
    if let Some(u) = n.as_u64() {
        Rego::from(u)
    } else if let Some(i) = n.as_i64() {
        Rego::from(i)
    } else {
        // serde_json holds only finite floats.
        Rego::from(n.as_f64().unwrap_or_default())
    }
}

/// An object of regorus values from `(key, value)` pairs.
pub fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Rego)>) -> Rego {
    Rego::from(
        entries
            .into_iter()
            .map(|(key, value)| (Rego::from(key), value))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// `{"review": review, "parameters": parameters}`: what a constraint's Rego reads as `input`.
pub fn constraint_input(review: &Rego, parameters: &Rego) -> Rego {
    object([
        ("parameters", parameters.clone()),
        ("review", review.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The direct route gives exactly what the serde route gives, numbers of every kind included.
    #[test]
    fn the_value_is_the_one_serde_builds() {
        let values = [
            json!(null),
            json!({}),
            json!([]),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                            "securityContext": {"privileged": true, "runAsUser": 0}}]}}),
            json!({"numbers": [0, 1, -1, u64::MAX, i64::MIN, 1.5, -2.25, 1e300, 0.1, 3.0]}),
            json!({"unicode": "héllo ✓", "empty": "", "nested": [[[{"x": null}]]], "b": false}),
        ];
        for value in values {
            assert_eq!(to_rego(&value), Rego::from(value.clone()), "{value}");
        }
        let sample = crate::sample::pods(7, 50);
        for pod in sample {
            assert_eq!(to_rego(&pod), Rego::from(pod.clone()));
        }
    }

    #[test]
    fn an_input_has_the_review_and_the_parameters() {
        let input = constraint_input(&to_rego(&json!({"a": 1})), &to_rego(&json!({"p": [1]})));
        assert_eq!(
            input,
            Rego::from(json!({"review": {"a": 1}, "parameters": {"p": [1]}}))
        );
    }
}
