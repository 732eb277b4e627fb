//! The individual Pod Security checks, the Kubernetes minor each behaviour starts at, and the
//! per-(level, version) evaluation plans built from them.
//!
//! Evaluation runs in two passes. The fast pass reads every container once into a
//! [`ContainerFacts`] (borrowed references only, nothing allocated) and asks each planned rule
//! whether the pod or that container trips it, setting one bit per rule. A pod that trips nothing
//! is allowed without a single allocation. Only the rules whose bit is set run their `describe`
//! pass, which walks the pod again and builds the exact upstream wording.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::{compact, Forbidden, Level, LevelVersion, Version};

type Object = Map<String, Value>;

/// The level a check belongs to. Restricted includes every baseline check that no active
/// restricted check overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckLevel {
    Baseline,
    Restricted,
}

/// One behaviour of one check. Checks change at given minors; each change is a `Rule` value.
#[derive(Debug, Clone, Copy)]
enum Rule {
    AppArmor,
    CapabilitiesBaseline,
    HostNamespaces,
    HostPathVolumes,
    HostPorts,
    HostProbesAndLifecycle,
    Privileged,
    /// `relaxed_in_user_namespace`: a pod with `hostUsers: false` passes (from v1.35, baseline).
    ProcMount {
        relaxed_in_user_namespace: bool,
    },
    SeLinux {
        allowed_types: &'static [&'static str],
    },
    /// Before v1.19: the alpha seccomp annotations.
    SeccompAnnotations,
    /// From v1.19: `securityContext.seccompProfile.type`, when set, must be allowed.
    SeccompBaseline,
    Sysctls {
        allowed: &'static [&'static str],
    },
    WindowsHostProcess,
    /// `windows_exempt`: pods with `spec.os.name: windows` pass (from v1.25).
    AllowPrivilegeEscalation {
        windows_exempt: bool,
    },
    CapabilitiesRestricted {
        windows_exempt: bool,
    },
    RestrictedVolumes,
    RunAsNonRoot {
        relaxed_in_user_namespace: bool,
    },
    RunAsUser {
        relaxed_in_user_namespace: bool,
    },
    SeccompRestricted {
        windows_exempt: bool,
    },
}

/// A rule and the first minor (of Kubernetes 1.x) it applies to, until the next entry.
struct Versioned {
    since: u32,
    rule: Rule,
}

struct CheckDef {
    id: &'static str,
    level: CheckLevel,
    /// Baseline checks this (restricted) check replaces while one of its versions is active.
    overrides: &'static [&'static str],
    versions: &'static [Versioned],
}

/// The first `len` entries of `list`: each later minor allows a longer prefix of the lists below.
const fn prefix(list: &'static [&'static str], len: usize) -> &'static [&'static str] {
    list.split_at(len).0
}

/// The SELinux types baseline allows, in the order Kubernetes added them.
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The sysctls baseline allows, in the order Kubernetes added them.
const SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

const CAPABILITIES_BASELINE: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Writes the [`CHECKS`] table, one check an entry: `Level "id" ("overridden baseline id", ...):`
/// then each minor the check changes at `=>` the rule from that minor on.
macro_rules! checks {
    ($($level:ident $id:literal $(($($over:literal),+))?: $($since:literal => $rule:expr),+;)+) => {
        &[$(CheckDef {
            id: $id,
            level: CheckLevel::$level,
            overrides: &[$($($over),+)?],
            versions: &[$(Versioned { since: $since, rule: $rule }),+],
        }),+]
    };
}

/// Every check, baseline IDs first then restricted IDs, each group in byte order of the ID: the
/// order in which the apiserver reports violations.
const CHECKS: &[CheckDef] = checks! {
    Baseline "appArmorProfile": 0 => Rule::AppArmor;
    Baseline "capabilities_baseline": 0 => Rule::CapabilitiesBaseline;
    Baseline "hostNamespaces": 0 => Rule::HostNamespaces;
    Baseline "hostPathVolumes": 0 => Rule::HostPathVolumes;
    Baseline "hostPorts": 0 => Rule::HostPorts;
    Baseline "hostProbesAndHostLifecycle": 34 => Rule::HostProbesAndLifecycle;
    Baseline "privileged": 0 => Rule::Privileged;
    Baseline "procMount": 0 => Rule::ProcMount { relaxed_in_user_namespace: false },
        35 => Rule::ProcMount { relaxed_in_user_namespace: true };
    Baseline "seLinuxOptions": 0 => Rule::SeLinux { allowed_types: prefix(SELINUX_TYPES, 4) },
        31 => Rule::SeLinux { allowed_types: prefix(SELINUX_TYPES, 5) };
    Baseline "seccompProfile_baseline": 0 => Rule::SeccompAnnotations, 19 => Rule::SeccompBaseline;
    Baseline "sysctls": 0 => Rule::Sysctls { allowed: prefix(SYSCTLS, 5) },
        27 => Rule::Sysctls { allowed: prefix(SYSCTLS, 6) },
        29 => Rule::Sysctls { allowed: prefix(SYSCTLS, 10) },
        32 => Rule::Sysctls { allowed: prefix(SYSCTLS, 12) },
        37 => Rule::Sysctls { allowed: prefix(SYSCTLS, 14) };
    Baseline "windowsHostProcess": 0 => Rule::WindowsHostProcess;
    Restricted "allowPrivilegeEscalation":
        8 => Rule::AllowPrivilegeEscalation { windows_exempt: false },
        25 => Rule::AllowPrivilegeEscalation { windows_exempt: true };
    Restricted "capabilities_restricted" ("capabilities_baseline"):
        22 => Rule::CapabilitiesRestricted { windows_exempt: false },
        25 => Rule::CapabilitiesRestricted { windows_exempt: true };
    Restricted "procMount_restricted" ("procMount"):
        35 => Rule::ProcMount { relaxed_in_user_namespace: false };
    Restricted "restrictedVolumes" ("hostPathVolumes"): 0 => Rule::RestrictedVolumes;
    Restricted "runAsNonRoot": 0 => Rule::RunAsNonRoot { relaxed_in_user_namespace: false },
        35 => Rule::RunAsNonRoot { relaxed_in_user_namespace: true };
    Restricted "runAsUser": 23 => Rule::RunAsUser { relaxed_in_user_namespace: false },
        35 => Rule::RunAsUser { relaxed_in_user_namespace: true };
    Restricted "seccompProfile_restricted" ("seccompProfile_baseline"):
        19 => Rule::SeccompRestricted { windows_exempt: false },
        25 => Rule::SeccompRestricted { windows_exempt: true };
};

/// The newest minor at which any check changes; `latest` and every later minor evaluate as this.
pub const NEWEST_MINOR: u32 = newest_minor();

const fn newest_minor() -> u32 {
    let mut newest = 0;
    let mut i = 0;
    while i < CHECKS.len() {
        let versions = CHECKS[i].versions;
        let since = versions[versions.len() - 1].since;
        if since > newest {
            newest = since;
        }
        i += 1;
    }
    newest
}

/// The checks that run, in reporting order, for one level at one minor.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) id: &'static str,
    rule: Rule,
}

/// Plans for baseline (index 0) and restricted (index 1), each for minors 0..=NEWEST_MINOR.
static PLANS: LazyLock<[Vec<Vec<Step>>; 2]> = LazyLock::new(|| {
    let build = |level: CheckLevel| {
        (0..=NEWEST_MINOR)
            .map(|minor| plan_for(level, minor))
            .collect::<Vec<_>>()
    };
    [build(CheckLevel::Baseline), build(CheckLevel::Restricted)]
});

fn active(def: &CheckDef, minor: u32) -> Option<&Versioned> {
    def.versions.iter().rev().find(|v| v.since <= minor)
}

fn plan_for(level: CheckLevel, minor: u32) -> Vec<Step> {
    let overridden: Vec<&str> = match level {
        CheckLevel::Baseline => Vec::new(),
        CheckLevel::Restricted => CHECKS
            .iter()
            .filter(|def| def.level == CheckLevel::Restricted && active(def, minor).is_some())
            .flat_map(|def| def.overrides.iter().copied())
            .collect(),
    };
    CHECKS
        .iter()
        .filter(|def| level == CheckLevel::Restricted || def.level == CheckLevel::Baseline)
        .filter(|def| !(def.level == CheckLevel::Baseline && overridden.contains(&def.id)))
        .filter_map(|def| {
            active(def, minor).map(|v| Step {
                id: def.id,
                rule: v.rule,
            })
        })
        .collect()
}

/// The plan for a level and version; empty for privileged.
pub(super) fn plan(lv: LevelVersion) -> &'static [Step] {
    let index = match lv.level {
        Level::Privileged => return &[],
        Level::Baseline => 0,
        Level::Restricted => 1,
    };
    let minor = match lv.version {
        Version::Latest => NEWEST_MINOR,
        Version::Minor(m) => m.min(NEWEST_MINOR),
    };
    PLANS[index]
        .get(minor as usize)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The IDs of the checks a level runs at a version, in reporting order.
pub(super) fn check_ids(lv: LevelVersion) -> impl Iterator<Item = &'static str> {
    plan(lv).iter().map(|s| s.id)
}

// ------------------------------------------------------------------ reading the pod
//
// The rules read a pod through the views below. Each view borrows either the pod's JSON
// (`serde_json::Value`) or its compact form (`super::compact`); a list is a JSON array or a
// compact slice, the other one empty. So every rule is written once for both forms, and the two
// cannot drift apart. Reading JSON allocates nothing.

fn object(v: Option<&Value>) -> Option<&Object> {
    v.and_then(Value::as_object)
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

/// An element of a list the checks read, as seen from JSON and from the compact form.
trait Item {
    type View<'a>: Copy
    where
        Self: 'a;
    fn from_json(json: &Value) -> Self::View<'_>;
    fn view(&self) -> Self::View<'_>;
}

/// A list as the checks see it: a JSON array or a compact slice (one of them is empty).
struct Seq<'a, T> {
    json: &'a [Value],
    compact: &'a [T],
}

impl<T> Clone for Seq<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Seq<'_, T> {}

impl<T> Default for Seq<'_, T> {
    fn default() -> Self {
        Seq {
            json: &[],
            compact: &[],
        }
    }
}

impl<'a, T: Item> Seq<'a, T> {
    fn json(json: &'a [Value]) -> Self {
        Seq { json, compact: &[] }
    }

    fn compact(compact: &'a [T]) -> Self {
        Seq { json: &[], compact }
    }

    fn iter(self) -> SeqIter<'a, T> {
        SeqIter {
            json: self.json.iter(),
            compact: self.compact.iter(),
        }
    }
}

/// The elements of a [`Seq`]: a plain loop over one slice then the other (`Iterator::chain`
/// costs the JSON path measurably here).
struct SeqIter<'a, T> {
    json: std::slice::Iter<'a, Value>,
    compact: std::slice::Iter<'a, T>,
}

impl<'a, T: Item> Iterator for SeqIter<'a, T> {
    type Item = T::View<'a>;

    #[inline]
    fn next(&mut self) -> Option<T::View<'a>> {
        match self.json.next() {
            Some(json) => Some(T::from_json(json)),
            None => self.compact.next().map(T::view),
        }
    }
}

/// A capability name (`add` and `drop` entries): a string, or `""` for anything else.
impl Item for compact::Text {
    type View<'a> = &'a str;
    fn from_json(json: &Value) -> &str {
        json.as_str().unwrap_or("")
    }
    fn view(&self) -> &str {
        &self.0
    }
}

/// A sysctl: its `name`.
impl Item for compact::Sysctl {
    type View<'a> = &'a str;
    fn from_json(json: &Value) -> &str {
        text(json.get("name"))
    }
    fn view(&self) -> &str {
        &self.0
    }
}

/// A container port, as [`PortView`].
impl Item for compact::Port {
    type View<'a> = PortView<'a>;
    fn from_json(json: &Value) -> PortView<'_> {
        PortView::Json(json)
    }
    fn view(&self) -> PortView<'_> {
        PortView::Compact(*self)
    }
}

/// A container port: its `hostPort` and `containerPort` (0 when unset or not an integer), read
/// from JSON when asked.
#[derive(Clone, Copy)]
enum PortView<'a> {
    Json(&'a Value),
    Compact(compact::Port),
}

impl PortView<'_> {
    fn host(self) -> i64 {
        match self {
            PortView::Json(p) => p.get("hostPort").and_then(Value::as_i64).unwrap_or(0),
            PortView::Compact(p) => p.host,
        }
    }

    fn container(self) -> i64 {
        match self {
            PortView::Json(p) => p.get("containerPort").and_then(Value::as_i64).unwrap_or(0),
            PortView::Compact(p) => p.container,
        }
    }
}

/// A volume, as [`VolumeView`].
impl Item for compact::Volume {
    type View<'a> = VolumeView<'a>;
    fn from_json(json: &Value) -> VolumeView<'_> {
        VolumeView::Json(json)
    }
    fn view(&self) -> VolumeView<'_> {
        VolumeView::Compact(self)
    }
}

/// A container, as [`ContainerFacts`] (its host ports not yet defaulted).
impl Item for compact::Container {
    type View<'a> = ContainerFacts<'a>;
    fn from_json(json: &Value) -> ContainerFacts<'_> {
        ContainerFacts::read(json)
    }
    fn view(&self) -> ContainerFacts<'_> {
        ContainerFacts {
            name: &self.name.0,
            sc: SecurityContext::compact(&self.sc),
            ports: Seq::compact(&self.ports),
            hosts: Hosts {
                handlers: [None; 5],
                compact: &self.hosts,
            },
            host_ports_default: false,
        }
    }
}

/// `securityContext.capabilities`; its lists are found when a rule asks for them.
#[derive(Clone, Copy)]
enum Caps<'a> {
    Json(&'a Object),
    Compact(&'a compact::Caps),
}

impl<'a> Caps<'a> {
    fn drop(self) -> Seq<'a, compact::Text> {
        match self {
            Caps::Json(caps) => Seq::json(array(caps.get("drop"))),
            Caps::Compact(caps) => Seq::compact(&caps.drop),
        }
    }

    fn add(self) -> Seq<'a, compact::Text> {
        match self {
            Caps::Json(caps) => Seq::json(array(caps.get("add"))),
            Caps::Compact(caps) => Seq::compact(&caps.add),
        }
    }
}

/// A `seccompProfile` or `appArmorProfile`, its fields found when a rule asks for them.
#[derive(Clone, Copy)]
enum Profile<'a> {
    Json(&'a Object),
    Compact(&'a compact::Profile),
}

impl<'a> Profile<'a> {
    /// Its `type` (`""` when not a string).
    fn kind(self) -> &'a str {
        match self {
            Profile::Json(p) => text(p.get("type")),
            Profile::Compact(p) => &p.kind.0,
        }
    }

    /// Whether a `localhostProfile` is set (to anything but `null`).
    fn localhost_profile(self) -> bool {
        match self {
            Profile::Json(p) => p.get("localhostProfile").is_some_and(|v| !v.is_null()),
            Profile::Compact(p) => p.localhost_profile,
        }
    }
}

/// `seLinuxOptions`: its `type`, and whether `user` and `role` are set (non-empty strings).
#[derive(Clone, Copy)]
struct SeLinux<'a> {
    kind: &'a str,
    user: bool,
    role: bool,
}

impl<'a> SeLinux<'a> {
    fn json(opts: &'a Object) -> Self {
        SeLinux {
            kind: text(opts.get("type")),
            user: !text(opts.get("user")).is_empty(),
            role: !text(opts.get("role")).is_empty(),
        }
    }
}

/// One volume, from JSON or compact.
#[derive(Clone, Copy)]
enum VolumeView<'a> {
    Json(&'a Value),
    Compact(&'a compact::Volume),
}

/// Bit `i` of a compact volume's sources: `ALLOWED_VOLUME_SOURCES[i]`, then
/// `RESTRICTED_VOLUME_SOURCES` from bit 16.
const RESTRICTED_BITS: u32 = 16;
const HOST_PATH_BIT: u64 = 1 << RESTRICTED_BITS;

/// The source bit (see [`RESTRICTED_BITS`]) of a volume field the checks care about.
pub(super) fn volume_source_bit(key: &str) -> Option<u64> {
    if let Some(i) = ALLOWED_VOLUME_SOURCES.iter().position(|s| *s == key) {
        return Some(1 << i);
    }
    RESTRICTED_VOLUME_SOURCES
        .iter()
        .position(|s| *s == key)
        .map(|i| 1 << (RESTRICTED_BITS as usize + i))
}

impl<'a> VolumeView<'a> {
    fn name(self) -> &'a str {
        match self {
            VolumeView::Json(v) => text(v.get("name")),
            VolumeView::Compact(v) => &v.name.0,
        }
    }

    fn host_path(self) -> bool {
        match self {
            VolumeView::Json(v) => v.as_object().is_some_and(|v| has_source(v, "hostPath")),
            VolumeView::Compact(v) => v.sources & HOST_PATH_BIT != 0,
        }
    }

    /// Whether the restricted level accepts the volume (see [`volume_allowed`]).
    fn allowed(self) -> bool {
        match self {
            VolumeView::Json(v) => volume_allowed(v),
            VolumeView::Compact(v) => {
                let allowed = (1u64 << ALLOWED_VOLUME_SOURCES.len()) - 1;
                v.is_object && (v.sources & allowed != 0 || v.sources >> RESTRICTED_BITS == 0)
            }
        }
    }

    /// The first restricted source the volume sets, or `unknown`.
    fn restricted_kind(self) -> &'static str {
        let found = match self {
            VolumeView::Json(v) => v.as_object().and_then(|v| {
                RESTRICTED_VOLUME_SOURCES
                    .iter()
                    .find(|source| has_source(v, source))
            }),
            VolumeView::Compact(v) => RESTRICTED_VOLUME_SOURCES
                .get((v.sources >> RESTRICTED_BITS).trailing_zeros() as usize),
        };
        found.copied().unwrap_or("unknown")
    }
}

/// The fields of a (pod or container) `securityContext` the checks read, from one pass over it.
#[derive(Default, Clone, Copy)]
struct SecurityContext<'a> {
    privileged: bool,
    allow_privilege_escalation: Option<bool>,
    capabilities: Option<Caps<'a>>,
    /// `procMount` unless `null`; `""` when not a string.
    proc_mount: Option<&'a str>,
    run_as_non_root: Option<bool>,
    run_as_user_zero: bool,
    se_linux: Option<SeLinux<'a>>,
    seccomp: Option<Profile<'a>>,
    app_armor: Option<Profile<'a>>,
    host_process: bool,
    sysctls: Seq<'a, compact::Sysctl>,
}

impl<'a> SecurityContext<'a> {
    fn read(sc: Option<&'a Object>) -> Self {
        let mut out = SecurityContext::default();
        let Some(sc) = sc else {
            return out;
        };
        for (key, value) in sc {
            match key.as_str() {
                "privileged" => out.privileged = value.as_bool() == Some(true),
                "allowPrivilegeEscalation" => out.allow_privilege_escalation = value.as_bool(),
                "capabilities" => out.capabilities = value.as_object().map(Caps::Json),
                "procMount" if !value.is_null() => {
                    out.proc_mount = Some(value.as_str().unwrap_or(""))
                }
                "runAsNonRoot" => out.run_as_non_root = value.as_bool(),
                "runAsUser" => out.run_as_user_zero = value.as_i64() == Some(0),
                "seLinuxOptions" => out.se_linux = value.as_object().map(SeLinux::json),
                "seccompProfile" => out.seccomp = value.as_object().map(Profile::Json),
                "appArmorProfile" => out.app_armor = value.as_object().map(Profile::Json),
                "windowsOptions" => out.host_process = is_true(value.get("hostProcess")),
                "sysctls" => out.sysctls = Seq::json(array(Some(value))),
                _ => {}
            }
        }
        out
    }

    fn compact(sc: &'a compact::SecurityContext) -> Self {
        SecurityContext {
            privileged: sc.privileged,
            allow_privilege_escalation: sc.allow_privilege_escalation,
            capabilities: sc.capabilities.as_ref().map(Caps::Compact),
            proc_mount: sc.proc_mount.as_ref().map(|p| &*p.0),
            run_as_non_root: sc.run_as_non_root,
            run_as_user_zero: sc.run_as_user_zero,
            se_linux: sc.se_linux.as_ref().map(|o| SeLinux {
                kind: &o.kind.0,
                user: o.user,
                role: o.role,
            }),
            seccomp: sc.seccomp.as_ref().map(Profile::Compact),
            app_armor: sc.app_armor.as_ref().map(Profile::Compact),
            host_process: sc.host_process,
            sysctls: Seq::compact(&sc.sysctls),
        }
    }
}

/// The hosts a container's probes and lifecycle handlers name: from JSON, its three probes and
/// `postStart`/`preStop` handlers; compact, the non-empty hosts themselves.
#[derive(Default, Clone, Copy)]
struct Hosts<'a> {
    handlers: [Option<&'a Object>; 5],
    compact: &'a [compact::Text],
}

impl<'a> Hosts<'a> {
    fn iter(self) -> impl Iterator<Item = &'a str> {
        self.handlers
            .into_iter()
            .flat_map(handler_hosts)
            .chain(self.compact.iter().map(|h| &*h.0))
    }
}

/// One container (init, regular or ephemeral) as the checks see it.
#[derive(Default, Clone, Copy)]
struct ContainerFacts<'a> {
    name: &'a str,
    sc: SecurityContext<'a>,
    ports: Seq<'a, compact::Port>,
    hosts: Hosts<'a>,
    /// Unset host ports take the container port (see [`PodFacts::read`]).
    host_ports_default: bool,
}

impl<'a> ContainerFacts<'a> {
    fn read(container: &'a Value) -> Self {
        let mut out = ContainerFacts::default();
        let Some(container) = container.as_object() else {
            return out;
        };
        for (key, value) in container {
            match key.as_str() {
                "name" => out.name = value.as_str().unwrap_or(""),
                "securityContext" => out.sc = SecurityContext::read(value.as_object()),
                "ports" => out.ports = Seq::json(array(Some(value))),
                "livenessProbe" => out.hosts.handlers[0] = value.as_object(),
                "readinessProbe" => out.hosts.handlers[1] = value.as_object(),
                "startupProbe" => out.hosts.handlers[2] = value.as_object(),
                "lifecycle" => {
                    [out.hosts.handlers[3], out.hosts.handlers[4]] =
                        lifecycle_handlers(value.as_object())
                }
                _ => {}
            }
        }
        out
    }
}

/// A pod's annotations, from JSON or compact (which keeps only those the checks read).
#[derive(Default, Clone, Copy)]
struct Annotations<'a> {
    json: Option<&'a Object>,
    compact: &'a [(compact::Text, compact::Text)],
}

impl<'a> Annotations<'a> {
    /// Each annotation and its value (`""` when not a string).
    fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.json
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), text(Some(v))))
            .chain(self.compact.iter().map(|(k, v)| (&*k.0, &*v.0)))
    }

    fn get(self, key: &str) -> Option<&'a str> {
        match self.json {
            Some(json) => json.get(key).map(|v| text(Some(v))),
            None => self
                .compact
                .iter()
                .find(|(k, _)| *k.0 == *key)
                .map(|(_, v)| &*v.0),
        }
    }
}

/// The annotations the checks read (AppArmor and seccomp ones): what the compact form keeps.
pub(super) fn annotation_read(key: &str) -> bool {
    key.starts_with(APPARMOR_PREFIX)
        || key.starts_with(SECCOMP_CONTAINER_PREFIX)
        || key == SECCOMP_POD_ANNOTATION
}

/// The pod-level fields the checks read, from one pass over the spec.
pub(super) struct PodFacts<'a> {
    annotations: Annotations<'a>,
    sc: SecurityContext<'a>,
    windows: bool,
    user_namespace: bool,
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    volumes: Seq<'a, compact::Volume>,
    containers: [Seq<'a, compact::Container>; 3],
    host_ports_default: bool,
    /// The apiserver copies a container's deprecated AppArmor annotation into its
    /// `appArmorProfile` field (Linux Pods only, not templates).
    app_armor_annotations_sync: bool,
}

impl<'a> PodFacts<'a> {
    /// `pod_defaults`: apply the apiserver's defaulting of Pods (not of pod templates) that
    /// changes what the checks see: a `hostNetwork` pod's container ports get `hostPort`s.
    pub(super) fn read(metadata: &'a Value, spec: &'a Value, pod_defaults: bool) -> Self {
        let mut pod = PodFacts {
            annotations: Annotations {
                json: object(metadata.get("annotations")),
                compact: &[],
            },
            sc: SecurityContext::default(),
            windows: false,
            user_namespace: false,
            host_network: false,
            host_pid: false,
            host_ipc: false,
            volumes: Seq::default(),
            containers: [Seq::default(); 3],
            host_ports_default: false,
            app_armor_annotations_sync: false,
        };
        for (key, value) in spec.as_object().into_iter().flatten() {
            match key.as_str() {
                "securityContext" => pod.sc = SecurityContext::read(value.as_object()),
                "os" => pod.windows = text(value.get("name")) == "windows",
                "hostUsers" => pod.user_namespace = value.as_bool() == Some(false),
                "hostNetwork" => pod.host_network = value.as_bool() == Some(true),
                "hostPID" => pod.host_pid = value.as_bool() == Some(true),
                "hostIPC" => pod.host_ipc = value.as_bool() == Some(true),
                "volumes" => pod.volumes = Seq::json(array(Some(value))),
                "initContainers" => pod.containers[0] = Seq::json(array(Some(value))),
                "containers" => pod.containers[1] = Seq::json(array(Some(value))),
                "ephemeralContainers" => pod.containers[2] = Seq::json(array(Some(value))),
                _ => {}
            }
        }
        pod.defaults(pod_defaults)
    }

    /// The same facts from a pod's compact form.
    pub(super) fn compact(pod: &'a compact::CompactPod) -> Self {
        let spec = &pod.spec;
        PodFacts {
            annotations: Annotations {
                json: None,
                compact: &pod.annotations,
            },
            sc: SecurityContext::compact(&spec.sc),
            windows: spec.windows,
            user_namespace: spec.user_namespace,
            host_network: spec.host_network,
            host_pid: spec.host_pid,
            host_ipc: spec.host_ipc,
            volumes: Seq::compact(&spec.volumes),
            containers: [
                Seq::compact(&spec.containers[0]),
                Seq::compact(&spec.containers[1]),
                Seq::compact(&spec.containers[2]),
            ],
            host_ports_default: false,
            app_armor_annotations_sync: false,
        }
        .defaults(pod.pod_defaults)
    }

    fn defaults(mut self, pod_defaults: bool) -> Self {
        self.host_ports_default = pod_defaults && self.host_network;
        self.app_armor_annotations_sync = pod_defaults && !self.windows;
        self
    }

    fn containers(&self) -> impl Iterator<Item = ContainerFacts<'a>> + '_ {
        self.containers
            .iter()
            .enumerate()
            .flat_map(|(i, list)| list.iter().map(move |c| (i, c)))
            .map(|(i, mut facts)| {
                // Not for ephemeral containers (list 2), as in the apiserver.
                facts.host_ports_default = i < 2 && self.host_ports_default;
                facts
            })
    }

    /// [`PodFacts::containers`] for the fast pass, each built where it is used (no iterator
    /// adapters move it around), until `f` says stop (`false`).
    fn each_container(&self, mut f: impl FnMut(&ContainerFacts<'a>) -> bool) {
        for (i, list) in self.containers.iter().enumerate() {
            // Not for ephemeral containers (list 2), as in the apiserver.
            let host_ports_default = i < 2 && self.host_ports_default;
            for json in list.json {
                let mut container = ContainerFacts::read(json);
                container.host_ports_default = host_ports_default;
                if !f(&container) {
                    return;
                }
            }
            for compact in list.compact {
                let mut container = compact.view();
                container.host_ports_default = host_ports_default;
                if !f(&container) {
                    return;
                }
            }
        }
    }

    /// The AppArmor profile type the apiserver gives a container that has no `appArmorProfile`
    /// field, from its deprecated annotation. Only `unconfined` matters to the checks (the other
    /// values become allowed types); it is not copied when the pod's own profile is the same.
    fn app_armor_from_annotation(&self, container: &str) -> Option<&'static str> {
        if !self.app_armor_annotations_sync {
            return None;
        }
        let (_, value) = self
            .annotations
            .iter()
            .find(|(k, _)| k.strip_prefix(APPARMOR_PREFIX) == Some(container))?;
        let pod_unconfined = self
            .sc
            .app_armor
            .is_some_and(|p| p.kind() == "Unconfined" && !p.localhost_profile());
        (value == "unconfined" && !pod_unconfined).then_some("Unconfined")
    }

    fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations.get(key)
    }
}

// ------------------------------------------------------------------ the fast pass

/// The steps (bit `i` for `steps[i]`) the pod fails: the fast pass, which reads each container
/// once and allocates nothing. A set bit always has a description (see [`describe`]).
pub(super) fn flag(steps: &[Step], pod: &PodFacts<'_>) -> u64 {
    let mut flagged: u64 = 0;
    let mut container_rules: u64 = 0;
    for (i, step) in steps.iter().enumerate().take(64) {
        let bit = 1u64 << i;
        if step.rule.exempt(pod) {
            continue;
        }
        if step.rule.pod_violated(pod) {
            flagged |= bit;
        } else if step.rule.reads_containers() {
            container_rules |= bit;
        }
    }
    if container_rules != 0 {
        pod.each_container(|container| {
            let pending = container_rules & !flagged;
            let mut rest = pending;
            while rest != 0 {
                let i = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if steps
                    .get(i)
                    .is_some_and(|step| step.rule.container_violated(pod, container))
                {
                    flagged |= 1u64 << i;
                }
            }
            container_rules & !flagged != 0
        });
    }
    flagged
}

/// Words the failures `flagged` (from [`flag`]) marks, in reporting order, as upstream does.
pub(super) fn describe(steps: &[Step], pod: &PodFacts<'_>, flagged: u64, out: &mut Vec<Forbidden>) {
    for (i, step) in steps.iter().enumerate().take(64) {
        if flagged & (1u64 << i) != 0 {
            if let Some((reason, detail)) = step.rule.describe(pod) {
                out.push(Forbidden {
                    check_id: step.id,
                    reason,
                    detail,
                });
            }
        }
    }
}

fn valid_seccomp_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn valid_seccomp_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

fn allowed_app_armor_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn allowed_app_armor_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn se_linux_bad(opts: SeLinux<'_>, allowed_types: &[&str]) -> bool {
    !allowed_types.contains(&opts.kind) || opts.user || opts.role
}

fn proc_mount_bad(value: Option<&str>) -> bool {
    value.is_some_and(|v| v != "Default")
}

/// A port's `hostPort`; with `defaulted`, an unset one takes the `containerPort`, as the
/// apiserver defaults it in Pods with `hostNetwork: true`.
fn host_port(port: PortView<'_>, defaulted: bool) -> i64 {
    match port.host() {
        0 if defaulted => port.container(),
        set => set,
    }
}

/// The non-empty `host`s of a probe or lifecycle handler's `httpGet` and `tcpSocket`.
fn handler_hosts(handler: Option<&Object>) -> impl Iterator<Item = &str> {
    handler.into_iter().flat_map(|h| {
        ["httpGet", "tcpSocket"]
            .into_iter()
            .filter_map(move |kind| object(h.get(kind)))
            .map(|action| text(action.get("host")))
            .filter(|host| !host.is_empty())
    })
}

fn lifecycle_handlers(lifecycle: Option<&Object>) -> [Option<&Object>; 2] {
    match lifecycle {
        Some(l) => [object(l.get("postStart")), object(l.get("preStop"))],
        None => [None, None],
    }
}

fn drops_all(caps: Caps<'_>) -> bool {
    caps.drop().iter().any(|c| c == "ALL")
}

fn adds(caps: Option<Caps<'_>>) -> impl Iterator<Item = &str> {
    caps.into_iter().flat_map(|c| c.add().iter())
}

const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn has_source(volume: &Object, key: &str) -> bool {
    volume.get(key).is_some_and(|v| !v.is_null())
}

/// Whether the restricted level accepts a volume. A volume that names no source at all is an
/// `emptyDir`: the apiserver defaults it so before admission (and upstream's fixtures rely on it).
fn volume_allowed(volume: &Value) -> bool {
    let mut restricted = false;
    for (key, value) in volume.as_object().into_iter().flatten() {
        if value.is_null() {
            continue;
        }
        if ALLOWED_VOLUME_SOURCES.contains(&key.as_str()) {
            return true;
        }
        restricted |= RESTRICTED_VOLUME_SOURCES.contains(&key.as_str());
    }
    volume.is_object() && !restricted
}

impl Rule {
    /// Pod-wide exemptions (Windows pods, pods in a user namespace) that make the check pass.
    fn exempt(self, pod: &PodFacts<'_>) -> bool {
        match self {
            Rule::AllowPrivilegeEscalation { windows_exempt }
            | Rule::CapabilitiesRestricted { windows_exempt }
            | Rule::SeccompRestricted { windows_exempt } => windows_exempt && pod.windows,
            Rule::ProcMount {
                relaxed_in_user_namespace,
            }
            | Rule::RunAsNonRoot {
                relaxed_in_user_namespace,
            }
            | Rule::RunAsUser {
                relaxed_in_user_namespace,
            } => relaxed_in_user_namespace && pod.user_namespace,
            _ => false,
        }
    }

    fn reads_containers(self) -> bool {
        !matches!(
            self,
            Rule::HostNamespaces
                | Rule::HostPathVolumes
                | Rule::Sysctls { .. }
                | Rule::RestrictedVolumes
                | Rule::SeccompAnnotations
        )
    }

    /// Whether the pod-level fields alone violate the check.
    fn pod_violated(self, pod: &PodFacts<'_>) -> bool {
        match self {
            Rule::AppArmor => {
                pod.sc
                    .app_armor
                    .is_some_and(|p| !allowed_app_armor_type(p.kind()))
                    || pod.annotations.iter().any(|(k, v)| {
                        k.starts_with(APPARMOR_PREFIX) && !allowed_app_armor_annotation(v)
                    })
            }
            Rule::HostNamespaces => pod.host_network || pod.host_pid || pod.host_ipc,
            Rule::HostPathVolumes => pod.volumes.iter().any(VolumeView::host_path),
            Rule::RestrictedVolumes => pod.volumes.iter().any(|v| !v.allowed()),
            Rule::SeLinux { allowed_types } => pod
                .sc
                .se_linux
                .is_some_and(|o| se_linux_bad(o, allowed_types)),
            Rule::SeccompAnnotations => {
                pod.annotation(SECCOMP_POD_ANNOTATION)
                    .is_some_and(|v| !valid_seccomp_annotation(v))
                    || pod.annotations.iter().any(|(k, v)| {
                        k.strip_prefix(SECCOMP_CONTAINER_PREFIX)
                            .is_some_and(|name| {
                                !valid_seccomp_annotation(v)
                                    && pod.containers().any(|c| c.name == name)
                            })
                    })
            }
            Rule::SeccompBaseline | Rule::SeccompRestricted { .. } => pod
                .sc
                .seccomp
                .is_some_and(|p| !valid_seccomp_type(p.kind())),
            Rule::Sysctls { allowed } => pod.sc.sysctls.iter().any(|name| !allowed.contains(&name)),
            Rule::WindowsHostProcess => pod.sc.host_process,
            Rule::RunAsNonRoot { .. } => pod.sc.run_as_non_root == Some(false),
            Rule::RunAsUser { .. } => pod.sc.run_as_user_zero,
            Rule::CapabilitiesBaseline
            | Rule::HostPorts
            | Rule::HostProbesAndLifecycle
            | Rule::Privileged
            | Rule::ProcMount { .. }
            | Rule::AllowPrivilegeEscalation { .. }
            | Rule::CapabilitiesRestricted { .. } => false,
        }
    }

    /// Whether one container violates the check (given the pod-level fields).
    fn container_violated(self, pod: &PodFacts<'_>, c: &ContainerFacts<'_>) -> bool {
        let sc = &c.sc;
        match self {
            Rule::AppArmor => sc
                .app_armor
                .is_some_and(|p| !allowed_app_armor_type(p.kind())),
            Rule::CapabilitiesBaseline => {
                adds(sc.capabilities).any(|cap| !CAPABILITIES_BASELINE.contains(&cap))
            }
            Rule::HostPorts => c
                .ports
                .iter()
                .any(|p| host_port(p, c.host_ports_default) != 0),
            Rule::HostProbesAndLifecycle => c.hosts.iter().next().is_some(),
            Rule::Privileged => sc.privileged,
            Rule::ProcMount { .. } => proc_mount_bad(sc.proc_mount),
            Rule::SeLinux { allowed_types } => {
                sc.se_linux.is_some_and(|o| se_linux_bad(o, allowed_types))
            }
            Rule::SeccompBaseline => sc.seccomp.is_some_and(|p| !valid_seccomp_type(p.kind())),
            Rule::WindowsHostProcess => sc.host_process,
            Rule::AllowPrivilegeEscalation { .. } => sc.allow_privilege_escalation != Some(false),
            Rule::CapabilitiesRestricted { .. } => match sc.capabilities {
                None => true,
                Some(caps) => {
                    !drops_all(caps) || adds(Some(caps)).any(|cap| cap != "NET_BIND_SERVICE")
                }
            },
            Rule::RunAsNonRoot { .. } => match sc.run_as_non_root {
                Some(value) => !value,
                None => pod.sc.run_as_non_root != Some(true),
            },
            Rule::RunAsUser { .. } => sc.run_as_user_zero,
            Rule::SeccompRestricted { .. } => match sc.seccomp {
                Some(p) => !valid_seccomp_type(p.kind()),
                None => !pod.sc.seccomp.is_some_and(|p| valid_seccomp_type(p.kind())),
            },
            Rule::HostNamespaces
            | Rule::HostPathVolumes
            | Rule::RestrictedVolumes
            | Rule::SeccompAnnotations
            | Rule::Sysctls { .. } => false,
        }
    }

    /// The reason and detail of a violation, worded as upstream words it; `None` if the pod
    /// does not violate the check after all.
    fn describe(self, pod: &PodFacts<'_>) -> Option<(&'static str, String)> {
        match self {
            Rule::AppArmor => describe_app_armor(pod),
            Rule::CapabilitiesBaseline => {
                let mut containers = Vec::new();
                let mut caps = BTreeSet::new();
                for c in pod.containers() {
                    let mut bad = false;
                    for cap in adds(c.sc.capabilities) {
                        if !CAPABILITIES_BASELINE.contains(&cap) {
                            bad = true;
                            caps.insert(cap);
                        }
                    }
                    if bad {
                        containers.push(c.name);
                    }
                }
                (!containers.is_empty()).then(|| {
                    (
                        "non-default capabilities",
                        format!(
                            "{} {} must not include {} in securityContext.capabilities.add",
                            pluralize("container", "containers", containers.len()),
                            join_quote(&containers),
                            join_quote_set(&caps),
                        ),
                    )
                })
            }
            Rule::HostNamespaces => {
                let mut found = Vec::new();
                for (set, label) in [
                    (pod.host_network, "hostNetwork=true"),
                    (pod.host_pid, "hostPID=true"),
                    (pod.host_ipc, "hostIPC=true"),
                ] {
                    if set {
                        found.push(label);
                    }
                }
                (!found.is_empty()).then(|| ("host namespaces", found.join(", ")))
            }
            Rule::HostPathVolumes => {
                let names: Vec<&str> = pod
                    .volumes
                    .iter()
                    .filter(|v| v.host_path())
                    .map(VolumeView::name)
                    .collect();
                (!names.is_empty()).then(|| {
                    (
                        "hostPath volumes",
                        format!(
                            "{} {}",
                            pluralize("volume", "volumes", names.len()),
                            join_quote(&names)
                        ),
                    )
                })
            }
            Rule::HostPorts => {
                let mut containers = Vec::new();
                let mut ports = BTreeSet::new();
                for c in pod.containers() {
                    let mut bad = false;
                    for port in c.ports.iter() {
                        let hp = host_port(port, c.host_ports_default);
                        if hp != 0 {
                            bad = true;
                            ports.insert(hp.to_string());
                        }
                    }
                    if bad {
                        containers.push(c.name);
                    }
                }
                (!containers.is_empty()).then(|| {
                    (
                        "hostPort",
                        format!(
                            "{} {} {} {} {}",
                            pluralize("container", "containers", containers.len()),
                            join_quote(&containers),
                            pluralize("uses", "use", containers.len()),
                            pluralize("hostPort", "hostPorts", ports.len()),
                            ports.into_iter().collect::<Vec<_>>().join(", "),
                        ),
                    )
                })
            }
            Rule::HostProbesAndLifecycle => {
                let mut containers = BTreeSet::new();
                let mut hosts = BTreeSet::new();
                for c in pod.containers() {
                    for host in c.hosts.iter() {
                        containers.insert(c.name);
                        hosts.insert(host);
                    }
                }
                (!containers.is_empty()).then(|| {
                    (
                        "probe or lifecycle host",
                        format!(
                            "{} {} {} {} {}",
                            pluralize("container", "containers", containers.len()),
                            join_quote_set(&containers),
                            pluralize("uses", "use", containers.len()),
                            pluralize(
                                "probe or lifecycle host",
                                "probe or lifecycle hosts",
                                hosts.len()
                            ),
                            join_quote_set(&hosts),
                        ),
                    )
                })
            }
            Rule::Privileged => {
                let names: Vec<&str> = pod
                    .containers()
                    .filter(|c| c.sc.privileged)
                    .map(|c| c.name)
                    .collect();
                (!names.is_empty()).then(|| {
                    (
                        "privileged",
                        format!(
                            "{} {} must not set securityContext.privileged=true",
                            pluralize("container", "containers", names.len()),
                            join_quote(&names)
                        ),
                    )
                })
            }
            Rule::ProcMount { .. } => {
                let mut containers = Vec::new();
                let mut types = BTreeSet::new();
                for c in pod.containers() {
                    if proc_mount_bad(c.sc.proc_mount) {
                        containers.push(c.name);
                        types.insert(c.sc.proc_mount.unwrap_or(""));
                    }
                }
                (!containers.is_empty()).then(|| {
                    (
                        "procMount",
                        format!(
                            "{} {} must not set securityContext.procMount to {}",
                            pluralize("container", "containers", containers.len()),
                            join_quote(&containers),
                            join_quote_set(&types),
                        ),
                    )
                })
            }
            Rule::SeLinux { allowed_types } => describe_se_linux(pod, allowed_types),
            Rule::SeccompAnnotations => {
                let mut forbidden = BTreeSet::new();
                if let Some(value) = pod.annotation(SECCOMP_POD_ANNOTATION) {
                    if !valid_seccomp_annotation(value) {
                        forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(value)));
                    }
                }
                for c in pod.containers() {
                    let key = format!("{SECCOMP_CONTAINER_PREFIX}{}", c.name);
                    if let Some(value) = pod.annotation(&key) {
                        if !valid_seccomp_annotation(value) {
                            forbidden.insert(format!("{key}={}", go_quote(value)));
                        }
                    }
                }
                (!forbidden.is_empty()).then(|| {
                    (
                        "seccompProfile",
                        format!(
                            "forbidden {} {}",
                            pluralize("annotation", "annotations", forbidden.len()),
                            forbidden.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })
            }
            Rule::SeccompBaseline => describe_seccomp(pod, false),
            Rule::SeccompRestricted { .. } => describe_seccomp(pod, true),
            Rule::Sysctls { allowed } => {
                let names: Vec<&str> = pod
                    .sc
                    .sysctls
                    .iter()
                    .filter(|name| !allowed.contains(name))
                    .collect();
                (!names.is_empty()).then(|| ("forbidden sysctls", names.join(", ")))
            }
            Rule::WindowsHostProcess => {
                let names: Vec<&str> = pod
                    .containers()
                    .filter(|c| c.sc.host_process)
                    .map(|c| c.name)
                    .collect();
                let setters = setters(pod.sc.host_process, &names);
                (!setters.is_empty()).then(|| {
                    (
                        "hostProcess",
                        format!(
                            "{} must not set securityContext.windowsOptions.hostProcess=true",
                            setters.join(" and ")
                        ),
                    )
                })
            }
            Rule::AllowPrivilegeEscalation { .. } => {
                let names: Vec<&str> = pod
                    .containers()
                    .filter(|c| c.sc.allow_privilege_escalation != Some(false))
                    .map(|c| c.name)
                    .collect();
                (!names.is_empty()).then(|| {
                    (
                        "allowPrivilegeEscalation != false",
                        format!(
                            "{} {} must set securityContext.allowPrivilegeEscalation=false",
                            pluralize("container", "containers", names.len()),
                            join_quote(&names)
                        ),
                    )
                })
            }
            Rule::CapabilitiesRestricted { .. } => describe_capabilities_restricted(pod),
            Rule::RestrictedVolumes => describe_restricted_volumes(pod),
            Rule::RunAsNonRoot { .. } => describe_run_as_non_root(pod),
            Rule::RunAsUser { .. } => {
                let names: Vec<&str> = pod
                    .containers()
                    .filter(|c| c.sc.run_as_user_zero)
                    .map(|c| c.name)
                    .collect();
                let setters = setters(pod.sc.run_as_user_zero, &names);
                (!setters.is_empty()).then(|| {
                    (
                        "runAsUser=0",
                        format!("{} must not set runAsUser=0", setters.join(" and ")),
                    )
                })
            }
        }
    }
}

/// `pod` (when the pod itself is at fault) and `container(s) "a", "b"`.
fn setters(pod_at_fault: bool, containers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if pod_at_fault {
        out.push("pod".to_owned());
    }
    if !containers.is_empty() {
        out.push(format!(
            "{} {}",
            pluralize("container", "containers", containers.len()),
            join_quote(containers)
        ));
    }
    out
}

fn describe_app_armor(pod: &PodFacts<'_>) -> Option<(&'static str, String)> {
    let mut values = BTreeSet::new();
    let pod_bad = match pod.sc.app_armor {
        Some(p) if !allowed_app_armor_type(p.kind()) => {
            values.insert(p.kind().to_owned());
            true
        }
        _ => false,
    };
    let mut containers = Vec::new();
    for c in pod.containers() {
        let effective = match c.sc.app_armor {
            Some(p) => Some(p.kind()),
            None => pod.app_armor_from_annotation(c.name),
        };
        if let Some(t) = effective {
            if !allowed_app_armor_type(t) {
                containers.push(c.name);
                values.insert(t.to_owned());
            }
        }
    }
    let mut setters = setters(pod_bad, &containers);
    let mut annotations: Vec<String> = pod
        .annotations
        .iter()
        .filter(|(k, v)| k.starts_with(APPARMOR_PREFIX) && !allowed_app_armor_annotation(v))
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    let mut values: Vec<String> = values.into_iter().collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
        values.append(&mut annotations);
    }
    if setters.is_empty() {
        return None;
    }
    Some((
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    ))
}

fn describe_se_linux(pod: &PodFacts<'_>, allowed_types: &[&str]) -> Option<(&'static str, String)> {
    let mut types = BTreeSet::new();
    let mut user = false;
    let mut role = false;
    let mut judge = |opts: SeLinux<'_>| {
        let mut valid = true;
        if !allowed_types.contains(&opts.kind) {
            valid = false;
            types.insert(opts.kind.to_owned());
        }
        if opts.user {
            valid = false;
            user = true;
        }
        if opts.role {
            valid = false;
            role = true;
        }
        valid
    };
    let pod_bad = pod.sc.se_linux.is_some_and(|o| !judge(o));
    let mut containers = Vec::new();
    for c in pod.containers() {
        if let Some(o) = c.sc.se_linux {
            if !judge(o) {
                containers.push(c.name);
            }
        }
    }
    let setters = setters(pod_bad, &containers);
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote_set(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_owned());
    }
    if role {
        data.push("role may not be set".to_owned());
    }
    Some((
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    ))
}

fn describe_seccomp(pod: &PodFacts<'_>, restricted: bool) -> Option<(&'static str, String)> {
    let mut values = BTreeSet::new();
    let mut pod_valid = false;
    let pod_bad = match pod.sc.seccomp {
        Some(p) if !valid_seccomp_type(p.kind()) => {
            values.insert(p.kind());
            true
        }
        Some(_) => {
            pod_valid = true;
            false
        }
        None => false,
    };
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.sc.seccomp {
            Some(p) => {
                if !valid_seccomp_type(p.kind()) {
                    explicit.push(c.name);
                    values.insert(p.kind());
                }
            }
            None => {
                if !pod_valid {
                    implicit.push(c.name);
                }
            }
        }
    }
    let setters = setters(pod_bad, &explicit);
    if !setters.is_empty() {
        return Some((
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote_set(&values)
            ),
        ));
    }
    if restricted && !implicit.is_empty() {
        return Some((
            "seccompProfile",
            format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        ));
    }
    None
}

fn describe_capabilities_restricted(pod: &PodFacts<'_>) -> Option<(&'static str, String)> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in pod.containers() {
        let Some(caps) = c.sc.capabilities else {
            missing_drop.push(c.name);
            continue;
        };
        if !drops_all(caps) {
            missing_drop.push(c.name);
        }
        let mut bad = false;
        for cap in adds(Some(caps)) {
            if cap != "NET_BIND_SERVICE" {
                bad = true;
                forbidden.insert(cap);
            }
        }
        if bad {
            adding.push(c.name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} {} must set securityContext.capabilities.drop=[\"ALL\"]",
            pluralize("container", "containers", missing_drop.len()),
            join_quote(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", adding.len()),
            join_quote(&adding),
            join_quote_set(&forbidden)
        ));
    }
    (!details.is_empty()).then(|| ("unrestricted capabilities", details.join("; ")))
}

fn describe_restricted_volumes(pod: &PodFacts<'_>) -> Option<(&'static str, String)> {
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for volume in pod.volumes.iter() {
        if volume.allowed() {
            continue;
        }
        names.push(volume.name());
        types.insert(volume.restricted_kind());
    }
    (!names.is_empty()).then(|| {
        (
            "restricted volume types",
            format!(
                "{} {} {} {} {}",
                pluralize("volume", "volumes", names.len()),
                join_quote(&names),
                pluralize("uses", "use", names.len()),
                pluralize(
                    "restricted volume type",
                    "restricted volume types",
                    types.len()
                ),
                join_quote_set(&types)
            ),
        )
    })
}

fn describe_run_as_non_root(pod: &PodFacts<'_>) -> Option<(&'static str, String)> {
    let pod_bad = pod.sc.run_as_non_root == Some(false);
    let pod_true = pod.sc.run_as_non_root == Some(true);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.sc.run_as_non_root {
            Some(false) => explicit.push(c.name),
            Some(true) => {}
            None => {
                if !pod_true {
                    implicit.push(c.name);
                }
            }
        }
    }
    let setters = setters(pod_bad, &explicit);
    if !setters.is_empty() {
        return Some((
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        ));
    }
    (!implicit.is_empty()).then(|| {
        (
            "runAsNonRoot != true",
            format!(
                "pod or {} {} must set securityContext.runAsNonRoot=true",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        )
    })
}

// ------------------------------------------------------------------ wording helpers

fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `"a", "b"` (no escaping, as upstream), or nothing for an empty list.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    join_quote_iter(items.iter().map(AsRef::as_ref))
}

fn join_quote_set<S: AsRef<str>>(items: &BTreeSet<S>) -> String {
    join_quote_iter(items.iter().map(AsRef::as_ref))
}

fn join_quote_iter<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        out.push_str(if i == 0 { "\"" } else { "\", \"" });
        out.push_str(item);
    }
    if !out.is_empty() {
        out.push('"');
    }
    out
}

/// A double-quoted string literal the way Go's `%q` verb writes it: printable characters as
/// they are, `"` and `\` escaped, the usual short escapes, other characters as `\xHH`, `\uHHHH`
/// or `\UHHHHHHHH`. Go's notion of "printable" is approximated: control characters, Unicode
/// spaces other than U+0020 and the common format characters are escaped.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e000}'..='\u{f8ff}'
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn checks_are_listed_in_reporting_order() {
        let ids = |level| {
            CHECKS
                .iter()
                .filter(|d| d.level == level)
                .map(|d| d.id)
                .collect::<Vec<_>>()
        };
        for level in [CheckLevel::Baseline, CheckLevel::Restricted] {
            let listed = ids(level);
            let mut sorted = listed.clone();
            sorted.sort_unstable();
            assert_eq!(listed, sorted, "byte order of {level:?} IDs");
        }
        let first_restricted = CHECKS
            .iter()
            .position(|d| d.level == CheckLevel::Restricted)
            .unwrap();
        assert!(CHECKS[first_restricted..]
            .iter()
            .all(|d| d.level == CheckLevel::Restricted));
    }

    #[test]
    fn versions_increase_and_overrides_name_baseline_checks() {
        for def in CHECKS {
            assert!(
                def.versions.windows(2).all(|w| w[0].since < w[1].since),
                "{}",
                def.id
            );
            for o in def.overrides {
                assert_eq!(def.level, CheckLevel::Restricted, "{}", def.id);
                assert!(CHECKS
                    .iter()
                    .any(|d| d.id == *o && d.level == CheckLevel::Baseline));
            }
        }
        assert_eq!(NEWEST_MINOR, 37);
    }

    #[test]
    fn plans_follow_the_versions() {
        let ids = |level, version| check_ids(LevelVersion { level, version }).collect::<Vec<_>>();
        let restricted_21 = ids(Level::Restricted, Version::Minor(21));
        assert!(restricted_21.contains(&"capabilities_baseline"));
        assert!(!restricted_21.contains(&"capabilities_restricted"));
        let restricted_22 = ids(Level::Restricted, Version::Minor(22));
        assert!(!restricted_22.contains(&"capabilities_baseline"));
        assert!(restricted_22.contains(&"capabilities_restricted"));
        assert!(!ids(Level::Restricted, Version::Minor(0)).contains(&"hostPathVolumes"));
        assert!(ids(Level::Restricted, Version::Minor(7))
            .iter()
            .all(|id| *id != "allowPrivilegeEscalation"));
        assert!(!ids(Level::Baseline, Version::Minor(33)).contains(&"hostProbesAndHostLifecycle"));
        assert_eq!(
            ids(Level::Baseline, Version::Latest),
            ids(Level::Baseline, Version::Minor(99))
        );
        assert!(ids(Level::Privileged, Version::Latest).is_empty());
    }

    /// Every check's `describe` run on every pod, skipping only exemptions: what the fast pass
    /// must agree with.
    fn exhaustive(lv: LevelVersion, pod: &PodFacts<'_>) -> Vec<Forbidden> {
        plan(lv)
            .iter()
            .filter(|step| !step.rule.exempt(pod))
            .filter_map(|step| {
                step.rule.describe(pod).map(|(reason, detail)| Forbidden {
                    check_id: step.id,
                    reason,
                    detail,
                })
            })
            .collect()
    }

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
        fn pick(&mut self, items: &[Value]) -> Value {
            items[self.below(items.len() as u64) as usize].clone()
        }
        /// Sets `key` to one of `choices` half of the time.
        fn maybe(&mut self, object: &mut Value, key: &str, choices: &[Value]) {
            if self.below(2) == 0 {
                object[key] = self.pick(choices);
            }
        }
    }

    /// Pods with every field the checks read, set to good, bad, empty, null or ill-typed values.
    fn random_pod(rng: &mut Rng) -> (Value, Value) {
        let profile = [
            json!({"type": "RuntimeDefault"}),
            json!({"type": "Localhost"}),
            json!({"type": "Unconfined"}),
            json!({}),
            Value::Null,
        ];
        let sc = |rng: &mut Rng| {
            let mut sc = json!({});
            rng.maybe(
                &mut sc,
                "privileged",
                &[json!(true), json!(false), Value::Null],
            );
            rng.maybe(
                &mut sc,
                "allowPrivilegeEscalation",
                &[json!(true), json!(false), Value::Null],
            );
            rng.maybe(
                &mut sc,
                "capabilities",
                &[
                    json!({"drop": ["ALL"]}),
                    json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
                    json!({"add": ["CHOWN", "SYS_ADMIN"]}),
                    json!({}),
                    Value::Null,
                ],
            );
            rng.maybe(
                &mut sc,
                "procMount",
                &[json!("Default"), json!("Unmasked"), json!(""), Value::Null],
            );
            rng.maybe(
                &mut sc,
                "runAsNonRoot",
                &[json!(true), json!(false), Value::Null],
            );
            rng.maybe(&mut sc, "runAsUser", &[json!(0), json!(1000), Value::Null]);
            rng.maybe(&mut sc, "seccompProfile", &profile);
            rng.maybe(&mut sc, "appArmorProfile", &profile);
            rng.maybe(
                &mut sc,
                "seLinuxOptions",
                &[
                    json!({"type": "container_t"}),
                    json!({"type": "spc_t", "user": "u"}),
                    json!({"type": "container_engine_t", "role": "r"}),
                    json!({}),
                ],
            );
            rng.maybe(
                &mut sc,
                "windowsOptions",
                &[json!({"hostProcess": true}), json!({"hostProcess": false})],
            );
            rng.maybe(
                &mut sc,
                "sysctls",
                &[
                    json!([{"name": "kernel.shm_rmid_forced"}]),
                    json!([{"name": "net.ipv4.tcp_rmem"}, {"name": "kernel.msgmax"}]),
                    json!([{"name": "net.ipv4.tcp_notsent_lowat"}]),
                ],
            );
            sc
        };
        let probe = [
            json!({"httpGet": {"host": "h", "port": 1}}),
            json!({"tcpSocket": {"host": ""}}),
            json!({"tcpSocket": {"host": "10.0.0.1"}}),
            json!({}),
        ];
        let container = |rng: &mut Rng, name: String| {
            let mut c = json!({"name": name});
            let choices = [sc(rng), sc(rng), json!({}), Value::Null];
            rng.maybe(&mut c, "securityContext", &choices);
            rng.maybe(
                &mut c,
                "ports",
                &[
                    json!([{"containerPort": 80}]),
                    json!([{"containerPort": 80, "hostPort": 80}, {"hostPort": 0}]),
                ],
            );
            rng.maybe(&mut c, "readinessProbe", &probe);
            rng.maybe(
                &mut c,
                "lifecycle",
                &[json!({"preStop": probe[0]}), json!({"postStart": probe[2]})],
            );
            c
        };
        let mut spec = json!({});
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            if rng.below(3) > 0 {
                let n = rng.below(3);
                spec[key] = json!((0..n)
                    .map(|i| container(rng, format!("{key}{i}")))
                    .collect::<Vec<_>>());
            }
        }
        spec["securityContext"] = sc(rng);
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            rng.maybe(&mut spec, key, &[json!(true), json!(false)]);
        }
        rng.maybe(&mut spec, "hostUsers", &[json!(false), json!(true)]);
        rng.maybe(
            &mut spec,
            "os",
            &[json!({"name": "windows"}), json!({"name": "linux"})],
        );
        rng.maybe(
            &mut spec,
            "volumes",
            &[
                json!([{"name": "a", "emptyDir": {}}, {"name": "b"}]),
                json!([{"name": "h", "hostPath": {"path": "/"}}]),
                json!([{"name": "n", "nfs": {}}, {"name": "s", "secret": {}, "hostPath": {}}]),
            ],
        );
        let mut metadata = json!({});
        rng.maybe(
            &mut metadata,
            "annotations",
            &[
                json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
                json!({"container.seccomp.security.alpha.kubernetes.io/containers0": "x"}),
                json!({"container.apparmor.security.beta.kubernetes.io/containers0": "unconfined"}),
                json!({"container.apparmor.security.beta.kubernetes.io/other": "localhost/p"}),
            ],
        );
        (metadata, spec)
    }

    #[test]
    fn the_fast_pass_agrees_with_describing_every_check() {
        let mut rng = Rng(42);
        let mut denied = 0;
        for _ in 0..3000 {
            let (metadata, spec) = random_pod(&mut rng);
            for pod_defaults in [true, false] {
                let pod = PodFacts::read(&metadata, &spec, pod_defaults);
                for level in [Level::Baseline, Level::Restricted] {
                    for minor in [0, 8, 18, 19, 22, 24, 25, 31, 34, 35, 37] {
                        let lv = LevelVersion::new(level, Version::Minor(minor));
                        let steps = plan(lv);
                        let flagged = flag(steps, &pod);
                        let mut fast = Vec::new();
                        describe(steps, &pod, flagged, &mut fast);
                        let slow = exhaustive(lv, &pod);
                        assert_eq!(fast, slow, "{lv}\n{metadata}\n{spec}");
                        // The verdict alone (no wording) names exactly the checks described.
                        let flagged_ids: Vec<&str> = steps
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| flagged & (1u64 << i) != 0)
                            .map(|(_, s)| s.id)
                            .collect();
                        let slow_ids: Vec<&str> = slow.iter().map(|f| f.check_id).collect();
                        assert_eq!(flagged_ids, slow_ids, "{lv}\n{metadata}\n{spec}");
                        denied += usize::from(!fast.is_empty());
                    }
                }
            }
        }
        assert!(
            denied > 1000,
            "the random pods are too tame: {denied} denials"
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("unconfined"), "\"unconfined\"");
        assert_eq!(go_quote("a\"b\\c\n\u{0}"), "\"a\\\"b\\\\c\\n\\x00\"");
        assert_eq!(go_quote("é\u{a0}"), "\"é\\u00a0\"");
    }
}
