"""The user's choices: the notice that asks for one, and what making one does to a running client.

``set_consent`` (allow, deny, unset), ``forget`` and the erasure requests it starts, the
first-run notice (and ``print_once``, which prints a notice only once), and ``adopt``
(``tallystick.testing`` taking the tool's config). ``Client``'s methods of the same names
call these. A module of its own because a run only rarely needs it: the notice is shown
once per installation and a choice is made once in a while, but every recording run
would load this code with ``_client`` (each kilobyte loaded costs the host tool
microseconds on every run).
"""

# ruff: noqa: BLE001, S110  (never raise into or print into the host tool)

from __future__ import annotations

import os

from tallystick.client import _consent, _queue
from tallystick.client._config import Config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tallystick.client._client import Client


def notice(client: Client) -> None:
    """Print the first-run notice, once: only the run that creates the marker prints."""
    config = client.config
    print_once(
        client,
        _consent.notice_marker(client.data_dir),
        config.notice or _consent.default_notice(config.app_id, config.env_prefix, config.consent_command),
    )
    from tallystick.client import _collection

    declared = client._declared()
    tracked = declared if declared is not None else _collection.builtin_items()
    _collection.remember(client.data_dir, _collection.fingerprint(tracked))  # what `allow` will cover


def print_once(client: Client, marker: str, text: str) -> None:
    """Print ``text`` to the log stream unless ``marker`` exists; only the run that creates it prints."""
    config = client.config
    try:
        os.makedirs(client.data_dir, mode=0o700, exist_ok=True)
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return  # shown before, or nowhere to remember it: stay quiet
    try:
        config.log.write(text if text.endswith("\n") else text + "\n")
        config.log.flush()
    except Exception:
        pass


def set_consent(client: Client, allowed: bool | None) -> None:
    """Store the user's choice; disabling deletes the queue and rotates the user ID."""
    if client.sink is not None or not client.data_dir:
        return
    os.makedirs(client.data_dir, mode=0o700, exist_ok=True)
    if allowed is None:
        _queue.remove(client.consent_path)
        return
    state = _consent.ALLOWED if allowed else _consent.DISABLED
    _queue.atomic_write(client.consent_path, state.encode())
    if allowed:
        from tallystick.client import _collection

        declared = client._declared()
        _collection.cover(client.data_dir, declared if declared is not None else _collection.builtin_items())
        client.coverage = _collection.Coverage((), None if declared is None else declared.keys())
        if client.session is not None:
            client.session.coverage = client.coverage
        if client.session is None and client.decision is not None and not client.decision.record:
            client.decision = _consent.decide(
                state, client.config.environ, client.config.env_prefix, stderr_tty=False, ci=client.ci
            )
            if client.decision.record and client._version_problem() is None:
                client.local_only = client.local_only or client.decision.local_only
                client._begin(client._user_id())
        return
    client.session = None
    if client.uploader is not None:
        client.uploader.stopped = True
    queue = client.queue or _queue.Queue(
        client.data_dir, max_files=1, max_bytes=1, max_age_seconds=0, clock=client.config.clock, count=client.count
    )
    queue.clear()
    _queue.remove(client.user_id_path)


def forget(client: Client) -> list[str]:
    """Erase this installation's data: the queue here, and (by a queued request) everything sent.

    Queues an erasure request for every user ID it keeps a secret for, deletes the
    queue, the user ID and the secrets, drops this run's session, and starts the
    upload process when it can. The consent choice stays. The user IDs erased.
    """
    if client.sink is not None or not client.data_dir:
        return []
    os.makedirs(client.data_dir, mode=0o700, exist_ok=True)
    erased = _queue.queue_erasure_requests(client.data_dir, client.config.clock())
    client.session = None
    if client.uploader is not None:
        client.uploader.stopped = True
        client.uploader = None
    queue = client.queue or _queue.Queue(
        client.data_dir, max_files=1, max_bytes=1, max_age_seconds=0, clock=client.config.clock, count=client.count
    )
    client.queue = queue
    queue.clear()
    _queue.remove(client.user_id_path)
    if erased and not (client.config.local_only or client.debug):
        send_erasures(client)
    return erased


def send_erasures(client: Client) -> None:
    """Start the upload process for waiting erasure requests (a back-off after failures still applies)."""
    state = _queue.read_state(client.data_dir)
    interval = client.config.upload_interval
    if not (
        _queue.worth_starting(state, client.config.clock(), ci=client.ci, interval=interval)
        or state.outcome == _queue.SENT
    ):
        return
    if not client._check_server_url():
        return
    if client._spawns():
        from tallystick.client import _spawn

        pid = _spawn.start(client.config, client.data_dir, ci=client.ci)
        if pid is None:
            client.count("uploadNotStarted")
            return
        timeout = client.config.ci_exit_timeout if client.ci else client.config.exit_timeout
        if timeout > 0:  # for tests; by default the tool never waits for the upload process
            _spawn.wait(pid, timeout)
    else:
        client._make_uploader().start()


def adopt(client: Client, config: Config) -> None:
    """Take the tool's application ID and version (tallystick.testing); a bad one raises."""
    from tallystick.client._errors import ConfigError

    if not isinstance(config, Config):
        raise ConfigError(f"configure() takes a tallystick.client.Config, not {type(config).__name__}")
    client.config.app_id, client.config.version = config.app_id, config.version
    if client.session is not None:
        client.session.app_id, client.session.version = config.app_id, config.version
    problem = client._check_config()
    if problem is not None:
        raise ConfigError(problem)
