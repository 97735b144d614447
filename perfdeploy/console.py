"""Human output: rich on stderr, so stdout stays clean for --json.

Without a terminal (CI logs) rich lays tables out at 80 columns. A table therefore never cuts or wraps an
identifier the user types next (release ids, stack keys, resource types, commits): such columns keep their
full width, and only the columns named as free text (times, reasons, tags) wrap to make room.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.table import Table

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # finding lines stay whole for grep


def titled_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]],
                 wrap: Sequence[str] = ()) -> Titled:
    """The one way perfdeploy prints a table: a left-aligned title, named columns, rows of text.

    Columns named in `wrap` hold free text and may wrap onto more lines; every other column is shown whole
    on one line (its width is its longest cell), so nothing a user copies out of it is ever cut.
    """
    return Titled(title, tuple(columns), [tuple(row) for row in rows], frozenset(wrap))


class Titled:
    """A table laid out when printed, for the console's width: whole columns first, wrapping ones share
    the rest. Only when whole columns alone are wider than the console do the widest of them fold (rich
    would otherwise crop the table at the edge)."""

    def __init__(self, title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], wrap: frozenset[str]):
        self.title, self.columns, self.rows, self.wrap = title, columns, rows, wrap

    def widths(self) -> list[int]:
        """Each column's minimum width: the longest cell of a whole column, the longest word (up to 10,
        a date) of a wrapping one."""
        out = []
        for i, column in enumerate(self.columns):
            cells = [column, *(_plain(row[i]) for row in self.rows)]
            if column in self.wrap:
                out.append(min(10, max(len(w) for cell in cells for w in (cell.split() or [""]))))
            else:
                out.append(max(map(len, cells)))
        return out

    def __rich_console__(self, console, options):
        widths = self.widths()
        gap = 2  # SIMPLE_HEAD without edges: one space of padding and one of column divider
        whole = sorted((i for i, c in enumerate(self.columns) if c not in self.wrap), key=lambda i: -widths[i])
        folding = set(self.wrap)
        while whole and sum(widths) + gap * (len(widths) - 1) > options.max_width:
            i = whole.pop(0)  # fold this one rather than let rich crop the table
            widths[i] = 1
            folding.add(self.columns[i])
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                      pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
        for column, width in zip(self.columns, widths, strict=True):
            table.add_column(column, overflow="fold", min_width=width, no_wrap=column not in folding)
        for row in self.rows:
            table.add_row(*row)
        yield table


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 change', '2 changes' (`many` for irregular plurals)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def when(value: datetime | str | None) -> str:
    """A timestamp as tables show it: UTC, to the second ('2026-11-22 10:15:00'); '-' when unknown."""
    if not value:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def one_line(text: str, width: int) -> str:
    """`text` summarised to one line of at most `width` characters (cut at a word, marked with '...')."""
    first = " ".join(text.split())
    return first if len(first) <= width else textwrap.shorten(first, width, placeholder=" ...")


def _plain(cell: str) -> str:
    """A cell's visible text (rich markup such as [red]...[/] takes no room)."""
    from rich.text import Text

    return Text.from_markup(cell).plain
