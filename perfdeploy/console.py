"""Human output: rich on stderr, so stdout stays clean for --json."""

from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # finding lines stay whole for grep
