"""Pytest plugin that fails a test when code connects to a non-loopback address.

Tests must reach only servers they start on 127.0.0.1 or ::1. The guard wraps
``socket.socket.connect``, ``connect_ex`` and ``socket.getaddrinfo`` for the
whole session, so a name lookup or connection to anything else raises
:class:`NetworkAccessBlocked`. That class derives from ``AssertionError`` and not
``OSError`` on purpose: HTTP clients turn an ``OSError`` into a connection error
that retry code may swallow. Each blocked attempt is also recorded, and the test
that made it fails at teardown even if the error was caught.

Enable it with ``-p tests.socket_guard`` or ``pytest_plugins = ["tests.socket_guard"]``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkAccessBlocked(AssertionError):
    """A test tried to reach a host other than loopback."""


_blocked: list[str] = []
_originals: dict[str, Any] = {}


def is_loopback(host: object) -> bool:
    """Return True for a loopback IP literal or a local host name such as ``localhost``."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check(family: int, address: Any, action: str) -> None:
    # Unix sockets never leave the machine, so only IP families are checked.
    if family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if is_loopback(host):
        return
    message = f"{action} to {address!r} was blocked; tests may reach only 127.0.0.1, ::1 or localhost"
    _blocked.append(message)
    logger.error("socket guard: %s", message)
    raise NetworkAccessBlocked(message)


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self.family, address, "connect")
    _originals["connect"](self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self.family, address, "connect_ex")
    return int(_originals["connect_ex"](self, address))


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    # A lookup of a public name already sends a DNS query, so it is blocked too.
    if host is not None and not is_loopback(host):
        _check(socket.AF_INET, (host,), "getaddrinfo")
    return _originals["getaddrinfo"](host, *args, **kwargs)


def install() -> None:
    """Wrap the socket functions; calling it twice has no further effect."""
    if _originals:
        return
    _originals["connect"] = socket.socket.connect
    _originals["connect_ex"] = socket.socket.connect_ex
    _originals["getaddrinfo"] = socket.getaddrinfo
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = _guarded_getaddrinfo


def uninstall() -> None:
    """Restore the socket functions that :func:`install` wrapped."""
    if not _originals:
        return
    socket.socket.connect = _originals.pop("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _originals.pop("connect_ex")  # type: ignore[method-assign]
    socket.getaddrinfo = _originals.pop("getaddrinfo")


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall()


@pytest.fixture(autouse=True)
def _fail_on_blocked_network() -> Iterator[None]:
    _blocked.clear()
    yield
    if _blocked:
        attempts = "; ".join(_blocked)
        _blocked.clear()
        pytest.fail(f"the test tried to reach the network: {attempts}", pytrace=False)
