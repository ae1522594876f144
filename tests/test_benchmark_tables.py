"""The one table writer both benchmarks (bench_plan, bench_apply) print and write their results with."""

from benchmarks.tables import fmt, md_table, text_table


def test_text_table_right_aligns_under_a_rule():
    assert text_table(("N", "wall s"), [["1,000", "2.50"], ["10", "-"]]).splitlines() == [
        "    N  wall s",
        "-----  ------",
        "1,000    2.50",
        "   10       -",
    ]


def test_an_empty_table_is_its_header():
    # bench_plan's own copy failed here (max() over the header width alone)
    assert text_table(("N", "wall s"), []) == "N  wall s\n-  ------"
    assert md_table(("N", "wall s"), []) == "| N | wall s |\n|---:|---:|"


def test_md_table_rows():
    assert md_table(("N",), [["1"], ["2"]]).splitlines()[2:] == ["| 1 |", "| 2 |"]


def test_fmt_missing_values():
    assert [fmt(None), fmt(float("nan")), fmt(1234.5, ",.1f"), fmt(7, ",", none="?")] == ["-", "-", "1,234.5", "7"]
