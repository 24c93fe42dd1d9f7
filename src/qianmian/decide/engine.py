"""The decision engine: one request in, one logged decision out, within the time budget.

For a request the engine reads the customer's contact state and live features, expands the
catalogue into candidates (offer × treatment × campaign on the allowed channels), removes them
stage by stage (:mod:`~qianmian.decide.filters`, :mod:`~qianmian.decide.contact_policy`),
scores the survivors (:mod:`~qianmian.decide.scoring`), ranks them by expected incremental
value with Thompson-sampling exploration (:mod:`~qianmian.decide.bandit`), holds out the
campaign's control group (:mod:`~qianmian.decide.control`), reserves caps, budgets and capacity
atomically (:mod:`~qianmian.decide.limits`), writes copy and reasons, and logs the decision.

Degrading, not failing:

* a model that is missing, raises, is too slow or is behind an open circuit breaker → the
  catalogue's priority order decides, flagged ``fallback`` with the reason;
* the decision state (Redis) unreachable → consent and opt-out cannot be read, nor caps
  reserved, so no marketing offer is made (fail closed); mandatory service messages still go;
* live features unreachable → rules that need them fail closed, flagged ``fallback``.

A customer who refuses personalised marketing (PIPL Art. 24) gets only non-personalised offers,
ranked without their personal data (the offers' prior rates, not the models).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.decide.arbitration import ArbitrationSettings
from qianmian.decide.bandit_stats import CachedBanditStats
from qianmian.decide.catalogue_store import CatalogueRepository
from qianmian.decide.contact_policy import contact_reason
from qianmian.decide.copy import CopyWriter
from qianmian.decide.decision import Candidate, Decision, DecisionRequest
from qianmian.decide.engine_rank import Ranked, rank_candidates
from qianmian.decide.feedback import apply_response, record_preferences
from qianmian.decide.filters import applicability_reason, eligibility_reason, suitability_reason
from qianmian.decide.outage import FEATURES, STATE, Outages
from qianmian.decide.profile_view import customer_profile
from qianmian.decide.rule_fields import TAG_PREFIX, context_row, tag_row
from qianmian.errors import ConfigError, NotFoundError, StoreError, ValidationError

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.decide.catalogue_schema import CampaignSpec, OfferSpec, TreatmentSpec
    from qianmian.decide.log.base import DecisionLog, ResponseRecord
    from qianmian.decide.scoring import CandidateScorer
    from qianmian.decide.state.base import CustomerContactState, DecisionState
    from qianmian.features.online.base import OnlineFeatureStore
    from qianmian.features.tags import TagLibrary
    from qianmian.store.base import Store

__all__ = ["DecisionEngine"]

logger = logging.getLogger(__name__)
_EXPIRY_SWEEP_EVERY = 1_000  # decisions between sweeps of timed-out reservations


@dataclass(frozen=True, slots=True)
class _Option:
    """One catalogue entry a request may turn into a candidate."""

    offer: OfferSpec
    campaign: CampaignSpec | None
    treatment: TreatmentSpec


class DecisionEngine:
    """Answers decision requests against one catalogue, state, log and feature store.

    Build it with :func:`qianmian.decide.engine_build.build_engine` (from settings) or pass the
    parts in. ``scorer`` is None when no model could be loaded; ``scorer_reason`` then says why,
    and every decision is made by the rules, flagged ``fallback``.
    """

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        state: DecisionState,
        log: DecisionLog,
        features: OnlineFeatureStore,
        scorer: CandidateScorer | None = None,
        scorer_reason: str | None = None,
        tags: TagLibrary | None = None,
        arbitration: ArbitrationSettings | None = None,
        exploration: bool = True,
        language: str = "zh",
        bank_name: str = "千面银行",
        seed: int | None = None,
        store: Store | None = None,
        bandit_cache_seconds: float = 1.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.bandit_stats = CachedBanditStats(bandit_cache_seconds)
        self.outages = Outages(retry_seconds)
        self.state = state
        self.log = log
        self.features = features
        self.scorer = scorer
        self.scorer_reason = scorer_reason if scorer is None else None
        self.tags = tags
        self.arbitration = arbitration or ArbitrationSettings()
        self.exploration = exploration
        self.language = language
        self.copy = CopyWriter(bank_name=bank_name, language=language)
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()
        self._decisions = 0
        self.catalogue = catalogue

    # -- the catalogue -------------------------------------------------------------------------

    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    @catalogue.setter
    def catalogue(self, catalogue: Catalogue) -> None:
        by_channel: dict[str, list[_Option]] = {c: [] for c in CONTACT_CHANNELS.values}
        for offer in catalogue.offers.values():
            campaigns = catalogue.campaigns_of(offer.id) or (None,)
            for campaign in campaigns:
                for treatment in offer.treatments:
                    by_channel[treatment.channel].append(_Option(offer, campaign, treatment))
        self._options = by_channel
        self._tag_names = tuple(f for f in catalogue.fields_used if f.startswith(TAG_PREFIX))
        self._catalogue = catalogue

    def set_catalogue(self, catalogue: Catalogue, *, actor: str, note: str = "") -> int:
        """Save ``catalogue`` as a new revision in the store and decide with it from now on."""
        if self.store is None:
            raise ConfigError(
                "This engine has no store to save catalogue revisions in; build it with a store."
            )
        revision = CatalogueRepository(self.store).save(catalogue, author=actor, note=note)
        self.catalogue = catalogue
        return revision

    # -- feedback and customers ----------------------------------------------------------------

    def record_response(self, response: ResponseRecord) -> bool:
        """Store a response and act on it once (see :mod:`qianmian.decide.feedback`)."""
        return apply_response(
            response,
            state=self.state,
            log=self.log,
            catalogue=self.catalogue,
            features=self.features,
            learned=self.bandit_stats.forget,
        )

    def set_preferences(
        self,
        customer_id: int,
        *,
        consents: dict[str, bool] | None = None,
        marketing_opt_out: bool | None = None,
        personalisation_opt_out: bool | None = None,
        actor: str = "system",
    ) -> CustomerContactState:
        """Change a customer's consents or opt-outs: stored first, then live at once."""
        for channel in consents or {}:
            if channel not in self.catalogue.channels:
                raise ValidationError(
                    f"consents names the channel '{channel}', which is not one of "
                    f"{', '.join(self.catalogue.channels)}."
                )
        return record_preferences(
            self.store,
            self.state,
            customer_id,
            consents=consents,
            marketing_opt_out=marketing_opt_out,
            personalisation_opt_out=personalisation_opt_out,
            actor=actor,
        )

    def customer_profile(self, customer_id: int) -> dict[str, Any]:
        """The customer as decisions see them (see :func:`qianmian.decide.profile_view.profile`)."""
        return customer_profile(self, customer_id)

    def health(self) -> dict[str, str]:
        """Each part's status: "ok", or why it is not."""
        out: dict[str, str] = {}
        try:
            self.state.ping()
            out["decision_state"] = "ok"
        except StoreError as e:
            out["decision_state"] = str(e)
        try:
            as_of = self.features.as_of()
            out["features"] = "ok" if as_of is not None else "no feature snapshot loaded"
        except StoreError as e:
            out["features"] = str(e)
        out["model"] = "ok" if self.scorer is not None else (self.scorer_reason or "no model")
        out["catalogue"] = "ok"
        return out

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, request: DecisionRequest) -> Decision:
        """Decide for one request; see the module docstring for what happens when parts fail.

        Raises
        ------
        NotFoundError
            Neither the decision state nor the feature store knows the customer.
        ValidationError
            The request names an unknown channel or campaign, or asks for no offers.
        """
        started = time.perf_counter()
        self._check(request)
        problems: list[str] = []
        contact, contact_problem = self._contact(request.customer_id)
        features, feature_ref, feature_problem = self._features(request.customer_id)
        if contact is None and features is None and not contact_problem and not feature_problem:
            raise NotFoundError(
                f"Customer {request.customer_id} is unknown to the decision state and the "
                "feature store; load customers (qianmian serve loads them at start) or check "
                "the id."
            )
        problems += [p for p in (contact_problem, feature_problem) if p]
        feature_row = features or {}
        row = {**feature_row, **context_row(request)}
        if self._tag_names and self.tags is not None:
            row.update(tag_row(self._tag_names, feature_row, self.tags))
        candidates, options = self._filtered(request, row, contact)
        personal = contact is not None and not contact.personalisation_opt_out
        ranked = rank_candidates(
            self,
            request,
            candidates,
            options,
            feature_row,
            personal=personal,
            problems=problems,
        )
        decision = Decision(
            decision_id=uuid.uuid4().hex,
            request=request,
            offers=ranked.offers,
            candidates=candidates,
            arm=ranked.arm,
            fallback=bool(problems),
            fallback_reason="; ".join(problems) or None,
            model_versions=ranked.model_versions,
            feature_ref=feature_ref,
            catalogue_version=self.catalogue.version,
        )
        decision.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self._record(decision, ranked)
        return decision

    def draw(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(..., rng=...)`` with the engine's generator, one thread at a time."""
        with self._rng_lock:
            return fn(*args, rng=self._rng, **kwargs)

    def _check(self, request: DecisionRequest) -> None:
        if request.customer_id < 1:
            raise ValidationError(
                f"customer_id {request.customer_id} is not a customer id; ids start at 1."
            )
        if request.channel is not None and request.channel not in CONTACT_CHANNELS.values:
            raise ValidationError(
                f"channel '{request.channel}' is not one of {', '.join(CONTACT_CHANNELS.values)}."
            )
        if request.campaign_id is not None and request.campaign_id not in self.catalogue.campaigns:
            raise ValidationError(
                f"campaign_id '{request.campaign_id}' is not in catalogue "
                f"{self.catalogue.version}; known: {', '.join(self.catalogue.campaigns)}."
            )
        unknown = [o for o in request.offer_ids or () if o not in self.catalogue.offers]
        if unknown:
            raise ValidationError(
                f"offer_ids names {', '.join(unknown)}, not in catalogue {self.catalogue.version}."
            )
        if not 1 <= request.max_offers <= 5:
            raise ValidationError(f"max_offers must be between 1 and 5; got {request.max_offers}.")

    def _contact(self, customer_id: int) -> tuple[CustomerContactState | None, str | None]:
        if (down := self.outages.down(STATE)) is not None:
            return None, f"decision state unavailable ({down})"
        try:
            contact = self.state.customer(customer_id)
        except StoreError as e:
            self.outages.failed(STATE, e)
            return None, f"decision state unavailable ({e})"
        self.outages.recovered(STATE)
        return contact, None

    def _features(self, customer_id: int) -> tuple[dict[str, Any] | None, str | None, str | None]:
        if (down := self.outages.down(FEATURES)) is not None:
            return None, None, f"live features unavailable ({down})"
        try:
            vector, as_of = self.features.read(customer_id)
        except StoreError as e:
            self.outages.failed(FEATURES, e)
            return None, None, f"live features unavailable ({e})"
        self.outages.recovered(FEATURES)
        ref = f"online@{as_of:%Y-%m-%dT%H:%M}" if as_of is not None else None
        return vector, ref, None

    def _filtered(
        self,
        request: DecisionRequest,
        row: Mapping[str, Any],
        contact: CustomerContactState | None,
    ) -> tuple[list[Candidate], list[_Option]]:
        """Candidates for the request, each marked by the first stage that removes it."""
        catalogue, lang = self.catalogue, self.language
        channels = [request.channel] if request.channel else list(self._options)
        offer_checks: dict[str, tuple[str | None, str | None]] = {}
        candidates: list[Candidate] = []
        options: list[_Option] = []
        day = request.ts.date()
        for channel in channels:
            for option in self._options[channel]:
                offer, campaign, treatment = option.offer, option.campaign, option.treatment
                if request.campaign_id is not None and (
                    campaign is None or campaign.id != request.campaign_id
                ):
                    continue
                if request.offer_ids is not None and offer.id not in request.offer_ids:
                    continue
                personalised = (
                    treatment.personalised
                    if treatment.personalised is not None
                    else offer.personalised
                )
                cand = Candidate(
                    offer_id=offer.id,
                    treatment_id=treatment.id or f"{offer.id}:{channel}",
                    channel=channel,
                    campaign_id=campaign.id if campaign else None,
                    personalised=personalised,
                    service=offer.service,
                    weight=offer.weight * (campaign.weight if campaign else 1.0),
                )
                if offer.id not in offer_checks:
                    offer_checks[offer.id] = (
                        eligibility_reason(catalogue, offer, row, contact, lang),
                        suitability_reason(catalogue, offer, row, lang),
                    )
                not_eligible, not_suitable = offer_checks[offer.id]
                if not_eligible is not None:
                    cand.remove("eligibility", not_eligible)
                elif (
                    why := applicability_reason(
                        catalogue,
                        offer,
                        campaign,
                        treatment,
                        row,
                        customer_id=request.customer_id,
                        day=day,
                        placement=request.placement,
                        language=lang,
                    )
                ) is not None:
                    cand.remove("applicability", why)
                elif not_suitable is not None:
                    cand.remove("suitability", not_suitable)
                elif (
                    why := contact_reason(
                        catalogue,
                        offer_id=offer.id,
                        channel=channel,
                        personalised=personalised,
                        service=offer.service,
                        contact=contact,
                        ts=request.ts,
                        language=lang,
                    )
                ) is not None:
                    cand.remove("contact_policy", why)
                candidates.append(cand)
                options.append(option)
        return candidates, options

    def _record(self, decision: Decision, ranked: Ranked) -> None:
        try:
            self.log.append(decision)
        except StoreError:
            for reservation in ranked.reservations:  # an unlogged contact must not be made
                self._release(reservation)
            raise
        self._decisions += 1
        if self._decisions % _EXPIRY_SWEEP_EVERY == 0:
            try:
                self.state.release_expired(decision.request.ts)
            except StoreError as e:
                logger.warning("Could not release timed-out reservations: %s", e)

    def _release(self, reservation_id: str) -> None:
        try:
            self.state.release(reservation_id)
        except StoreError as e:
            logger.warning("Could not release reservation %s: %s", reservation_id, e)
