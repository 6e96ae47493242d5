"""Errors the user can cause and fix.

Every subclass of :class:`IgmError` carries a one-line message that names the problem and
the fix. The CLI prints it without a traceback and exits with status 2 (``exit_code``).
Anything else that escapes is a bug in igm or a plugin and stays loud.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class IgmError(Exception):
    """A problem the user can fix; shown as one line, never with a traceback."""

    exit_code = 2


class ConfigError(IgmError):
    """A bad config key, value, TOML file or command-line option."""


class DataError(IgmError):
    """A data source that does not exist or does not hold what it should."""


class CheckpointError(IgmError):
    """A checkpoint that cannot be read: missing, truncated, foreign or needing a plugin."""


class PluginError(IgmError):
    """A plugin that failed to load or registered a name that is already taken."""


class UnknownNameError(IgmError):
    """A model, data source, divergence, metric or trainer name that nothing registered."""


class TrainingError(IgmError):
    """Training stopped: a loss or a parameter became non-finite. The last good checkpoint is kept."""

    exit_code = 1


class RunWriteError(IgmError):
    """A run could not write its files (a full disk, lost permissions); its last checkpoint is intact."""

    exit_code = 1


class Interrupted(IgmError):
    """The user stopped a run (Ctrl-C); the message says where it can be resumed from."""

    exit_code = 130


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
