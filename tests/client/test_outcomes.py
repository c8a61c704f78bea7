"""What `status` and `show` say an upload's outcome means."""

from __future__ import annotations

import pytest

from tallystick.client._outcomes import cause


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        pytest.param("sent", None, id="sent"),
        pytest.param("http502", "could not reach the server (502)", id="502"),
        pytest.param("http504", "gave up waiting for the server (504)", id="504"),
        pytest.param("http403", "a proxy's or a firewall's rule", id="403"),
        pytest.param("http307", "a redirect (307) that is not followed", id="redirect"),
        pytest.param("http500", "the server, or a gateway in front of it, failed (500)", id="500"),
        pytest.param("certificate", "SSL_CERT_FILE", id="certificate"),
        pytest.param("attempt", "ended before it could say", id="attempt"),
    ],
)
def test_each_outcome_says_what_it_means(outcome: str, said: str | None) -> None:
    """Each failure names its cause in words; a success says nothing."""
    found = cause(outcome, "https://telemetry.example.org", {})
    assert found is None if said is None else said in (found or "")


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        pytest.param({}, "https_proxy names none; set https_proxy=http://user:password@host:port", id="none"),
        pytest.param({"HTTPS_PROXY": "proxy.corp:3128"}, "HTTPS_PROXY names none", id="no-credentials"),
        pytest.param({"https_proxy": "http://bob:hunter2@proxy.corp:3128"}, "refused those in https_proxy", id="wrong"),
        pytest.param({"all_proxy": "bob:hunter2@proxy.corp:3128"}, "refused those in all_proxy", id="all-proxy"),
    ],
)
def test_a_407_says_whether_the_proxy_setting_holds_credentials(environ: dict[str, str], said: str) -> None:
    """A proxy's 407: which variable to fix and whether it names a user, never the password itself."""
    found = cause("proxyauth", "https://telemetry.example.org", environ) or ""
    assert said in found and "hunter2" not in found and "bob" not in found
