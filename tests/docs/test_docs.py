"""The user documentation stays true to the code: the configuration table is the one the code
generates, every `hashmesh` command shown in a shell block parses with the real CLI parser (and
every command of the CLI is shown somewhere), every relative link and anchor resolves, and the
entry examples of the protocol specification decode to exactly their bytes."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli.main import build_parser
from node.config import NodeConfig
from protocol.entries import Add, Confirm, Dispute, Retract, decode_entry, encode_entry
from protocol.errors import DecodeError

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [*DOCS, ROOT / "README.md"]
CONFIG_START, CONFIG_END = "<!-- config:start -->", "<!-- config:end -->"
#: Placeholders such as <64 hex> or <their key> stand for one value; "1" fits ints and strings.
PLACEHOLDER = re.compile(r"<[A-Za-z0-9][^<>\n]*>")
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)\)")
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>"}


def fenced_blocks(text: str, language: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, lines) of every ``` block with this info string (indented ones too)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i].strip())
                i += 1
            yield start + 1, body
        i += 1


def outside_code(text: str) -> list[str]:
    """The lines of a markdown page that are not inside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def shell_commands(text: str) -> Iterator[tuple[int, str]]:
    """Every command line of the ```sh blocks, with continuation lines joined."""
    for start, body in fenced_blocks(text, "sh"):
        pending, first = "", start
        for offset, line in enumerate(body):
            if not pending:
                first = start + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            yield first, pending + line
            pending = ""


def hashmesh_argv(command: str) -> list[str] | None:
    """The arguments after `hashmesh` in a shell line, or None if it does not run hashmesh."""
    lexer = shlex.shlex(PLACEHOLDER.sub("1", command), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    if not words or words[0] not in ("hashmesh", ".venv/bin/hashmesh"):
        return None
    argv = []
    for word in words[1:]:
        if word in SHELL_OPERATORS:
            break
        argv.append(word)
    return argv


def parse_problem(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """Why the CLI parser refuses `argv`, or None if it parses (or prints help)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as done:
            if done.code not in (0, None):
                return err.getvalue().strip().splitlines()[-1]
    return None


def command_paths(parser: argparse.ArgumentParser) -> set[tuple[str, ...]]:
    """Every command of the CLI: ('init',), ('admin', 'create'), ..."""
    paths: set[tuple[str, ...]] = set()

    def walk(p: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and prefix:
            paths.add(prefix)
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*prefix, name))

    walk(parser, ())
    return paths


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in outside_code(page.read_text()):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def link_problems(page: Path) -> list[str]:
    """Relative links of a page whose file (or anchor) does not exist."""
    problems = []
    for line in outside_code(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                problems.append(f"{page.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{page.name}: {target} (no such heading)")
    return problems


def load_config_doc() -> object:
    spec = importlib.util.spec_from_file_location("config_doc", ROOT / "scripts/config_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_config_table_in_the_configuration_reference_is_the_generated_one() -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    assert text.count(CONFIG_START) == 1 and text.count(CONFIG_END) == 1
    shown = text.split(CONFIG_START)[1].split(CONFIG_END)[0].strip()
    generated: str = load_config_doc().config_table()  # type: ignore[attr-defined]
    assert shown == generated.strip(), (
        "run scripts/config_doc.py and paste it into configuration.md"
    )
    for name, _, _ in NodeConfig.fields_doc():
        assert f"| `{name}` |" in shown


def test_every_documented_hashmesh_command_parses_and_every_command_is_documented() -> None:
    parser = build_parser()
    problems, shown, seen = [], 0, set()
    for page in PAGES:
        for line_no, command in shell_commands(page.read_text()):
            argv = hashmesh_argv(command)
            if argv is None:
                continue
            shown += 1
            problem = parse_problem(parser, argv)
            if problem:
                problems.append(f"{page.name}:{line_no}: {command.strip()}\n    {problem}")
            seen.update(tuple(argv[:n]) for n in (1, 2))
    assert not problems, "\n".join(problems)
    assert shown > 60
    missing = sorted(" ".join(p) for p in command_paths(parser) if p not in seen)
    assert not missing, f"commands shown in no ```sh block of the docs: {missing}"


def test_the_command_check_catches_what_the_parser_refuses() -> None:
    page = "```sh\nhashmesh retract notanumber \\\n    --reason x\nls -l\n```\n"
    (line_no, command), *rest = list(shell_commands(page))
    assert line_no == 2 and rest[0][1] == "ls -l"
    argv = hashmesh_argv(command)
    assert argv == ["retract", "notanumber", "--reason", "x"]
    assert "invalid int value" in str(parse_problem(build_parser(), argv))
    assert hashmesh_argv("hashmesh export --format csv > out.csv") == ["export", "--format", "csv"]
    placeholder = hashmesh_argv("hashmesh submit pdq:<64 hex> --label x")
    assert placeholder == ["submit", "pdq:1", "--label", "x"]
    assert parse_problem(build_parser(), ["--help"]) is None


def test_every_relative_link_points_at_an_existing_file_and_heading() -> None:
    problems = [p for page in PAGES for p in link_problems(page)]
    assert not problems, "\n".join(problems)


def test_the_link_check_catches_missing_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# Title\n\n## Getting in: `hashmesh init`\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#getting-in-hashmesh-init) [web](https://example.com/x)\n"
        "[gone](c.md) [bad anchor](b.md#nope)\n```sh\n[in code](nowhere.md)\n```\n"
    )
    assert link_problems(page) == ["a.md: c.md (no such file)", "a.md: b.md#nope (no such heading)"]


def test_the_entry_examples_of_the_protocol_spec_decode_to_exactly_their_bytes() -> None:
    text = (ROOT / "docs/protocol.md").read_text()
    blocks = [(line, "".join(body)) for line, body in fenced_blocks(text, "hex")]
    assert len(blocks) >= 5
    kinds = set()
    for line, hex_text in blocks:
        raw = bytes.fromhex(hex_text)
        try:
            entry = decode_entry(raw)
        except DecodeError as e:
            pytest.fail(f"docs/protocol.md:{line}: {e}")
        assert encode_entry(entry) == raw, f"docs/protocol.md:{line}: not canonical"
        kinds.add(type(entry))
        if isinstance(entry, Add):
            assert f"{len(raw)} bytes" in text, f"docs/protocol.md:{line}: size not stated"
    assert kinds == {Add, Retract, Dispute, Confirm}
    entries = [decode_entry(bytes.fromhex(h)) for _, h in blocks]
    signal_types = {e.signal_type for e in entries if isinstance(e, Add)}
    assert {"md5", "url", "pdq", "vpdq"} <= signal_types


def test_an_entry_example_with_a_changed_byte_is_refused() -> None:
    text = (ROOT / "docs/protocol.md").read_text()
    _, body = next(fenced_blocks(text, "hex"))
    raw = bytearray.fromhex("".join(body))
    raw[0] = 0x97  # an array of 7 items: an add is 8
    with pytest.raises(DecodeError):
        decode_entry(bytes(raw))
    with pytest.raises(DecodeError):
        decode_entry(bytes.fromhex("".join(body)) + b"\x00")
