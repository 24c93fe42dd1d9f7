"""The qianmian exception tree.

Every error raised on purpose by qianmian derives from :class:`QianmianError`, and also from the
built-in exception a caller would naturally catch::

    QianmianError
    ├── ConfigError(ValueError)          settings or a configuration file is invalid
    ├── SchemaError(ValueError)          a table or field is not in the data dictionary, or a
    │   │                                definition refers to one that does not exist
    │   └── RuleError                    a feature rule does not parse, leaves the whitelist, mixes
    │                                    kinds of value or names an unknown field
    ├── ValidationError(ValueError)      input data breaks the data dictionary (type, range, enum ...)
    │   └── MappingError                 an import column mapping is invalid
    ├── ImportFileError(ValueError)      an import file cannot be read (missing, encoding, format)
    ├── ModelCompatibilityError(ValueError)  a saved model cannot be used here: its feature
    │                                    schema, artifact checksum or library major version differs
    ├── NotFoundError(LookupError)       a table, customer or object does not exist
    └── StoreError(ConnectionError)      a storage backend cannot be reached or failed mid-operation

Messages are full sentences that name the field, the value and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ImportFileError",
    "MappingError",
    "ModelCompatibilityError",
    "NotFoundError",
    "QianmianError",
    "RuleError",
    "SchemaError",
    "StoreError",
    "ValidationError",
    "invalid_parameter",
]


class QianmianError(Exception):
    """Root of every error qianmian raises on purpose."""


class ConfigError(QianmianError, ValueError):
    """Settings or a configuration file is invalid."""


class SchemaError(QianmianError, ValueError):
    """A table or field is unknown to the data dictionary, or a definition is inconsistent."""


class RuleError(SchemaError):
    """A rule does not parse, uses something outside the whitelist, or mixes types.

    A :class:`~qianmian.errors.SchemaError` (so also a ``ValueError``): a rule is a definition
    over the feature schema. An unknown field raises it too.
    """


class ValidationError(QianmianError, ValueError):
    """Input data breaks the data dictionary."""


class MappingError(ValidationError):
    """An import column mapping is invalid."""


class ImportFileError(QianmianError, ValueError):
    """An import file cannot be read."""


class ModelCompatibilityError(QianmianError, ValueError):
    """A saved model cannot be used here.

    Its feature schema differs from the caller's, its artifact no longer matches the checksum
    recorded at registration (altered or corrupt), or it was saved with another major version of
    a library it needs (scikit-learn, LightGBM, PyTorch).
    """


class NotFoundError(QianmianError, LookupError):
    """A table, customer or object does not exist."""


class StoreError(QianmianError, ConnectionError):
    """A storage backend cannot be reached or failed during an operation."""


def invalid_parameter(owner: str | object, name: str, must: str, got: object) -> ConfigError:
    """The one sentence shape for a bad parameter, as scikit-learn words it.

    >>> str(invalid_parameter("WorldConfig", "months", "an int from 1 to 60", 0))
    "The 'months' parameter of WorldConfig must be an int from 1 to 60. Got 0 instead."
    """
    who = owner if isinstance(owner, str) else type(owner).__name__
    return ConfigError(f"The '{name}' parameter of {who} must be {must}. Got {got!r} instead.")
