//! Credentials for one cluster, reduced to a kubeconfig with exactly one context.
//!
//! Whatever the user gives (a kubeconfig with many contexts, or URL + CA + token) becomes a
//! kubeconfig holding only the chosen context, its cluster and its user, with everything embedded.
//! The server never runs commands or reads files on a cluster's behalf, so exec plugins, auth
//! providers and file references are refused, as are plain-http URLs and disabled TLS checks.

use std::fmt;

use kube::config::{
    AuthInfo, Cluster as KubeCluster, Context as KubeContext, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};

use crate::clusters::CredentialsInput;
use crate::error::{AppError, OrFault, ServerResult};

/// A one-context kubeconfig (as JSON text) and the API URL it points at. Secret: `Debug` shows
/// only the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub kubeconfig: String,
    pub api_url: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Check and reduce what the user gave.
    pub fn from_input(input: &CredentialsInput) -> ServerResult<Credentials> {
        match input {
            CredentialsInput::Kubeconfig {
                kubeconfig,
                context,
            } => from_kubeconfig(kubeconfig, context.as_deref()),
            CredentialsInput::Token {
                api_url,
                ca_pem,
                token,
            } => from_token(api_url, ca_pem, token),
        }
    }

    /// Read back stored credentials (already checked when they were stored).
    pub fn parse(&self) -> ServerResult<Kubeconfig> {
        Kubeconfig::from_yaml(&self.kubeconfig).or_fault()
    }
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::Invalid(message.into())
}

/// The context names of a kubeconfig, current context first.
pub fn contexts(kubeconfig: &str) -> ServerResult<Vec<String>> {
    let config = parse(kubeconfig)?;
    let mut names: Vec<String> = config.contexts.iter().map(|c| c.name.clone()).collect();
    if let Some(current) = &config.current_context {
        if let Some(at) = names.iter().position(|n| n == current) {
            let current = names.remove(at);
            names.insert(0, current);
        }
    }
    if names.is_empty() {
        return Err(invalid("the kubeconfig has no contexts").into());
    }
    Ok(names)
}

fn parse(kubeconfig: &str) -> ServerResult<Kubeconfig> {
    if kubeconfig.trim().is_empty() {
        return Err(invalid("the kubeconfig is empty").into());
    }
    // The parser's own message names the line and column; it never repeats secret values.
    Ok(Kubeconfig::from_yaml(kubeconfig)
        .map_err(|err| invalid(format!("not a valid kubeconfig: {err}")))?)
}

const EMBED: &str = "embed it: `kubectl config view --raw --minify --flatten --context NAME` writes a kubeconfig with everything inline";

fn from_kubeconfig(kubeconfig: &str, context: Option<&str>) -> ServerResult<Credentials> {
    let config = parse(kubeconfig)?;
    let wanted = match context.map(str::trim).filter(|c| !c.is_empty()) {
        Some(name) => name.to_owned(),
        None => config
            .current_context
            .clone()
            .ok_or_else(|| invalid("the kubeconfig has no current-context: choose a context"))?,
    };
    let named_context = config
        .contexts
        .iter()
        .find(|c| c.name == wanted)
        .ok_or_else(|| invalid(format!("the kubeconfig has no context `{wanted}`")))?;
    let context = named_context
        .context
        .clone()
        .ok_or_else(|| invalid(format!("context `{wanted}` is empty")))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| {
            invalid(format!(
                "context `{wanted}` names cluster `{}`, which the kubeconfig does not define",
                context.cluster
            ))
        })?;
    let user_name = context
        .user
        .clone()
        .ok_or_else(|| invalid(format!("context `{wanted}` names no user")))?;
    let user = config
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| {
            invalid(format!(
                "context `{wanted}` names user `{user_name}`, which the kubeconfig does not define"
            ))
        })?;
    let api_url = check_cluster(&cluster)?;
    check_user(&user_name, &user)?;
    build(wanted, context, cluster, user_name, user, api_url)
}

fn from_token(api_url: &str, ca_pem: &str, token: &str) -> ServerResult<Credentials> {
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid("the token is empty").into());
    }
    if token.chars().any(char::is_whitespace) {
        return Err(invalid("the token contains whitespace: paste it on its own").into());
    }
    let ca_pem = ca_pem.trim();
    if !ca_pem.is_empty() && !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(
            invalid("the CA certificate must be PEM (-----BEGIN CERTIFICATE----- …)").into(),
        );
    }
    let cluster = KubeCluster {
        server: Some(api_url.trim().to_owned()),
        certificate_authority_data: (!ca_pem.is_empty())
            .then(|| encode_base64(format!("{ca_pem}\n").as_bytes())),
        ..KubeCluster::default()
    };
    let api_url = check_cluster(&cluster)?;
    let user = AuthInfo {
        token: Some(token.to_owned().into()),
        ..AuthInfo::default()
    };
    let context = KubeContext {
        cluster: "cluster".to_owned(),
        user: Some("palisade".to_owned()),
        ..KubeContext::default()
    };
    build(
        "palisade".to_owned(),
        context,
        cluster,
        "palisade".to_owned(),
        user,
        api_url,
    )
}

/// The server URL, after refusing what a server cannot or must not use.
fn check_cluster(cluster: &KubeCluster) -> ServerResult<String> {
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid("the cluster has no server URL"))?;
    let uri: http::Uri = server
        .parse()
        .map_err(|_| invalid(format!("`{server}` is not a URL")))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err(invalid(format!(
            "`{server}`: Palisade talks to clusters over https only"
        ))
        .into());
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        return Err(invalid(
            "insecure-skip-tls-verify is set: give the cluster's CA certificate instead",
        )
        .into());
    }
    if let Some(path) = &cluster.certificate_authority {
        return Err(invalid(format!(
            "the cluster's CA is a file reference ({path}): {EMBED}"
        ))
        .into());
    }
    if cluster.proxy_url.is_some() {
        return Err(invalid("proxy-url is not supported").into());
    }
    Ok(server.trim_end_matches('/').to_owned())
}

fn check_user(name: &str, user: &AuthInfo) -> Result<(), AppError> {
    let refuse = |what: &str| {
        Err(invalid(format!(
            "user `{name}` uses {what}, which the server will not run or read; {EMBED}, with a token or client certificate"
        )))
    };
    if user.exec.is_some() {
        return refuse("an exec credential plugin");
    }
    if user.auth_provider.is_some() {
        return refuse("an auth provider");
    }
    if user.token_file.is_some() || user.client_certificate.is_some() || user.client_key.is_some() {
        return refuse("a file reference");
    }
    if user.username.is_some() || user.password.is_some() {
        return Err(invalid(format!(
            "user `{name}` uses a username and password; Kubernetes no longer accepts them: use a token or client certificate"
        )));
    }
    let has_token = user.token.is_some();
    let has_cert = user.client_certificate_data.is_some() && user.client_key_data.is_some();
    if !has_token && !has_cert {
        return Err(invalid(format!(
            "user `{name}` has no token and no client certificate with key"
        )));
    }
    Ok(())
}

fn build(
    context_name: String,
    mut context: KubeContext,
    cluster: KubeCluster,
    user_name: String,
    user: AuthInfo,
    api_url: String,
) -> ServerResult<Credentials> {
    context.namespace = None;
    let config = Kubeconfig {
        clusters: vec![NamedCluster {
            name: context.cluster.clone(),
            cluster: Some(cluster),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user_name,
            auth_info: Some(user),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: context_name.clone(),
            context: Some(context),
            other: Default::default(),
        }],
        current_context: Some(context_name),
        ..Kubeconfig::default()
    };
    let kubeconfig = serde_json::to_string(&config).or_fault()?;
    Ok(Credentials {
        kubeconfig,
        api_url,
    })
}

/// Standard base64 with padding, for `certificate-authority-data`.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CONTEXTS: &str = "\
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod
  cluster: {server: 'https://prod.example:6443', certificate-authority-data: Zm9v}
- name: dev
  cluster: {server: 'https://dev.example:6443', certificate-authority-data: YmFy}
users:
- name: prod-admin
  user: {token: prod-token-123}
- name: dev-admin
  user: {token: dev-token-456}
contexts:
- name: dev
  context: {cluster: dev, user: dev-admin, namespace: team-a}
- name: prod
  context: {cluster: prod, user: prod-admin}
";

    fn kubeconfig(text: &str, context: Option<&str>) -> ServerResult<Credentials> {
        Credentials::from_input(&CredentialsInput::Kubeconfig {
            kubeconfig: text.to_owned(),
            context: context.map(str::to_owned),
        })
    }

    #[test]
    fn only_the_chosen_context_is_kept() {
        assert_eq!(contexts(TWO_CONTEXTS).unwrap(), ["prod", "dev"]);
        let dev = kubeconfig(TWO_CONTEXTS, Some("dev")).unwrap();
        assert_eq!(dev.api_url, "https://dev.example:6443");
        assert!(dev.kubeconfig.contains("dev-token-456"));
        assert!(
            !dev.kubeconfig.contains("prod-token-123"),
            "other users are dropped"
        );
        let parsed = dev.parse().unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("dev"));
        assert_eq!(parsed.contexts.len(), 1);
        let current = kubeconfig(TWO_CONTEXTS, None).unwrap();
        assert_eq!(current.api_url, "https://prod.example:6443");
        assert!(!format!("{current:?}").contains("prod-token"));
    }

    #[test]
    fn what_a_server_must_not_use_is_refused_with_the_reason() {
        let cases = [
            (
                TWO_CONTEXTS.replace(
                    "token: dev-token-456",
                    "exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}",
                ),
                "exec credential plugin",
            ),
            (
                TWO_CONTEXTS.replace("token: dev-token-456", "tokenFile: /var/run/token"),
                "file reference",
            ),
            (
                TWO_CONTEXTS.replace(
                    "certificate-authority-data: YmFy",
                    "certificate-authority: /etc/ca.crt",
                ),
                "file reference (/etc/ca.crt)",
            ),
            (
                TWO_CONTEXTS.replace("https://dev.example", "http://dev.example"),
                "https only",
            ),
            (
                TWO_CONTEXTS.replace(
                    "certificate-authority-data: YmFy",
                    "insecure-skip-tls-verify: true",
                ),
                "insecure-skip-tls-verify",
            ),
            (
                TWO_CONTEXTS.replace("token: dev-token-456", "username: admin"),
                "username and password",
            ),
        ];
        for (text, expected) in cases {
            let err = kubeconfig(&text, Some("dev")).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(!err.contains("dev-token-456"));
        }
        let err = kubeconfig(TWO_CONTEXTS, Some("staging")).unwrap_err();
        assert!(err.to_string().contains("no context `staging`"));
        let err = kubeconfig("clusters: [", None).unwrap_err();
        assert!(err.to_string().contains("not a valid kubeconfig"), "{err}");
    }

    #[test]
    fn url_ca_and_token_become_a_kubeconfig() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let credentials = Credentials::from_input(&CredentialsInput::Token {
            api_url: "https://10.0.0.1:6443/".into(),
            ca_pem: pem.into(),
            token: "abc.def".into(),
        })
        .unwrap();
        assert_eq!(credentials.api_url, "https://10.0.0.1:6443");
        let parsed = credentials.parse().unwrap();
        let cluster = parsed.clusters[0].cluster.clone().unwrap();
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(encode_base64(format!("{pem}\n").as_bytes()).as_str())
        );
        let bad = Credentials::from_input(&CredentialsInput::Token {
            api_url: "https://10.0.0.1:6443".into(),
            ca_pem: "not a pem".into(),
            token: "abc".into(),
        });
        assert!(bad.unwrap_err().to_string().contains("PEM"));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(encode_base64(b""), "");
        assert_eq!(encode_base64(b"f"), "Zg==");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(encode_base64(b"foo"), "Zm9v");
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
    }
}
