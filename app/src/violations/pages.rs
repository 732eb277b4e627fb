//! The violations explorer: filters in the URL (so a view can be shared and is rendered on the
//! server), two charts of the last 14 days, a table paged by key, and a CSV export of the same
//! filter.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{
    list_violations, violation_charts, Action, Chart, Source, Violation, ViolationFilter,
    ViolationPage,
};
use crate::clusters::{cluster_names, get_cluster, ClusterName};
use crate::time::{format_date, format_time};
use crate::ui::url::query;
use crate::ui::{load_error, DataTable, Loading, PageHeader, Pager};

const CHART_DAYS: i64 = 14;

/// The filter a query string describes (`cluster`, `namespace`, `policy`, `action`, `source`,
/// `days`, `open`, `after`).
pub fn filter_from_query(get: impl Fn(&str) -> Option<String>) -> ViolationFilter {
    let text = |key: &str| get(key).unwrap_or_default().trim().to_owned();
    let days: i64 = text("days").parse().unwrap_or(0);
    ViolationFilter {
        cluster: text("cluster"),
        namespace: text("namespace"),
        policy: text("policy"),
        action: Action::parse(&text("action")),
        source: Source::parse(&text("source")),
        since_ms: None,
        within_days: (days > 0).then_some(days),
        until_ms: None,
        open: text("open") == "1",
        after: Some(text("after")).filter(|a| !a.is_empty()),
        limit: Some(50),
    }
}

/// The query string of a filter, without `after` (for links that start over, and the export).
pub fn query_of(filter: &ViolationFilter, days: &str) -> String {
    query(&[
        ("cluster", &filter.cluster),
        ("namespace", &filter.namespace),
        ("policy", &filter.policy),
        ("action", filter.action.map_or("", Action::as_str)),
        ("source", filter.source.map_or("", Source::as_str)),
        ("days", days),
        ("open", if filter.open { "1" } else { "" }),
    ])
}

#[component]
pub fn ViolationsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let q = query.get();
        filter_from_query(|k| q.get(k))
    });
    let days = Memo::new(move |_| query.get().get("days").unwrap_or_default());
    let page = Resource::new(move || filter.get(), list_violations);
    let charts = Resource::new(
        move || ViolationFilter {
            after: None,
            ..filter.get()
        },
        |f| violation_charts(f, CHART_DAYS),
    );
    // The cluster choice: on the server only the chosen cluster (one row, so a fleet of hundreds
    // costs the page nothing); every cluster once the page runs in the browser.
    let in_browser = crate::ui::in_browser();
    let clusters = Resource::new(
        move || (filter.get().cluster, in_browser.get()),
        |(chosen, all)| async move {
            if all {
                cluster_names().await
            } else if chosen.is_empty() {
                Ok(Vec::new())
            } else {
                get_cluster(chosen).await.map(|c| {
                    vec![ClusterName {
                        id: c.id,
                        name: c.name,
                    }]
                })
            }
        },
    );
    let export = move || {
        format!(
            "/api/v1/violations/export?format=csv&{}",
            query_of(&filter.get(), &days.get())
        )
    };

    view! {
        <Title text="Violations" />
        <PageHeader title="Violations" purpose="What the clusters report back: audited, warned and denied requests from their apiservers' audit webhooks, and scan findings." />
        <form class="filters" method="get" action="/violations">
            <label>
                "Cluster "
                <select name="cluster">
                    <option value="">"any"</option>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let current = filter.get_untracked().cluster;
                            clusters
                                .await
                                .unwrap_or_default()
                                .into_iter()
                                .map(|c| {
                                    let selected = c.id == current;
                                    view! { <option value=c.id selected=selected>{c.name}</option> }
                                })
                                .collect_view()
                        })}
                    </Suspense>
                </select>
            </label>
            <label>
                "Namespace "
                <input type="search" name="namespace" prop:value=move || filter.get().namespace />
            </label>
            <label>
                "Policy "
                <input type="search" name="policy" placeholder="name or id" prop:value=move || filter.get().policy />
            </label>
            {choice("Action ", "action", Action::ALL, Action::as_str, move || filter.get().action)}
            {choice("Source ", "source", Source::ALL, Source::as_str, move || filter.get().source)}
            <label>
                "Seen in "
                <select name="days">
                    {[("", "all time"), ("1", "the last day"), ("7", "the last 7 days"), ("30", "the last 30 days"), ("90", "the last 90 days")]
                        .into_iter()
                        .map(|(v, label)| view! {
                            <option value=v selected=move || days.get() == v>{label}</option>
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                <input type="checkbox" name="open" value="1" prop:checked=move || filter.get().open />
                " open only"
            </label>
            <button type="submit" class="button small">"Apply"</button>
            <a class="button small" href=export download="violations.csv" rel="external">"Export CSV"</a>
        </form>
        <Suspense fallback=|| view! { <Loading text="Counting…" /> }>
            {move || Suspend::new(async move {
                match charts.await {
                    Ok(c) => view! {
                        <div class="charts">
                            <ChartView title="By policy, per day (last 14 days)" chart=c.by_policy />
                            <ChartView title="By cluster, per day (last 14 days)" chart=c.by_cluster />
                        </div>
                    }
                    .into_any(),
                    Err(err) => load_error(err),
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <Loading text="Reading violations…" /> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <ViolationTable page=p base=query_of(&filter.get_untracked(), &days.get_untracked()) /> }.into_any(),
                    Err(err) => load_error(err),
                }
            })}
        </Suspense>
    }
}

/// A filter's choice among the values of a wire enum, "any" first; the value `chosen` returns
/// (what the URL holds) is the selected one.
fn choice<T: Copy + PartialEq + Send + Sync + 'static, const N: usize>(
    label: &'static str,
    name: &'static str,
    values: [T; N],
    text: fn(T) -> &'static str,
    chosen: impl Fn() -> Option<T> + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <select name=name>
                <option value="">"any"</option>
                {values
                    .into_iter()
                    .map(|value| view! {
                        <option value=text(value) selected=move || chosen() == Some(value)>{text(value)}</option>
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn ViolationTable(page: ViolationPage, base: String) -> impl IntoView {
    if page.items.is_empty() {
        return view! {
            <div class="empty-state">
                <p>
                    "No violations match. Once a cluster posts its audit events to Palisade (Clusters → ingest token), every audited, warned or denied request is counted here by policy, cluster and namespace."
                </p>
            </div>
        }
        .into_any();
    }
    view! {
        <DataTable columns=&["First seen", "Last seen", "Cluster", "Policy", "Action", "Resource", "Seen", "Source", "Message"] class="violations-table">
                {page.items.into_iter().map(|v: Violation| {
                    let resource = if v.namespace.is_empty() {
                        format!("{} {}", v.resource, v.name)
                    } else {
                        format!("{} {}/{}", v.resource, v.namespace, v.name)
                    };
                    let state = if v.resolved_ms > 0 { " (resolved)" } else { "" };
                    let seen = seen(v.source, v.count);
                    view! {
                        <tr>
                            <td>{format_time(v.first_ms)}</td>
                            <td>{format_time(v.last_ms)}</td>
                            <td>{v.cluster_name}</td>
                            <td><code>{v.policy}</code></td>
                            <td><span class=format!("badge action-{}", v.action.as_str())>{v.action.as_str()}</span></td>
                            <td>{resource}</td>
                            <td class="number" data-testid="violation-seen">{seen}</td>
                            <td>{v.source.as_str()}{state}</td>
                            <td>{v.message}</td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
        <Pager label="Violation pages" path="/violations" filter=base next=page.next />
    }
    .into_any()
}

/// A line chart as inline SVG: one polyline per series, a legend with totals.
#[component]
pub fn ChartView(title: &'static str, chart: Chart) -> impl IntoView {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    let max = chart
        .series
        .iter()
        .flat_map(|s| s.counts.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = chart.buckets.len().max(2);
    let x = move |i: usize| i as f64 * W / (n - 1) as f64;
    let y = move |c: i64| H - c as f64 * H / max as f64;
    let first = chart.buckets.first().map(|b| format_date(*b));
    let last = chart.buckets.last().map(|b| format_date(*b));
    if chart.series.is_empty() {
        // No axes to nothing: a blank plot the size of a full one reads as broken.
        return view! {
            <figure class="chart" data-testid="chart-empty">
                <figcaption>{title}</figcaption>
                <p class="empty-state">"Nothing counted in this period."</p>
            </figure>
        }
        .into_any();
    }
    view! {
        <figure class="chart">
            <figcaption>{title}</figcaption>
            <svg
                viewBox=format!("-40 -10 {} {}", W + 50.0, H + 30.0)
                role="img"
                aria-label=title
                class="line-chart"
            >
                <line x1="0" y1=H.to_string() x2=W.to_string() y2=H.to_string() class="axis" />
                <line x1="0" y1="0" x2="0" y2=H.to_string() class="axis" />
                <text x="-6" y="4" text-anchor="end" class="tick">{max.to_string()}</text>
                <text x="-6" y=H.to_string() text-anchor="end" class="tick">"0"</text>
                <text x="0" y=(H + 18.0).to_string() class="tick">{first.unwrap_or_default()}</text>
                <text x=W.to_string() y=(H + 18.0).to_string() text-anchor="end" class="tick">{last.unwrap_or_default()}</text>
                {chart
                    .series
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let points = s
                            .counts
                            .iter()
                            .enumerate()
                            .map(|(j, c)| format!("{:.1},{:.1}", x(j), y(*c)))
                            .collect::<Vec<_>>()
                            .join(" ");
                        view! {
                            <polyline points=points class=format!("series series-{i}")>
                                <title>{s.name.clone()}</title>
                            </polyline>
                        }
                    })
                    .collect_view()}
            </svg>
            <ul class="legend">
                {chart.series.into_iter().enumerate().map(|(i, s)| {
                    let total: i64 = s.counts.iter().sum();
                    view! { <li><span class=format!("swatch series-{i}")></span>{s.name}" "<span class="muted">{total}</span></li> }
                }).collect_view()}
            </ul>
        </figure>
    }
    .into_any()
}

/// How often a violation was seen, in its source's own unit: an audit count is requests, while a
/// scan or a report sees the same standing violation on every pass.
fn seen(source: Source, count: i64) -> String {
    let plural = if count == 1 { "" } else { "s" };
    match source {
        Source::Audit => format!("{count} request{plural}"),
        Source::Scan => format!("in {count} scan{plural}"),
        Source::Report => format!("in {count} report{plural}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_query_string_is_the_filter() {
        let q: HashMap<&str, &str> = [
            ("cluster", "c1"),
            ("policy", "no privileged"),
            ("action", "deny"),
            ("days", "7"),
            ("open", "1"),
            ("after", "5:ab"),
        ]
        .into_iter()
        .collect();
        let f = filter_from_query(|k| q.get(k).map(|v| (*v).to_owned()));
        assert_eq!(f.cluster, "c1");
        assert_eq!(f.action, Some(Action::Deny));
        assert_eq!(f.within_days, Some(7));
        assert!(f.open);
        assert_eq!(f.after.as_deref(), Some("5:ab"));
        assert_eq!(
            query_of(&f, "7"),
            "cluster=c1&policy=no%20privileged&action=deny&days=7&open=1"
        );
        let none = filter_from_query(|_| None);
        assert_eq!(none.action, None);
        assert_eq!(none.within_days, None);
        assert_eq!(query_of(&none, ""), "");
    }

    #[test]
    fn seen_speaks_in_the_sources_unit() {
        assert_eq!(seen(Source::Audit, 1), "1 request");
        assert_eq!(seen(Source::Audit, 12), "12 requests");
        assert_eq!(seen(Source::Scan, 3), "in 3 scans");
        assert_eq!(seen(Source::Report, 1), "in 1 report");
    }
}
