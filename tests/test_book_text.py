"""The book's prose and tables say what they mean: no header doubled by `humanize` ("zero-shot zero-shot
accuracy"), no cell or row cut by pandas' display ("...", "144 rows x 5 columns"), no "nan" for a training level
that was not run, and dirty training's accuracy never called zero-shot without saying why it is not."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clap_lib import report
from clap_lib.analysis.claims import S2, S5, evaluate_claims
from clap_lib.report.claims import claims_table, parts_table


def _results() -> pd.DataFrame:
    rows, rng = [], np.random.default_rng(0)
    for p in ("dirty", "clean", "none"):
        for t in ("dirty", "clean"):
            rows.append(
                {"pretraining": p, "training": t, "accuracy": rng.random(), "sil_x_a": rng.random()}
                | {"sil_E_a": rng.random(), "topo_xa_Ea": 0.5, "topo_xt_Et": 0.6, "topo_Ea_Et": 0.3}
            )
    return pd.DataFrame(rows)


def test_humanize_leaves_a_name_that_already_stands_in_its_header():
    claims = evaluate_claims(_results(), n_perm=100, n_boot=100)
    table = report.humanize(claims_table(claims).set_index("id")[["statement", "verdict"]])
    text = " ".join(table["statement"])
    for doubled in ("zero-shot zero-shot", "training data data", "audio audio"):
        assert doubled not in text.lower(), doubled
    s = table["statement"]
    assert s[2] == S2 and s[5] == S5  # "Zero-shot accuracy ..." and "log zero-shot accuracy" as written
    assert s[1].startswith("Zero-shot accuracy falls") and "from the CLAP training data (" in s[1]
    assert "from the audio pretraining (" in s[1]
    assert table.index.name == "id" and list(table.index) == [1, 2, 3, 4, 5]
    # a bare raw name still gets its header, and a plain index stays plain (not shown by whole_table)
    h = report.humanize(pd.DataFrame({"part": ["accuracy rises", "training clean > strict | pretraining none"]}))
    assert list(h["part"]) == ["zero-shot accuracy rises", "training data clean > strict | audio pretraining none"]
    assert isinstance(h.index, pd.RangeIndex)
    parts = report.humanize(parts_table(claims).drop(columns="id"))
    assert not any("zero-shot zero-shot" in str(v).lower() for v in parts.to_numpy().ravel())


def _cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html, flags=re.S)


def test_whole_table_shows_every_character_and_every_row():
    long_text = "a statement of more than fifty characters that pandas would cut short"
    short = pd.DataFrame({"statement": [long_text, "short"], "verdict": ["holds", None]}, index=pd.Index([1, 2]))
    html = report.whole_table_html(short)
    assert long_text in html and "..." not in html and "<details>" not in html
    assert _cells(html) == [long_text, "holds", "short", "-"]  # NaN / None as "-"
    assert "<th>1</th>" in html  # a named or non-default index is shown
    assert "<th>0</th>" not in report.whole_table_html(short.reset_index(drop=True))  # 0, 1, ... is not
    big = pd.DataFrame(
        {"class": [f"c{i}" for i in range(144)], "examples": [long_text] * 144}
        | {f"x{j}": range(144) for j in range(3)}
    )
    html = report.whole_table_html(big, top=10, what="(class, word) pairs")
    head, _, rest = html.partition("<details>")
    assert len(_cells(head)) == 10 * 5 and "The first 10 of 144 (class, word) pairs" in head
    assert "<summary>All 144 (class, word) pairs</summary>" in rest
    assert [c for c in _cells(rest) if c.startswith("c")] == [f"c{i}" for i in range(144)]
    assert "rows x" not in html and "..." not in html and "&lt;" not in html
    assert report.whole_table(big).data == report.whole_table_html(big)
    with pytest.raises(ValueError, match="top"):
        report.whole_table_html(big, top=0)


def test_whole_table_escapes_cell_text():
    html = report.whole_table_html(pd.DataFrame({"caption": ["a <b> & c"]}))
    assert "a &lt;b&gt; &amp; c" in html


def test_survival_sentence_says_in_words_that_a_level_was_not_run():
    both = pd.DataFrame({"dirty": [1.0, 1.0], "clean": [0.5, 0.25], "strict": [0.25, 0.0]})
    assert report.survival_sentence(both) == (
        "the paper's literal \"clean\" rule leaves on average 0.375 of each target class's training pairs in the "
        "training set (audio of T described in other words), and the stricter rule 0.125."
    )
    no_strict = report.survival_sentence(both.drop(columns="strict"))
    assert no_strict.startswith('the paper\'s literal "clean" rule leaves on average 0.375')
    assert "the stricter rule was not run in this configuration" in no_strict
    only_dirty = report.survival_sentence(both[["dirty"]])
    assert '"clean" rule was not run' in only_dirty and "stricter rule was not run" in only_dirty
    for s in (no_strict, only_dirty, report.survival_sentence(pd.DataFrame({"clean": [np.nan]}))):
        assert "nan" not in s.lower()


def test_dirty_training_is_never_called_zero_shot_without_saying_why():
    note = report.dirty_training_note("gpvad", ["dirty", "clean"])
    assert "not zero-shot" in note and "seen with their names" in note
    assert report.dirty_training_note("lab", pd.Series(["clean", "dirty"])) == note
    assert "no dirty training level" in report.dirty_training_note("gpvad", ["clean", "strict"])
    paper = report.dirty_training_note("paper", ["dirty", "clean"])
    assert "seen by name" in paper and "supervised" not in paper  # the paper's dirty data is other audio
