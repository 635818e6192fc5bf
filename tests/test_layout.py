"""The layout of ``python/snnfast``, read from the source with :mod:`ast` (nothing is imported).

The rules:

1. **The library never imports the study.** Only modules inside ``snnfast/paper/`` and
   ``snnfast/cli.py`` may import ``snnfast.paper`` (at module level or inside a function).
2. **No import cycle** among the modules' module-level imports (imports inside functions, and
   under ``if TYPE_CHECKING:``, are not module level and may close a loop on purpose).
3. **Private names stay in their module.** A name that starts with one underscore (``_x``,
   not ``__x__``) belongs to the module that defines it: no other module imports it
   (``from .network import _int_array``) or reaches it through a module or an object
   (``network._int_array``, ``net._check_images``). An object's attribute counts when the name is
   defined by another snnfast module and not by the module using it (so ``self._x`` and a
   class's own private helpers are fine, and so are third-party names such as ``_replace``).
   A *private module* (``_checks``, ``_io``, ``_container``, ``_records``, ``_core``,
   ``paper/_markdown``) is shared code of its package: any module of that package or its
   subpackages may import its public names, nothing outside the package may import it.
4. **No module over** :data:`MAX_LINES` lines.

:data:`KNOWN` lists the violations in modules this test's author does not own, each with the
rule it breaks; they are reported by :func:`test_known_violations_are_listed_with_their_owner`
and should shrink to nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "python" / "snnfast"
PACKAGE = "snnfast"
MAX_LINES = 700
STUDY = "snnfast.paper"
STUDY_CLIENTS = ("snnfast.cli",)

KNOWN: dict[tuple[str, str], str] = {
    # (module, what): rule broken; owner of the module. To fix: give the helper a public name
    # (or a private module of shared helpers) and use that.
}


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int
    is_package: bool
    #: snnfast modules this one imports at module level.
    top_imports: set[str] = field(default_factory=set)
    #: (imported module, line) of every snnfast import anywhere in the module.
    all_imports: list[tuple[str, int]] = field(default_factory=list)
    #: private names it takes from other modules: (source module, name, line).
    private_from: list[tuple[str, str, int]] = field(default_factory=list)
    #: local names bound to snnfast modules.
    module_aliases: dict[str, str] = field(default_factory=dict)


def _module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _load() -> dict[str, Module]:
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        name, is_pkg = _module_name(path)
        text = path.read_text()
        mods[name] = Module(name, path, ast.parse(text, str(path)), len(text.splitlines()), is_pkg)
    return mods


MODULES = _load()


def _is_module(name: str) -> bool:
    """A module of ours: a source file, or the native ``_core`` (its stub or a built ``.so``)."""
    if name in MODULES:
        return True
    path = ROOT.parent / Path(*name.split("."))
    return path.with_suffix(".pyi").exists() or any(path.parent.glob(path.name + ".*so"))


def _base(mod: Module, node: ast.ImportFrom) -> str | None:
    """The absolute module an ``ImportFrom`` reads from (``None`` outside snnfast)."""
    if node.level == 0:
        return node.module if node.module and node.module.split(".")[0] == PACKAGE else None
    package = mod.name if mod.is_package else mod.name.rsplit(".", 1)[0]
    parts = package.split(".")
    if node.level > 1:
        parts = parts[: len(parts) - node.level + 1]
    base = ".".join(parts)
    return f"{base}.{node.module}" if node.module else base


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements executed on import, outside functions and ``if TYPE_CHECKING:``."""
    out: list[ast.stmt] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                todo.extend(node.orelse)
                continue
            todo.extend(node.body + node.orelse)
            continue
        if isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody)
            for h in node.handlers:
                todo.extend(h.body)
            continue
        if isinstance(node, (ast.With, ast.ClassDef)):
            todo.extend(node.body)
            continue
        out.append(node)
    return out


def _analyse() -> None:
    for mod in MODULES.values():
        top = set(map(id, _top_level(mod.tree)))
        for node in ast.walk(mod.tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        targets.append(alias.name)
                        local = alias.asname or alias.name.split(".")[0]
                        mod.module_aliases[local] = alias.name if alias.asname else PACKAGE
            elif isinstance(node, ast.ImportFrom):
                base = _base(mod, node)
                if base is None:
                    continue
                reads_base = False  # an attribute of ``base``, not only its submodules
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if _is_module(sub):
                        targets.append(sub)
                        mod.module_aliases[alias.asname or alias.name] = sub
                        continue
                    reads_base = True
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        mod.private_from.append((base, alias.name, node.lineno))
                if reads_base:
                    targets.append(base)
            for t in targets:
                mod.all_imports.append((t, node.lineno))
                if id(node) in top and t != mod.name:
                    mod.top_imports.add(t)


_analyse()


def _defined_names(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, assignments, attributes it sets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


DEFINED = {name: _defined_names(m.tree) for name, m in MODULES.items()}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _package_of(module: str) -> str:
    m = MODULES.get(module)
    if m is not None and m.is_package:
        return module
    return module.rsplit(".", 1)[0]


def violations() -> dict[tuple[str, str], str]:
    """Every breach of the rules, keyed by (module, what)."""
    found: dict[tuple[str, str], str] = {}
    # 1. the study
    for mod in MODULES.values():
        inside = mod.name == STUDY or mod.name.startswith(STUDY + ".")
        if inside or mod.name in STUDY_CLIENTS:
            continue
        for target, _line in mod.all_imports:
            if target == STUDY or target.startswith(STUDY + "."):
                found[(mod.name, f"imports {target}")] = "library imports the study"
    # 2. cycles
    graph = {m.name: {t for t in m.top_imports if t in MODULES} for m in MODULES.values()}
    for cycle in _cycles(graph):
        found[(cycle[0], "cycle " + " -> ".join(cycle))] = "import cycle"
    # 3. private names and private modules
    owners: dict[str, set[str]] = {}
    for name, defined in DEFINED.items():
        for n in defined:
            if _private(n):
                owners.setdefault(n, set()).add(name)
    for mod in MODULES.values():
        for source, name, _line in mod.private_from:
            if source != mod.name:
                found[(mod.name, f"imports {source}.{name}")] = "private name"
        for target, _line in mod.all_imports:
            parts = target.split(".")
            for i, part in enumerate(parts):
                if _private(part):
                    owner = ".".join(parts[:i])
                    if not (mod.name == owner or mod.name.startswith(owner + ".")):
                        found[(mod.name, f"imports {target}")] = "private module"
                    break
        for node in ast.walk(mod.tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Name) and value.id in mod.module_aliases:
                target = mod.module_aliases[value.id]
                if target != mod.name and node.attr not in _submodules(target):
                    what = f"uses {target}.{node.attr}"
                    found[(mod.name, what)] = "private name"
                continue
            elsewhere = owners.get(node.attr, set()) - {mod.name}
            if elsewhere and node.attr not in DEFINED[mod.name]:
                src = ", ".join(sorted(elsewhere))
                what = f"uses .{node.attr} of {src}"
                found[(mod.name, what)] = "private name"
    # 4. size
    for mod in MODULES.values():
        if mod.lines > MAX_LINES:
            found[(mod.name, f"{mod.lines} lines")] = f"module over {MAX_LINES} lines"
    return found


def _submodules(package: str) -> set[str]:
    return {n.rsplit(".", 1)[1] for n in MODULES if n.rsplit(".", 1)[0] == package}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(_a_cycle(graph, set(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _a_cycle(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    start = min(comp)
    path = [start]
    seen = {start}
    v = start
    while True:
        nxt = sorted(w for w in graph[v] if w in comp)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1 or (back and start in graph[start]):
            return [*path, start]
        step = next((w for w in nxt if w not in seen), None)
        if step is None:
            return [*path, start]
        path.append(step)
        seen.add(step)
        v = step


FOUND = violations()


@pytest.mark.parametrize("rule", ["library imports the study", "import cycle"])
def test_no_violation_of(rule: str) -> None:
    bad = sorted(k for k, r in FOUND.items() if r == rule and k not in KNOWN)
    assert not bad, f"{rule}: {bad}"


def test_private_names_stay_in_their_module() -> None:
    bad = sorted(
        k for k, r in FOUND.items() if r in ("private name", "private module") and k not in KNOWN
    )
    assert not bad, bad


def test_no_module_is_too_long() -> None:
    bad = sorted(k for k, r in FOUND.items() if r.startswith("module over") and k not in KNOWN)
    assert not bad, bad


def test_known_violations_are_listed_with_their_owner() -> None:
    """What remains in :data:`KNOWN` still exists (a fixed one must leave the list)."""
    stale = sorted(k for k in KNOWN if k not in FOUND)
    assert not stale, f"fixed, remove from KNOWN: {stale}"


def test_the_rules_catch_what_they_are_for(tmp_path) -> None:
    """The checker finds a planted breach of each rule."""
    src = {
        "a.py": "from .b import x\nfrom .paper import report\nfrom .c import _hidden\n",
        "b.py": "from . import a\nx = 1\n",
        "c.py": "def _hidden():\n    pass\n",
        "d.py": "from . import c\nc._hidden()\n" + "\n" * 701,
    }
    fake = {}
    for name, text in src.items():
        tree = ast.parse(text)
        fake[f"snnfast.{name[:-3]}"] = Module(
            f"snnfast.{name[:-3]}", tmp_path / name, tree, len(text.splitlines()), False
        )
    fake["snnfast.paper"] = Module("snnfast.paper", tmp_path / "p.py", ast.parse(""), 0, True)
    # a private module of a subpackage, imported from outside it
    fake["snnfast.pkg"] = Module("snnfast.pkg", tmp_path / "k.py", ast.parse(""), 0, True)
    fake["snnfast.pkg._h"] = Module(
        "snnfast.pkg._h", tmp_path / "h.py", ast.parse("y = 1"), 1, False
    )
    fake["snnfast.e"] = Module(
        "snnfast.e", tmp_path / "e.py", ast.parse("from .pkg._h import y"), 1, False
    )
    saved = dict(MODULES)
    try:
        MODULES.clear()
        MODULES.update(fake)
        _analyse()
        DEFINED.clear()
        DEFINED.update({n: _defined_names(m.tree) for n, m in MODULES.items()})
        rules = set(violations().values())
    finally:
        MODULES.clear()
        MODULES.update(saved)
        DEFINED.clear()
        DEFINED.update({n: _defined_names(m.tree) for n, m in MODULES.items()})
    assert rules >= {
        "library imports the study",
        "import cycle",
        "private name",
        "private module",
        f"module over {MAX_LINES} lines",
    }
