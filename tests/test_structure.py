"""The package's shape: imports flow one way, modules stay small, notebooks define no long
helpers, the standard library is imported at the top."""
import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnlib"
MAX_LINES = 400
MAX_NOTEBOOK_FUNCTION_LINES = 8


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def nnlib_imports(path, known):
    """The nnlib modules ``path`` imports, at its top or inside functions (a package's
    ``from nnlib.cnn import x`` counts as the package, or as its submodule ``x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nnlib")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnlib"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    return found & set(known)


def import_graph():
    known = modules()
    return {name: nnlib_imports(path, known) - {name} for name, path in known.items()}


def cycle(graph):
    """One import cycle of ``graph`` as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_planted_loop():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_loop_between_nnlib_modules():
    graph = import_graph()
    # a package imports its own submodules (its public names); they must not import it back
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_no_module_over_400_lines():
    long = {name: n for name, p in modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_notebooks_define_no_long_helpers():
    long = []
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(nb_path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_NOTEBOOK_FUNCTION_LINES:
                        long.append(f"{nb_path.name}: {node.name} ({lines} lines)")
    assert not long, long


def test_standard_library_imported_at_the_top():
    inside = []
    for name, path in modules().items():
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    mod = node.names[0].name if isinstance(node, ast.Import) else node.module
                    if (mod or "").split(".")[0] in sys.stdlib_module_names:
                        inside.append(f"{name}:{node.lineno} {mod}")
    assert not inside, inside
