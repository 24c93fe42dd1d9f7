"""千面 qianmian: the right offer, on the right channel, at the right moment, for each customer.

The package follows the flow of DESIGN.md: ``world`` (the simulated bank) and ``data``
(schema, import, identity, masking) feed ``store``; later parts (features, models, decide,
stream, campaigns, analytics, service) build on them. See ``docs/architecture.md``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
