"""Names of the experiment's axes and of the paper's table metrics (plain data: importable anywhere, no torch).

Pretraining levels, most ESC-50 label information first: dirty (trained with the ESC-50 classes' labels),
clean (trained without them), none (random init). Training levels, most leakage first: dirty (every caption),
clean (the paper's literal rule), strict (beyond the paper: the ontology-expanded word set), dedup (beyond the paper,
paper profile only: clean, and every example whose Freesound recording an ESC-50 clip was cut from dropped, as WavCaps
de-duplicated; clap_lib.data.freesound). strict and dedup never share a grid (strict is the lab's, dedup the paper's).
"""

from __future__ import annotations

PRETRAININGS: tuple[str, ...] = ("dirty", "clean", "none")
TRAININGS: tuple[str, ...] = ("dirty", "clean", "strict", "dedup")
PAPER_TRAININGS: tuple[str, ...] = ("dirty", "clean")  # the paper's 2 x 3 view
PAPER_PROFILE_TRAININGS: tuple[str, ...] = (*PAPER_TRAININGS, "dedup")  # what the paper profile can train on
#: levels that filter captions only (data.filtering.filter_level); dedup also needs each example's Freesound ID
CAPTION_TRAININGS: tuple[str, ...] = ("dirty", "clean", "strict")
TABLE_METRICS: tuple[str, ...] = ("accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et")
