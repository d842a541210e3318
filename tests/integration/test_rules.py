"""Each k4s rule, run by Pants' RuleRunner with real processes (Go SDK, gobusybox).

The test project is tests/testprojects/small (a few u-root commands and first-party
commands). RuleRunner shares Pants' local process cache, so only the first run of a
step is slow.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from pants.core.target_types import FilesGeneratorTarget, FileTarget, GenericTarget, RelocatedFiles
from pants.core.target_types import rules as core_target_type_rules
from pants.core.util_rules import source_files
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from k4s_plugin import register
from k4s_plugin.rules.busybox import GoBusyboxFieldSet, GoModule
from k4s_plugin.rules.cpio import Archive
from k4s_plugin.rules.download import DownloadStep, ModuleSources, may_be_first_party
from k4s_plugin.rules.gobuild import BB, BusyboxBinary
from k4s_plugin.rules.initramfs import InitramfsFieldSet
from k4s_plugin.rules.oci import OciImage, OciImageFieldSet
from k4s_plugin.rules.rewrite import BBMAIN_TAR, DEPS_TAR, RewrittenTree
from k4s_plugin.rules.steps import K4sGocacheTool, K4sGocacheToolRequest
from k4s_plugin.rules.tools import K4sDownloadTool, K4sTools, K4sToolsRequest, K4sVmTool, K4sVmToolRequest

from ..conftest import REPO, require_tool

SMALL = REPO / "tests" / "testprojects" / "small"
U = "github.com/u-root/u-root/cmds/core"
M = "k4s.dev/testprojects/small"


@pytest.fixture
def rule_runner() -> RuleRunner:
    rr = RuleRunner(
        rules=[
            *register.rules(),
            *source_files.rules(),
            *core_target_type_rules(),
            QueryRule(K4sTools, [K4sToolsRequest]),
            QueryRule(K4sVmTool, [K4sVmToolRequest]),
            QueryRule(K4sDownloadTool, []),
            QueryRule(K4sGocacheTool, [K4sGocacheToolRequest]),
            QueryRule(ModuleSources, [GoBusyboxFieldSet]),
            QueryRule(DownloadStep, [GoBusyboxFieldSet]),
            QueryRule(RewrittenTree, [GoBusyboxFieldSet]),
            QueryRule(BusyboxBinary, [GoBusyboxFieldSet]),
            QueryRule(Archive, [InitramfsFieldSet]),
            QueryRule(OciImage, [OciImageFieldSet]),
            QueryRule(DigestContents, [Digest]),
        ],
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget, GenericTarget, RelocatedFiles],
    )
    # The CA bundle conftest took from SSL_CERT_FILE, for the Go SDK download.
    ca = [f"--ca-certs-path={os.environ['PANTS_CA_CERTS_PATH']}"] if os.environ.get("PANTS_CA_CERTS_PATH") else []
    rr.set_options(
        ca, env_inherit={"PATH", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS"}
    )
    files = {}
    for path in SMALL.rglob("*"):
        if path.is_file() and path.name != "BUILD":
            files[f"small/{path.relative_to(SMALL)}"] = path.read_bytes()
    rr.write_files(files)
    return rr


def busybox(rule_runner: RuleRunner, build: str, name: str = "bb") -> GoBusyboxFieldSet:
    rule_runner.write_files({"small/BUILD": build})
    tgt = rule_runner.get_target(Address("small", target_name=name))
    return GoBusyboxFieldSet.create(tgt)


def contents(rule_runner: RuleRunner, digest: Digest) -> dict[str, bytes]:
    return {fc.path: fc.content for fc in rule_runner.request(DigestContents, [digest])}


def test_tools_are_built(rule_runner: RuleRunner) -> None:
    tools = rule_runner.request(K4sTools, [K4sToolsRequest()])
    files = contents(rule_runner, tools.digest)
    assert set(files) == {K4sTools.k4stool}
    for data in files.values():
        assert data[:4] == b"\x7fELF"
    # The download step's own k4stool: the download (and imports) subcommands only.
    dl = rule_runner.request(K4sDownloadTool, [])
    files = contents(rule_runner, dl.digest)
    assert set(files) == {K4sDownloadTool.k4stool}
    assert files[K4sDownloadTool.k4stool][:4] == b"\x7fELF"
    assert len(files[K4sDownloadTool.k4stool]) < len(contents(rule_runner, tools.digest)[K4sTools.k4stool]) / 2


def _subcommands(tool: bytes, tmp_path: Path) -> set[str]:
    """The subcommands a k4stool binary lists when run without one."""
    exe = tmp_path / "k4stool"
    exe.write_bytes(tool)
    exe.chmod(0o755)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "k4s: E_USAGE" in r.stderr, r.stderr
    return {line.split()[1] for line in r.stderr.splitlines() if line.startswith("  k4stool ")}


def test_shared_cache_client_only_in_its_own_tool(rule_runner: RuleRunner, tmp_path: Path) -> None:
    # The step tool every build needs has no GOCACHEPROG (its REAPI client is gRPC,
    # protobuf and about 125 packages); the tool built only with
    # `[k4s-go].shared_build_cache` has it.
    step = contents(rule_runner, rule_runner.request(K4sTools, [K4sToolsRequest()]).digest)[K4sTools.k4stool]
    gocache = rule_runner.request(K4sGocacheTool, [K4sGocacheToolRequest()])
    files = contents(rule_runner, gocache.digest)
    assert set(files) == {K4sGocacheTool.k4stool}
    step_cmds = _subcommands(step, tmp_path)
    assert {"rewrite-commands", "compile", "cpio"} <= step_cmds and "gocache" not in step_cmds, step_cmds
    assert _subcommands(files[K4sGocacheTool.k4stool], tmp_path) == {"download", "imports", "gocache"}
    assert b"google.golang.org/grpc" not in step and b"google.golang.org/grpc" in files[K4sGocacheTool.k4stool]


def test_vm_driver_only_in_its_own_tool(rule_runner: RuleRunner, tmp_path: Path) -> None:
    # `pants run`'s QEMU driver (and net/http, which it needs for snapshots) is not in
    # the step tool that every `pants package` waits for; k4stool-vm has the step
    # tool's subcommands and `vm`.
    step = contents(rule_runner, rule_runner.request(K4sTools, [K4sToolsRequest()]).digest)[K4sTools.k4stool]
    files = contents(rule_runner, rule_runner.request(K4sVmTool, [K4sVmToolRequest()]).digest)
    assert set(files) == {K4sVmTool.k4stool}
    step_cmds = _subcommands(step, tmp_path)
    assert "vm" not in step_cmds and {"oci", "oci-config"} <= step_cmds, step_cmds
    assert _subcommands(files[K4sVmTool.k4stool], tmp_path) == step_cmds | {"vm"}
    assert b"net/http.(*Client).Do" not in step and b"net/http.(*Client).Do" in files[K4sVmTool.k4stool]


def test_download_packs_only_needed_packages(rule_runner: RuleRunner) -> None:
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{U}/echo"])')
    modules = rule_runner.request(ModuleSources, [fs])
    data = contents(rule_runner, modules.digest)["__k4s_modules.tar"]
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert "github.com/u-root/u-root@v0.16.0/cmds/core/echo/echo.go" in names
    assert "cache/download/github.com/u-root/u-root/@v/v0.16.0.mod" in names
    assert not any(n.endswith("_test.go") or n.endswith(".zip") for n in names)
    # Only what echo needs: not ls.
    assert not any("/cmds/core/ls/" in n for n in names)


def test_first_party_edit_keeps_the_download_key(rule_runner: RuleRunner) -> None:
    """The download reads no first-party Go file (`k4stool imports` lists what the
    first-party commands import): an edit of a first-party command that keeps its
    imports leaves the download's Process, its key, as it was; a new third-party
    import changes it, and the download then lists that package."""
    build = f'go_busybox(name="bb", commands=["{U}/echo", "{M}/cmds/hello"])'
    hello = "small/cmds/hello/main.go"
    src = (SMALL / "cmds" / "hello" / "main.go").read_text()

    def download() -> tuple[tuple[str, ...], Digest]:
        step = rule_runner.request(DownloadStep, [busybox(rule_runner, build)]).step
        return step.argv, step.input_digest

    before = download()
    assert f"{M}/cmds/hello" not in before[0] and f"{U}/echo" in before[0], before[0]
    rule_runner.write_files({hello: src.replace("var greeting", "// An edit.\nvar greeting")})
    assert download() == before
    rule_runner.write_files({hello: src.replace('"strings"\n', '"strings"\n\n\t_ "github.com/u-root/u-root/pkg/ls"\n')})
    after = download()
    assert after != before and "github.com/u-root/u-root/pkg/ls" in after[0], after[0]


@pytest.mark.parametrize(
    "commands, local_modules, expected",
    [
        ((f"{U}/*",), False, False),  # uroot: no imports step
        ((f"{U}/echo", f"-{M}/cmds/hello"), False, False),  # an exclusion names nothing to list
        ((f"{U}/echo", f"{M}/cmds/hello"), False, True),
        ((M,), False, True),
        (("k4s.dev/testprojects/smaller/x",), False, False),  # a prefix, not a path prefix
        (("k4s.dev/*/small/cmds/*",), False, True),  # a glob that may match the module
        (("*",), False, True),
        ((f"{U}/echo",), True, True),  # `local_modules`: their commands need the step
    ],
)
def test_may_be_first_party(commands: tuple[str, ...], local_modules: bool, expected: bool) -> None:
    module = GoModule(Address("small", target_name="bb"), EMPTY_DIGEST, "small", M, local_modules)
    assert may_be_first_party(module, commands) is expected


def test_rewrite_names_commands(rule_runner: RuleRunner) -> None:
    fs = busybox(
        rule_runner,
        f'go_busybox(name="bb", commands=["{U}/echo", "{M}/cmds/a/tool", "{M}/cmds/b/tool"],'
        f' command_names={{"{M}/cmds/a/tool": "atool"}})',
    )
    tree = rule_runner.request(RewrittenTree, [fs])
    assert dict(tree.commands) == {
        "echo": f"{U}/echo",
        "atool": f"{M}/cmds/a/tool",
        "tool": f"{M}/cmds/b/tool",
    }
    # The tree as tars: the dependencies, bb's main package, one per command (its own
    # files only), in the order the compile step unpacks them.
    files = contents(rule_runner, tree.digest)
    assert sorted(files) == sorted(tree.tars)
    assert tree.tars[:2] == (DEPS_TAR, BBMAIN_TAR) and len(tree.tars) == 5
    names = {t: tarfile.open(fileobj=io.BytesIO(files[t])).getnames() for t in tree.tars}
    assert "src/bb.u-root.com/bb/main.go" in names[BBMAIN_TAR]
    assert f"src/{U}/echo/echo.go" not in names[DEPS_TAR]
    for name, path in tree.commands.items():
        own = [n for t, ns in names.items() if t.endswith(f"/{name}.tar") for n in ns]
        assert own and all(n.startswith(f"src/{path}") or f"src/{path}".startswith(n.rstrip("/")) for n in own), own


def test_compile_runs_on_host(rule_runner: RuleRunner, tmp_path: Path) -> None:
    fs = busybox(rule_runner, f'go_busybox(name="bb", commands=["{U}/echo", "{M}/cmds/hello"])')
    binary = rule_runner.request(BusyboxBinary, [fs])
    bb = tmp_path / "bb"
    bb.write_bytes(contents(rule_runner, binary.digest)[BB])
    bb.chmod(0o755)
    out = subprocess.run([bb, "echo", "hi", "there"], capture_output=True, text=True, check=True)
    assert out.stdout == "hi there\n"
    (tmp_path / "hello").symlink_to("bb")
    out = subprocess.run([tmp_path / "hello", "x"], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from k4s x\n"


def test_local_module_commands(rule_runner: RuleRunner, tmp_path: Path) -> None:
    """A first-party module outside the BUILD directory (as node/ for the
    profiles): go.mod replaces it with ../lib, `local_modules` brings its files."""
    gomod = (SMALL / "go.mod").read_text()
    rule_runner.write_files({
        "small/go.mod": gomod + "\nrequire k4s.dev/lib v0.0.0\n\nreplace k4s.dev/lib => ../lib\n",
        "lib/go.mod": "module k4s.dev/lib\n\ngo 1.24\n",
        "lib/go.sum": "",
        "lib/cmds/greet/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("greetings from a local module") }\n',
        "lib/BUILD": 'files(name="lib", sources=["go.mod", "go.sum", "**/*.go"])',
    })
    build = 'go_busybox(name="bb", commands=["k4s.dev/lib/cmds/greet"]{})'
    fs = busybox(rule_runner, build.format(', local_modules=["//lib"]'))
    bb = tmp_path / "bb"
    bb.write_bytes(contents(rule_runner, rule_runner.request(BusyboxBinary, [fs]).digest)[BB])
    bb.chmod(0o755)
    out = subprocess.run([bb, "greet"], capture_output=True, text=True, check=True)
    assert out.stdout == "greetings from a local module\n"
    # Without `local_modules`, the replace points at a directory the sandbox lacks.
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(ModuleSources, [busybox(rule_runner, build.format(""))])
    msg = str(exc.value)
    assert "E_REPLACE_MISSING" in msg and "`local_modules` field of small:bb" in msg, msg
    # A target without sources is refused by name.
    rule_runner.write_files({"lib/BUILD": 'files(name="lib", sources=["go.mod", "go.sum", "**/*.go"])\ntarget(name="none")'})
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(ModuleSources, [busybox(rule_runner, build.format(', local_modules=["//lib:none"]'))])
    assert "`local_modules` field of small:bb names lib:none" in str(exc.value), str(exc.value)


def test_compile_arm64(rule_runner: RuleRunner) -> None:
    fs = busybox(
        rule_runner, f'go_busybox(name="bb", commands=["{U}/echo"], goarch="arm64")'
    )
    data = contents(rule_runner, rule_runner.request(BusyboxBinary, [fs]).digest)[BB]
    assert data[:4] == b"\x7fELF"
    assert int.from_bytes(data[18:20], "little") == 183  # EM_AARCH64


def test_build_tags_select_files(rule_runner: RuleRunner, tmp_path: Path) -> None:
    rule_runner.write_files(
        {
            "small/cmds/tagged/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(msg) }\n',
            "small/cmds/tagged/plain.go": '//go:build !fancy\n\npackage main\n\nconst msg = "plain"\n',
            "small/cmds/tagged/fancy.go": '//go:build fancy\n\npackage main\n\nconst msg = "fancy"\n',
        }
    )
    for tags, want in (("[]", "plain"), ('["fancy"]', "fancy")):
        fs = busybox(
            rule_runner, f'go_busybox(name="bb", commands=["{M}/cmds/tagged"], build_tags={tags})'
        )
        bb = tmp_path / f"bb-{want}"
        bb.write_bytes(contents(rule_runner, rule_runner.request(BusyboxBinary, [fs]).digest)[BB])
        bb.chmod(0o755)
        out = subprocess.run([bb, "tagged"], capture_output=True, text=True, check=True)
        assert out.stdout == f"{want}\n"


INITRAMFS_BUILD = f"""
go_busybox(name="bb", commands=["{U}/echo", "{U}/init", "{U}/gosh", "{M}/cmds/hello"])
files(name="motd", sources=["motd.txt"])
"""


def archive(rule_runner: RuleRunner, extra: str, name: str = "i") -> tuple[Archive, bytes]:
    rule_runner.write_files({"small/BUILD": INITRAMFS_BUILD + extra})
    tgt = rule_runner.get_target(Address("small", target_name=name))
    result = rule_runner.request(Archive, [InitramfsFieldSet.create(tgt)])
    return result, contents(rule_runner, result.digest)[result.path]


def bsdtar_listing(tmp_path: Path, data: bytes) -> list[str]:
    require_tool("bsdtar")
    p = tmp_path / "a.cpio"
    p.write_bytes(data)
    return subprocess.run(
        ["bsdtar", "-tvf", p], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_cpio_layout(rule_runner: RuleRunner, tmp_path: Path) -> None:
    _, data = archive(
        rule_runner,
        'initramfs(name="i", busybox=":bb", uinit="hello", uinit_args=["a b", "c"],'
        ' dependencies=[":motd"], files_mapping={"small/motd.txt": "etc/motd"})',
    )
    listing = "\n".join(bsdtar_listing(tmp_path, data))
    assert "bbin/echo -> bb" in listing and "bbin/hello -> bb" in listing
    assert "init -> bbin/init" in listing
    assert "bin/sh -> ../bbin/gosh" in listing and "bin/defaultsh -> ../bbin/gosh" in listing
    assert "bin/uinit -> ../bbin/hello" in listing
    assert "etc/motd" in listing and "dev/console" in listing


def test_cpio_without_base_layout(rule_runner: RuleRunner, tmp_path: Path) -> None:
    _, data = archive(rule_runner, 'initramfs(name="i", busybox=":bb", base_layout=False, shell="")')
    paths = sorted(line.split()[8] for line in bsdtar_listing(tmp_path, data))
    assert paths == ["bbin", "bbin/bb", "bbin/echo", "bbin/gosh", "bbin/hello", "bbin/init", "init"]


def test_initramfs_init_must_be_a_command(rule_runner: RuleRunner) -> None:
    with pytest.raises(ExecutionError) as exc:
        archive(rule_runner, 'initramfs(name="i", busybox=":bb", init="systemd")')
    msg = str(exc.value)
    assert "`init` field of small:i" in msg and "'systemd'" in msg and "Fix:" in msg


def test_initramfs_busybox_must_be_go_busybox(rule_runner: RuleRunner) -> None:
    with pytest.raises(ExecutionError) as exc:
        archive(rule_runner, 'initramfs(name="i", busybox=":motd")')
    msg = str(exc.value)
    assert "`busybox` field of small:i" in msg and "not a `go_busybox`" in msg


def oci_layout(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def test_oci_image(rule_runner: RuleRunner) -> None:
    """An oci_image is a valid OCI image layout: index -> manifest -> config + one gzip
    layer, every blob named by its sha256, the layer holding bb and its links."""
    import gzip
    import hashlib

    rule_runner.write_files({"small/BUILD": INITRAMFS_BUILD + (
        'oci_image(name="img", busybox=":bb", image_name="k4s.local/small:v1",'
        ' entrypoint=["/bbin/echo"], cmd=["hi"])'
    )})
    tgt = rule_runner.get_target(Address("small", target_name="img"))
    image = rule_runner.request(OciImage, [OciImageFieldSet.create(tgt)])
    assert image.name == "k4s.local/small:v1"
    files = oci_layout(contents(rule_runner, image.digest)[image.path])
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, blob in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    ref = index["manifests"][0]
    assert ref["annotations"]["io.containerd.image.name"] == "k4s.local/small:v1"
    assert ref["annotations"]["org.opencontainers.image.ref.name"] == "k4s.local/small:v1"
    manifest = json.loads(files["blobs/sha256/" + ref["digest"].split(":")[1]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["config"]["Entrypoint"] == ["/bbin/echo"] and config["config"]["Cmd"] == ["hi"]
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    raw = gzip.decompress(files["blobs/sha256/" + layer["digest"].split(":")[1]])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert members["bbin/bb"].isfile() and members["bbin/bb"].mode == 0o755
    assert members["bbin/echo"].issym() and members["bbin/echo"].linkname == "bb"
    assert members["bin"].linkname == "bbin" and members["tmp"].mode == 0o1777
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())


def test_oci_image_command_links(rule_runner: RuleRunner) -> None:
    """`command_links` adds a link per path to /bbin/<command> (e2e's `/agnhost`), which
    bb resolves to the command; a link to a command the busybox lacks fails naming the
    field and the busybox's commands."""
    import gzip

    rule_runner.write_files({"small/BUILD": INITRAMFS_BUILD + (
        'oci_image(name="img", busybox=":bb", entrypoint=["/hi"], command_links={"hi": "echo", "usr/bin/sh": "gosh"})\n'
        'oci_image(name="bad", busybox=":bb", command_links={"agnhost": "agnhost"})'
    )})
    image = rule_runner.request(OciImage, [OciImageFieldSet.create(rule_runner.get_target(Address("small", target_name="img")))])
    files = oci_layout(contents(rule_runner, image.digest)[image.path])
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]])
    raw = gzip.decompress(files["blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert members["hi"].issym() and members["hi"].linkname == "/bbin/echo"
    assert members["usr/bin/sh"].linkname == "/bbin/gosh" and members["usr/bin"].isdir()
    assert members["bbin/echo"].linkname == "bb"
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(OciImage, [OciImageFieldSet.create(rule_runner.get_target(Address("small", target_name="bad")))])
    msg = str(exc.value)
    assert "`command_links` field of small:bad" in msg and "'agnhost', which is not a command of busybox" in msg
    assert "echo, gosh, hello, init" in msg


def test_initramfs_carries_images(rule_runner: RuleRunner, tmp_path: Path) -> None:
    _, data = archive(
        rule_runner,
        'oci_image(name="img", busybox=":bb")\n'
        'initramfs(name="i", busybox=":bb", images=[":img"])',
    )
    listing = "\n".join(bsdtar_listing(tmp_path, data))
    assert "var/lib/k4s/images/img.tar" in listing


def test_initramfs_images_are_oci_images_or_archives(rule_runner: RuleRunner, tmp_path: Path) -> None:
    """`images` also takes file targets of image archives (an OCI layout or `docker
    save` tar, as k3s takes any tarball in agent/images): carried as they are, after
    a check of their format and architecture."""
    rule_runner.write_files({"small/BUILD": INITRAMFS_BUILD + 'oci_image(name="img", busybox=":bb")'})
    image = rule_runner.request(OciImage, [OciImageFieldSet.create(rule_runner.get_target(Address("small", target_name="img")))])
    oci_tar = contents(rule_runner, image.digest)[image.path]
    rule_runner.write_files({"small/vendor/app.tar": oci_tar, "small/vendor/text.tar": b"an image"})
    _, data = archive(
        rule_runner,
        'files(name="archives", sources=["vendor/app.tar"])\n'
        'oci_image(name="img", busybox=":bb")\n'
        'initramfs(name="i", busybox=":bb", images=[":img", ":archives"])',
    )
    require_tool("bsdtar")
    (tmp_path / "a.cpio").write_bytes(data)
    subprocess.run(["bsdtar", "-xf", "a.cpio", "var/lib/k4s/images"], cwd=tmp_path, check=True)
    assert (tmp_path / "var/lib/k4s/images/app.tar").read_bytes() == oci_tar
    assert (tmp_path / "var/lib/k4s/images/img.tar").stat().st_size > 0
    assert "small/vendor/app.tar" not in "\n".join(bsdtar_listing(tmp_path, data))  # not also a plain file
    for images, detail in (('[":motd"]', "not OCI image archives ending in `.tar`: small/motd.txt"),
                           ('[":none"]', "neither an `oci_image` nor files"),
                           ('[":text"]', "small/vendor/text.tar: it is not a tar archive"),
                           ('[":arm"]', "an image for arm64 (its busybox small:armbb)")):
        with pytest.raises(ExecutionError) as exc:
            archive(rule_runner, f'target(name="none")\nfiles(name="text", sources=["vendor/text.tar"])\n'
                    f'go_busybox(name="armbb", commands=["{U}/echo"], goarch="arm64")\n'
                    f'oci_image(name="arm", busybox=":armbb")\n'
                    f'initramfs(name="i", busybox=":bb", images={images})')
        msg = str(exc.value)
        assert "`images` field of small:i" in msg and detail in msg, msg


def test_node_components_must_be_commands(rule_runner: RuleRunner, tmp_path: Path) -> None:
    with pytest.raises(ExecutionError) as exc:
        archive(rule_runner, 'initramfs(name="i", busybox=":bb", node_components=["echo", "kube-apiserver"])')
    msg = str(exc.value)
    assert "`node_components` field of small:i" in msg and "names kube-apiserver" in msg and "Fix:" in msg
    _, data = archive(rule_runner, 'initramfs(name="i", busybox=":bb", node_components=["echo", "hello"])')
    assert "etc/k4s/components" in "\n".join(bsdtar_listing(tmp_path, data))
