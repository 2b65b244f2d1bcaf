"""`hashmesh audit proof` on a node set up from a later roster: the bundle carries the roster
chain the node serves, from the genesis once the node fetched the earlier versions; before
that it warns, and an auditor pinning the genesis refuses the bundle."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from node.cli import audit_proofs
from node.cli.main import main
from node.cli.operator_client import OperatorClient
from node.credentials.key_files import load_key
from node.formats.json_views import parse_add
from protocol.roster import SignedRoster
from tests.node.lossy import new_md5
from tests.node.services import consortium, now_ms, served


async def test_a_node_set_up_from_a_later_roster_writes_bundles_from_the_genesis_once_it_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path)
    config = setup.configs[0]
    _, admin = load_key(setup.admin_key_paths[0])
    first = SignedRoster.decode(setup.roster).roster
    second = dataclasses.replace(first, version=2, issued_ms=now_ms())
    config.roster_path.write_bytes(SignedRoster(second.encode(), ()).with_signature(admin).encode())
    genesis = tmp_path / "genesis.bin"
    genesis.write_bytes(setup.roster)
    item = new_md5()
    bundle = tmp_path / "proof.json"

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    async with served(config) as node:
        api = OperatorClient(node.operator_url, node.token)
        monkeypatch.setattr(audit_proofs, "client", lambda args: api)
        await node.service.submit([parse_add(item, now_ms())])
        await node.service.sign_pending()
        proof = ("audit", "proof", f"md5:{item['value']}", "--out", str(bundle), "--json")

        code, out, err = await asyncio.to_thread(run, *proof)
        assert code == 0 and json.loads(out)["first_roster_version"] == 2
        assert "WARNING" in err and "version 2" in err
        code, out, _ = run("audit", "verify-proof", str(bundle), "--genesis", str(genesis))
        assert code == 5, out

        # What a sync with a peer does: the versions before ours, verified as a chain to it.
        assert await node.service.rosters.adopt_earlier([setup.roster]) == 1
        code, out, err = await asyncio.to_thread(run, *proof)
        assert code == 0 and json.loads(out)["first_roster_version"] == 1 and err == ""
    code, out, _ = run("audit", "verify-proof", str(bundle), "--genesis", str(genesis))
    assert code == 0 and "valid" in out, out
