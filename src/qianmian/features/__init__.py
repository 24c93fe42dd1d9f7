"""Customer 360: point-in-time features, the tag library, segments and cold start.

Features are declared once (:mod:`qianmian.features.catalogue`), compiled to SQL
(:mod:`qianmian.features.compile`) and run by an engine: DuckDB through the store (embedded
default) or PySpark for banks that outgrow one machine; the same definitions give the same values.
"""
