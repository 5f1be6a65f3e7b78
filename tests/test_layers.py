"""The package's layers: core/ (and policies/) work on NumPy and import nothing from the backend
(openvino/) or the benchmarks (bench/), not even lazily inside a function; the backend passes in
what core needs (runner.register_runner, calibration.use_query_model)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "triattn"
UPPER = ("openvino", "bench", "web", "cli")


def _imports(path: Path, root: Path = PACKAGE.parent):
    """(line, module) of every import in `path`, resolved against the package, at any depth."""
    parts = path.relative_to(root).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            base = list(parts[:len(parts) - node.level]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            for name in names:
                yield node.lineno, name


def test_the_resolver_sees_lazy_and_relative_imports(tmp_path):
    f = tmp_path / "triattn" / "core" / "probe.py"
    f.parent.mkdir(parents=True)
    f.write_text("import numpy\ndef f():\n    from ..openvino import genai\n    from ..bench.report import table\n"
                 "    from .stats import Interval\n")
    assert [m for _, m in _imports(f, tmp_path)] == ["numpy", "triattn.openvino", "triattn.bench.report",
                                                     "triattn.core.stats"]


def test_core_and_policies_import_nothing_from_above():
    bad = []
    for layer in ("core", "policies"):
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for line, module in _imports(path):
                if any(module == f"triattn.{u}" or module.startswith(f"triattn.{u}.") for u in UPPER) \
                        or module.split(".")[0] in ("openvino", "openvino_genai"):
                    bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert not bad, "\n".join(bad)
