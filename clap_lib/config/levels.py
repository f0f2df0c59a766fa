"""Names of the experiment's axes and of the paper's table metrics (plain data: importable anywhere, no torch).

Pretraining levels, most ESC-50 label information first: dirty (trained with the ESC-50 classes' labels),
clean (trained without them), none (random init). Training levels, most leakage first: dirty (every caption),
clean (the paper's literal rule), strict (beyond the paper: the ontology-expanded word set).
"""

from __future__ import annotations

PRETRAININGS: tuple[str, ...] = ("dirty", "clean", "none")
TRAININGS: tuple[str, ...] = ("dirty", "clean", "strict")
PAPER_TRAININGS: tuple[str, ...] = ("dirty", "clean")  # the paper's 2 x 3 view
TABLE_METRICS: tuple[str, ...] = ("accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et")
