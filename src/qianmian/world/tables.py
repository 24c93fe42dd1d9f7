"""Turn the simulator's arrays into Arrow tables shaped by the data dictionary."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from qianmian.data.schema import table
from qianmian.data.schema.vocab import APP_EVENT_TYPES, APP_PAGES, TXN_CHANNELS
from qianmian.world.app_activity import QUERY_VOCAB, AppEvents
from qianmian.world.calendar import CATEGORY_NAMES
from qianmian.world.geography import CITIES
from qianmian.world.holdings import Holdings, Loans, Statements
from qianmian.world.life_events import EVENT_TYPES, LifeEvents
from qianmian.world.merchants import Merchants
from qianmian.world.population import CHANNELS, Population
from qianmian.world.spending import Transactions

__all__ = [
    "app_events_table",
    "customers_table",
    "holdings_table",
    "life_events_table",
    "loans_table",
    "statements_table",
    "traits_table",
    "transactions_table",
]

_CITY_NAMES = pa.array([c.name for c in CITIES])
_CAT = {c: k for k, c in enumerate(CATEGORY_NAMES)}


def _labels(codes: np.ndarray, vocab: pa.Array | list[str]) -> pa.Array:
    """Codes (−1 = missing) to a string column, through a dictionary (no Python loop)."""
    codes = np.asarray(codes)
    dictionary = vocab if isinstance(vocab, pa.Array) else pa.array(list(vocab))
    indices = pa.array(codes.clip(0).astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode()


def _seq_ids(customer_id: np.ndarray, seq: np.ndarray, width: int) -> np.ndarray:
    return customer_id.astype(np.int64) * width + seq.astype(np.int64)


def _within(customer_index: np.ndarray) -> np.ndarray:
    """1-based rank of each row within its customer (rows sorted by customer)."""
    return np.arange(len(customer_index)) - np.searchsorted(customer_index, customer_index) + 1


def customers_table(pop: Population, names: np.ndarray, rng: np.random.Generator) -> pa.Table:
    city = pop.city_index
    branch_count = np.array([max(2, round(c.weight * 12)) for c in CITIES])
    branch_no = (pop.customer_id * 7919) % branch_count[city] + 1
    codes = np.array([c.code for c in CITIES], dtype=object)[city]
    branch = np.char.add(codes.astype(str), np.char.zfill(branch_no.astype(str), 3))
    cols = {
        "customer_id": pop.customer_id,
        "name": names,
        "gender": pop.gender,
        "birth_date": pop.birth_date,
        "occupation": pop.occupation,
        "education": pop.education,
        "marital_status": pop.marital_status,
        "children": pop.children,
        "city": _labels(city, _CITY_NAMES),
        "city_tier": _labels(city, [c.tier for c in CITIES]),
        "monthly_income": pop.monthly_income,
        "credit_score": pop.credit_score,
        "risk_tolerance": np.char.add("C", pop.risk_tolerance.astype(str)),
        "registration_channel": pop.registration_channel,
        "branch_id": branch,
        "signup_date": pop.signup_date,
        **{f"consent_{k}": v for k, v in pop.consents.items()},
        "marketing_opt_out": pop.marketing_opt_out,
        "personalisation_opt_out": pop.personalisation_opt_out,
    }
    return table("customers").conform(pa.table(cols))


def transactions_table(pop: Population, tx: Transactions, merchants: Merchants) -> pa.Table:
    cid = pop.customer_id[tx.customer_index]
    return table("transactions").conform(
        pa.table(
            {
                "txn_id": _seq_ids(cid, _within(tx.customer_index), 100_000),
                "customer_id": cid,
                "ts": tx.ts,
                "amount": tx.amount,
                "category": _labels(tx.category, list(CATEGORY_NAMES)),
                "mcc": _labels(merchants.mcc_index[tx.merchant], list(merchants.mcc_values)),
                "merchant_id": tx.merchant + 1,
                "channel": _labels(tx.channel, list(TXN_CHANNELS.values)),
                "city": _labels(tx.city, _CITY_NAMES),
            }
        )
    )


def app_events_table(pop: Population, ev: AppEvents) -> pa.Table:
    cid = pop.customer_id[ev.customer_index]
    return table("app_events").conform(
        pa.table(
            {
                "event_id": _seq_ids(cid, _within(ev.customer_index), 100_000),
                "customer_id": cid,
                "ts": ev.ts,
                "event_type": _labels(ev.event_type, list(APP_EVENT_TYPES.values)),
                "page": _labels(ev.page, list(APP_PAGES.values)),
                "search_query": _labels(ev.query, list(QUERY_VOCAB)),
                "session_id": _seq_ids(cid, ev.session, 10_000),
            }
        )
    )


def holdings_table(pop: Population, h: Holdings) -> pa.Table:
    cid = pop.customer_id[h.customer_index]
    return table("holdings").conform(
        pa.table(
            {
                "holding_id": _seq_ids(cid, h.seq, 100),
                "customer_id": cid,
                "product_id": h.product_id.astype(str),
                "opened_date": h.opened_date,
                "status": h.status.astype(str),
                "balance": pa.array(h.balance, from_pandas=True),
                "credit_limit": pa.array(h.credit_limit, from_pandas=True),
            }
        )
    )


def loans_table(pop: Population, ln: Loans) -> pa.Table:
    cid = pop.customer_id[ln.customer_index]
    return table("loans").conform(
        pa.table(
            {
                "loan_id": _seq_ids(cid, ln.seq, 1_000),
                "customer_id": cid,
                "product_id": ln.product_id.astype(str),
                "principal": ln.principal,
                "interest_rate": ln.interest_rate,
                "term_months": ln.term_months,
                "start_date": ln.start_date,
                "status": ln.status.astype(str),
                "missed_payments": ln.missed_payments,
                "purpose": ln.purpose.astype(str),
            }
        )
    )


def statements_table(pop: Population, st: Statements) -> pa.Table:
    return table("statements").conform(
        pa.table(
            {
                "customer_id": pop.customer_id[st.customer_index],
                "statement_month": st.month,
                "credit_limit": st.credit_limit,
                "statement_balance": st.statement_balance,
                "paid_amount": st.paid_amount,
                "revolving_balance": st.revolving_balance,
                "min_payment_missed": st.min_payment_missed,
            }
        )
    )


def traits_table(pop: Population, st: Statements, ln: Loans) -> pa.Table:
    """The hidden truth per customer, plus the observables the oracle needs."""
    util_sum = np.bincount(
        st.customer_index,
        weights=st.statement_balance / np.maximum(st.credit_limit, 1.0),
        minlength=pop.n,
    )
    util = util_sum / np.maximum(np.bincount(st.customer_index, minlength=pop.n), 1)
    had_loan = (
        np.bincount(
            ln.customer_index[np.char.startswith(ln.product_id.astype(str), "LN")], minlength=pop.n
        )
        > 0
    )
    t = pop.taste
    cols = {
        "customer_id": pop.customer_id,
        "age": pop.age,
        "monthly_income": pop.monthly_income,
        "credit_score": pop.credit_score,
        "risk_tolerance_level": pop.risk_tolerance,
        "children": pop.children,
        "personalisation_opt_out": pop.personalisation_opt_out,
        "engagement": pop.engagement,
        "persuasion_type": pop.persuasion_type.astype(np.int8),
        "persuadability": pop.persuadability,
        "fatigue": pop.fatigue,
        "complaint": pop.complaint,
        "app_user": pop.app_user,
        "app_rate": pop.app_rate,
        "spend_rate": pop.spend_rate,
        "trend": pop.trend,
        "has_car": pop.has_car,
        "revolver": pop.revolver,
        "wealth_appetite": pop.wealth_appetite,
        "utilisation": util,
        "had_loan": had_loan,
        "travel_share": t[:, [_CAT["旅游"], _CAT["航空"], _CAT["酒店"]]].sum(axis=1),
        "ecommerce_share": t[:, _CAT["电商"]],
        "dining_share": t[:, _CAT["餐饮"]],
        "big_share": t[:, [_CAT["家装"], _CAT["家电数码"]]].sum(axis=1),
        **{f"affinity_{ch}": pop.affinity[:, j] for j, ch in enumerate(CHANNELS)},
    }
    return pa.table(cols)


def life_events_table(pop: Population, ev: LifeEvents) -> pa.Table:
    return pa.table(
        {
            "customer_id": pop.customer_id[ev.customer_index],
            "event_type": ev.event_type.astype(np.int8),
            "event_name": _labels(ev.event_type, list(EVENT_TYPES)),
            "day": ev.day,
            "duration": ev.duration,
            "destination": _labels(ev.destination, _CITY_NAMES),
            "scale": ev.scale,
        }
    )
