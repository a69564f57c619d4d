"""Hostile Kafka records made from signed ones: a structure-aware generator, seeded.

::

    world = make_world()
    for mutant in Mutator(world, seed=1).mutants(3000):
        verdict = world.intake().process(mutant.record)

Each :class:`Mutant` starts from one :class:`tests.fuzz.corpus.Base` record and names what
was done to it (``kind``, coarse, for statistics; ``detail``, the JSON position and value).
The same seed gives the same records, byte for byte.

The generator knows the envelope: it parses the JSON and walks every position, including
the two base64url-encoded JSON documents inside it (the ``protected`` header with its
``fusionbus`` routing header, and the header of the detached ``unprotected.fusionbus_sig``
JWS), re-encoding them after an edit. Families of mutations (``FAMILIES``):

* ``tree``: at any position, another type or value (``null``, ``true``, ``1.0``, ``2**64``,
  ``NaN``, lone surrogates, deep arrays, near-1-MiB strings), a deleted, added, renamed or
  duplicated member (raw JSON text with the name twice), list elements dropped or doubled;
* ``b64``: padding, ``+``/``/``, a non-canonical last character, impossible lengths,
  whitespace or non-ASCII inside, decoded bytes flipped, shortened or lengthened, an X25519
  ``epk`` with bit 255 set or of low order;
* ``routing``: routing header values in other spellings (``"version": true``, ``1.0``,
  upper-case UUIDs, ``+00:00``, year 0001 and 9999, leap seconds, epoch numbers);
* ``truncate`` (every length class), ``bytes`` (bit flips, invalid UTF-8, deletions);
* ``swap``: members or recipient entries of two signed envelopes exchanged;
* ``size`` and ``nest``: many recipients, values near the 1 MiB and 16 KiB limits,
  nesting around the container limits;
* ``respell``: the same JSON spelled differently (whitespace, member order, ``\\u``
  escapes), which a recipient may legitimately still accept;
* ``garbage``: random bytes and JSON that is no envelope at all;
* ``kafka``: the record around the value (``value=None``, empty, keys, header lists with
  odd, duplicate, huge or non-UTF-8 names and values, other topics, odd timestamps);
  value mutations are also stacked with a Kafka one now and then.

The values come from :mod:`tests.fuzz.values`, the JSON positions and the spellings orjson
will not write from :mod:`tests.fuzz.jsontext`, the record-level mutations from
:mod:`tests.fuzz.records`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from consumers.intake import Record

from .corpus import NOW, Base, World
from .jsontext import DECODED, Pairs, Part, Path, Raw, dump, edit, escaped, get, positions, where
from .records import kafka, odd_topics
from .values import (
    DEPTHS,
    LIFETIMES,
    MIB,
    NEW_MEMBERS,
    SCALARS,
    b64_variant,
    deep,
    hostile,
    is_b64_position,
    iso,
    spellings,
)

__all__ = ["FAMILIES", "KAFKA_SHARE", "Mutant", "Mutator"]


@dataclass(frozen=True, slots=True)
class Mutant:
    """A hostile record, the base it was made from, and what was done to it."""

    record: Record
    base: Base
    kind: str
    detail: str


_Made = tuple[str, str, bytes]
"""(kind, detail, value) a value family returns."""


class Mutator:
    """Hostile records from the bases of ``world``, deterministic from ``seed``."""

    def __init__(self, world: World, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.bases = world.bases
        # reports that open reach the deepest checks: they are drawn three times as often
        self._draw = [b for b in world.bases for _ in range(3 if b.genuine else 1)]
        self._docs: dict[str, dict[str, Any]] = {b.name: orjson.loads(b.value) for b in world.bases}
        self._positions = {name: positions(doc) for name, doc in self._docs.items()}
        self._topics = {b.name: odd_topics(b, world.topics()) for b in world.bases}
        self._families: list[tuple[str, Callable[[Base], _Made]]] = [
            ("tree", self.tree),
            ("b64", self.b64),
            ("routing", self.routing),
            ("truncate", self.truncate),
            ("bytes", self.bytes),
            ("swap", self.swap),
            ("size", self.size),
            ("nest", self.nest),
            ("respell", self.respell),
            ("garbage", self.garbage),
        ]
        names = [n for n, _ in self._families]
        self._weights = [FAMILIES[n] for n in names]

    def mutants(self, count: int) -> Iterator[Mutant]:
        for _ in range(count):
            yield self.one()

    def one(self) -> Mutant:
        rng = self.rng
        base = rng.choice(self._draw)
        if rng.random() < KAFKA_SHARE:
            kind, record = kafka(rng, base.record, self._topics[base.name])
            return Mutant(record, base, kind, "")
        [(_, family)] = rng.choices(self._families, self._weights)
        kind, detail, value = family(base)
        record = replace(base.record, value=value)
        if rng.random() < 0.15:
            stacked, record = kafka(rng, record, self._topics[base.name])
            kind = f"{kind}+{stacked}"
        return Mutant(record, base, kind, detail)

    # -- value families (each returns kind, detail, value) --------------------------------

    def _doc(self, base: Base) -> dict[str, Any]:
        return self._docs[base.name]

    def _position(self, base: Base, accept: Callable[[Path, Any], bool]) -> Path:
        doc = self._doc(base)
        choices = [p for p in self._positions[base.name] if accept(p, get(doc, p))]
        return self.rng.choice(choices)

    def tree(self, base: Base) -> _Made:
        """Edit one JSON position: replace, delete, add, rename, duplicate."""
        rng, doc = self.rng, self._doc(base)
        path = self._position(base, lambda _p, _v: True)
        parent_path, key = path[:-1], path[-1] if path else None
        op = rng.randrange(7)
        container = isinstance(key, str | int) and not isinstance(key, bool)
        if op <= 2 or not container:
            value = hostile(rng, get(doc, path))
            return (
                "tree.replace",
                f"{where(path)}={_short(value)}",
                dump(edit(doc, path, lambda _: value)),
            )
        parent = get(doc, parent_path)
        if isinstance(parent, list):
            assert isinstance(key, int)
            return (
                "tree.list",
                where(path),
                dump(edit(doc, parent_path, lambda p: _list_op(rng, p, key))),
            )
        assert isinstance(key, str)
        if op == 3:
            new = edit(doc, parent_path, lambda p: {k: v for k, v in p.items() if k != key})
            return "tree.delete", where(path), dump(new)
        if op == 4:
            name, value = rng.choice(NEW_MEMBERS), hostile(rng, None)
            new = edit(doc, parent_path, lambda p: _pairs(rng, {**p}.items(), (name, value)))
            return "tree.add", f"{where(parent_path)}+{name!r}", dump(new)
        if op == 5:
            twin = parent[key] if rng.random() < 0.5 else hostile(rng, parent[key])
            new = edit(doc, parent_path, lambda p: _pairs(rng, p.items(), (key, twin)))
            return "tree.duplicate", f"{where(path)} twice", dump(new)
        renamed = rng.choice(
            (key.upper(), key + " ", " " + key, key[:-1], key + "\u0000", Raw(escaped(key)))
        )
        new = edit(
            doc,
            parent_path,
            lambda p: Pairs(tuple((renamed if k == key else k, v) for k, v in p.items())),
        )
        return "tree.rename", f"{where(path)}->{_short(renamed)}", dump(new)

    def b64(self, base: Base) -> _Made:
        rng, doc = self.rng, self._doc(base)
        path = self._position(base, lambda p, v: isinstance(v, str) and is_b64_position(p))
        old: str = get(doc, path)
        name, new = b64_variant(rng, old, path)
        return f"b64.{name}", where(path), dump(edit(doc, path, lambda _: new))

    def routing(self, base: Base) -> _Made:
        rng, doc = self.rng, self._doc(base)
        header_path: Path = ("protected", DECODED, "fusionbus")
        header = get(doc, header_path)
        if rng.random() < 0.15:  # both times, canonical: expired, early, too long-lived
            created, expires = rng.choice(LIFETIMES)
            times = {"created_at": iso(NOW + created), "expires_at": iso(NOW + expires)}
            new = edit(doc, header_path, lambda h: {**h, **times})
            return "routing.times", f"{times}", dump(new)
        field = rng.choice(sorted(header))
        value = rng.choice(spellings(rng, field, header[field], self.bases))
        return (
            f"routing.{field}",
            f"{field}={_short(value)}",
            dump(edit(doc, (*header_path, field), lambda _: value)),
        )

    def truncate(self, base: Base) -> _Made:
        rng, value = self.rng, base.value
        n = len(value)
        structural = [i for i, c in enumerate(value[:4096]) if c in b'{}[],:"']
        cls = rng.randrange(7)
        at = (
            0,
            rng.randint(1, 8),
            rng.randint(9, 64),
            rng.randint(65, n // 2),
            rng.randint(n // 2, n - 1),
            n - rng.randint(1, 3),
            rng.choice(structural) + rng.choice((0, 1)),
        )[cls]
        return "truncate", f"{at} of {n}", value[:at]

    def bytes(self, base: Base) -> _Made:
        rng = self.rng
        data = bytearray(base.value)
        op = rng.randrange(5)
        if op == 0:
            flips = rng.choice((1, 1, 2, 8))
            for _ in range(flips):
                bit = rng.randrange(len(data) * 8)
                data[bit // 8] ^= 1 << (bit % 8)
            return "bytes.flip", f"{flips} bits", bytes(data)
        if op == 1:
            at = rng.randrange(len(data))
            data[at] = rng.choice(b'\x00\x80\xff\xc0\xed\xf8"\\\x7f {')
            return "bytes.set", f"byte {at}", bytes(data)
        bad = rng.choice(
            (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\xe2\x82", b"\x00")
        )
        if op == 2:  # inside a string: right after an opening quote
            quotes = [i for i, c in enumerate(data[:8192]) if c == 0x22]
            at = rng.choice(quotes) + 1
            return "bytes.utf8-in-string", f"at {at}", bytes(data[:at] + bad + data[at:])
        if op == 3:
            at = rng.randrange(len(data))
            return "bytes.utf8", f"at {at}", bytes(data[:at] + bad + data[at:])
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.choice((1, 2, 16, 300)))
        if rng.random() < 0.5:
            return "bytes.delete", f"{start}:{end}", bytes(data[:start] + data[end:])
        return "bytes.repeat", f"{start}:{end}", bytes(data[:end] + data[start:end] + data[end:])

    def swap(self, base: Base) -> _Made:
        """Members of another signed envelope put into this one."""
        rng = self.rng
        other = rng.choice([b for b in self.bases if b is not base])
        mine, theirs = dict(self._doc(base)), self._doc(other)
        choice = rng.randrange(6)
        if choice == 0:
            member = rng.choice(sorted(theirs))
            mine[member] = theirs[member]
            what = member
        elif choice == 1:
            for member in ("iv", "ciphertext", "tag"):
                mine[member] = theirs[member]
            what = "iv+ciphertext+tag"
        elif choice == 2:
            for member in ("protected", "iv", "ciphertext", "tag"):
                mine[member] = theirs[member]
            what = "all but recipients and unprotected"
        elif choice == 3:
            mine["unprotected"] = theirs["unprotected"]
            what = "unprotected"
        elif choice == 4:  # one recipient entry
            entries = list(mine["recipients"])
            at = rng.randrange(len(entries))
            entries[at] = rng.choice(theirs["recipients"])
            mine["recipients"] = entries
            what = f"recipients>{at}"
        else:  # the routing header only, re-encoded into this protected header
            header = get(theirs, ("protected", DECODED, "fusionbus"))
            mine = edit(mine, ("protected", DECODED, "fusionbus"), lambda _: header)
            what = "protected>fusionbus"
        return "swap", f"{what} from {other.name}", dump(mine)

    def size(self, base: Base) -> _Made:
        rng, doc = self.rng, self._doc(base)
        op = rng.randrange(6)
        if op == 0:
            count = rng.choice((2, 63, 64, 65, 66, 1000, 20_000))
            entries = [rng.choice(doc["recipients"]) for _ in range(count)]
            return "size.recipients", f"{count} entries", dump({**doc, "recipients": entries})
        if op == 1:  # total size at, just under and just over 1 MiB
            target = MIB + rng.choice((-1, 0, 1, 2, -4096))
            member = rng.choice(("ciphertext", "iv", "tag", "unprotected"))
            filler = "A" * max(0, target - len(base.value))
            if member == "unprotected" and "fusionbus_sig" in doc["unprotected"]:
                value = {"fusionbus_sig": doc["unprotected"]["fusionbus_sig"] + filler}
            elif member == "unprotected":  # version 2: pad the batch signature
                batch = doc["unprotected"]["fusionbus_batch"]
                value = {"fusionbus_batch": {**batch, "sig": batch["sig"] + filler}}
            else:
                value = doc[member] + filler
            data = dump({**doc, member: value})
            return "size.near-1MiB", f"{member}, {len(data)} bytes", data
        if op == 2:  # whitespace to the limit: the same JSON, sized at or over it
            target = MIB + rng.choice((-1, 0, 1))
            return "respell.pad-to-limit", f"{target} bytes", base.value.ljust(target, b" ")
        if op == 3:  # the protected header around its 16 KiB limit
            chars = rng.choice((16_380, 16_384, 16_385, 16_400))
            grow = ("protected", DECODED, "fusionbus", "schema_version")
            room = (chars - len(doc["protected"])) * 3 // 4
            new = edit(doc, grow, lambda v: v + "A" * max(0, room))
            return "size.protected", f"~{chars} chars", dump(new)
        if op == 4:
            count = rng.choice((100, 10_000, 100_000))
            extra = {f"m{i}": i for i in range(count)}
            return (
                "size.members",
                f"{count} members",
                dump({**doc, "unprotected": {**doc["unprotected"], **extra}}),
            )
        name = "n" * rng.choice((1000, 100_000, MIB - len(base.value) - 100))
        return "size.name", f"{len(name)}-char member name", dump({**doc, name: 1})

    def nest(self, base: Base) -> _Made:
        rng, doc = self.rng, self._doc(base)
        op = rng.randrange(4)
        depth = rng.choice(DEPTHS)
        if op == 0:
            return "nest.whole", f"depth {depth}", deep(depth).text
        if op == 1:
            return "nest.unclosed", f"depth {depth}", deep(depth, close=False).text
        if op == 2:
            path = self._position(base, lambda p, _v: DECODED in p)
            value = deep(rng.choice((6, 7, 8, 9, 40)))
            return "nest.header", f"{where(path)}", dump(edit(doc, path, lambda _: value))
        path = self._position(base, lambda p, _v: DECODED not in p and bool(p))
        return (
            "nest.member",
            f"{where(path)} depth {depth}",
            dump(edit(doc, path, lambda _: deep(depth))),
        )

    def respell(self, base: Base) -> _Made:
        """The same JSON value in other bytes: a recipient may still open it."""
        rng, doc = self.rng, self._doc(base)
        op = rng.randrange(6)
        if op == 0:
            indent = rng.choice((None, 1, 2, "\t"))
            return (
                "respell.whitespace",
                f"indent {indent!r}",
                json.dumps(doc, indent=indent, separators=(", ", " : ")).encode(),
            )
        if op == 1:
            members = list(doc.items())
            rng.shuffle(members)
            return "respell.order", "top-level members", orjson.dumps(dict(members))
        if op == 2:
            entries = [dict(reversed(list(e.items()))) for e in doc["recipients"]]
            return (
                "respell.order",
                "recipient members",
                orjson.dumps({**doc, "recipients": entries}),
            )
        if op == 3:
            path = self._position(
                base,
                lambda p, v: (
                    isinstance(v, str)
                    and bool(v)
                    and DECODED not in p
                    and not any(isinstance(s, Part) for s in p)
                ),
            )
            old: str = get(doc, path)
            picks = [rng.randrange(len(old)) for _ in range(rng.choice((1, 2, 8)))]
            spelled = Raw(escaped(old, picks))
            return "respell.escape", where(path), dump(edit(doc, path, lambda _: spelled))
        if op == 4:
            spaces = rng.choice((b" ", b"\n", b"\r\n", b"\t", b" \n\t\r"))
            return "respell.around", repr(spaces), spaces + base.value + spaces
        return "respell.bom", "UTF-8 byte order mark", b"\xef\xbb\xbf" + base.value

    def garbage(self, base: Base) -> _Made:
        rng = self.rng
        op = rng.randrange(6)
        if op == 0:
            return "garbage.random", "", rng.randbytes(rng.choice((1, 16, 300, 4096)))
        if op == 1:
            return "garbage.scalar", "", dump(rng.choice(SCALARS))
        if op == 2:
            return (
                "garbage.wrapped",
                "",
                rng.choice((b"[%s]", b'{"": %s}', b"%s%s", b"%s x", b"%s\x00")).replace(
                    b"%s", base.value
                ),
            )
        if op == 3:
            return (
                "garbage.minimal",
                "",
                dump({"protected": self._doc(base)["protected"], "recipients": [{}]}),
            )
        if op == 4:
            return (
                "garbage.ascii",
                "",
                bytes(
                    rng.choice(b'{}[]":,0123456789truefalsn \\')
                    for _ in range(rng.randrange(1, 200))
                ),
            )
        return (
            "garbage.text",
            "",
            rng.choice((b"null", b"{}", b"[]", b'""', b"{", b"}", b"\xef\xbb\xbf{}")),
        )


KAFKA_SHARE: Final = 0.12
"""The share of mutants that change only the record around a signed value."""
FAMILIES: Final = {
    "tree": 30,
    "b64": 14,
    "routing": 14,
    "truncate": 5,
    "bytes": 8,
    "swap": 6,
    "size": 3,
    "nest": 4,
    "respell": 5,
    "garbage": 3,
}
"""Relative weights of the value families."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


def _pairs(rng: random.Random, items: Any, extra: tuple[str | Raw, Any]) -> Pairs:
    members: list[tuple[str | Raw, Any]] = list(items)
    members.insert(rng.randrange(len(members) + 1), extra)
    return Pairs(tuple(members))


def _list_op(rng: random.Random, items: list[Any], at: int) -> list[Any]:
    op = rng.randrange(5)
    if op == 0:
        return items[:at] + items[at + 1 :]
    if op == 1:
        return [*items[: at + 1], items[at], *items[at + 1 :]]
    if op == 2:
        return list(reversed(items))
    if op == 3:
        return [*items[:at], hostile(rng, items[at]), *items[at:]]
    return []
