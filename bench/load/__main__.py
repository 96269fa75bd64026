"""``python -m bench.load``: the bench, or one of its child processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from bench import load
from bench.load.api_clients import run_api_clients
from bench.load.clients import run_clients
from bench.load.report import report
from bench.load.run import run


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=load.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("clients", help="(internal) a client process")
    p.add_argument("--spec", required=True)
    p = sub.add_parser("api-clients", help="(internal) the API client process")
    p.add_argument("--url", required=True)
    p.add_argument("--spec", required=True)
    parser.add_argument("--rooms", type=int, default=2, help="live rooms (default 2)")
    parser.add_argument(
        "--nodes", type=int, default=1, help="SFU nodes, rooms placed by the API (default 1; `spaces up`: one per CPU)"
    )
    parser.add_argument("--listeners", type=int, default=10, help="listeners per room (default 10)")
    parser.add_argument("--minutes", type=float, default=2.0, help="live window, minutes (default 2)")
    parser.add_argument("--api-rate", type=float, default=20.0, help="API requests per second (default 20)")
    parser.add_argument("--seed", type=int, default=2, help="ready spaces to replay and search (default 2)")
    parser.add_argument("--backlog", type=int, default=2,
                        help="spaces enqueued for processing during the window (default 2)")  # fmt: skip
    parser.add_argument("--backlog-minutes", type=float, default=1.0, help="length of each, minutes (default 1)")
    parser.add_argument("--per-process", type=int, default=100, help="listeners per client process (default 100)")
    parser.add_argument("--speakers-per-process", type=int, default=8)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, blobs, catalog)")
    args = parser.parse_args()
    if args.cmd == "clients":
        asyncio.run(run_clients(json.loads(Path(args.spec).read_text())))
        return
    if args.cmd == "api-clients":
        asyncio.run(run_api_clients(args.url, json.loads(Path(args.spec).read_text())))
        return
    result = run(args)
    print()
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
