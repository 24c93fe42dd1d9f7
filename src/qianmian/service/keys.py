"""API keys: who may call the service, in which role, how often.

Keys live in one JSON file (``<workspace>/api_keys.json`` unless ``service.api_keys_file``
says otherwise) holding, per key, its SHA-256 hash — never the key itself — with a name (the
actor written to the audit trail), a role, an optional request limit of its own, the time it
was created and whether it is disabled. The plaintext key is returned once, by
:meth:`ApiKeyStore.create`, and cannot be recovered afterwards.

A key looks like ``qm_<key id>_<secret>``: the key id (public, 12 hex digits) finds the
record, and the hash of the whole key is compared in constant time. The file is read when the
store is opened and again when its modification time changes, checked at most once a
``reload_seconds``, so keys created or disabled by another process (``qianmian keys``) take
effect without a restart and no request reads the file.

>>> import tempfile, pathlib
>>> store = ApiKeyStore(pathlib.Path(tempfile.mkdtemp()) / "api_keys.json")
>>> key = store.create("mobile-app", "engineer")
>>> store.verify(key).role, store.verify(key + "x")
('engineer', None)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, get_args

import limits
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from qianmian.errors import ConfigError, NotFoundError, ValidationError

__all__ = ["KEY_NAME_PATTERN", "ROLES", "ApiKey", "ApiKeyStore", "Role"]

logger = logging.getLogger(__name__)

Role = Literal["marketer", "analyst", "engineer", "admin", "compliance"]
#: Every role a key can hold (what each may do is :data:`qianmian.service.roles.ENDPOINT_ROLES`).
ROLES: tuple[Role, ...] = get_args(Role)
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_PREFIX = "qm_"
_KEY_ID_LENGTH = 12
# Compared against when the key id is unknown, so an unknown key costs what a known one does.
_NO_HASH = "0" * 64
_CHINA = timezone(timedelta(hours=8))


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_rate_limit(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        limits.parse(value)
    except ValueError as e:
        raise ValueError(
            f"'{value}' is not a request limit; write it as '<count>/<period>', e.g. '100/minute'"
        ) from e
    return value


class ApiKey(BaseModel):
    """One key's record as stored (the hash, not the key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(pattern=rf"^[0-9a-f]{{{_KEY_ID_LENGTH}}}$")
    name: str = Field(pattern=KEY_NAME_PATTERN)
    role: Role
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the whole key")
    rate_limit: str | None = Field(None, description="Own request limit, e.g. '100/minute'")
    created_at: datetime
    disabled: bool = False

    _check_limit = field_validator("rate_limit")(_check_rate_limit)


class _KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    keys: list[ApiKey] = Field(default_factory=list)


_Stamp = tuple[int, int, int] | None


class ApiKeyStore:
    """API keys kept hashed in a JSON file, verified in constant time.

    Parameters
    ----------
    path : Path
        The key file; it need not exist yet (no key is valid until one is created).
    reload_seconds : float, default 1.0
        Least time between two checks of the file's modification time by :meth:`verify`.

    Raises
    ------
    ConfigError
        If the file exists but is not a valid key file.
    """

    def __init__(self, path: Path | str, *, reload_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._by_id: dict[str, ApiKey] = {}
        self._stamp: _Stamp = None
        self._checked = time.monotonic()
        self._by_id, self._stamp = self._read()

    # -- reading -----------------------------------------------------------------------------

    def _file_stamp(self) -> _Stamp:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> tuple[dict[str, ApiKey], _Stamp]:
        """The keys in the file now, by key id, and the file's stamp (ConfigError if invalid)."""
        stamp = self._file_stamp()
        if stamp is None:
            return {}, None
        try:
            parsed = _KeyFile.model_validate_json(self.path.read_bytes())
        except PydanticValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(file)"
            raise ConfigError(
                f"The API key file {self.path} is invalid at '{where}': {first['msg']}. Fix or "
                "delete the file and create the keys again."
            ) from e
        except OSError as e:
            raise ConfigError(f"The API key file {self.path} cannot be read: {e}.") from e
        return {k.key_id: k for k in parsed.keys}, stamp

    def _reload_if_changed(self) -> None:
        """Re-read the file if it changed; a broken file keeps the keys already loaded."""
        now = time.monotonic()
        if now - self._checked < self.reload_seconds:
            return
        self._checked = now
        if self._file_stamp() == self._stamp:
            return
        with self._lock:
            try:
                self._by_id, self._stamp = self._read()
            except ConfigError:
                # Locking every caller out because of a half-edited file is worse than serving
                # with the keys already loaded; say so loudly and try again on the next check.
                logger.exception("API keys not reloaded; keeping the %d loaded", len(self._by_id))

    # -- public API --------------------------------------------------------------------------

    def verify(self, key: str) -> ApiKey | None:
        """The record of an enabled ``key``, or None (unknown, malformed or disabled).

        Parameters
        ----------
        key : str
            The key as presented in the ``X-API-Key`` header.

        Returns
        -------
        ApiKey or None
        """
        self._reload_if_changed()
        record = None
        if key.startswith(_PREFIX) and len(key) > len(_PREFIX) + _KEY_ID_LENGTH:
            record = self._by_id.get(key[len(_PREFIX) : len(_PREFIX) + _KEY_ID_LENGTH])
        expected = record.key_hash if record is not None else _NO_HASH
        matches = hmac.compare_digest(_hash(key), expected)
        if record is None or not matches or record.disabled:
            return None
        return record

    def records(self) -> list[ApiKey]:
        """Every key record (enabled and disabled), oldest first."""
        self._reload_if_changed()
        return sorted(self._by_id.values(), key=lambda k: (k.created_at, k.name))

    def get(self, name: str) -> ApiKey:
        """The record of the key called ``name``; ``NotFoundError`` if there is none."""
        for record in self.records():
            if record.name == name:
                return record
        raise NotFoundError(f"There is no API key named '{name}'. List the keys to see the names.")

    def create(self, name: str, role: str, *, rate_limit: str | None = None) -> str:
        """Create a key and return it in plaintext — the only time it can be seen.

        Parameters
        ----------
        name : str
            Unique name (the actor in the audit trail): letters, digits, ``_.@-``.
        role : {"marketer", "analyst", "engineer", "admin", "compliance"}
        rate_limit : str, optional
            The key's own request limit (``"100/minute"``); default the service's.

        Returns
        -------
        str
            The key, ``qm_<key id>_<secret>``.

        Raises
        ------
        ValidationError
            If the name is taken or malformed, the role unknown or the limit unreadable.
        """
        key_id = secrets.token_hex(_KEY_ID_LENGTH // 2)
        key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        with self._lock:
            current, _ = self._read()  # another process may have written since we loaded
            if any(k.name == name for k in current.values()):
                raise ValidationError(
                    f"An API key named '{name}' already exists. Choose another name, or disable "
                    "the old key first and pick a new name for its replacement."
                )
            try:
                record = ApiKey(
                    key_id=key_id,
                    name=name,
                    role=role,  # type: ignore[arg-type]  # checked by pydantic just here
                    key_hash=_hash(key),
                    rate_limit=rate_limit,
                    created_at=datetime.now(_CHINA).replace(tzinfo=None, microsecond=0),
                )
            except PydanticValidationError as e:
                first = e.errors()[0]
                raise ValidationError(
                    f"The API key field '{first['loc'][0]}' is invalid: {first['msg']}. Got "
                    f"{first['input']!r}; roles are {', '.join(ROLES)}."
                ) from e
            current[key_id] = record
            self._write(current)
        return key

    def disable(self, name: str) -> ApiKey:
        """Disable the key called ``name`` (kept in the file for the audit trail); return it."""
        with self._lock:
            current, _ = self._read()
            found = [k for k in current.values() if k.name == name]
            if not found:
                raise NotFoundError(
                    f"There is no API key named '{name}'. List the keys to see the names."
                )
            record = found[0].model_copy(update={"disabled": True})
            current[record.key_id] = record
            self._write(current)
        return record

    def _write(self, keys: dict[str, ApiKey]) -> None:
        """Replace the file atomically (readable by its owner only) and adopt its contents."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = _KeyFile(keys=sorted(keys.values(), key=lambda k: (k.created_at, k.name)))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".api_keys.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(content.model_dump(mode="json"), ensure_ascii=False, indent=2))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise ConfigError(f"The API key file {self.path} cannot be written: {e}.") from e
        self._by_id, self._stamp = dict(keys), self._file_stamp()
