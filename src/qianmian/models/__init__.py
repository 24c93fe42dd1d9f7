"""Models: training sets, propensity, churn, LTV, need forecasting, recommendation, uplift; registry, explanations and fairness."""
