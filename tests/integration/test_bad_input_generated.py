"""Generated bad input: a deterministic generator (fixed seed, the standard library's
`random`) makes bad values for every field of `go_busybox`, `initramfs` and
`oci_image`, target names, image layouts and kernel module trees: lengths at and past
Linux's limits, control and non-ASCII characters, `.`/`..`/`/` placements, reserved
names, flags, symlinked and cyclic trees, huge lists. Each value is bad by
construction (a mutation of a good value by a rule README's "Bad input" states), and
each must fail fast with a coded k4s error (`k4s: E_...`) naming the target and the
field: never an uncoded engine error, "a bug in k4s" or a Python exception of ours.

The values are made once per run from SEED, so a failure names a reproducible case;
change SEED to explore. The field table (test_bad_input.py) holds the hand-picked rows,
test_bad_input_rules.py the trees and archives, test_package.py's BAD the end to end
runs through `pants package`.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from k4s_plugin import grammar
from k4s_plugin.rules.layout import BUSYBOX, LayoutEntry, check_layout

from .test_bad_input import BB, IR, parse_error
from .test_bad_input import rule_runner as _field_runner  # noqa: F401 (the fixture)

rule_runner = _field_runner

SEED = 26
OCI = "oci_image"
# A value must fail within this bound (seconds): a value that makes parsing hang or blow up
# shows here. (No bound on the whole table: its wall time is the machine's load, not k4s.)
PER_VALUE_BOUND = 10.0

CONTROL = [chr(c) for c in (*range(0x00, 0x20), 0x7F)]
NON_ASCII = ["é", "ß", "а", "ı", "٣", "４", "→", "\u200b", "\u202e", "😀"]
DOTS = [".", ".."]


class Gen:
    """Bad values by rule. Each method returns a Python literal for BUILD (via repr)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def word(self, lo: int = 1, hi: int = 12) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return self.r.choice("abcdefghijklmnopqrstuvwxyz") + "".join(
            self.r.choice(alphabet) for _ in range(self.r.randint(lo, hi) - 1)
        )

    def insert(self, s: str, junk: str) -> str:
        i = self.r.randint(0, len(s))
        return s[:i] + junk + s[i:]

    def rel_path(self) -> str:
        return "/".join(self.word() for _ in range(self.r.randint(1, 4)))

    # Paths that must stay relative and inside their tree.
    def bad_rel_path(self) -> str:
        p = self.rel_path()
        elems = p.split("/")
        kind = self.r.randrange(8)
        if kind == 0:
            return "/" + p  # absolute
        if kind == 1:
            return "../" * self.r.randint(1, 5) + p
        if kind == 2:
            return p + "/.." * self.r.randint(len(elems), len(elems) + 3)
        if kind == 3:
            return "/".join(elems[:1] + [".."] + elems[1:])  # a '..' element
        if kind == 4:
            return self.insert(p, self.r.choice(CONTROL))
        if kind == 5:
            return p + "/" + "x" * self.r.randint(grammar.NAME_MAX + 1, grammar.NAME_MAX + 300)
        if kind == 6:
            return "/".join(["d" * 200] * (grammar.PATH_MAX // 200 + self.r.randint(1, 5)))
        return ""  # empty

    # One path element of letters, digits and '._+-' (command, kernel module names).
    def bad_name(self, reserved: bool = True) -> str:
        w = self.word()
        kind = self.r.randrange(9 if reserved else 8)
        if kind == 0:
            return self.r.choice(DOTS + [".hidden", "-" + w, "--" + w])
        if kind == 1:
            return self.insert(w, "/")
        if kind == 2:
            return self.insert(w, self.r.choice(CONTROL + [" ", "\t"]))
        if kind == 3:
            return self.insert(w, self.r.choice(NON_ASCII))
        if kind == 4:
            return "n" * self.r.randint(grammar.NAME_MAX + 1, grammar.NAME_MAX + 500)
        if kind == 5:
            return self.insert(w, self.r.choice("*?[]~:;$`'\"\\!&|<>(){}=@#%^,"))
        if kind == 6:
            return "../" + w
        if kind == 7:
            return ""
        return self.r.choice(sorted(grammar.RESERVED_COMMAND_NAMES))

    # Go import paths (commands, command_names keys).
    def bad_import_path(self) -> str:
        p = "example.com/" + self.rel_path()
        kind = self.r.randrange(9)
        if kind == 0:
            return "-" + self.r.choice(["out=/tmp/x", "gomod=/etc", "-x", ""])
        if kind == 1:
            return "/" + p
        if kind == 2:
            return p + "/"
        if kind == 3:
            return p.replace("/", "//", 1)
        if kind == 4:
            return self.insert(p, self.r.choice(CONTROL + [" ", ";", "'", "\\", "$", "`"]))
        if kind == 5:
            return self.insert(p, self.r.choice(NON_ASCII))
        if kind == 6:
            return p + "/" + self.r.choice(DOTS + [".x", "x."])
        if kind == 7:
            return p + "/" + "e" * self.r.randint(grammar.NAME_MAX + 1, grammar.NAME_MAX + 100)
        return "/".join(["e" * 200] * (grammar.PATH_MAX // 200 + 2))

    def bad_ldflag(self) -> str:
        kind = self.r.randrange(6)
        if kind == 0:
            return "-" + self.r.choice(["o", "tmpdir", "cpuprofile", "memprofile", "linkmode", "extld", "r", "H"]) + self.r.choice(["", "=", " "]) + "/tmp/" + self.word()
        if kind == 1:
            return f"-X main.{self.word()}=" + self.insert(self.word(), self.r.choice([" ", "'", '"', "\\", "`", "\n", "\t"]))
        if kind == 2:
            return f"-X {self.word()}=v"  # no package
        if kind == 3:
            return self.r.choice(["-s -w", "-S", "s", "", "-X", "-X="])
        if kind == 4:  # a control character anywhere; another script only in the name
            c = self.r.choice(NON_ASCII + CONTROL)
            return self.insert("-X main.v=1", c) if c in CONTROL else "-X " + self.insert("main.v", c) + "=1"
        return "--" + self.word()

    def bad_tag(self) -> str:
        w = self.word()
        return self.r.choice([w + "," + w, w + " " + w, "-" + w, "!" + w, "", self.insert(w, self.r.choice(NON_ASCII)),
                              self.insert(w, self.r.choice(CONTROL)), w + "/" + w])

    def bad_choice(self, choices: tuple[str, ...]) -> str:
        c = self.r.choice(choices)
        kind = self.r.randrange(5)
        if kind == 0:
            return c.upper() if c.upper() != c else c + "x"
        if kind == 1:
            return self.insert(c, self.r.choice([" ", "\n", "\t"]))
        if kind == 2:
            return self.word()
        if kind == 3:
            return self.insert(c, self.r.choice(NON_ASCII))
        return ""

    def bad_size(self) -> str:
        n = str(self.r.randint(1, 100000))
        kind = self.r.randrange(8)
        if kind == 0:  # other scripts' digits
            table = self.r.choice(["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९"])
            return "".join(table[int(d)] for d in n) + self.r.choice(["", "MiB", "B"])
        if kind == 1:
            return "-" + n + "MiB"
        if kind == 2:
            return n + self.r.choice(["mib", "Mb", "MiBs", "K", "T", "TiB", "bytes", "e3", "%"])
        if kind == 3:
            return self.r.choice(["0", "0MiB", "0.0GiB", "0.0000001B"])
        if kind == 4:
            return self.insert(n + "MiB", self.r.choice(["\t", "\n", "  ", ",", "_"]))
        if kind == 5:
            return self.r.choice(["", "MiB", ".5MiB", "1.MiB", "1..2MiB", "nan", "inf"])
        if kind == 6:
            return " " + n if self.r.random() < 0.5 else n + " "
        return self.insert(n, self.r.choice(NON_ASCII))

    def bad_forward(self) -> str:
        a, b = self.r.randint(1, 65535), self.r.randint(1, 65535)
        return self.r.choice([f"{a}", f"{a}:", f":{b}", f"{a}:{b}:1", f"0:{b}", f"{a}:65536", f"{a}:-1",
                              f"{a} :{b}", f"٣:{b}", f"{a}:{b}/udp", f"localhost:{a}:{b}"])

    def bad_kernel_arg(self) -> str:
        return self.r.choice(["", " ", self.insert(self.word(), self.r.choice([" ", "\t", "\n", "\r", "\x0b"]))])

    def bad_env(self) -> str:
        w = self.word()
        return self.r.choice([w, "=" + w, "1" + w + "=x", self.insert(w, self.r.choice(NON_ASCII)) + "=x",
                              self.insert(w, self.r.choice(" -.:/")) + "=x"])

    def bad_image_name(self) -> str:
        w = self.word()
        return self.r.choice([w.upper() + "/x", f"k4s.local/{w}:", f"k4s.local/{w}:-tag", f"k4s.local//{w}",
                              f"{w} {w}", f"k4s.local/{w}@sha256:00", "", f"k4s.local/../{w}",
                              self.insert(f"k4s.local/{w}", self.r.choice(NON_ASCII + CONTROL))])

    def huge_list(self, bad: str, good: str, n: int) -> list[str]:
        items = [good] * n
        items[self.r.randrange(n)] = bad
        return items


def _lit(value) -> str:
    return repr(value)


def field_cases(seed: int = SEED) -> list[tuple[str, str, str]]:
    """(kind, field, BUILD literal) bad values, ≥ 500 of them."""
    g = Gen(seed)
    cases: list[tuple[str, str, str]] = []

    def add(kind: str, field: str, make, n: int) -> None:
        for _ in range(n):
            cases.append((kind, field, _lit(make())))

    for kind in (BB, IR, OCI):
        add(kind, "output_path", g.bad_rel_path, 16)
    add(BB, "commands", lambda: [g.bad_import_path()], 50)
    add(BB, "commands", lambda: g.huge_list(g.bad_import_path(), "example.com/p/cmd", g.r.randint(1000, 5000)), 3)
    add(BB, "command_names", lambda: {"example.com/p/c": g.bad_name()}, 30)
    add(BB, "command_names", lambda: {g.bad_import_path(): "c"}, 15)
    add(BB, "ldflags", lambda: ["-s", g.bad_ldflag()], 30)
    add(BB, "ldflags", lambda: g.huge_list(g.bad_ldflag(), "-X main.v=1", 4000), 2)
    add(BB, "build_tags", lambda: [g.bad_tag()], 20)
    add(BB, "goos", lambda: g.bad_choice(("linux",)), 8)
    add(BB, "goarch", lambda: g.bad_choice(("amd64", "arm64", "riscv64")), 10)
    add(BB, "patches", lambda: [(g.bad_rel_path() or "/") + ".patch"], 16)
    add(BB, "patches", lambda: [g.rel_path() + g.r.choice(["", ".txt", ".patch.bak", ".PATCH"])], 6)
    add(BB, "local_modules", lambda: g.r.choice([1, [1], [None], "//:a", [["//:a"]]]), 5)
    for field in ("init", "uinit"):
        add(IR, field, lambda: g.bad_name(), 15)
    add(IR, "shell", lambda: g.bad_name() or "..", 15)
    add(IR, "node_components", lambda: [g.bad_name()], 20)
    add(IR, "node_components", lambda: (lambda w: [w, "kubelet", w])(g.word()), 5)
    add(IR, "kernel_modules", lambda: [g.bad_name(reserved=False)], 20)
    add(IR, "kernel_modules_dir", lambda: g.r.choice(["", g.rel_path(), "/lib/../" + g.rel_path(), "/lib/" + g.word() + "\n"]), 10)
    add(IR, "files_mapping", lambda: {"p/motd": g.bad_rel_path()}, 40)
    add(IR, "files_mapping", lambda: {g.bad_rel_path(): "etc/motd"}, 15)
    add(IR, "max_size", g.bad_size, 30)
    add(IR, "compression", lambda: g.bad_choice(("none", "gzip", "xz", "zstd")), 10)
    add(IR, "vm_accel", lambda: g.bad_choice(("auto", "kvm", "tcg")), 6)
    add(IR, "vm_port_forwards", lambda: [g.bad_forward()], 15)
    add(IR, "vm_memory", lambda: g.r.choice([g.r.randint(-10**9, 63), "2048", 2048.5]), 6)
    add(IR, "vm_cpus", lambda: g.r.choice([g.r.randint(-100, 0), "2"]), 4)
    add(IR, "kernel_args", lambda: [g.bad_kernel_arg()], 10)
    add(IR, "images", lambda: g.r.choice([1, [1], "//:a", [None]]), 4)
    add(IR, "base_layout", lambda: g.r.choice(["yes", 2, None.__class__.__name__]), 3)
    add(OCI, "env", lambda: [g.bad_env()], 15)
    add(OCI, "image_name", g.bad_image_name, 15)
    add(OCI, "entrypoint", lambda: g.r.choice([1, "x", [1]]), 3)
    add(OCI, "command_links", lambda: {g.bad_rel_path(): "agnhost"}, 15)
    add(OCI, "command_links", lambda: {"agnhost": g.bad_name()}, 10)
    add(OCI, "command_links", lambda: {g.r.choice(["bbin", "bin", "tmp", "./bin", "bbin/x"]) + g.r.choice(["", "/" + g.word()]): "sh"}, 6)
    add(OCI, "user", lambda: g.r.choice([g.word(), f"{g.r.randint(0, 99)}:{g.word()}", str(2**32 + g.r.randint(0, 9)),
                                          f"-{g.r.randint(1, 9)}", f"1:2:{g.r.randint(3, 9)}", ""]), 10)
    add(OCI, "files", lambda: {g.bad_rel_path(): "p/data.json"}, 15)
    add(OCI, "files", lambda: {"data.json": g.bad_rel_path()}, 10)
    add(OCI, "file_modes", lambda: {"bbin/bb": g.r.choice(["", "8755", "0o755", g.word(), "1" * g.r.randint(5, 9)])}, 8)
    add(OCI, "file_modes", lambda: {g.bad_rel_path(): "0644"}, 8)
    return cases


FIELD_CASES = field_cases()


def test_the_generator_makes_enough_values() -> None:
    assert len(FIELD_CASES) >= 500, len(FIELD_CASES)
    assert field_cases() == FIELD_CASES  # deterministic
    from pants.engine.target import COMMON_TARGET_FIELDS

    from k4s_plugin.targets import GoBusyboxTarget, InitramfsTarget, OciImageTarget

    covered = {(k, f) for k, f, _ in FIELD_CASES}
    every = {(t.alias, f.alias) for t in (GoBusyboxTarget, InitramfsTarget, OciImageTarget)
             for f in t.core_fields if f not in COMMON_TARGET_FIELDS}
    # Addresses and globs are resolved by the rules (test_rules.py, test_targets.py);
    # any string is a valid argument; a bool is a bool.
    elsewhere = {(BB, "sources"), (IR, "busybox"), (OCI, "busybox"), (IR, "dependencies"), (OCI, "dependencies"), (IR, "kernel"),
                 (IR, "uinit_args"), (OCI, "cmd"), (IR, "cluster_identity"),
                 (IR, "linux_kernel")}  # an address: bad kernels are tests/integration/test_kernel.py's
    assert every - elsewhere <= covered, sorted(every - elsewhere - covered)


def assert_coded(msg: str, field: str, address: str = "p:t") -> None:
    """A coded k4s error that names the target and the field, and no crash."""
    assert "k4s: E_" in msg, msg[-2000:]
    assert f"`{field}` field of {address}" in msg or f"'{field}' field in target {address}" in msg, msg[-2000:]
    assert "bug in k4s" not in msg and "E_INTERNAL" not in msg, msg[-2000:]
    for crash in ("RecursionError", "KeyError", "IndexError", "AttributeError", "TypeError:", "UnicodeError",
                  "AssertionError", "StopIteration", "ZeroDivisionError", "OverflowError"):
        assert crash not in msg, msg[-2000:]


def test_generated_field_values(rule_runner: RuleRunner) -> None:
    """Every generated value fails at parse time, within the bound, coded and named."""
    slow = []
    for kind, field, value in FIELD_CASES:
        t0 = time.monotonic()
        try:
            msg = parse_error(rule_runner, kind, field, value)
        except BaseException as e:  # a value that parsed: name it
            raise AssertionError(f"{kind}.{field}={value[:200]} was accepted") from e
        assert_coded(msg, field)
        if time.monotonic() - t0 > PER_VALUE_BOUND:
            slow.append((kind, field, value[:80]))
    assert not slow, slow


def test_generated_target_names(rule_runner: RuleRunner) -> None:
    g = Gen(SEED + 1)
    names = [g.r.choice(DOTS), "-" + g.word(), "x" * (grammar.TARGET_NAME_MAX + g.r.randint(1, 40))]
    names += [g.insert(g.word(), g.r.choice(NON_ASCII + [" ", "~", "'", "$"])) for _ in range(12)]
    for name in names:
        for kind in (BB, IR, OCI):
            msg = parse_error(rule_runner, kind, name=name)
            assert_coded(msg, "name", f"p:{name}")


def layout_cases(seed: int = SEED) -> list[tuple[list[LayoutEntry], str]]:
    """Image trees that cannot be: entries below files, links and device nodes, onto
    device nodes and base-layout directories, twice, outside the image, too long."""
    g = Gen(seed)
    base = [
        LayoutEntry("bbin/bb", "file", BUSYBOX, "the busybox's bbin/bb"),
        LayoutEntry("bbin/ls", "symlink", BUSYBOX, "the link bbin/ls -> bb"),
        LayoutEntry("init", "symlink", BUSYBOX, "the link init -> bbin/init"),
    ]
    out = []
    below = ["etc/localtime", "etc/resolv.conf", "dev/console", "dev/null", "dev/tty", "dev/port",
             "dev/urandom", "bbin/bb", "bbin/ls", "init"]
    for _ in range(40):
        field = g.r.choice(["files_mapping", "dependencies", "images", "kernel_modules"])
        kind = g.r.randrange(5)
        if kind == 0:
            path = g.r.choice(below) + "/" + g.rel_path()
        elif kind == 1:
            path = g.r.choice(sorted(["dev/console", "dev/null", "dev/tty", "dev/port", "dev/urandom"]))
        elif kind == 2:
            path = g.r.choice(["tmp", "etc", "var/log", "usr/lib", "dev", "proc", "bin"])
        elif kind == 3:
            path = g.bad_rel_path()
        else:
            path = g.r.choice(["bbin/bb", "bbin/ls", "init"])
        out.append((base + [LayoutEntry(path, "file", field, f"the file p/{g.word()}")], field))
    return out


def test_generated_layouts() -> None:
    for entries, field in layout_cases():
        problem = check_layout(entries, True)
        assert problem is not None, entries[-1]
        assert problem.field == field, (problem, entries[-1])
        assert problem.fix and "bug in k4s" not in problem.problem


@pytest.fixture
def kmods_runner() -> RuleRunner:
    from k4s_plugin.rules.kmods import KernelModules, KernelModulesRequest

    from .test_bad_input_rules import _runner

    return _runner(QueryRule(KernelModules, [KernelModulesRequest]))


def test_generated_module_trees(kmods_runner: RuleRunner, tmp_path: Path) -> None:
    """Module trees with links out of themselves (files and directories, absolute and
    relative, through chains of links), loops of links, and modules.dep cycles."""
    from k4s_plugin.rules.kmods import KernelModules, KernelModulesRequest

    g = Gen(SEED + 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ko").write_text("this machine's file")
    for i in range(12):
        tree = tmp_path / f"tree{i}"
        (tree / "kernel").mkdir(parents=True)
        names = [g.word(3, 8) for _ in range(g.r.randint(2, 5))]
        kind = i % 4
        if kind == 3:  # a modules.dep cycle of random length
            ring = names + [names[0]]
            dep = "".join(f"kernel/{a}.ko: kernel/{b}.ko\n" for a, b in zip(ring, ring[1:]))
            for n in names:
                (tree / "kernel" / f"{n}.ko").write_text(n)
            expected = "dependency cycle"
        else:
            dep = "".join(f"kernel/{n}.ko:\n" for n in names)
            for n in names[1:]:
                (tree / "kernel" / f"{n}.ko").write_text(n)
            victim = tree / "kernel" / f"{names[0]}.ko"
            if kind == 0:  # straight out, absolute or relative
                target = outside / "secret.ko"
                victim.symlink_to(target if g.r.random() < 0.5 else os.path.relpath(target, victim.parent))
                expected = "links out of the tree"
            elif kind == 1:  # through a chain of links inside the tree
                hop = tree / "kernel" / "hop.ko"
                hop.symlink_to(outside / "secret.ko")
                victim.symlink_to("hop.ko")
                expected = "links out of the tree"
            else:  # a loop
                other = tree / "kernel" / "loop.ko"
                other.symlink_to(victim.name)
                victim.symlink_to("loop.ko")
                expected = "cannot be resolved"
        (tree / "modules.dep").write_text(dep)
        t0 = time.monotonic()
        with pytest.raises(ExecutionError) as exc:
            kmods_runner.request(KernelModules, [KernelModulesRequest(Address("p", target_name="t"), (names[0],), str(tree))])
        assert time.monotonic() - t0 < 30
        msg = str(exc.value)
        assert_coded(msg, "kernel_modules_dir")
        assert expected in msg, msg[-2000:]
