#!/usr/bin/env python3
"""The upstream Kubernetes conformance tests (`[Conformance]` in e2e.test, the profiles'
Kubernetes version) against one k4s node, one chunk at a time (issue #27, docs/conformance.md).

    nice -n 19 benchmarks/conformance/build.sh              # dist/conformance/e2e.test, once
    nice -n 19 .k4s/venv/bin/python benchmarks/conformance.py --profile k3s-like --chunk config
    .k4s/venv/bin/python benchmarks/conformance.py --chunk sig-node --dry-run   # no VM: list the tests

Boots `distros/<profile>:initramfs-conformance` (the node with the suite's images, no
registry) with `pants run` through tests/appliance_driver.py, runs e2e.test with
`--ginkgo.focus` on the chunk's Conformance tests, `--provider=skeleton`, the node's admin
kubeconfig and a stock kubectl, the suite's registries remapped to k4s.local
(benchmarks/conformance/repo-list.yaml), and writes the JUnit XML and a summary
(passed/failed/skipped per test, durations, profile, commit, date, machine) to
benchmarks/results/conformance/<profile>/<chunk>.{xml,md,json}. `--dry-run` runs e2e.test's
own dry run (no cluster) and writes benchmarks/results/conformance/dry-run/<chunk>.{md,json}:
the tests the chunk selects. `--table` (no VM) prints every profile's results as
docs/conformance.md shows them (passed / failed / not runnable with the reason per test,
the runs' commits and dates); `--table --write-docs` puts them there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
E2E = REPO / "dist" / "conformance" / "e2e.test"
GINKGO = REPO / "dist" / "conformance" / "ginkgo"  # for --nodes N > 1; build.sh builds it too
REPO_LIST = REPO / "benchmarks" / "conformance" / "repo-list.yaml"
RESULTS = REPO / "benchmarks" / "results" / "conformance"
PROFILES = ("k3s-like", "k0s-like", "kubesolo-like", "talos-like")
CONFORMANCE = r"\[Conformance\]"

# Chunks: each SIG's Conformance tests, and smaller ones that fit a short session. A
# chunk is a regular expression on the test's full text ("[sig-node] ConfigMap should ...
# [NodeConformance] [Conformance]"), ANDed with [Conformance].
SIGS = (
    "api-machinery", "apps", "architecture", "auth", "cli", "instrumentation", "network", "node",
    "scheduling", "storage",
)
CHUNKS: dict[str, str] = {
    **{f"sig-{s}": rf"\[sig-{s}\]" for s in SIGS},
    # ConfigMap, Secret and Downward API as environment variables and volumes
    # ([sig-node] and [sig-storage]), projected volumes among them.
    "config": r"\[sig-(node|storage)\] (ConfigMap|Secrets|Downward API|Projected)",
    # ConfigMap alone (of `config`): a short rerun after a fix to the images.
    "configmap": r"\[sig-(node|storage)\] ConfigMap",
    # The smallest first run: the Downward API as environment variables ([sig-node]).
    "downward-env": r"\[sig-node\] Downward API",
}

# Suites beside the Conformance chunks: upstream tests that are not `[Conformance]`, for
# what issue #27 asks besides conformance. Name -> (focus, skip, why the skipped ones
# are left out). Their results sit beside the chunks' and are tabled apart.
SUITES: dict[str, tuple[str, str, str]] = {
    # NetworkPolicy, enforced by kube-network-policies (docs/appliance.md).
    "netpol": (
        r"\[sig-network\] Netpol ",
        r"\[Feature:SCTPConnectivity\]",
        "SCTP connections: the node images carry no `sctp` kernel module (upstream runs these "
        "only in its SCTP jobs)",
    ),
}


# Conformance tests that cannot pass on a k4s node, and why: the image the test runs
# that is not built here, or what else it needs. Found by reading the tests' sources at
# v1.37.2, not all yet confirmed by a run. `--table` derives docs/conformance.md's
# tables from this and the results; test_conformance.py checks each name against
# e2e.test's dry run (benchmarks/results/conformance/dry-run/all.json).
NGINX = "needs e2e's nginx 1.27.0-2 image: the nginx web server, a C program"
DNS = "needs e2e's glibc-dns-testing 2.1.1 image: Debian with `dig` (dnsutils, C)"
NOT_RUNNABLE: dict[str, str] = {
    "[sig-node] Pods should support retrieving logs from the container over websockets "
    "[Conformance] [NodeConformance]": NGINX,
    "[sig-network] EndpointsController should create Endpoints for Pods matching a Service [Conformance]": NGINX,
    "[sig-network] EndpointSlice should create Endpoints and EndpointSlices for Pods matching a Service "
    "[Conformance]": NGINX,
    "[sig-apps] ReplicationController should test the lifecycle of a ReplicationController [Conformance]": NGINX,
    "[sig-node] Pods Extended (pod generation) Pod Generation pod generation should start at 1 and increment "
    "per update [MinimumKubeletVersion:1.34] [Conformance]": NGINX,
    **{f"[sig-network] DNS should {t} [Conformance]": DNS for t in (
        "provide DNS for the cluster", "provide DNS for services", "provide DNS for pods for Hostname",
        "provide DNS for pods for Subdomain", "provide DNS for ExternalName services",
        "provide /etc/hosts entries for the cluster", "resolve DNS of partial qualified names for services [LinuxOnly]",
    )},
    "[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current "
    "Aggregator [LinuxOnly] [Conformance]": "needs e2e's sample-apiserver 1.29.2 and etcd 3.7.0-0 images: Go "
    "programs (k8s.io/sample-apiserver, the etcd the profiles build), not built as images yet",
    "[sig-node] ImageVolume should succeed with pod and pull policy of Always [LinuxOnly] "
    "[MinimumKubeletVersion:1.35] [Conformance]": "pulls e2e's kitten image with policy Always, which needs a "
    "registry (k4s builds kitten, distros/e2e-images:e2e-kitten, but a node has none to pull from), and "
    "checks the volume's etc/os-release for \"Alpine Linux\" (upstream's base image)",
    "[sig-node] Security Context When creating a pod with privileged should run the container as unprivileged "
    "when false [LinuxOnly] [Conformance] [NodeConformance]": "runs `ip link add dummy0 type dummy` in e2e's "
    "busybox, which has no `ip` here (u-root's `ip` would do: a command more in distros/e2e-images:e2e-bb)",
}


def chunk_focus(chunk: str) -> str:
    """The --ginkgo.focus regular expression of a chunk: its tests that are Conformance
    tests. `all` is every Conformance test; a suite (SUITES) has its own focus."""
    if chunk == "all":
        return CONFORMANCE
    if chunk in SUITES:
        return SUITES[chunk][0]
    if chunk not in CHUNKS:
        raise SystemExit(
            f"conformance.py: --chunk {chunk!r} is not a chunk; use one of: all, {', '.join(sorted(CHUNKS))} "
            f"(or a suite: {', '.join(sorted(SUITES))})"
        )
    return f"{CHUNKS[chunk]}.*{CONFORMANCE}"


def chunk_skip(chunk: str) -> str:
    """The --ginkgo.skip regular expression of a chunk ("" for none)."""
    return SUITES[chunk][1] if chunk in SUITES else ""


@dataclass(frozen=True)
class Case:
    name: str
    status: str  # passed, failed, skipped
    seconds: float
    message: str = ""


# Ginkgo's spec states (the `status` attribute of its JUnit testcases) as this summary's.
# "interrupted": the run was stopped (`--timeout`, or a signal) while the test ran: it
# did not finish, so it counts as not run (skipped), like the tests after it.
STATUS = {
    "passed": "passed", "skipped": "skipped", "pending": "skipped", "interrupted": "skipped",
    "failed": "failed", "panicked": "failed", "timedout": "failed", "aborted": "failed",
}


INTERRUPTED = "interrupted: the run stopped (--timeout or a signal) before this test finished"


def parse_junit(xml: str) -> list[Case]:
    """The test cases of an e2e.test JUnit report (junit_01.xml): passed, failed or
    skipped, from Ginkgo's `status` attribute (a <failure>/<error> or <skipped> child where
    there is none). e2e.test reports every test, those the focus left out as skipped;
    Ginkgo's suite-level nodes ([SynchronizedBeforeSuite], ...) are cases too."""
    root = ET.fromstring(xml)
    cases = []
    for tc in root.iter("testcase"):
        failure = tc.find("failure")
        if failure is None:
            failure = tc.find("error")
        status = STATUS.get(tc.get("status", ""))
        if status is None:
            status = "failed" if failure is not None else "skipped" if tc.find("skipped") is not None else "passed"
        message = ""
        # A signal marks the tests it cuts "interrupted", Ginkgo's suite timeout (--timeout)
        # "timedout" with this message: neither finished, so both count as not run.
        cut = failure is not None and "A suite timeout occurred" in (failure.get("message") or failure.text or "")
        if cut or tc.get("status") == "interrupted":
            status, message = "skipped", INTERRUPTED
        elif status == "failed" and failure is not None:
            message = (failure.get("message") or failure.text or "").strip()
        elif status == "skipped" and tc.find("skipped") is not None:
            message = (tc.find("skipped").get("message") or "").strip()
        name = tc.get("name", "").removeprefix("[It] ")  # Ginkgo's node type of a test
        cases.append(Case(name, status, float(tc.get("time") or 0), message))
    return cases


def selected(cases: list[Case], focus: str, skip: str = "") -> list[Case]:
    """The cases a focus (and skip) selects (e2e.test reports the others as skipped)."""
    rx, no = re.compile(focus), re.compile(skip) if skip else None
    return [c for c in cases if rx.search(c.name) and not (no and no.search(c.name))]


def totals(cases: list[Case]) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "skipped": 0}
    for c in cases:
        out[c.status] += 1
    return out


def summary_markdown(meta: dict, cases: list[Case]) -> str:
    t = totals(cases)
    lines = [
        f"# Conformance: {meta['profile']}, chunk {meta['chunk']}",
        "",
        f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped of {len(cases)} "
        f"selected tests; e2e.test ran {meta['seconds']:.0f} s"
        f"{' on ' + str(meta['nodes']) + ' parallel ginkgo processes' if meta.get('nodes', 1) > 1 else ''}.",
        "",
        f"- focus: `{meta['focus']}`",
        f"- profile target: `{meta['target']}`",
        f"- commit {meta['commit']}, {meta['date']}",
        f"- machine: {meta['machine']}",
        *([f"- stopped early: {meta['stopped']} (the tests not run are skipped)"] if meta.get("stopped") else []),
        "",
        "| test | result | seconds |",
        "|---|---|---|",
    ]
    order = {"failed": 0, "skipped": 1, "passed": 2}
    for c in sorted(cases, key=lambda c: (order[c.status], c.name)):
        name = c.name.replace("|", "\\|")
        lines.append(f"| {name} | {c.status} | {c.seconds:.1f} |")
    failed = [c for c in cases if c.status == "failed"]
    if failed:
        lines += ["", "## Failures", ""]
        for c in failed:
            first = c.message.splitlines()[0][:300] if c.message else "(no message)"
            lines.append(f"- {c.name}: `{first}`")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}, {os.cpu_count()} CPUs ({cpu}), QEMU TCG (no KVM)"


def commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    return r.stdout.strip() + ("-dirty" if dirty.strip() else "")


def e2e_args(
    focus: str, report_dir: Path, extra: list[str], nodes: int = 1, skip: str = "", minutes: float = 24 * 60,
) -> list[str]:
    """e2e.test's command line; with nodes > 1, the ginkgo CLI running e2e.test on that
    many parallel processes. Ginkgo itself runs the tests marked Serial (e2e's
    `[Serial]`, framework.WithSerial) one at a time, after the others; e2e.test's JUnit
    report (junit_01.xml) then holds every process's tests. After `minutes` Ginkgo stops
    the run (the tests running then are "interrupted", the rest not run) and still
    writes the report."""
    ginkgo = ["--focus=" + focus, *(["--skip=" + skip] if skip else []), "--no-color", "-v", f"--timeout={minutes:g}m"]
    e2e = ["--provider=skeleton", f"--report-dir={report_dir}", *extra]
    if nodes > 1:
        return [str(GINKGO), f"--nodes={nodes}", *ginkgo, str(E2E), "--", *e2e]
    return [str(E2E), *(f"--ginkgo.{a.lstrip('-')}" for a in ginkgo), *e2e]


def write(out: Path, meta: dict, cases: list[Case], junit: str | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if junit is not None:
        out.with_suffix(".xml").write_text(junit)
    out.with_suffix(".json").write_text(
        json.dumps({**meta, "totals": totals(cases), "cases": [asdict(c) for c in cases]}, indent=1) + "\n"
    )
    out.with_suffix(".md").write_text(summary_markdown(meta, cases))
    print(f"conformance: {totals(cases)} -> {out.with_suffix('.md').relative_to(REPO)}")


def run_e2e(argv: list[str], log: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    with log.open("w") as f:
        subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="k3s-like", choices=PROFILES)
    ap.add_argument("--chunk", default="config", help=f"all, or one of: {', '.join(sorted(CHUNKS))}")
    ap.add_argument("--dry-run", action="store_true", help="no VM: e2e.test's dry run lists the chunk's tests")
    ap.add_argument("--table", action="store_true",
                    help="no VM: print the results table of every profile (from benchmarks/results/conformance/)")
    ap.add_argument("--write-docs", action="store_true", help="with --table: put it into docs/conformance.md")
    ap.add_argument("--ready-timeout", type=float, default=1800, help="seconds to wait for the node to be Ready")
    ap.add_argument("--timeout", type=float, default=24 * 60, metavar="MINUTES",
                    help="stop the tests after this many minutes (those running then and those not started "
                         "count as not run; the report is still written): a chunk that fits a session")
    ap.add_argument("--nodes", type=int, default=1,
                    help="parallel ginkgo processes (dist/conformance/ginkgo, from build.sh); 1: e2e.test alone")
    ap.add_argument("--kubeconfig", type=Path,
                    help="run against this already running node (its admin kubeconfig) instead of booting one")
    args = ap.parse_args()
    if args.table:
        table = conformance_table()
        if args.write_docs:
            DOCS.write_text(docs_with_table(DOCS.read_text(), table))
            print(f"conformance: the table -> {DOCS.relative_to(REPO)}")
        else:
            print(table, end="")
        return
    for exe in (E2E, *((GINKGO,) if args.nodes > 1 else ())):
        if not exe.exists():
            raise SystemExit(f"conformance.py: no {exe.relative_to(REPO)}; build it with "
                             "`nice -n 19 benchmarks/conformance/build.sh` (docs/conformance.md)")
    if args.timeout <= 0:
        raise SystemExit(f"conformance.py: --timeout {args.timeout:g}: give the minutes the tests may run (more than 0)")
    if args.nodes < 1:
        raise SystemExit(f"conformance.py: --nodes {args.nodes}: give 1 or more parallel processes")
    focus, skip = chunk_focus(args.chunk), chunk_skip(args.chunk)
    env = {**os.environ, "KUBE_TEST_REPO_LIST": str(REPO_LIST)}
    meta = {
        "chunk": args.chunk, "focus": focus, "skip": skip, "nodes": args.nodes, "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="k4s-conformance-") as tmp:
        report = Path(tmp) / "report"
        if args.dry_run:
            meta.update(profile="dry-run", target="(none)")
            meta["seconds"] = run_e2e(e2e_args(focus, report, ["--ginkgo.dry-run"], skip=skip), Path(tmp) / "e2e.log", env)
            junit = (report / "junit_01.xml").read_text()
            cases = [Case(c.name, "selected", 0.0) for c in selected(parse_junit(junit), focus, skip)]
            write_dry_run(RESULTS / "dry-run" / args.chunk, meta, cases)
            return
        sys.path.insert(0, str(REPO))
        from tests.appliance_driver import Appliance, stock_kubectl

        target = f"distros/{args.profile}:initramfs-conformance"
        meta.update(profile=args.profile, target=target if not args.kubeconfig else f"(running node, {args.kubeconfig})")
        log = RESULTS / args.profile / f"{args.chunk}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if args.kubeconfig:
            extra = [f"--kubeconfig={args.kubeconfig}", f"--kubectl-path={stock_kubectl()}"]
            meta["seconds"] = run_e2e(e2e_args(focus, report, extra, args.nodes, skip, args.timeout), log, env)
        else:
            vm = Appliance(target, Path(tmp) / "console.log")
            try:
                vm.start()
                ready = vm.wait("the node to be Ready", vm.node_ready, args.ready_timeout)
                print(f"conformance: {target} Ready {ready:.0f} s after QEMU started")
                meta["ready_seconds"] = round(ready)
                extra = [f"--kubeconfig={vm.kubeconfig}", f"--kubectl-path={stock_kubectl()}"]
                meta["seconds"] = run_e2e(e2e_args(focus, report, extra, args.nodes, skip, args.timeout), log, env)
            finally:
                vm.stop()
                (log.parent / f"{args.chunk}.console.log").write_text(vm.console_text()[-200_000:])
        junit_file = report / "junit_01.xml"
        if not junit_file.exists():
            raise SystemExit(f"conformance.py: e2e.test wrote no JUnit report; see {log}")
        junit = junit_file.read_text()
        cases = selected(parse_junit(junit), focus, skip)
        if any(c.message == INTERRUPTED for c in cases):
            meta["stopped"] = f"--timeout {args.timeout:g} min ran out, or a signal"
        write(RESULTS / args.profile / args.chunk, meta, cases, junit)


DOCS = REPO / "docs" / "conformance.md"
TABLE_BEGIN = "<!-- BEGIN: benchmarks/conformance.py --table (do not edit by hand) -->"
TABLE_END = "<!-- END: benchmarks/conformance.py --table -->"


def latest_results(profile_dir: Path) -> tuple[dict[str, dict], list[dict]]:
    """A profile's results: each test's latest case (by the run's date: chunks overlap,
    a later run of a test wins), and the runs (chunk, commit, date, totals) by date."""
    runs = sorted((r for r in (json.loads(f.read_text()) for f in profile_dir.glob("*.json")) if r["chunk"] not in SUITES),
                  key=lambda r: (r["date"], r["chunk"]))
    latest: dict[str, dict] = {}
    for run in runs:
        for case in run["cases"]:
            # A test a later run did not run (skipped, interrupted) keeps its earlier result.
            if case["status"] != "skipped" or case["name"] not in latest:
                latest[case["name"]] = case
    return latest, runs


def conformance_table(results: Path = RESULTS) -> str:
    """docs/conformance.md's results: per profile the Conformance tests passed, failed,
    not runnable (NOT_RUNNABLE, unless a run says otherwise) and not run yet, with the
    runs' commits and dates; then the failures and the not-runnable tests with their
    reasons. Derived from benchmarks/results/conformance/ and e2e.test's dry run."""
    every = json.loads((results / "dry-run" / "all.json").read_text())["tests"]
    rows = ["| profile | passed | failed | not runnable | not run yet | runs (chunk: commit, date) |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    failures = []
    for profile in PROFILES:
        latest, runs = latest_results(results / profile)
        state = {"passed": 0, "failed": 0, "not runnable": 0, "not run yet": 0}
        for name in every:
            case = latest.get(name)
            if case and case["status"] in ("passed", "failed"):
                state[case["status"]] += 1
                if case["status"] == "failed":
                    first = (case["message"].splitlines() or ["(no message)"])[0][:200]
                    failures.append(f"| {profile} | {_cell(name)} | `{_cell(first)}` |")
            else:
                state["not runnable" if name in NOT_RUNNABLE else "not run yet"] += 1
        done = "; ".join(f"{r['chunk']} ({r['totals']['passed']}/{sum(r['totals'].values())}): "
                         f"{r['commit']}, {r['date'][:10]}" for r in runs) or "none yet"
        rows.append(f"| {profile} | {state['passed']} | {state['failed']} | {state['not runnable']} | "
                    f"{state['not run yet']} | {done} |")
    out = [f"Of the {len(every)} Conformance tests of e2e.test v1.37.2 (`--ginkgo.dry-run`):", "", *rows, ""]
    if failures:
        out += ["Failed (the latest run of each test):", "", "| profile | test | failure |", "| --- | --- | --- |",
                *failures, ""]
    out += suites_table(results)
    out += [f"Not runnable on a k4s node ({len(NOT_RUNNABLE)}; `NOT_RUNNABLE` in benchmarks/conformance.py):", "",
            "| test | why |", "| --- | --- |"]
    out += [f"| {_cell(name)} | {_cell(why)} |" for name, why in sorted(NOT_RUNNABLE.items())]
    return "\n".join(out) + "\n"


def suites_table(results: Path = RESULTS) -> list[str]:
    """The suites' latest run per profile (SUITES: not Conformance tests), as table lines."""
    rows = []
    for profile in PROFILES:
        for suite, (_, skip, why) in sorted(SUITES.items()):
            f = results / profile / f"{suite}.json"
            if f.exists():
                r = json.loads(f.read_text())
                t = r["totals"]
                rows.append(f"| {profile} | {suite} | {t['passed']} | {t['failed']} | {t['skipped']} | "
                            f"`{_cell(skip)}`: {_cell(why)} | {r['commit']}, {r['date'][:10]} |")
    if not rows:
        return []
    return ["Other upstream suites (not Conformance tests; `SUITES` in benchmarks/conformance.py):", "",
            "| profile | suite | passed | failed | skipped | left out, and why | run |",
            "| --- | --- | ---: | ---: | ---: | --- | --- |", *rows, ""]


def _cell(text: str) -> str:
    """`text` as one cell of a markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def docs_with_table(docs: str, table: str) -> str:
    """`docs` with the text between TABLE_BEGIN and TABLE_END replaced by `table`."""
    begin, end = docs.index(TABLE_BEGIN) + len(TABLE_BEGIN), docs.index(TABLE_END)
    return docs[:begin] + "\n" + table + docs[end:]


def write_dry_run(out: Path, meta: dict, cases: list[Case]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(c.name for c in cases)
    out.with_suffix(".json").write_text(json.dumps({**meta, "count": len(names), "tests": names}, indent=1) + "\n")
    lines = [f"# Conformance tests of chunk {meta['chunk']} (e2e.test --ginkgo.dry-run)", "",
             f"{len(names)} tests; focus `{meta['focus']}`; commit {meta['commit']}, {meta['date']}.", ""]
    lines += [f"- {n}" for n in names]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"conformance: {meta['chunk']}: {len(names)} tests -> {out.with_suffix('.md').relative_to(REPO)}")


if __name__ == "__main__":
    main()
