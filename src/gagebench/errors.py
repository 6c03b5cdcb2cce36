"""Exception types: every message says what went wrong, with which input, and the fix."""

from gagebench.redact import redact_text


class GagebenchError(Exception):
    """Base class of the errors gagebench raises on purpose (logged once at the CLI edge).

    Its message is shown with every secret masked (:func:`gagebench.redact.redact_text`),
    wherever it is printed: the CLI, a notebook, a caller's own logging.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return redact_text(super().__str__())  # secrets first known after it was raised


class ConfigError(GagebenchError, ValueError):
    """A setting is missing or invalid; the message names the dotted key."""


class InputError(GagebenchError, ValueError):
    """An input (array, gage list, store) has the wrong shape, type or content."""


class StorageError(GagebenchError):
    """A URL cannot be read or written (bad credentials, unreachable endpoint, missing)."""


class ClusterError(GagebenchError):
    """A Dask cluster could not be started, reached or torn down."""


class RunError(GagebenchError):
    """A run stopped part-way (batches kept failing); finished batches are saved: resume it."""


class NoSpaceError(StorageError):
    """The output's disk or quota is full (ENOSPC, EDQUOT): the run failed, not its input."""


class CommitError(RunError, StorageError):
    """The commit of a computed run failed (its batches are saved: run again to commit).

    A :class:`StorageError` too, for callers that catch storage failures; the exit
    status is a failed run's (1), not bad input's.
    """


class RunLockedError(GagebenchError):
    """Another live process holds the run folder's lease (exit 1): wait for it or stop it."""


class LeaseLostError(GagebenchError):
    """This run no longer holds its run folder's lease: it stops without committing (exit 1)."""
