import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import (
    Jurisdiction,
    Locode,
    PlaceKind,
    ancestors,
    covers,
    jurisdiction,
    normalise_jurisdiction,
    place,
    register_places_csv,
    registered_places,
)
from schemas.jurisdiction import country_alpha2


def test_a_locode_sits_under_its_subdivision_and_country() -> None:
    assert ancestors("PKKHI") == ["PKKHI", "PK-SD", "PK"]
    assert ancestors("PK-SD") == ["PK-SD", "PK"]
    assert ancestors("PK") == ["PK"]


def test_nested_subdivisions_follow_pycountry_parents() -> None:
    assert ancestors("GB-KEN") == ["GB-KEN", "GB-ENG", "GB"]


def test_covers_follows_the_tree() -> None:
    assert covers("PK", "PKKHI") is True
    assert covers("PK-SD", "PKKHI") is True
    assert covers("PKKHI", "PKKHI") is True
    assert covers("PK-PB", "PKKHI") is False
    assert covers("PK-SD", "PK") is False
    assert covers("AF", "PKTOR") is False
    assert covers("AF", "AFRKH") is True


def test_codes_are_normalised_to_upper_case() -> None:
    assert normalise_jurisdiction("pk-sd") == "PK-SD"
    assert normalise_jurisdiction(" pkkhi ") == "PKKHI"
    assert normalise_jurisdiction("pk khi") == "PKKHI"
    assert covers("pk", "pkgwd")


@pytest.mark.parametrize(
    ("code", "expected_form"),
    [
        ("ZZ", "ISO 3166-1 alpha-2 country code like PK"),
        ("PK-XX", "ISO 3166-2 subdivision code like PK-SD"),
        ("PKZZZ", "registered UN/LOCODE place like PKKHI"),
        ("Karachi", "an ISO 3166-1 alpha-2 country (PK), an ISO 3166-2 subdivision (PK-SD)"),
        ("", "an ISO 3166-1 alpha-2 country (PK)"),
        ("P" * 10_000, "an ISO 3166-1 alpha-2 country (PK)"),
    ],
)
def test_unknown_codes_name_the_expected_form(code: str, expected_form: str) -> None:
    with pytest.raises(ValueError, match="expected") as info:
        normalise_jurisdiction(code)
    assert expected_form in str(info.value)


def test_unknown_subdivision_lists_the_country_s_subdivisions() -> None:
    with pytest.raises(ValueError, match="PK-BA, PK-GB, PK-IS, PK-JK, PK-KP, PK-PB, PK-SD"):
        normalise_jurisdiction("PK-TA")


def test_packaged_places_cover_the_pakistani_entry_points() -> None:
    places = registered_places()
    expected = {
        "PKKHI": ("PK-SD", {PlaceKind.SEAPORT, PlaceKind.AIRPORT}),
        "PKBQM": ("PK-SD", {PlaceKind.SEAPORT}),
        "PKGWD": ("PK-BA", {PlaceKind.SEAPORT, PlaceKind.AIRPORT}),
        "PKTOR": ("PK-KP", {PlaceKind.LAND_BORDER}),
        "PKCMN": ("PK-BA", {PlaceKind.LAND_BORDER}),
        "PKWGH": ("PK-PB", {PlaceKind.LAND_BORDER}),
        "PKTFT": ("PK-BA", {PlaceKind.LAND_BORDER}),
        "PKISB": ("PK-IS", {PlaceKind.AIRPORT}),
        "PKLHE": ("PK-PB", {PlaceKind.AIRPORT, PlaceKind.DRY_PORT}),
        "PKPEW": ("PK-KP", {PlaceKind.AIRPORT, PlaceKind.DRY_PORT}),
        "PKUET": ("PK-BA", {PlaceKind.AIRPORT, PlaceKind.DRY_PORT}),
    }
    for locode, (subdivision, kinds) in expected.items():
        assert places[locode].subdivision == subdivision, locode
        assert places[locode].kinds == kinds, locode
    assert all(p.subdivision.startswith(p.country) for p in places.values())


def test_an_extra_csv_extends_the_places() -> None:
    with pytest.raises(ValueError, match="registered UN/LOCODE"):
        place("PKXYZ")
    added = register_places_csv(
        "locode,name,subdivision,kinds\nPKXYZ,Example Dry Port,PK-PB,dry_port;land_border\n",
        source="extra.csv",
    )
    assert [p.locode for p in added] == ["PKXYZ"]
    assert place("pkxyz").kinds == {PlaceKind.DRY_PORT, PlaceKind.LAND_BORDER}
    assert ancestors("PKXYZ") == ["PKXYZ", "PK-PB", "PK"]


def test_re_registering_an_identical_place_is_harmless() -> None:
    register_places_csv("locode,name,subdivision,kinds\nPKKHI,Karachi,PK-SD,seaport;airport\n")
    assert place("PKKHI").name == "Karachi"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("PKKHI,Karachi,PK-PB,seaport", "already registered"),
        ("PK1,Nowhere,PK-PB,seaport", "expected a UN/LOCODE like PKKHI"),
        ("PKXY1,Nowhere,PK-PB,seaport", "expected a UN/LOCODE like PKKHI"),
        ("PKXYZ,Nowhere,IN-PB,seaport", "not an ISO 3166-2 code of PK"),
        ("PKXYZ,Nowhere,PK-PB,harbour", "kinds are seaport, airport, land_border, dry_port"),
        ("PKXYZ,Nowhere,PK-PB,", "needs at least one kind"),
        ("ZZXYZ,Nowhere,,seaport", "ZZ is not an ISO 3166-1 alpha-2 country"),
    ],
)
def test_a_bad_csv_row_names_its_line_and_the_problem(row: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"extra\.csv, line 2") as info:
        register_places_csv(f"locode,name,subdivision,kinds\n{row}\n", source="extra.csv")
    assert message in str(info.value)


def test_a_csv_with_the_wrong_header_is_refused() -> None:
    with pytest.raises(ValueError, match="expected the header locode,name,subdivision,kinds"):
        register_places_csv("code,name\nPKXYZ,x\n")


def test_a_place_may_hang_directly_under_its_country() -> None:
    register_places_csv("locode,name,subdivision,kinds\nSGSIN,Singapore,,seaport;airport\n")
    assert ancestors("SGSIN") == ["SGSIN", "SG"]


def test_annotated_types_validate_and_normalise() -> None:
    assert TypeAdapter(Jurisdiction).validate_python("pk-kp") == "PK-KP"
    assert TypeAdapter(Locode).validate_python("pk tor") == "PKTOR"
    with pytest.raises(ValidationError, match="registered UN/LOCODE"):
        TypeAdapter(Locode).validate_python("PKZZZ")
    with pytest.raises(ValidationError, match="at most 16 characters"):
        TypeAdapter(Jurisdiction).validate_python("PK" * 100)


def test_country_codes_accept_alpha_3_and_become_alpha_2() -> None:
    assert country_alpha2("PAK") == "PK"
    assert country_alpha2("af") == "AF"
    with pytest.raises(ValueError, match="alpha-2 \\(PK\\) or alpha-3 \\(PAK\\)"):
        country_alpha2("XXX")


def test_cached_look_ups_never_hide_a_later_registration_or_a_reset() -> None:
    for _ in range(2):  # a refusal is not remembered
        with pytest.raises(ValueError, match="registered UN/LOCODE"):
            normalise_jurisdiction("pkxyz")
    register_places_csv(
        "locode,name,subdivision,kinds\nPKXYZ,Example Dry Port,PK-PB,dry_port\n", source="x.csv"
    )
    assert normalise_jurisdiction("pkxyz") == "PKXYZ"
    chain = ancestors("PKXYZ")
    chain.append("mutated")  # callers get their own list, never the cached one
    assert ancestors("PKXYZ") == ["PKXYZ", "PK-PB", "PK"]
    jurisdiction._reset_places()
    with pytest.raises(ValueError, match="registered UN/LOCODE"):
        normalise_jurisdiction("pkxyz")
    with pytest.raises(ValueError, match="registered UN/LOCODE"):
        ancestors("PKXYZ")
