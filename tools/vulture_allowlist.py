"""vulture's allow-list (tests/test_code_health.py runs vulture over clap_lib, tools, notebooks, scripts, benchmarks
and book/_ext with this file): names used where vulture cannot see it. Everything else it reports is dead."""

# ruff: noqa: B018
_ = object()

# dataclass fields read through asdict() / JSON / the book's tables, never by attribute
_.n_topo_labels, _.k_range, _.dirty, _.none, _.tr_c, _.n_groups, _.n_groups_any_removed, _.n_groups_all_removed
_.mtime_ns, _.cited_from, _.screenshot

# called by frameworks: Sphinx extension hooks and their signature, http.server, Selenium options, pickling
_.setup, _.doctree, _.templatename, _.log_message, _.daemon_threads, _.binary_location, _.__class__

# the contract tests/test_stage_keys.py checks: every stage's payload
_.stage_payloads

# small public APIs of a type, exercised by their tests: the published CRNN's frame-level output, the ontology
# tree, an interval's membership / table columns, the caption bank's accessor, the combination page's parameters
_.frame_probs, _.children, _.contains, _.as_columns, _.captions_for, _.N_NAMING, _.COMBINATION_PARAMETERS

# the controlled experiment's result type (analysis.hierarchical, issue 20): written to JSON by the pipeline once
# the multi-seed design is wired in; its tests and benchmarks/controlled.py read the other fields
_.n_seeds

# the ladder's result types (clap_lib.analysis.ladder, issue 21): the fields a caller reads, exercised by
# tests/test_ladder.py against scipy / statsmodels / scikit-learn
_.t_labels, _.spearman, _.p_pearson, _.p_spearman, _.n_networks, _.coefficients, _.exposure_terms, _.r2_separability
_.r2_full, _.n_permutations
