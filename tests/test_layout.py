"""The house rules of the package, read from the source (see docs/architecture.md):
`__all__` says exactly what a module offers, nobody imports another module's private
names, bounced's modules import each other without a cycle, and dependencies point
one way (cli -> suppressions/sending/listener -> db -> the pure core)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bounced"
#: Alembic's revision files follow Alembic's conventions, not ours.
MIGRATIONS = PACKAGE / "db" / "migrations"

#: The pure core: no I/O of its own, no database; usable from anywhere.
CORE = frozenset(
    {
        "errors",
        "config",
        "addresses",
        "keys",
        "policy",
        "dsn",
        "rules",
        "formats",
        "verp",
        "metrics",
    }
)
#: What each part of bounced may import (beside itself). Anything not listed imports
#: only the core; `bounced/__init__` and `__main__` are the front door and may import all.
ALLOWED = {
    "db": {"db"},
    "inputs": {"inputs"},
    "suppressions": {"db"},
    "sending": {"sending", "db", "suppressions"},
    "listener": {"listener", "db", "suppressions", "health"},
    "health": {"db", "suppressions", "sending", "listener"},
    "http": {"http", "db", "suppressions", "sending", "listener", "health", "clean", "providers"},
    "postfix": {"postfix", "db", "suppressions", "health"},
    "clean": {"clean", "db", "suppressions"},
    "providers": {"providers"},
    "domaincheck": {"domaincheck", "clean"},
    "cli": {
        "cli",
        "db",
        "suppressions",
        "sending",
        "listener",
        "inputs",
        "health",
        "http",
        "postfix",
        "clean",
        "domaincheck",
        "providers",
    },
}
FRONT = {"bounced", "bounced.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, ast.Module]:
    return {
        module_name(p): ast.parse(p.read_text(), str(p))
        for p in sorted(PACKAGE.rglob("*.py"))
        if MIGRATIONS not in p.parents
    }


def is_package(name: str) -> bool:
    return (ROOT / Path(*name.split(".")) / "__init__.py").exists()


def type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at module level or in a function, but those
    under `if TYPE_CHECKING:` (annotations only: never run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and type_checking_only(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package(module):
        base.pop()
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The bounced modules an import statement runs (`from pkg import sub` runs pkg.sub)."""
    known = modules()
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    source = resolve(module, node)
    out = {f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known}
    if len(out) < len(node.names) and source in known:
        out.add(source)
    return out


@cache
def graph() -> dict[str, set[str]]:
    return {
        name: {t for node in imports(tree) for t in targets(name, node)} - {name}
        for name, tree in modules().items()
    }


def part(module: str) -> str:
    """`bounced.db.store` -> "db"; `bounced.policy` -> "policy"."""
    return module.split(".")[1] if "." in module else module


def defined(tree: ast.Module) -> set[str]:
    """Names a module defines at module level itself (not the ones it imports)."""
    names: set[str] = set()

    def bind(target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                bind(element)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    bind(target)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                bind(node.target)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names - {"__all__"}


def imported(tree: ast.Module) -> set[str]:
    """Names a module binds by importing them at module level (re-exports)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def declared(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return list(value)
    return None


@pytest.mark.parametrize("module", sorted(modules()))
def test_all_lists_exactly_the_public_names(module):
    """Public = defined at module level in that module without a leading underscore.
    Besides those, `__all__` may only name what the module imports: a re-export (the
    package front doors, `bounced.suppressions` with its documented errors)."""
    tree = modules()[module]
    public = {n for n in defined(tree) if not n.startswith("_")}
    listed = declared(tree)
    if listed is None:
        assert not public, f"{module} defines {sorted(public)} but has no __all__"
        return
    assert len(listed) == len(set(listed)), f"{module}: __all__ names a name twice"
    assert public <= set(listed), f"{module}: public but not in __all__: {public - set(listed)}"
    strays = set(listed) - public - imported(tree)
    assert not strays, f"{module}: __all__ names what it neither defines nor imports: {strays}"


def test_no_import_cycles():
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(edges[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_the_graph_sees_function_level_imports():
    """The cycle test reads imports inside functions too (the CLI imports lazily)."""
    assert "bounced.db.reports" in graph()["bounced.cli.admin"]  # inside _print_addresses


def private(name: str) -> bool:
    """`_name` is private; `__version__` and `__main__` are not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(path: Path, module: str | None) -> list[str]:
    """`from m import _x`, `import m._x`, and `m._x` on a bounced module `m` imported."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = resolve(module, node) if module else (node.module or "")
            aliases |= {a.asname or a.name for a in node.names if f"{source}.{a.name}" in modules()}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.asname and a.name in modules()}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and private(node.attr)
        ):
            found.append(f"{path.relative_to(ROOT)}: {node.value.id}.{node.attr}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = resolve(module, node) if module else (node.module or "")
            for alias in node.names:
                if private(alias.name) and source != module:
                    found.append(f"{path.relative_to(ROOT)}: from {source} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(private(p) for p in alias.name.split(".")):
                    found.append(f"{path.relative_to(ROOT)}: import {alias.name}")
    return found


def test_no_module_imports_a_private_name():
    """Neither the package nor the tests nor the benchmarks use another module's
    `_names`: what is shared is public (and in `__all__`)."""
    found = [p for name in modules() for p in private_imports(name_path(name), name)]
    for folder in ("tests", "benches"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += private_imports(path, None)
    assert not found, "\n".join(found)


def name_path(module: str) -> Path:
    path = ROOT / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_dependencies_point_one_way():
    wrong = []
    for name, targets_ in graph().items():
        if name in FRONT:
            continue
        mine = part(name)
        allowed = CORE | ALLOWED.get(mine, set())
        for target in sorted(targets_):
            if target == "bounced" or part(target) not in allowed:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "\n".join(wrong)


def test_the_core_imports_no_edge():
    """dsn, rules, policy, config, addresses, keys and errors (and the pure helpers
    formats and verp) import only each other."""
    for name, targets_ in graph().items():
        if part(name) in CORE:
            assert {part(t) for t in targets_} <= CORE, name


def test_no_test_file_imports_another():
    """Shared test code lives in tests/helpers (or conftest fixtures)."""
    tests = {p.stem for p in (ROOT / "tests").glob("*.py")}
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in imports(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [f"{path.name}: {n}" for n in names if n and n.split(".")[0] in tests]
    assert not found, "\n".join(found)


def test_only_the_database_package_runs_sql():
    """SQLAlchemy is imported in bounced.db only (elsewhere for annotations at most)."""
    found = [
        name
        for name, tree in modules().items()
        if part(name) != "db"
        for node in imports(tree)
        if any(
            n.split(".")[0] == "sqlalchemy"
            for n in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
        )
    ]
    assert not found, found


@pytest.mark.parametrize("module", sorted(modules()))
def test_every_module_says_its_job(module):
    assert ast.get_docstring(modules()[module]), f"{module} has no docstring"
