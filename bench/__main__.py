"""``python -m bench`` (``make bench``): run every ``bench/*_bench.py`` module's ``main()`` and print its figures.

Modules are found by name, so a new benchmark only needs a ``bench/<name>_bench.py`` with a ``main()`` function.
``python -m bench NAME…`` runs only the named ones (``report`` runs ``report_bench``). A benchmark that fails is
reported and the others still run; the exit code is 1 when any failed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*_bench.py"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = discover()
    if args:
        wanted = {a if a.endswith("_bench") else f"{a}_bench" for a in args}
        unknown = wanted - set(names)
        if unknown:
            print(f"bench: no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(names)})",
                  file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    failed = []
    for name in names:
        print(f"== {name} ==", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            entry = getattr(module, "main", None)
            if entry is None:
                raise AttributeError(f"bench/{name}.py has no main()")
            result = entry()
            if isinstance(result, int) and result != 0:
                failed.append(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"-- {name}: {time.perf_counter() - start:.1f} s{' (FAILED)' if name in failed else ''}\n",
              flush=True)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
