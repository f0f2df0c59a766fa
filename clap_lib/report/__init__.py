"""Tables, figures and widgets of the book, built from a finished grid's artifacts (no recomputation).

Split by job: `artifacts` (loading a grid's outputs), `tables`, `figures` (static), `widgets` (interactive,
working in the static HTML), `backbones` (separability, shortcut, audit of the audio backbones), `captions`
(training pairs and the caption-filter audit). Everything reads what `pipeline.run_grid` wrote.
"""
from .artifacts import *  # noqa: F401,F403
from .artifacts import _stages  # noqa: F401
from .figures import *  # noqa: F401,F403
from .tables import *  # noqa: F401,F403
from .widgets import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403,E402
from .captions import *  # noqa: F401,F403,E402
from .numbered import *  # noqa: F401,F403,E402
