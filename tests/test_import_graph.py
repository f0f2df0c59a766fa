"""clap_lib's import graph has no cycle: every import counts, also those inside functions."""

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[1] / "clap_lib"
LIGHT = (
    "config",
    "config.experiment",
    "config.levels",
    "data.esc50",
    "data.paths",
    "pipeline.results",
)  # read by the report and the book: no torch


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out |= {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {t for t in out if t.startswith("clap_lib")}


def graph() -> nx.DiGraph:
    mods = {module_name(p): p for p in PKG.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        for t in imports(path):
            while (
                t not in mods and "." in t
            ):  # "clap_lib.config.profiles.make_config" -> module clap_lib.config.experiment
                t = t.rpartition(".")[0]
            # importing a module imports its parent packages first: that is no dependency on them
            if t in mods and t != name and not name.startswith(t + "."):
                g.add_edge(name, t)
    return g


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(graph()))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_light_modules_import_no_torch():
    g = graph()
    for m in LIGHT:
        reach = nx.descendants(g, f"clap_lib.{m}") | {f"clap_lib.{m}"}
        for r in reach:
            src = PKG.parent / (r.replace(".", "/") + ".py")
            src = src if src.exists() else PKG.parent / r.replace(".", "/") / "__init__.py"
            tree = ast.parse(src.read_text())
            top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
            top |= {
                n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and not n.level
            }
            assert "torch" not in top, f"clap_lib.{m} reaches {r}, which imports torch at module level"


def test_the_graph_sees_function_level_imports(tmp_path):
    p = tmp_path / "clap_lib" / "m.py"
    p.parent.mkdir()
    p.write_text("def f():\n    from .other import g\n    from clap_lib.x import y\n")
    global PKG
    old, PKG = PKG, tmp_path / "clap_lib"
    try:
        assert imports(p) >= {"clap_lib.other", "clap_lib.x"}
    finally:
        PKG = old
