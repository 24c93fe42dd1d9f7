"""The data dictionary: tables, fields, types, constraints and zh/en descriptions.

>>> from qianmian.data.schema import table
>>> table("customers").field("city_tier").enum[:2]
('一线', '新一线')
"""

from __future__ import annotations

from qianmian.data.schema.model import Field, Table
from qianmian.data.schema.tables import TABLES
from qianmian.errors import SchemaError

__all__ = ["TABLES", "Field", "Table", "table"]


def table(name: str) -> Table:
    """Return the dictionary entry of table ``name``; an unknown name is a :class:`SchemaError`."""
    try:
        return TABLES[name]
    except KeyError:
        raise SchemaError(
            f"There is no table '{name}' in the data dictionary. Known tables: {', '.join(TABLES)}."
        ) from None
