"""Pure: which URLs `value_upload.remote_url` may fetch, and which addresses it may connect to.

The allowlist (VALUE_UPLOAD_REMOTE_HOSTS, parsed by app/settings.py into `scheme://host:port`
entries) names origins: scheme, host and port must all match, so https is the default and plain
HTTP is allowed only to an origin listed with `http://`. A host name is matched exactly or, for a
`*.domain` entry, as one of its subdomains; an IP address only by an entry naming that very address.

A name is resolved at connection time, and every address it resolves to must be public: a name
pointing at loopback, a private network, link-local (the cloud metadata service at 169.254.169.254),
or any other non-global range is refused, however it got into the allowlist (DNS can change
after the allowlist was written). An IP address listed as such is the operator's explicit choice
and is reached whatever its range.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from app.errors import BadUserInput, RemoteUrlForbidden

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# NAT64's well-known prefix: an address under it reaches the IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Fetched:
    """A file fetched from a remote_url."""

    data: bytes
    file_name: str | None  # the last segment of the (final) URL's path, decoded; None when it ends in `/`


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lowercase; `*.domain` for a wildcard entry; an IPv6 address without brackets
    port: int

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    def admits(self, scheme: str, host: str, port: int) -> bool:
        if (scheme, port) != (self.scheme, self.port):
            return False
        if self.wildcard:
            return not is_ip(host) and host.endswith(self.host[1:])
        return host == self.host


def origins(entries: tuple[str, ...]) -> tuple[Origin, ...]:
    """The settings' `scheme://host:port` entries as Origins."""
    out = []
    for entry in entries:
        scheme, rest = entry.split("://", 1)
        host, port = rest.rsplit(":", 1)
        out.append(Origin(scheme, host.strip("[]"), int(port)))
    return tuple(out)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Target:
    """A URL the allowlist admits: whether its addresses still need checking once resolved."""

    scheme: str
    host: str
    port: int
    check_addresses: bool  # False only for an IP address the allowlist names itself


def admitted(allowed: tuple[Origin, ...], scheme: str, host: str | None, port: int | None) -> Target:
    """Refuse a URL the allowlist does not name (RemoteUrlForbidden) or that is not a plain
    http(s) URL to a host (BadUserInput)."""
    if not allowed:
        raise RemoteUrlForbidden(
            "remote_url is switched off on this server (VALUE_UPLOAD_REMOTE_HOSTS is empty); send the file as content"
        )
    scheme = scheme.lower()
    if scheme not in ("http", "https") or not host or port is None:
        raise BadUserInput("remote_url must be an absolute http(s) URL such as https://example.com/file.png")
    host = host.lower().rstrip(".").strip("[]")
    if not any(origin.admits(scheme, host, port) for origin in allowed):
        where = f"{scheme}://{host}:{port}"
        raise RemoteUrlForbidden(
            f"remote_url may not fetch from {where[:300]}: it is not an origin this server allows "
            "(VALUE_UPLOAD_REMOTE_HOSTS; https unless the origin is listed with http://)"
        )
    return Target(scheme, host, port, check_addresses=not is_ip(host))


def address_problem(address: str) -> str | None:
    """Why a resolved address may not be connected to (e.g. "loopback"), or None for a public one."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(str(embedded))
            if problem is not None:
                return problem
    for label, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local (the cloud metadata service lives there)", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return label
    if not ip.is_global:
        return "not public"
    return None
