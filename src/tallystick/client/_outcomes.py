"""What an upload's outcome (``upload-state``'s third word) means, in words a user can act on.

For ``mytool telemetry status`` and ``show``, and how every telemetry command prints (``write``); never
loaded by a recording run. The host tool itself says nothing when uploads fail: these commands are where
a user (or whoever helps them) finds out why.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

CAUSES = {
    "proxy": "the proxy cannot be reached, refused the tunnel, or closed the connection with no answer",
    "certificate": (
        "the server's TLS certificate does not verify: behind a proxy that intercepts TLS, point SSL_CERT_FILE "
        "or REQUESTS_CA_BUNDLE at a file holding your company's CA"
    ),
    "tls": "the TLS handshake failed",
    "timeout": "no complete answer within the request timeout",
    "refused": "nothing listens at the server's address (connection refused)",
    "dns": "the server's name does not resolve",
    "network": "the network failed, or the connection was closed with no answer",
    "protocol": "what answered is not an HTTP server",
    "unreadable": "a batch was answered by something that is not the server (a captive portal's or a proxy's page)",
    "http429": "the server asked to wait (429); nothing is sent before the time it gave",
    "http503": "the server is unavailable (503) and asked to wait; nothing is sent before the time it gave",
    "http502": "a proxy or gateway on the way could not reach the server (502); retried after a back-off",
    "http504": "a proxy or gateway on the way gave up waiting for the server (504); retried after a back-off",
    "attempt": "an upload is under way, or its process ended before it could say how it went",
    "stopped": "the upload stopped before the end: telemetry was turned off meanwhile, or its minute ran out",
}


def cause(outcome: str, server_url: str = "", environ: Mapping[str, str] | None = None) -> str | None:
    """Why uploads that ended in ``outcome`` failed and what to do, or None for a success (or an unknown word)."""
    if outcome == "proxyauth":
        return _proxy_auth(server_url, environ or {})
    found = CAUSES.get(outcome)
    if found is not None or not outcome.startswith("http") or not outcome[4:].isdigit():
        return found
    status = int(outcome[4:])
    if 300 <= status < 400:
        return f"a redirect ({status}) that is not followed; the upload log says where it led"
    if status in (401, 403):
        return f"something in front of the server refused the request ({status}): a proxy's or a firewall's rule"
    if status >= 500:
        return f"the server, or a gateway in front of it, failed ({status}); retried after a back-off"
    return f"an answer ({status}) that is not the server's; retried after a back-off"


def _proxy_auth(server_url: str, environ: Mapping[str, str]) -> str:
    """A 407's cause, saying whether the proxy setting in this environment holds credentials (never them)."""
    scheme = server_url.partition(":")[0].lower() or "https"
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        value = environ.get(name, "").strip()
        if value:
            break
    else:
        name, value = f"{scheme}_proxy", ""
    what = "the proxy wants a user name and password (407)"
    authority = (value.partition("://")[2] if "://" in value else value).partition("/")[0]
    if "@" in authority:
        return f"{what} and refused those in {name}: correct them there (percent-encoded), as for your other tools"
    return (
        f"{what}: {name} names none; set {name}=http://user:password@host:port (percent-encoded), "
        "as for your other tools"
    )


def write(text: str, out: TextIO) -> None:
    """Print ``text``; what the stream's encoding cannot show is escaped, never a traceback.

    The data directory's path is the user's: ``/home/josé`` under ``PYTHONIOENCODING=ascii`` or a
    C locale without UTF-8 mode, or undecodable bytes in ``HOME`` (lone surrogates), cannot be
    encoded as they are; the line then shows ``\\xe9`` where the character was.
    """
    try:
        print(text, file=out, flush=True)
    except UnicodeEncodeError:  # raised before anything is written: the whole text goes out escaped
        encoding = getattr(out, "encoding", None) or "ascii"
        print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"), file=out, flush=True)
