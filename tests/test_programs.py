"""The program registry against the code and against scripts/install.sh.

The scan finds the programs the code calls: the first word of every argv list given to a
runner (`run`, `spawn`, `Popen`, ...), the commands of every shell script (strings after
`sh -c`, constants that set PATH, hooks in templates), and absolute paths to executables.
A program missing from `wgbgp.programs.PROGRAMS`, or a package from it that install.sh
does not install, fails here on every machine, whatever happens to be installed on it.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wgbgp.programs import (
    BASE_PACKAGES,
    OPTIONAL_PACKAGES,
    PROGRAMS,
    SETUP_PACKAGES,
    install_hint,
    package_of,
)

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SH = ROOT / "scripts" / "install.sh"

PROGRAM = re.compile(r"^(/[\w./-]+|[a-z][a-z0-9._+-]*)$")
RUNNERS = {"run", "spawn", "Popen", "check_output", "call", "check_call", "_run", "_check"}
SHELL_WORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in",
               "case", "esac", "!", "{", "}", "exec", "command", "time", "function"}
BUILTINS = {"echo", "printf", "read", "shift", "export", "exit", "set", "trap", "umask",
            "kill", "true", "false", "test", "[", "cd", "wait", "local", "return", "eval",
            "unset", "break", "continue", ".", ":", "type"}
EXECUTABLE_DIRS = re.compile(r"^/(usr/)?(s?bin|lib/frr)/[\w.-]+$")


def shell_commands(script: str) -> set[str]:
    """The words in command position of a POSIX shell script (a careful approximation)."""
    text = re.sub(r"(^|\s)#[^\n]*", r"\1", script)        # comments (may hold apostrophes)
    text = re.sub(r"'[^']*'", "''", text)                 # single-quoted text is data
    text = re.sub(r"\$\(\([^)]*\)\)", "0", text)             # arithmetic
    functions = set(re.findall(r"(?m)^\s*([\w-]+)\(\)\s*\{", text))
    found = set()
    for segment in re.split(r"\n|;|\|\|?|&&|\$\(|`|&", text):
        words = segment.split()
        if not words or words[0] in ("for", "case"):
            continue
        if words[0].startswith("("):
            words[0] = words[0][1:] or "{"
        if words[0].endswith(")"):                        # a case pattern
            words = words[1:]
        while words and (words[0] in SHELL_WORDS or re.match(r"^\w+=", words[0])):
            words = words[1:]
        if words and PROGRAM.match(words[0]) and words[0] not in BUILTINS | functions:
            found.add(words[0])
    return found


class _Scan(ast.NodeVisitor):
    def __init__(self, tree: ast.Module) -> None:
        self.constants = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                          for t in n.targets if isinstance(t, ast.Name)}
        self.found: set[str] = set()
        self.visit(tree)

    def text(self, node: ast.AST) -> str | None:
        """A string expression's literal text (names and `.replace` followed)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.text(self.constants[node.id])
        if isinstance(node, ast.JoinedStr):
            # A hole is no program name: `/usr/lib/frr/{d}` matches nothing.
            return "".join(str(v.value) if isinstance(v, ast.Constant) else "\0"
                           for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return (self.text(node.left) or "") + (self.text(node.right) or "")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "replace"):
            return self.text(node.func.value)
        return None

    def argv(self, node: ast.List) -> None:
        words = [self.text(e) for e in node.elts]
        if words and words[0] and PROGRAM.match(words[0]):
            self.found.add(words[0])
        for i in range(1, len(words) - 1):
            if words[i] == "-c" and words[i - 1] in ("sh", "bash"):
                script = self.text(node.elts[i + 1])
                if script:
                    self.found |= shell_commands(script)

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
            node.func, "id", "")
        if name in RUNNERS and node.args and isinstance(node.args[0], ast.List):
            self.argv(node.args[0])
        if name == "which" and node.args and self.text(node.args[0]):
            self.found.add(self.text(node.args[0]) or "")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if isinstance(node.value, ast.List) and any(re.search("argv|cmd", n) for n in names):
            self.argv(node.value)
        if isinstance(node.value, ast.Tuple) and any(n.endswith("TOOLS") for n in names):
            self.found |= {t for e in node.value.elts if (t := self.text(e))}
        if not isinstance(node.value, ast.Constant) and "PATH=" in (self.text(node.value) or ""):
            self.found |= shell_commands(self.text(node.value) or "")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            if "PATH=" in node.value:                     # a shell script of ours
                self.found |= shell_commands(node.value)
            if EXECUTABLE_DIRS.match(node.value):
                self.found.add(node.value)


def programs_called(paths: list[Path]) -> dict[str, set[str]]:
    """program -> the files that call it."""
    calls: dict[str, set[str]] = {}
    for path in paths:
        if path.suffix == ".py":
            found = _Scan(ast.parse(path.read_text(), str(path))).found
        else:                                             # a template: its hook lines
            found = set()
            for hook in re.findall(r"(?m)^(?:Pre|Post)(?:Up|Down)\s*=\s*(.+)$", path.read_text()):
                found |= shell_commands(re.sub(r"\{\{.*?\}\}", "X", hook))
        for program in found:
            calls.setdefault(program, set()).add(str(path.relative_to(ROOT)))
    return calls


def code_files() -> list[Path]:
    return sorted(p for d in ("src", "tests", "bench") for p in (ROOT / d).rglob("*")
                  if p.suffix in (".py", ".j2") and p.is_file())


def install_sh_packages(text: str) -> set[str]:
    """The packages named in install.sh's `packages=(...)` array."""
    match = re.search(r"(?ms)^packages=\((.*?)\)", text)
    assert match, "scripts/install.sh has no packages=(...) array"
    return set(match.group(1).split())


def test_scanner_reads_argv_shell_and_paths() -> None:
    src = ('PATH_LINE = "PATH=/bin\\n"\n'
           'S = PATH_LINE + "d=$(mktemp -d); trap \'rm -rf x\' EXIT\\n'
           'if ! out=$(vtysh -c x | sed s/a/b/); then echo no; fi\\n"\n'
           'x.run(["nft", "-f", f])\n'
           'x.run(["sh", "-c", "ip link && frob() { :; }"])\n'
           'R = "/usr/lib/frr/frr-reload.py"\n')
    path = Path("/tmp/_never_read.py")
    scan = _Scan(ast.parse(src, str(path)))
    assert scan.found == {"sh", "mktemp", "vtysh", "sed", "nft", "ip", "/usr/lib/frr/frr-reload.py"}


def test_every_program_the_code_calls_is_registered() -> None:
    calls = programs_called(code_files())
    missing = {p: sorted(f) for p, f in calls.items() if p not in PROGRAMS}
    assert not missing, ("programs called but missing from wgbgp.programs.PROGRAMS "
                         f"(add each with its Debian package): {missing}")


def test_no_test_runs_the_system_interpreter() -> None:
    """On a managed machine python3 comes with frr-pythontools; the tests and benchmarks
    must use the interpreter running them, which can import wgbgp."""
    calls = programs_called([p for p in code_files() if not p.is_relative_to(ROOT / "src")])
    assert "python3" not in calls, (
        f"{sorted(calls['python3'])} run `python3`: on a fresh machine that interpreter "
        "cannot import wgbgp. Use sys.executable.")


def test_install_sh_installs_every_registered_package() -> None:
    installed = install_sh_packages(INSTALL_SH.read_text())
    needed = {p.package for p in PROGRAMS.values()} - BASE_PACKAGES - OPTIONAL_PACKAGES
    assert not needed - installed, (
        f"scripts/install.sh does not install {sorted(needed - installed)}, which "
        "wgbgp.programs says the code needs: add them to its packages=(...)")
    extra = installed - needed - SETUP_PACKAGES
    assert not extra, f"scripts/install.sh installs {sorted(extra)}, which no program needs"


def test_the_check_fails_when_install_sh_drops_a_package() -> None:
    text = INSTALL_SH.read_text()
    dropped = re.sub(r"\bfrr-pythontools\b", "", text)
    assert "frr-pythontools" in install_sh_packages(text)
    assert "frr-pythontools" not in install_sh_packages(dropped)


def test_install_hint_names_the_packages() -> None:
    assert package_of("/usr/lib/frr/frr-reload.py") == "frr-pythontools"
    assert install_hint(["vtysh", "frrinit.sh", "frr-reload.py"]) == (
        "install frr and frr-pythontools")


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")
def test_base_packages_are_required_on_debian() -> None:
    """BASE_PACKAGES are left out of install.sh because every Debian system has them."""
    for package in sorted(BASE_PACKAGES):
        res = subprocess.run(["dpkg-query", "-W", "-f", "${Priority}", package],
                             capture_output=True, text=True)
        assert res.stdout == "required", f"{package}: priority {res.stdout or 'not installed'}"
