"""``fusionbus up``: the whole local fusionbus in one command (README command 1).

Starts the embedded Kafka if needed — secured (mutual TLS, ACLs from the directory;
``docs/security.md``) with the CA, node and admin certificates made in the admin's home,
unless ``--plaintext`` is given or the home already holds a plaintext cluster — creates a
demo federation of Pakistan Customs (``customs``), the Anti Narcotics Force (``anf``) and
the Federal Investigation Agency (``fia``) with realistic grants, publishes a few sample
reports from customs' home, starts each agency's gateway in the background (its dashboard,
and a fresh operator token to log in with; :mod:`gateway.detached`), and prints what to try
next. ``fusionbus down`` stops the gateways and Kafka. It publishes the directory (with a
fresh root-signed head) to its Kafka topic, and each site home reads it from there
(``[directory] source = "topic"``), as a real agency's machine does.

The home is the admin's; each agency gets its own home ``<home>/sites/<id>/`` (standing
for its machine), enrolled by request through the same functions as ``agency init``,
``agency add --request`` and ``agency import``, so its private keys are made there and
the admin's home holds none. Idempotent: a home that already holds a federation is used
as it is (an interrupted first run is finished).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy, Federation, publish_directory
from broker.federation._home import private_dir
from broker.federation.enrolment import AgencySite
from broker.home import DirectorySource, HomeLayout, kafka_settings, resolve_home, write_config
from broker.kafka import EmbeddedKafka
from fusionbus.cli import _params
from fusionbus.cli._common import HomeOpt, sync_cluster
from fusionbus.cli._console import say, visible
from fusionbus.cli.enrolment import admit_request, import_bundle, make_request
from fusionbus.cli.kafka import start_cluster
from gateway._files import GatewayFiles
from gateway.detached import DetachedGateway
from gateway.tokens import Role, TokenStore
from producers import Publisher
from producers.ledger import SentLedger
from schemas import Precedence, Report, example_report

__all__ = [
    "DEMO_AGENCIES",
    "Dashboard",
    "down",
    "enrol_site",
    "publish_to_topic",
    "refresh_sites",
    "sample_reports",
    "start_gateways",
    "up",
]

LIVE_DIRECTORY = DirectorySource("topic")
"""Where the demo's site homes read the directory: the default topic, followed live."""

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


GATEWAY_PORT = 8481
"""The demo's first gateway port: customs 8481, anf 8482, fia 8483."""
_DEMO_LOGIN = "fusionbus up (demo login)"


def sample_reports() -> list[Report]:
    """The reports ``up`` publishes from customs' home. Each names the agency whose grants
    (:data:`DEMO_AGENCIES`) and mandate cover its category and asks it to act: ANF the
    heroin at Karachi, FIA the cash at Torkham and the persons at Lahore."""
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
    gateways: Annotated[
        bool,
        typer.Option(
            "--gateways/--no-gateways",
            help="Start each demo agency's gateway and dashboard in the background.",
        ),
    ] = True,
    gateway_port: Annotated[
        int,
        typer.Option(
            parser=_params.whole_number(0, 65_535 - len(DEMO_AGENCIES)),
            metavar="PORT",
            help="The first gateway's port (customs; anf and fia take the next ones); 0 picks "
            "free ones. A busy port is replaced by a free one.",
        ),
    ] = GATEWAY_PORT,
) -> None:
    """Start the local fusionbus: embedded Kafka, a demo federation, sample reports, and
    each agency's gateway with its dashboard.

    The admin's home is HOME; each demo agency gets its own home, HOME/sites/ID/, enrolled
    by request as on its own machine, so no agency private key is in the admin's home.
    Stop it all with `fusionbus down`.
    """
    where = resolve_home(home)
    previous = EmbeddedKafka(HomeLayout(where).kafka_dir).state()
    secure = not plaintext and (previous is None or previous.secure)
    state = start_cluster(
        nodes=1,
        data_dir=HomeLayout(where).kafka_dir,
        port=port,
        secure_home=where if secure else None,
    )
    write_config(where, state.bootstrap, secure=secure, by="fusionbus up")
    if HomeLayout(where).root_public.is_file():
        say("Using the federation already in {home}.", home=where)
        federation = Federation.load(where)
        held = [r.id for r in federation.snapshot.agencies() if federation.holds_keys(r.id)]
        if held:
            say(
                "Note: this admin home holds the private keys of {held} (made by `agency add "
                "ID --name` or an older fusionbus up); a fresh home keeps them apart.",
                held=", ".join(held),
            )
        for agency, (name, _) in DEMO_AGENCIES.items():
            if HomeLayout(where).site(agency).is_dir():
                enrol_site(where, agency, name)  # finishes an interrupted first run
        federation = Federation.load(where)
        sync_cluster(federation, where, certify=federation.snapshot.agencies())
        publish_to_topic(federation, where)
        refresh_sites(where, federation, state.bootstrap, secure=secure)
    else:
        now = datetime.now(UTC).replace(microsecond=0)
        Federation.init(where, now=now)
        for agency, (name, _) in DEMO_AGENCIES.items():
            enrol_site(where, agency, name)
        federation = Federation.load(where)
        for agency, (_, categories) in DEMO_AGENCIES.items():
            federation.grant(agency, categories=categories, jurisdictions=["PK"], now=now)
        sync_cluster(federation, where)
        publish_to_topic(federation, where)
        refresh_sites(where, federation, state.bootstrap, secure=secure)
        customs = HomeLayout(where).site("customs")
        settings = kafka_settings(customs, None, agency="customs")
        sent = asyncio.run(_publish_samples(Federation.load(customs), settings))
        say(
            "Created a demo federation in {home}: customs, anf and fia, each enrolled by "
            "request from its own home ({sites}/<id>/, holding its keys only; the admin's "
            "home holds none), and published {sent} sample reports from customs' home.",
            home=where, sites=HomeLayout(where).sites_dir, sent=sent,
        )  # fmt: skip
    say(
        "\nTry next:\n"
        "  fusionbus tail --agency anf --from-beginning --exit-at-end{flag}\n"
        "  fusionbus tail --agency fia --from-beginning --exit-at-end --json{flag}\n"
        "  fusionbus report example --category narcotics --jurisdiction PKBQM > report.json\n"
        "  fusionbus publish --agency customs report.json{flag}\n"
        "  fusionbus tail --agency customs --raw --from-beginning --exit-at-end{flag}\n"
        "  fusionbus agency list{flag}\n"
        "(the commands are in .venv/bin when set up by ./dev up; --agency ID runs in the "
        "agency's own home, {sites}/ID/)",
        flag="" if home is None else f" --home {where}", sites=HomeLayout(where).sites_dir,
    )  # fmt: skip
    if gateways:
        _say_dashboards(start_gateways(where, gateway_port))
    typer.echo(visible(state.bootstrap))


def down(home: HomeOpt = None) -> None:
    """Stop what `fusionbus up` started: the demo agencies' gateways, then the embedded Kafka."""
    where = resolve_home(home)
    for agency in DEMO_AGENCIES:
        stopped = DetachedGateway(HomeLayout(where).site(agency), agency).stop()
        if stopped is not None:
            say("Stopped the gateway of {agency} ({url}).", agency=agency, url=stopped.url)
    nodes = EmbeddedKafka(HomeLayout(where).kafka_dir).stop()
    if nodes:
        say("Stopped Kafka node(s) {nodes}.", nodes=", ".join(map(str, nodes)))
    else:
        say("Kafka was not running in {kafka}.", kafka=HomeLayout(where).kafka_dir)


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A demo agency's running gateway and a fresh operator token to log in with."""

    agency: str
    url: str
    token: str
    reused: bool


def start_gateways(where: Path, first_port: int) -> list[Dashboard]:
    """Start (or find running) each site's gateway, ports from ``first_port`` (0: free ones,
    and a busy one is replaced by a free one); each gets a new operator token for its
    dashboard, and the one ``up`` made before is revoked."""
    dashboards = []
    for offset, agency in enumerate(DEMO_AGENCIES):
        site = HomeLayout(where).site(agency)
        detached = DetachedGateway(site, agency)
        running = detached.running()
        reused = running is not None
        if running is None:
            port = first_port + offset if first_port else 0
            running = detached.start(f"127.0.0.1:{port if _free(port) else 0}")
        tokens = TokenStore(GatewayFiles(site, agency), agency)
        now = datetime.now(UTC)
        try:
            for info in tokens.all():
                if info.label == _DEMO_LOGIN and info.revoked_at is None:
                    tokens.revoke(info.id, now)
            _, secret = tokens.create(Role.OPERATOR, now, label=_DEMO_LOGIN)
        finally:
            tokens.close()
        dashboards.append(Dashboard(agency, running.url, secret, reused))
    return dashboards


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _say_dashboards(dashboards: list[Dashboard]) -> None:
    say("\nDashboards (log in with the operator token; `fusionbus down` stops everything):")
    for dashboard in dashboards:
        say(
            "  {agency:<8} {url}/  token {token}{note}",
            agency=dashboard.agency, url=dashboard.url, token=dashboard.token,
            note="  (already running)" if dashboard.reused else "",
        )  # fmt: skip


def enrol_site(where: Path, agency: str, name: str) -> None:
    """Enrol ``agency`` from its own home ``<where>/sites/<agency>/`` as two machines would:
    ``agency init`` there, ``agency add --request`` in the admin's home ``where``, ``agency
    import`` of the bundle there. Each step is skipped when it was done before."""
    layout = HomeLayout(where)
    site = layout.site(agency)
    if HomeLayout(site).record(agency).is_file():
        return
    private_dir(site.parent)
    requested = make_request(site, agency, name=name, rotate=False)
    if not layout.record(agency).is_file():
        admit_request(where, requested.path, valid_days=365, rotation=False)
    import_bundle(site, layout.bundle(agency))


def publish_to_topic(federation: Federation, where: Path) -> None:
    """Publish every record and a fresh root-signed head to the directory topic, as
    ``federation publish-directory`` does: the sites read the directory from there."""
    settings = kafka_settings(where, None)
    head = federation.signed_head(now=datetime.now(UTC))
    asyncio.run(publish_directory(settings, federation.snapshot.signed_records(), head=head))


def refresh_sites(where: Path, federation: Federation, bootstrap: str, *, secure: bool) -> None:
    """Hand every site the admin's current directory files (grants included), its Kafka
    address, and ``[directory] source = "topic"``, so it follows the live directory."""
    tokens = list(federation.snapshot.signed_records().values())
    for agency in DEMO_AGENCIES:
        site = HomeLayout(where).site(agency)
        if HomeLayout(site).record(agency).is_file():
            AgencySite(site).install_directory(tokens)
            write_config(
                site, bootstrap, secure=secure, by="fusionbus up", directory=LIVE_DIRECTORY
            )


async def _publish_samples(federation: Federation, settings: KafkaSettings) -> int:
    identity = federation.identity("customs")
    policy = DisseminationPolicy(federation)
    async with Publisher(identity, federation, policy, settings) as publisher:
        samples = sample_reports()
        results = await publisher.publish_many(samples)
    ledger = SentLedger.for_home(federation.home, "customs")  # so `fusionbus status` knows
    try:
        ledger.record_published(samples, results, federation, "customs")
    finally:
        ledger.close()
    for result in results:
        if isinstance(result, Exception):
            raise result
    return len(results)
