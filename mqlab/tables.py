"""Tables, written one way each: plain text for the terminal, Markdown for the saved reports.

``ps``, ``stats``, ``dlq`` and ``verify`` print their tables through :func:`render` (rich, no
borders, no colour), so they line up the same, and a long cell never wraps: piping the output
to grep works. The bench and proof reports write theirs through :func:`markdown`.
"""

from __future__ import annotations

import io
from typing import Iterable, Sequence

from rich.console import Console
from rich.table import Table

WIDTH = 400  # wide enough that no cell wraps


def render(headers: Sequence[str] | None, rows: Iterable[Sequence[str]], indent: int = 0) -> str:
    """The rows as aligned columns, two spaces apart; ``headers`` None shows none."""
    rows = [list(row) for row in rows]
    table = Table(box=None, show_header=headers is not None, header_style="", pad_edge=False,
                  padding=(0, 2, 0, 0), show_edge=False)
    for header in headers or [""] * max((len(r) for r in rows), default=0):
        table.add_column(header, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    out = io.StringIO()
    Console(file=out, width=WIDTH, no_color=True, highlight=False, emoji=False, markup=False,
            color_system=None, soft_wrap=False).print(table)
    prefix = " " * indent
    return "\n".join(prefix + line.rstrip() for line in out.getvalue().splitlines() if line.strip())


#: The rule under a Markdown header, per column alignment.
RULES = {None: "---", "left": ":---", "right": "---:", "center": ":---:"}


def markdown(headers: Sequence[str], rows: Iterable[Sequence[object]],
             align: Sequence[str | None] | None = None) -> str:
    """A Markdown table, without a final line break: the header, its rule and one line a row,
    as ``| a | b |``. ``align`` gives each column ``left``, ``right``, ``center`` or None (no
    alignment, the default). A cell that is None stands blank (``| |``); any other is written
    as ``str(cell)``, unescaped, so an empty string stands as ``|  |``."""
    rule = "|" + "|".join(RULES[a] for a in (align or [None] * len(headers))) + "|"
    return "\n".join([_markdown_row(headers), rule, *(_markdown_row(row) for row in rows)])


def _markdown_row(cells: Sequence[object]) -> str:
    return "|" + "|".join(" " if cell is None else f" {cell} " for cell in cells) + "|"
