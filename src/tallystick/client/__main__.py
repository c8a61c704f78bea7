"""``python -m tallystick.client``: see and change what a tool's telemetry does on this machine.

python -m tallystick.client show --app mytool      # consent, user ID, every queued session as sent
python -m tallystick.client allow --app mytool     # opt in for good
python -m tallystick.client disable --app mytool   # opt out: deletes the queue, rotates the user ID
python -m tallystick.client reset --app mytool     # forget the choice (back to unset)
python -m tallystick.client forget --app mytool    # erase: the queue here, and what was sent (by a request)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from tallystick.client import _consent, _queue
from tallystick.client._client import Client
from tallystick.client._config import Config
from tallystick.client._outcomes import write
from tallystick.client._queue import ANSWER_SUFFIX, SUFFIX, Queue


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tallystick.client", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("show", "show the consent state and exactly what is queued to be sent"),
        ("allow", "opt in: record sessions and send them"),
        ("disable", "opt out: record nothing, delete the queue, forget the user ID (also: deny)"),
        ("reset", "forget the choice: back to unset"),
        (
            "forget",
            "erase this installation's data: delete the queue and the user ID here, and queue a request that "
            "makes the server delete every session sent under it (sent by the tool's next run)",
        ),
    ):
        aliases = ["deny"] if name == "disable" else []
        command = sub.add_parser(name, help=text, description=text, aliases=aliases)
        command.add_argument("--app", required=True, help="the tool's application ID, e.g. mytool")
        command.add_argument("--data-dir-name", help="the tool's data directory name (default: the app ID)")
        command.add_argument("--data-dir", help="the telemetry data directory itself")
        if name == "show":
            command.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def report(config: Config, data_dir: str, as_json: bool) -> str:
    """What ``show`` prints: the consent state, the last upload and every queued session as it will be sent."""
    stored = _consent.read_state(os.path.join(data_dir, "consent"))
    decision = _consent.decide(stored, os.environ, config.env_prefix, stderr_tty=False, ci=False)
    queue = Queue(data_dir, max_files=0, max_bytes=0, max_age_seconds=0, clock=config.clock, count=lambda _r, _n: None)
    sessions = []
    for entry in queue.entries():
        loaded = queue.load(entry, 1024 * 1024)
        if loaded is not None:
            sessions.append(json.loads(loaded[0]))
    rejected = []
    try:
        names = sorted(name for name in os.listdir(queue.rejected_directory) if name.endswith(SUFFIX))
    except OSError:
        names = []
    for name in names:
        answer = _read_text(os.path.join(queue.rejected_directory, name + ANSWER_SUFFIX))
        try:
            answer_value: object = json.loads(answer) if answer else None
        except ValueError:
            answer_value = answer
        rejected.append({"file": name, "serverAnswer": answer_value})
    held = []
    for entry in queue.entries(queue.held_directory):
        try:
            held.append({"file": entry.name, "retryAfter": os.stat(entry.path).st_mtime})
        except OSError:
            continue
    user_file = os.path.join(data_dir, "user-id")
    try:
        with open(user_file, encoding="ascii") as f:
            user_id: str | None = f.read().strip()
    except OSError:
        user_id = None
    state = _queue.read_state(data_dir)
    upload_log = _read_text(os.path.join(data_dir, "upload.log"))
    from tallystick.client import _bodylimit, _collection
    from tallystick.client._outcomes import cause

    limit = _bodylimit.read(data_dir, config.clock())

    erasures = len(_queue.erasures_waiting(data_dir))
    covered = _collection.read(os.path.join(data_dir, _collection.COVERS_FILE))
    latest = _collection.read(os.path.join(data_dir, _collection.COLLECTION_FILE))
    not_covered = sorted(latest - covered) if covered is not None and latest is not None else []
    found = {
        "app": config.app_id,
        "dataDirectory": data_dir,
        "storedConsent": stored,
        "recordingNow": decision.record,
        "localOnly": decision.local_only,
        "reason": decision.reason,
        "userId": user_id,
        "queued": sessions,
        "rejected": rejected,
        "heldBack": held,
        "nextUpload": state.next or None,
        "failedUploadsInARow": state.failures,
        "lastUpload": state.outcome or None,
        "lastUploadCause": cause(state.outcome, config.server_url, config.environ) if state.failures else None,
        "bodyLimit": {"bytes": limit[0], "until": limit[1]} if limit else None,
        "uploadLog": upload_log,
        "erasureRequestsWaiting": erasures,
        "notCoveredByConsent": not_covered,
    }
    if as_json:
        return json.dumps(found, indent=2)
    return _as_text(config, found, queue, state)


def _as_text(config: Config, found: dict[str, Any], queue: Queue, state: _queue.UploadState) -> str:
    """``show``'s text: ``found`` (what ``--json`` prints) for a person."""
    data_dir, stored, user_id = found["dataDirectory"], found["storedConsent"], found["userId"]
    erasures, not_covered = found["erasureRequestsWaiting"], found["notCoveredByConsent"]
    rejected, held, sessions = found["rejected"], found["heldBack"], found["queued"]
    upload_log = found["uploadLog"]
    lines: list[str] = []
    lines.append(f"Telemetry of {config.app_id}")
    lines.append(f"  data directory:  {data_dir}")
    lines.append(f"  stored choice:   {stored}")
    lines.append(f"  in this shell:   {'on' if found['recordingNow'] else 'off'} ({found['reason']})")
    lines.append(f"  user ID:         {user_id or '(none)'}")
    if state.outcome:
        failed = f", {state.failures} failed in a row" if state.failures else ""
        lines.append(f"  last upload:     {state.outcome}{failed}; next not before {time.ctime(state.next)}")
    if found["lastUploadCause"]:
        lines.append(f"  why:             {found['lastUploadCause']}")
    if found["bodyLimit"]:
        limit = found["bodyLimit"]
        lines.append(
            f"  body limit:      a proxy on the way refused larger requests: batches kept to {limit['bytes']} bytes "
            f"until {time.ctime(limit['until'])} (let 1 MiB through it to send in fewer requests)"
        )
    if erasures:
        lines.append(f"  erasure:         {erasures} request(s) waiting to be sent, before any session")
    if not_covered:
        lines.append(f"  withheld:        {', '.join(not_covered)} (new since you allowed; allow again to record them)")
    lines.append(
        f"  rejected:        {len(rejected)} session(s) the server refused, kept in {queue.rejected_directory}"
    )
    for item in rejected:
        lines.append(f"    {item['file']}: the server answered {json.dumps(item['serverAnswer'])}")
    if held:
        lines.append(
            f"  held back:       {len(held)} session(s) refused as too large by a proxy in front of the server "
            f"(its 413, not the server's, or no answer while smaller ones got one), kept in {queue.held_directory} "
            f"and tried again once a day until {config.max_age_days:g} days old"
        )
        for item in held:
            lines.append(f"    {item['file']}: next try after {time.ctime(float(item['retryAfter']))}")
    if upload_log:
        lines.append("  last upload process said:")
        lines.extend(f"    {line}" for line in upload_log.splitlines()[-6:])
    lines.append(f"  queued:          {len(sessions)} session(s), sent as they are below")
    for session in sessions:
        lines.append(json.dumps(session, indent=2))
    return "\n".join(lines)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(64 * 1024)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = Config(args.app, "0", "http://localhost", args.data_dir_name, data_dir=args.data_dir)
    data_dir = config.resolved_data_dir()
    if args.command == "show":
        write(report(config, data_dir, args.json), sys.stdout)
        return 0
    if args.command == "forget":
        config.server_url = ""  # not known here: the tool's next run sends the request
        client = Client(config)
        client.data_dir = data_dir
        erased = client.forget()
        if erased:
            write(
                f"{config.app_id} telemetry: deleted the queue and the user ID here; an erasure request for "
                f"{', '.join(erased)} waits in {data_dir} and is sent by {config.app_id}'s next run",
                sys.stdout,
            )
        else:
            write(
                f"{config.app_id} telemetry: deleted the queue and the user ID here; no user ID with a kept secret, "
                "so no erasure request (for data sent by older versions, ask the maintainers: `show` prints the ID)",
                sys.stdout,
            )
        return 0
    client = Client(config)
    client.data_dir = data_dir
    choice = {"allow": True, "disable": False, "deny": False, "reset": None}[args.command]
    client.set_consent(choice)
    if choice:
        from tallystick.client import _collection

        _collection.cover(data_dir, None)  # what the tool's latest run collects: that is what was shown
    write(f"{config.app_id} telemetry: {client.stored_consent()} ({data_dir})", sys.stdout)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `show | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
