"""The house rules of the code's shape, checked on the source: imports run one way (pages ->
dashboard helpers -> core -> run format), the library never imports Streamlit, and modules
and functions stay short enough to read in one sitting (issue 23)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    files = [*ROOT.glob("resnet_core/**/*.py"), *ROOT.glob("app_pages/*.py")]
    return {_module_name(p): p for p in files}


def _imports(name: str, path: Path) -> set[str]:
    """Every module name `path` imports, at its top or inside a function, made absolute."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


SOURCES = _sources()
IMPORTS = {name: _imports(name, path) for name, path in SOURCES.items()}


def _project(names: set[str]) -> set[str]:
    return {n for n in names if n in SOURCES}


def _layer(name: str) -> str:
    if name.startswith("app_pages"):
        return "pages"
    if name.startswith("resnet_core.dashboard"):
        return "dashboard"
    if name.startswith("resnet_core.runs"):
        return "run format"
    return "core"


def test_the_checker_sees_relative_and_lazy_imports(tmp_path):
    assert {"resnet_core.runs", "resnet_core.dashboard", "resnet_core.models", "app_pages.home"} <= set(SOURCES)
    (tmp_path / "x.py").write_text("from .dashboard import figures\n\ndef f():\n    from ..app_pages import home\n")
    seen = _imports("resnet_core.sub.x", tmp_path / "x.py")
    assert {"resnet_core.sub.dashboard.figures", "resnet_core.app_pages.home"} <= seen
    assert "resnet_core.runs.layout" in IMPORTS["resnet_core.runs.writing"]


@pytest.mark.parametrize("name", sorted(n for n in SOURCES if n.startswith("resnet_core")))
def test_the_library_never_imports_streamlit(name):
    assert not {n for n in IMPORTS[name] if n.split(".")[0] == "streamlit"}, f"{name} imports streamlit"


ALLOWED = {  # which layers each layer may import
    "pages": {"pages", "dashboard", "core", "run format"},
    "dashboard": {"dashboard", "core", "run format"},
    "core": {"core", "run format"},
    "run format": {"run format"},
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_imports_run_one_way(name):
    upward = sorted(dep for dep in _project(IMPORTS[name]) if _layer(dep) not in ALLOWED[_layer(name)])
    assert not upward, f"{name} ({_layer(name)}) imports {upward}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_private_name_crosses_a_module(name):
    crossing = []
    for node in ast.walk(ast.parse(SOURCES[name].read_text())):
        if isinstance(node, ast.ImportFrom):
            crossing += [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossing, f"{name} imports private names {crossing}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_modules_and_functions_stay_short(name):
    text = SOURCES[name].read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{name}: {len(text.splitlines())} lines"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
