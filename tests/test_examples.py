"""The README's example runs and prints what the README says it prints."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_example_trains_with_rhel_and_agrees_with_bptt():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    cosine, rel = map(float, re.search(r"cosine ([\d.]+), relative error ([\d.e+-]+)", out).groups())
    assert cosine >= 0.99999 and rel <= 1e-4, out  # float32, linear HRU: exact up to rounding
    first, last = map(float, re.search(r"training loss with RHEL: ([\d.]+) -> ([\d.]+)", out).groups())
    assert last < 0.1 * first, out
