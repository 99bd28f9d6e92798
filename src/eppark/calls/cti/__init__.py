"""Call-centre wire formats: one module per provider (pure parsing and signing, no Django).

Each provider module offers ``parse(body, content_type, query) -> CtiEvent`` for the
events it pushes and the signing its callout needs; ``PROVIDERS`` maps the
``/cti/<provider>/<key>`` name to its module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from eppark.calls.cti import generic, tinet
from eppark.calls.cti.events import CtiEvent

Reader = Callable[[bytes, Mapping[str, str], Mapping[str, str], str], CtiEvent]
READERS: dict[str, Reader] = {"generic": generic.read, "tinet": tinet.read}
