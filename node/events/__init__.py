"""Events for the platform: every add, retract or dispute of any log recorded as JSON
(`recorder`; its HTTP feed is node/http/events_api.py), kept in the outbox (`outbox`,
`outbox_schema`) and POSTed to the platform's webhook until acknowledged (`webhooks`).

May import: `node.core` and everything below it.
"""
