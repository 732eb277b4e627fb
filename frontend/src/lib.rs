//! The browser entry point: turns the server-rendered HTML into a live application.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(palisade_app::App);
}
