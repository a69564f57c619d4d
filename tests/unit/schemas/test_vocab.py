import pytest

from schemas import (
    HandlingCondition,
    InformationCredibility,
    Outcome,
    Precedence,
    SourceReliability,
    Tlp,
    is_registered_category,
    register_category,
    registered_categories,
)


def test_tlp_values_are_the_tlp_2_labels_verbatim() -> None:
    assert [t.value for t in Tlp] == [
        "TLP:RED",
        "TLP:AMBER+STRICT",
        "TLP:AMBER",
        "TLP:GREEN",
        "TLP:CLEAR",
    ]


def test_precedence_is_ordered_highest_first() -> None:
    assert [p.value for p in Precedence] == ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]


def test_admiralty_grades() -> None:
    assert [s.value for s in SourceReliability] == ["A", "B", "C", "D", "E", "F"]
    assert [c.value for c in InformationCredibility] == [1, 2, 3, 4, 5, 6]


def test_outcome_and_handling_codes_are_lowercase_snake_case() -> None:
    codes = [o.value for o in Outcome] + [h.value for h in HandlingCondition]
    assert all(code == code.lower() and " " not in code for code in codes)
    assert {"received", "acknowledged", "actioned", "seizure", "arrest", "no_trace"} <= {
        o.value for o in Outcome
    }
    assert "false_positive" in {o.value for o in Outcome}


def test_seed_categories_are_registered() -> None:
    assert set(registered_categories()) == {
        "narcotics",
        "precursor_chemicals",
        "human_trafficking",
        "migrant_smuggling",
        "contraband",
        "arms",
        "cash_smuggling",
        "wildlife",
        "counterfeit_goods",
        "cultural_property",
    }


def test_registered_categories_is_a_read_only_snapshot() -> None:
    snapshot = registered_categories()
    with pytest.raises(TypeError):
        snapshot["fuel"] = "Fuel"  # type: ignore[index]


def test_register_category_is_idempotent_but_never_relabels() -> None:
    assert not is_registered_category("fuel_smuggling")
    register_category("fuel_smuggling", "Fuel")
    assert is_registered_category("fuel_smuggling")
    register_category("fuel_smuggling", "Fuel")
    with pytest.raises(ValueError, match="already registered"):
        register_category("fuel_smuggling", "Something else")


@pytest.mark.parametrize("code", ["Fuel", "fuel smuggling", "1fuel", "f", "x" * 41, "fuel-oil"])
def test_register_category_rejects_malformed_codes(code: str) -> None:
    with pytest.raises(ValueError, match="snake_case"):
        register_category(code, "label")
