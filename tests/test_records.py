from __future__ import annotations

import threading

import pytest

from aisre.records import InferenceRecord, Route, new_record_id, record_id_time


def test_ids_sort_by_time_and_never_repeat_across_threads():
    ids: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        local = [new_record_id() for _ in range(5000)]
        with lock:
            ids.extend(local)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 20_000
    early, late = new_record_id(1_000.0), new_record_id(2_000.0)
    assert early < late
    assert record_id_time(late) == pytest.approx(2_000.0)


def test_record_gets_an_id_from_its_timestamp():
    r = InferenceRecord(model="m", version="v1", ts=1_800_000_000.5)
    assert len(r.id) == 32
    assert record_id_time(r.id) == pytest.approx(1_800_000_000.5, abs=0.001)


def test_problems_name_each_bad_field():
    r = InferenceRecord(model="", version="v1", latency_s=-1, input_tokens=2.5, route="sideways", tags={"a": 1})
    found = " | ".join(r.problems())
    for field in ("model", "latency_s", "input_tokens", "route", "tags"):
        assert field in found
    assert InferenceRecord(model="m", version="v1", route=Route.CANARY, latency_s=0.1).problems() == []


def test_records_refuse_positional_fields():
    # 22 fields: a positional call would shift every value after a missing one.
    with pytest.raises(TypeError, match="positional"):
        InferenceRecord("m", "v1", {"x": 1})  # type: ignore[misc]
