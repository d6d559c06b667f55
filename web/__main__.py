"""python -m web --config FILE [--host --port]: run the web app alone.

HTTPS when web.tls_cert / web.tls_key are set, X-Forwarded-* believed from web.trusted_proxies
only (web/transport.py, docs/transport.md).
"""
from app import main

raise SystemExit(main())
