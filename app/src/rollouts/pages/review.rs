//! What an approver reviews: the version's test run and the exact manifests that will be applied.

use super::*;
use crate::impact::watch::{ImpactProgress, ImpactWatch};

/// What the review panel shows of an `apply` rollout: the stored test run of its version, and the
/// change it proposes (that version's manifests as its steps will apply them, and their diff
/// against what each of its clusters runs now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReviewData {
    pub(super) summary: RolloutSummary,
    pub(super) tests: Result<Option<TestRun>, AppError>,
    pub(super) change: Result<ProposedChange, AppError>,
    pub(super) evidence: Result<crate::violations::Evidence, AppError>,
}

/// What the review shows: for an `apply`, its tests, change and evidence; for a rollback or a
/// removal, what its stored plan does on each cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one value per page, never stored in bulk
enum Reviewed {
    Apply(ReviewData),
    Undo(RolloutSummary, Result<ProposedChange, AppError>),
}

/// What an approver needs to decide, loaded once per rollout (outside the refetching
/// `Transition`, so it does not reload every two seconds).
#[component]
pub(super) fn Review(id: Memo<String>) -> impl IntoView {
    let review = Resource::new(
        move || id.get(),
        |id| async move {
            let summary = get_rollout(id).await?.summary;
            let change = get_proposed_change(summary.id.clone()).await;
            if summary.kind != RolloutKind::Apply {
                return Ok::<_, AppError>(Reviewed::Undo(summary, change));
            }
            let tests = get_test_run(summary.policy_id.clone(), summary.version).await;
            let evidence = crate::violations::rollout_evidence(summary.id.clone(), 7).await;
            Ok(Reviewed::Apply(ReviewData {
                summary,
                tests,
                change,
                evidence,
            }))
        },
    );

    // What the rollout would do on its clusters, from the inventory: read once the page runs in
    // the browser (it evaluates every inventoried object), and again on request.
    let browser = crate::ui::in_browser();
    let watch = ImpactWatch::polling();
    let impact = Resource::new(
        move || (id.get(), browser.get()),
        move |(id, browser)| async move {
            if !browser {
                return None;
            }
            let rollout = get_rollout(id.clone()).await.ok()?;
            let found = get_rollout_impact(id, watch.start()).await;
            watch.finish();
            Some((rollout, found))
        },
    );
    // The impact panel, under either kind of review.
    let impact_panel = move || {
        view! {
            <ImpactProgress watch testid="review-impact-progress" />
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match impact.await {
                        Some((rollout, found)) => view! {
                            <ReviewImpact rollout found refresh=move || impact.refetch() />
                        }.into_any(),
                        None => ().into_any(),
                    }
                })}
            </Suspense>
        }
    };
    view! {
        <Suspense fallback=|| view! { <p class="muted" data-testid="review-loading">"Loading the review…"</p> }>
            {move || Suspend::new(async move {
                match review.await {
                    Ok(Reviewed::Apply(data)) => view! {
                        <ReviewPanel data />
                        {impact_panel()}
                    }.into_any(),
                    Ok(Reviewed::Undo(summary, change)) => view! {
                        <UndoPanel summary change />
                        {impact_panel()}
                    }.into_any(),
                    // The rollout did not load, which the summary reports.
                    Err(_) => ().into_any(),
                }
            })}
        </Suspense>
    }
}

/// What the rollout would do on its clusters, per wave, for the approver; refreshed on request.
#[component]
fn ReviewImpact(
    rollout: Rollout,
    found: Result<crate::rollouts::RolloutImpact, AppError>,
    #[prop(into)] refresh: Callback<()>,
) -> impl IntoView {
    let impact = match found {
        Ok(impact) => impact,
        Err(err) => {
            return view! { <ErrorNote text=err.to_string() testid="review-impact-error" /> }
                .into_any()
        }
    };
    let (headline, tone) = super::impact::headline(&impact, rollout.summary.kind);
    let acknowledged = rollout.acknowledged_denials.map(|n| {
        format!(
            "When proposed, it would have denied {n} running workload{}, which {} acknowledged.",
            if n == 1 { "" } else { "s" },
            rollout.summary.proposer_name
        )
    });
    view! {
        <section class="panel" aria-labelledby="review-impact-heading" data-testid="review-impact">
            <PanelHeader id="review-impact-heading" title="Impact, from the inventory" refresh=refresh refresh_testid="review-impact-refresh" />
            <p class=format!("review-evidence {tone}") data-testid="review-impact-summary">{headline}</p>
            {acknowledged.map(|text| view! { <p class="muted" data-testid="review-impact-acknowledged">{text}</p> })}
            <super::impact::ImpactTable impact testid="review-impact-table" />
            <p class="muted small">
                <a href=format!("/policies/{}?tab=impact", rollout.summary.policy_id)>"The workloads, and what enforcing any version would do, on the policy's Impact tab"</a>
            </p>
        </section>
    }
    .into_any()
}

/// Each cluster's part of a change, folded: what it runs now and the diff. `target` is the
/// version and mode an `apply` brings (a cluster already there has no change); `None` for a
/// rollback or removal, where each cluster has its own target.
fn cluster_changes(clusters: Vec<ClusterChange>, target: Option<(i64, Mode)>) -> impl IntoView {
    clusters
        .into_iter()
        .map(|c| {
            let running = match c.running {
                Some((v, m)) if Some((v, m)) == target => {
                    format!("already runs version {v} in {} mode", m.as_str())
                }
                Some((v, m)) => format!("runs version {v} in {} mode now", m.as_str()),
                None => "runs nothing of this policy yet".to_owned(),
            };
            let unchanged = c.diff.added == 0 && c.diff.removed == 0;
            view! {
                <details class="review-cluster" data-testid="review-cluster">
                    <summary>
                        {format!(
                            "{} ({}): {running}; {}",
                            c.cluster,
                            c.wave,
                            if unchanged {
                                "no change".to_owned()
                            } else {
                                format!("+{} −{} lines", c.diff.added, c.diff.removed)
                            },
                        )}
                    </summary>
                    <FileDiffTable file=c.diff />
                </details>
            }
        })
        .collect_view()
}

/// The review of a rollback or removal: the plan fixed when it was asked for, per cluster.
#[component]
fn UndoPanel(summary: RolloutSummary, change: Result<ProposedChange, AppError>) -> impl IntoView {
    let what = if summary.kind == RolloutKind::Rollback {
        "Each cluster gets back what it ran before the rollout this one undoes. Against what it runs now:"
    } else {
        "The policy's objects leave each cluster. Against what it runs now:"
    };
    let body = match change {
        Ok(change) => view! {
            <p class="muted small">{what}</p>
            {cluster_changes(change.clusters, None)}
        }
        .into_any(),
        Err(err) => {
            view! { <ErrorNote text=err.to_string() testid="review-manifests-error" /> }.into_any()
        }
    };
    view! {
        <section class="panel review" aria-labelledby="review-heading" data-testid="rollout-review">
            <h2 id="review-heading">"Review"</h2>
            <h3>{format!("What the {} changes", summary.kind.as_str())}</h3>
            {body}
            <p>
                "Source, test cases and history: "
                <a href=format!("/policies/{}", summary.policy_id) data-testid="review-policy">{summary.policy_name.clone()}</a>
            </p>
        </section>
    }
}

/// `3 passed, 0 failed`, with skipped cases only when there are any.
fn run_counts(run: &TestRun) -> String {
    let s = &run.summary;
    let skipped = if s.skipped > 0 {
        format!(", {} skipped", s.skipped)
    } else {
        String::new()
    };
    format!("{} passed, {} failed{skipped}", s.passed, s.failed)
}

#[component]
fn ReviewPanel(data: ReviewData) -> impl IntoView {
    let ReviewData {
        summary: s,
        tests,
        change,
        evidence,
    } = data;
    let evidence_view = match evidence {
        Ok(e) => {
            // Green only for a claim that holds; red for violations; otherwise not yet known.
            let tone = if e.clean() {
                "good"
            } else if e.clusters.iter().any(|c| c.violations > 0) {
                "bad"
            } else {
                "unknown"
            };
            let workloads = (!e.workloads.is_empty()).then(|| {
                view! {
                    <ul class="review-workloads" data-testid="review-workloads">
                        {e.workloads.iter().map(|v| view! {
                            <li>
                                {format!("{} · {} {}/{} · {} ×{}", v.cluster_name, v.resource, v.namespace, v.name, v.action.as_str(), v.count)}
                                <span class="muted">{format!(" {}", v.message)}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }
            });
            view! {
                <p class=format!("review-evidence {tone}") data-testid="review-evidence">{e.summary()}</p>
                {workloads}
                <p class="muted small">
                    <a href=format!("/violations?policy={}&days={}", e.policy_id, e.days)>"All of this policy's violations"</a>
                </p>
            }
            .into_any()
        }
        Err(err) => load_error(err),
    };
    let version = s.version;
    let mode = s.mode;

    let tests_view = match tests {
        Ok(None) => view! {
            <p class="review-tests missing" data-testid="review-tests">
                {format!("No test run stored for version {version}.")}
            </p>
            <p class="muted small">"Run the policy's tests on its page before approving."</p>
        }
        .into_any(),
        Ok(Some(run)) => {
            let tone = if run.summary.failed > 0 || run.error.is_some() {
                "bad"
            } else {
                "good"
            };
            let error = run.error.clone().map(|text| {
                view! { <p class="error">{format!("The cases could not run: {text}")}</p> }
            });
            let failures = run
                .results
                .iter()
                .filter(|r| r.status == CaseStatus::Failed)
                .map(|r| {
                    view! { <li><strong>{r.name.clone()}</strong>": "{r.reason.clone()}</li> }
                })
                .collect::<Vec<_>>();
            let failures = (!failures.is_empty())
                .then(|| view! { <ul class="review-failures" data-testid="review-failures">{failures}</ul> });
            view! {
                <p class=format!("review-tests {tone}") data-testid="review-tests">{run_counts(&run)}</p>
                <p class="muted small">
                    {format!(
                        "Version {}, run by {} at {}.",
                        run.summary.version,
                        run.run_by_name,
                        format_time(run.summary.run_ms),
                    )}
                </p>
                {error}
                {failures}
            }
            .into_any()
        }
        Err(err) => view! {
            <p class="error" role="alert" data-testid="review-tests-error">{err.to_string()}</p>
        }
        .into_any(),
    };

    let manifests_view = match change {
        Err(err) => view! {
            <ErrorNote text=err.to_string() testid="review-manifests-error" />
        }
        .into_any(),
        Ok(change) => {
            let clusters = cluster_changes(change.clusters, Some((change.version, change.mode)));
            view! {
                <details class="review-manifests">
                    <summary>
                        {format!("Manifests in {} mode (version {})", change.mode.as_str(), change.version)}
                    </summary>
                    <pre class="code manifests" data-testid="review-manifests" tabindex="0" aria-label="The manifests this step applies">{change.manifests}</pre>
                </details>
                <p class="muted small">"Against what each cluster runs now:"</p>
                {clusters}
            }
            .into_any()
        }
    };

    view! {
        <section class="panel review" aria-labelledby="review-heading" data-testid="rollout-review">
            <h2 id="review-heading">"Review"</h2>
            <h3>{format!("Tests of version {version}")}</h3>
            {tests_view}
            <h3>{format!("What the clusters receive in {} mode", mode.as_str())}</h3>
            {manifests_view}
            <h3>"Violations on these clusters (last 7 days)"</h3>
            {evidence_view}
            <p>
                "Source, test cases and history: "
                <a href=format!("/policies/{}", s.policy_id) data-testid="review-policy">{s.policy_name.clone()}</a>
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_run_reads_as_counts_with_skipped_only_when_some_were() {
        let mut run = TestRun {
            id: "r1".into(),
            summary: crate::policies::RunSummary {
                version: 2,
                run_ms: 0,
                passed: 3,
                failed: 0,
                skipped: 0,
                duration_us: 10,
            },
            run_by_name: "author".into(),
            error: None,
            results: Vec::new(),
        };
        assert_eq!(run_counts(&run), "3 passed, 0 failed");
        run.summary.failed = 1;
        run.summary.skipped = 2;
        assert_eq!(run_counts(&run), "3 passed, 1 failed, 2 skipped");
    }
}
