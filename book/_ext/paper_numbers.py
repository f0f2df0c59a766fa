"""Sphinx extension: the paper's figure and table numbers (see fignumbers.py beside this file for the rule).

Runs after Sphinx's own numbering (``env-get-updated``, priority 900 > the toctree collector's 500) and replaces
``env.toc_fignumbers``, which both the captions and ``{numref}`` read; the documents whose numbers changed are
written again.
"""

from __future__ import annotations

from fignumbers import renumber  # book/_ext is on sys.path (local_extensions)


def _renumber(app, env):
    old = env.toc_fignumbers
    env.toc_fignumbers = renumber(old)
    return [doc for doc in env.toc_fignumbers if env.toc_fignumbers[doc] != old.get(doc)]


def setup(app):
    app.connect("env-get-updated", _renumber, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
