//! What the service checks and derives without a database: library entries, drafts, manifests,
//! content hashes and Rego.

use super::*;

#[test]
fn every_library_entry_adopts_and_passes_its_own_cases() {
    for entry in library::entries().unwrap() {
        let content = library::content(entry).unwrap();
        let checked = validate::check(&content);
        assert!(
            checked.problems.is_empty(),
            "{}: {:?}",
            entry.id,
            checked.problems
        );
        assert_eq!(checked.name.as_deref(), Some(entry.id));
        let ran = validate::run_cases(&content);
        assert!(ran.error.is_none(), "{}: {:?}", entry.id, ran.error);
        let bad: Vec<_> = ran
            .results
            .iter()
            .filter(|r| r.status != crate::policies::CaseStatus::Passed)
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", entry.id);
        assert!(!ran.results.is_empty());
    }
}

#[test]
fn drafts_are_checked_part_by_part() {
    let mut content = templates::blank(Engine::Vap, "p");
    content.controls = vec!["cis:5.2.2".into(), "iso:27001".into()];
    content.tests[1].message = Some("(".into());
    content.tests[0].yaml = "kind: Pod\n".into();
    content.params = "apiVersion: v1\nkind: ConfigMap\n".into();
    let problems = validate::check(&content).problems;
    let parts: Vec<Part> = problems.iter().map(|p| p.part).collect();
    // The parameter object is incomplete, and of a kind the blank policy does not declare.
    assert_eq!(
        parts,
        [
            Part::Params,
            Part::Params,
            Part::Controls,
            Part::Test(0),
            Part::Test(1)
        ],
        "{problems:?}"
    );
    assert!(problems[1]
        .message
        .contains("`v1 ConfigMap` is not something a policy may apply"));
    assert_eq!(problems[2].line, 2);
}

#[test]
fn manifests_carry_the_versions_parameters() {
    let entry = palisade_engine::library::entry("allowed-registries")
        .unwrap()
        .unwrap();
    let mut content = library::content(&entry).unwrap();
    content.params = content
        .params
        .replace("registry.example.com/", "mine.example/");
    let yaml = render::manifests(&content, Mode::Warn).unwrap();
    assert!(yaml.contains("mine.example/"), "{yaml}");
    assert_eq!(
        yaml.matches("# ConfigMap palisade-allowed-registries")
            .count(),
        1,
        "{yaml}"
    );
    assert!(yaml.contains("- Warn"));
}

#[test]
fn content_hashes_change_with_any_part() {
    let content = templates::blank(Engine::Vap, "p");
    let mut other = content.clone();
    assert_eq!(content_hash(&content), content_hash(&other));
    other.tests[0].expect = Expect::Warn;
    assert_ne!(content_hash(&content), content_hash(&other));
    assert_eq!(content_hash(&content).len(), 64);
}

/// The first of `problems` stands at `at` (line, column) and says `text`.
fn first_problem_at(problems: &[Problem], at: (usize, usize), text: &str) {
    assert_eq!((problems[0].line, problems[0].column), at, "{problems:?}");
    assert!(problems[0].message.contains(text), "{problems:?}");
}

#[test]
fn rego_is_checked_at_save_as_gatekeeper_admits_it() {
    let blank = templates::blank(Engine::Gatekeeper, "require-owner");
    let line = "msg := \"every pod needs an owner label\"";
    assert!(blank.source.contains(line));
    // A call Palisade never evaluates is a warning at its place; the draft still saves.
    let mut content = blank.clone();
    content.source = blank.source.replace(
        line,
        "msg := sprintf(\"%v\", [http.send({\"method\": \"get\", \"url\": \"https://x\"}).status_code])",
    );
    let problems = validate::check(&content).problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].warning);
    assert!(!crate::policies::Problem::any_blocking(&problems));
    first_problem_at(&problems, (17, 31), "http.send is not evaluable locally");
    // An undefined function is refused, at its line and column.
    content.source = blank.source.replace(line, "msg := strings.no_such(\"x\")");
    let problems = validate::check(&content).problems;
    assert!(crate::policies::Problem::any_blocking(&problems));
    first_problem_at(&problems, (17, 16), "undefined function strings.no_such");
}
