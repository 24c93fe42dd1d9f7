"""scikit-learn's estimator checks for our estimators, as pytest parameters.

The array-API checks are left out on purpose: our estimators take numpy and pandas input only
and do not declare array-API support, so those checks would only skip.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator


def contract_checks(estimators: list) -> list:
    """``(estimator, check)`` pairs for ``pytest.mark.parametrize``."""
    return [
        pytest.param(est, check, id=f"{type(est).__name__}-{check.func.__name__}-{n}")
        for n, est in enumerate(estimators)
        for _, check in estimator_checks_generator(est)
        if not check.func.__name__.startswith("check_array_api")
    ]
