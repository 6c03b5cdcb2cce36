"""One translation of storage failures into :class:`~gagebench.errors.StorageError`.

Every reader and writer at a URL (stores, crosswalks, gage lists, run folders) goes through
:func:`translating` (or :func:`storage_error`), so a failure reads the same everywhere:
``cannot <action> <what> <url>: <hint> (<cause>)``, where the hint names the likely fix
(credentials, endpoint, URL, storage option names).

Only storage failures are translated (:func:`is_storage_exception`: OS errors, timeouts,
the storage libraries' own exceptions, a storage option the file system refuses, and
the exception types a caller names for one narrow call, such as zarr's ``KeyError`` for
a missing key). Anything else, a ``TypeError`` or ``ValueError`` of our own code
included, propagates unchanged: a bug must never read as "check the URL".
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from gagebench.errors import GagebenchError, NoSpaceError, StorageError
from gagebench.storage.fs import missing_bucket
from gagebench.storage.retry import (
    StoreUnavailable,
    error_summary,
    exception_chain,
    is_storage_failure,
    is_transient,
)

_ExcTypes = tuple[type[BaseException], ...]

_ON_THE_COMMAND_LINE = "on the command line: --storage-option endpoint_url=... or --config run.yaml"

#: (exception class names, also looked for in the message; the hint). First match wins.
#: ``{key}``: the setting that holds the URL ("the URL" unless the caller names one).
_CATEGORIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("Cannot combine AUTHORIZATION header",),
        "two credentials for one request: give either user:pass@ in the URL or an "
        "Authorization header in storage_options.headers, not both",
    ),
    (
        ("PermissionError", "NoCredentialsError", "InvalidAccessKeyId", "AccessDenied"),
        "access denied or no valid credentials: check key/secret/token, profile or anon "
        "in storage_options",
    ),
    (
        (
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ClientConnectorError",
            "ConnectionError",
            "ConnectionRefusedError",
            "ServerDisconnectedError",
            "TimeoutError",
        ),
        f"the endpoint cannot be reached: check endpoint_url in storage_options and the "
        f"network ({_ON_THE_COMMAND_LINE})",
    ),
    (
        ("FileNotFoundError", "GroupNotFoundError", "NoSuchBucket", "NoSuchKey", "KeyError"),
        "it does not exist: check {key}",
    ),
    (
        ("unexpected keyword argument",),
        "a storage option is not accepted by this file system: check the storage_options "
        "names (--storage-option on the command line)",
    ),
    (
        ("ImportError", "Protocol not known", "protocol not known"),
        "unknown or unavailable protocol: check the URL's scheme and that its fsspec "
        "package (e.g. s3fs, gcsfs) is installed",
    ),
)
_UNREACHABLE_HTTP = "the host cannot be reached: check the host and port in the URL and the network"
_TRANSIENT = "the object store kept failing; run again with the same run_id to resume"
_OTHER = (
    f"check {{key}}, the credentials and endpoint_url in storage_options ({_ON_THE_COMMAND_LINE})"
)


def missing_package(exc: BaseException) -> str | None:
    """The fsspec implementation package an ImportError asks for (gcsfs, adlfs...), if any.

    fsspec raises ``ImportError(<its install hint>)`` for a known protocol whose package
    is not installed (``gs://`` without gcsfs): the hint is matched against fsspec's own
    table of implementations, so the package named is the one fsspec would import.
    """
    from fsspec.registry import known_implementations

    for err in exception_chain(exc):
        if not isinstance(err, ImportError):
            continue
        for impl in known_implementations.values():
            package = str(impl.get("class", "")).split(".")[0]
            if impl.get("err") == str(err) or (package and err.name == package):
                return package
    return None


#: Local-disk conditions (errno of an OSError naming a file): their own hints.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_LOCAL_DISK = {
    errno.ENOTDIR: "a part of the path is a file, not a folder: check {key}",
    errno.EROFS: "the file system is read-only: check {key} (a writable folder)",
    errno.EACCES: "permission denied: check {key} and the folder's permissions",
    errno.EPERM: "permission denied: check {key} and the folder's permissions",
}


def _disk_errno(exc: BaseException) -> int | None:
    """The errno of a local-disk OSError in ``exc``'s chain (no space, not a folder, ...)."""
    for err in exception_chain(exc):
        if isinstance(err, OSError) and err.errno in _NO_SPACE:
            return err.errno
        if isinstance(err, OSError) and err.errno in _LOCAL_DISK and err.filename is not None:
            return err.errno
    return None


def is_storage_exception(exc: BaseException, also: _ExcTypes = ()) -> bool:
    """True for a failure of storage (translated), False for a bug (left as it is).

    ``also``: exception types that count as storage failures in the caller's narrow
    block (zarr's ``KeyError`` for a missing key, fsspec's ``ValueError`` for an unknown
    protocol); gagebench's own errors never do, except :class:`StoreUnavailable` and
    the other storage errors raised below the caller.
    """
    if isinstance(exc, GagebenchError) and not isinstance(exc, StorageError):
        return False
    if missing_package(exc) is not None:
        return True
    return is_storage_failure(exc) or (bool(also) and isinstance(exc, also))


def hint(exc: BaseException, key: str = "the URL") -> str:
    """What to check for ``exc``: credentials, endpoint, URL, option names or protocol."""
    chain = exception_chain(exc)
    code = _disk_errno(exc)
    if code in _LOCAL_DISK:
        return _LOCAL_DISK[code].format(key=key)
    for names, text in _CATEGORIES:
        for err in chain:
            mro = {cls.__name__ for cls in type(err).__mro__}
            if mro & set(names) or any(name in str(err) for name in names):
                return text.format(key=key)
    return _TRANSIENT if is_transient(exc) else _OTHER.format(key=key)


def storage_error(
    exc: BaseException,
    url: str,
    action: str,
    what: str | None = None,
    key: str = "the URL",
) -> StorageError:
    """The one-line :class:`StorageError` of ``exc`` raised while ``action``-ing ``url``.

    ``what``: what the URL is, with its article (``"the observed store"``); the URL is
    then quoted after it. ``key``: the setting that holds the URL, named in the hint.
    A :class:`StoreUnavailable` already says what to do (outage or unreachable
    endpoint): only the URL is added.
    """
    target = f"{what} {url!r}" if what else url
    if _disk_errno(exc) in _NO_SPACE:
        return NoSpaceError(
            f"no space left on device at {target} ({error_summary(exc)}): free some space (or "
            f"raise the disk quota) there"
        )
    if isinstance(exc, StoreUnavailable):
        return StorageError(f"cannot {action} {target}: {error_summary(exc)}")
    package = missing_package(exc)
    if package is not None:
        scheme = url.split("::")[-1].split("://")[0] if "://" in url else "this"
        return StorageError(
            f"cannot {action} {target}: {scheme}:// URLs need the {package} package, which "
            f"is not installed: pip install {package}"
        )
    said = hint(exc, key)
    if said.startswith("the endpoint cannot be reached") and url.startswith(("http:", "https:")):
        said = _UNREACHABLE_HTTP  # the host is in the URL, not in endpoint_url
    return StorageError(f"cannot {action} {target}: {said} ({error_summary(exc)})")


@contextlib.contextmanager
def translating(
    url: str,
    action: str,
    what: str | None = None,
    key: str = "the URL",
    also: _ExcTypes = (),
) -> Iterator[None]:
    """Raise storage failures of the block as :func:`storage_error`; bugs unchanged.

    gagebench's own errors pass as they are, except :class:`StoreUnavailable` (raised by
    the retry layer, which does not know the file): it is reworded to name the URL.
    An object-store URL without a bucket (``s3://``) is refused before the block runs.
    """
    problem = missing_bucket(url)
    if problem is not None:
        target = f"{what} {url!r}" if what else url
        raise StorageError(f"cannot {action} {target}: {problem}")
    try:
        yield
    except StoreUnavailable as exc:
        raise storage_error(exc, url, action, what, key) from exc
    except GagebenchError:
        raise
    except Exception as exc:
        if not is_storage_exception(exc, also):
            raise  # a bug, not the storage: surface it as itself
        raise storage_error(exc, url, action, what, key) from exc
