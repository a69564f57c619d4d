"""The identifier checks remember what they accepted, and nothing else, within a bound."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AfterValidator, BeforeValidator, TypeAdapter, ValidationError

from schemas import Cnic, ContainerNumber, Imei, ImoNumber, PhoneNumber, Report, example_report
from schemas.identifiers import CHECK_CACHE_SIZE
from schemas.jurisdiction import CountryCode


def _after(kind: Any) -> Any:
    """The first after-validator of an annotated type (the cached check)."""
    return next(m.func for m in get_args(kind)[1:] if isinstance(m, AfterValidator))


def _before(kind: Any) -> Any:
    return next(m.func for m in get_args(kind)[1:] if isinstance(m, BeforeValidator))


CACHED = [ContainerNumber, ImoNumber, Cnic, Imei, PhoneNumber, CountryCode]


@pytest.mark.parametrize("kind", CACHED)
def test_every_identifier_check_has_a_bounded_cache(kind: Any) -> None:
    info = _after(kind).cache_info()
    assert info.maxsize is not None
    assert info.maxsize <= 4096


def test_a_refused_value_is_refused_every_time_and_never_remembered() -> None:
    check = _after(ContainerNumber)
    before = check.cache_info().currsize
    errors = []
    for _ in range(3):
        with pytest.raises(ValidationError) as info:
            TypeAdapter(ContainerNumber).validate_python("CSQU3054384")
        assert "the check digit does not match" in str(info.value)
        errors.append(info.value)
    assert len({id(e) for e in errors}) == 3
    assert check.cache_info().currsize == before


def test_hostile_distinct_values_cannot_grow_a_cache_past_its_bound() -> None:
    phones = TypeAdapter(PhoneNumber)
    check = _after(PhoneNumber)
    for n in range(CHECK_CACHE_SIZE + 50):
        assert phones.validate_python(f"+92300{n:07d}") == f"+92300{n:07d}"
    assert check.cache_info().currsize == CHECK_CACHE_SIZE
    for n in range(200):  # refused values: the cache stays as it is
        with pytest.raises(ValidationError):
            phones.validate_python(f"+9299{n:07d}")
    assert check.cache_info().currsize == CHECK_CACHE_SIZE


@given(st.text(alphabet=" -/.aAbB019\t", max_size=30))
def test_compacting_is_deleting_the_separators(value: str) -> None:
    table = str.maketrans("", "", " -/")
    assert _before(Imei)(value) == value.strip().upper().translate(table)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (ContainerNumber, "csqu 305438 3"),
        (ImoNumber, "IMO 9319466"),
        (Cnic, "4210112345671"),
        (Imei, "35686800-004141-8"),
        (PhoneNumber, "+92 300 1234567"),
        (CountryCode, "pak"),
    ],
)
def test_a_remembered_answer_is_the_answer_of_the_check_itself(kind: Any, value: str) -> None:
    adapter = TypeAdapter(kind)
    first, second = adapter.validate_python(value), adapter.validate_python(value)
    assert first == second
    check = _after(kind)
    compacted = value if kind is PhoneNumber else _before(kind)(value)
    uncached = check.__wrapped__(compacted)
    assert uncached == check(compacted)


def test_a_report_validates_the_same_with_a_warm_cache() -> None:
    data = example_report().model_dump_json()
    assert Report.model_validate_json(data) == Report.model_validate_json(data)
