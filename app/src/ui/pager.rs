//! The one pager: newest first, paged by key (or, for the compliance page's cluster columns, by
//! position), its place in the URL.

use leptos::prelude::*;

use super::url::query;

/// Links to the newest page and, when there is more, to the next older one. `path` is the page's
/// own address and `filter` its query string without the cursor, so a page of results can be
/// shared and reloaded, and is rendered on the server like any other page.
#[component]
pub fn Pager(
    label: &'static str,
    path: &'static str,
    filter: String,
    next: Option<String>,
    #[prop(optional, into)] shown: Option<String>,
    /// The words of the two links, when they are not "Most recent" and "Older".
    #[prop(optional)]
    words: Option<(&'static str, &'static str)>,
) -> impl IntoView {
    let (first_words, next_words) = words.unwrap_or(("Most recent", "Older"));
    let href = |after: Option<&str>| {
        let after = query(&[("after", after.unwrap_or_default())]);
        let joined = [filter.as_str(), after.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        if joined.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{joined}")
        }
    };
    let newest = href(None);
    let older = next.as_deref().map(|next| href(Some(next)));
    view! {
        <nav class="pager" aria-label=label>
            <a class="button small" href=newest>{first_words}</a>
            {shown.map(|shown| view! { <span>{shown}</span> })}
            {older.map(|href| view! { <a class="button small" href=href rel="next">{next_words}</a> })}
        </nav>
    }
}
