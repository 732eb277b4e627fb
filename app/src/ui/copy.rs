//! A button that puts a text on the clipboard (a token shown once, a kubeconfig), and says
//! whether it worked. Where the browser refuses (no secure context, no permission) it says so and
//! the text stays on screen to select by hand.

use leptos::prelude::*;

/// "Copy" beside `text`; `what` names it for screen readers ("Copy the ingest kubeconfig").
#[component]
pub fn CopyButton(
    text: String,
    what: &'static str,
    /// `data-testid` of the button.
    testid: &'static str,
) -> impl IntoView {
    let status = RwSignal::new(None::<&'static str>);
    let text = StoredValue::new(text);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clipboard = web_sys::window().map(|w| w.navigator().clipboard());
            let Some(clipboard) = clipboard else {
                status.set(Some(
                    "Copying is not available here: select the text instead.",
                ));
                return;
            };
            let promise = clipboard.write_text(&text.get_value());
            leptos::task::spawn_local(async move {
                status.set(Some(
                    match wasm_bindgen_futures::JsFuture::from(promise).await {
                        Ok(_) => "Copied.",
                        Err(_) => "The browser refused to copy: select the text instead.",
                    },
                ));
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (text, status);
    };
    view! {
        <button type="button" class="button small" aria-label=what data-testid=testid on:click=copy>
            "Copy"
        </button>
        <span class="muted small" role="status" data-testid=format!("{testid}-status")>
            {move || status.get().unwrap_or_default()}
        </span>
    }
}
