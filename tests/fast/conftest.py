"""The fast tier: the package's pure parts, in this process, no server (`make test-fast`, seconds)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
