"""A node's configuration file round-trips: what `save` writes, `load_config` reads back equal,
whatever characters the values hold."""

from __future__ import annotations

import tomllib
from pathlib import Path

from node.config import CONFIG_NAME, NodeConfig, load_config


def test_saved_configuration_reads_back_equal_with_quotes_backslashes_and_control_characters(
    tmp_path: Path,
) -> None:
    config = NodeConfig(
        member_id='odd"member\\id',
        origin="odd\u202eorigin\x01.hashmesh\t",
        directory=tmp_path,
        peer_port=7999,
        push=False,
    )
    config.save()
    text = (tmp_path / CONFIG_NAME).read_text()
    assert text.startswith("# hashmesh node configuration")
    assert tomllib.loads(text)["member_id"] == 'odd"member\\id'
    assert load_config(tmp_path) == config
