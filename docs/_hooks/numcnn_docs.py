"""MkDocs hooks that make numcnn's site from its source, so that nothing on it is copied by hand.

- `<!-- source: numcnn.ops.conv.conv2d_forward_naive -->` on a line of its own becomes that
  function's (or class's) source, read from src/ when the page is built: the loop and fast
  versions on the op pages are the code that runs, never a copy that drifts from it.
- reference/: one page per public module, generated from the package (griffe, as mkdocstrings
  reads it); a package's page lists the names it re-exports, linked to where they are defined.
- speed.md, results.md and changelog.md are BENCHMARKS.md, README's Results section and
  CHANGELOG.md, read when the site is built (their links rewritten for the site), so the
  repository's files stay the one place each figure is written.
- After the build, every public name must be in the site's inventory (objects.inv): a name
  that the API reference misses is a warning, so `mkdocs build --strict` fails on it.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import zlib
from pathlib import Path

import griffe
from mkdocs.structure.files import File
from mkdocs.structure.nav import Section
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.plugins.numcnn")

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src"
SOURCE_MARK = re.compile(r"^<!-- source: ([\w.]+) -->$", re.MULTILINE)
REFERENCE = "reference"

# The notebooks' kernels inherit this: the site shows their short runs (seconds on digits or a slice of
# CIFAR-10) unless NUMCNN_DOCS_SHORT=0 asks for the full-size ones (a ResNet trained for minutes).
os.environ.setdefault("NUMCNN_DOCS_SHORT", "1")


# ---------------------------------------------------------------- the public modules and names


def _package() -> griffe.Module:
    return griffe.load("numcnn", search_paths=[str(SOURCE)], resolve_aliases=False)


def public_modules(package: griffe.Module) -> list[griffe.Module]:
    """Every module of numcnn whose dotted path has no part starting with '_' (but __init__)."""
    found = []

    def walk(module: griffe.Module) -> None:
        found.append(module)
        for name, member in module.modules.items():
            if not name.startswith("_") and not member.is_alias:  # an imported module is walked where it lives
                walk(member)

    walk(package)
    return sorted(found, key=lambda module: module.path)


def defined_names(module: griffe.Module) -> list[str]:
    """The public names a module defines itself (re-exports are documented where they are defined)."""
    exported = set(module.exports or [])
    names = []
    for name, member in module.members.items():
        if member.is_alias or member.is_module:
            continue
        public = name in exported if module.exports is not None else not name.startswith("_")
        if public and (member.is_function or member.is_class or member.docstring is not None):
            names.append(name)
    return names


def reexported_names(module: griffe.Module) -> list[tuple[str, str]]:
    """(name, target path) of each name a package's __all__ imports from elsewhere."""
    out = []
    for name in module.exports or []:
        member = module.members.get(name)
        if member is not None and member.is_alias:
            out.append((name, member.target_path))
    return out


# ---------------------------------------------------------------- pages made of the repository's files

RESULTS = "docs/results"


def _site_links(markdown: str) -> str:
    """Links written for the repository's root, pointed at the same things on the site."""
    markdown = markdown.replace("[BENCHMARKS.md](BENCHMARKS.md", "[Speed](BENCHMARKS.md")
    markdown = markdown.replace("](BENCHMARKS.md", "](speed.md").replace("](README.md", "](index.md")
    markdown = re.sub(r"\]\(docs/results/([\w.-]+)\)", r"](results.md#\1)", markdown)
    markdown = markdown.replace("](docs/results)", "](results.md#run-folders)")
    return markdown.replace("](docs/", "](")


def _readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end]


def _run_folders() -> str:
    """A heading per run folder of docs/results, linking each file it keeps."""
    lines = [
        "## Run folders",
        "",
        "The logs and files each result above was read from (`docs/results/` in the repository).",
        "",
    ]
    for folder in sorted((ROOT / RESULTS).iterdir()):
        if folder.is_dir():
            links = ", ".join(f"[{f.name}](results/{folder.name}/{f.name})" for f in sorted(folder.iterdir()))
            lines += [f"### {folder.name}", "", links, ""]
    return "\n".join(lines)


def _made_pages() -> dict[str, str]:
    results = _readme_section("Results").replace("## Results", "# Results", 1)
    return {
        "speed.md": _site_links((ROOT / "BENCHMARKS.md").read_text()),
        "results.md": _site_links(results) + "\n" + _run_folders(),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(),
    }


# ---------------------------------------------------------------- reference pages


def _page_uri(module_path: str) -> str:
    return f"{REFERENCE}/{module_path}.md"


def _module_page(module: griffe.Module) -> str:
    lines = [f"# {module.path}", ""]
    if module.is_package:
        lines += [f"::: {module.path}", "    options:", "      members: false", "      show_root_heading: false", ""]
        reexports = reexported_names(module)
        if reexports:
            lines += ["Names this package exports, each documented where it is defined:", ""]
            lines += [f"- [`{name}`][{target}]" for name, target in reexports]
            lines.append("")
        children = [m for n, m in module.modules.items() if not n.startswith("_") and not m.is_alias]
        if children:
            lines += ["Modules:", ""] + [f"- [{c.path}]({c.path}.md)" for c in children] + [""]
    else:
        lines += [f"::: {module.path}", "    options:", "      show_root_heading: false", ""]
    return "\n".join(lines)


def _index_page(modules: list[griffe.Module]) -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings of every public module when the site is built.",
        "Shapes are NCHW; each op's docstring states its shapes and its maths.",
        "",
    ]
    lines += [f"- [{m.path}]({m.path}.md): {_first_line(m)}" for m in modules]
    return "\n".join(lines) + "\n"


def _first_line(module: griffe.Module) -> str:
    return module.docstring.value.strip().splitlines()[0] if module.docstring else ""


def on_files(files, config):
    modules = public_modules(_package())
    config["numcnn_modules"] = modules
    for uri, content in _made_pages().items():
        files.append(File.generated(config, uri, content=content))
    files.append(File.generated(config, f"{REFERENCE}/index.md", content=_index_page(modules)))
    for module in modules:
        files.append(File.generated(config, _page_uri(module.path), content=_module_page(module)))
    return files


def on_nav(nav, config, files):
    """Hang the generated module pages under the 'API reference' entry of the nav."""
    for position, item in enumerate(nav.items):
        if item.title == "API reference":
            index = item
            children = [index] + [
                Page(module.path, files.get_file_from_path(_page_uri(module.path)), config)
                for module in config["numcnn_modules"]
            ]
            section = Section("API reference", children)
            for child in children:
                child.parent = section
            nav.items[position] = section
            nav.pages = [p for p in nav.pages if p is not index] + children
            break
    return nav


# ---------------------------------------------------------------- source included in pages


def _source_of(dotted: str) -> tuple[str, str, int]:
    """(source text, file relative to the repository, first line) of a function or class in src/."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        path = SOURCE.joinpath(*parts[:split]).with_suffix(".py")
        if path.exists():
            break
    else:
        raise KeyError(f"no module file for {dotted}")
    text = path.read_text()
    node = ast.parse(text)
    for name in parts[split:]:
        node = next(
            n
            for n in node.body
            if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) and n.name == name
        )
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    lines = text.splitlines()[first - 1 : node.end_lineno]
    return "\n".join(lines), str(path.relative_to(ROOT)), first


def on_page_markdown(markdown, page, config, files):
    def include(match: re.Match) -> str:
        dotted = match.group(1)
        try:
            code, where, line = _source_of(dotted)
        except (KeyError, StopIteration):
            log.warning("%s: no function or class %s in src/", page.file.src_uri, dotted)
            return match.group(0)
        return f'```python title="{where}, line {line}"\n{code}\n```'

    return SOURCE_MARK.sub(include, markdown)


# ---------------------------------------------------------------- every public name documented


def _inventory_names(site_dir: Path) -> set[str]:
    raw = (site_dir / "objects.inv").read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines()}


def on_post_build(config):
    documented = _inventory_names(Path(config["site_dir"]))
    missing = [
        f"{module.path}.{name}"
        for module in config["numcnn_modules"]
        for name in defined_names(module)
        if f"{module.path}.{name}" not in documented
    ]
    if missing:
        log.warning("the API reference misses %d public names: %s", len(missing), ", ".join(missing[:20]))
