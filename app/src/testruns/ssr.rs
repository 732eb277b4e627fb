//! The test-run use case on the server.

use crate::auth::Principal;
use crate::db::Db;
use crate::error::{OrFault, ServerResult};
use crate::exceptions::ssr::{active_for, cases};
use crate::policies::ssr::{run_input, store_run, validate};
use crate::policies::TestRun;

/// Runs the cases of version `number` of the policy `key` and stores the results with it.
pub async fn run(
    db: &Db,
    who: &Principal,
    now: i64,
    key: &str,
    number: i64,
) -> ServerResult<TestRun> {
    let input = run_input(db, who, key, number).await?;
    let exceptions = active_for(db, &input.policy_id, now).await?;
    let content = input.content.clone();
    // The engine is synchronous and CPU-bound: keep it off the async workers.
    let ran = tokio::task::spawn_blocking(move || {
        let mut ran = validate::run_cases(&content);
        cases::honour(&content, &mut ran, &exceptions, now);
        ran
    })
    .await
    .or_fault()?;
    store_run(db, who, now, &input, ran).await
}
