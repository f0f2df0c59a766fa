"""The paper's figure/table numbers (book/_ext/fignumbers.py), the numbered tables' MyST (report.numbered) and the
memory setting (clap_lib.pipeline.memory)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from fignumbers import fixed_number, renumber  # book/_ext (pytest pythonpath)

from clap_lib.report.numbered import cell_text, list_table


def test_fixed_labels_keep_their_number_and_the_rest_follow_in_reading_order():
    assigned = {  # as Sphinx assigns them: reading order, 1, 2, ... per type
        "summary": {"table": {"tbl-claims-short": (1,)}},
        "s2": {"table": {"tbl-recipe": (2,)}, "figure": {"fig-curves": (1,)}},
        "s3_1": {"table": {"table-1": (3,), "tbl-shortcut": (4,), "table-2": (5,)}, "figure": {"figure-2": (2,)}},
        "s3_2": {"table": {"table-3": (6,)}, "figure": {"fig-sk": (3,), "figure-3": (4,)}},
        "s3_3": {"figure": {"figure-4": (5,)}},
        "claims": {"table": {"tbl-claims": (7,)}},
    }
    out = renumber(assigned)
    assert out["s3_1"]["table"] == {"table-1": (1,), "tbl-shortcut": (6,), "table-2": (2,)}
    assert out["s3_2"]["table"] == {"table-3": (3,)}
    # the others: after the largest fixed number of their type, in reading order
    assert out["summary"]["table"]["tbl-claims-short"] == (4,)
    assert out["s2"]["table"]["tbl-recipe"] == (5,)
    assert out["claims"]["table"]["tbl-claims"] == (7,)
    assert out["s2"]["figure"]["fig-curves"] == (5,) and out["s3_2"]["figure"]["fig-sk"] == (6,)
    assert [out[d]["figure"][f] for d, f in (("s3_1", "figure-2"), ("s3_2", "figure-3"), ("s3_3", "figure-4"))] == [
        (2,),
        (3,),
        (4,),
    ]
    numbers = [(t, n) for types in out.values() for t, ids in types.items() for n in ids.values()]
    assert len(numbers) == len(set(numbers)) == 12  # every number once per type


def test_no_fixed_label_keeps_sphinx_order_and_types_are_independent():
    assigned = {"a": {"table": {"x": (1,), "y": (2,)}, "code-block": {"c": (1,)}}}
    assert renumber(assigned) == assigned


def test_bad_fixed_labels_are_refused_with_their_place():
    with pytest.raises(ValueError, match=r"table number 1 is fixed twice: 'table-1' in b and 'table-1' in a"):
        renumber({"a": {"table": {"table-1": (1,)}}, "b": {"table": {"table-1": (1,)}}})
    with pytest.raises(ValueError, match="'figure-2' is on a table"):
        fixed_number("figure-2", "table")
    with pytest.raises(ValueError, match="numbers start at 1"):
        renumber({"a": {"table": {"table-0": (1,)}}})
    assert fixed_number("tbl-recipe", "table") is None and fixed_number("table-12", "table") == 12


def test_list_table_flattens_the_index_and_escapes_cells():
    df = pd.DataFrame(
        {"dirty": ["0.670 [0.625, 0.720]", "a_b *c*"], "none": [np.nan, 1.0]},
        index=pd.Index(["dirty", "clean"], name="training data"),
    )
    df.columns.name = "audio pretraining"
    src = list_table(df, "Zero-shot accuracy of $x_a$.", "table-1")
    lines = src.splitlines()
    assert lines[:4] == ["```{list-table} Zero-shot accuracy of $x_a$.", ":name: table-1", ":header-rows: 1", ""]
    assert lines[4:8] == ["* - training data \\\\ audio pretraining", "  - dirty", "  - none", "* - dirty"]
    assert "  - 0.670 \\[0.625, 0.720\\]" in lines and "  - a\\_b \\*c\\*" in lines
    assert lines[-1] == "```" and lines.count("* - clean") == 1
    assert "  - -" in lines and "  - 1" in lines  # NaN as "-", an integral float as an integer


def test_list_table_parses_as_the_table_it_describes():
    from markdown_it import MarkdownIt  # what MyST builds on: the escaped cells come back as their text

    md = MarkdownIt("commonmark")
    for value, text in [
        ("a_b *c*", "a_b *c*"),
        ("1. first", "1. first"),
        ("- x", "- x"),
        ("x | y", "x | y"),
        ("[0.1, 0.2]", "[0.1, 0.2]"),
        ("#3", "#3"),
        ("<b>", "<b>"),
        ("$5", "$5"),
    ]:
        html = md.render(cell_text(value)).strip()
        assert html == f"<p>{text.replace('<', '&lt;').replace('>', '&gt;')}</p>", (value, html)


def test_cell_text_numbers():
    assert cell_text(0.12345) == "0.123" and cell_text(2e-5) == "2e-05" and cell_text(-0.5) == "-0.500"
    assert cell_text(np.float32(0.5)) == "0.500" and cell_text(np.int64(7)) == "7" and cell_text(None) == "-"
    assert cell_text(True) == "yes" and cell_text(float("nan")) == "-" and cell_text("a\nb") == "a b"


def test_list_table_refuses_bad_labels_and_captions():
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(ValueError, match="label 'Table 1'"):
        list_table(df, "c", "Table 1")
    with pytest.raises(ValueError, match="one non-empty line"):
        list_table(df, "two\nlines", "t-1")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_fixed_mmap_threshold_is_accepted_and_checked():
    from clap_lib.pipeline.memory import fixed_mmap_threshold

    assert fixed_mmap_threshold(4 << 20) is True
    with pytest.raises(ValueError, match="threshold must be > 0"):
        fixed_mmap_threshold(0)
