//! Running a policy version's test cases, as a cluster would judge them today: the engine's
//! verdicts, then the exceptions active now (a case an exception covers is allowed and says so).
//! It sits above policies and exceptions so that neither needs the other; the results are stored
//! with the version, by the policies domain.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::policies::TestRun;

#[cfg(feature = "ssr")]
pub mod ssr;

/// Run the cases of version `number` of a policy and store the results with it.
#[server(endpoint = "run_tests", input = Json)]
pub async fn run_tests(id: String, number: i64) -> Result<TestRun, AppError> {
    let call = crate::state::authorized(crate::auth::Action::EditPolicies)?;
    Ok(ssr::run(&call.db, &call.who, call.now, &id, number).await?)
}
