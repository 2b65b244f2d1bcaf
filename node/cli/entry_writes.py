"""`submit`, `retract`, `dispute` and `confirm`: the commands that add entries to the member's
own log through its node's operator API. A submission is retried with the same
Idempotency-Key while its outcome may be unknown.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from node.cli.common import (
    EXIT_OK,
    UsageError,
    client,
    parse_hash_arg,
    print_json,
)
from node.cli.file_batches import hash_files, shown, submit_in_batches

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient


def cmd_submit(args: argparse.Namespace) -> int:
    hashes = [parse_hash_arg(h) for h in args.hashes]
    files = hash_files(args.file, args.force, "submit")
    if not hashes and not files:
        raise UsageError("nothing to submit: give TYPE:VALUE arguments or --file")
    fields: dict[str, Any] = {"labels": args.label}
    if args.incident:
        fields["incident"] = args.incident
    if args.reference:
        fields["reference"] = args.reference
    key = args.idempotency_key or str(uuid.uuid4())
    api = client(args)
    entries: list[dict[str, Any]] = []
    by_file: list[dict[str, Any]] = []
    for done in submit_in_batches(
        lambda items, request_key: submit_with_retries(api, items, request_key)["entries"],
        hashes,
        files,
        fields,
        key,
    ):
        entries.extend(done.entries)
        if done.file is not None:
            by_file.append({"file": done.file, "entries": done.entries})
        if not args.json:
            head = "" if done.file is None else f"{done.file}  "
            for item, ref in zip(done.items, done.entries, strict=True):
                added = shown(item["signal_type"], item["value"])
                print(f"{head}added {added} as {ref['log']} #{ref['index']}")
    if args.json:
        print_json({"entries": entries, "files": by_file})
    return EXIT_OK


#: Tries of one submission when the node is unreachable or answers 503, and the wait before
#: the first retry (doubled each time). Every try sends the same Idempotency-Key.
SUBMIT_TRIES = 3
SUBMIT_RETRY_S = 2.0


def submit_with_retries(api: OperatorClient, items: list[dict[str, Any]], key: str) -> Any:
    """POST /v1/submit, trying again with the same key when the outcome may be unknown: the
    node then answers a retry with the entries it already added, never a second copy."""
    from node.cli.operator_client import NodeUnavailableError, NodeUnreachableError

    wait = SUBMIT_RETRY_S
    for attempt in range(1, SUBMIT_TRIES + 1):
        try:
            return api.call(
                "POST", "/v1/submit", {"items": items}, headers={"Idempotency-Key": f'"{key}"'}
            )
        except (NodeUnreachableError, NodeUnavailableError) as e:
            if attempt == SUBMIT_TRIES:
                raise
            print(f"{e}; trying again in {wait:.0f} s (Idempotency-Key {key})", file=sys.stderr)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable: the last try returns or raises")


def cmd_retract(args: argparse.Namespace) -> int:
    result = client(args).call("POST", "/v1/retract", {"index": args.index, "reason": args.reason})
    if args.json:
        print_json(result)
    elif result.get("appended", True):
        print(f"retracted entry {args.index}: retraction is #{result['entry']['index']}")
    else:
        # Retracted before (another request, or an earlier run): the node appended nothing.
        print(f"entry {args.index} was already retracted by #{result['entry']['index']}")
    return EXIT_OK


def _about_an_entry(args: argparse.Namespace, path: str, done: str, noun: str) -> int:
    """`dispute` and `confirm`: another member's entry, with a reason code and text."""
    body = {"log": args.log, "index": args.index, "reason_code": args.reason_code}
    body["text"] = args.text
    result = client(args).call("POST", path, body)
    if args.json:
        print_json(result)
    else:
        print(f"{done} {args.log} #{args.index}: {noun} is #{result['entry']['index']}")
    return EXIT_OK


def cmd_dispute(args: argparse.Namespace) -> int:
    return _about_an_entry(args, "/v1/dispute", "disputed", "dispute")


def cmd_confirm(args: argparse.Namespace) -> int:
    return _about_an_entry(args, "/v1/confirm", "confirmed", "confirmation")
