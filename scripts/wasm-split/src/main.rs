//! `palisade-wasm-split INPUT.wasm OUT_DIR NAME`: cuts the browser bundle at its split points
//! (the lazy routes in `app/src/lib.rs`).
//!
//! Writes into OUT_DIR the main module `NAME_split.wasm` (for wasm-bindgen), one module per
//! split point and per piece of code several of them share, the loader those modules import,
//! and the manifest the server reads to tell the browser which modules a page needs. The loader's
//! and the manifest's file names are the ones Leptos's `HydrationScripts` looks for.

use std::path::PathBuf;

use eyre::{bail, Result, WrapErr};

/// The loader's name as Leptos expects it when file names are not hashed.
const LOADER: &str = "__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir, name] = args.as_slice() else {
        bail!("usage: palisade-wasm-split INPUT.wasm OUT_DIR NAME");
    };
    let out_dir = PathBuf::from(out_dir);
    let input_wasm = std::fs::read(input).wrap_err_with(|| format!("reading {input}"))?;
    let main_out = out_dir.join(format!("{name}_split.wasm"));
    let main_module = format!("./{name}.js");
    let link_name = format!("./{LOADER}");

    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&input_wasm);
        opts.output_dir = &out_dir;
        opts.main_out_path = &main_out;
        opts.main_module = &main_module;
        opts.link_name = &link_name;
        opts
    })?;

    let manifest = serde_json::to_string_pretty(&split.prefetch_map)?;
    std::fs::write(out_dir.join(MANIFEST), manifest).wrap_err("writing the manifest")?;
    for module in &split.split_modules {
        println!("{}", module.display());
    }
    Ok(())
}
