"""Instructions per handoff on the memory bus, counted by callgrind (immune to the host's speed).

Runs the memory-bus driver of bench/choreo.py (both nodes in this process, one thread, 200
cases in flight) under ``valgrind --tool=callgrind`` twice, with N1 and N2 saturated cases after
the same warm-up, and prints the difference in instructions divided by the extra handoffs::

    .venv/bin/python bench/choreo_instructions.py            # 50 and 450 cases: about 1 minute
    .venv/bin/python bench/choreo_instructions.py 100 900    # more cases, steadier

``--driver N`` runs the driver alone (what each valgrind run executes) and prints its CPU time
per handoff. valgrind must be installed (it is on the machines this project runs on).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def driver(n: int) -> None:
    sys.path.insert(0, str(HERE))
    import choreo

    from accord.buses.memory import MemoryBus
    from accord.choreo.live import tune_gc

    tune_gc()
    tmp = Path(tempfile.mkdtemp(prefix="accord-instr-"))
    bus = MemoryBus()
    nodes = {t: choreo.make_node("instr", t, tmp / f"{t}.db", "NORMAL") for t in choreo.TEAMS}
    for node in nodes.values():
        node.attach(bus)
    done = [0]
    choreo.count_completed(nodes[choreo.TEAMS[0]], done)
    choreo.memory_phase(nodes, done, ("warmup", 50, 0.0, choreo.WINDOW))
    t0 = time.process_time()
    choreo.memory_phase(nodes, done, ("saturated", n, 0.0, choreo.WINDOW))
    cpu = time.process_time() - t0
    for node in nodes.values():
        node.close()
    print(f"{n} cases: {cpu / (n * (choreo.STEPS - 1)) * 1e6:.1f} us CPU per handoff")


def instructions(n: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             __file__, "--driver", str(n)],
            check=True, capture_output=True, env=os.environ | {"PYTHONHASHSEED": "0"},
        )  # fmt: skip
        m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        if m is None:
            raise RuntimeError("no instruction total in callgrind's output")
        return int(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n1", nargs="?", type=int, default=50)
    ap.add_argument("n2", nargs="?", type=int, default=450)
    ap.add_argument("--driver", type=int, metavar="N", help="run the driver alone for N cases")
    args = ap.parse_args()
    if args.driver:
        driver(args.driver)
        return 0
    a, b = instructions(args.n1), instructions(args.n2)
    handoffs = (args.n2 - args.n1) * 5
    print(f"{(b - a) / handoffs / 1000:,.0f} k instructions per handoff "
          f"(memory bus; {args.n1} and {args.n2} cases)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
