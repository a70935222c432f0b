"""Run every benchmark module's ``main()``: ``python -m bench`` runs them all, ``python -m bench NAME…`` a few.

A benchmark is any ``bench/<name>.py`` with a ``main(argv)`` function; a new one plugs in by existing.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def benchmark_names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(bench.__path__) if not info.name.startswith("_"))


def main(argv: list[str]) -> int:
    available = benchmark_names()
    wanted = argv or available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    failures = 0
    for name in wanted:
        print(f"\n=== bench.{name} ===", flush=True)
        module = importlib.import_module(f"bench.{name}")
        failures += bool(module.main([]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
