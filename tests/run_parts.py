"""Watching a running ``gagebench run`` subprocess write its per-batch parts."""

from __future__ import annotations

import subprocess
import time
from typing import Any


def wait_for_parts(
    proc: subprocess.Popen[Any], fs: Any, parts_dir: str, count: int = 2, timeout: float = 120
) -> list[str]:
    """Poll ``parts_dir`` until ``count`` part files exist, the process ends, or time runs out."""
    deadline = time.monotonic() + timeout
    parts: list[str] = []
    while time.monotonic() < deadline and proc.poll() is None:
        fs.invalidate_cache()
        if fs.exists(parts_dir):
            parts = [p for p in fs.ls(parts_dir) if p.endswith(".parquet")]
            if len(parts) >= count:
                break
        time.sleep(0.05)
    return parts
