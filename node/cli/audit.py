"""`hashmesh audit ...`: what an auditor runs. `verify` checks a node's copy of every log
offline; `proof` writes a provenance bundle for one hash; `verify-proof` checks a bundle with
no network; `report` is a transparency report over a period. The checks themselves live in
protocol.audit and protocol.bundle.

Only the arguments live here; each body is imported when its command runs: node.cli.audit_verify,
node.cli.audit_proofs, node.cli.audit_report.
"""

from __future__ import annotations

from pathlib import Path

from node.cli.common import Command, Subcommands, add_json_arg, add_node_arg

VERIFY = "node.cli.audit_verify"
PROOFS = "node.cli.audit_proofs"
REPORT = "node.cli.audit_report"


def register(sub: Subcommands) -> None:
    audit = sub.add_parser("audit", help="auditors: verify logs and provenance offline")
    cmds = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("verify", help="check a node's copy of every log, offline")
    p.add_argument("directory", type=Path, help="the node's directory (its data is only read)")
    p.add_argument("--genesis", type=Path, help="the pinned first roster (default: the node's)")
    add_json_arg(p)
    p.set_defaults(func=Command(VERIFY, "cmd_verify"))

    p = cmds.add_parser("proof", help="write a provenance bundle for a hash")
    p.add_argument("hash", metavar="TYPE:VALUE")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--confirmations",
        action="store_true",
        help="also write a bundle for each member's confirmation of the add, next to --out",
    )
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(PROOFS, "cmd_proof"))

    p = cmds.add_parser("report", help="a transparency report over a period, as JSON and HTML")
    p.add_argument("directories", nargs="+", type=Path, help="nodes' directories (data only read)")
    p.add_argument("--days", type=float, default=30.0, help="the period: this many days back")
    p.add_argument("--html", type=Path, help="also write a readable page with charts here")
    add_json_arg(p)
    p.set_defaults(func=Command(REPORT, "cmd_report"))

    p = cmds.add_parser("verify-proof", help="check a provenance bundle with no network")
    p.add_argument("bundle", type=Path)
    p.add_argument("--genesis", type=Path, help="the pinned first roster")
    add_json_arg(p)
    p.set_defaults(func=Command(PROOFS, "cmd_verify_proof"))
