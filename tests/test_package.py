"""The installable package: every subpackage is in pyproject.toml's list, the runtime imports no
PyTorch and no optimum, and no module depends on another in a circle."""
import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "triattn"


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, found - listed


def test_the_app_and_the_cli_import_without_torch_or_optimum():
    """Run the page's and the CLI's imports with torch and optimum made unimportable."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['optimum'] = None\n"
            "import triattn.web.ui, triattn.cli, triattn.bench.plan, triattn.bench.sweep, triattn.bench.soak\n"
            "import triattn.openvino.genai, triattn.core.calibration\n"
            "from triattn.cli import main; sys.exit(main(['infer', '--help']) if False else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _imports(path: Path, module: str) -> set:
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            out |= {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("triattn"):
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_import_cycles():
    """Module-level and function-level imports alike: a cycle between modules is a design knot.
    (A package's __init__ importing its own modules is the registry pattern, not a cycle.)"""
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {m: {t for t in _imports(p, m) if t in mods and t != m and not m.startswith(t + ".")}
             for m, p in mods.items()}
    cycles = []

    def visit(m, stack):
        for t in graph[m]:
            if t in stack:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in done:
                visit(t, stack + [t])
        done.add(m)
    done = set()
    for m in sorted(graph):
        if m not in done:
            visit(m, [m])
    assert cycles == []


UPPER = ("triattn.openvino", "triattn.bench", "triattn.web", "triattn.cli")


def test_core_imports_nothing_from_the_backend_or_the_benchmarks():
    """core/ and policies/ work on NumPy: no import of openvino/, bench/, web/, cli/ or OpenVINO
    itself, not even lazily inside a function; the backend passes in what core needs
    (runner.register_runner, calibration.use_query_model)."""
    bad = []
    for layer in ("core", "policies"):
        for p in sorted((PACKAGE / layer).rglob("*.py")):
            module = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            names = _imports(p, module) | {a.name for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                                           if isinstance(n, ast.Import) for a in n.names}
            bad += [f"{module} imports {t}" for t in sorted(names)
                    if t.startswith(UPPER) or t.split(".")[0] in ("openvino", "openvino_genai")]
    assert bad == [], bad
