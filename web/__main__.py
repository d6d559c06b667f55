"""python -m web --config FILE [--host --port]: run the web app alone."""
from app import main

raise SystemExit(main())
