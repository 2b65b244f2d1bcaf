"""NodeService.confirm: a member confirms another member's add it holds, and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node.app.consortium import build_consortium
from node.errors import RequestError
from protocol.entries import Add, Confirm, EntryRef, decode_entry
from tests.node.events.test_events import copy_log, md5, running


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_only_another_members_held_add_can_be_confirmed(tmp_path: Path) -> None:
    one, two = build_consortium(tmp_path, 2, now_ms()).configs
    async with running(one) as node1, running(two) as node2:
        await node2.submit([md5(1)])
        await node2.sign_pending()
        await copy_log(node2, node1)
        (own,) = await node1.submit([md5(2)])
        with pytest.raises(RequestError, match="own add"):
            await node1.confirm(own, "reviewed", "")
        with pytest.raises(RequestError, match="holds no entry"):
            await node1.confirm(EntryRef(two.origin, 5), "reviewed", "")
        with pytest.raises(RequestError, match="reason"):
            await node1.confirm(EntryRef(two.origin, 0), "agree", "")
        ref = await node1.confirm(EntryRef(two.origin, 0), "reviewed", "checked by an analyst")
        (raw,) = await node1.store.entries(one.origin, ref.index, ref.index + 1)
        assert decode_entry(raw) == Confirm(
            decode_entry(raw).timestamp_ms,
            EntryRef(two.origin, 0),
            "reviewed",
            "checked by an analyst",
        )
        # A confirmation is not an add: it cannot itself be confirmed.
        await node1.sign_pending()
        await copy_log(node1, node2)
        with pytest.raises(RequestError, match="not an add"):
            await node2.confirm(ref, "reviewed", "")
        assert isinstance(decode_entry((await node2.store.entries(two.origin, 0, 1))[0]), Add)
