import os

# Under pytest-xdist (scripts/test.sh runs two test processes on two cores) each process computes with one OpenMP
# thread, as CONTRIBUTING asks when the machine is shared: set before numpy / torch are first imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from fixtures import tiny_config, write_tiny_esc50
from hypothesis import settings

# The suite must give the same verdict on every run (CI lands on it): hypothesis draws a fixed sequence of
# examples. Explore with new random examples locally: HYPOTHESIS_PROFILE=explore bash scripts/test.sh -k fuzz
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# --- scripts/test.sh runs the suite in two processes: pytest-xdist, `--dist loadscope --no-loadscope-reorder` ---


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without the plugin it is never called
def pytest_xdist_make_scheduler(config, log):
    """Under `--dist loadscope`, a unit of work is a whole test module, so a module-scoped fixture (a built book, a
    trained paper grid, two DDP ranks) is built once; the modules that use the session's tiny grid are one unit, so
    the grid is trained once. Other `--dist` modes keep pytest-xdist's own scheduler."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    shared: dict[str, bool] = {}

    def uses_tiny_grid(module: str) -> bool:
        if module not in shared:
            path = config.rootpath / module
            shared[module] = path.suffix == ".py" and path.is_file() and "tiny_grid" in path.read_text()
        return shared[module]

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "tiny_grid" if uses_tiny_grid(module) else module

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(items):
    """In an xdist worker, the slow tests first (a stable sort): the scheduler hands modules out in this order, so the
    long ones start early and the short ones fill the gaps at the end."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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
