"""The agency gateway: HTTP ingest, reads, a live feed and a web dashboard over one agency's
own keys.

Each agency runs one next to its home (``fusionbus gateway --agency ID``): it seals and
publishes what the agency's systems POST, opens what the agency receives, and serves it to
the agency's authenticated people (in a browser, at ``/``) and systems (``docs/gateway.md``).
Its operations surface: ``/healthz``, ``/readyz`` (with the subscriber's lag) and Prometheus
``/metrics`` (:mod:`gateway.metrics`).
"""

from gateway.settings import GatewaySettings, load_settings
from gateway.tokens import Permission, Principal, Role, TokenStore

__all__ = ["GatewaySettings", "Permission", "Principal", "Role", "TokenStore", "load_settings"]
