"""`make bench`: every benchmark of the project, each figure printed next to its anchor from the same run."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SUITES = [
    ("ingest", "ingest_bench"),
    ("merge", "merge_bench"),
    ("merge cost (DynamoDB units, metered)", "merge_cost_bench"),
    ("merge at ingest's limits (time, memory, against the timeout)", "merge_limits_bench"),
    ("end to end (local stack)", "e2e_bench"),
    ("merge lag under load (local stack, 100 events/s, 8 producers)", "load_bench"),
    ("read API (1,000 jobs, 2,000 datasets)", "read_bench"),
]


def main() -> int:
    failed = False
    for title, module_name in SUITES:
        print(f"== {title}", flush=True)
        if not (HERE / f"{module_name}.py").exists():
            print(f"  ({module_name}.py is not there)")
            continue
        started = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            for line in module.run():
                print(line, flush=True)
        except Exception as exc:  # a broken benchmark must not hide the others
            failed = True
            print(f"  FAILED: {type(exc).__name__}: {exc}")
        print(f"  ({time.perf_counter() - started:.1f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
