"""Which redirect URIs a client may use, by registration or in its metadata document.

A code is only ever sent where the policy allows: https anywhere, http on the loopback interface
(native apps, RFC 8252 §7.3), and private-use schemes named like reversed domains (RFC 8252 §7.1).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from astravue_mcp.config import is_loopback

# Schemes a browser or app must never be sent to with a code, whatever a registration says.
FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"}


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI is outside the policy, or None: https; http on loopback; private-use schemes."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if parts.fragment:
        return f"{uri} has a fragment"
    if scheme == "https":
        return None if parts.hostname else f"{uri} has no host"
    if scheme == "http":
        return None if parts.hostname and is_loopback(parts.hostname) else f"{uri} uses http on a non-loopback host"
    if scheme in FORBIDDEN_SCHEMES or not scheme:
        return f"{uri} uses a scheme that cannot receive a code"
    # RFC 8252 §7.1: a native app's private-use scheme is a reversed domain name (com.example.app).
    if "." not in scheme:
        return f"{uri}: a private-use scheme must be a reversed domain name such as com.example.app"
    return None
