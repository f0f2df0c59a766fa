"""CONTRIBUTING's reading list ("read these to know what the default run does"): at most 12 files, each exists, and
the line counts it states are the files' (within 10 % each, 5 % in total)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_reading_list_exists_and_adds_up():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    head = re.search(r"Read these to know what the default run does \((\d+) files, about ([\d,]+) lines", text)
    assert head, "CONTRIBUTING.md lost its reading list heading"
    items = re.findall(r"^\d+\. `([^`]+)` \((\d+) lines\): \S", text, flags=re.M)
    assert 0 < len(items) == int(head.group(1)) <= 12
    total = 0
    for path, stated in items:
        f = ROOT / path
        assert f.is_file(), f"{path} is listed but missing"
        n = len(f.read_text().splitlines())
        assert abs(n - int(stated)) <= max(10, 0.1 * n), f"{path}: {n} lines, listed as {stated}"
        total += n
    claimed = int(head.group(2).replace(",", ""))
    assert total <= 4200 and abs(total - claimed) <= 0.05 * total, (total, claimed)
