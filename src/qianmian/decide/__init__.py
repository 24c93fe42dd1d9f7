"""Decide: which offer, on which channel, for this customer, now — or nothing.

The offer catalogue (policy as code), the filter stages (eligibility, applicability,
suitability), the contact policy, budgets and capacity reserved atomically, arbitration by
expected incremental value with Thompson-sampling exploration, the random control groups,
the rules-only fallback, and the decision log. Backends: :mod:`qianmian.decide.state`
(in-process or Redis) and :mod:`qianmian.decide.log` (SQLite or PostgreSQL).
"""
