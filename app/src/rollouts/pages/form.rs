//! The propose form, read: the waves as the editor holds them, which clusters each one takes, and
//! the proposal they describe. Pure, so the rules are tested here and the editor only draws them.

use super::*;

pub use crate::rollouts::{MAX_APPROVALS, MAX_WAVES, MAX_WAVE_NAME};

/// One wave as the editor holds it: every field as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveInput {
    /// Optional: the server names an unnamed wave after its environment, or `wave N`.
    pub name: String,
    /// Empty for any environment.
    pub environment: String,
    /// Label pairs in the order they were added; a pair left wholly empty is ignored.
    pub labels: Vec<(String, String)>,
    pub approvals: String,
    /// Whole minutes to wait after the wave is applied.
    pub soak_minutes: String,
    /// Empty for no threshold.
    pub threshold: String,
}

impl WaveInput {
    /// A wave of one environment (or of every cluster when `environment` is empty), behind one
    /// approval, without soak or threshold.
    pub fn of_environment(environment: &str) -> Self {
        Self {
            name: environment.to_owned(),
            environment: environment.to_owned(),
            labels: Vec::new(),
            approvals: "1".to_owned(),
            soak_minutes: "0".to_owned(),
            threshold: String::new(),
        }
    }

    /// The name the server will give the wave at `index`.
    pub fn shown_name(&self, index: usize) -> String {
        match (self.name.trim(), self.environment.trim()) {
            ("", "") => format!("wave {}", index + 1),
            ("", environment) => environment.to_owned(),
            (name, _) => name.to_owned(),
        }
    }

    /// The clusters this wave asks for, from the complete label pairs only (a half-written pair is
    /// a problem of its own, see [`check_waves`]).
    pub fn selector(&self) -> Selector {
        let environment = match self.environment.trim() {
            "" => None,
            environment => Some(environment.to_owned()),
        };
        let labels = self
            .labels
            .iter()
            .map(|(key, value)| (key.trim(), value.trim()))
            .filter(|(key, value)| !key.is_empty() && !value.is_empty())
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        Selector {
            environment,
            labels,
        }
    }
}

/// What the form holds at first: one wave per environment, dev then prod, each behind one approval.
pub fn default_waves() -> Vec<WaveInput> {
    vec![
        WaveInput::of_environment("dev"),
        WaveInput::of_environment("prod"),
    ]
}

/// The field of a wave a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveField {
    /// The wave's name, as the server will give it (see [`WaveInput::shown_name`]).
    Name,
    /// The label pair at this position (from 0).
    Label(usize),
    Approvals,
    Soak,
    Threshold,
    /// The clusters the wave selects.
    Clusters,
}

impl WaveField {
    fn words(self) -> String {
        match self {
            WaveField::Name => "name".to_owned(),
            WaveField::Label(at) => format!("label {}", at + 1),
            WaveField::Approvals => "approvals".to_owned(),
            WaveField::Soak => "soak".to_owned(),
            WaveField::Threshold => "violation threshold".to_owned(),
            WaveField::Clusters => "clusters".to_owned(),
        }
    }
}

/// Something wrong with one field of one wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveProblem {
    /// The wave's position, from 0.
    pub wave: usize,
    pub field: WaveField,
    pub message: String,
}

impl WaveProblem {
    /// `Wave 2 (prod), approvals: …`, naming the wave and the field.
    pub fn describe(&self, waves: &[WaveInput]) -> String {
        let name = waves
            .get(self.wave)
            .map(|w| w.shown_name(self.wave))
            .unwrap_or_default();
        format!(
            "Wave {} ({name}), {}: {}",
            self.wave + 1,
            self.field.words(),
            self.message
        )
    }
}

/// Each wave as the server takes it, or every problem found, each naming its wave and field.
pub fn check_waves(waves: &[WaveInput]) -> Result<Vec<NewWave>, Vec<WaveProblem>> {
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for (index, wave) in waves.iter().enumerate() {
        let mut problem = |field, message: String| {
            problems.push(WaveProblem {
                wave: index,
                field,
                message,
            })
        };
        let name = wave.shown_name(index);
        if name.chars().count() > MAX_WAVE_NAME {
            problem(
                WaveField::Name,
                format!("at most {MAX_WAVE_NAME} characters"),
            );
        } else if let Some(earlier) = (0..index).find(|&e| waves[e].shown_name(e) == name) {
            problem(
                WaveField::Name,
                format!(
                    "wave {} is already named `{name}`; give each wave its own name",
                    earlier + 1
                ),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (at, (key, value)) in wave.labels.iter().enumerate() {
            let (key, value) = (key.trim(), value.trim());
            match (key.is_empty(), value.is_empty()) {
                (true, true) => {}
                (false, false) if seen.contains(&key) => problem(
                    WaveField::Label(at),
                    format!("the key `{key}` is already given; a cluster has one value per key"),
                ),
                (false, false) => seen.push(key),
                (true, false) => problem(WaveField::Label(at), "give the label's key".to_owned()),
                (false, true) => problem(WaveField::Label(at), format!("give a value for `{key}`")),
            }
        }
        let approvals = match whole_number(&wave.approvals) {
            Some(n) if n <= u64::from(MAX_APPROVALS) => {
                let n = u32::try_from(n).unwrap_or(MAX_APPROVALS);
                if index == 0 && n == 0 {
                    problem(
                        WaveField::Approvals,
                        "the first wave needs at least one approval".to_owned(),
                    );
                }
                Some(n)
            }
            _ => {
                problem(
                    WaveField::Approvals,
                    format!(
                        "give a whole number from 0 to {MAX_APPROVALS}, not `{}`",
                        wave.approvals.trim()
                    ),
                );
                None
            }
        };
        let soak_secs = match wave.soak_minutes.trim() {
            "" => Some(0),
            text => match whole_number(text).and_then(|m| m.checked_mul(60)) {
                Some(secs) => Some(secs),
                None => {
                    problem(
                        WaveField::Soak,
                        format!("give whole minutes (0 for none), not `{text}`"),
                    );
                    None
                }
            },
        };
        let threshold = match wave.threshold.trim() {
            "" => Some(None),
            text => match whole_number(text) {
                Some(n) => Some(Some(n)),
                None => {
                    problem(
                        WaveField::Threshold,
                        format!("give a whole number of violations, or leave it empty for none, not `{text}`"),
                    );
                    None
                }
            },
        };
        if let (Some(approvals), Some(soak_secs), Some(violation_threshold)) =
            (approvals, soak_secs, threshold)
        {
            checked.push(NewWave {
                name: wave.name.trim().to_owned(),
                selector: wave.selector(),
                approvals,
                soak_secs,
                violation_threshold,
            });
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(problems)
    }
}

/// A non-negative whole number, as typed.
fn whole_number(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

pub use crate::rollouts::WaveTarget as Target;

/// What one wave would take, as the server plans it when the rollout is proposed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WavePreview {
    /// The enabled clusters the wave takes.
    pub takes: Vec<String>,
    /// Clusters the selector matches that an earlier wave (its position) already takes.
    pub earlier: Vec<(String, usize)>,
    /// Disabled clusters the selector matches: rollouts skip them.
    pub disabled: Vec<String>,
}

/// For each wave, the clusters it takes: the enabled clusters its selector matches, less those an
/// earlier wave takes (a cluster belongs to the first wave that selects it, as on the server).
pub fn preview(selectors: &[Selector], clusters: &[Target]) -> Vec<WavePreview> {
    let mut taken: Vec<(&str, usize)> = Vec::new();
    let mut previews = Vec::new();
    for (index, selector) in selectors.iter().enumerate() {
        let mut wave = WavePreview::default();
        let mut takes: Vec<&str> = Vec::new();
        for cluster in clusters
            .iter()
            .filter(|c| selector.matches(&c.environment, &c.labels))
        {
            if cluster.disabled {
                wave.disabled.push(cluster.name.clone());
            } else if let Some((_, by)) = taken.iter().find(|(name, _)| *name == cluster.name) {
                wave.earlier.push((cluster.name.clone(), *by));
            } else {
                takes.push(&cluster.name);
            }
        }
        wave.takes = takes.iter().map(|name| (*name).to_owned()).collect();
        taken.extend(takes.into_iter().map(|name| (name, index)));
        previews.push(wave);
    }
    previews
}

/// The problems the preview shows: a wave that takes no enabled cluster (the server refuses it).
pub fn preview_problems(previews: &[WavePreview]) -> Vec<WaveProblem> {
    previews
        .iter()
        .enumerate()
        .filter(|(_, p)| p.takes.is_empty())
        .map(|(wave, p)| WaveProblem {
            wave,
            field: WaveField::Clusters,
            message: if p.earlier.is_empty() {
                "selects no enabled cluster".to_owned()
            } else {
                "every cluster it selects is already in an earlier wave".to_owned()
            },
        })
        .collect()
}

/// The wave a server message names (`wave `prod` …`), by the names the server gives the waves.
pub fn wave_named_in(message: &str, waves: &[WaveInput]) -> Option<usize> {
    (0..waves.len()).find(|&index| {
        let name = waves[index].shown_name(index);
        message.contains(&format!("wave `{name}`"))
    })
}

/// A soak time as people say it: `none`, `45 min`, `1 h 30 min`, `2 d 3 h`.
pub fn minutes_label(minutes: u64) -> String {
    if minutes == 0 {
        return "none".to_owned();
    }
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    [(days, "d"), (hours, "h"), (mins, "min")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The proposal the form describes, or what is wrong with it (a wave's problem names the wave
/// and the field). `clusters` are the registered clusters, when they could be read.
pub(super) fn proposal(
    policy: &str,
    version: &str,
    mode: &str,
    namespaces: &str,
    note: &str,
    waves: &[WaveInput],
    clusters: Option<&[Target]>,
) -> Result<NewRollout, String> {
    if policy.trim().is_empty() {
        return Err("Choose a policy.".to_owned());
    }
    let version = match version.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(number) if number > 0 => Some(number),
            _ => {
                return Err(format!(
                    "The version must be a version number such as 3, not `{text}`; leave it empty for the current version."
                ))
            }
        },
    };
    let mode = Mode::parse(mode).ok_or_else(|| format!("Unknown mode `{mode}`."))?;
    if waves.is_empty() || waves.len() > MAX_WAVES {
        return Err(format!(
            "A rollout has 1 to {MAX_WAVES} waves; this one has {}.",
            waves.len()
        ));
    }
    let checked = check_waves(waves);
    let selectors: Vec<Selector> = waves.iter().map(WaveInput::selector).collect();
    let mut problems = checked.as_ref().err().cloned().unwrap_or_default();
    // Without the clusters (they did not load) the server alone says what a wave selects.
    if let Some(clusters) = clusters {
        problems.extend(preview_problems(&preview(&selectors, clusters)));
    }
    if let Some(first) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more problems, marked at their waves)", n - 1),
        };
        return Err(format!("{}{more}", first.describe(waves)));
    }
    Ok(NewRollout {
        policy: policy.trim().to_owned(),
        version,
        mode,
        waves: checked.map_err(|_| "the waves have problems".to_owned())?,
        namespaces: namespaces
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        note: note.trim().to_owned(),
        acknowledge_denials: false,
    })
}

#[cfg(test)]
mod tests;
