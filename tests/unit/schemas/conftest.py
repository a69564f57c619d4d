from collections.abc import Iterator

import pytest

from schemas import jurisdiction, vocab


@pytest.fixture(autouse=True)
def _fresh_registries() -> Iterator[None]:
    """Each test ends with only the packaged categories and places, whatever it registered."""
    yield
    vocab._reset_categories()
    jurisdiction._reset_places()
