"""The API process's garbage-collector settings (hub.api.app.tune_gc): start-up objects frozen, fewer collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub.api.app import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    made_at_start_up = [object() for _ in range(10)]  # noqa: F841 - alive while tune_gc runs
    tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # CPython's default young threshold


@pytest.mark.usefixtures("restored_gc")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    tune_gc()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle, unreachable once the names go
    del a, b
    assert gc.collect() >= 2
