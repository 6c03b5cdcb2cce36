"""The command line of this process as a user would type it, and the command that
resumes a run from it (``--set run_id=<id>``, without ``--force``): a leaf the CLI, the
pipeline and the cluster backends all use for "resume with: ..." (the run folder's
record of it is :mod:`gagebench.results.resume`)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence

from gagebench.redact import MASK, is_secret_key, redact, redact_text

#: Names the ``gagebench`` command line runs under (console script, ``python -m``).
_CLI_NAMES = ("gagebench", "gagebench.exe", "cli.py", "__main__.py")
#: Subcommands that take ``--set`` and resume a run.
_RUN_COMMANDS = ("run", "demo")


def command_line(argv: Sequence[str] | None = None) -> list[str] | None:
    """This process's command line as a user would type it, secrets masked; None from a
    notebook or an interpreter (no command to repeat)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv or not argv[0] or argv[0] == "-c" or "ipykernel" in argv[0]:
        return None
    name = os.path.basename(argv[0])
    if name in _CLI_NAMES and (name.startswith("gagebench") or "gagebench" in argv[0]):
        head = ["gagebench"]
    elif name.endswith(".py"):
        head = ["python", argv[0]]
    else:
        head = [argv[0]]
    return head + [_mask_word(arg) for arg in argv[1:]]


def _mask_word(arg: str) -> str:
    """One word of the command line: ``--set=key=value`` (an option and its value in one
    word) is masked as its value alone would be."""
    if arg.startswith("--") and "=" in arg:
        option, _, value = arg.partition("=")
        return f"{option}={_mask(value)}"
    return _mask(arg)


def _mask(arg: str) -> str:
    """A ``key=value`` argument with the value masked under a secret key, and secrets in a
    YAML value (``storage_options={key: ..., secret: ...}``) masked; URL passwords too."""
    import yaml

    if arg.startswith("--set="):  # argparse's one-word form of --set KEY=VALUE
        return "--set=" + _mask(arg.removeprefix("--set="))
    key, sep, value = arg.partition("=")
    if not sep:
        return redact_text(arg)
    if is_secret_key(key.rsplit(".", 1)[-1]):
        return f"{key}={MASK}"
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return redact_text(arg)
    if isinstance(parsed, dict | list) and redact(parsed) != parsed:
        return f"{key}={json.dumps(redact(parsed))}"
    return redact_text(arg)


def resume_command(
    run_id: str,
    command: Sequence[str] | None,
    cwd: str | None = None,
    sets: Mapping[str, str] | None = None,
) -> str:
    """The command that resumes ``run_id``: ``command`` with ``--set run_id=<id>`` and
    ``sets`` (``--set`` of those keys already there dropped) and without ``--force``
    (which would delete the saved batches), prefixed with ``cd <cwd> &&`` when given."""
    sets = {"run_id": run_id, **dict(sets or {})}
    if not command:
        extra = ", ".join(f"{k}={v!r}" for k, v in sets.items())
        return f"gagebench.run(config) again with {extra}"
    words = list(command)
    if words[0] != "gagebench" or len(words) < 2 or words[1] not in _RUN_COMMANDS:
        extra = ", ".join(f"{k}={v}" for k, v in sets.items())
        text = f"{shlex.join(words)} (keeping {extra})"
    else:
        kept: list[str] = []
        skip = False
        for i, word in enumerate(words):
            if skip:
                skip = False
                continue
            if word == "--set" and _sets_key(words[i + 1] if i + 1 < len(words) else "", sets):
                skip = True
                continue
            if word.startswith("--set=") and _sets_key(word.removeprefix("--set="), sets):
                continue
            if len(word) > 3 and "--force".startswith(word):
                continue  # (or its abbreviation) would delete the batches to resume
            kept.append(word)
        for key, value in sets.items():
            kept += ["--set", f"{key}={value}"]
        text = shlex.join(kept)
    return f"cd {shlex.quote(cwd)} && {text}" if cwd else text


def _sets_key(assignment: str, keys: Mapping[str, str]) -> bool:
    key = assignment.partition("=")[0].strip().removeprefix("gagebench.")
    return key in keys
