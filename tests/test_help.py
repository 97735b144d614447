"""Every command's --help renders, with an example; shell completion is click's own and works."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from perfdeploy.cli import cli


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
        else:
            found.append((*path, name))
    return found


COMMANDS = every_command()


def test_every_command_is_found():
    assert {"deploy", "plan", "cost", "rollback", "local"} <= {path[-1] for path in COMMANDS if path}


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "perfdeploy")
def test_help_renders_with_usage_and_an_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="perfdeploy", terminal_width=80)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: perfdeploy {' '.join(path)}".rstrip())
    assert "Examples:\n    perfdeploy" in result.output, f"perfdeploy {' '.join(path)} --help has no example"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_are_clicks_own(shell):
    env = {**os.environ, "_PERFDEPLOY_COMPLETE": f"{shell}_source"}
    out = subprocess.run([sys.executable, "-c", "from perfdeploy.cli import main; main()"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "_perfdeploy_completion" in out.stdout


def test_bash_completion_completes_a_command_name():
    env = {**os.environ, "_PERFDEPLOY_COMPLETE": "bash_complete", "COMP_WORDS": "perfdeploy co", "COMP_CWORD": "1"}
    out = subprocess.run([sys.executable, "-c", "from perfdeploy.cli import main; main()"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["plain,cost"]
