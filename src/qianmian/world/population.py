"""Customers of the simulated bank: demographics, consents, and their hidden traits.

Observable attributes follow published shapes of Chinese card portfolios: card holders are mostly
25-45; income rises with city tier, education and occupation and peaks in the mid-forties; credit
scores track income and age; younger and wealthier customers tolerate more investment risk.
Hidden traits (engagement, persuadability type, channel affinity, fatigue and complaint
propensity, spending rate and category tastes) drive the ground truth and are never written to
the bank's tables; several of them depend on observables, so that models have real signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from qianmian.data.schema.vocab import (
    CONTACT_CHANNELS,
    EDUCATION_LEVELS,
    OCCUPATIONS,
    REGISTRATION_CHANNELS,
)
from qianmian.world.calendar import CATEGORY_NAMES
from qianmian.world.geography import CITIES, city_weights

__all__ = ["PERSUASION_TYPES", "Population", "draw_population"]

PERSUASION_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
CHANNELS = CONTACT_CHANNELS.values

_AGE_BANDS = np.array([18, 23, 28, 33, 38, 43, 48, 53, 58, 63, 68, 76])
_AGE_SHARE = np.array([6, 13, 16, 15, 13, 11, 9, 7, 5, 3, 2], dtype=float)
_TIER_INCOME = {"一线": 0.45, "新一线": 0.25, "二线": 0.1, "三线": -0.05, "四线及以下": -0.2}
_OCC_INCOME = {
    "企业白领": 0.1,
    "公务员": 0.15,
    "专业人士": 0.4,
    "教师": 0.05,
    "企业主": 0.65,
    "个体工商户": 0.2,
    "服务业": -0.25,
    "工人": -0.2,
    "自由职业": 0.0,
    "学生": -1.3,
    "退休": -0.35,
    "无业": -1.0,
}
_EDU_INCOME = (0.0, 0.1, 0.3, 0.55)
# Base taste (Dirichlet concentration) per category, before demographic tilts.
_TASTE = {
    "餐饮": 6.0,
    "超市": 4.0,
    "电商": 5.0,
    "出行": 3.0,
    "加油": 1.5,
    "旅游": 0.6,
    "酒店": 0.5,
    "航空": 0.4,
    "家装": 0.25,
    "家电数码": 0.8,
    "服饰": 1.5,
    "母婴": 0.3,
    "教育": 0.4,
    "医疗": 0.8,
    "娱乐": 1.5,
    "珠宝": 0.15,
    "汽车": 0.15,
}


@dataclass
class Population:
    """Column arrays for ``n`` customers (observable, then hidden)."""

    customer_id: np.ndarray
    gender: np.ndarray
    age: np.ndarray
    birth_date: np.ndarray
    city_index: np.ndarray
    education: np.ndarray
    occupation: np.ndarray
    marital_status: np.ndarray
    children: np.ndarray
    monthly_income: np.ndarray
    credit_score: np.ndarray
    risk_tolerance: np.ndarray  # 1..5 (C1..C5)
    registration_channel: np.ndarray
    signup_date: np.ndarray
    consents: dict[str, np.ndarray]
    marketing_opt_out: np.ndarray
    personalisation_opt_out: np.ndarray
    # hidden
    engagement: np.ndarray
    app_user: np.ndarray
    app_rate: np.ndarray  # sessions per month
    spend_rate: np.ndarray  # transactions per month
    trend: np.ndarray  # log growth of activity over the window
    taste: np.ndarray  # (n, n_categories) category shares
    has_car: np.ndarray
    persuasion_type: np.ndarray  # index into PERSUASION_TYPES
    persuadability: np.ndarray  # treatment-effect scale (negative: sleeping dog)
    affinity: np.ndarray  # (n, n_channels) in [0, 1]
    fatigue: np.ndarray  # fatigue sensitivity
    complaint: np.ndarray  # complaint log-odds shift
    revolver: np.ndarray  # carries a balance month to month
    wealth_appetite: np.ndarray

    @property
    def n(self) -> int:
        return len(self.customer_id)


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return (u > cdf).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_population(
    rng: np.random.Generator, first_id: int, n: int, start: date, end: date
) -> Population:
    """Draw ``n`` customers with ids ``first_id .. first_id + n - 1``."""
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    ref = np.datetime64(end, "D")

    band = rng.choice(len(_AGE_SHARE), size=n, p=_AGE_SHARE / _AGE_SHARE.sum())
    age = rng.integers(_AGE_BANDS[band], _AGE_BANDS[band + 1])
    birth = ref - (np.ceil(age * 365.25).astype(np.int64) + rng.integers(1, 365, n)).astype(
        "timedelta64[D]"
    )
    gender = np.where(rng.random(n) < 0.52, "M", "F")

    city = rng.choice(len(CITIES), size=n, p=city_weights())
    tier = np.array([c.tier for c in CITIES])[city]

    # Education: younger and bigger-city customers are more educated.
    edu_logit = (
        0.6
        - 0.025 * (age - 35)
        + np.select([tier == "一线", tier == "新一线", tier == "二线"], [0.8, 0.5, 0.2], -0.2)
    )
    edu_latent = edu_logit + rng.logistic(size=n)
    education = np.digitize(edu_latent, [-0.3, 0.9, 2.6])  # 0..3

    # Occupation: students and retirees by age, others by education.
    occ_names = np.array(OCCUPATIONS.values)
    base = np.tile(np.array([5, 1.2, 1.0, 0.8, 0.5, 1.2, 2.0, 2.0, 1.2, 0.0, 0.0, 0.35]), (n, 1))
    base[:, 0] *= 1 + 0.6 * education  # office worker
    base[:, 2] *= 0.3 + 0.9 * education  # professional
    base[:, 4] *= 0.5 + 0.5 * education  # business owner
    base[:, 6] *= 1.6 - 0.4 * education  # service
    base[:, 7] *= 1.8 - 0.55 * education  # manual
    base[:, 9] = np.where(age < 23, 6.0, np.where(age < 26, 0.5, 0.0))
    retire_age = np.where(gender == "M", 60, 55)
    base[:, 10] = np.where(age >= retire_age, 40.0, 0.0)
    occupation = occ_names[_pick(rng, base / base.sum(axis=1, keepdims=True))]

    p_married = _sigmoid((age - 29) / 3.0) * 0.92
    u = rng.random(n)
    marital = np.where(u < p_married, "已婚", "未婚")
    marital = np.where(
        (marital == "已婚") & (rng.random(n) < 0.06 + 0.002 * (age - 30)),
        np.where(age > 62, "丧偶", "离异"),
        marital,
    )
    lam = np.clip((age - 24) / 10.0, 0, 1.6) * (marital != "未婚")
    children = np.minimum(rng.poisson(lam), 4)

    occ_eff = np.vectorize(_OCC_INCOME.get)(occupation)
    log_income = (
        np.log(6500)
        + np.vectorize(_TIER_INCOME.get)(tier)
        + occ_eff
        + np.asarray(_EDU_INCOME)[education]
        - 0.0007 * (age - 45) ** 2
        + rng.normal(0, 0.42, n)
    )
    income = np.round(np.exp(log_income), -2).clip(1500, 800_000)

    z_inc = (log_income - np.log(7000)) / 0.6
    score = np.clip(
        np.round(640 + 45 * z_inc + 1.2 * np.clip(age - 22, 0, 30) + rng.normal(0, 55, n)), 300, 850
    ).astype(np.int64)

    risk_latent = -0.035 * (age - 40) + 0.45 * z_inc + rng.normal(0, 1.0, n)
    risk = np.digitize(risk_latent, [-1.3, -0.35, 0.5, 1.4]) + 1  # 1..5

    reg_p = np.column_stack(
        [
            0.25 + 0.02 * np.clip(age - 30, 0, 30),  # branch
            np.clip(1.6 - 0.03 * age, 0.2, None),  # app
            np.full(n, 0.35),  # online
            np.full(n, 0.2),  # partner
            np.full(n, 0.25),  # direct sales
        ]
    )
    registration = np.array(REGISTRATION_CHANNELS.values)[
        _pick(rng, reg_p / reg_p.sum(axis=1, keepdims=True))
    ]

    # Tenure: most customers joined years ago; ~8% join during the simulated window.
    window_days = int((np.datetime64(end, "D") - np.datetime64(start, "D")).astype(int))
    new_in_window = rng.random(n) < 0.08
    max_tenure = np.clip((age - 18) * 365, 30, 15 * 365)
    tenure_days = np.minimum(rng.exponential(4.5 * 365, n), max_tenure).astype(np.int64) + 1
    signup = np.where(
        new_in_window,
        np.datetime64(start, "D")
        + rng.integers(0, max(window_days - 30, 1), n).astype("timedelta64[D]"),
        np.datetime64(start, "D") - tenure_days.astype("timedelta64[D]"),
    )

    app_user = rng.random(n) < np.clip(1.15 - 0.011 * age, 0.3, 0.95)
    consents = {
        "sms": rng.random(n) < 0.86,
        "app_push": app_user & (rng.random(n) < 0.72),
        "email": rng.random(n) < 0.48,
        "call_center": rng.random(n) < 0.42,
        "wechat": rng.random(n) < np.clip(0.85 - 0.006 * age, 0.3, 0.8),
    }
    opt_out = rng.random(n) < 0.03
    personal_out = rng.random(n) < 0.04

    # ---- hidden traits ---------------------------------------------------------------------
    engagement = rng.normal(0, 1, n) + 0.25 * app_user
    app_rate = np.where(
        app_user,
        np.exp(rng.normal(np.log(1.7), 0.7, n) + 0.25 * engagement - 0.008 * (age - 35)),
        0.0,
    )
    dormant = rng.random(n) < 0.10
    spend_rate = np.exp(rng.normal(np.log(2.7), 0.6, n) + 0.25 * z_inc + 0.15 * engagement)
    spend_rate = np.where(dormant, spend_rate * 0.06, spend_rate)
    trend = np.where(
        rng.random(n) < 0.12,
        rng.uniform(-2.5, -0.7, n),  # declining
        rng.normal(0.0, 0.2, n),
    )
    has_car = rng.random(n) < _sigmoid(-1.0 + 0.8 * z_inc + 0.04 * (age - 25).clip(0, 20))

    alpha = np.tile(np.array([_TASTE[c] for c in CATEGORY_NAMES]), (n, 1))
    young = age < 32
    idx = {c: k for k, c in enumerate(CATEGORY_NAMES)}
    alpha[:, idx["电商"]] *= np.where(young, 1.7, np.where(age > 55, 0.5, 1.0))
    alpha[:, idx["娱乐"]] *= np.where(young, 1.8, 0.8)
    alpha[:, idx["出行"]] *= np.where(young, 1.4, 1.0)
    alpha[:, idx["超市"]] *= np.where(age > 45, 1.6, 1.0)
    alpha[:, idx["医疗"]] *= np.where(age > 50, 2.5, 1.0)
    alpha[:, idx["加油"]] *= np.where(has_car, 3.0, 0.1)
    alpha[:, idx["母婴"]] *= np.where(children > 0, 4.0, 0.3)
    alpha[:, idx["教育"]] *= np.where(children > 0, 3.0, 0.5)
    for c in ("旅游", "酒店", "航空"):
        alpha[:, idx[c]] *= np.exp(0.5 * z_inc)
    alpha[:, idx["餐饮"]] *= np.where(tier == "一线", 1.3, 1.0)
    taste = rng.gamma(alpha * 2.0) + 1e-9
    taste /= taste.sum(axis=1, keepdims=True)

    # Persuasion type: observable tilts plus noise, so uplift models can learn it.
    logits = (
        np.column_stack(
            [
                -0.75 + 0.5 * app_user + 0.3 * (age < 45) + 0.2 * engagement,  # persuadable
                -0.35 + 0.6 * engagement + 0.3 * z_inc,  # sure thing
                0.45 - 0.4 * engagement + 0.4 * dormant,  # lost cause
                -0.75 + 0.7 * (age > 55) + 0.4 * (z_inc > 1.0) - 0.3 * app_user,  # sleeping dog
            ]
        )
        + rng.gumbel(size=(n, 4)) * 0.8
    )
    ptype = logits.argmax(axis=1)
    strength = rng.lognormal(0, 0.35, n)
    persuadability = np.select(
        [ptype == 0, ptype == 1, ptype == 2],
        [1.35 * strength, 0.15 * strength, 0.05 * strength],
        -0.9 * strength,
    )
    engagement = engagement + np.select([ptype == 1, ptype == 2], [1.4, -1.2], 0.0)

    base_aff = {
        "app_push": 0.55,
        "in_app": 0.6,
        "sms": 0.45,
        "email": 0.18,
        "call_center": 0.35,
        "wechat": 0.4,
    }
    aff = np.empty((n, len(CHANNELS)))
    for j, ch in enumerate(CHANNELS):
        tilt = {
            "app_push": 0.9 * app_user - 0.02 * (age - 35),
            "in_app": 1.2 * app_user - 0.01 * (age - 35),
            "sms": 0.015 * (age - 35),
            "email": 0.3 * (education >= 2),
            "call_center": 0.02 * (age - 40),
            "wechat": -0.015 * (age - 35),
        }[ch]
        logit = np.log(base_aff[ch] / (1 - base_aff[ch])) + tilt + rng.normal(0, 0.6, n)
        aff[:, j] = _sigmoid(logit) * (app_user if ch in ("app_push", "in_app") else 1.0)
    fatigue = rng.lognormal(np.log(0.35), 0.5, n) * np.where(age > 50, 1.4, 1.0)
    complaint = rng.normal(0, 0.6, n) + 0.012 * (age - 40) + np.where(ptype == 3, 1.2, 0.0)
    revolver = rng.random(n) < _sigmoid(-1.3 - 0.5 * z_inc + 0.3 * young)
    wealth_appetite = 0.6 * z_inc + 0.02 * (age - 35).clip(-10, 25) + rng.normal(0, 0.6, n)

    return Population(
        customer_id=ids,
        gender=gender,
        age=age,
        birth_date=birth,
        city_index=city,
        education=np.array(EDUCATION_LEVELS.values)[education],
        occupation=occupation,
        marital_status=marital,
        children=children,
        monthly_income=income,
        credit_score=score,
        risk_tolerance=risk,
        registration_channel=registration,
        signup_date=signup,
        consents=consents,
        marketing_opt_out=opt_out,
        personalisation_opt_out=personal_out,
        engagement=engagement,
        app_user=app_user,
        app_rate=app_rate,
        spend_rate=spend_rate,
        trend=trend,
        taste=taste,
        has_car=has_car,
        persuasion_type=ptype,
        persuadability=persuadability,
        affinity=aff,
        fatigue=fatigue,
        complaint=complaint,
        revolver=revolver,
        wealth_appetite=wealth_appetite,
    )
