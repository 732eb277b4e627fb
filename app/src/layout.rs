//! The frame around every page: brand, navigation (collapsible on narrow screens) and main content.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::sections::SECTIONS;
use crate::ui::PageHeader;

/// Header, navigation and the page in `children`.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let (menu_open, set_menu_open) = signal(false);
    // Flips once the page inside is hydrated and interactive (see [`PageHydrated`]).
    let (hydrated, set_hydrated) = signal(false);
    provide_context(PageReady(set_hydrated));
    crate::auth::guard::provide_me();

    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <div
            class="app"
            class:menu-open=move || menu_open.get()
            data-hydrated=move || hydrated.get().to_string()
        >
            <header class="topbar">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    "Palisade"
                </a>
                <button
                    type="button"
                    class="menu-toggle"
                    aria-controls="primary-nav"
                    aria-expanded=move || menu_open.get().to_string()
                    on:click=move |_| set_menu_open.update(|open| *open = !*open)
                >
                    {move || if menu_open.get() { "Close menu" } else { "Menu" }}
                </button>
                <crate::auth::pages::UserMenu />
            </header>
            <nav id="primary-nav" class="sidebar" aria-label="Primary">
                <ul>
                    {SECTIONS
                        .iter()
                        .map(|section| {
                            view! {
                                <li>
                                    <A href=section.href exact=true on:click=move |_| set_menu_open.set(false)>
                                        {section.title}
                                    </A>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <main id="main" class="content" tabindex="-1">
                {children()}
            </main>
        </div>
    }
}

/// Set by the page inside the [`Layout`] once it is hydrated.
#[derive(Clone, Copy)]
struct PageReady(WriteSignal<bool>);

/// Put after a page's view: marks the frame `data-hydrated="true"` once the page before it is
/// hydrated and its controls answer. A page's code may arrive after the frame's (lazy routes), so
/// the frame alone cannot tell. Effects run only in the browser.
#[component]
pub fn PageHydrated() -> impl IntoView {
    if let Some(PageReady(set)) = use_context::<PageReady>() {
        Effect::new(move |_| set.set(true));
    }
}

/// Shown for any path that is not a section.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }

    view! {
        <Title text="Not found" />
        <PageHeader title="Page not found" purpose="There is no page at this address. Use the navigation to find your way." />
        <PageHydrated />
    }
}

/// Read the text of the file chosen in an `<input type=file>` into `into` (in the browser): the
/// upload of policy test cases and of kubeconfigs.
pub fn read_file_into(ev: leptos::ev::Event, into: RwSignal<String>) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        leptos::task::spawn_local(async move {
            if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
                if let Some(text) = text.as_string() {
                    into.set(text);
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, into);
}
