"""Error types and the one table that maps them to exit codes."""

from __future__ import annotations

OK = 0
FAILED = 1
BAD_INPUT = 2
REFUSED = 3
DIFFERENCES = 4
INTERRUPTED = 130


class PerfdeployError(Exception):
    """Base of every error perfdeploy reports to its user."""

    exit_code = FAILED

    def lines(self) -> list[str]:
        """What the CLI prints, each line after 'error: '."""
        return [str(self)]


class ConfigError(PerfdeployError):
    """Bad config, arguments or environment: names the file and the field."""

    exit_code = BAD_INPUT

    def __init__(self, message: str, file: str | None = None, field: str | None = None):
        self.file, self.field = file, field
        where = ": ".join(p for p in (file, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigErrors(ConfigError):
    """Several config errors at once (every one found, each naming its file and field), one a line."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        self.file, self.field = errors[0].file, errors[0].field
        PerfdeployError.__init__(self, "\n".join(map(str, errors)))

    def lines(self) -> list[str]:
        return [str(e) for e in self.errors]


class UsageError(ConfigError):
    """A command used the wrong way (a prompt needed with no terminal, a missing option)."""


class GraphError(ConfigError):
    """A blueprint's inputs name an unknown stack or output, or close a cycle."""


class RenderError(PerfdeployError):
    """A template could not be rendered (for example it is larger than CloudFormation accepts)."""


class LintError(PerfdeployError):
    """The lint gate found errors."""


class DeployError(PerfdeployError):
    """A deploy-side operation failed."""


class SafetyRefusal(PerfdeployError):
    """A safety guard refused an operation (stateful replacement, prod destroy, held lock)."""

    exit_code = REFUSED
