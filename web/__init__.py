"""The web app's server side: auth, sessions, live push, API and the write road's first step.

Nothing here talks to a device: values come from Redis (tag_store), operator
actions go back through Redis to the data sources and the alarm engine.
"""
