//! The propose form's text, read: the waves field and the proposal it describes.

use super::*;

/// Reads the waves field: one wave per line,
/// `name: key=value, key=value; approvals=N; soak=SECONDS; threshold=N`.
///
/// The key `environment` picks the clusters of an environment, every other key a cluster label;
/// no pairs at all takes every cluster. Everything after the first `;` is optional (one approval,
/// no soak, no threshold), and so is the name (the server then names the wave). Blank lines are
/// skipped; errors name the line.
pub fn parse_waves(text: &str) -> Result<Vec<NewWave>, String> {
    let mut waves = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let wave = parse_wave(line).map_err(|err| format!("Waves, line {}: {err}", index + 1))?;
        waves.push(wave);
    }
    if waves.is_empty() {
        return Err("Add at least one wave, one per line.".to_owned());
    }
    Ok(waves)
}

fn parse_wave(line: &str) -> Result<NewWave, String> {
    let mut parts = line.split(';');
    let head = parts.next().unwrap_or_default();
    let (name, pairs) = match head.split_once(':') {
        Some((name, pairs)) => (name.trim(), pairs),
        None => ("", head),
    };
    let mut selector = Selector::default();
    for pair in pairs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = key_value(pair)?;
        if key == "environment" {
            if selector.environment.is_some() {
                return Err("environment is given twice".to_owned());
            }
            selector.environment = Some(value.to_owned());
        } else if selector
            .labels
            .insert(key.to_owned(), value.to_owned())
            .is_some()
        {
            return Err(format!("the label {key} is given twice"));
        }
    }
    let mut wave = NewWave {
        name: name.to_owned(),
        selector,
        approvals: 1,
        soak_secs: 0,
        violation_threshold: None,
    };
    for setting in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = key_value(setting)?;
        match key {
            "approvals" => wave.approvals = number(key, value)?,
            "soak" => wave.soak_secs = number(key, value)?,
            "threshold" => wave.violation_threshold = Some(number(key, value)?),
            other => {
                return Err(format!(
                    "unknown setting `{other}` (use approvals=N, soak=SECONDS or threshold=N)"
                ))
            }
        }
    }
    Ok(wave)
}

fn key_value(text: &str) -> Result<(&str, &str), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() => {
            Ok((key.trim(), value.trim()))
        }
        _ => Err(format!(
            "`{text}` is not key=value (write a wave as name: environment=dev; approvals=1)"
        )),
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key} must be a whole number, not `{value}`"))
}

/// The proposal the form describes, or what is wrong with it.
pub(super) fn proposal(
    policy: &str,
    version: &str,
    mode: &str,
    namespaces: &str,
    note: &str,
    waves: &str,
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
    Ok(NewRollout {
        policy: policy.trim().to_owned(),
        version,
        mode,
        waves: parse_waves(waves)?,
        namespaces: namespaces
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        note: note.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_waves_are_dev_then_prod_with_one_approval_each() {
        let waves = parse_waves(DEFAULT_WAVES).expect("the default parses");
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].name, "dev");
        assert_eq!(waves[0].selector.environment.as_deref(), Some("dev"));
        assert!(waves[0].selector.labels.is_empty());
        assert_eq!(waves[1].name, "prod");
        assert_eq!(waves[1].selector.environment.as_deref(), Some("prod"));
        assert!(waves
            .iter()
            .all(|w| w.approvals == 1 && w.soak_secs == 0 && w.violation_threshold.is_none()));
    }

    #[test]
    fn a_full_line_sets_every_field() {
        let waves = parse_waves(
            "canary: environment=prod, team=a , tier=1; approvals=2; soak=600; threshold=5",
        )
        .expect("parses");
        assert_eq!(
            waves,
            vec![NewWave {
                name: "canary".into(),
                selector: Selector {
                    environment: Some("prod".into()),
                    labels: labels(&[("team", "a"), ("tier", "1")]),
                },
                approvals: 2,
                soak_secs: 600,
                violation_threshold: Some(5),
            }]
        );
    }

    #[test]
    fn names_selectors_and_settings_are_optional_and_blank_lines_are_skipped() {
        let waves = parse_waves("\n  all:  \n\nenvironment=dev;;approvals=0\n").expect("parses");
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].name, "all");
        assert_eq!(waves[0].selector, Selector::default());
        assert_eq!(waves[0].approvals, 1);
        assert_eq!(waves[1].name, "");
        assert_eq!(waves[1].selector.environment.as_deref(), Some("dev"));
        assert_eq!(waves[1].approvals, 0);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_waves("dev: environment=dev\n\nprod: environment").expect_err("refused");
        assert!(err.contains("line 3"), "{err}");
        let err = parse_waves("dev: environment=dev; approvals=two").expect_err("refused");
        assert!(err.contains("line 1") && err.contains("approvals"), "{err}");
        let err = parse_waves("a: x=1\nb: x=2; speed=3").expect_err("refused");
        assert!(err.contains("line 2") && err.contains("speed"), "{err}");
        let err = parse_waves("a: environment=dev, environment=prod").expect_err("refused");
        assert!(err.contains("line 1") && err.contains("twice"), "{err}");
        let err = parse_waves("a: x=1; soak=-5").expect_err("refused");
        assert!(err.contains("soak"), "{err}");
        assert!(parse_waves("  \n\n").is_err());
    }

    #[test]
    fn the_form_becomes_a_proposal() {
        let input = proposal(
            "p1",
            "",
            "warn",
            " web, ,payments ",
            " first ",
            DEFAULT_WAVES,
        )
        .expect("valid");
        assert_eq!(input.policy, "p1");
        assert_eq!(input.version, None);
        assert_eq!(input.mode, Mode::Warn);
        assert_eq!(
            input.namespaces,
            vec!["web".to_owned(), "payments".to_owned()]
        );
        assert_eq!(input.note, "first");
        assert_eq!(input.waves.len(), 2);
        let input = proposal("p1", "3", "enforce", "", "", DEFAULT_WAVES).expect("valid");
        assert_eq!(input.version, Some(3));
        assert!(proposal("", "", "audit", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "three", "audit", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "0", "audit", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "", "loud", "", "", DEFAULT_WAVES).is_err());
        assert!(proposal("p1", "", "audit", "", "", "").is_err());
    }

    #[test]
    fn labels_read_as_people_write_them() {
        assert_eq!(version_label(4), "v4");
        assert_eq!(version_label(0), "—");
        assert_eq!(soak_label(0), "none");
        assert_eq!(soak_label(90), "90 s");
        assert_eq!(soak_label(600), "10 min");
        assert_eq!(soak_label(7200), "2 h");
        assert_eq!(
            threshold_label(Some(3)),
            "at most 3 new violations (checked once violations are collected)"
        );
    }
}
