//! The compact form of the pod an object is or creates: only what the Pod Security checks read,
//! built in one pass over the object's JSON that skips everything else (a serde visitor, so it
//! reads JSON text straight away, or a `serde_json::Value` through the same code).
//!
//! [`CompactPod::verdict`] and [`CompactPod::check`] answer exactly as [`super::verdict_object`]
//! and [`super::check_object`] do for the same object: the checks are the same code, reading the
//! pod through views that borrow either form (see `checks`). This module only has to read each
//! field as `serde_json::Value`'s accessors read it:
//!
//! - a value of the wrong type reads as absent (`null` as well), never as an error; only JSON
//!   that does not parse is an error;
//! - integers are kept when they fit an `i64` (`Value::as_i64`); floats and larger numbers are not
//!   integers;
//! - when an object repeats a key, the last one counts (as in `Value`'s maps): every field is
//!   overwritten by each occurrence of its key.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::checks::{annotation_read, volume_source_bit};
use super::{checks, LevelVersion, PssResult, PssVerdict};

/// A string the checks read: `""` stands for a value that is not a string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Text(pub(super) Box<str>);

/// A sysctl's `name`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Sysctl(pub(super) Box<str>);

/// A container port's `hostPort` and `containerPort` (0 when unset).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Port {
    pub(super) host: i64,
    pub(super) container: i64,
}

/// A volume: its name and which sources it sets to something other than `null` (bits of
/// `checks::volume_source_bit`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Volume {
    pub(super) name: Text,
    pub(super) is_object: bool,
    pub(super) sources: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Caps {
    pub(super) drop: Vec<Text>,
    pub(super) add: Vec<Text>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Profile {
    pub(super) kind: Text,
    pub(super) localhost_profile: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct SeLinux {
    pub(super) kind: Text,
    pub(super) user: bool,
    pub(super) role: bool,
}

/// A pod's or container's `securityContext`, as `checks::SecurityContext` reads it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct SecurityContext {
    pub(super) privileged: bool,
    pub(super) allow_privilege_escalation: Option<bool>,
    pub(super) capabilities: Option<Caps>,
    pub(super) proc_mount: Option<Text>,
    pub(super) run_as_non_root: Option<bool>,
    pub(super) run_as_user_zero: bool,
    pub(super) se_linux: Option<SeLinux>,
    pub(super) seccomp: Option<Profile>,
    pub(super) app_armor: Option<Profile>,
    pub(super) host_process: bool,
    pub(super) sysctls: Vec<Sysctl>,
}

/// A container: its name, security context, ports (those with a non-zero port) and the
/// non-empty hosts its probes and lifecycle handlers name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Container {
    pub(super) name: Text,
    pub(super) sc: SecurityContext,
    pub(super) ports: Vec<Port>,
    pub(super) hosts: Vec<Text>,
}

/// The pod-level fields of a pod spec the checks read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PodSpec {
    pub(super) sc: SecurityContext,
    pub(super) windows: bool,
    pub(super) user_namespace: bool,
    pub(super) host_network: bool,
    pub(super) host_pid: bool,
    pub(super) host_ipc: bool,
    pub(super) volumes: Vec<Volume>,
    /// Init, regular and ephemeral containers.
    pub(super) containers: [Vec<Container>; 3],
}

/// The pod a Pod, PodTemplate or workload object is or creates, reduced to what the Pod Security
/// checks read (about a tenth of the object's JSON, in a few allocations), so that many can be
/// held and checked quickly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactPod {
    /// Only the AppArmor and seccomp annotations, each key once.
    pub(super) annotations: Vec<(Text, Text)>,
    pub(super) spec: PodSpec,
    /// A Pod (defaulted as the apiserver defaults Pods), not a template.
    pub(super) pod_defaults: bool,
}

impl CompactPod {
    /// The pod of the object in `json` (a Pod, PodTemplate, ReplicationController, Deployment,
    /// ReplicaSet, StatefulSet, DaemonSet, Job or CronJob); `Ok(None)` where
    /// [`super::pod_template`] finds none (other kinds, a ReplicationController without a
    /// template, JSON that is not an object). Text that is not JSON is an error.
    pub fn from_json(json: &str) -> Result<Option<CompactPod>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let pod = CompactPod::from_object(&mut de)?;
        de.end()?;
        Ok(pod)
    }

    /// [`CompactPod::from_json`] from any serde deserializer; a `&serde_json::Value` never fails.
    pub fn from_object<'de, D: Deserializer<'de>>(
        object: D,
    ) -> Result<Option<CompactPod>, D::Error> {
        let mut top = OptObj::<Top>::default();
        InPlace(&mut top).deserialize(object)?;
        Ok(top.0.and_then(Top::into_pod))
    }

    /// Whether this is a Pod's pod (rather than a workload's pod template).
    pub fn is_pod(&self) -> bool {
        self.pod_defaults
    }

    /// Which checks of `lv` the pod fails: the same as [`super::verdict_object`] on the object.
    pub fn verdict(&self, lv: LevelVersion) -> PssVerdict {
        let steps = checks::plan(lv);
        let failed = if steps.is_empty() {
            0
        } else {
            checks::flag(steps, &checks::PodFacts::compact(self))
        };
        PssVerdict { lv, failed }
    }

    /// The checks of `lv` with the apiserver's wording: the same as [`super::check_object`].
    pub fn check(&self, lv: LevelVersion) -> PssResult {
        let mut result = PssResult::default();
        let steps = checks::plan(lv);
        if steps.is_empty() {
            return result;
        }
        let pod = checks::PodFacts::compact(self);
        let failed = checks::flag(steps, &pod);
        if failed != 0 {
            checks::describe(steps, &pod, failed, &mut result.forbidden);
        }
        result
    }
}

// ------------------------------------------------------------------ reading any JSON value

/// What one JSON value reads as, whatever its type: each method is one JSON type, and by default
/// gives `Self::default()` (arrays and objects are skipped). `null` is always the default.
trait Read: Default {
    fn boolean(_: bool) -> Self {
        Self::default()
    }
    /// An integer that fits an `i64`.
    fn integer(_: i64) -> Self {
        Self::default()
    }
    /// A float, or an integer too large for an `i64`.
    fn other_number() -> Self {
        Self::default()
    }
    fn string(_: &str) -> Self {
        Self::default()
    }
    fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
    fn object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

/// Reads a `T` from any JSON value.
struct Lenient<T>(PhantomData<T>);

impl<T> Lenient<T> {
    fn new() -> Self {
        Lenient(PhantomData)
    }
}

impl<'de, T: Read> DeserializeSeed<'de> for Lenient<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Read> Visitor<'de> for Lenient<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<T, E> {
        Ok(T::boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<T, E> {
        Ok(T::integer(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<T, E> {
        Ok(i64::try_from(v).map_or_else(|_| T::other_number(), T::integer))
    }
    fn visit_i128<E>(self, v: i128) -> Result<T, E> {
        Ok(i64::try_from(v).map_or_else(|_| T::other_number(), T::integer))
    }
    fn visit_u128<E>(self, v: u128) -> Result<T, E> {
        Ok(i64::try_from(v).map_or_else(|_| T::other_number(), T::integer))
    }
    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::other_number())
    }
    fn visit_str<E>(self, v: &str) -> Result<T, E> {
        Ok(T::string(v))
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_none<E>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::array(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::object(map)
    }
}

/// An object key, as its position in a list of the keys a reader wants (`None` for others).
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

/// Reads an object's entries: `read(index of the key in keys, map)` must consume the value of
/// each wanted key; the values of other keys are skipped.
fn entries<'de, A: MapAccess<'de>>(
    mut map: A,
    keys: &'static [&'static str],
    mut read: impl FnMut(usize, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key_seed(Key(keys))? {
        match key {
            Some(i) => read(i, &mut map)?,
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

fn value<'de, T: Read, A: MapAccess<'de>>(map: &mut A) -> Result<T, A::Error> {
    map.next_value_seed(Lenient::<T>::new())
}

/// `Some` for a boolean (`Value::as_bool`).
#[derive(Default)]
struct Bool(Option<bool>);

impl Read for Bool {
    fn boolean(v: bool) -> Self {
        Bool(Some(v))
    }
}

/// `Some` for an integer that fits an `i64` (`Value::as_i64`).
#[derive(Default)]
struct Int(Option<i64>);

impl Read for Int {
    fn integer(v: i64) -> Self {
        Int(Some(v))
    }
}

/// A string, `""` for anything else (`Value::as_str().unwrap_or("")`).
impl Read for Text {
    fn string(v: &str) -> Self {
        Text(v.into())
    }
}

/// Whether the value is anything but `null`.
#[derive(Default)]
struct NotNull(bool);

impl Read for NotNull {
    fn boolean(_: bool) -> Self {
        NotNull(true)
    }
    fn integer(_: i64) -> Self {
        NotNull(true)
    }
    fn other_number() -> Self {
        NotNull(true)
    }
    fn string(_: &str) -> Self {
        NotNull(true)
    }
    fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(NotNull(true))
    }
    fn object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(NotNull(true))
    }
}

/// The elements of an array, empty for anything else.
impl<T: Read> Read for Vec<T> {
    fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Lenient::<T>::new())? {
            out.push(item);
        }
        Ok(out)
    }
}

/// A type read from a JSON object, into place: the large parts of a pod (security contexts,
/// containers, specs) are filled where they end up rather than returned up through each level,
/// which copied them several times per pod and was a sixth of reading a pod's text.
trait FromObject: Default {
    /// Reads the object's entries into `self` (which starts as the default).
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error>;
}

/// `Some` for an object (`Value::as_object`), `None` for anything else.
struct Obj<T>(Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<T: FromObject> Read for Obj<T> {
    fn object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut out = T::default();
        out.read(map)?;
        Ok(Obj(Some(out)))
    }
}

/// Reads a value into `*self.0` in place, as [`Obj`] would read it (with `None` as the
/// default): an object replaces it with what the object holds, any other value with the
/// default. For the parts too large to return by value (see [`FromObject`]).
struct InPlace<'a, T>(&'a mut T);

impl<T: FromObject> InPlace<'_, T> {
    fn other<E>(self) -> Result<(), E> {
        *self.0 = T::default();
        Ok(())
    }
}

impl<'de, T: FromObject> DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: FromObject> Visitor<'de> for InPlace<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.other()
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.other()
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.other()
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        self.other()
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        self.other()
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.other()
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.other()
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.other()
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.other()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.other()
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        // A repeated key replaces what an earlier one read.
        *self.0 = T::default();
        self.0.read(map)
    }
}

/// An `Option` read in place: `None` for anything but an object (as [`Obj`]).
#[derive(Default)]
struct OptObj<T>(Option<T>);

impl<T: FromObject> FromObject for OptObj<T> {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        self.0.insert(T::default()).read(map)
    }
}

/// Reads the value of the entry just keyed into `*place` (see [`InPlace`]).
fn value_into<'de, T: FromObject, A: MapAccess<'de>>(
    map: &mut A,
    place: &mut T,
) -> Result<(), A::Error> {
    map.next_value_seed(InPlace(place))
}

/// The objects of an array, each read in place (anything but an object reads as the default);
/// empty for anything but an array.
struct Objects<T>(Vec<T>);

impl<T> Default for Objects<T> {
    fn default() -> Self {
        Objects(Vec::new())
    }
}

impl<T: FromObject> Read for Objects<T> {
    fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            out.push(T::default());
            let Some(last) = out.last_mut() else {
                break;
            };
            if seq.next_element_seed(InPlace(last))?.is_none() {
                out.pop();
                break;
            }
        }
        Ok(Objects(out))
    }
}

/// `None` for `null`; the object read for an object; the default for any other value.
struct Slot<T>(Option<T>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<T: FromObject> Read for Slot<T> {
    fn boolean(_: bool) -> Self {
        Slot(Some(T::default()))
    }
    fn integer(_: i64) -> Self {
        Slot(Some(T::default()))
    }
    fn other_number() -> Self {
        Slot(Some(T::default()))
    }
    fn string(_: &str) -> Self {
        Slot(Some(T::default()))
    }
    fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Slot(Some(T::default())))
    }
    fn object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut out = T::default();
        out.read(map)?;
        Ok(Slot(Some(out)))
    }
}

// ------------------------------------------------------------------ the pod's parts

impl FromObject for Sysctl {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["name"], |_, map| {
            out.0 = value::<Text, _>(map)?.0;
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for Port {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["hostPort", "containerPort"], |i, map| {
            let Int(v) = value(map)?;
            let v = v.unwrap_or(0);
            if i == 0 {
                out.host = v;
            } else {
                out.container = v;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for Volume {
    fn read<'de, A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        struct Field(Option<u64>);
        impl<'de> DeserializeSeed<'de> for Field {
            type Value = Field;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
                d.deserialize_str(self)
            }
        }
        impl Visitor<'_> for Field {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            /// `Some(0)` for `name`, `Some(bit)` for a volume source.
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(Field(if v == "name" {
                    Some(0)
                } else {
                    volume_source_bit(v)
                }))
            }
        }
        let out = self;
        out.is_object = true;
        while let Some(Field(field)) = map.next_key_seed(Field(None))? {
            match field {
                Some(0) => out.name = value(&mut map)?,
                Some(bit) => {
                    let NotNull(set) = value(&mut map)?;
                    if set {
                        out.sources |= bit;
                    } else {
                        out.sources &= !bit;
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl FromObject for Caps {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["drop", "add"], |i, map| {
            let list = value(map)?;
            if i == 0 {
                out.drop = list;
            } else {
                out.add = list;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for Profile {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["type", "localhostProfile"], |i, map| {
            if i == 0 {
                out.kind = value(map)?;
            } else {
                out.localhost_profile = value::<NotNull, _>(map)?.0;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for SeLinux {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["type", "user", "role"], |i, map| {
            let Text(v) = value(map)?;
            match i {
                0 => out.kind = Text(v),
                1 => out.user = !v.is_empty(),
                _ => out.role = !v.is_empty(),
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// `windowsOptions`: whether `hostProcess` is `true`.
#[derive(Default)]
struct HostProcess(bool);

impl FromObject for HostProcess {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["hostProcess"], |_, map| {
            out.0 = value::<Bool, _>(map)?.0 == Some(true);
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for SecurityContext {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        const KEYS: &[&str] = &[
            "privileged",
            "allowPrivilegeEscalation",
            "capabilities",
            "procMount",
            "runAsNonRoot",
            "runAsUser",
            "seLinuxOptions",
            "seccompProfile",
            "appArmorProfile",
            "windowsOptions",
            "sysctls",
        ];
        let out = self;
        entries(map, KEYS, |i, map| {
            match i {
                0 => out.privileged = value::<Bool, _>(map)?.0 == Some(true),
                1 => out.allow_privilege_escalation = value::<Bool, _>(map)?.0,
                2 => out.capabilities = value::<Obj<Caps>, _>(map)?.0,
                3 => out.proc_mount = value::<ProcMount, _>(map)?.0,
                4 => out.run_as_non_root = value::<Bool, _>(map)?.0,
                5 => out.run_as_user_zero = value::<Int, _>(map)?.0 == Some(0),
                6 => out.se_linux = value::<Obj<SeLinux>, _>(map)?.0,
                7 => out.seccomp = value::<Obj<Profile>, _>(map)?.0,
                8 => out.app_armor = value::<Obj<Profile>, _>(map)?.0,
                9 => out.host_process = value::<Obj<HostProcess>, _>(map)?.0.is_some_and(|h| h.0),
                _ => out.sysctls = value::<Objects<_>, _>(map)?.0,
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// `procMount`: `None` for `null`, its text for a string, `""` for anything else.
#[derive(Default)]
struct ProcMount(Option<Text>);

impl Read for ProcMount {
    fn boolean(_: bool) -> Self {
        ProcMount(Some(Text::default()))
    }
    fn integer(_: i64) -> Self {
        ProcMount(Some(Text::default()))
    }
    fn other_number() -> Self {
        ProcMount(Some(Text::default()))
    }
    fn string(v: &str) -> Self {
        ProcMount(Some(Text(v.into())))
    }
    fn array<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ProcMount(Some(Text::default())))
    }
    fn object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ProcMount(Some(Text::default())))
    }
}

/// A probe or lifecycle handler: the non-empty hosts of its `httpGet` and `tcpSocket`.
#[derive(Default)]
struct Handler([Option<Text>; 2]);

/// `httpGet` or `tcpSocket`: its `host`.
#[derive(Default)]
struct Action(Text);

impl FromObject for Action {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["host"], |_, map| {
            out.0 = value(map)?;
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for Handler {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["httpGet", "tcpSocket"], |i, map| {
            let Obj(action) = value::<Obj<Action>, _>(map)?;
            if let Some(slot) = out.0.get_mut(i) {
                *slot = action.map(|a| a.0);
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl Handler {
    fn hosts(self) -> impl Iterator<Item = Text> {
        self.0.into_iter().flatten().filter(|h| !h.0.is_empty())
    }
}

/// `lifecycle`: its `postStart` and `preStop` handlers.
#[derive(Default)]
struct Lifecycle([Option<Handler>; 2]);

impl FromObject for Lifecycle {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["postStart", "preStop"], |i, map| {
            let Obj(handler) = value::<Obj<Handler>, _>(map)?;
            if let Some(slot) = out.0.get_mut(i) {
                *slot = handler;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl FromObject for Container {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        const KEYS: &[&str] = &[
            "name",
            "securityContext",
            "ports",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
        ];
        let out = self;
        let mut probes: [Option<Handler>; 3] = Default::default();
        let mut lifecycle = None;
        entries(map, KEYS, |i, map| {
            match i {
                0 => out.name = value(map)?,
                1 => value_into(map, &mut out.sc)?,
                2 => {
                    let Objects::<Port>(ports) = value(map)?;
                    out.ports = ports
                        .into_iter()
                        .filter(|p| p.host != 0 || p.container != 0)
                        .collect();
                }
                6 => lifecycle = value::<Obj<Lifecycle>, _>(map)?.0,
                probe => {
                    if let Some(slot) = probes.get_mut(probe - 3) {
                        *slot = value::<Obj<Handler>, _>(map)?.0;
                    }
                }
            }
            Ok(())
        })?;
        let lifecycle = lifecycle.map(|l| l.0).unwrap_or_default();
        out.hosts = probes
            .into_iter()
            .chain(lifecycle)
            .flatten()
            .flat_map(Handler::hosts)
            .collect();
        Ok(())
    }
}

/// `os`: whether its `name` is `windows`.
#[derive(Default)]
struct Os(bool);

impl FromObject for Os {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["name"], |_, map| {
            out.0 = &*value::<Text, _>(map)?.0 == "windows";
            Ok(())
        })?;
        Ok(())
    }
}

/// A `spec`: the pod spec fields the checks read, and the pod templates a workload's spec holds
/// (`template`, `jobTemplate.spec.template`); which one counts depends on the object's kind.
#[derive(Default)]
struct Spec {
    pod: PodSpec,
    template: Option<Box<Template>>,
    job_template: Option<Box<Spec>>,
}

impl FromObject for Spec {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        const KEYS: &[&str] = &[
            "securityContext",
            "os",
            "hostUsers",
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "volumes",
            "initContainers",
            "containers",
            "ephemeralContainers",
            "template",
            "jobTemplate",
        ];
        let out = self;
        let pod = &mut out.pod;
        let mut template = None;
        let mut job_template = None;
        entries(map, KEYS, |i, map| {
            match i {
                0 => value_into(map, &mut pod.sc)?,
                1 => pod.windows = value::<Obj<Os>, _>(map)?.0.is_some_and(|os| os.0),
                2 => pod.user_namespace = value::<Bool, _>(map)?.0 == Some(false),
                3 => pod.host_network = value::<Bool, _>(map)?.0 == Some(true),
                4 => pod.host_pid = value::<Bool, _>(map)?.0 == Some(true),
                5 => pod.host_ipc = value::<Bool, _>(map)?.0 == Some(true),
                6 => pod.volumes = value::<Objects<_>, _>(map)?.0,
                7..=9 => {
                    let Objects(list) = value(map)?;
                    if let Some(slot) = pod.containers.get_mut(i - 7) {
                        *slot = list;
                    }
                }
                10 => template = value::<Slot<Template>, _>(map)?.0.map(Box::new),
                _ => {
                    job_template = value::<Obj<JobTemplate>, _>(map)?
                        .0
                        .and_then(|j| j.0)
                        .map(Box::new)
                }
            }
            Ok(())
        })?;
        out.template = template;
        out.job_template = job_template;
        Ok(())
    }
}

/// A CronJob's `jobTemplate`: its `spec`.
#[derive(Default)]
struct JobTemplate(Option<Spec>);

impl FromObject for JobTemplate {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["spec"], |_, map| {
            out.0 = value::<Obj<Spec>, _>(map)?.0;
            Ok(())
        })?;
        Ok(())
    }
}

/// `metadata`: the annotations the checks read.
#[derive(Default)]
struct Metadata(Vec<(Text, Text)>);

impl FromObject for Metadata {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["annotations"], |_, map| {
            out.0 = value::<Obj<Annotations>, _>(map)?
                .0
                .map(|a| a.0)
                .unwrap_or_default();
            Ok(())
        })?;
        Ok(())
    }
}

/// The annotations the checks read, each key once (the last occurrence counts), by key.
#[derive(Default)]
struct Annotations(Vec<(Text, Text)>);

impl FromObject for Annotations {
    fn read<'de, A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        /// A key the checks read, or `None`.
        struct Wanted;
        impl<'de> DeserializeSeed<'de> for Wanted {
            type Value = Option<Text>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Text>, D::Error> {
                d.deserialize_str(self)
            }
        }
        impl Visitor<'_> for Wanted {
            type Value = Option<Text>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an annotation key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Option<Text>, E> {
                Ok(annotation_read(v).then(|| Text(v.into())))
            }
        }
        let out = self;
        while let Some(key) = map.next_key_seed(Wanted)? {
            let Some(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let text: Text = value(&mut map)?;
            match out.0.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => *v = text,
                None => out.0.push((key, text)),
            }
        }
        // In key order, as a `Value`'s map holds them, so equal objects give equal forms.
        out.0.sort_by(|(a, _), (b, _)| a.0.cmp(&b.0));
        Ok(())
    }
}

/// A pod template: its `metadata` and `spec`.
#[derive(Default)]
struct Template {
    metadata: Metadata,
    spec: Spec,
}

impl FromObject for Template {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(map, &["metadata", "spec"], |i, map| {
            if i == 0 {
                value_into(map, &mut out.metadata)?;
            } else {
                value_into(map, &mut out.spec)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// The object itself.
#[derive(Default)]
struct Top {
    kind: Option<Text>,
    api_version: Option<Text>,
    metadata: Metadata,
    spec: OptObj<Spec>,
    template: OptObj<Template>,
}

/// `Some` for a string (`Value::as_str`).
#[derive(Default)]
struct Str(Option<Text>);

impl Read for Str {
    fn string(v: &str) -> Self {
        Str(Some(Text(v.into())))
    }
}

impl FromObject for Top {
    fn read<'de, A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        let out = self;
        entries(
            map,
            &["kind", "apiVersion", "metadata", "spec", "template"],
            |i, map| {
                match i {
                    0 => out.kind = value::<Str, _>(map)?.0,
                    1 => out.api_version = value::<Str, _>(map)?.0,
                    2 => value_into(map, &mut out.metadata)?,
                    3 => value_into(map, &mut out.spec)?,
                    _ => value_into(map, &mut out.template)?,
                }
                Ok(())
            },
        )?;
        Ok(())
    }
}

impl Top {
    /// The pod the object is or creates, found as [`super::pod_template`] finds it.
    fn into_pod(self) -> Option<CompactPod> {
        let kind = self.kind?;
        let group = self.api_version.map(|v| {
            v.0.split_once('/')
                .map_or("", |(group, _)| group)
                .to_owned()
        });
        let in_group = |expected: &str| group.as_deref().is_none_or(|g| g == expected);
        let of_template = |template: Option<Template>| {
            let template = template.unwrap_or_default();
            CompactPod {
                annotations: template.metadata.0,
                spec: template.spec.pod,
                pod_defaults: false,
            }
        };
        let template = |spec: Option<Spec>| spec.and_then(|s| s.template).map(|t| *t);
        match &*kind.0 {
            "Pod" if in_group("") => Some(CompactPod {
                annotations: self.metadata.0,
                spec: self.spec.0.unwrap_or_default().pod,
                pod_defaults: true,
            }),
            "PodTemplate" if in_group("") => Some(of_template(self.template.0)),
            // The template is optional here; without one there is nothing to check.
            "ReplicationController" if in_group("") => {
                Some(of_template(Some(template(self.spec.0)?)))
            }
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" if in_group("apps") => {
                Some(of_template(template(self.spec.0)))
            }
            "Job" if in_group("batch") => Some(of_template(template(self.spec.0))),
            "CronJob" if in_group("batch") => Some(of_template(template(
                self.spec.0.and_then(|s| s.job_template).map(|s| *s),
            ))),
            _ => None,
        }
    }
}
