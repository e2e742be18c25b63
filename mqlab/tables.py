"""Plain-text tables for the terminal, rendered one way (rich, no borders, no colour).

``ps``, ``stats``, ``dlq`` and ``verify`` print their tables through :func:`render`, so
they line up the same, and a long cell never wraps: piping the output to grep works.
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
