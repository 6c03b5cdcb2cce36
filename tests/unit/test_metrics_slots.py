"""The import-time check that the kernels' output slots follow the metric registry."""

import pytest

from gagebench.metrics import kernels
from gagebench.metrics.engine import check_kernel_slots
from gagebench.metrics.registry import METRICS

NAMES = tuple(m.name for m in METRICS)


def test_the_shipped_kernels_match_the_registry():
    check_kernel_slots(NAMES, kernels.SLOT_NAMES, kernels.N_METRICS)
    assert [kernels.SLOT_NAMES[n] for n in NAMES] == list(range(len(NAMES)))


def test_two_swapped_slots_are_named():
    slots = dict(kernels.SLOT_NAMES)
    slots["NSE"], slots["KGE"] = slots["KGE"], slots["NSE"]
    with pytest.raises(RuntimeError, match=r"NSE is column 0 but kernel slot 1; KGE is column 1"):
        check_kernel_slots(NAMES, slots, kernels.N_METRICS)


def test_a_registry_metric_without_a_slot_is_named():
    with pytest.raises(RuntimeError, match=r"23 slots.*has 22.*without a kernel slot: \['new'\]"):
        check_kernel_slots((*NAMES[:-1], "new"), kernels.SLOT_NAMES, 23)


def test_a_slot_the_registry_lacks_is_named():
    with pytest.raises(RuntimeError, match=r"kernel slots not in the registry: \['high'\]"):
        check_kernel_slots(NAMES[:-1], kernels.SLOT_NAMES, kernels.N_METRICS - 1)
