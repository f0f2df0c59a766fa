"""Numbers computed from embeddings and tables, no training: metrics (accuracy, silhouette, S_k), text topology,
uncertainty (intervals, seed summaries, correlations), backbone separability, the shortcut classifier, the band
control, the leakage audit's core, the controlled experiment's tables from its records (`controlled`), the ladder of
backbones (`ladder`), the paper's claims and its printed tables. Pure functions on arrays / data frames; may import
`config` and `data`; never `training`, `pipeline` or `report`."""
