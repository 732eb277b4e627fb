//! A cluster's Namespace objects by name: what namespace selectors and `namespaceObject` read.
//! Every request looks its namespace up, and a cluster may have thousands, so the lookup must not
//! walk them all.

use std::collections::BTreeMap;

use serde_json::Value;

/// Namespace objects, found by `metadata.name`. Where two share a name, the first counts. A
/// namespace that is not here exists with only its `kubernetes.io/metadata.name` label, as the
/// apiserver labels every namespace.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    objects: Vec<Value>,
    by_name: BTreeMap<String, usize>,
}

/// No namespaces, for contexts built without any.
static NONE: Namespaces = Namespaces {
    objects: Vec::new(),
    by_name: BTreeMap::new(),
};

impl Namespaces {
    /// The Namespace object named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.by_name.get(name).map(|&i| &self.objects[i])
    }
}

impl From<Vec<Value>> for Namespaces {
    fn from(objects: Vec<Value>) -> Self {
        let mut by_name = BTreeMap::new();
        for (i, object) in objects.iter().enumerate() {
            if let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str) {
                by_name.entry(name.to_owned()).or_insert(i);
            }
        }
        Namespaces { objects, by_name }
    }
}

impl FromIterator<Value> for Namespaces {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Namespaces::from(iter.into_iter().collect::<Vec<_>>())
    }
}

/// Contexts that borrow the namespaces default to none.
impl Default for &Namespaces {
    fn default() -> Self {
        &NONE
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_namespace_is_found_by_name_and_the_first_of_a_name_counts() {
        let namespaces = Namespaces::from(vec![
            json!({"metadata": {"name": "team", "labels": {"n": "1"}}}),
            json!({"metadata": {"labels": {"no": "name"}}}),
            json!({"metadata": {"name": "team", "labels": {"n": "2"}}}),
            json!({"metadata": {"name": "other"}}),
        ]);
        assert_eq!(
            namespaces.get("team").unwrap()["metadata"]["labels"]["n"],
            "1"
        );
        assert!(namespaces.get("other").is_some());
        assert!(namespaces.get("missing").is_none());
        assert!(<&Namespaces>::default().get("team").is_none());
    }
}
