"""``ordo serve``: the app on uvicorn, with its engine, credentials and TLS."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import uvicorn

from domain.errors import OrdoError
from executor.journal import Journal
from executor.redact import MASK
from executor.temporal import Temporal
from service.app import MAX_BODY, create_app
from service.auth import Credentials, loopback
from service.engine import HALT_SECONDS, LocalEngine


class ServeError(OrdoError):
    """The server cannot start as asked (names the option)."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535 or not host:
            raise ServeError(f"--listen '{text}': expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
        return cls(host.strip("[]"), int(port))

    @property
    def loopback(self) -> bool:
        return loopback(self.host)


@dataclass
class Options:
    project: Path
    listen: Listen
    journal: Path | None = None
    tokens: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    simulation: Path | None = None
    plan_timeout: float | None = None
    max_body: int = MAX_BODY
    drain: float = 30.0
    temporal: Temporal | None = None          # runs as Temporal workflows (service/temporal_engine.py)


class _Server(uvicorn.Server):
    """uvicorn's server, which asks the runs to stop as soon as it is told to exit (SIGTERM,
    Ctrl-C). uvicorn first waits for the open connections to close (up to
    ``timeout_graceful_shutdown``), and only then shuts the app down: an event stream that
    someone follows (the web page) kept a run dispatching new operations meanwhile, or until it
    ended."""

    def __init__(self, config: uvicorn.Config, engine: LocalEngine, drain: float) -> None:
        super().__init__(config)
        self._engine = engine
        self._drain = drain
        self._hung_up = False

    def bind(self) -> None:
        """ServeError now if the address cannot be listened on (in use, not this host's): every address its
        name resolves to is bound and listened on, then let go, for uvicorn to take as it does (every address,
        IPv6 as IPv6 only, its line with a port 0's port). uvicorn bound it after the app's start-up, which
        takes up the runs a stop cut short, then failed and exited 3, ordo's "no plan" (an operator's)."""
        host, port = self.config.host, self.config.port
        shown = f"[{host}]" if ":" in host else host
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except OSError as exc:
            raise ServeError(f"cannot listen on {shown}:{port}: {exc.strerror or exc}") from None
        for family, kind, proto, _, address in found:
            with socket.socket(family, kind, proto) as sock:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind(address)
                    sock.listen()
                except OSError as exc:
                    raise ServeError(f"cannot listen on {shown}:{port}: {exc.strerror or exc}") from None

    def handle_exit(self, sig: int, frame: Any) -> None:
        again = self.should_exit
        if sig == signal.SIGHUP:   # (as uvicorn's first SIGTERM; raised again once the server is down)
            self.should_exit = self._hung_up = True
        else:
            super().handle_exit(sig, frame)
        # (in a thread: the handler may have interrupted the loop's thread holding the engine's lock; not a
        # daemon: the process waits for it, even when uvicorn's second Ctrl-C skips the app's shutdown)
        threading.Thread(target=self._stop, args=(again or sig == signal.SIGHUP,), name="ordo-stop").start()

    def _stop(self, at_once: bool) -> None:
        """The runs asked to stop (the drain counts from the signal, not from the app's shutdown); a second
        signal, or SIGHUP (the terminal gone), stops them at once: their calls' programs ended, not left
        running on their own as the process exits (a second Ctrl-C made uvicorn skip the shutdown)."""
        self._engine.stop(drain=self._drain)
        if at_once:   # (this thread is waited for at exit: the runs journal that they stopped first)
            self._engine.halt(wait=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's (SIGINT, SIGTERM), and SIGHUP: an ssh session dropped killed the server at once, its
        calls' programs left running and its runs crashed."""
        if threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return
        before = signal.getsignal(signal.SIGHUP)
        if before != signal.SIG_IGN:   # (`nohup ordo serve`: the one who started it asked for it not to stop so)
            signal.signal(signal.SIGHUP, self.handle_exit)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGHUP, before)
        if self._hung_up:   # (ended by it, as uvicorn ends by a SIGTERM it caught: a supervisor reads why)
            signal.raise_signal(signal.SIGHUP)


#: The query parameters of ordo's own routes (the runs' list, an event stream, SO's status queries):
#: the access log shows their values, and masks every other's, as the journal masks every query value
#: in text: a client may put a credential in the URL under any name (``?auth=``, ``?sig=``).
SHOWN_QUERY = frozenset({"state", "offset", "limit", "since", "format", "filter"})


def masked_query(target: str) -> str:
    """A request's target (path and query) with the values of its query parameters masked, but
    those of ordo's own (``SHOWN_QUERY``): what the access log may show."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    # (an item without '=' is masked whole: a credential too, as `?TOKEN` or `?token%3DTOKEN`)
    items = [item if not item or unquote(key) in SHOWN_QUERY else f"{key}={MASK}" if eq else MASK
             for item in query.split("&") for key, eq, _ in [item.partition("=")]]
    return f"{path}?{'&'.join(items)}"


class _MaskedAccess(logging.Filter):
    """uvicorn's access log line, its request target's secret query values masked: the log is kept
    and shipped where the journal is not (the journal and the answers mask them already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(masked_query(arg) if isinstance(arg, str) and "?" in arg else arg
                                for arg in record.args)
        return True


def build(options: Options) -> tuple[uvicorn.Server, Credentials]:
    """The server, ready to run; refused without credentials on anything but loopback."""
    credentials = Credentials.load(options.tokens, os.environ.get("ORDO_TOKENS"))
    if not credentials.configured and not options.listen.loopback:
        raise ServeError(f"no credentials configured (--tokens FILE or ORDO_TOKENS): ordo serve listens on "
                         f"loopback only without them, not on {options.listen.host}")
    if (options.tls_cert is None) != (options.tls_key is None):
        raise ServeError("--tls-cert and --tls-key go together")
    for path in (options.tls_cert, options.tls_key):
        if path is not None and not path.is_file():
            raise ServeError(f"{path}: no such file")
    if options.temporal is not None:
        from service.temporal_engine import TemporalEngine

        engine: LocalEngine = TemporalEngine(options.project, options.journal, simulation=options.simulation,
                                             plan_timeout=options.plan_timeout, temporal=options.temporal)
    else:
        engine = LocalEngine(options.project, options.journal, simulation=options.simulation,
                             plan_timeout=options.plan_timeout)
    # A journal that cannot be opened is refused here, not by a traceback at start-up; none is made
    # here (the server makes it when it starts: two processes made one at once, and one was refused)
    if engine.path.exists():
        with Journal(engine.path, create=False):
            pass
    app = create_app(engine, credentials, max_body=options.max_body, drain=options.drain)
    config = uvicorn.Config(app, host=options.listen.host, port=options.listen.port, log_level="info",
                            ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
                            ssl_keyfile=str(options.tls_key) if options.tls_key else None,
                            timeout_graceful_shutdown=_open_for(options), lifespan="on", server_header=False)
    access = logging.getLogger("uvicorn.access")   # (configured by uvicorn.Config just now)
    if not any(isinstance(f, _MaskedAccess) for f in access.filters):
        access.addFilter(_MaskedAccess())
    return _Server(config, engine, options.drain), credentials


def _open_for(options: Options) -> float:
    """How long uvicorn waits for open connections once told to exit: an event stream someone follows
    ends with its run, so the drain and the halt's time (it cut the stream at 5 s, a traceback in the
    log); a Temporal run goes on without this server, and its stream with it: 5 s."""
    return 5.0 if options.temporal is not None else options.drain + HALT_SECONDS + 1
