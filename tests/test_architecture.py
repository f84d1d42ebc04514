"""What is shared between packages is public: no module imports an underscored name from another package.

A package here is a directory of src/numcnn (numcnn.ops, numcnn.compat.cs231n,
...; a sub-directory is a package of its own), with one exception: each
top-level module (numcnn/viz.py, numcnn/solver.py, ...) counts as a package of
its own, because DESIGN.md moves them into separate packages (viz, train/,
io/, gradcheck/). The rule, read from the source with ast (nothing is imported):

- `from X import _name`, `import X._mod` and `from X._mod import name` are
  private imports of X's underscored name or module.
- `mod._name` where `mod` is a numcnn module the file imported is one too
  (`viz._figure(...)` shares `_figure` as surely as importing it does).
- A private import is allowed only inside the package that defines the name:
  `from .conv import _helper` inside ops/ is fine, `from ..ops._checks import
  ...` inside nn/ is not, nor is `from .viz import _figure` in demos.py.
- A private module belongs to the package of its directory: ops/_private.py
  to every module of ops/ (not of ops/engine/), and a top-level
  numcnn/_private.py to numcnn/__init__.py alone, since each top-level module
  is a package of its own. (numcnn.blas_env, which numcnn/__init__.py imports
  first, is public: bench/ prints its description.)
- Dunder names (`__version__`) are not private.

Each offence is reported as `file:line: what it imports (defined in which package)`,
so that the fix (make the name public, or move the code) is one look away.
A second test reports `from numcnn... import name` lines whose module or name
no longer exists (a module moved, an import left behind at a merge).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE_ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE_ROOT = SOURCE_ROOT / "numcnn"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(dotted: str) -> bool:
    return (SOURCE_ROOT / Path(*dotted.split(".")) / "__init__.py").is_file()


def _is_module(dotted: str) -> bool:
    return _is_package(dotted) or (SOURCE_ROOT / Path(*dotted.split("."))).with_suffix(".py").is_file()


def _unit_of_module(module: str) -> str:
    """The package a module belongs to; at the top level each module is its own (see the docstring)."""
    if _is_package(module):
        return module
    parent = module.rpartition(".")[0]
    return module if parent == "numcnn" else parent


def _package_of(path: Path) -> str:
    """The package a file belongs to, dotted: numcnn (for __init__.py), numcnn.ops, numcnn.viz, ..."""
    return _unit_of_module(_module_name(path))


def _resolve(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ImportFrom reads from (relative imports resolved against the file's directory)."""
    if node.level == 0:
        return node.module or ""
    base = _module_name(path).split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(dotted: str) -> str:
    """The package a private module or name belongs to.

    A private module belongs to the directory that holds it (numcnn._env to numcnn, that is to
    numcnn/__init__.py); a private name defined in a module belongs to that module's package.
    """
    if _is_module(dotted):
        return dotted.rpartition(".")[0]
    return _unit_of_module(dotted.rpartition(".")[0])


def _private_step(dotted: str) -> tuple[str, str] | None:
    """The first underscored component of a numcnn dotted module path and the path up to it, if any."""
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        if _is_private(part):
            return part, ".".join(parts[: index + 1])
    return None


def private_imports(path: Path, source: str | None = None) -> list[tuple[int, str, str]]:
    """(line, imported dotted name, package that defines it) for each private import in the file.

    source replaces the file's text (the rule's own tests); the path still decides the file's package.
    """
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
    found = []
    module_aliases: dict[str, str] = {}  # local name -> numcnn module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "numcnn":
                    continue
                step = _private_step(alias.name)
                if step:
                    found.append((node.lineno, step[1], _owner(step[1])))
                if alias.asname:
                    module_aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node, path)
            if source.split(".")[0] != "numcnn":
                continue
            step = _private_step(source)
            if step:
                found.append((node.lineno, step[1], _owner(step[1])))
                continue
            for alias in node.names:
                dotted = f"{source}.{alias.name}"
                if _is_module(dotted):
                    module_aliases[alias.asname or alias.name] = dotted
                if _is_private(alias.name):
                    found.append((node.lineno, dotted, _owner(dotted)))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and _is_private(node.attr)
        ):
            dotted = f"{module_aliases[node.value.id]}.{node.attr}"
            found.append((node.lineno, dotted, _owner(dotted)))
    return found


def offences() -> list[str]:
    report = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        package = _package_of(path)
        for line, dotted, owner in private_imports(path):
            if owner != package:
                report.append(
                    f"{path.relative_to(SOURCE_ROOT)}:{line}: imports {dotted} "
                    f"(private to package {owner}, this file is in {package})"
                )
    return report


def _module_path(dotted: str) -> Path:
    relative = SOURCE_ROOT / Path(*dotted.split("."))
    return relative / "__init__.py" if _is_package(dotted) else relative.with_suffix(".py")


def _top_level_names(dotted: str) -> set[str] | None:
    """Names a module binds at its top level (if/try bodies included); None if it may bind any (star, __getattr__)."""
    names: set[str] = set()
    statements = list(ast.parse(_module_path(dotted).read_text(encoding="utf-8")).body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            statements.extend(ast.iter_child_nodes(node))
    return None if "__getattr__" in names else names


def unresolved_in(path: Path, source: str | None = None) -> list[str]:
    """`from numcnn... import name` in one file where the module or the name does not exist."""
    text = path.read_text(encoding="utf-8") if source is None else source
    report = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        module, where = _resolve(node, path), f"{path.relative_to(SOURCE_ROOT)}:{node.lineno}"
        if module.split(".")[0] != "numcnn":
            continue
        if not _is_module(module):
            report.append(f"{where}: no module {module}")
            continue
        defined = _top_level_names(module)
        for alias in node.names:
            if (
                defined is not None
                and alias.name != "*"
                and alias.name not in defined
                and not _is_module(f"{module}.{alias.name}")
            ):
                report.append(f"{where}: {module} has no {alias.name}")
    return report


def unresolved_imports() -> list[str]:
    """Every file's unresolved numcnn imports (a module moved or renamed, an import left behind)."""
    return [line for path in sorted(PACKAGE_ROOT.rglob("*.py")) for line in unresolved_in(path)]


def test_no_module_imports_an_underscored_name_from_another_package():
    found = offences()
    assert not found, "private names imported across packages:\n" + "\n".join(found)


def test_every_numcnn_import_names_an_existing_module_and_name():
    found = unresolved_imports()
    assert not found, "imports of numcnn modules or names that do not exist:\n" + "\n".join(found)


CASES = {
    "numcnn/nn/conv.py": ("from ..ops._checks import int_pair\n", ["numcnn.ops._checks"]),
    "numcnn/nn/pool.py": ("from numcnn.ops.conv import _receptive_field\n", ["numcnn.ops.conv._receptive_field"]),
    "numcnn/demos.py": ("from . import viz\nviz._figure(1, 2)\n", ["numcnn.viz._figure"]),
    "numcnn/solver.py": ("from .viz import _finish\n", ["numcnn.viz._finish"]),
    "numcnn/ops/engine/geometry.py": ("from .._checks import int_pair\n", ["numcnn.ops._checks"]),
    "numcnn/bench/ops.py": ("from .._env import description\n", ["numcnn._env"]),
    "numcnn/ops/conv_transpose.py": ("from .conv import _receptive_field\n", []),
    "numcnn/__init__.py": ("from . import _env\n", []),
    "numcnn/cli.py": ("import numcnn._env\n", ["numcnn._env"]),
    "numcnn/gradcheck/numerical.py": ("from .ops import conv\nconv.__name__\ngeometry._replace()\n", []),
}


@pytest.mark.parametrize("relative, case", CASES.items(), ids=list(CASES))
def test_the_rule_flags_cross_package_private_imports_only(relative, case):
    source, expected = case
    path = SOURCE_ROOT / relative  # a real file's place decides its package; its text is replaced
    found = [dotted for _, dotted, owner in private_imports(path, source) if owner != _package_of(path)]
    assert found == expected


UNRESOLVED = {
    "from ..ops._checks import int_pair\n": ["numcnn/nn/conv.py:1: no module numcnn.ops._checks"],
    "from ..ops.engine.geometry import no_such_name\n": [
        "numcnn/nn/conv.py:1: numcnn.ops.engine.geometry has no no_such_name"
    ],
    "from ..ops import conv, DropoutCache, relu_forward\nfrom ..checks import int_pair\n": [],
}


@pytest.mark.parametrize("source", UNRESOLVED)
def test_an_import_of_a_moved_module_or_name_is_reported(source):
    assert unresolved_in(PACKAGE_ROOT / "nn" / "conv.py", source) == UNRESOLVED[source]
