"""The SSRF guard: which addresses an outbound request may reach.

Every outbound request of the archive (page fetches, the browser's requests, webhooks, Apprise)
goes through :func:`check_host_allowed` (or :func:`check_url_allowed`): the host is resolved
once, *every* resolved address must be public, and the caller then connects to one of the
returned addresses, never to the host name again, so that a second DNS answer cannot point
elsewhere (DNS rebinding). Redirects are new requests: check each hop.

HTTP requests do not call the guard themselves: they go through
:class:`archive.fetch.client.GuardedClient`, which checks, pins and pools. The browser's
guard proxy (:mod:`archive.fetch.proxy`) calls it for each of the page's requests.

It raises :class:`BlockedAddressError` (a non-transient :class:`FetchError`) for a blocked
address, and :class:`FetchError` for an unsupported URL (non-transient) or a DNS failure
(transient).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from archive.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]
"""``resolver(host, port)`` returns the host's addresses; raises ``OSError`` when it cannot."""

SCHEMES = {"http": 80, "https": 443}

_PRIVATE = "a private network address"
_DOCUMENTATION = "a documentation address"
_V4_BLOCKS = [
    ("0.0.0.0/8", "the unspecified / 'this network' address block"),
    ("10.0.0.0/8", _PRIVATE),
    ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (where cloud metadata services live)"),
    ("172.16.0.0/12", _PRIVATE),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", _DOCUMENTATION),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("192.168.0.0/16", _PRIVATE),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", _DOCUMENTATION),
    ("203.0.113.0/24", _DOCUMENTATION),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
]
_V6_BLOCKS = [
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a deprecated IPv4-compatible address"),
    ("100::/64", "a discard-only address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("2001::/23", "an IETF protocol assignment (Teredo and others)"),
    ("2001:db8::/32", _DOCUMENTATION),
    ("3fff::/20", _DOCUMENTATION),
    ("fc00::/7", "a unique-local (private) IPv6 address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
]
_BLOCKS: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network(net), why) for net, why in _V4_BLOCKS + _V6_BLOCKS
]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


class BlockedAddressError(FetchError):
    """The URL's host resolves to an address the SSRF guard refuses. Never transient."""

    def __init__(self, reason: str, *, url: str | None = None) -> None:
        super().__init__(reason, transient=False, url=url)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried by an IPv4-mapped, IPv4-translated, NAT64 or 6to4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _V4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached (e.g. "a loopback address"), or None if it is public.

    Addresses that carry an IPv4 address (``::ffff:127.0.0.1``, ``2002:7f00:1::``,
    ``64:ff9b::7f00:1``) are judged by the IPv4 address they carry.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            why = blocked_reason(inner)
            return f"{why} (embedded in {address.compressed})" if why else None
    for network, why in _BLOCKS:
        if address.version == network.version and address in network:
            return why
    if not address.is_global or address.is_multicast:
        return "a special-purpose (non-global) address"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the system resolver: its distinct addresses, in the system's order."""
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses are reachable: public ones, plus ``allow_networks``, or all if
    ``allow_private`` (tests and local demos only)."""

    allow_private: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(
        cls, allow_private: bool = False, allow_networks: Iterable[str | IPNetwork] = ()
    ) -> AddressPolicy:
        """A policy from a flag and network specs such as ``"10.1.2.0/24"``."""
        nets = tuple(
            ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n
            for n in allow_networks
        )
        return cls(allow_private=allow_private, allow_networks=nets)

    def refusal(self, address: IPAddress) -> str | None:
        """Why this policy refuses ``address``, or None."""
        if self.allow_private:
            return None
        for net in self.allow_networks:
            if address.version == net.version and address in net:
                return None
        return blocked_reason(address)


def host_for_dns(host: str) -> str:
    """The ASCII (IDNA) form of a host name, as sent to DNS, SNI and the Host header."""
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FetchError(
            f"{host!r} is not a valid host name; check the URL", transient=False
        ) from None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_host_allowed(
    host: str,
    port: int,
    *,
    policy: AddressPolicy,
    resolver: Resolver = resolve,
    url: str | None = None,
    setting: str = "[fetch] allow_private_addresses",
) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses if the policy allows every one of them.

    ``setting`` is the switch a refusal names (``[notify] allow_private_addresses`` for alerts).

    An IP address given as ``host`` is used as it is (other spellings, such as
    ``2130706433``, go to the resolver like names). Raises :class:`BlockedAddressError` if
    any address is refused (a host that resolves to one
    public and one private address is refused), and a transient :class:`FetchError` when the
    host cannot be resolved.
    """
    try:
        literal = _ip_literal(host)
        addresses = [literal] if literal is not None else resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise FetchError(
            f"could not resolve host {host!r} ({exc}); check the URL, or try "
            "again later if the domain is right",
            transient=True,
            url=url,
        ) from None
    if not addresses:
        raise FetchError(f"host {host!r} has no address; check the URL", transient=True, url=url)
    for address in addresses:
        why = policy.refusal(address)
        if why:
            raise BlockedAddressError(
                f"refused to connect to {host} ({address.compressed}): it is {why}. The SSRF "
                f"guard only allows public addresses ({setting} switches it off for local "
                "tests)",
                url=url,
            )
    return addresses


@dataclass(frozen=True)
class Target:
    """An http(s) URL split into what a connection needs."""

    scheme: str
    host: str  # ASCII, lower case, no brackets
    port: int

    @property
    def authority(self) -> str:
        """``host[:port]`` for the Host header (port only when not the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if SCHEMES[self.scheme] == self.port else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Split an http(s) URL; raise a non-transient :class:`FetchError` for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(
            f"{url!r} is not a valid URL ({exc}); check it", transient=False, url=url
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise FetchError(
            f"unsupported URL scheme {scheme or '(none)'!r} in {url!r}: only http "
            "and https URLs can be fetched",
            transient=False,
            url=url,
        )
    if not parts.hostname:
        raise FetchError(f"{url!r} has no host name; check the URL", transient=False, url=url)
    if parts.username is not None or parts.password is not None:
        raise FetchError(
            f"{url!r} contains credentials (user:password@); remove them", transient=False, url=url
        )
    return Target(scheme, host_for_dns(parts.hostname), port or SCHEMES[scheme])


def check_url_allowed(
    url: str,
    allow_private: bool = False,
    *,
    allow_networks: Sequence[str | IPNetwork] = (),
    resolver: Resolver = resolve,
) -> list[IPAddress]:
    """Check an http(s) URL against the SSRF guard and return the addresses to connect to.

    ``allow_private=True`` switches the guard off (the addresses are still resolved and
    returned); ``allow_networks`` lists networks allowed even with the guard on.
    """
    target = parse_target(url)
    policy = AddressPolicy.build(allow_private, allow_networks)
    return check_host_allowed(target.host, target.port, policy=policy, resolver=resolver, url=url)
