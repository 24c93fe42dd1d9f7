"""The full engine as a batch-campaign policy: every contact decided by the decision engine.

A batch campaign asks the engine about its audience in order of expected incremental value
(scored in bulk with the engine's own uplift model, so the most valuable customers are asked
first while the budget lasts) and sends what the engine answers — which may be another offer
or channel than the bulk score's, or nothing, because the engine also applies the contact
policy (consent, opt-out, complaints, fatigue suppression, caps, quiet hours), suitability,
the campaign's random holdout and the bandit's exploration. The engine's decisions and the
outcomes fed back to it are in its decision log, like any live decision's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd

from qianmian.campaigns.bulk_scoring import CandidateGrid
from qianmian.campaigns.policies import Wave
from qianmian.decide.arbitration import arbitration_factors
from qianmian.decide.decision import Decision, DecisionRequest
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.log.base import ResponseRecord

__all__ = ["EnginePolicy"]


class EnginePolicy:
    """千面引擎: the decision engine decides each contact of the campaign ``campaign_id``.

    ``grid`` returns the engine's uplift model scores for the wave (the order customers are asked
    in). The engine is asked until it has sent ``wave.sent_target`` contacts, as many as every
    other policy sends; its holdout decisions are returned too.
    """

    name = "engine"

    def __init__(
        self,
        engine: DecisionEngine,
        campaign_id: str,
        grid: Callable[[Wave], CandidateGrid],
    ) -> None:
        self.engine = engine
        self.campaign_id = campaign_id
        self._grid = grid
        catalogue = engine.catalogue
        self._values = {o: catalogue.offer(o) for o in catalogue.campaign(campaign_id).offers}
        self._costs = {c: spec.cost for c, spec in catalogue.channels.items()}
        self.decisions: list[Decision] = []

    def _order(self, wave: Wave) -> np.ndarray:
        """Reachable customers, best expected value first (by the engine's own arbitration)."""
        grid = self._grid(wave)
        n, n_o, n_c = wave.allowed.shape
        offers = [self._values[o] for o in wave.offers]
        campaign_weight = self.engine.catalogue.campaign(self.campaign_id).weight

        def cells(per_offer: list[float], per_channel: list[float] | None = None) -> np.ndarray:
            a = np.broadcast_to(np.asarray(per_offer)[None, :, None], (n, n_o, n_c))
            if per_channel is not None:
                a = a + np.asarray(per_channel)[None, None, :]
            return a.reshape(-1)

        incentive = cells([o.incentive_cost for o in offers]) * grid.p_sent.reshape(-1)
        channel_cost = cells([0.0] * n_o, [self._costs.get(c, 0.0) for c in wave.channels])
        factors = arbitration_factors(
            np.nan_to_num(grid.p_sent.reshape(-1)),
            np.nan_to_num(grid.uplift.reshape(-1)),
            cells([o.value for o in offers]),
            channel_cost + incentive,
            cells([o.weight * campaign_weight for o in offers]),
            self.engine.arbitration,
        )
        ev = factors.expected_values().reshape(n, n_o, n_c)
        best = np.where(wave.allowed, ev, -np.inf).reshape(n, -1).max(axis=1)
        reachable = np.flatnonzero(np.isfinite(best))
        return reachable[np.argsort(-best[reachable], kind="stable")]

    def choose(self, wave: Wave) -> pd.DataFrame:
        target = wave.sent_target
        rows: list[dict[str, object]] = []
        sent = 0
        for i in self._order(wave):
            if sent >= target:
                break
            customer = int(wave.customer_ids[i])
            decision = self.engine.decide(
                DecisionRequest(
                    customer_id=customer,
                    ts=wave.ts,
                    campaign_id=self.campaign_id,
                    request_id=f"simulate:{self.campaign_id}:{wave.index}:{customer}",
                )
            )
            row = _contact(decision)
            if row is None:
                continue
            self.decisions.append(decision)
            rows.append(row)
            sent += not row["is_holdout"]
        self.engine.log.flush()
        columns = ["contact_id", "customer_id", "offer_id", "channel", "is_holdout"]
        return pd.DataFrame(rows, columns=[*columns, "action_probability"])

    def learn(self, responses: pd.DataFrame, ignored: pd.DataFrame, at: datetime) -> int:
        """Feed outcomes back to the engine: the bandit learns, suppressions and opt-outs apply.

        ``responses`` are the outcomes observed since the last call; ``ignored`` the sent
        contacts that have not converted by ``at`` (reported as ``ignored``, the bandit's
        failure; a later conversion is still reported when it comes). Returns the number of
        responses recorded.
        """
        recorded = 0
        for r in responses.itertuples(index=False):
            recorded += self.engine.record_response(
                _record(r.contact_id, r.customer_id, r.offer_id, r.response_type, r.ts, r.value)
            )
        for c in ignored.itertuples(index=False):
            recorded += self.engine.record_response(
                _record(c.contact_id, c.customer_id, c.offer_id, "ignored", at, None)
            )
        return recorded


def _record(
    contact_id: object, customer_id: object, offer_id: object, kind: str, ts: object, value: object
) -> ResponseRecord:
    return ResponseRecord(
        response_id=f"simulate:{contact_id}:{kind}",
        decision_id=str(contact_id),
        customer_id=int(customer_id),  # type: ignore[call-overload]
        offer_id=str(offer_id),
        response_type=kind,
        ts=pd.Timestamp(ts).to_pydatetime(),  # type: ignore[arg-type]
        value=None if value is None or pd.isna(value) else float(value),  # type: ignore[arg-type]
    )


def _contact(decision: Decision) -> dict[str, object] | None:
    """The decision as a contact (sent or held out), or None when nothing was decided."""
    chosen = decision.chosen
    if chosen is not None:
        return {
            "contact_id": decision.decision_id,
            "customer_id": decision.request.customer_id,
            "offer_id": chosen.offer_id,
            "channel": chosen.channel,
            "is_holdout": False,
            "action_probability": chosen.action_probability,
        }
    if decision.arm == "control":
        held = next(c for c in decision.candidates if c.removed_by == "control")
        return {
            "contact_id": decision.decision_id,
            "customer_id": decision.request.customer_id,
            "offer_id": held.offer_id,
            "channel": held.channel,
            "is_holdout": True,
            "action_probability": held.action_probability or np.nan,
        }
    return None
