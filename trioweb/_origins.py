"""Which ``Origin`` a websocket handshake may come from: the defence against cross-site websocket
hijacking (CSWSH).

A browser sends cookies (and HTTP authentication) with a websocket handshake whatever page opens
it, and the same-origin policy does not apply to websockets: any site the user visits could open
one to the app as the user. Browsers do say which page opened it, in ``Origin``, and a page
cannot forge that header. So a handshake is let through when:

* it has no ``Origin`` (not a browser: a script, a server, a mobile app, the test client), or
* its ``Origin`` is the app's own origin as the client saw it: the scheme of the scope (``ws`` ->
  ``http``, ``wss`` -> ``https``) and its ``Host`` header, both after any proxy middleware
  rewrote the scope (docs/howto/proxy.rst), or
* its ``Origin`` matches the :class:`OriginPolicy` of the route: the route's ``allowed_origins``,
  else its innermost blueprint's ``websocket_allowed_origins`` that is set, else the app's
  ``WEBSOCKET_ALLOWED_ORIGINS`` (an empty list: the app's own origin only).

Policy entries: ``"*"`` (any origin), ``"null"`` (the opaque origin of sandboxed frames and
``file:`` pages), an exact origin ``"https://app.example.com"`` (ports compare after the scheme's
default is filled in: ``https://a.example`` is ``https://a.example:443``) or a wildcard
``"https://*.example.com"`` (any subdomain, at any depth, with that scheme and port, but not
``example.com`` itself). Names compare without regard to case. An ``Origin`` that is not
``scheme://host[:port]`` is foreign; so is ``null`` unless listed.

Nothing here runs per message; the check costs one scan of the handshake's headers and, only
when ``Origin`` is present, a look-up of it and of ``Host`` in a cache of parsed origins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import final

import attrs

from ._types import Scope

#: ``scheme://host[:port]``: what browsers send (RFC 6454's serialisation). ``host`` is a name,
#: an IPv4 address or a bracketed IPv6 address; a path, a query, user info or a trailing slash
#: make it malformed.
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]*)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_\-.~%]+)"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: The page scheme that opens a websocket of each scheme (proxies may also name it directly).
_PAGE_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}

#: An origin as compared: scheme and host in lower case, the port filled in where the scheme has
#: a default (``None`` for a scheme without one).
Origin = tuple[str, str, int | None]

_FORMS = (
    'an exact origin such as "https://app.example.com" or "http://localhost:8000", a wildcard'
    ' such as "https://*.example.com", "null", or "*" for any origin'
)


@functools.lru_cache(maxsize=1024)
def parse_origin(text: str) -> Origin | None:
    """``text`` (an ``Origin`` header or a policy entry) as an :data:`Origin`, or ``None`` if it
    is not ``scheme://host[:port]``. Not a checkpoint.

    Cached: a browser's handshakes repeat the same ``Origin`` and ``Host``, and a cache hit
    costs a tenth of a parse (bounded, so varied values only miss)."""
    match = _ORIGIN.fullmatch(text)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    port_text = match["port"]
    port = int(port_text) if port_text is not None else _DEFAULT_PORTS.get(scheme)
    if port is not None and port > 65535:
        return None
    host = match["host"].lower()
    if host.startswith(".") or host.endswith(".") or ".." in host:
        return None
    return scheme, host, port


@final
@attrs.frozen
class OriginPolicy:
    """The origins a websocket route accepts besides its own, parsed from a list of entries
    (see the module's rules). Build it with :meth:`parse`."""

    #: ``"*"`` was listed.
    any_origin: bool = False
    #: ``"null"`` was listed.
    null: bool = False
    exact: frozenset[Origin] = frozenset()
    #: Wildcards as ``(scheme, ".example.com", port)``: the host must end with the suffix.
    wildcards: tuple[Origin, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], what: str) -> OriginPolicy:
        """Parse ``entries``; ``what`` names where they come from in error messages.

        Raises ``ValueError`` (saying how to write it) for an entry that is not one of the
        accepted forms, and for a single string where a list is expected.
        """
        if isinstance(entries, str | bytes):
            raise ValueError(
                f"{what} must be a list of origins, not the string {entries!r}: write [{entries!r}]"
            )
        any_origin = null = False
        exact: set[Origin] = set()
        wildcards: list[Origin] = []
        for entry in entries:
            if not isinstance(entry, str):
                raise ValueError(f"{what}: {entry!r} is not a string; each entry is {_FORMS}")
            if entry == "*":
                any_origin = True
                continue
            if entry.lower() == "null":
                null = True
                continue
            scheme, star, rest = entry.partition("://*.")
            if star:
                origin = parse_origin(f"{scheme}://{rest}")
                if origin is None or "*" in rest or origin[1].startswith("["):
                    raise ValueError(_bad_entry(what, entry))
                wildcards.append((origin[0], "." + origin[1], origin[2]))
                continue
            origin = parse_origin(entry)
            if origin is None:
                raise ValueError(_bad_entry(what, entry))
            exact.add(origin)
        return cls(any_origin, null, frozenset(exact), tuple(wildcards))

    def matches(self, origin: Origin) -> bool:
        """Whether the parsed ``origin`` is listed, exactly or by a wildcard. Not a
        checkpoint."""
        if origin in self.exact:
            return True
        scheme, host, port = origin
        return any(
            scheme == w_scheme and port == w_port and host.endswith(suffix)
            for w_scheme, suffix, w_port in self.wildcards
        )


def _bad_entry(what: str, entry: str) -> str:
    hint = ""
    if "://" not in entry:
        hint = f' (add the scheme: "https://{entry}")'
    elif entry.endswith("/") or entry.count("/") > 2:
        hint = " (an origin has no path, not even a trailing slash)"
    return f"{what}: {entry!r} is not an origin{hint}; each entry is {_FORMS}"


def origin_header(scope: Scope) -> str | None:
    """The handshake's ``Origin`` header (the first, decoded as latin-1), or ``None``."""
    for name, value in scope["headers"]:
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


def own_origin(scope: Scope) -> Origin | None:
    """The origin of the page the client would open this websocket from if it were the app's
    own: the scope's scheme (``ws`` as ``http``, ``wss`` as ``https``) and its ``Host`` header.
    ``None`` without a ``Host`` header or with one that does not parse."""
    scheme = str(scope.get("scheme") or "ws").lower()
    for name, value in scope["headers"]:
        if name == b"host":
            return parse_origin(f"{_PAGE_SCHEMES.get(scheme, scheme)}://{value.decode('latin-1')}")
    return None


def is_foreign(scope: Scope, origin: str, policy: OriginPolicy) -> bool:
    """Whether a handshake with ``Origin: origin`` is refused under ``policy``: it is
    neither the scope's own origin nor listed. Not a checkpoint."""
    if policy.any_origin:
        return False
    if origin == "null":
        return not policy.null
    parsed = parse_origin(origin)
    if parsed is None:
        return True
    return parsed != own_origin(scope) and not policy.matches(parsed)


def route_policy(
    entries: Iterable[str] | OriginPolicy, *, websocket: bool, rule: str
) -> OriginPolicy:
    """The policy of a route's ``allowed_origins=`` (parsed once, at registration).

    Raises ``ValueError`` for an invalid entry, ``TypeError`` for an HTTP route (browsers do not
    send cross-site HTTP requests the way they open websockets; use CORS and CSRF protection).
    """
    if not websocket:
        raise TypeError(
            f"allowed_origins= applies to websocket routes only, and {rule!r} is an HTTP route;"
            " register the handler with websocket() (or add_url_rule(..., websocket=True))"
        )
    if isinstance(entries, OriginPolicy):
        return entries
    return OriginPolicy.parse(entries, f"allowed_origins of {rule!r}")
