"""Who may do what: the permission table of the decision API, and who sees PII unmasked.

:data:`ENDPOINT_ROLES` is the one table of access. Each route names its row (``"METHOD
/path"``) through :func:`qianmian.service.deps.require_roles`; the app refuses to start if a
route has no row or a row no route; the OpenAPI page and ``docs/`` print it; the tests check
it cell by cell. The reasoning behind each row:

============================================  =================================================
endpoint                                      roles, and why
============================================  =================================================
``POST /v1/decisions``                        engineer (the app, SMS platform, call centre ask),
                                              marketer (tries an offer on a test customer), admin
``GET /v1/decisions``, ``…/{decision_id}``    analyst (learns from them), compliance (explains
                                              them), admin — not the channels that asked
``POST /v1/responses``                        engineer (channels feed outcomes back), admin
``POST /v1/events``                           engineer (the bank's systems send events), admin
``GET /v1/customers/{id}/profile``            marketer, analyst, compliance, admin; PII is
                                              masked for all but :data:`UNMASKED_PII_ROLES`
``PUT …/preferences``, ``POST …/opt-out``     engineer (the app's settings page), compliance
                                              (acts on a complaint), admin — never marketing
``GET /v1/offers``, ``GET /v1/campaigns``     every role: the catalogue is not secret inside
``PUT``/``DELETE`` offers and campaigns       marketer (owns the catalogue), admin
``GET /v1/audit``                             compliance, admin
``/v1/keys``                                  admin only
============================================  =================================================

``GET /v1/health`` and ``GET /v1/health/live`` need no key (:data:`PUBLIC_ENDPOINTS`): load
balancers and the load benchmark call them.

>>> sorted(ENDPOINT_ROLES["PUT /v1/offers/{offer_id}"])
['admin', 'marketer']
>>> mask_profile({"customer": {"name": "欧阳娜娜", "birth_date": "1990-05-17"}})["customer"]
{'name': '欧阳**', 'birth_date': '1990-**-**'}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from qianmian.data.masking import mask_text, mask_value
from qianmian.data.schema import TABLES
from qianmian.service.keys import ROLES, Role

__all__ = [
    "ENDPOINT_ROLES",
    "PUBLIC_ENDPOINTS",
    "UNMASKED_PII_ROLES",
    "mask_profile",
    "render_markdown",
    "sees_unmasked_pii",
]

_ALL: frozenset[Role] = frozenset(ROLES)
_CATALOGUE_EDIT: frozenset[Role] = frozenset({"marketer", "admin"})
_LOG_READ: frozenset[Role] = frozenset({"analyst", "compliance", "admin"})
_CONTACT_PREFS: frozenset[Role] = frozenset({"engineer", "compliance", "admin"})
_ADMIN: frozenset[Role] = frozenset({"admin"})

#: Every authenticated endpoint ("METHOD /path", as routed) → the roles allowed to call it.
ENDPOINT_ROLES: dict[str, frozenset[Role]] = {
    "POST /v1/decisions": frozenset({"engineer", "marketer", "admin"}),
    "GET /v1/decisions": _LOG_READ,
    "GET /v1/decisions/{decision_id}": _LOG_READ,
    "POST /v1/responses": frozenset({"engineer", "admin"}),
    "POST /v1/events": frozenset({"engineer", "admin"}),
    "GET /v1/customers/{customer_id}/profile": frozenset(
        {"marketer", "analyst", "compliance", "admin"}
    ),
    "PUT /v1/customers/{customer_id}/preferences": _CONTACT_PREFS,
    "POST /v1/customers/{customer_id}/opt-out": _CONTACT_PREFS,
    "GET /v1/offers": _ALL,
    "GET /v1/offers/{offer_id}": _ALL,
    "PUT /v1/offers/{offer_id}": _CATALOGUE_EDIT,
    "DELETE /v1/offers/{offer_id}": _CATALOGUE_EDIT,
    "GET /v1/campaigns": _ALL,
    "GET /v1/campaigns/{campaign_id}": _ALL,
    "PUT /v1/campaigns/{campaign_id}": _CATALOGUE_EDIT,
    "DELETE /v1/campaigns/{campaign_id}": _CATALOGUE_EDIT,
    "GET /v1/audit": frozenset({"compliance", "admin"}),
    "GET /v1/keys": _ADMIN,
    "POST /v1/keys": _ADMIN,
    "DELETE /v1/keys/{name}": _ADMIN,
}

#: Endpoints that need no key.
PUBLIC_ENDPOINTS: frozenset[str] = frozenset({"GET /v1/health", "GET /v1/health/live"})

#: Roles that see personal information (name, ID number, phone, card number ...) unmasked.
UNMASKED_PII_ROLES: frozenset[Role] = frozenset({"compliance", "admin"})


def sees_unmasked_pii(role: str) -> bool:
    """Whether ``role`` may see PII unmasked."""
    return role in UNMASKED_PII_ROLES


# PII by field name: the data dictionary's PII fields of every table, plus the usual names of
# contact details a profile may carry even if no table of ours stores them.
_PII_KINDS: dict[str, str] = {
    "mobile": "mobile",
    "phone": "mobile",
    "national_id": "national_id",
    "id_number": "national_id",
    "card_number": "card_number",
    "email": "email",
} | {name: kind for t in TABLES.values() for name, kind in t.pii_fields.items()}
# Quasi-identifiers: the date of birth pins a person down together with city and gender, so
# only the year (what age-based rules need) is shown.
_BIRTH_DATES = frozenset({"birth_date", "date_of_birth"})
# Free text written for the customer (personalised copy) may hold their name.
_FREE_TEXT = frozenset({"copy", "text", "note"})


def _mask_birth_date(value: Any) -> Any:
    if isinstance(value, date):
        return f"{value.year:04d}-**-**"
    if isinstance(value, str) and len(value) >= 4:
        return value[:4] + "-**-**"
    return None if value is None else "****"


def _mask_personal(value: Any, field: str | None) -> Any:
    """Mask, at any depth, the fields that hold personal data (by name)."""
    if isinstance(value, Mapping):
        return {k: _mask_personal(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_personal(v, field) for v in value]
    if field in _PII_KINDS and value is not None:
        return mask_value(value, _PII_KINDS[field])
    if field in _BIRTH_DATES:
        return _mask_birth_date(value)
    return _mask_free_text(value, field)


def _mask_free_text(value: Any, field: str | None) -> Any:
    """Mask names and numbers in free text only (``copy``), at any depth."""
    if isinstance(value, Mapping):
        return {k: _mask_free_text(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_free_text(v, field) for v in value]
    if field in _FREE_TEXT and isinstance(value, str):
        return mask_text(value)
    return value


# Which masking each part of a profile gets. Field names only mean personal data in the
# customer's own record and contact details: a tag's "name" is the tag's, not the customer's.
_SECTIONS = {"customer": _mask_personal, "contact": _mask_personal}


def mask_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a customer profile with its PII masked.

    In ``customer`` and ``contact``, fields the data dictionary marks as PII (and ``mobile``,
    ``email``, ``card_number``, ``national_id``) are masked by kind and a date of birth keeps
    its year; everywhere, free text written for the customer (``copy``) has names and numbers
    masked. Features and tags are not personal data by themselves and stay as they are.

    Parameters
    ----------
    profile : Mapping
        As returned by the engine's ``customer_profile``.

    Returns
    -------
    dict

    Examples
    --------
    >>> mask_profile({"contact": {"mobile": "13812345678"},
    ...               "tags": [{"id": "steady", "name": "偏好稳健理财"}]})
    {'contact': {'mobile': '138****5678'}, 'tags': [{'id': 'steady', 'name': '偏好稳健理财'}]}
    """
    return {str(k): _SECTIONS.get(str(k), _mask_free_text)(v, None) for k, v in profile.items()}


def render_markdown() -> str:
    """The permission table as Markdown (endpoint × role), for the docs.

    >>> print(render_markdown().splitlines()[2])
    | `POST /v1/decisions` | ✓ |  | ✓ | ✓ |  |
    """
    lines = [
        "| endpoint | " + " | ".join(ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for endpoint, allowed in ENDPOINT_ROLES.items():
        cells = " | ".join("✓" if role in allowed else "" for role in ROLES)
        lines.append(f"| `{endpoint}` | {cells} |")
    everyone = " | ".join("✓" for _ in ROLES)
    lines.extend(f"| `{e}` (no key) | {everyone} |" for e in sorted(PUBLIC_ENDPOINTS))
    return "\n".join(lines)
