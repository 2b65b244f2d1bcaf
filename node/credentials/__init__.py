"""Credentials of a node: its key and token files (written once, mode 0600, never logged), and
the authentication of peer requests (signed with a member's node key, replay-checked) and of
operator tokens.

May import: `node.errors`, `node.config`, `protocol`.
"""
