//! `palisade-site-tool INPUT.wasm OUT_DIR NAME`: turns the compiled browser bundle into the
//! modules the site serves, in two steps:
//!
//! 1. cuts it at its split points (the lazy routes in `app/src/lib.rs`): a main module, one
//!    module per split point and per piece of code several of them share, the loader those
//!    modules import, and the manifest the server reads to tell the browser which modules a page
//!    needs. The loader's and the manifest's names are the ones Leptos's `HydrationScripts`
//!    looks for;
//! 2. runs wasm-bindgen on the main module (`--target web`, no TypeScript, the linker's exports
//!    kept for the split modules, names left mangled), writing `NAME.js` and `NAME.wasm`.

use std::path::{Path, PathBuf};

use eyre::{bail, eyre, Result, WrapErr};

/// The loader's name as Leptos expects it when file names are not hashed.
const LOADER: &str = "__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [input, out_dir, name] => {
            let out_dir = PathBuf::from(out_dir);
            let main_module = split(Path::new(input), &out_dir, name)?;
            bindgen(&main_module, &out_dir, name)?;
            std::fs::remove_file(&main_module)
                .wrap_err_with(|| format!("removing {}", main_module.display()))
        }
        _ => bail!("usage: palisade-site-tool INPUT.wasm OUT_DIR NAME"),
    }
}

/// Step 1: writes the split modules, the loader and the manifest into `out_dir`, and returns the
/// path of the main module (left for step 2).
fn split(input: &Path, out_dir: &Path, name: &str) -> Result<PathBuf> {
    let input_wasm =
        std::fs::read(input).wrap_err_with(|| format!("reading {}", input.display()))?;
    let main_out = out_dir.join(format!("{name}_split.wasm"));
    let main_module = format!("./{name}.js");
    let link_name = format!("./{LOADER}");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&input_wasm);
        opts.output_dir = out_dir;
        opts.main_out_path = &main_out;
        opts.main_module = &main_module;
        opts.link_name = &link_name;
        opts
    })?;
    let manifest = serde_json::to_string_pretty(&split.prefetch_map)?;
    std::fs::write(out_dir.join(MANIFEST), manifest).wrap_err("writing the manifest")?;
    Ok(main_out)
}

/// Step 2: `NAME.js` (the glue) and `NAME.wasm` (the main module as the glue expects it). Every
/// option is set as the `wasm-bindgen` command sets it for `--target web --no-typescript
/// --keep-lld-exports --no-demangle`, so the output is the command's byte for byte.
fn bindgen(main_module: &Path, out_dir: &Path, name: &str) -> Result<()> {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .web(true)
        .map_err(|e| eyre!("{e:#}"))?
        .input_path(main_module)
        .out_name(name)
        .debug(false)
        .demangle(false)
        .keep_lld_exports(true)
        .keep_debug(false)
        .split_debug_info(false)
        .remove_name_section(false)
        .remove_producers_section(false)
        .typescript(false)
        .omit_imports(false)
        // The library's default is to omit it; the command's is to keep it.
        .omit_default_module_path(false)
        .split_linked_modules(false)
        .js_string_builtins(false)
        .ts_typed_array_buffers(false)
        .reset_state_function(false)
        .force_enable_abort_handler(false);
    // The command passes its hidden `--reference-types` flag (off); the wasm's target features
    // decide either way.
    #[allow(deprecated)]
    bindgen.reference_types(false);
    bindgen
        .generate(out_dir)
        .map_err(|e| eyre!("wasm-bindgen: {e:#}"))?;
    let glue_wasm = out_dir.join(format!("{name}_bg.wasm"));
    std::fs::rename(&glue_wasm, out_dir.join(format!("{name}.wasm")))
        .wrap_err_with(|| format!("renaming {}", glue_wasm.display()))
}
