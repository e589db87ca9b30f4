"""One mock service in a process of its own: ``python -m leadtocash.child NAME --host H --port P [--bridge-url URL]``.

:class:`leadtocash.processes.ServiceProcesses` starts one of these per mock for ``sandbox up --wire processes``, so
that each service has an interpreter (and interpreter lock) of its own. The protocol with the parent:

- stdin: the :class:`~leadtocash.stack.StackConfig` as one line of JSON (:meth:`StackConfig.to_json`), then
  nothing; the child builds the service from it exactly as :func:`~leadtocash.stack.build_apps` does in one
  process (data folder or memory, seed, the service's own database URL). When stdin reaches its end the
  parent is gone (or asks us to go), and the child stops.
- stdout: one line, :data:`~leadtocash.processes.READY_PREFIX` and then ``{"service", "url", "pid"}`` as JSON, once
  the service accepts connections. Nothing else.
- stderr: whatever goes wrong; the parent shows its tail when the child dies before it is ready.
- SIGTERM or SIGINT: stop serving and exit 0.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import signal
import socket
import sys
import threading
from typing import IO, Any

from leadtocash.logs import configure_from_environment
from leadtocash.processes import READY_PREFIX
from leadtocash.stack import MOCKS, StackConfig, build_apps, live_sync_link
from sandbox.server import ServerGroup, settle_heap


def main(argv: list[str] | None = None, stdin: IO[str] | None = None) -> int:
    """Serve one service until SIGTERM/SIGINT or the end of stdin; the exit code is 0 after a clean stop."""
    parser = argparse.ArgumentParser(prog="python -m leadtocash.child", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=MOCKS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the ready line says which)")
    parser.add_argument("--bridge-url", help="The bridge's origin; live sync is off without it.")
    parser.add_argument(
        "--listen-fd", type=int, help="Accept on this inherited listening socket (one of several workers)."
    )
    args = parser.parse_args(argv)
    stdin = stdin or sys.stdin
    # as `sandbox` does (leadtocash.cli.freeze_at_exit): no full collections while the interpreter shuts down
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    configure_from_environment()  # the parent's --log-level and --log-format; the lines go to stderr

    stopping = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stopping.set()

    # before the (slow) build: a SIGTERM then still ends in a clean exit rather than the default kill
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)

    line = stdin.readline()
    if not line.strip():
        print(f"{args.name}: expected the stack configuration as one JSON line on stdin", file=sys.stderr)
        return 2
    config = StackConfig.from_json(line)
    app = build_apps(config, [args.name])[args.name]
    runtime = app.extensions["sandbox"]
    sender_client = None
    if args.bridge_url:
        # set before serving, so no write that got in can miss the bridge
        sender, sender_client = live_sync_link(args.bridge_url)
        runtime.set_live_sync(sender)
    group = ServerGroup(host=args.host)
    try:
        try:
            listening = None if args.listen_fd is None else socket.socket(fileno=args.listen_fd)
            server = group.start(args.name, app, args.port, listening=listening)
        except OSError as exc:  # the port in use, most often
            print(f"{args.name}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(READY_PREFIX + json.dumps({"service": args.name, "url": server.url, "pid": os.getpid()}), flush=True)
        settle_heap()
        threading.Thread(target=_stop_at_end_of, args=(stdin, stopping), name="stdin-watch", daemon=True).start()
        # a timed wait: the signal handler runs in this thread, between waits
        while not stopping.wait(0.5):
            pass
    finally:
        # no request in flight can commit unsynced: the server stops before live sync does
        group.stop_all()
        runtime.set_live_sync(None)
        if sender_client is not None:
            sender_client.close()
        runtime.db.dispose()
    return 0


def _stop_at_end_of(stream: IO[str], stopping: threading.Event) -> None:
    """Set ``stopping`` when ``stream`` ends: the parent closed our stdin, or died."""
    try:
        while stream.readline():
            pass
    except (OSError, ValueError):
        pass
    stopping.set()


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
