"""Figure and table numbers that match the paper's, whatever the page order.

Sphinx numbers figures and tables in reading order (``env.toc_fignumbers``: document -> figure type -> node id ->
number). The book's Table 1-3 and Figure 2-4 must carry the paper's numbers although the front matter and
Section 2 come first, so a label ``table-N`` / ``figure-N`` fixes number N, and every other numbered table or
figure is numbered after the largest fixed number of its type, in reading order. Pure data in, data out (the
Sphinx side is ``book/_ext/paper_numbers.py``).
"""

from __future__ import annotations

import re

FIXED = re.compile(r"^(table|figure)-(\d+)$")

Numbers = dict[str, dict[str, dict[str, tuple[int, ...]]]]


def fixed_number(node_id: str, figtype: str) -> int | None:
    """N for a node labelled ``table-N`` / ``figure-N`` of the matching type; a label of the wrong type is an error."""
    m = FIXED.match(node_id)
    if m is None:
        return None
    if m.group(1) != figtype:  # the label's prefix is Sphinx's figure type
        raise ValueError(
            f"label {node_id!r} is on a {figtype}, not a {m.group(1)}: rename the label or change the directive"
        )
    return int(m.group(2))


def renumber(assigned: Numbers) -> Numbers:
    """`assigned` (Sphinx's numbers, dicts in reading order) with fixed numbers for ``table-N`` / ``figure-N`` and
    the others numbered 1 + the largest fixed number of their type onwards, in reading order. Raises if a fixed
    number is used twice."""
    fixed: dict[str, dict[int, tuple[str, str]]] = {}
    for doc, types in assigned.items():
        for figtype, ids in types.items():
            for node_id in ids:
                n = fixed_number(node_id, figtype)
                if n is None:
                    continue
                if n < 1:
                    raise ValueError(f"label {node_id!r} in {doc}: numbers start at 1")
                if n in fixed.setdefault(figtype, {}):
                    other = fixed[figtype][n]
                    raise ValueError(
                        f"{figtype} number {n} is fixed twice: {node_id!r} in {doc} and {other[1]!r} in {other[0]}"
                    )
                fixed[figtype][n] = (doc, node_id)
    following = {figtype: max(numbers) for figtype, numbers in fixed.items()}
    out: Numbers = {}
    for doc, types in assigned.items():
        for figtype, ids in types.items():
            for node_id in ids:
                n = fixed_number(node_id, figtype)
                if n is None:
                    n = following[figtype] = following.get(figtype, 0) + 1
                out.setdefault(doc, {}).setdefault(figtype, {})[node_id] = (n,)
    return out
