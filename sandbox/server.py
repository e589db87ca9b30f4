"""Serving the services on loopback ports: waitress for plain HTTP, werkzeug with a local CA for ``--tls``.

Each service gets its own server thread; :class:`ServerGroup` starts them, reports their URLs when they
accept connections, and stops them all on SIGINT/SIGTERM.

Waitress serves each app with a pool of :data:`WAITRESS_THREADS` threads. When they are all busy, further
requests wait in waitress's task queue, and waitress says so at warning level ("Task queue depth is N") on
every request that queues: under a load test that is a line per request and means only that the stack is
saturated. :func:`quiet_waitress_queue` turns it into a sandbox log line at info (``sandbox up --log-level
info``), and at notice only when the queue is longer than the pool several times over.
"""

from __future__ import annotations

import gc
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.logs import NOTICE

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: threads per served app. A request holds its thread while it waits (for the live-sync gate, for SQLite's
#: writer), and with ``--wire http`` the bridge's write to the other service needs a thread of that service while
#: the source's request waits for it: 16 keeps a thread free for it unless 16 writes of one service wait at once
#: (more would only add interpreter-lock contention on the 2 to 8 cores the sandbox runs on).
WAITRESS_THREADS = 16
#: open connections per app before waitress stops accepting (its default, 100, is two connections per user of a
#: 50-user load test)
WAITRESS_CONNECTION_LIMIT = 1000
#: requests queued per thread beyond which a full task queue is worth a notice (the stack is far behind)
QUEUE_NOTICE_PER_THREAD = 4

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Take what a started service built (apps, models, compiled plans, seeded caches) out of the garbage
    collector's sight, once, when the service is ready.

    A long-running server allocates a great deal per request, and every full collection would walk all of the
    start-up objects again: a pause of 100 to 200 ms in which no request moves, measured on a served stack, which
    lands in the tail of every latency figure. The objects stay alive either way; a collection first, so that
    start-up garbage is freed rather than kept. Later garbage is collected as usual.
    """
    gc.collect()
    gc.freeze()


class _WaitressQueueLine(logging.Filter):
    """Takes waitress's "Task queue depth is N" warning off its logger and says it at the sandbox's levels."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Task queue depth is %d" or not record.args:
            return True
        depth = record.args[0] if isinstance(record.args, tuple) else 0
        level = (
            NOTICE if isinstance(depth, int) and depth > QUEUE_NOTICE_PER_THREAD * WAITRESS_THREADS else logging.INFO
        )
        log.log(level, "all %d server threads are busy; %s requests wait for one", WAITRESS_THREADS, depth)
        return False


_QUEUE_FILTER = _WaitressQueueLine()


def quiet_waitress_queue() -> None:
    """Route waitress's task-queue warnings through :class:`_WaitressQueueLine` (idempotent)."""
    queue_logger = logging.getLogger("waitress.queue")
    if _QUEUE_FILTER not in queue_logger.filters:
        queue_logger.addFilter(_QUEUE_FILTER)


@dataclass
class TlsFiles:
    """A local certificate authority and a certificate for localhost/127.0.0.1 signed by it."""

    ca_cert: Path
    cert_chain: Path
    key: Path

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_chain), str(self.key))
        return context


def ensure_tls_files(folder: Path) -> TlsFiles:
    """Create (once) and reuse the CA and server certificate in ``folder``; clients trust ``ca.pem``."""
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "server-chain.pem", folder / "server-key.pem")
    if files.ca_cert.exists() and files.cert_chain.exists() and files.key.exists():
        return files
    authority = trustme.CA(organization_name="Lead-to-cash sandbox local CA")
    certificate = authority.issue_cert("localhost", "127.0.0.1", "::1")
    authority.cert_pem.write_to_path(str(files.ca_cert))
    certificate.private_key_pem.write_to_path(str(files.key))
    with files.cert_chain.open("wb") as chain:
        for blob in certificate.cert_chain_pems:
            chain.write(blob.bytes())
    files.key.chmod(0o600)
    return files


@dataclass
class RunningServer:
    name: str
    url: str
    stop: Callable[[], None]
    thread: threading.Thread


@dataclass
class ServerGroup:
    """Servers for several apps, each on its own port and thread."""

    host: str = "127.0.0.1"
    tls: TlsFiles | None = None
    servers: list[RunningServer] = field(default_factory=list)

    def start(
        self, name: str, app: WSGIApplication, port: int, *, listening: socket.socket | None = None
    ) -> RunningServer:
        """Serve ``app`` on ``port`` (0: any free one), or accept on ``listening``, a socket bound and listening
        already (several worker processes of one service share it)."""
        from sandbox.websafety import mark_served

        scheme = "https" if self.tls else "http"
        # requests that arrive over a socket get the Host check against DNS rebinding (sandbox.websafety)
        app = mark_served(app)
        if self.tls is not None:
            from werkzeug.serving import make_server

            server = make_server(self.host, port, app, threaded=True, ssl_context=self.tls.ssl_context())
            thread = threading.Thread(target=server.serve_forever, name=f"serve-{name}", daemon=True)
            stop: Callable[[], None] = server.shutdown
            bound_port = server.server_port
        else:
            from waitress.server import create_server

            quiet_waitress_queue()
            where: dict[str, Any] = {"host": self.host, "port": port} if listening is None else {"sockets": [listening]}
            server = create_server(
                app,
                **where,
                threads=WAITRESS_THREADS,
                connection_limit=WAITRESS_CONNECTION_LIMIT,
                ident="lead-to-cash-sandbox",
                clear_untrusted_proxy_headers=True,
            )
            closing = threading.Event()

            def run_waitress(server: Any = server, closing: threading.Event = closing) -> None:
                try:
                    server.run()
                except OSError:
                    if not closing.is_set():
                        raise
                    # close() took the sockets from under the poll loop: that is how waitress stops here
                if closing.is_set():
                    # the handler threads finish the requests they hold: joining this thread then means
                    # that nothing of the server runs any more
                    server.task_dispatcher.shutdown()

            def close_waitress(server: Any = server, closing: threading.Event = closing) -> None:
                closing.set()
                try:
                    # in the loop's own thread, which the trigger wakes at once: closed from another thread,
                    # the loop would notice only when its poll times out (asyncore_loop_timeout, a second)
                    server.trigger.pull_trigger(lambda: _close_in_loop(server))
                except OSError:  # the trigger is closed already
                    server.close()

            thread = threading.Thread(target=run_waitress, name=f"serve-{name}", daemon=True)
            stop = close_waitress
            bound_port = server.effective_port
        thread.start()
        running = RunningServer(name, f"{scheme}://{self.host}:{bound_port}", stop, thread)
        self.servers.append(running)
        wait_until_listening(self.host, int(bound_port))
        return running

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - stopping must carry on for the others
                pass
        for server in self.servers:
            server.thread.join(timeout=5)
        self.servers.clear()


def _close_in_loop(server: Any) -> None:
    """Stop accepting, and close the keep-alive connections that wait for no answer, as waitress closes them
    once idle for its ``channel_timeout``: the loop ends when its last connection does, so one a client keeps
    open would hold :meth:`ServerGroup.stop_all` until its join times out. Requests in progress finish."""
    for channel in list(server.active_channels.values()):
        if not channel.requests:
            channel.will_close = True
    server.close()


def wait_until_listening(host: str, port: int, timeout: float = 10.0) -> None:
    """Return once ``host:port`` accepts a TCP connection (raise after ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing is listening on {host}:{port}") from None
            time.sleep(0.05)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
