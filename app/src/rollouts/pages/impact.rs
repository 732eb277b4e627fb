//! What a rollout would do on each of its clusters, per wave, from their inventories: shown in the
//! propose form (before proposing; an `enforce` that would deny needs an acknowledgement) and in
//! the approver's review (refreshed on request).

use super::*;
use crate::rollouts::RolloutImpact;

/// The sentence that heads an impact: what the rollout would do, in its mode, and whether that
/// can be trusted (an inventory not complete proves nothing).
pub(super) fn headline(impact: &RolloutImpact, kind: RolloutKind) -> (String, &'static str) {
    let clusters = impact.waves.iter().flat_map(|w| &w.clusters);
    let recorded: i64 = clusters.clone().map(|c| c.audit + c.warn).sum();
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    let text = if kind != RolloutKind::Apply {
        // Each cluster goes back to its own earlier state: say what that leaves, against now.
        let newly: i64 = clusters.clone().map(|c| c.newly_denied).sum();
        let stopped: i64 = clusters.clone().map(|c| c.no_longer_denied).sum();
        let noun = if kind == RolloutKind::Rollback {
            "rollback"
        } else {
            "removal"
        };
        format!(
            "After this {noun}, {} running workload{} would be denied ({newly} not denied today), and {stopped} would no longer be.",
            impact.denied,
            plural(impact.denied)
        )
    } else if impact.mode == Mode::Enforce {
        let newly: i64 = clusters.clone().map(|c| c.newly_denied).sum();
        format!(
            "Enforcing would deny {} running workload{} on these clusters, {newly} of them not denied today.",
            impact.denied,
            plural(impact.denied)
        )
    } else {
        format!(
            "This rollout applies {} mode: it would record {recorded} workload{} and deny none.",
            impact.mode.as_str(),
            plural(recorded)
        )
    };
    let incomplete: Vec<&str> = clusters
        .filter(|c| c.listed_ms == 0 || c.partial || !c.unreadable.is_empty())
        .map(|c| c.cluster_name.as_str())
        .collect();
    if !incomplete.is_empty() || !impact.complete {
        let which = if incomplete.is_empty() {
            "some cluster".to_owned()
        } else {
            incomplete.join(", ")
        };
        return (
            format!("{text} Not complete for {which}: its inventory is not whole yet, so there may be more."),
            "unknown",
        );
    }
    let tone = if impact.denied == 0 { "good" } else { "bad" };
    (text, tone)
}

/// The impact per wave and cluster, as a table.
#[component]
pub(super) fn ImpactTable(impact: RolloutImpact, testid: &'static str) -> impl IntoView {
    let rows: Vec<_> = impact
        .waves
        .iter()
        .flat_map(|w| w.clusters.iter().map(move |c| (w.name.clone(), c.clone())))
        .collect();
    view! {
        <DataTable columns=&["Wave", "Cluster", "Deny", "Warn", "Audit", "Excepted", "Objects", "Inventory"] testid>
            {rows
                .into_iter()
                .map(|(wave, c)| {
                    let inventory = if c.listed_ms == 0 {
                        "not complete yet".to_owned()
                    } else if !c.unreadable.is_empty() {
                        format!("cannot read {}", c.unreadable.join(", "))
                    } else if c.partial {
                        "evaluated in part (time budget)".to_owned()
                    } else {
                        format!("listed {}", format_time(c.listed_ms))
                    };
                    let deny_class = if c.deny > 0 { "bad" } else { "" };
                    view! {
                        <tr data-testid="impact-row" data-cluster=c.cluster_name.clone() data-deny=c.deny.to_string()>
                            <td>{wave}</td>
                            <th scope="row">{c.cluster_name.clone()}</th>
                            <td class=deny_class>{c.deny}</td>
                            <td>{c.warn}</td>
                            <td>{c.audit}</td>
                            <td>{c.excepted}</td>
                            <td>{c.objects}</td>
                            <td>{inventory}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::ClusterImpact;
    use crate::rollouts::WaveImpact;

    fn cluster(name: &str, deny: i64, audit: i64, listed_ms: i64) -> ClusterImpact {
        ClusterImpact {
            audit,
            ..ClusterImpact::example(name, name, deny, listed_ms)
        }
    }

    fn impact(mode: Mode, clusters: Vec<ClusterImpact>) -> RolloutImpact {
        RolloutImpact {
            computed_ms: 1,
            mode,
            denied: clusters.iter().map(|c| c.deny).sum(),
            complete: true,
            waves: vec![WaveImpact {
                position: 0,
                name: "dev".to_owned(),
                clusters,
            }],
        }
    }

    #[test]
    fn the_headline_says_what_the_mode_does_and_when_it_cannot_be_trusted() {
        // The headline of applying `impact`: its text and its tone.
        let says = |impact: &RolloutImpact, text: &str, tone: &str| {
            assert_eq!(
                headline(impact, RolloutKind::Apply),
                (text.to_owned(), tone)
            );
        };
        let enforce = impact(
            Mode::Enforce,
            vec![cluster("a", 2, 0, 5), cluster("b", 1, 0, 5)],
        );
        says(
            &enforce,
            "Enforcing would deny 3 running workloads on these clusters, 3 of them not denied today.",
            "bad",
        );
        let audit = impact(Mode::Audit, vec![cluster("a", 0, 1, 5)]);
        says(
            &audit,
            "This rollout applies audit mode: it would record 1 workload and deny none.",
            "good",
        );
        let unknown = impact(Mode::Enforce, vec![cluster("a", 0, 0, 0)]);
        let (text, tone) = headline(&unknown, RolloutKind::Apply);
        assert_eq!(tone, "unknown");
        assert!(
            text.ends_with(
                "Not complete for a: its inventory is not whole yet, so there may be more."
            ),
            "{text}"
        );
        // A removal leaves nothing: what is denied today would no longer be.
        let mut removed = cluster("a", 0, 0, 5);
        removed.no_longer_denied = 4;
        assert_eq!(
            headline(&impact(Mode::Enforce, vec![removed]), RolloutKind::Remove).0,
            "After this removal, 0 running workloads would be denied (0 not denied today), and 4 would no longer be."
        );
    }
}
