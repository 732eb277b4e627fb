//! `palisade impact [--policy FILE]... [--pss LEVEL[:VERSION]]... [--library ID]... --kubeconfig
//! FILE [--context NAME]`: what enforcing the policies would do to every object of a live cluster,
//! without a server. Every kind the inventory keeps is listed page by page, each object judged and
//! dropped (only findings and owners are kept), through the same [`Judge`] as the server's impact:
//! Pod Security levels land on every namespace but the system ones, as a rollout labels them.
//! Exit 1 when anything would be denied, 0 otherwise, 2 on bad input or a cluster that cannot be
//! read; a kind the credentials may not list is reported as not readable.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use palisade_app::clusters::ssr::connector::from_kube;
use palisade_app::impact::findings::{ClusterFindings, ImpactFindings};
use palisade_app::impact::ssr::judge::Judge;
use palisade_app::inventory::ssr::kinds::KINDS;
use palisade_app::violations::ssr::scan::Deployed;
use palisade_engine::bundle::SYSTEM_NAMESPACES;
use palisade_engine::pss::LevelVersion;
use palisade_engine::Mode;
use serde_json::Value;

use super::{Exit, OutputFormat};

/// Objects per list call.
const PAGE: u32 = 250;

/// What `palisade impact` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ImpactArgs {
    pub policies: Vec<String>,
    pub pod_security: Vec<String>,
    pub library: Vec<String>,
    pub kubeconfig: String,
    pub context: Option<String>,
    pub output: OutputFormat,
}

pub fn run(args: &ImpactArgs) -> Exit {
    match impact(args) {
        Ok(exit) => exit,
        Err(errors) => {
            for error in errors {
                eprintln!("palisade: error: {error}");
            }
            Exit::BadInput
        }
    }
}

fn impact(args: &ImpactArgs) -> Result<Exit, Vec<String>> {
    let mut bundle = super::bundle::load(&args.policies, &args.pod_security, &args.library)?;
    let levels = bundle.take_pod_security();
    // The file's own errors name the path, never its content.
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .map_err(|err| vec![format!("--kubeconfig {}: {err}", args.kubeconfig)])?;
    let name = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| vec![format!("cannot start the async runtime: {err}")])?;
    let now = palisade_app::db::now_ms();
    let cluster = runtime
        .block_on(judge_cluster(
            kubeconfig,
            args.context.clone(),
            name,
            bundle,
            &levels,
            now,
        ))
        .map_err(|err| vec![err])?;
    let denied = cluster.deny;
    let report = ImpactFindings {
        clusters: vec![cluster],
    };
    match args.output {
        OutputFormat::Text => print_text(&report),
        OutputFormat::Json => super::print_json(&report),
    }
    Ok(if denied > 0 { Exit::Failed } else { Exit::Ok })
}

/// Read every kept kind of the cluster and judge each object.
async fn judge_cluster(
    kubeconfig: Kubeconfig,
    context: Option<String>,
    name: String,
    bundle: palisade_engine::bundle::Bundle,
    levels: &[(LevelVersion, Mode)],
    now: i64,
) -> Result<ClusterFindings, String> {
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|err| format!("--kubeconfig: {err}"))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    let client = kube::Client::try_from(config)
        .map_err(|err| format!("--kubeconfig: the credentials cannot be used: {err}"))?;
    let mut unreadable = Vec::new();
    // Namespaces first: the Pod Security levels are placed on them, and namespace selectors
    // read their labels.
    let mut namespaces = Vec::new();
    let (namespace_kind, others) = KINDS.split_first().ok_or("no kinds to read")?;
    if !list_kind(&client, namespace_kind, &mut |object| {
        namespaces.push(object)
    })
    .await?
    {
        unreadable.push(namespace_kind.1.to_owned());
    }
    let deployed = deployed(bundle, levels, &namespaces)?;
    let mut judge = Judge::new(Arc::new(deployed), None, namespaces.clone(), now);
    for namespace in &namespaces {
        judge.add(namespace.clone());
    }
    for kind in others {
        if !list_kind(&client, kind, &mut |object| judge.add(object)).await? {
            unreadable.push(kind.1.to_owned());
        }
    }
    let found = judge.findings(usize::MAX);
    let mut cluster = ClusterFindings::new(name, judge.objects(), found);
    for reason in judge.finish(false).not_evaluable {
        eprintln!("palisade: note: not evaluable here: {reason}");
    }
    cluster.complete = unreadable.is_empty();
    cluster.unreadable = unreadable;
    Ok(cluster)
}

/// The policies as deployed on this cluster: the bundle as given, and each Pod Security level
/// labelled (enforce, with warn and audit) on every namespace but the system ones.
fn deployed(
    bundle: palisade_engine::bundle::Bundle,
    levels: &[(LevelVersion, Mode)],
    namespaces: &[Value],
) -> Result<Deployed, String> {
    let mut labels = Vec::new();
    for namespace in namespaces {
        let Some(name) = namespace.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        if SYSTEM_NAMESPACES.contains(&name) {
            continue;
        }
        for (level, mode) in levels {
            labels.push(palisade_engine::render::pod_security_patch(
                name, *level, *mode,
            ));
        }
    }
    let (mut deployed, errors) = Deployed::from_deployments(&[(String::new(), labels)]);
    if let Some(error) = errors.first() {
        return Err(error.clone());
    }
    deployed.bundle = bundle;
    Ok(deployed)
}

/// Every object of one kind, page by page, each given to `each` with the managed fields dropped.
/// `Ok(false)` when the credentials may not list it (or the cluster does not serve it).
async fn list_kind(
    client: &kube::Client,
    (api_version, kind, plural): &(&str, &str, &str),
    each: &mut dyn FnMut(Value),
) -> Result<bool, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api: kube::Api<DynamicObject> = kube::Api::all_with(client.clone(), &resource);
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let list = match api.list(&params).await {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404) => return Ok(false),
            Err(err) => return Err(format!("listing {plural}: {}", from_kube(err))),
        };
        for item in list.items {
            let mut object =
                serde_json::to_value(item).map_err(|err| format!("listing {plural}: {err}"))?;
            if let Some(map) = object.as_object_mut() {
                map.insert("apiVersion".into(), Value::from(*api_version));
                map.insert("kind".into(), Value::from(*kind));
            }
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("managedFields");
            }
            each(object);
        }
        match list.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(true),
        }
    }
}

/// One line per finding, `action  Kind namespace/name  (owner Kind/name)  policy: message`, then
/// the cluster's summary; written at once.
fn print_text(report: &ImpactFindings) {
    use std::fmt::Write;
    let mut out = String::new();
    for cluster in &report.clusters {
        for finding in &cluster.findings {
            let subject = if finding.namespace.is_empty() {
                format!("{} {}", finding.kind, finding.name)
            } else {
                format!("{} {}/{}", finding.kind, finding.namespace, finding.name)
            };
            let excepted = if finding.excepted { " (excepted)" } else { "" };
            let _ = writeln!(
                out,
                "{:<6} {subject}  (owner {}/{}){excepted}  {}: {}",
                finding.action.as_str(),
                finding.owner.kind,
                finding.owner.name,
                finding.policy,
                finding.message
            );
        }
        let _ = writeln!(
            out,
            "{}: {} objects, {} denied, {} warned, {} audited",
            cluster.cluster, cluster.objects, cluster.deny, cluster.warn, cluster.audit
        );
        if !cluster.unreadable.is_empty() {
            let _ = writeln!(
                out,
                "not readable with these credentials (not judged): {}",
                cluster.unreadable.join(", ")
            );
        }
    }
    print!("{out}");
}
