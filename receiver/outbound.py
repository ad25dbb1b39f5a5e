"""Outbound requests made by the server itself (replay, forwarding), kept from becoming an SSRF.

request-baskets' CVE-2023-27163 let anyone make its server fetch internal URLs. Here a
server-side request goes nowhere unless RECEIVER_OUTBOUND_ENABLED is set, only to http(s)
targets whose every resolved address is inside RECEIVER_OUTBOUND_ALLOW, never to link-local
or cloud metadata addresses, and redirects are followed by hand, each one checked again.
The address a connection actually reaches is checked too, so a name that resolves
differently the second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import SKIP_HEADER

MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Refused even when an allow-list entry covers them: no webhook lives there.
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
METADATA_HOSTS = frozenset({"metadata.google.internal"})


class Refused(Exception):
    """A server-side request that is not allowed; the message says why, for people."""


@dataclass
class Outcome:
    """What a target answered, or why it could not be reached."""

    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""  # at most the limit asked for
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Rules:
    """RECEIVER_OUTBOUND_ENABLED and RECEIVER_OUTBOUND_ALLOW, read."""

    enabled: bool
    networks: tuple[Network, ...]
    hosts: frozenset[str]

    @classmethod
    def from_config(cls, config: Mapping) -> Rules:
        networks, hosts = [], set()
        for entry in config.get("RECEIVER_OUTBOUND_ALLOW", ()):
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(_host_name(entry))
        return cls(bool(config.get("RECEIVER_OUTBOUND_ENABLED")), tuple(networks), frozenset(hosts))

    def refusal(self, host: str, address: str) -> str | None:
        """Why `host` may not be reached at `address`, or None when it may."""
        ip = _plain(address)
        shown = host if host == str(ip) else f"{host} ({ip})"
        if _forbidden(ip):
            return f"{shown} is a link-local or cloud metadata address; never allowed."
        if host in self.hosts or any(ip in network for network in self.networks):
            return None
        return f"{shown} is not in RECEIVER_OUTBOUND_ALLOW."


def _forbidden(ip: IPAddress) -> bool:
    return ip in METADATA_ADDRESSES or any(ip in network for network in LINK_LOCAL)


def never_allowed(url: str) -> str | None:
    """Why `url` can never be a target, whatever RECEIVER_OUTBOUND_ALLOW says,
    judged from the URL alone (a name is only resolved when it is used)."""
    host = _host_name(urlsplit(url).hostname or "")
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service; it is never allowed."
    try:
        ip = _plain(host)
    except ValueError:  # a name
        return None
    if _forbidden(ip):
        return f"{host} is a link-local or cloud metadata address; never allowed."
    return None


def check(url: str, config: Mapping) -> None:
    """Raise Refused unless the server may send a request to `url`. Resolves the host."""
    _check(url, Rules.from_config(config))


def _check(url: str, rules: Rules) -> None:
    if not rules.enabled:
        raise Refused(
            "Outbound requests (replay, forwarding) are disabled; "
            "set RECEIVER_OUTBOUND_ENABLED=true to allow them."
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused(f"Only http and https URLs can be targets, not {url!r}.")
    try:
        port = parts.port
    except ValueError:
        raise Refused(f"{url!r} has an invalid port.") from None
    if not parts.hostname:
        raise Refused(f"{url!r} names no host.")
    host = _host_name(parts.hostname)
    if host in METADATA_HOSTS:
        raise Refused(f"{host} is a cloud metadata service; it is never allowed.")
    for address in _resolve(host, port or (443 if parts.scheme.lower() == "https" else 80)):
        reason = rules.refusal(host, address)
        if reason:
            raise Refused(reason)


def _resolve(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise Refused(f"{host} could not be resolved ({_strerror(error)}).") from None
    if not found:
        raise Refused(f"{host} could not be resolved.")
    return [sockaddr[0] for _family, _type, _proto, _name, sockaddr in found]


def _host_name(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _plain(address: str) -> IPAddress:
    """An address as compared: without an IPv6 zone, IPv4-mapped IPv6 as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def send(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    config: Mapping,
    timeout: float,
    *,
    body_limit: int = MAX_RESPONSE_BYTES,
) -> Outcome:
    """Send one request from the server, following up to MAX_REDIRECTS redirects by hand.

    Raises Refused when `url` may not be reached. A redirect to a place that may not be
    reached is not followed: the outcome is the redirect itself, with the reason as its
    error. Network failures are outcomes too (status None).
    """
    rules = Rules.from_config(config)
    _check(url, rules)
    headers = list(headers)
    started = time.perf_counter()
    # `timeout` bounds the whole attempt: connecting, sending, a status line
    # and headers or a body trickling in, redirects (requests' own timeout
    # only bounds each wait for bytes). At the deadline every connection the
    # attempt opened is shut, which ends whatever is waiting on it.
    deadline = started + timeout
    attempt = _Attempt(timeout)
    tokens = (_rules.set(rules), _attempts.set(attempt))
    try:
        with _guarded_session() as session:
            redirects = 0
            while True:
                wait = max(0.001, deadline - time.perf_counter())
                # A `#` in the URL given is the captured target's; in a redirect's
                # Location it starts a fragment, which is not sent.
                keep = _query_with_hash(url) if redirects == 0 else None
                response = _request(session, method, url, headers, body, wait, keep)
                if isinstance(response, Outcome):
                    response.latency_ms = _since(started)
                    if attempt.expired:
                        response.error = f"No answer within the {timeout:.0f} s allowed."
                    return response
                target = _redirect_target(response, url)
                reason = None
                if target is not None:
                    try:
                        _check(target, rules)
                    except Refused as refusal:
                        reason = f"Redirect to {target} not followed: {refusal}"
                    else:
                        if redirects == MAX_REDIRECTS:
                            reason = f"Stopped after {MAX_REDIRECTS} redirects."
                        elif time.perf_counter() >= deadline:  # no time left to send it again
                            reason = f"Redirect to {target} not followed: the time allowed ran out."
                if target is None or reason:
                    return _answered(response, started, body_limit, reason, attempt, timeout)
                redirects += 1
                response.close()
                method, headers, body = _redirected(response.status_code, method, headers, body)
                headers = _for_new_host(headers, url, target)
                url = target
    finally:
        attempt.cancel()
        _attempts.reset(tokens[1])
        _rules.reset(tokens[0])


class _Attempt:
    """The connections one send() opens, all shut when its time is up."""

    def __init__(self, timeout: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """End a connection from another thread: a blocked read or write returns."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _request(
    session, method, url, headers, body, timeout, query_with_hash=None
) -> requests.Response | Outcome:
    try:
        prepared = session.prepare_request(
            requests.Request(method, url, headers=_header_dict(headers), data=body)
        )
        # requests "requotes" a URL, turning %2E back into "." (and %7E into "~"):
        # a sub-path's encoded `..` would then climb out of the target's path.
        # The path and query go out as built, when they are plain ASCII.
        ours = urlsplit(url)
        if (ours.path + ours.query).isascii():
            parts = urlsplit(prepared.url)._replace(path=ours.path, query=ours.query)
            prepared.url = urlunsplit(parts)
        settings = session.merge_environment_settings(prepared.url, {}, True, None, None)
        whole_target = None
        if query_with_hash is not None:  # the path as it goes out, the query whole
            whole_target = (urlsplit(prepared.url).path or "/") + "?" + query_with_hash
        whole = _whole_target.set(whole_target)
        try:
            return session.send(prepared, timeout=timeout, allow_redirects=False, **settings)
        finally:
            _whole_target.reset(whole)
    except requests.RequestException as error:
        return Outcome(None, error=describe(error))


def _query_with_hash(url: str) -> str | None:
    """The query string of `url` when it holds a `#`, all of it; else None. (The
    URLs sent carry no fragment of their own: a `#` is a captured query's.)"""
    query = url.split("?", 1)[1] if "?" in url else ""
    return query if "#" in query and query.isascii() else None


def _answered(
    response: requests.Response,
    started: float,
    limit: int,
    error: str | None,
    attempt: _Attempt,
    timeout: float,
) -> Outcome:
    body = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=16 * 1024):
            body += chunk
            if len(body) >= limit:
                break
    except (requests.RequestException, OSError, ValueError) as failure:
        error = error or f"The response body was cut short: {describe(failure)}"
    finally:
        response.close()
    if attempt.expired:
        late = f"The answer took longer than the {timeout:.0f} s allowed"
        error = f"{late}; its body is cut short." if not error or "cut short" in error else error
    return Outcome(
        status=response.status_code,
        headers=list(response.raw.headers.items()),
        body=bytes(body[:limit]),
        latency_ms=_since(started),
        error=error,
    )


def _redirect_target(response: requests.Response, url: str) -> str | None:
    location = response.headers.get("Location")
    if response.status_code not in (301, 302, 303, 307, 308) or not location:
        return None
    return urljoin(url, location)


def _redirected(status: int, method: str, headers: list, body: bytes) -> tuple[str, list, bytes]:
    """What a browser sends after a redirect: 303 (and 301/302 after a POST) become a GET."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        dropped = {"content-type", "content-length", "content-encoding", "transfer-encoding"}
        return "GET", [(n, v) for n, v in headers if n.lower() not in dropped], b""
    return method, headers, body


def _for_new_host(headers: list, url: str, target: str) -> list:
    """Credentials go to the host they were meant for only."""
    if urlsplit(url).netloc.lower() == urlsplit(target).netloc.lower():
        return headers
    private = {"authorization", "cookie", "proxy-authorization"}
    return [(n, v) for n, v in headers if n.lower() not in private]


def _header_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The headers as requests takes them: one value per name, so repeated headers are
    joined as HTTP allows; no User-Agent or Accept-Encoding of urllib3's own."""
    joined: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in headers:
        first = names.setdefault(name.lower(), name)
        # Cookies join with "; " (RFC 6265); ", " would change what they say.
        separator = "; " if first.lower() == "cookie" else ", "
        joined[first] = f"{joined[first]}{separator}{value}" if first in joined else value
    for name in ("User-Agent", "Accept-Encoding"):
        if name.lower() not in names:
            joined[name] = SKIP_HEADER
    return joined


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def describe(error: Exception) -> str:
    """A short reason for a failed request, without urllib3's nested reprs."""
    if isinstance(error, requests.ConnectTimeout):
        return "Timed out while connecting."
    if isinstance(error, requests.Timeout):
        return "Timed out waiting for the response."
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS failed: " + _strerror(error)
    if isinstance(error, requests.ConnectionError):
        return "Could not connect: " + _strerror(error)
    return _strerror(error)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _strerror(error: BaseException) -> str:
    text = str(error)
    found = _ERRNO.findall(text)
    if found:
        return found[-1].strip()
    return text or type(error).__name__


# --- the connection-time check ---

_rules: ContextVar[Rules | None] = ContextVar("outbound_rules", default=None)
_attempts: ContextVar[_Attempt | None] = ContextVar("outbound_attempt", default=None)
# The request target of the request being sent, where requests would cut it short:
# a captured target may hold a `#`, which requests takes for a fragment's start.
_whole_target: ContextVar[str | None] = ContextVar("outbound_whole_target", default=None)


class _PeerCheck:
    """Checks the address a new connection reached, with the rules of the current send()."""

    def _new_conn(self):
        sock = super()._new_conn()
        rules = _rules.get()
        if rules is None:
            reason = "No outbound rules are in force."
        else:
            reason = rules.refusal(_host_name(self.host), sock.getpeername()[0])
        if reason:
            sock.close()
            raise Refused(reason)
        attempt = _attempts.get()
        if attempt is not None:
            attempt.add(sock)  # shut with the others when the attempt's time is up
        return sock


class _CheckedHTTPConnection(_PeerCheck, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_PeerCheck, HTTPSConnection):
    pass


class _ExactTarget:
    """Sends the request target as it was given. urllib3 percent-encodes it
    again on the way out and upper-cases its escapes: a query holding one `%`
    that is no escape (`bad=100%`) went out with every `%` as `%25`
    (`sig=abc%252Bdef`), and `%2b` as `%2B`. (What is given is checked: the
    target is built from the capture as it arrived, or requests' own.)"""

    _given = threading.local()

    def urlopen(self, method, url, *args, **kwargs):
        self._given.target = _whole_target.get() or url
        try:
            return super().urlopen(method, url, *args, **kwargs)
        finally:
            self._given.target = None

    def _make_request(self, conn, method, url, *args, **kwargs):
        given = getattr(self._given, "target", None)
        return super()._make_request(conn, method, given or url, *args, **kwargs)


class _CheckedHTTPPool(_ExactTarget, HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(_ExactTarget, HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }


def _guarded_session() -> requests.Session:
    session = requests.Session()
    # No proxies, .netrc credentials or default headers from the environment: the
    # request goes where it was checked to go, with exactly the headers given.
    session.trust_env = False
    session.headers.clear()
    adapter = _CheckedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
