"""Tables, figures and widgets of the book, built from a finished grid's artifacts (no recomputation).

Split by job: `artifacts` (loading a grid's outputs), `tables`, `frames` (whole tables, never cut), `figures`
(static), `widgets` (interactive, working in the static HTML), `backbones` (separability, shortcut, audit of the
audio backbones), `captions` (training pairs and the caption-filter audit), `controlled` + `controlled_text` (the
controlled experiment's chapter, imported by its page as modules), `controlled_pages` (its tables on the other
pages), `ladder` + `ladder_text` + `ladder_figures` (the page "A ladder of backbones", imported by it as modules),
`overlap` (ESC-50's source recordings in FSD50K / Clotho, from the shared ID lists), `numbered` (MyST list-tables),
`interactive` (Plotly figures), `page` (a notebook's page context), `book` (papermill + Jupyter Book). Everything
else reads what the pipeline wrote.
May import every other package; nothing in the library imports `report` except `cli` (the book and audit
commands).
"""

from clap_lib.report.artifacts import *  # noqa: F401,F403
from clap_lib.report.artifacts import _stages  # noqa: F401
from clap_lib.report.backbones import *  # noqa: F401,F403,E402
from clap_lib.report.captions import *  # noqa: F401,F403,E402
from clap_lib.report.figures import *  # noqa: F401,F403
from clap_lib.report.frames import *  # noqa: F401,F403
from clap_lib.report.numbered import *  # noqa: F401,F403,E402
from clap_lib.report.overlap import *  # noqa: F401,F403
from clap_lib.report.tables import *  # noqa: F401,F403
from clap_lib.report.widgets import *  # noqa: F401,F403
