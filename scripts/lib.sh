# Shared by scripts/run and scripts/test: install what the build needs, once, and reuse it after.
# Every install step checks first, so a second run only checks.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Build outputs are kept under $HOME so a fresh clone (as CI makes) reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
# Tools we build (scripts/site-tool) live there too, so they survive a fresh clone.
TOOLS_ROOT="${PALISADE_TOOLS_ROOT:-$HOME/.cache/palisade/tools}"
export PATH="$TOOLS_ROOT/bin:$HOME/.cargo/bin:$ROOT/e2e/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
  if [ -z "$APT_UPDATED" ]; then
    as_root apt-get update -qq >&2
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# The version of package $1 that lock file $2 resolved.
locked_version() {
  awk -v want="name = \"$1\"" '$0 == want { getline; gsub(/version = |"/, ""); print; exit }' "$2"
}

ensure_build_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown >&2
  fi
  ensure_node_packages
  [ -f "$ROOT/e2e/node_modules/binaryen/index.js" ] || die "binaryen missing after npm install"
}

# playwright-core (browser tests) and binaryen (wasm-opt for the browser bundle), pinned by package-lock.json.
ensure_node_packages() {
  command -v npm >/dev/null || die "npm not found; install Node.js"
  local stamp="$ROOT/e2e/node_modules/.palisade-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$ROOT/e2e/package-lock.json" "$stamp"; then
    say "installing npm packages for e2e/ (binaryen, playwright-core)"
    (cd "$ROOT/e2e" && npm ci --no-audit --no-fund >&2)
    cp "$ROOT/e2e/package-lock.json" "$stamp"
  fi
}

ensure_test_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's Chromium for the browser tests"
    apt_install chromium
  fi
  if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "installing PostgreSQL for the database tests"
    apt_install postgresql
  fi
  command -v openssl >/dev/null || apt_install openssl
}

# The directory of PostgreSQL's server binaries (initdb, pg_ctl, postgres).
pg_bindir() {
  if command -v initdb >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
  else
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The cargo profile the server is built with for scripts/run: `dev` unless PALISADE_PROFILE
# names another (`release` for production). `dev` shares much of its work with `cargo test`, and
# on a fresh machine it compiles in about half `release`'s time; the code the browser runs is
# optimised either way (build_site).
server_profile() {
  printf '%s' "${PALISADE_PROFILE:-dev}"
}

# Where cargo puts the server binary built with server_profile.
server_bin() {
  local profile
  profile="$(server_profile)"
  [ "$profile" = dev ] && profile=debug
  printf '%s/%s/palisade' "$CARGO_TARGET_DIR" "$profile"
}

build_server() {
  say "building the server (profile $(server_profile))"
  (cd "$ROOT" && cargo build --profile "$(server_profile)" --locked -p palisade-server \
    --bin palisade >&2)
}

# Our build tool (scripts/site-tool, over wasm-bindgen's and wasm-split's libraries): cuts the
# browser bundle at its lazy routes and writes wasm-bindgen's glue. Built once per version of its
# source and lock file; its wasm-bindgen must be the one Cargo.lock resolved.
ensure_site_tool() {
  local stamp="$TOOLS_ROOT/palisade-site-tool.stamp" want wbg tool
  wbg="$(locked_version wasm-bindgen "$ROOT/Cargo.lock")"
  tool="$(locked_version wasm-bindgen-cli-support "$ROOT/scripts/site-tool/Cargo.lock")"
  [ -n "$wbg" ] && [ "$wbg" = "$tool" ] \
    || die "Cargo.lock has wasm-bindgen '$wbg' but scripts/site-tool has wasm-bindgen-cli-support '$tool': pin the same version in scripts/site-tool/Cargo.toml"
  want="$(cat "$ROOT/scripts/site-tool/Cargo.lock" "$ROOT/scripts/site-tool/Cargo.toml" \
    "$ROOT/scripts/site-tool/src/main.rs" | cksum)"
  if ! command -v palisade-site-tool >/dev/null || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing palisade-site-tool (scripts/site-tool)"
    CARGO_TARGET_DIR="$TOOLS_ROOT/build" \
      cargo install --locked --path "$ROOT/scripts/site-tool" --root "$TOOLS_ROOT" --force >&2
    echo "$want" > "$stamp"
  fi
}

# The site the server serves (target/site): the browser bundle (the frontend crate for wasm32,
# cut at its lazy routes into a main module and the chunks each page loads on first visit, with
# wasm-bindgen's glue, each module shrunk by wasm-opt), the stylesheet, and a gzip copy of each
# file (the server sends it to browsers that accept gzip). Plain cargo, our site tool and
# binaryen; the file names are the ones the server's shell links to. The tool is installed (when
# missing) while the bundle compiles.
build_site() {
  local site="$ROOT/target/site" front="$CARGO_TARGET_DIR/front"
  local pkg="$site/pkg" tool_pid
  # The shell links `palisade.js` + `palisade.wasm`: LEPTOS_OUTPUT_NAME, set for every build in
  # .cargo/config.toml.
  ensure_site_tool &
  tool_pid=$!
  say "building the browser bundle (wasm32, profile wasm-release)"
  # The splitter needs the linker's relocations to find what each split point reaches.
  (cd "$ROOT" && CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Clink-args=--emit-relocs" \
    cargo build --locked -p palisade-frontend --lib --target wasm32-unknown-unknown \
    --profile wasm-release --target-dir "$front" >&2)
  wait "$tool_pid" || die "palisade-site-tool could not be installed"
  rm -rf "$pkg.new" && mkdir -p "$pkg.new"
  palisade-site-tool "$front/wasm32-unknown-unknown/wasm-release/palisade_frontend.wasm" \
    "$pkg.new" palisade
  # Every module shrunk as `wasm-opt -Oz` would, by binaryen loaded once (scripts/optimize-wasm.mjs).
  node "$ROOT/scripts/optimize-wasm.mjs" "$pkg.new" 2>"$site.wasm-opt.log" \
    || { cat "$site.wasm-opt.log" >&2; die "the browser bundle could not be optimized"; }
  grep -v '^warning: unknown name subsection' "$site.wasm-opt.log" >&2 || true
  rm -f "$site.wasm-opt.log"
  cp "$ROOT/style/main.css" "$pkg.new/palisade.css"
  find "$pkg.new" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.json' \) \
    -exec gzip -9 -k -n {} +
  mkdir -p "$site" && cp -R "$ROOT/public/." "$site/"
  rm -rf "$pkg" && mv "$pkg.new" "$pkg"
}

# The server and its site, side by side: on two cores each fills the other's waits
# (link steps, the bundle's single-threaded link-time optimisation).
build_all() {
  local server_pid
  build_server &
  server_pid=$!
  build_site
  wait "$server_pid" || die "the server did not build"
}
