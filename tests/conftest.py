import os

import pytest
from fixtures import tiny_config, write_tiny_esc50
from hypothesis import settings

# The suite must give the same verdict on every run (CI lands on it): hypothesis draws a fixed sequence of
# examples. Explore with new random examples locally: HYPOTHESIS_PROFILE=explore bash scripts/test.sh -k fuzz
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_esc50(tmp_path_factory):
    """A 500-clip ESC-50 (all 50 classes, 5 folds) in the official layout."""
    return write_tiny_esc50(tmp_path_factory.mktemp("esc50"))


@pytest.fixture(scope="session")
def tiny_grid(tiny_esc50, tmp_path_factory):
    """The whole 2 x 3 grid run once on the tiny ESC-50 with the tiny config; shared by the tests that read it."""
    from clap_lib.pipeline.grid import run_grid

    artifacts = tmp_path_factory.mktemp("artifacts")
    return run_grid(tiny_config(), tiny_esc50, artifacts, quiet=True), artifacts
