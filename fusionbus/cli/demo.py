"""``fusionbus up``: the whole local fusionbus in one command (README command 1).

Starts the embedded Kafka if needed — secured (mutual TLS, ACLs from the directory;
``docs/security.md``) with every certificate generated in the home, unless ``--plaintext``
is given or the home already holds a plaintext cluster — creates a demo federation of
Pakistan Customs (``customs``), the Anti Narcotics Force (``anf``) and the Federal
Investigation Agency (``fia``) with realistic grants, publishes a few sample reports, and
prints what to try next.
Idempotent: a home that already holds a federation is used as it is.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from broker.config import KafkaSettings
from broker.federation import Federation
from broker.kafka import EmbeddedKafka
from fusionbus.cli import _params
from fusionbus.cli._common import (
    HomeOpt,
    kafka_settings,
    recipient_policy,
    resolve_home,
    sync_cluster,
    write_config,
)
from fusionbus.cli._console import say, visible
from fusionbus.cli.kafka import start_cluster
from producers import Publisher
from schemas import Precedence, Report, example_report

__all__ = ["DEMO_AGENCIES", "up"]

DEMO_AGENCIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "customs": (
        "Pakistan Customs, Intelligence & Investigations (FBR)",
        ("contraband", "counterfeit_goods", "cash_smuggling", "arms", "wildlife",
         "cultural_property"),
    ),
    "anf": ("Anti Narcotics Force", ("narcotics", "precursor_chemicals")),
    "fia": (
        "Federal Investigation Agency",
        ("human_trafficking", "migrant_smuggling", "cash_smuggling"),
    ),
}  # fmt: skip


def _samples() -> list[Report]:
    narcotics = example_report("narcotics", "PKKHI")
    cash = example_report("cash_smuggling", "PKTOR")
    persons = example_report("human_trafficking", "PKLHE").model_copy(
        update={"precedence": Precedence.FLASH}
    )
    return [narcotics, cash, persons]


def up(
    home: HomeOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            parser=_params.whole_number(0, 65_535),
            metavar="PORT",
            help="Kafka client port; 0 picks a free one (default: 9092, or as last run).",
        ),
    ] = None,
    plaintext: Annotated[
        bool,
        typer.Option(
            "--plaintext", help="Run Kafka without TLS, authentication or ACLs (quickest)."
        ),
    ] = False,
) -> None:
    """Start the local fusionbus: embedded Kafka, a demo federation, sample reports."""
    where = resolve_home(home)
    previous = EmbeddedKafka(where / "kafka").state()
    secure = not plaintext and (previous is None or previous.secure)
    state = start_cluster(
        nodes=1, data_dir=where / "kafka", port=port, secure_home=where if secure else None
    )
    write_config(where, state.bootstrap, secure=secure, by="fusionbus up")
    if (where / "federation" / "root.pub.jwk").is_file():
        say("Using the federation already in {home}.", home=where)
        if secure:
            federation = Federation.load(where)
            sync_cluster(federation, where, issue=federation.agencies())
    else:
        now = datetime.now(UTC).replace(microsecond=0)
        federation = Federation.init(where, now=now)
        for agency, (name, categories) in DEMO_AGENCIES.items():
            federation.add_agency(agency, name, now=now)
            federation.grant(agency, categories=categories, jurisdictions=["PK"], now=now)
        sync_cluster(federation, where, issue=federation.agencies())
        settings = kafka_settings(where, None, agency="customs")
        sent = asyncio.run(_publish_samples(federation, settings))
        say(
            "Created a demo federation in {home}: customs, anf and fia, and published {sent} "
            "sample reports.",
            home=where, sent=sent,
        )  # fmt: skip
    say(
        "\nTry next:\n"
        "  fusionbus tail --agency anf --from-beginning --exit-at-end{flag}\n"
        "  fusionbus tail --agency fia --from-beginning --exit-at-end --json{flag}\n"
        "  fusionbus report example --category narcotics --jurisdiction PKBQM > report.json\n"
        "  fusionbus publish --agency customs report.json{flag}\n"
        "  fusionbus tail --agency customs --raw --from-beginning --exit-at-end{flag}\n"
        "  fusionbus agency list{flag}\n"
        "(the commands are in .venv/bin when set up by ./dev up)",
        flag="" if home is None else f" --home {where}",
    )
    typer.echo(visible(state.bootstrap))


async def _publish_samples(federation: Federation, settings: KafkaSettings) -> int:
    identity = federation.identity("customs")
    async with Publisher(
        identity, federation.trust_store(), recipient_policy(federation), settings
    ) as publisher:
        results = await publisher.publish_many(_samples())
    for result in results:
        if isinstance(result, Exception):
            raise result
    return len(results)
