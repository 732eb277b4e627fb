use std::collections::BTreeMap;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn cluster(name: &str, environment: &str, pairs: &[(&str, &str)]) -> Target {
    Target {
        name: name.to_owned(),
        environment: environment.to_owned(),
        labels: labels(pairs),
        disabled: false,
    }
}

fn fleet() -> Vec<Target> {
    vec![
        cluster("dev-a", "dev", &[("team", "a")]),
        cluster("dev-b", "dev", &[("team", "b")]),
        cluster("prod-a", "prod", &[("team", "a"), ("tier", "1")]),
        cluster("prod-b", "prod", &[("team", "b")]),
        Target {
            disabled: true,
            ..cluster("prod-old", "prod", &[("team", "a")])
        },
    ]
}

fn wave(name: &str, environment: &str, pairs: &[(&str, &str)]) -> WaveInput {
    WaveInput {
        name: name.to_owned(),
        labels: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..WaveInput::of_environment(environment)
    }
}

fn problems_of(waves: &[WaveInput]) -> Vec<(usize, WaveField)> {
    check_waves(waves)
        .expect_err("refused")
        .into_iter()
        .map(|p| (p.wave, p.field))
        .collect()
}

#[test]
fn the_default_waves_are_dev_then_prod_with_one_approval_each() {
    let waves = check_waves(&default_waves()).expect("the default is valid");
    assert_eq!(
        waves,
        vec![
            NewWave {
                name: "dev".into(),
                selector: Selector {
                    environment: Some("dev".into()),
                    labels: BTreeMap::new(),
                },
                approvals: 1,
                soak_secs: 0,
                violation_threshold: None,
            },
            NewWave {
                name: "prod".into(),
                selector: Selector {
                    environment: Some("prod".into()),
                    labels: BTreeMap::new(),
                },
                approvals: 1,
                soak_secs: 0,
                violation_threshold: None,
            },
        ]
    );
}

#[test]
fn every_field_reaches_the_wave() {
    let input = WaveInput {
        name: " canary ".into(),
        environment: "prod".into(),
        labels: vec![
            (" team ".into(), " a ".into()),
            (String::new(), String::new()),
            ("tier".into(), "1".into()),
        ],
        approvals: " 2 ".into(),
        soak_minutes: "90".into(),
        threshold: "5".into(),
    };
    assert_eq!(
        check_waves(&[input]).expect("valid"),
        vec![NewWave {
            name: "canary".into(),
            selector: Selector {
                environment: Some("prod".into()),
                labels: labels(&[("team", "a"), ("tier", "1")]),
            },
            approvals: 2,
            soak_secs: 5400,
            violation_threshold: Some(5),
        }]
    );
    // Any environment, no labels: every cluster; an empty soak is none.
    let any = WaveInput {
        soak_minutes: String::new(),
        ..wave("", "", &[])
    };
    let checked = check_waves(&[any]).expect("valid");
    assert_eq!(checked[0].selector, Selector::default());
    assert_eq!(checked[0].soak_secs, 0);
}

#[test]
fn problems_name_the_wave_and_the_field() {
    let bad = |f: fn(&mut WaveInput)| {
        let mut second = wave("prod", "prod", &[]);
        f(&mut second);
        vec![wave("dev", "dev", &[]), second]
    };
    // The second wave, changed by `f`, is refused for `field` alone.
    let refused = |f: fn(&mut WaveInput), field: WaveField| {
        assert_eq!(problems_of(&bad(f)), vec![(1, field)]);
    };
    refused(|w| w.approvals = "two".into(), WaveField::Approvals);
    refused(|w| w.approvals = "6".into(), WaveField::Approvals);
    refused(|w| w.soak_minutes = "-5".into(), WaveField::Soak);
    refused(|w| w.soak_minutes = "1.5".into(), WaveField::Soak);
    refused(|w| w.threshold = "many".into(), WaveField::Threshold);
    refused(
        |w| w.labels = vec![("team".into(), "a".into()), (String::new(), "b".into())],
        WaveField::Label(1),
    );
    refused(
        |w| w.labels = vec![("team".into(), " ".into())],
        WaveField::Label(0),
    );
    refused(
        |w| w.labels = vec![("team".into(), "a".into()), ("team".into(), "b".into())],
        WaveField::Label(1),
    );
    // Two waves the server would give one name: the second is told, naming the first.
    refused(|w| w.name = "dev".into(), WaveField::Name);
    let unnamed = [wave("", "prod", &[]), wave("", "prod", &[("tier", "1")])];
    let problems = check_waves(&unnamed).expect_err("refused");
    assert_eq!(problems[0].field, WaveField::Name);
    assert!(problems[0]
        .message
        .contains("wave 1 is already named `prod`"));
    refused(|w| w.name = "x".repeat(MAX_WAVE_NAME + 1), WaveField::Name);
    assert!(check_waves(&bad(|w| w.name = "x".repeat(MAX_WAVE_NAME))).is_ok());
    // Several problems are all reported, each at its own wave and field.
    let mut first = wave("dev", "dev", &[]);
    first.approvals = "0".into();
    let mut second = wave("", "prod", &[]);
    second.threshold = "-1".into();
    let problems = check_waves(&[first.clone(), second.clone()]).expect_err("refused");
    assert_eq!(
        problems
            .iter()
            .map(|p| p.describe(&[first.clone(), second.clone()]))
            .collect::<Vec<_>>(),
        vec![
            "Wave 1 (dev), approvals: the first wave needs at least one approval".to_owned(),
            "Wave 2 (prod), violation threshold: give a whole number of violations, or leave it empty for none, not `-1`".to_owned(),
        ]
    );
    // Later waves may go without approval (the server's production rule still applies).
    let mut later = wave("prod", "prod", &[]);
    later.approvals = "0".into();
    assert!(check_waves(&[wave("dev", "dev", &[]), later]).is_ok());
}

#[test]
fn the_preview_takes_what_the_server_takes() {
    let selectors: Vec<Selector> = [
        wave("team a", "", &[("team", "a")]),
        wave("prod", "prod", &[]),
        wave("dev b", "dev", &[("team", "b")]),
        wave("nothing", "staging", &[]),
    ]
    .iter()
    .map(WaveInput::selector)
    .collect();
    let previews = preview(&selectors, &fleet());
    assert_eq!(previews[0].takes, vec!["dev-a", "prod-a"]);
    assert_eq!(previews[0].disabled, vec!["prod-old"]);
    assert_eq!(previews[1].takes, vec!["prod-b"]);
    assert_eq!(previews[1].earlier, vec![("prod-a".to_owned(), 0)]);
    assert_eq!(previews[2].takes, vec!["dev-b"]);
    assert!(previews[3].takes.is_empty() && previews[3].earlier.is_empty());
    let problems = preview_problems(&previews);
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].wave, problems[0].field),
        (3, WaveField::Clusters)
    );
    assert_eq!(problems[0].message, "selects no enabled cluster");
    // A wave whose clusters all went to an earlier wave says so.
    let again = [Selector::default(), Selector::default()];
    let problems = preview_problems(&preview(&again, &fleet()));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].wave, 1);
    assert!(problems[0].message.contains("earlier wave"), "{problems:?}");
    // A half-written label pair does not narrow the preview.
    let half = wave("", "dev", &[("team", "")]).selector();
    assert_eq!(preview(&[half], &fleet())[0].takes, vec!["dev-a", "dev-b"]);
}

#[test]
fn the_form_becomes_a_proposal() {
    let input = proposal(
        "p1",
        "",
        "warn",
        " web, ,payments ",
        " first ",
        &default_waves(),
        Some(&fleet()),
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
    let waves = default_waves();
    let ok = |policy: &str, version: &str, mode: &str| {
        proposal(policy, version, mode, "", "", &waves, Some(&fleet()))
    };
    assert_eq!(ok("p1", "3", "enforce").expect("valid").version, Some(3));
    assert!(ok("", "", "audit").is_err());
    assert!(ok("p1", "three", "audit").is_err());
    assert!(ok("p1", "0", "audit").is_err());
    assert!(ok("p1", "", "loud").is_err());
    assert!(proposal("p1", "", "audit", "", "", &[], Some(&fleet())).is_err());
    let many = vec![WaveInput::of_environment("dev"); MAX_WAVES + 1];
    assert!(proposal("p1", "", "audit", "", "", &many, Some(&fleet())).is_err());
    // A wave that selects nothing is refused before the server is asked, naming the wave.
    let err =
        proposal("p1", "", "audit", "", "", &waves, Some(&fleet()[..2])).expect_err("refused");
    assert_eq!(err, "Wave 2 (prod), clusters: selects no enabled cluster");
    // Without the clusters the server alone judges what a wave selects.
    assert!(proposal("p1", "", "audit", "", "", &waves, None).is_ok());
    let mut bad = default_waves();
    bad[0].approvals = "x".into();
    bad[1].soak_minutes = "y".into();
    let err = proposal("p1", "", "audit", "", "", &bad, Some(&fleet())).expect_err("refused");
    assert!(
        err.starts_with("Wave 1 (dev), approvals:") && err.contains("1 more problem"),
        "{err}"
    );
}

#[test]
fn server_messages_are_placed_at_the_wave_they_name() {
    let waves = vec![
        wave("", "dev", &[]),
        wave("canary", "prod", &[]),
        wave("", "", &[]),
    ];
    assert_eq!(
        wave_named_in(
            "wave `canary` reaches production cluster `p`: it needs at least one approval",
            &waves
        ),
        Some(1)
    );
    assert_eq!(
        wave_named_in("wave `dev` (environment=dev) selects no …", &waves),
        Some(0)
    );
    assert_eq!(wave_named_in("wave `wave 3` selects …", &waves), Some(2));
    assert_eq!(wave_named_in("cluster `x` has no Gatekeeper", &waves), None);
}

#[test]
fn labels_read_as_people_write_them() {
    assert_eq!(version_label(4), "v4");
    assert_eq!(version_label(0), "—");
    assert_eq!(soak_label(0), "none");
    assert_eq!(soak_label(90), "90 s");
    assert_eq!(soak_label(600), "10 min");
    assert_eq!(soak_label(7200), "2 h");
    assert_eq!(minutes_label(0), "none");
    assert_eq!(minutes_label(45), "45 min");
    assert_eq!(minutes_label(90), "1 h 30 min");
    assert_eq!(minutes_label(60 * 24 * 2 + 180), "2 d 3 h");
    assert_eq!(
        threshold_label(Some(3)),
        "at most 3 new violations (checked once violations are collected)"
    );
}
