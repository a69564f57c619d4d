"""Audit chains in memory: an intact chain verifies; deleting, editing, reordering or forging
one record, and rewriting a whole chain after its head was anchored, are each detected and
named (``broker.audit.verify_trail``). Pure: no Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker._jose import b64d, b64e
from broker.audit import (
    GENESIS,
    ROOT_WRITER,
    Act,
    AnchoredHead,
    AuditRecord,
    Break,
    Entry,
    Trail,
    canonical,
    record_hash,
    sign_anchor,
    sign_audit_record,
    verify_trail,
)
from broker.federation.snapshot import DirectorySnapshot, SigningKeyRecord
from broker.keys import SigningKey, kid_of
from broker.topics import ROOT_AUDIT_TOPIC

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
REPORT = uuid.UUID("4b1f9a5e-1c55-4d4a-9a43-3d4f4e8f2a10")
TOPIC = "fusionbus.audit.anf"


@dataclass
class World:
    anf: SigningKey
    fia: SigningKey
    root: SigningKey
    directory: DirectorySnapshot

    def record(self, seq: int, prev: str, **changes: object) -> AuditRecord:
        fields: dict[str, object] = {
            "writer": "anf", "seq": seq, "prev": prev, "at": T0 + timedelta(minutes=seq),
            "act": Act.DELIVERY, "message_id": uuid.uuid4(), "report_id": REPORT,
            "digests": {"envelope": "ab" * 32}, "parties": ("customs",),
        }  # fmt: skip
        return AuditRecord.model_validate(fields | changes)

    def chain(self, length: int, key: SigningKey | None = None, **changes: object) -> list[bytes]:
        """``length`` records of anf's chain, signed by ``key`` (anf's own by default)."""
        values, prev = [], GENESIS
        for seq in range(length):
            record = self.record(seq, prev, **changes)
            values.append(sign_audit_record(record, key or self.anf))
            prev = record_hash(record)
        return values

    def verify(self, values: Sequence[bytes], anchors: Sequence[bytes] = ()) -> Trail:
        entries = [Entry(offset, value) for offset, value in enumerate(values)]
        anchored = [Entry(offset, value) for offset, value in enumerate(anchors)]
        return verify_trail(
            {TOPIC: entries}, anchored, self.directory, self.root.public, writers=["anf"]
        )

    def anchor(self, values: Sequence[bytes]) -> bytes:
        trail = self.verify(values)
        assert trail.intact
        return sign_anchor(trail.heads(), self.root, now=T0 + timedelta(days=1))


def key_record(key: SigningKey, agency: str, **life: datetime) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid_of(key), agency, key.public, life.pop("valid_from", T0 - timedelta(days=30)), **life
    )


@pytest.fixture
def world() -> World:
    return fresh_world()


def fresh_world() -> World:
    """A new world per hypothesis example (function-scoped fixtures are not reset)."""
    anf, fia, root = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    directory = DirectorySnapshot.of_keys([key_record(anf, "anf"), key_record(fia, "fia")])
    return World(anf, fia, root, directory)


def only_break(trail: Trail) -> tuple[Break, int]:
    [found] = trail.breaks
    return found.kind, found.seq


def payload_of(value: bytes) -> dict[str, object]:
    return dict(orjson.loads(b64d(value.split(b".")[1])))


def with_payload(value: bytes, document: dict[str, object]) -> bytes:
    """``value`` with its payload replaced and its signature kept (an edit without the key)."""
    header, _, signature = value.split(b".")
    record = AuditRecord.model_validate(document)
    return header + b"." + b64e(canonical(record)) + b"." + signature


def test_an_intact_chain_verifies_and_each_record_commits_to_the_one_before(world: World) -> None:
    values = world.chain(5)
    trail = world.verify(values)
    assert trail.intact
    [chain] = trail.chains
    assert [r.seq for r, _ in chain.records] == [0, 1, 2, 3, 4]
    assert chain.records[0][0].prev == GENESIS
    for (before, digest), (after, _) in zip(chain.records, chain.records[1:], strict=False):
        assert after.prev == digest == record_hash(before)
    assert chain.head == (4, chain.records[-1][1])


def test_the_same_record_sent_twice_is_no_break(world: World) -> None:
    values = world.chain(4)
    trail = world.verify([*values[:3], values[2], values[3]])
    assert trail.intact
    assert [r.seq for r in trail.life_of(REPORT)] == [0, 1, 2, 3]  # shown once


def test_a_deleted_record_is_named_dropped(world: World) -> None:
    values = world.chain(5)
    trail = world.verify([*values[:2], *values[3:]])
    assert only_break(trail) == (Break.DROPPED, 2)
    assert "record 2 is missing" in str(trail.breaks[0])
    assert only_break(world.verify(values[1:])) == (Break.DROPPED, 0)


def test_an_edited_record_is_named_modified(world: World) -> None:
    values = world.chain(5)
    document = payload_of(values[2])
    document["report_id"] = str(uuid.uuid4())  # point the delivery at another report
    trail = world.verify([*values[:2], with_payload(values[2], document), *values[3:]])
    assert only_break(trail) == (Break.MODIFIED, 2)
    assert "does not verify" in trail.breaks[0].detail
    garbled = values[2][:-5] + b"AAAAA"
    assert only_break(world.verify([*values[:2], garbled, *values[3:]])) == (Break.MODIFIED, 2)


def test_a_record_edited_and_signed_again_by_its_writer_is_named_modified(world: World) -> None:
    values = world.chain(5)
    document = payload_of(values[2]) | {"parties": ["fia"]}
    resigned = sign_audit_record(AuditRecord.model_validate(document), world.anf)
    trail = world.verify([*values[:2], resigned, *values[3:]])
    assert only_break(trail) == (Break.MODIFIED, 2)  # record 3 commits to the original 2
    assert "not the one the chain committed to" in trail.breaks[0].detail


def test_swapped_records_are_named_reordered(world: World) -> None:
    values = world.chain(5)
    trail = world.verify([values[0], values[1], values[3], values[2], values[4]])
    assert only_break(trail) == (Break.REORDERED, 2)


def test_a_record_signed_by_another_agency_is_named_forged(world: World) -> None:
    values = world.chain(3)
    head = record_hash(AuditRecord.model_validate(payload_of(values[-1])))
    forged = sign_audit_record(world.record(3, head), world.fia)  # fia's key, anf's name
    trail = world.verify([*values, forged])
    assert only_break(trail) == (Break.FORGED, 3)
    assert "fia's key" in trail.breaks[0].detail
    other = sign_audit_record(world.record(3, head, writer="fia"), world.fia)
    assert only_break(world.verify([*values, other])) == (Break.FORGED, 3)  # on anf's topic


def test_a_record_with_a_made_up_signature_and_nothing_after_it_is_named_forged(
    world: World,
) -> None:
    values = world.chain(3)
    head = record_hash(AuditRecord.model_validate(payload_of(values[-1])))
    genuine = sign_audit_record(world.record(3, head), world.anf)
    made_up = genuine.rsplit(b".", 1)[0] + b"." + b64e(bytes(64))
    assert only_break(world.verify([*values, made_up])) == (Break.FORGED, 3)
    junk = b"not a record at all"
    assert only_break(world.verify([*values[:2], junk, values[2]])) == (Break.FORGED, 2)


def test_a_key_is_accepted_for_records_made_before_its_revocation_only(world: World) -> None:
    revoked_at = T0 + timedelta(minutes=2, seconds=30)  # after record 2, before record 3
    world.directory = DirectorySnapshot.of_keys(
        [key_record(world.anf, "anf", revoked_at=revoked_at)]
    )
    trail = world.verify(world.chain(5))
    assert only_break(trail) == (Break.FORGED, 3)
    assert "revoked" in trail.breaks[0].detail
    assert world.verify(world.chain(3)).intact


def test_a_second_history_signed_by_the_writer_is_named_rewritten(world: World) -> None:
    values = world.chain(3)
    again = world.chain(2, act=Act.PUBLISH)  # the writer starts over from seq 0
    assert only_break(world.verify([*values, *again])) == (Break.REWRITTEN, 0)


def test_a_chain_rewritten_after_its_head_was_anchored_is_named_rewritten(world: World) -> None:
    values = world.chain(4)
    anchor = world.anchor(values)
    longer = world.chain(6)  # other message ids: not the anchored history
    trail = world.verify(longer, [anchor])
    assert only_break(trail) == (Break.REWRITTEN, 3)
    assert "rewritten after anchoring" in trail.breaks[0].detail
    cut = world.verify(values[:2], [anchor])
    assert only_break(cut) == (Break.REWRITTEN, 3)
    assert "ends at record 1" in cut.breaks[0].detail
    gone = verify_trail({}, [Entry(0, anchor)], world.directory, world.root.public)
    assert only_break(gone) == (Break.REWRITTEN, 3)  # the anchored writer's topic vanished


def test_an_anchor_kept_outside_kafka_still_counts(world: World) -> None:
    values = world.chain(4)
    anchor = world.anchor(values)
    entries = {TOPIC: [Entry(n, v) for n, v in enumerate(world.chain(4))]}  # another history
    trail = verify_trail(
        entries, [], world.directory, world.root.public, writers=["anf"],
        kept=[("home/audit/anchors.jws line 1", anchor)],
    )  # fmt: skip
    assert only_break(trail) == (Break.REWRITTEN, 3)
    assert "anchors.jws line 1" in trail.breaks[0].detail


def test_a_chain_that_goes_on_after_its_anchor_verifies(world: World) -> None:
    values = world.chain(4)
    anchor = world.anchor(values)
    prev = record_hash(AuditRecord.model_validate(payload_of(values[-1])))
    more = [*values]
    for seq in (4, 5):
        record = world.record(seq, prev)
        more.append(sign_audit_record(record, world.anf))
        prev = record_hash(record)
    assert world.verify(more, [anchor]).intact


def test_an_anchor_with_the_roots_name_but_not_its_signature_breaks_the_trail(
    world: World,
) -> None:
    values = world.chain(2)
    genuine = world.anchor(values)
    header, payload, _ = genuine.split(b".")
    made_up = header + b"." + payload + b"." + b64e(bytes(64))
    trail = world.verify(values, [made_up])
    assert not trail.intact
    [problem] = trail.bad_anchors
    assert "forged anchor" in problem
    assert "signature does not verify" in problem


def test_an_anchor_signed_by_another_key_adds_no_check_and_is_counted(world: World) -> None:
    values = world.chain(2)
    other = sign_anchor({"anf": AnchoredHead(seq=0, hash="0" * 64)}, world.fia, now=T0)
    trail = world.verify(values, [other])
    assert trail.intact  # another federation's anchor (or a forger's) constrains nothing
    assert trail.foreign == 1


def test_only_the_federations_writers_are_walked(world: World) -> None:
    values = [Entry(n, v) for n, v in enumerate(world.chain(2))]
    strangers = {"fusionbus.audit.anf": values, "fusionbus.audit.other": values}
    trail = verify_trail(strangers, [], world.directory, world.root.public, writers=["anf"])
    assert trail.intact
    assert [c.writer for c in trail.chains] == ["anf"]
    assert trail.unknown == ("fusionbus.audit.other",)


def test_a_reports_life_is_every_record_naming_it_in_time_order(world: World) -> None:
    values = world.chain(3)
    other = world.chain(1, report_id=uuid.uuid4())
    trail = world.verify(values)
    assert [r.seq for r in trail.life_of(REPORT)] == [0, 1, 2]
    assert world.verify(other).life_of(REPORT) == []


def test_a_record_has_one_byte_form(world: World) -> None:
    [value] = world.chain(1)
    header, payload, signature = value.split(b".")
    loose = orjson.dumps(orjson.loads(b64d(payload)), option=orjson.OPT_INDENT_2)
    resigned = sign_audit_record(world.record(0, GENESIS), world.anf)
    assert world.verify([resigned]).intact
    spaced = header + b"." + b64e(loose) + b"." + signature
    assert only_break(world.verify([spaced])) == (Break.FORGED, 0)


def test_a_record_refuses_content_it_has_no_field_for(world: World) -> None:
    with pytest.raises(ValueError, match="title"):
        world.record(0, GENESIS, title="Heroin in container MSCU1234565")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_change_to_any_one_record_is_detected(data: st.DataObject) -> None:
    anf, root = SigningKey.generate(), SigningKey.generate()
    world = World(
        anf, SigningKey.generate(), root, DirectorySnapshot.of_keys([key_record(anf, "anf")])
    )
    values = world.chain(4)
    index = data.draw(st.integers(0, 3))
    position = data.draw(st.integers(0, len(values[index]) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != values[index][position]))
    changed = bytearray(values[index])
    changed[position] = byte
    tampered = [*values[:index], bytes(changed), *values[index + 1 :]]
    trail = world.verify(tampered)
    assert not trail.intact
    assert trail.breaks[0].seq <= index


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_deletion_or_move_of_one_record_is_detected(data: st.DataObject) -> None:
    anf, root = SigningKey.generate(), SigningKey.generate()
    world = World(
        anf, SigningKey.generate(), root, DirectorySnapshot.of_keys([key_record(anf, "anf")])
    )
    values = world.chain(5)
    anchor = world.anchor(values)
    taken = data.draw(st.integers(0, 4))
    rest = [*values[:taken], *values[taken + 1 :]]
    where = data.draw(st.integers(0, 4))
    moved = [*rest[:where], values[taken], *rest[where:]]
    expected_intact = moved == values
    assert world.verify(moved, [anchor]).intact is expected_intact
    assert not world.verify(rest, [anchor]).intact  # the last one too: the anchor names it


def root_chain(world: World, length: int) -> list[bytes]:
    """``length`` acts of the admin, signed by the federation root."""
    values, prev = [], GENESIS
    for seq in range(length):
        record = AuditRecord(
            writer=ROOT_WRITER, seq=seq, prev=prev, at=T0, act=Act.GRANT_CHANGE,
            parties=("anf",), digests={"record": "cd" * 32},
        )  # fmt: skip
        values.append(sign_audit_record(record, world.root))
        prev = record_hash(record)
    return values


def test_the_roots_chain_is_checked_with_the_root_key_and_other_roots_are_ignored(
    world: World,
) -> None:
    mine = root_chain(world, 3)
    other = fresh_world()
    theirs = root_chain(other, 2)  # another federation sharing the cluster
    log = [Entry(n, v) for n, v in enumerate([mine[0], theirs[0], mine[1], theirs[1], mine[2]])]
    trail = verify_trail(
        {ROOT_AUDIT_TOPIC: log}, [], world.directory, world.root.public, writers=[]
    )
    assert trail.intact
    [chain] = trail.chains
    assert (chain.writer, len(chain.records), trail.foreign) == (ROOT_WRITER, 3, 2)

    dropped = [Entry(n, v) for n, v in enumerate([mine[0], mine[2]])]
    broken = verify_trail(
        {ROOT_AUDIT_TOPIC: dropped}, [], world.directory, world.root.public, writers=[]
    )
    assert only_break(broken) == (Break.DROPPED, 1)
    by_anf = sign_audit_record(
        AuditRecord.model_validate(payload_of(mine[1])), world.anf
    )  # an agency cannot write the root's chain
    forged = [Entry(n, v) for n, v in enumerate([mine[0], by_anf, mine[2]])]
    assert not verify_trail(
        {ROOT_AUDIT_TOPIC: forged}, [], world.directory, world.root.public, writers=[]
    ).intact


def test_the_root_writer_is_no_agency_id(world: World) -> None:
    assert world.record(0, GENESIS, writer=ROOT_WRITER).writer == ROOT_WRITER
    with pytest.raises(ValueError, match="writer"):
        world.record(0, GENESIS, writer="_other")
