"""The suite's own rules: shared waiting instead of sleeps and copies, and `make test` in three timed passes."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
SUPPORT = TESTS / "support"
MAX_SLEEPS = 15


def test_files() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts)


def marks_slow(decorators: list[ast.expr]) -> bool:
    return any("mark.slow" in ast.unparse(decorator) for decorator in decorators)


def module_is_slow(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            return "mark.slow" in ast.unparse(node.value)
    return False


def sleeps_in(tree: ast.Module) -> list[tuple[int, bool]]:
    """(line, inside a test marked slow) for every ``sleep(...)`` call in a module."""
    found: list[tuple[int, bool]] = []
    slow_module = module_is_slow(tree)

    def visit(node: ast.AST, slow: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            slow = slow or marks_slow(node.decorator_list)
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "sleep":
                found.append((node.lineno, slow))
        for child in ast.iter_child_nodes(node):
            visit(child, slow)

    visit(tree, slow_module)
    return found


def test_sleeps_are_few_and_only_in_support_or_slow_tests():
    everywhere, misplaced = [], []
    for path in test_files():
        for line, slow in sleeps_in(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{line}"
            everywhere.append(where)
            if not slow and SUPPORT not in path.parents:
                misplaced.append(where)
    assert misplaced == [], "wait for something observable (tests/support/waiting.py), or mark the test slow"
    assert len(everywhere) <= MAX_SLEEPS, everywhere


def test_waiting_helpers_and_fixtures_are_defined_once():
    copies, re_exports = [], []
    for path in test_files():
        if SUPPORT in path.parents:
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in ("wait_until", "wait_for"):
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        # An import from a test module silenced for F401/F811, or `fixture = module.fixture`: a borrowed fixture.
        for number, line in enumerate(text.splitlines(), 1):
            if re.match(r"from tests\.\S+ import .*# noqa: F(401|811)", line) or re.match(
                r"^(\w+) = \w+_(support|fixtures)\.\1$", line
            ):
                re_exports.append(f"{path.relative_to(ROOT)}:{number}")
    assert copies == [], "use tests/support/waiting.py"
    assert re_exports == [], "share fixtures through a conftest.py"


def test_slow_is_a_registered_marker():
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(marker.startswith("slow:") for marker in pytest_options["markers"])
    assert "--strict-markers" in pytest_options["addopts"]


def make_dry_run(target: str) -> list[str]:
    completed = subprocess.run(
        ["make", "-n", "--no-print-directory", target, "STAMP="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.splitlines()


def test_make_test_is_lint_migrations_and_three_passes_that_ci_times():
    steps = make_dry_run("test")
    passes = [line for line in steps if "make" in line.split()[0] and "test-" in line]
    assert [line.split()[-1] for line in passes] == ["test-fast", "test-slow", "test-postgres"]
    assert any("makemigrations --check" in line for line in steps)
    assert any("ruff check" in line for line in steps)
    assert make_dry_run("test-fast")[-1].endswith('pytest -m "not slow"')
    assert make_dry_run("test-slow")[-1].endswith("pytest -m slow")
    assert "--postgres -m postgres" in make_dry_run("test-postgres")[-1]

    ci = (ROOT / ".ci" / "run").read_text()
    targets = re.search(r"for target in ([\w\- ]+); do", ci).group(1).split()
    assert targets == ["lint", "check-migrations", "test-fast", "test-slow", "test-postgres"]
    assert "exec make test" not in ci


def test_browser_tests_share_helpers_through_support_or_conftest():
    """A browser test module importing another test module's helpers runs (and collects) that module's tests'
    setup with it, and hides where the helpers live: shared ones go to tests/browser/support.py (functions) or
    tests/browser/conftest.py (fixtures)."""
    borrowed = []
    for path in sorted((TESTS / "browser").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1].startswith("test_"):
                borrowed.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}")
            if isinstance(node, ast.Import) and any(a.name.split(".")[-1].startswith("test_") for a in node.names):
                borrowed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert borrowed == [], "move shared helpers to tests/browser/support.py or fixtures to tests/browser/conftest.py"
