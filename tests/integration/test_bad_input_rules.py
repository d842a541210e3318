"""Bad input that only the rules can see (trees, links, archives, what the image ends up
holding), through RuleRunner: module trees with links out of themselves or cycles,
outputs through a link under dist/ (what an image archive is, and is not, is
k4s_plugin/rules/imagecheck_test.py's), and the positive side: the cpio holds exactly the modes, device nodes and links BUILD
asks for, read back with bsdtar (an independent reader).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pants.core.goals.package import BuiltPackage
from pants.core.util_rules import distdir
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from k4s_plugin.rules.kmods import KernelModules, KernelModulesRequest
from k4s_plugin.rules.package import PackageGoBusyboxFieldSet, PackageOciImageFieldSet

from ..conftest import require_tool
from .test_rules import INITRAMFS_BUILD, SMALL, archive, bsdtar_listing


def _runner(*queries: QueryRule) -> RuleRunner:
    from pants.core.target_types import (
        FilesGeneratorTarget,
        FileTarget,
        GenericTarget,
        RelocatedFiles,
        ResourcesGeneratorTarget,
        ResourceTarget,
    )
    from pants.core.target_types import rules as core_target_type_rules
    from pants.core.util_rules import source_files

    from k4s_plugin import register

    return RuleRunner(
        rules=[*register.rules(), *source_files.rules(), *core_target_type_rules(), *distdir.rules(), *queries],
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget, GenericTarget, RelocatedFiles,
                      ResourcesGeneratorTarget, ResourceTarget],
    )


@pytest.fixture
def rule_runner() -> RuleRunner:
    """test_rules.py's runner (the small test project), with `resources` targets."""
    from k4s_plugin.rules.busybox import GoBusyboxFieldSet
    from k4s_plugin.rules.cpio import Archive
    from k4s_plugin.rules.gobuild import BusyboxBinary
    from k4s_plugin.rules.initramfs import InitramfsFieldSet

    return _small_runner(QueryRule(Archive, [InitramfsFieldSet]), QueryRule(BusyboxBinary, [GoBusyboxFieldSet]))


def _small_runner(*queries: QueryRule) -> RuleRunner:
    """A runner of the small test project's files (BUILD written by each test) that builds
    for real (GOPROXY from the environment)."""
    rr = _runner(*queries, QueryRule(DigestContents, [Digest]))
    ca = [f"--ca-certs-path={os.environ['PANTS_CA_CERTS_PATH']}"] if os.environ.get("PANTS_CA_CERTS_PATH") else []
    rr.set_options(ca, env_inherit={"PATH", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS"})
    rr.write_files({f"small/{p.relative_to(SMALL)}": p.read_bytes()
                    for p in SMALL.rglob("*") if p.is_file() and p.name != "BUILD"})
    return rr


@pytest.fixture
def kmods_runner() -> RuleRunner:
    return _runner(QueryRule(KernelModules, [KernelModulesRequest]))


def _tree(root: Path, dep: str, files: dict[str, str | None]) -> Path:
    """A module tree: modules.dep and files (None: leave the path to the caller)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "modules.dep").write_text(dep)
    for name, content in files.items():
        if content is not None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content)
    return root


def _kmods_error(runner: RuleRunner, tree: Path, names: tuple[str, ...]) -> str:
    with pytest.raises(ExecutionError) as exc:
        runner.request(KernelModules, [KernelModulesRequest(Address("p", target_name="i"), names, str(tree))])
    return str(exc.value)


def test_module_links_out_of_the_tree_are_refused(kmods_runner: RuleRunner, tmp_path: Path) -> None:
    """`kernel/x.ko -> /etc/hostname` put this machine's file into the image."""
    tree = _tree(tmp_path / "6.1.0-k4s", "kernel/x.ko:\n", {})
    (tree / "kernel").mkdir()
    (tree / "kernel" / "x.ko").symlink_to("/etc/hostname")
    msg = _kmods_error(kmods_runner, tree, ("x",))
    assert "k4s: E_BAD_INPUT: The `kernel_modules_dir` field of p:i" in msg, msg
    assert "kernel/x.ko are links out of the tree" in msg and "Fix:" in msg, msg
    # modules.dep itself a link out: not read at all.
    tree3 = tmp_path / "6.1.0-k4s3"
    tree3.mkdir()
    (tree3 / "modules.dep").symlink_to("/etc/hostname")
    assert "modules.dep are links out of the tree" in _kmods_error(kmods_runner, tree3, ("x",))
    # A directory link out of the tree, too.
    tree2 = _tree(tmp_path / "6.1.0-k4s2", "kernel/y.ko:\n", {})
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "y.ko").write_text("not a module")
    (tree2 / "kernel").symlink_to(tmp_path / "outside")
    assert "kernel/y.ko are links out of the tree" in _kmods_error(kmods_runner, tree2, ("y",))


def test_module_link_loops_and_cycles_are_refused(kmods_runner: RuleRunner, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "loop", "kernel/a.ko:\n", {})
    (tree / "kernel").mkdir()
    os.symlink("b.ko", tree / "kernel" / "a.ko")
    os.symlink("a.ko", tree / "kernel" / "b.ko")
    msg = _kmods_error(kmods_runner, tree, ("a",))
    assert "`kernel_modules_dir` field of p:i" in msg and "cannot be resolved" in msg, msg
    cyc = _tree(tmp_path / "cycle", "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n",
                {"kernel/a.ko": "a", "kernel/b.ko": "b"})
    msg = _kmods_error(kmods_runner, cyc, ("a",))
    assert "`kernel_modules_dir` field of p:i" in msg and "dependency cycle: kernel/a.ko -> kernel/b.ko -> kernel/a.ko" in msg, msg
    assert "RecursionError" not in msg


def test_module_links_inside_the_tree_are_followed(kmods_runner: RuleRunner, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "6.1.0-ok", "kernel/a.ko:\n", {"real/a.ko": "module a"})
    (tree / "kernel").symlink_to("real")
    mods = kmods_runner.request(
        KernelModules, [KernelModulesRequest(Address("p", target_name="i"), ("a",), str(tree))]
    )
    assert mods.load_order == ("kernel/a.ko",)


def test_output_through_a_link_is_refused(tmp_path: Path) -> None:
    """Pants writes dist/<output_path> following links: `dist/out -> /elsewhere` put the
    binary outside the repository. Checked before anything is built."""
    outside = tmp_path / "outside"
    outside.mkdir()
    rr = _runner(QueryRule(BuiltPackage, [PackageGoBusyboxFieldSet]), QueryRule(BuiltPackage, [PackageOciImageFieldSet]))
    dist = Path(rr.build_root) / "dist"
    dist.mkdir()
    (dist / "out").symlink_to(outside)
    (dist / "small").symlink_to(outside)
    rr.write_files({"small/BUILD": 'go_busybox(name="bb", commands=["a.b/c"], output_path="out/bb")\n'
                                   'oci_image(name="img", busybox=":bb")\n',
                    "small/go.mod": "module k4s.dev/x\n", "small/go.sum": ""})
    for name, field_set in (("bb", PackageGoBusyboxFieldSet), ("img", PackageOciImageFieldSet)):
        with pytest.raises(ExecutionError) as exc:
            rr.request(BuiltPackage, [field_set.create(rr.get_target(Address("small", target_name=name)))])
        msg = str(exc.value)
        assert f"k4s: E_OUTPUT: The `output_path` field of small:{name}" in msg, msg
        assert "outside dist/" in msg and "Fix: Remove the link" in msg, msg
    assert list(outside.iterdir()) == []


def test_cpio_holds_what_build_says(rule_runner: RuleRunner, tmp_path: Path) -> None:
    """Modes carried end to end (an executable mapped with files_mapping stays 0755),
    device nodes kept, the sticky bit on tmp, var/log and var/lock, the links BUILD
    implies, and `resources` carried too (they were dropped silently)."""
    require_tool("bsdtar")
    rule_runner.write_files({"small/run.sh": "#!/bin/sh\necho hi\n", "small/res.txt": "resource\n"})
    os.chmod(Path(rule_runner.build_root) / "small" / "run.sh", 0o755)
    _, data = archive(
        rule_runner,
        'files(name="run", sources=["run.sh"])\n'
        'resources(name="res", sources=["res.txt"])\n'
        'initramfs(name="i", busybox=":bb", dependencies=[":motd", ":run", ":res"],'
        ' files_mapping={"small/run.sh": "bin/run", "small/motd.txt": "etc/motd"})',
    )
    listing = {line.split()[-1] if " -> " not in line else line.split()[-3]: line
               for line in bsdtar_listing(tmp_path, data)}
    assert listing["bin/run"].startswith("-rwxr-xr-x"), listing["bin/run"]
    assert listing["etc/motd"].startswith("-rw-r--r--"), listing["etc/motd"]
    assert listing["small/res.txt"].startswith("-rw-r--r--"), listing
    for d in ("tmp", "var/log", "var/lock"):
        assert listing[d].startswith("drwxrwxrwt"), listing[d]
    assert listing["dev/console"].startswith("crw-------"), listing["dev/console"]
    assert listing["dev/null"].startswith("crw-rw-rw-"), listing["dev/null"]
    assert listing["bbin/bb"].startswith("-rwxr-xr-x")
    assert "bbin/echo -> bb" in listing["bbin/echo"] and "init -> bbin/init" in listing["init"]
    # cpio(1), a second independent reader, agrees on the device numbers.
    cpio = require_tool("cpio")
    out = subprocess.run([cpio, "-itv", "--quiet"], input=data, capture_output=True, check=True).stdout.decode()
    console = next(line for line in out.splitlines() if line.endswith(" dev/console"))
    assert console.startswith("crw-------") and "5,   1" in console.replace("5,  1", "5,   1"), console


@pytest.mark.parametrize("build,field,expected", [
    ('initramfs(name="i", busybox=":bb", dependencies=[":motd"], files_mapping={"small/motd.txt": "dev/console"})',
     "files_mapping", "silently replace the device"),
    ('initramfs(name="i", busybox=":bb", dependencies=[":motd"], files_mapping={"small/motd.txt": "etc/localtime/x"})',
     "files_mapping", "inside the base layout's file etc/localtime"),
    ('go_busybox(name="bb2", commands=["a.b/c"])\ninitramfs(name="i", busybox=":bb", dependencies=[":bb2"])',
     "dependencies", "names small:bb2, a `go_busybox` target"),
])
def test_bad_image_trees(rule_runner: RuleRunner, build: str, field: str, expected: str) -> None:
    with pytest.raises(ExecutionError) as exc:
        archive(rule_runner, build)
    msg = str(exc.value)
    assert f"The `{field}` field of small:i" in msg and expected in msg and "k4s: E_" in msg, msg
    assert "bug in k4s" not in msg


def test_thousands_of_ldflags_go_through_a_file(rule_runner: RuleRunner, tmp_path: Path) -> None:
    """4,000 `-X` flags (170 KB, over Linux's 128 KiB for one argument) failed with
    "Argument list too long"; they reach the linker through a response file."""
    from k4s_plugin.rules.busybox import GoBusyboxFieldSet
    from k4s_plugin.rules.gobuild import BB, LDFLAGS_INLINE_MAX, BusyboxBinary

    from .test_rules import M, busybox, contents

    flags = ["-s", "-w", *(f"-X main.v{i:05d}={'v' * 30}" for i in range(4000)),
             f"-X {M}/cmds/hello.greeting=K4sLdflagsFromAFile"]
    assert len(" ".join(flags)) > 128 * 1024 > LDFLAGS_INLINE_MAX
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/hello"], ldflags={flags!r})')
    assert isinstance(fs, GoBusyboxFieldSet)
    bb = tmp_path / "bb"
    bb.write_bytes(contents(rule_runner, rule_runner.request(BusyboxBinary, [fs]).digest)[BB])
    bb.chmod(0o755)
    out = subprocess.run([bb, "hello", "world"], capture_output=True, text=True, check=True)
    # The linker got the flags: the last -X value is in the binary (the rewritten
    # command sets `greeting` again in its init, so it still says hello).
    assert b"K4sLdflagsFromAFile" in bb.read_bytes()
    assert out.stdout.endswith(" world\n")


def test_first_party_go_embed(rule_runner: RuleRunner, tmp_path: Path) -> None:
    """A first-party command's `//go:embed` files, listed in `sources`, are built in
    (the field refused any file but .go/.mod/.sum, though its help said to add them)."""
    from k4s_plugin.rules.gobuild import BB, BusyboxBinary

    from .test_rules import M, busybox, contents

    rule_runner.write_files({
        "small/cmds/embedder/main.go": 'package main\n\nimport (\n\t_ "embed"\n\t"fmt"\n)\n\n'
                                       '//go:embed msg.txt\nvar msg string\n\nfunc main() { fmt.Print(msg) }\n',
        "small/cmds/embedder/msg.txt": "embedded by k4s\n",
    })
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/embedder"],'
                              ' sources=["go.mod", "go.sum", "**/*.go", "!**/*_test.go", "cmds/embedder/msg.txt"])')
    bb = tmp_path / "bb"
    bb.write_bytes(contents(rule_runner, rule_runner.request(BusyboxBinary, [fs]).digest)[BB])
    bb.chmod(0o755)
    out = subprocess.run([bb, "embedder"], capture_output=True, text=True, check=True)
    assert out.stdout == "embedded by k4s\n"
    # Without the embedded file in `sources`: an error naming `sources` and the pattern.
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/embedder"])')
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BusyboxBinary, [fs])
    msg = str(exc.value)
    assert "`sources` field of small:bb" in msg and "msg.txt" in msg and "k4s: E_EMBED" in msg, msg[-3000:]


def test_first_party_command_of_only_tests(rule_runner: RuleRunner) -> None:
    """A first-party command whose directory holds only `_test.go` files is named as
    such, not given the `go get` fix of a missing module."""
    from k4s_plugin.rules.gobuild import BusyboxBinary

    from .test_rules import M, busybox

    rule_runner.write_files({"small/cmds/onlytests/x_test.go": "package main\n"})
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/onlytests"])')
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BusyboxBinary, [fs])
    msg = str(exc.value)
    assert "k4s: E_BAD_INPUT: The `commands` field of small:bb" in msg and "hold no Go files (other than tests)" in msg, msg
    assert "go get" not in msg.split("K4sTargetError")[-1]


@pytest.mark.parametrize("directory,expected", [
    ("a~b", "gives the command k4s.dev/testprojects/small/cmds/a~b the name 'a~b'"),
    ("bb", "'bb' is reserved"),
])
def test_first_party_command_names(rule_runner: RuleRunner, directory: str, expected: str) -> None:
    """A first-party directory whose name cannot be a command name (`a~b` is a legal
    import path; `bb` would take over `bb <cmd>`) fails once, naming `commands`."""
    from k4s_plugin.rules.gobuild import BusyboxBinary

    from .test_rules import M, busybox

    rule_runner.write_files({f"small/cmds/{directory}/main.go": "package main\n\nfunc main() {}\n"})
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/{directory}"])')
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BusyboxBinary, [fs])
    msg = str(exc.value)
    assert "k4s: E_BAD_INPUT: The `commands` field of small:bb" in msg and expected in msg, msg[-3000:]
    assert "bug in k4s" not in msg and "E_INTERNAL" not in msg


def test_glob_that_matches_nothing(rule_runner: RuleRunner) -> None:
    """A u-root glob that selects no command is named, not reported as go.sum missing
    every module under cmds/core."""
    from k4s_plugin.rules.gobuild import BusyboxBinary

    from .test_rules import U, busybox

    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{U}/echo", "{U}/nosuch*"])')
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BusyboxBinary, [fs])
    msg = str(exc.value)
    assert "k4s: E_UNKNOWN_PACKAGE" in msg and "`commands` field of small:bb" in msg, msg[-3000:]
    assert f"{U}/nosuch* matches no package" in msg and "E_GOSUM_MISSING" not in msg, msg[-3000:]


def test_cgo_in_an_imported_first_party_package(rule_runner: RuleRunner) -> None:
    """cgo in a package a command imports (not the command itself) is named as a
    build-constraint/cgo problem of `commands`, not "report it to gobusybox"."""
    from k4s_plugin.rules.gobuild import BusyboxBinary

    from .test_rules import M, busybox

    rule_runner.write_files({
        "small/pkg/cgodep/c.go": 'package cgodep\n\n// int answer(void) { return 42; }\nimport "C"\n\n'
                                 "func Answer() int { return int(C.answer()) }\n",
        "small/cmds/usescgo/main.go": f'package main\n\nimport "{M}/pkg/cgodep"\n\nfunc main() {{ println(cgodep.Answer()) }}\n',
    })
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/usescgo"])')
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BusyboxBinary, [fs])
    msg = str(exc.value)
    assert "`commands` field of small:bb" in msg and "pkg/cgodep" in msg, msg[-3000:]
    assert ("k4s: E_BUILD_CONSTRAINTS" in msg or "k4s: E_CGO" in msg) and "report it to gobusybox" not in msg, msg[-3000:]


def test_patch_below_a_file_and_modes(rule_runner: RuleRunner) -> None:
    """A patch creating `echo.go/x.go` (below a file of the module) and a mode-only patch
    fail as E_PATCH naming the patch, not as "a bug in k4s" or silently."""
    from k4s_plugin.rules.gobuild import BusyboxBinary

    from .test_rules import U, busybox

    f = "github.com/u-root/u-root/cmds/core/echo/echo.go"
    rule_runner.write_files({
        "small/patches/below.patch": f"diff --git a/{f}/x.go b/{f}/x.go\nnew file mode 100644\n"
                                     f"--- /dev/null\n+++ b/{f}/x.go\n@@ -0,0 +1 @@\n+package x\n",
        "small/patches/mode.patch": f"diff --git a/{f} b/{f}\nold mode 100644\nnew mode 100755\n",
    })
    for patch, detail in (("below.patch", "below.patch cannot write github.com/u-root/u-root/cmds/core/echo/echo.go/x.go"),
                          ("mode.patch", "changes the file mode (100644 -> 100755)")):
        fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{U}/echo"], patches=["patches/{patch}"])')
        with pytest.raises(ExecutionError) as exc:
            rule_runner.request(BusyboxBinary, [fs])
        msg = str(exc.value)
        assert "k4s: E_PATCH" in msg and "`patches` field of small:bb" in msg and detail in msg, msg[-3000:]
        assert "E_INTERNAL" not in msg and "bug in k4s" not in msg


def test_local_modules_naming_the_own_module(rule_runner: RuleRunner) -> None:
    from k4s_plugin.rules.gobuild import BusyboxBinary

    from .test_rules import U, busybox

    fs = busybox(rule_runner, 'files(name="self", sources=["go.mod", "go.sum"])\n'
                              f'go_busybox(name="bb", commands=["{U}/echo"], local_modules=[":self"])')
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BusyboxBinary, [fs])
    msg = str(exc.value)
    assert "k4s: E_BAD_INPUT: The `local_modules` field of small:bb names small:self" in msg, msg[-3000:]
    assert "a module cannot replace itself" in msg


@pytest.fixture
def oci_runner() -> RuleRunner:
    """The small project's runner, asked for `oci_image`s (the busybox is built for real)."""
    from k4s_plugin.rules.oci import OciImage, OciImageFieldSet

    return _small_runner(QueryRule(OciImage, [OciImageFieldSet]))


def _oci(rr: RuleRunner, build: str):
    from k4s_plugin.rules.oci import OciImage, OciImageFieldSet

    rr.write_files({"small/BUILD": INITRAMFS_BUILD + 'file(name="d", source="motd.txt")\n' + build})
    tgt = rr.get_target(Address("small", target_name="o"))
    return rr.request(OciImage, [OciImageFieldSet.create(tgt)])


@pytest.mark.parametrize("build,field,expected", [
    # The busybox has a shell: setuid on its bb would run `sh` as root.
    ('oci_image(name="o", busybox=":bb", file_modes={"bbin/bb": "4755"})', "file_modes",
     "makes bbin/bb 4755 (setuid/setgid), but busybox ':bb' has 4 commands"),
    ('oci_image(name="o", busybox=":bb", file_modes={"bbin/bb": "2755"})', "file_modes", "(setuid/setgid)"),
    ('oci_image(name="o", busybox=":bb", file_modes={"etc/motd": "0600"})', "file_modes",
     "gives a mode to 'etc/motd', which is neither 'bbin/bb' nor a path of `files`"),
    ('oci_image(name="o", busybox=":bb", dependencies=[":d"])', "files",
     "does not place small/motd.txt, which `dependencies` brings"),
    ('oci_image(name="o", busybox=":bb", dependencies=[":d"], files={"etc/motd": "small/other.txt", '
     '"etc/m2": "small/motd.txt"})', "files", "names small/other.txt, which no target in `dependencies` owns"),
    ('oci_image(name="o", busybox=":bb", dependencies=[":d"], files={"hello": "small/motd.txt"}, '
     'command_links={"hello": "hello"})', "files", "puts a file at hello, where `command_links` puts a link"),
    ('go_busybox(name="bb2", commands=["a.b/c"])\noci_image(name="o", busybox=":bb", dependencies=[":bb2"])',
     "dependencies", "names small:bb2, a `go_busybox` target"),
])
def test_bad_oci_images(oci_runner: RuleRunner, build: str, field: str, expected: str) -> None:
    with pytest.raises(ExecutionError) as exc:
        _oci(oci_runner, build)
    msg = str(exc.value)
    assert f"The `{field}` field of small:o" in msg and expected in msg and "k4s: E_" in msg, msg
    assert "Fix:" in msg, msg


def test_oci_image_user_files_and_modes(oci_runner: RuleRunner, tmp_path: Path) -> None:
    """What BUILD asks for is what the archive holds: the config's User, a file from a
    `file` target at its path with the mode given, the rest of the layer as before."""
    import gzip
    import io
    import json
    import tarfile

    image = _oci(oci_runner, 'oci_image(name="o", busybox=":bb", user="65534:65534", dependencies=[":d"], '
                             'files={"etc/motd": "small/motd.txt"}, file_modes={"etc/motd": "0600"})')
    data = {fc.path: fc.content for fc in oci_runner.request(DigestContents, [image.digest])}[image.path]
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}

    def blob(desc: dict) -> bytes:
        return files["blobs/sha256/" + desc["digest"].removeprefix("sha256:")]

    manifest = json.loads(blob(json.loads(files["index.json"])["manifests"][0]))
    assert json.loads(blob(manifest["config"]))["config"]["User"] == "65534:65534"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(manifest["layers"][0])))) as t:
        layer = {m.name: m for m in t.getmembers()}
        motd = layer["etc/motd"]
        assert motd.mode == 0o600 and (motd.uid, motd.gid) == (0, 0)
        assert t.extractfile(motd).read() == (SMALL / "motd.txt").read_bytes()
    assert layer["bbin/bb"].mode == 0o755 and layer["bbin/echo"].linkname == "bb"
