"""Human output: rich on stderr, so stdout stays clean for --json."""

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # finding lines stay whole for grep


def titled_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """The one way perfdeploy prints a table: a left-aligned title, named columns, rows of text."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table
