//! One manifest on a cluster: server-side apply (with the apiserver's warnings), read-back and
//! delete, each resolved to its API by discovery.

use super::apiserver::KubeConnector;
use super::cache::Connection;
use super::{from_kube, Applied, ClusterError, FIELD_MANAGER};
use crate::clusters::ssr::credentials::Credentials;

/// The text of one `Warning` response header (`299 - "text"`), unquoted; a value in another form
/// is kept whole.
pub fn warning_text(header: &str) -> String {
    let Some(rest) = header.trim().strip_prefix("299 ") else {
        return header.trim().to_owned();
    };
    let Some(quoted) = rest
        .split_once(' ')
        .map(|(_agent, text)| text.trim())
        .and_then(|text| text.strip_prefix('"'))
        .and_then(|text| text.strip_suffix('"'))
    else {
        return header.trim().to_owned();
    };
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Where a manifest lives: its API (resolved by discovery, so plural names are the cluster's own),
/// namespace and name.
struct Target {
    api: kube::Api<kube::core::DynamicObject>,
    /// The collection's URL path, for requests made by hand (to read their headers).
    url: String,
    name: String,
    gvk: kube::core::GroupVersionKind,
}

async fn target(
    connection: &Connection,
    manifest: &serde_json::Value,
) -> Result<Target, ClusterError> {
    use kube::core::GroupVersionKind;
    use kube::discovery::Scope;
    let text = |pointer: &str| {
        manifest
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
    };
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(ClusterError::Api {
            code: 422,
            message: "the manifest needs apiVersion, kind and metadata.name".to_owned(),
        });
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = connection.kind(&gvk).await.map_err(from_kube)?;
    let client = &connection.client;
    let namespace = match (capabilities.scope, text("/metadata/namespace")) {
        (Scope::Namespaced, Some(namespace)) => Some(namespace),
        (Scope::Namespaced, None) => Some(client.default_namespace()),
        (Scope::Cluster, _) => None,
    };
    let api = match namespace {
        Some(namespace) => kube::Api::namespaced_with(client.clone(), namespace, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    };
    Ok(Target {
        api,
        url: <kube::core::DynamicObject as kube::Resource>::url_path(&resource, namespace),
        name: name.to_owned(),
        gvk,
    })
}

impl KubeConnector {
    pub(super) async fn apply_manifest(
        &self,
        credentials: &Credentials,
        manifest: &serde_json::Value,
    ) -> Result<Applied, ClusterError> {
        use kube::api::{Patch, PatchParams};
        let connection = self.connect(credentials).await?;
        let target = target(&connection, manifest).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        // Sent by hand rather than through `Api::patch`, which drops the response's headers: the
        // apiserver's warnings are in them.
        let request = kube::core::Request::new(&target.url)
            .patch(&target.name, &params, &Patch::Apply(manifest))
            .map_err(|err| ClusterError::Api {
                code: 422,
                message: err.to_string(),
            })?;
        let response = connection
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(from_kube)?;
        let status = response.status();
        let warnings: Vec<String> = response
            .headers()
            .get_all(http::header::WARNING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(warning_text)
            .collect();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(from_kube)?;
        if !status.is_success() {
            if status == http::StatusCode::NOT_FOUND {
                connection.forget(&target.gvk);
            }
            if status == http::StatusCode::UNAUTHORIZED {
                return Err(ClusterError::Unauthorized);
            }
            // A refusal is a metav1 Status; its message is the apiserver's own words.
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|status| status["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ClusterError::Api {
                code: status.as_u16(),
                message,
            });
        }
        let object = serde_json::from_slice(&body).map_err(|err| ClusterError::Api {
            code: 500,
            message: format!("the applied object could not be read: {err}"),
        })?;
        Ok(Applied { object, warnings })
    }

    pub(super) async fn get_manifest(
        &self,
        credentials: &Credentials,
        manifest: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, ClusterError> {
        let connection = self.connect(credentials).await?;
        let target = target(&connection, manifest).await?;
        let live = target.api.get_opt(&target.name).await.map_err(from_kube)?;
        live.map(serde_json::to_value)
            .transpose()
            .map_err(|err| ClusterError::Api {
                code: 500,
                message: err.to_string(),
            })
    }
}

impl KubeConnector {
    pub(super) async fn delete_manifest(
        &self,
        credentials: &Credentials,
        manifest: &serde_json::Value,
    ) -> Result<bool, ClusterError> {
        let connection = self.connect(credentials).await?;
        let target = target(&connection, manifest).await?;
        match target
            .api
            .delete(&target.name, &kube::api::DeleteParams::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(err) => Err(from_kube(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_read_in_the_apiservers_words() {
        assert_eq!(
            warning_text(
                r#"299 - "existing pods in namespace \"shop\" violate the new PodSecurity enforce level \"restricted:latest\"""#
            ),
            r#"existing pods in namespace "shop" violate the new PodSecurity enforce level "restricted:latest""#
        );
        assert_eq!(warning_text("299 - \"web: privileged\""), "web: privileged");
        assert_eq!(warning_text("something else"), "something else");
    }
}
