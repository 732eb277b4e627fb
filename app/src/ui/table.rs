//! The one table every list is drawn in.

use leptos::prelude::*;

/// A table with a header row of `columns` and the rows given as children, inside a wrapper that
/// scrolls sideways on a narrow screen instead of squeezing the columns. `class` adds a class
/// (tests and page styles find a table by it); `testid` names it for the browser tests.
#[component]
pub fn DataTable(
    columns: &'static [&'static str],
    #[prop(optional)] class: &'static str,
    #[prop(optional)] testid: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    let class = if class.is_empty() {
        "table data-table".to_owned()
    } else {
        format!("table data-table {class}")
    };
    view! {
        // A table wider than the screen scrolls inside this wrapper; focusable, so the keyboard
        // can scroll it too.
        <div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways when wider than the screen)">
            <table class=class data-testid=testid>
                <thead>
                    <tr>
                        {columns
                            .iter()
                            .map(|column| view! { <th scope="col">{*column}</th> })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}
