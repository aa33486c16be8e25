"""``python -m wandb_mirror.server --db PATH [--host H] [--port N]``: serve a store.

Prints the server URL as the first line of stdout (flushed), then serves until SIGINT/SIGTERM.
Test-only fault injection: ``--faults '{"p_429": 0.2}'`` (or env ``WANDB_MIRROR_SERVE_FAULTS``)
and ``--test-mode`` enable the ``/_mirror/*`` endpoints.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from ..errors import ConfigError
from . import ServeOptions, serve_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wandb_mirror.server", description=__doc__)
    parser.add_argument("--db", required=True, help="store path or SQLAlchemy URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", action="append", dest="api_keys",
                        help="accepted API key (repeatable); required off loopback")
    parser.add_argument("--faults", default=os.environ.get("WANDB_MIRROR_SERVE_FAULTS"),
                        help="JSON fault settings (test only)")
    parser.add_argument("--test-mode", action="store_true", help="expose /_mirror/* endpoints")
    parser.add_argument("--export-parquet", action="store_true",
                        help="offer finished runs' history as parquet")
    parser.add_argument("--viewer-entity", default=None)
    parser.add_argument("--writable", action="store_true",
                        help="answer write mutations (run.update(), uploads...) by changing "
                             "the store; read-only by default")
    parser.add_argument("--workers", type=int, default=1,
                        help="serving processes sharing the socket (0: one per CPU)")
    args = parser.parse_args(argv)

    def ready(server: Any) -> None:
        print(server.url, flush=True)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    faults = json.loads(args.faults) if args.faults else None
    try:
        serve_forever(args.db, args.host, args.port, api_keys=args.api_keys, faults=faults,
                      options=ServeOptions(viewer_entity=args.viewer_entity,
                                           export_parquet=args.export_parquet,
                                           writable=args.writable),
                      test_mode=True if args.test_mode else None, ready=ready,
                      workers=args.workers)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
