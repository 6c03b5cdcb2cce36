"""How a notebook points to a run's report: a link the page can follow, or the report's
location with a command to copy.

A Jupyter page opens files through its server, which serves files under its root
directory only; browsers block ``file://`` links from a page served over http, and an
``s3://`` link opens nothing. The rule:

- the root is ``$JUPYTER_SERVER_ROOT`` when set (the folder the server was started in,
  ``jupyter lab --notebook-dir``), else the kernel's working directory (Jupyter starts a
  kernel in its notebook's folder, which is under the root);
- a local report under the root is linked by its path relative to the kernel's working
  directory: JupyterLab resolves such a link against the notebook's folder and opens the
  file, and a static page that ships the file at the same place beside it (the
  documentation site) serves it the same way;
- any other report (a local file outside the root, an ``s3://`` or other remote URL) is
  shown as text with a command to copy: ``python -m webbrowser`` for a local file,
  ``gagebench report URL --output report.html`` (a local copy) for a remote one.
"""

from __future__ import annotations

import html
import os
from pathlib import Path, PurePosixPath

#: The environment variable that names the Jupyter server's root directory.
ROOT_ENV = "JUPYTER_SERVER_ROOT"


def server_root(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The folder the Jupyter server serves: ``$JUPYTER_SERVER_ROOT``, else ``cwd``."""
    root = os.environ.get(ROOT_ENV) or (cwd if cwd is not None else os.getcwd())
    return Path(root).expanduser().resolve()


def relative_link(url: str, cwd: str | os.PathLike[str] | None = None) -> str | None:
    """``url``'s path relative to ``cwd`` (default: the working directory) when it is a
    local file under :func:`server_root`, else None (a remote URL, or outside the root)."""
    if "://" in url and not url.startswith("file://"):
        return None
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    path = Path(url.removeprefix("file://")).expanduser()
    path = (here / path).resolve() if not path.is_absolute() else path.resolve()
    if not path.is_relative_to(server_root(here)):
        return None
    return PurePosixPath(*Path(os.path.relpath(path, here)).parts).as_posix()


def report_link_html(url: str, label: str = "report.html") -> str:
    """HTML for a notebook card: a relative link to ``url`` where the page can follow
    one, else ``url`` with a command that opens (local) or fetches (remote) the report."""
    relative = relative_link(url)
    if relative is not None:
        return f'<a href="{html.escape(relative)}" target="_blank">{html.escape(label)}</a>'
    if "://" in url and not url.startswith("file://"):
        run = url.rsplit("/", 1)[0]
        command = f"gagebench report {run} --output {label}"
        where, how = "", "a copy to open here (with the run's -c or --storage-option options)"
    else:
        local = Path(url.removeprefix("file://")).expanduser().resolve()
        command = f"python -m webbrowser -t {local.as_uri()}"
        where, how = ", outside the Jupyter server's root", "open it with"
    return (
        f"{html.escape(label)} at <code>{html.escape(url)}</code>{where}; {html.escape(how)}: "
        f'<code style="user-select: all">{html.escape(command)}</code>'
    )
