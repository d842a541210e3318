"""Formatting and lint, in the default suite: `ruff check` (pinned in build-support/lock.py,
configured in pyproject.toml) over the Python, `gofmt -l` over every Go file, `go vet` over
every Go module with first-party code (k4stool in each of its builds, the node, the test
projects). Each check is also run once on a file made to fail it, so a check that stopped
finding anything fails here instead of passing quietly."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO, require_tool

RUFF = Path(sys.executable).parent / "ruff"

# Every directory of the repository with a go.mod, and the build tags `go vet` runs with
# there (one vet per entry; k4stool is built five ways: rules/tools.py).
GO_VET = {
    "k4s_plugin/tools": ("", "k4s_download", "k4s_download,k4s_kernel", "k4s_download,k4s_gocache", "k4s_vm"),
    "node": ("",),
    "tests/testprojects/small": ("",),
}
# go.mod directories `go vet` leaves out, and why (gofmt still reads their Go files).
NOT_VETTED = {
    "benchmarks/tools": "pins tool versions only: no Go package",
    "benchmarks/conformance": "pins the e2e test binary's modules only (e2e.go, tag k4s_e2e, is never "
    "compiled; vetting it would vet the upstream e2e suite)",
    "tests/testprojects/nosum": "has no go.sum on purpose (the E_GOSUM_MISSING test)",
    "tests/testprojects/seccomp": "runc's user-namespace code type-checks only with cgo; "
    "k4s builds it with the pure-Go patch (distros/patches)",
    **{
        f"distros/{p}": "a profile: only the generated tools.go"
        for p in ("e2e-images", "k0s-like", "k3s-like", "k4s-stack", "kubesolo-like", "pod-images", "talos-like", "uroot")
    },
    "distros/e2e-images/nnp": "e2e's nonewprivs image's module: only the generated tools.go",
}


def _repo_files(pattern: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", pattern],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()
    return sorted(f for f in out.split("\0") if f and (REPO / f).is_file())


def ruff_findings(root: Path, *paths: str) -> str:
    """ruff's findings under root (with root's pyproject.toml), or ""."""
    if not RUFF.is_file():
        pytest.fail(f"{RUFF} is missing: run ./pants --version (it installs build-support/requirements.lock)")
    r = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--output-format", "concise", *(paths or (".",))],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    return "" if r.returncode == 0 else (r.stdout + r.stderr).strip()


def _gofmt() -> str:
    goroot = subprocess.run([require_tool("go"), "env", "GOROOT"], capture_output=True, text=True, check=True)
    return str(Path(goroot.stdout.strip()) / "bin" / "gofmt")


def gofmt_findings(root: Path, files: list[str]) -> str:
    """The files gofmt would change (and its errors), or ""."""
    r = subprocess.run([_gofmt(), "-l", *files], cwd=root, capture_output=True, text=True, timeout=300)
    return (r.stdout + r.stderr).strip()


def vet_findings(module: Path, tags: str = "") -> str:
    """`go vet ./...` of a module with the host's Go (module mode read-only), or ""."""
    r = subprocess.run(
        [require_tool("go"), "vet", *(("-tags", tags) if tags else ()), "./..."],
        cwd=module, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
    )
    return "" if r.returncode == 0 else (r.stdout + r.stderr).strip()


def test_ruff() -> None:
    found = ruff_findings(REPO)
    assert not found, (
        f"ruff check found:\n{found}\nFix them (`.k4s/venv/bin/ruff check --fix` sorts imports and the like)."
    )


def test_gofmt() -> None:
    found = gofmt_findings(REPO, _repo_files("*.go"))
    assert not found, f"gofmt -l lists (run `gofmt -w` on them):\n{found}"


def test_every_go_module_is_vetted_or_says_why() -> None:
    modules = {str(Path(m).parent) for m in _repo_files(":(glob)**/go.mod")}
    assert modules == set(GO_VET) | set(NOT_VETTED), (
        "tests/integration/test_lint.py: add each new go.mod directory to GO_VET, or to NOT_VETTED with the reason: "
        f"{sorted(modules ^ (set(GO_VET) | set(NOT_VETTED)))}"
    )


@pytest.mark.parametrize("module, tags", [(m, t) for m, tags in GO_VET.items() for t in tags])
def test_go_vet(module: str, tags: str) -> None:
    found = vet_findings(REPO / module, tags)
    assert not found, f"go vet {'-tags ' + tags + ' ' if tags else ''}./... in {module}:\n{found}"


def test_the_checks_find_bad_files(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())
    (tmp_path / "bad.py").write_text("import sys, os\nx = 1;y=f'{2}'  \n" + "z = " + "1 + " * 40 + "1\n")
    found = ruff_findings(tmp_path)
    assert "F401" in found and "E501" in found and "I001" in found, found
    (tmp_path / "go.mod").write_text("module example.com/bad\n\ngo 1.22\n")
    (tmp_path / "bad.go").write_text('package main\nimport "fmt"\nfunc main() {\nfmt.Printf("%d\\n", "x")\n}\n')
    assert gofmt_findings(tmp_path, ["bad.go"]) == "bad.go"
    assert "Printf format %d has arg \"x\" of wrong type string" in vet_findings(tmp_path), vet_findings(tmp_path)


# What a unit test beside its module may not reach for: an engine, a process, the
# integration and VM tests' helpers (those tests belong in tests/integration/ or tests/).
_NOT_IN_UNIT_TESTS = ("pants.testutil", "subprocess", "tests")


def layout_findings(files: list[str], root: Path) -> list[str]:
    """Where test files break the layout (k4s_plugin/ARCHITECTURE.md, "Tests")."""
    found = []
    for f in files:
        path = Path(f)
        if f.startswith("k4s_plugin/"):
            if path.name.startswith("test_"):
                found.append(f"{f}: a unit test is named after its module: <module>_test.py")
            elif path.name.endswith("_test.py"):
                module = path.with_name(path.name.removesuffix("_test.py") + ".py")
                if not (root / module).is_file():
                    found.append(f"{f}: no {module} beside it to be the unit test of")
                imported = set()
                for node in ast.walk(ast.parse((root / f).read_text(), f)):
                    if isinstance(node, ast.Import):
                        imported |= {a.name for a in node.names}
                    elif isinstance(node, ast.ImportFrom):
                        imported.add("." if node.level else node.module or "")
                for name in sorted(imported):
                    if name == "." or name.split(".")[0] in _NOT_IN_UNIT_TESTS or name.startswith("pants.testutil"):
                        found.append(f"{f}: imports {name}: not a unit test; move it to tests/integration/")
        elif f.startswith("tests/") and path.name.endswith("_test.py"):
            found.append(f"{f}: tests under tests/ are test_<feature>.py; a unit test sits beside its module")
    return found


def test_tests_follow_the_layout() -> None:
    found = layout_findings(_repo_files("*.py"), REPO)
    assert not found, "\n".join(found)


def test_the_layout_check_finds_misplaced_tests(tmp_path: Path) -> None:
    (tmp_path / "k4s_plugin" / "rules").mkdir(parents=True)
    (tmp_path / "k4s_plugin" / "rules" / "cpio.py").write_text("")
    (tmp_path / "k4s_plugin" / "rules" / "cpio_test.py").write_text("import subprocess\nfrom pants.testutil.rule_runner import RuleRunner\n")
    (tmp_path / "k4s_plugin" / "nothing_test.py").write_text("from ..tests.conftest import REPO\n")
    (tmp_path / "k4s_plugin" / "grammar_test.py").write_text("from k4s_plugin import grammar\n")
    (tmp_path / "k4s_plugin" / "grammar.py").write_text("")
    files = ["k4s_plugin/rules/cpio_test.py", "k4s_plugin/nothing_test.py", "k4s_plugin/test_grammar.py",
             "k4s_plugin/grammar_test.py", "tests/integration/rules_test.py", "tests/integration/test_rules.py"]
    assert layout_findings(files, tmp_path) == [
        "k4s_plugin/rules/cpio_test.py: imports pants.testutil.rule_runner: not a unit test; move it to tests/integration/",
        "k4s_plugin/rules/cpio_test.py: imports subprocess: not a unit test; move it to tests/integration/",
        "k4s_plugin/nothing_test.py: no k4s_plugin/nothing.py beside it to be the unit test of",
        "k4s_plugin/nothing_test.py: imports .: not a unit test; move it to tests/integration/",
        "k4s_plugin/test_grammar.py: a unit test is named after its module: <module>_test.py",
        "tests/integration/rules_test.py: tests under tests/ are test_<feature>.py; a unit test sits beside its module",
    ]


def rule_helper_order_findings(source: str, filename: str) -> list[str]:
    """Helpers a @rule awaits that are defined below it. Pants 2.17 finds a rule's Gets
    when the rule is decorated, following calls of coroutine functions through the
    module's globals at that moment (engine/internals/rule_visitor.py): a helper defined
    further down is not found, and its Gets fail at run time with "Get(...) was not
    detected in your @rule body". Transitive: a helper's helpers count too."""
    tree = ast.parse(source, filename)
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.AsyncFunctionDef)}

    def is_rule(node: ast.AST) -> bool:
        return any(
            (d.id if isinstance(d, ast.Name) else getattr(getattr(d, "func", None), "id", None)) in ("rule", "goal_rule")
            for d in getattr(node, "decorator_list", ())
        )

    found = []
    for rule_node in tree.body:
        if not isinstance(rule_node, (ast.AsyncFunctionDef, ast.FunctionDef)) or not is_rule(rule_node):
            continue
        seen: set[str] = set()
        stack: list[ast.AST] = [rule_node]
        while stack:
            for call in ast.walk(stack.pop()):
                name = getattr(call.func, "id", None) if isinstance(call, ast.Call) else None
                helper = helpers.get(name)
                if helper is None or name in seen or helper is rule_node or is_rule(helper):
                    continue
                seen.add(name)
                stack.append(helper)
                if helper.lineno > rule_node.lineno:
                    found.append(
                        f"{filename}:{rule_node.lineno}: @rule {rule_node.name} reaches {name}(), defined below it "
                        f"(line {helper.lineno}): move {name} above {rule_node.name}"
                    )
    return found


def test_rule_helpers_are_defined_above_their_rules() -> None:
    found = [
        line
        for f in _repo_files("k4s_plugin/*.py")
        for line in rule_helper_order_findings((REPO / f).read_text(), f)
    ]
    assert not found, "\n".join(found)


def test_the_rule_helper_check_finds_a_helper_below(tmp_path: Path) -> None:
    source = (
        "async def above(x):\n    return await below(x)\n\n"
        "@rule(desc='d')\nasync def r(x: int) -> str:\n    return await above(x)\n\n"
        "async def below(x):\n    return await Get(str, int, x)\n"
    )
    (found,) = rule_helper_order_findings(source, "m.py")
    assert "@rule r reaches below(), defined below it (line 8)" in found, found
    assert not rule_helper_order_findings(source.replace("@rule(desc='d')\n", ""), "m.py")
