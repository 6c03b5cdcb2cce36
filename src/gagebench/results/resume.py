"""The command that resumes a run: recorded when the run starts, given by every message
that says a run is unfinished.

``_parts/started.json`` holds the command line that last started the run (``--set``
values of secret keys and URL passwords masked) and its working directory. A stopped
run's error, and ``gagebench report``/``compare`` on a run without ``manifest.json``, turn
it into the command to type: the same command with ``--set run_id=<id>`` (so a run id
made from ``{time}`` resumes too), run from the same folder.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gagebench.commandline import command_line, resume_command


def started_record(run_id: str) -> bytes:
    """The ``_parts/started.json`` of a run this process starts."""
    return json.dumps(
        {"run_id": run_id, "command": command_line(), "cwd": os.getcwd()}, indent=2
    ).encode()


def recorded_resume(run_id: str, record: Any) -> str:
    """The resume command from a ``started.json`` record (or a generic one without it)."""
    if isinstance(record, dict) and isinstance(record.get("command"), list):
        cwd = record.get("cwd") if isinstance(record.get("cwd"), str) else None
        return resume_command(run_id, [str(w) for w in record["command"]], cwd)
    return f"the command that started it, with --set run_id={run_id}"
