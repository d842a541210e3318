"""benchmarks/conformance.py's pure parts: chunk selection and the JUnit summary, on a
JUnit report that e2e.test v1.37.2 wrote (tests/conformance/junit-config.xml: its dry run
of the `config` chunk, cut to the chunk's 76 tests, Ginkgo's suite nodes and 24 other
tests it reported as skipped; docs/conformance.md)."""

from __future__ import annotations

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
    with pytest.raises(SystemExit, match=r"--chunk 'sig-nod' is not a chunk; use one of: all, config, downward-env, sig-api-machinery"):
        c.chunk_focus("sig-nod")


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
</testsuite></testsuites>"""
    cases = c.selected(c.parse_junit(xml), c.chunk_focus("sig-node"))
    assert [(x.status, x.seconds) for x in cases] == [("passed", 1.5), ("failed", 2.0), ("skipped", 0.0)]
    md = c.summary_markdown({"profile": "p", "chunk": "sig-node", "focus": "f", "target": "t", "commit": "c",
                             "date": "d", "machine": "m", "seconds": 3}, cases)
    assert md.index("| [sig-node] B") < md.index("| [sig-node] C") < md.index("| [sig-node] A")
    assert "- [sig-node] B [Conformance]: `timed out | waiting`" in md
