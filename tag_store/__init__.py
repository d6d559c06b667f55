"""Redis as the live bus: latest values, recent history, change feed, write requests.

The key schema is documented in docs/redis-keys.md; keys.py is its single source in code.
"""
