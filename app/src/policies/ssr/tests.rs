//! The policies service against real databases: a SQLite file and a fresh PostgreSQL database
//! (`PALISADE_TEST_POSTGRES_URL`, which `scripts/test` sets; the PostgreSQL tests fail loudly
//! without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod checks;

use super::*;
use crate::auth::Role;
use crate::db::testing::{database, on_both_backends, Backend};
use crate::error::ServerError;
use crate::policies::{Expect, Part, Problem, TestCase};
use crate::staging::ssr as staging;
use crate::testruns::ssr::run as run_tests;

fn author() -> Principal {
    Principal::new("u-author", "Ada Author", Role::Author)
}

fn viewer() -> Principal {
    Principal::new("u-viewer", "Vic Viewer", Role::Viewer)
}

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn audit_actions(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_entries ORDER BY at_ms, action")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

/// Adopt the library entry `entry` as `who`.
async fn adopt(db: &Db, who: &Principal, now: i64, entry: &str) -> ServerResult<SaveOutcome> {
    create(
        db,
        who,
        now,
        NewPolicy::Library {
            entry: entry.into(),
        },
    )
    .await
}

fn saved(outcome: SaveOutcome) -> (String, i64) {
    match outcome {
        SaveOutcome::Saved {
            policy_id, version, ..
        } => (policy_id, version),
        SaveOutcome::Invalid { problems } => panic!("not saved: {problems:?}"),
    }
}

fn invalid(outcome: SaveOutcome) -> Vec<Problem> {
    match outcome {
        SaveOutcome::Invalid { problems } => problems,
        SaveOutcome::Saved { .. } => panic!("an invalid draft was saved"),
    }
}

async fn lifecycle(backend: Backend) {
    let db = database(backend).await;
    let ada = author();

    // A viewer is refused by the one authorize function, and nothing is written.
    let refused = adopt(&db, &viewer(), 1_000, "disallow-privileged").await;
    assert!(
        matches!(refused, Err(ServerError::User(AppError::Forbidden(m))) if m.contains("author"))
    );
    assert_eq!(count(&db, "policies").await, 0);

    // Adopt from the library: policy, texts, tags and cases copied.
    let (id, first_number) = saved(
        adopt(&db, &ada, 1_000, "disallow-privileged")
            .await
            .unwrap(),
    );
    assert_eq!(first_number, 1);
    let detail = detail(&db, &viewer(), &id).await.unwrap();
    assert_eq!(detail.policy.name, "disallow-privileged");
    assert_eq!(detail.policy.engine, Engine::Vap);
    assert_eq!(detail.policy.category, "pod-security");
    assert!(detail
        .current
        .content
        .controls
        .iter()
        .any(|c| c.starts_with("cis:")));
    assert!(!detail.current.content.description.is_empty());
    assert!(detail.current.content.tests.len() >= 3);
    assert_eq!(detail.current.author_name, "Ada Author");
    // The same entry twice is a conflict, not a second policy.
    let twice = adopt(&db, &ada, 1_001, "disallow-privileged").await;
    assert!(
        matches!(twice, Err(ServerError::User(AppError::Conflict(_)))),
        "{twice:?}"
    );

    // A broken CEL expression is refused at its line; nothing is written.
    let before_versions = count(&db, "policy_versions").await;
    let before_audit = count(&db, "audit_entries").await;
    let mut broken = detail.current.content.clone();
    let line = broken
        .source
        .lines()
        .position(|l| l.contains("size(variables.privileged) == 0"))
        .unwrap()
        + 1;
    broken.source = broken.source.replace(
        "size(variables.privileged) == 0",
        "size(variables.privileged) == = 0",
    );
    let problems = invalid(
        save(&db, &ada, 2_000, &id, 1, broken, "broken")
            .await
            .unwrap(),
    );
    assert!(
        problems
            .iter()
            .any(|p| p.part == Part::Source && p.line == line),
        "expected a problem at line {line}: {problems:?}"
    );
    assert_eq!(count(&db, "policy_versions").await, before_versions);
    assert_eq!(count(&db, "audit_entries").await, before_audit);

    // Saving exactly what is there is refused: every version is a change.
    let same = save(&db, &ada, 2_000, &id, 1, detail.current.content.clone(), "").await;
    assert!(
        matches!(same, Err(ServerError::User(AppError::Invalid(m))) if m.contains("nothing to save"))
    );

    // A real change is version 2; version 1 stays exactly as it was.
    let mut changed = detail.current.content.clone();
    changed.remediation = "Remove privileged: true.".into();
    changed.tests.push(TestCase {
        name: "a plain pod is denied (wrong on purpose)".into(),
        yaml: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: nginx:1.27}\n".into(),
        expect: Expect::Deny,
        message: None,
    });
    let (_, two) = saved(
        save(
            &db,
            &ada,
            3_000,
            &id,
            1,
            changed.clone(),
            "clearer remediation",
        )
        .await
        .unwrap(),
    );
    assert_eq!(two, 2);
    let first = version(&db, &viewer(), &id, 1).await.unwrap();
    assert_eq!(first, detail.current, "version 1 changed after a save");
    // Saving on top of an old version is a conflict.
    let mut late = detail.current.content.clone();
    late.description = "late".into();
    let stale = save(&db, &ada, 3_500, &id, 1, late, "").await;
    assert!(
        matches!(stale, Err(ServerError::User(AppError::Conflict(_)))),
        "{stale:?}"
    );

    // The diff shows the change, with line numbers.
    let diff = diff(&db, &viewer(), &id, 1, 2).await.unwrap();
    let names: Vec<&str> = diff.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["remediation", "tests.yaml"]);
    assert!(diff.files[0]
        .lines
        .iter()
        .any(|l| l.op == crate::policies::DiffOp::Added && l.text.contains("privileged: true")));

    // Tests: the deliberately wrong case fails with the engine's verdict; results are stored.
    let refused_run = run_tests(&db, &viewer(), 4_000, &id, 2).await;
    assert!(matches!(
        refused_run,
        Err(ServerError::User(AppError::Forbidden(_)))
    ));
    let run = run_tests(&db, &ada, 4_000, &id, 2).await.unwrap();
    assert_eq!(run.summary.failed, 1, "{run:?}");
    assert_eq!(run.summary.passed, changed.tests.len() - 1);
    let wrong = run.results.last().unwrap();
    assert_eq!(wrong.actual.as_deref(), Some("allow"));
    assert!(
        wrong.reason.contains("expected deny, got allow"),
        "{wrong:?}"
    );
    let denied = run
        .results
        .iter()
        .find(|r| r.expected == Expect::Deny && r.status == crate::policies::CaseStatus::Passed)
        .unwrap();
    assert!(
        denied.messages.iter().any(|m| m.contains("rivileged")),
        "{denied:?}"
    );
    let stored = latest_run(&db, &viewer(), &id, 2).await.unwrap().unwrap();
    assert_eq!(stored, run);
    assert!(latest_run(&db, &viewer(), &id, 1).await.unwrap().is_none());

    // Staging: modes per environment; nothing live yet.
    let refused_mode = set_mode(&db, &viewer(), 5_000, &id, "prod", Some(Mode::Enforce)).await;
    assert!(matches!(
        refused_mode,
        Err(ServerError::User(AppError::Forbidden(_)))
    ));
    set_mode(&db, &ada, 5_000, &id, "dev", Some(Mode::Warn))
        .await
        .unwrap();
    let staged = staging::view(&db, &ada, &id, 5_000).await.unwrap();
    let dev = staged
        .modes
        .iter()
        .find(|m| m.environment == "dev")
        .unwrap();
    assert_eq!(dev.mode, Some(Mode::Warn));
    assert!(staged.live.is_empty());
    let enforce = staged
        .manifests
        .iter()
        .find(|m| m.mode == Mode::Enforce)
        .unwrap();
    let yaml = enforce.yaml.as_ref().unwrap();
    assert!(
        yaml.contains("- Deny") && yaml.contains("ValidatingAdmissionPolicyBinding"),
        "{yaml}"
    );
    let audit = staging::manifests(&db, &viewer(), &id, Mode::Audit, 5_000)
        .await
        .unwrap();
    assert!(
        audit.contains("- Audit") && !audit.contains("- Deny"),
        "{audit}"
    );
    set_mode(&db, &ada, 5_001, &id, "dev", Some(Mode::Enforce))
        .await
        .unwrap();
    let staged = staging::view(&db, &ada, &id, 5_001).await.unwrap();
    assert_eq!(staged.modes[0].mode, Some(Mode::Enforce));
    assert!(matches!(
        set_mode(&db, &ada, 5_002, &id, "Prod EU", Some(Mode::Audit)).await,
        Err(ServerError::User(AppError::Invalid(_)))
    ));

    // The list: search and filters.
    saved(
        adopt(&db, &ada, 6_000, "pod-security-baseline")
            .await
            .unwrap(),
    );
    let all = list(&db, &viewer(), &PolicyFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let privileged = &all[0];
    assert_eq!(privileged.name, "disallow-privileged");
    assert_eq!(privileged.current_version, 2);
    assert_eq!(privileged.last_run.as_ref().map(|r| r.failed), Some(1));
    // Intended is not live: the mode filter reads what clusters run (a rollout's deployments).
    assert!(privileged.live.is_empty());
    sqlx::query(
        "INSERT INTO deployments (cluster_id, policy_id, version, mode, manifests, rollout_id, \
         applied_ms) VALUES ('c-1', $1, 2, 'enforce', '[]', 'r-1', 6001)",
    )
    .bind(&privileged.id)
    .execute(db.pool())
    .await
    .unwrap();
    let only = |filter: PolicyFilter| {
        let db = db.clone();
        async move {
            list(&db, &viewer(), &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
        }
    };
    // One filter field set at a time (as the query string sets it), and the names it leaves.
    for (field, value, expected) in [
        ("q", "DISALLOW-PRIV", &["disallow-privileged"][..]),
        ("q", "100%_", &[]),
        ("engine", "pod-security", &["pod-security-baseline"]),
        ("mode", "enforce", &["disallow-privileged"]),
        ("mode", "none", &["pod-security-baseline"]),
        (
            "framework",
            "soc2",
            &["disallow-privileged", "pod-security-baseline"],
        ),
    ] {
        let filter: PolicyFilter = serde_json::from_value(json!({ field: value })).unwrap();
        assert_eq!(only(filter).await, expected, "{field} = {value:?}");
    }
    assert!(list(
        &db,
        &viewer(),
        &PolicyFilter {
            mode: "loud".into(),
            ..Default::default()
        }
    )
    .await
    .is_err());

    // Library: the adopted entries point at their policies.
    let entries = library(&db, &viewer()).await.unwrap();
    let adopted = entries
        .iter()
        .find(|e| e.id == "disallow-privileged")
        .unwrap();
    assert_eq!(adopted.adopted_as.as_deref(), Some(id.as_str()));

    // Every change left an audit entry, in its own transaction.
    let actions = audit_actions(&db).await;
    for action in [
        "policy.create",
        "policy.save",
        "policy.run_tests",
        "policy.set_mode",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing in {actions:?}"
        );
    }
    assert_eq!(actions.iter().filter(|a| *a == "policy.create").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "policy.save").count(), 1);
    db.close().await;
}

async fn pasted_yaml(backend: Backend) {
    let db = database(backend).await;
    let ada = author();
    // Gatekeeper: template + constraint, engine detected.
    let blank = templates::blank(Engine::Gatekeeper, "require-owner");
    let (id, _) = saved(
        create(
            &db,
            &ada,
            1,
            NewPolicy::Yaml {
                source: blank.source.clone(),
                params: String::new(),
            },
        )
        .await
        .unwrap(),
    );
    // Gatekeeper names a template after its constraint kind, lower-cased.
    let detail = detail(&db, &ada, "requireowner").await.unwrap();
    assert_eq!(detail.policy.id, id);
    assert_eq!(detail.policy.engine, Engine::Gatekeeper);
    // A template without a constraint is refused with a reason.
    let lone = blank.source.split("\n---\n").next().unwrap().to_owned();
    let problems = invalid(
        create(
            &db,
            &ada,
            2,
            NewPolicy::Yaml {
                source: lone,
                params: String::new(),
            },
        )
        .await
        .unwrap(),
    );
    assert!(
        problems[0].message.contains("no Constraint"),
        "{problems:?}"
    );
    // Pod Security entry.
    let pss = "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {name: pss-restricted}\nspec: {level: restricted, version: latest}\n";
    saved(
        create(
            &db,
            &ada,
            3,
            NewPolicy::Yaml {
                source: pss.into(),
                params: String::new(),
            },
        )
        .await
        .unwrap(),
    );
    let bad_level = pss
        .replace("restricted,", "strict,")
        .replace("pss-restricted", "pss-strict");
    assert!(!invalid(
        create(
            &db,
            &ada,
            4,
            NewPolicy::Yaml {
                source: bad_level,
                params: String::new()
            }
        )
        .await
        .unwrap()
    )
    .is_empty());
    // YAML that is not a policy, and broken YAML at its line.
    let problems = invalid(
        create(
            &db,
            &ada,
            5,
            NewPolicy::Yaml {
                source: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".into(),
                params: String::new(),
            },
        )
        .await
        .unwrap(),
    );
    assert!(problems[0].message.contains("no policy here"));
    let problems = invalid(
        create(
            &db,
            &ada,
            6,
            NewPolicy::Yaml {
                source: "apiVersion: v1\nkind: [\n".into(),
                params: String::new(),
            },
        )
        .await
        .unwrap(),
    );
    assert!(problems[0].line >= 2, "{problems:?}");
    // Blank templates of every engine are valid and their own cases pass.
    for engine in Engine::ALL {
        let name = format!("blank-{}", engine.as_str());
        let (id, _) = saved(
            create(&db, &ada, 7, NewPolicy::Blank { engine, name })
                .await
                .unwrap(),
        );
        let run = run_tests(&db, &ada, 8, &id, 1).await.unwrap();
        assert_eq!(
            run.summary.failed + run.summary.skipped,
            0,
            "{engine:?}: {run:?}"
        );
        assert!(run.summary.passed >= 2);
    }
    assert!(matches!(
        create(
            &db,
            &ada,
            9,
            NewPolicy::Blank {
                engine: Engine::Vap,
                name: "Bad Name".into()
            }
        )
        .await
        .unwrap(),
        SaveOutcome::Invalid { .. }
    ));
    // 2 policies from YAML, one blank per engine; the refused ones wrote nothing.
    let created = 2 + Engine::ALL.len() as i64;
    assert_eq!(count(&db, "policies").await, created);
    assert_eq!(count(&db, "policy_versions").await, created);
    assert_eq!(
        audit_actions(&db)
            .await
            .iter()
            .filter(|a| *a == "policy.create")
            .count() as i64,
        created
    );
    db.close().await;
}

on_both_backends!(lifecycle: sqlite_policy_lifecycle, postgres_policy_lifecycle);
on_both_backends!(
    pasted_yaml: sqlite_pasted_yaml_and_blank_templates,
    postgres_pasted_yaml_and_blank_templates
);

/// A stored value Palisade does not know is an error, never read as some default engine.
#[tokio::test]
async fn an_unknown_stored_engine_is_an_error_not_a_default() {
    let db = database(Backend::Sqlite).await;
    let ada = author();
    let outcome = adopt(&db, &ada, 1_000, "disallow-privileged")
        .await
        .unwrap();
    let (id, _) = saved(outcome);
    sqlx::query("UPDATE policies SET engine = 'kubewarden' WHERE id = $1")
        .bind(&id)
        .execute(db.pool())
        .await
        .unwrap();
    for result in [
        list(&db, &ada, &PolicyFilter::default()).await.map(|_| ()),
        detail(&db, &ada, &id).await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.user(), None, "{err}");
        assert!(
            err.to_string().contains("unknown engine `kubewarden`"),
            "{err}"
        );
    }
}
