"""Serve an ASGI app with the uvicorn settings of `python -m app serve` (app/cli.py).

    python -m bench.serve bench.bare_app:app --port 8001 --workers 2

For the baselines and experiments, so they differ from the service only in the app.
The database is migrated already and DATABASE_URL is set by the runner.
"""

from __future__ import annotations

import argparse


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
