#!/usr/bin/env python3
"""Whole-process speed of `palisade check` against `gator test` on the same Pods.

For every gatekeeper-library template that has sample constraints
(`<template dir>/samples/*/constraint.yaml` under $PALISADE_ORACLES/gatekeeper-library/library),
and then for all of them at once, both tools evaluate the template and its sample constraints over
the same Pods (written by `cargo run --release -p palisade-engine --example gatekeeper_pods`).
Each command runs --runs times, the two alternating; the median wall time of each, their ratio,
and each tool's count of violating objects (from one extra run with JSON output) are printed as a table.

    cargo build --release -p palisade-server --bin palisade
    cargo run --release -p palisade-engine --example gatekeeper_pods -- 5000 /tmp/gk/pods.yaml
    GOBIN=/tmp/gator-bin GOFLAGS=-mod=mod \
        go install github.com/open-policy-agent/gatekeeper/v3/cmd/gator@v3.23.1
    PALISADE_ORACLES=/work/shared/oracles scripts/compare-gator.py \
        --palisade $CARGO_TARGET_DIR/release/palisade --gator /tmp/gator-bin/gator \
        --pods /tmp/gk/pods.yaml --runs 5

`--only privileged-containers` limits the run to templates whose directory name contains that
text (the whole-library row is then left out unless --all is also given).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def templates(library: Path):
    """(name, template.yaml, [constraint.yaml, ...]) for each template with sample constraints."""
    found = []
    for template in sorted(library.rglob("template.yaml")):
        constraints = sorted(template.parent.glob("samples/*/constraint.yaml"))
        if constraints:
            found.append((template.parent.name, template, constraints))
    return found


def link(source: Path, target: Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def prepare(work: Path, name: str, pairs, pods: Path):
    """A policy directory for palisade and a directory of everything for gator."""
    root = work / name
    if root.exists():
        shutil.rmtree(root)
    for index, (template, constraints) in enumerate(pairs):
        for dest in (root / "policy", root / "gator"):
            link(template, dest / f"{index:02}-template.yaml")
            for n, constraint in enumerate(constraints):
                link(constraint, dest / f"{index:02}-constraint-{n}.yaml")
    link(pods, root / "gator" / "pods.yaml")
    return root


def commands(args, root: Path, pods: Path, json_output: bool):
    palisade = [args.palisade, "check", "--policy", str(root / "policy"), str(pods)]
    gator = [args.gator, "test", "-f", str(root / "gator")]
    if json_output:
        palisade += ["--output", "json"]
        gator += ["-o", "json"]
    return palisade, gator


def timed(command):
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    # palisade: 0 allowed, 1 denied; gator: 0 or 1 likewise. Anything else is a failure.
    if done.returncode not in (0, 1):
        sys.exit(f"{command[0]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed


def violations(args, root: Path, pods: Path):
    """Each tool's count of objects with a violation, from its JSON output (objects, not messages:
    for a template that also carries CEL, gator runs the CEL and joins one object's messages)."""
    palisade, gator = commands(args, root, pods, json_output=True)
    out = subprocess.run(palisade, capture_output=True).stdout
    report = json.loads(out)
    ours = sum(
        1 for r in report["results"]
        if any(f.get("engine") == "gatekeeper" for f in r.get("findings", []))
    )
    out = subprocess.run(gator, capture_output=True).stdout.strip()
    theirs = len({
        (v["violatingObject"]["metadata"].get("namespace", ""),
         v["violatingObject"]["metadata"].get("name", ""),
         v["violatingObject"].get("kind", ""))
        for v in ((json.loads(out) if out else None) or [])
    })
    return ours, theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--palisade", required=True)
    parser.add_argument("--gator", required=True)
    parser.add_argument("--before", help="another palisade binary, timed alongside (ratio before)")
    parser.add_argument("--pods", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gk/compare"))
    parser.add_argument("--only", default="")
    parser.add_argument("--all", action="store_true", help="also the whole-library row with --only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    oracles = os.environ.get("PALISADE_ORACLES")
    if not oracles:
        sys.exit("PALISADE_ORACLES is not set (the gatekeeper-library is read from it)")
    library = Path(oracles) / "gatekeeper-library" / "library"
    found = templates(library)
    if not found:
        sys.exit(f"no template with sample constraints under {library}")
    pods = args.pods.resolve()

    rows = [(name, [(t, c)]) for name, t, c in found if args.only in name]
    if not args.only or args.all:
        rows.append(("ALL (%d templates)" % len(found), [(t, c) for _, t, c in found]))

    figures = []
    before_head = f" {'before s':>9} {'ratio':>7}" if args.before else ""
    print(f"{'template':<40}{before_head} {'palisade s':>10} {'gator s':>9} {'ratio':>7} "
          f"{'objects p/g':>14}")
    for name, pairs in rows:
        root = prepare(args.work, name.split(" ")[0], pairs, pods)
        palisade, gator = commands(args, root, pods, json_output=False)
        ours, theirs, earlier = [], [], []
        for _ in range(args.runs):
            if args.before:
                earlier.append(timed([args.before] + palisade[1:]))
            ours.append(timed(palisade))
            theirs.append(timed(gator))
        p, g = statistics.median(ours), statistics.median(theirs)
        b = statistics.median(earlier) if earlier else None
        counted = violations(args, root, pods)
        figures.append(
            {"template": name, "palisade_s": p, "gator_s": g, "ratio": g / p,
             "violations_palisade": counted[0], "violations_gator": counted[1],
             "palisade_runs": ours, "gator_runs": theirs}
        )
        if b is not None:
            figures[-1].update({"before_s": b, "ratio_before": g / b, "before_runs": earlier})
        mark = "" if counted[0] == counted[1] else "  (differ)"
        before_cells = f" {b:>9.3f} {g / b:>6.1f}x" if b is not None else ""
        print(f"{name:<40}{before_cells} {p:>10.3f} {g:>9.3f} {g / p:>6.1f}x {counted[0]:>6}/{counted[1]:<6}{mark}",
              flush=True)
    per_template = [f for f in figures if not f["template"].startswith("ALL")]
    if per_template:
        total_p = sum(f["palisade_s"] for f in per_template)
        total_g = sum(f["gator_s"] for f in per_template)
        ratios = [f["ratio"] for f in per_template]
        if args.before:
            total_b = sum(f["before_s"] for f in per_template)
            print(f"before: sum {total_b:.2f} s, {total_g / total_b:.1f}x; per-template ratio min "
                  f"{min(f['ratio_before'] for f in per_template):.1f}x, median "
                  f"{statistics.median(f['ratio_before'] for f in per_template):.1f}x")
        print(f"sum over {len(per_template)} templates: palisade {total_p:.2f} s, gator "
              f"{total_g:.2f} s, {total_g / total_p:.1f}x; per-template ratio min "
              f"{min(ratios):.1f}x, median {statistics.median(ratios):.1f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
