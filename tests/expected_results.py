"""What a run must produce: ``gagebench.evaluate`` in this process on the series a run reads.

Shared by the integration suite and the Kubernetes rehearsal, so both compare a run's
results with one independent in-process computation.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gagebench.config import RunConfig
from gagebench.evaluation import evaluate
from gagebench.sources.stores import SourceSet


def evaluate_in_process(cfg: RunConfig, ids: list[str], **options: Any) -> pd.DataFrame:
    """Rows of ``gagebench.evaluate`` for the gages present in every store, per model, with
    the run's suites, mode and min_paired_days; ``options``: more of evaluate's keywords
    (``by``, ``metrics``)."""
    batch = SourceSet.from_config(cfg).read_batch(ids)
    frames = []
    for model in cfg.models:
        keep = [
            i
            for i, g in enumerate(batch.gage_ids)
            if g not in batch.missing_observed and g not in batch.missing_model[model]
        ]
        frames.append(
            evaluate(
                batch.observed[keep],
                {model: batch.modeled[model][keep]},
                time=batch.dates,
                gages=[batch.gage_ids[i] for i in keep],
                suites=cfg.suites,
                mode=cfg.mode,
                min_paired_days=cfg.min_paired_days,
                **options,
            )
        )
    return pd.concat(frames, ignore_index=True)
