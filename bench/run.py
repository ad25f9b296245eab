"""`make bench`: runs every benchmark in this folder, each against its baseline from the same run."""

import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["tensors.py", "models.py", "dag.py", "leaks.py"]

for name in BENCHMARKS:
    print(f"\n== {name}")
    runpy.run_path(str(HERE / name), run_name="__main__")
