"""Direct reproductions of the gaps in ``fuzzkit.KNOWN_GAPS`` (issue 10), as
strict xfails: when an owner fixes one, its test here XPASSes (and fails),
saying that the gap's entry in ``KNOWN_GAPS`` must go."""

from __future__ import annotations

import pytest

from cxflow import MemoryStore, ValidationError
from cxflow._validate import check_id


@pytest.mark.xfail(strict=True, reason="H1: _validate._reject calls repr() on a 5,000-digit int")
def test_an_id_of_five_thousand_digits_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        check_id(10**5000, "task_id")


@pytest.mark.xfail(strict=True, reason="lead: MemoryStore.query_tasks checks the query first")
def test_memory_query_tasks_checks_the_tenant_first() -> None:
    with pytest.raises(ValidationError) as info:
        MemoryStore().query_tasks(5, None)  # type: ignore[arg-type]
    assert info.value.field == "tenant"


@pytest.mark.xfail(strict=True, reason="lead: MemoryStore.read_events checks after/limit first")
def test_memory_read_events_checks_the_tenant_first() -> None:
    with pytest.raises(ValidationError) as info:
        MemoryStore().read_events(5, after=-1)  # type: ignore[arg-type]
    assert info.value.field == "tenant"
