"""benchmarks/conformance.py's pure parts: chunk selection and the JUnit summary, on a
JUnit report that e2e.test v1.37.2 wrote (tests/conformance/junit-config.xml: its dry run
of the `config` chunk, cut to the chunk's 76 tests, Ginkgo's suite nodes and 24 other
tests it reported as skipped; docs/conformance.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks import conformance as c

SAMPLE = Path(__file__).parent / "conformance" / "junit-config.xml"


def test_every_chunk_is_conformance_only() -> None:
    for chunk in [*c.CHUNKS, "all"]:
        focus = re.compile(c.chunk_focus(chunk))
        assert not focus.search("[sig-node] ConfigMap should be consumable via the environment [NodeConformance]")
    rx = re.compile(c.chunk_focus("sig-node"))
    assert rx.search("[sig-node] Pods should get a host IP [NodeConformance] [Conformance]")
    assert not rx.search("[sig-network] DNS should provide DNS for the cluster [Conformance]")
    config = re.compile(c.chunk_focus("config"))
    assert config.search("[sig-storage] Projected secret should be consumable from pods in volume [NodeConformance] [Conformance]")
    assert config.search("[sig-node] Downward API should provide pod UID as env vars [NodeConformance] [Conformance]")
    assert not config.search("[sig-node] Pods should get a host IP [NodeConformance] [Conformance]")
    assert {f"sig-{s}" for s in ("node", "network", "storage", "apps", "api-machinery")} <= set(c.CHUNKS)


def test_an_unknown_chunk_names_the_chunks() -> None:
    with pytest.raises(SystemExit, match=r"--chunk 'sig-nod' is not a chunk; use one of: all, config, configmap, downward-env, sig-api-machinery"):
        c.chunk_focus("sig-nod")


def test_e2e_command_lines(tmp_path: Path) -> None:
    focus = c.chunk_focus("config")
    one = c.e2e_args(focus, tmp_path, ["--kubeconfig=k"])
    assert one[0] == str(c.E2E) and f"--ginkgo.focus={focus}" in one and "--ginkgo.v" in one
    assert one[-3:] == ["--provider=skeleton", f"--report-dir={tmp_path}", "--kubeconfig=k"]
    # Parallel: ginkgo's flags before the binary, e2e.test's after `--`.
    par = c.e2e_args(focus, tmp_path, ["--kubeconfig=k"], nodes=3)
    assert par[:2] == [str(c.GINKGO), "--nodes=3"] and f"--focus={focus}" in par
    sep = par.index("--")
    assert par[sep - 1] == str(c.E2E) and par[sep + 1:] == one[-3:]
    assert not any(a.startswith("--ginkgo.") for a in par)
    # --timeout MINUTES: Ginkgo's suite timeout, both ways.
    assert "--ginkgo.timeout=1440m" in one and "--timeout=1440m" in par
    assert "--ginkgo.timeout=90m" in c.e2e_args(focus, tmp_path, [], minutes=90)


def test_junit_summary_of_an_e2e_report() -> None:
    cases = c.parse_junit(SAMPLE.read_text())
    chosen = c.selected(cases, c.chunk_focus("config"))
    # e2e.test reports every test; the focus picks the chunk's (a dry run passes them).
    assert len(cases) == 107 and len(chosen) == 76
    assert all("[Conformance]" in x.name and x.status == "passed" for x in chosen)
    others = [x for x in cases if x not in chosen and x.name.startswith("[sig-")]
    assert len(others) == 24 and {x.status for x in others} == {"skipped"}
    assert any("[Conformance]" in x.name for x in others)
    assert "[sig-storage] Projected secret should be consumable from pods in volume [Conformance] [NodeConformance]" in {
        x.name for x in chosen}
    t = c.totals(chosen)
    assert sum(t.values()) == len(chosen)
    meta = {"profile": "k3s-like", "chunk": "config", "focus": c.chunk_focus("config"), "target": "t",
            "commit": "abc", "date": "d", "machine": "m", "seconds": 12.0}
    md = c.summary_markdown(meta, chosen)
    assert f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped of {len(chosen)}" in md
    assert md.count("\n| [sig-") == len(chosen)


def test_junit_statuses() -> None:
    xml = """<testsuites><testsuite name="Kubernetes e2e suite">
<testcase name="[sig-node] A [Conformance]" time="1.5"></testcase>
<testcase name="[sig-node] B [Conformance]" status="timedout" time="2"><failure message="timed out | waiting">x</failure></testcase>
<testcase name="[sig-node] C [Conformance]" time="0"><skipped message="skipped"></skipped></testcase>
<testcase name="[sig-node] D" time="0"><skipped message="skipped"></skipped></testcase>
<testcase name="[sig-node] E [Conformance]" status="interrupted" time="9"><failure message="interrupted by timeout">x</failure></testcase>
<testcase name="[sig-node] F [Conformance]" status="timedout" time="9"><failure message="[TIMEDOUT] A suite timeout occurred">x</failure></testcase>
</testsuite></testsuites>"""
    cases = c.selected(c.parse_junit(xml), c.chunk_focus("sig-node"))
    assert [(x.status, x.seconds) for x in cases] == [("passed", 1.5), ("failed", 2.0), ("skipped", 0.0), ("skipped", 9.0), ("skipped", 9.0)]
    # A test the run's stop interrupted did not finish: not run, and said so.
    assert cases[3].message.startswith("interrupted: the run stopped") and cases[4].message == cases[3].message
    stopped = c.summary_markdown({"profile": "p", "chunk": "sig-node", "focus": "f", "target": "t", "commit": "c",
                                  "date": "d", "machine": "m", "seconds": 3, "stopped": "by hand"}, cases)
    assert "- stopped early: by hand (the tests not run are skipped)" in stopped
    md = c.summary_markdown({"profile": "p", "chunk": "sig-node", "focus": "f", "target": "t", "commit": "c",
                             "date": "d", "machine": "m", "seconds": 3}, cases)
    assert md.index("| [sig-node] B") < md.index("| [sig-node] C") < md.index("| [sig-node] A")
    assert "- [sig-node] B [Conformance]: `timed out | waiting`" in md


def test_not_runnable_names_are_tests_of_the_suite() -> None:
    """Each NOT_RUNNABLE name is a Conformance test of e2e.test's dry run, spelled as the
    results spell it (a typo would never match a result)."""
    every = set(json.loads((c.RESULTS / "dry-run" / "all.json").read_text())["tests"])
    assert set(c.NOT_RUNNABLE) <= every, sorted(set(c.NOT_RUNNABLE) - every)
    assert all(why.strip() for why in c.NOT_RUNNABLE.values())


def test_docs_table_is_derived_from_the_results() -> None:
    """docs/conformance.md shows what `conformance.py --table` makes of the results now."""
    docs = c.DOCS.read_text()
    assert c.docs_with_table(docs, c.conformance_table()) == docs, (
        "docs/conformance.md's table is stale: run `benchmarks/conformance.py --table --write-docs`")


def test_table_counts_latest_runs(tmp_path: Path) -> None:
    """Counts per profile: a test's latest run decides; a not-runnable test that was not run
    counts as not runnable, one that passed counts as passed; the rest are not run yet."""
    names = sorted(c.NOT_RUNNABLE)[:2] + ["[sig-node] A [Conformance]", "[sig-node] B [Conformance]",
                                         "[sig-node] C [Conformance]"]
    (tmp_path / "dry-run").mkdir()
    (tmp_path / "dry-run" / "all.json").write_text(json.dumps({"tests": names}))
    (tmp_path / "k3s-like").mkdir()

    def run(chunk: str, date: str, cases: dict[str, str]) -> None:
        out = [{"name": n, "status": st, "seconds": 1.0, "message": "boom | x\nmore" if st == "failed" else ""}
               for n, st in cases.items()]
        totals = {k: sum(1 for x in out if x["status"] == k) for k in ("passed", "failed", "skipped")}
        (tmp_path / "k3s-like" / f"{chunk}.json").write_text(json.dumps(
            {"chunk": chunk, "commit": "abc1234", "date": date, "totals": totals, "cases": out}))

    run("one", "2026-12-07 10:00 UTC", {"[sig-node] A [Conformance]": "failed", names[0]: "passed"})
    run("two", "2026-12-08 10:00 UTC", {"[sig-node] A [Conformance]": "passed", "[sig-node] B [Conformance]": "failed"})
    table = c.conformance_table(tmp_path)
    assert "| k3s-like | 2 | 1 | 1 | 1 | one (1/2): abc1234, 2026-12-07; two (1/2): abc1234, 2026-12-08 |" in table
    assert "| k0s-like | 0 | 0 | 2 | 3 | none yet |" in table
    assert "| k3s-like | [sig-node] B [Conformance] | `boom \\| x` |" in table
    # A later run that did not run a test (skipped, or interrupted by --timeout) keeps
    # the earlier result.
    run("three", "2026-12-08 12:00 UTC", {"[sig-node] A [Conformance]": "skipped", "[sig-node] C [Conformance]": "skipped"})
    assert "| k3s-like | 2 | 1 | 1 | 1 | one (1/2)" in c.conformance_table(tmp_path)
    (tmp_path / "k3s-like" / "three.json").unlink()
    assert all(f"\n| {name} | {why} |\n" in table for name, why in c.NOT_RUNNABLE.items())
    # A suite's run (not Conformance tests) is tabled apart, not among the chunks' runs.
    run("netpol", "2026-12-09 10:00 UTC", {"[sig-network] Netpol X": "passed", "[sig-network] Netpol Y": "failed"})
    table = c.conformance_table(tmp_path)
    assert "| k3s-like | 2 | 1 | 1 | 1 | one (1/2): abc1234, 2026-12-07; two (1/2): abc1234, 2026-12-08 |" in table
    skip, why = c.SUITES["netpol"][1:]
    assert f"| k3s-like | netpol | 1 | 1 | 0 | `{skip}`: {why} | abc1234, 2026-12-09 |" in table


def test_netpol_suite_selects_networkpolicy_tests_without_sctp() -> None:
    focus, skip = c.chunk_focus("netpol"), c.chunk_skip("netpol")
    names = [
        "[sig-network] Netpol NetworkPolicy between server and client should support a 'default-deny-ingress' "
        "policy [Feature:NetworkPolicy]",
        "[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using "
        "SCTP should enforce policy based on Ports [Feature:NetworkPolicy]",
        "[sig-network] Netpol API should support creating NetworkPolicy API operations",
        "[sig-network] DNS should provide DNS for the cluster [Conformance]",
    ]
    chosen = c.selected([c.Case(n, "passed", 1.0) for n in names], focus, skip)
    assert [x.name for x in chosen] == [names[0], names[2]]
    assert c.chunk_skip("config") == "" and "--skip=" + skip in c.e2e_args(focus, Path("r"), [], nodes=2, skip=skip)
