"""Stream: events in real time — validated, counted into live features, matched to triggers.

Events (transactions, logins, page views, searches, failed transfers, responses) arrive on an
event bus (:mod:`qianmian.stream.bus`: in-process by default, Redis Streams in production) or
through ``POST /v1/events``; a consumer validates each one (bad ones go to the dead letters
with the reason), updates the customer's online features, evaluates the triggers
(:mod:`qianmian.stream.triggers`) and asks the decision engine for the trigger's offer, then
acknowledges. Delivery is at least once; idempotency keys make a redelivered event change
nothing and never send a second offer.
"""
