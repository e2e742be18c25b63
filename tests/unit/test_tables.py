"""The one Markdown table writer (and the terminal tables beside it)."""

from mqlab import tables


def test_a_markdown_table_is_a_header_a_rule_and_a_line_a_row():
    text = tables.markdown(("stack", "sent"), [("redis", "2,000"), ("kafka", 7)])
    assert text == "| stack | sent |\n|---|---|\n| redis | 2,000 |\n| kafka | 7 |"


def test_no_rows_leave_the_header_and_its_rule():
    assert tables.markdown(("a", "b", "c"), []) == "| a | b | c |\n|---|---|---|"


def test_a_none_cell_stands_blank_and_an_empty_one_as_written():
    assert tables.markdown(("a", "b", "c"), [("x", None, "")]).splitlines()[-1] == "| x | |  |"


def test_columns_can_be_aligned():
    text = tables.markdown(("name", "rate", "ok", "note"), [("a", 1, "yes", "-")],
                           align=("left", "right", "center", None))
    assert text.splitlines()[1] == "|:---|---:|:---:|---|"


def test_terminal_tables_line_up_without_borders():
    assert tables.render(("A", "BB"), [("xyz", "1")], indent=2).splitlines() == ["  A    BB", "  xyz  1"]
