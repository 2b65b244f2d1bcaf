"""hashmesh's pure protocol: records, encoding, Merkle logs, signed notes, roster, replica.

Nothing here performs I/O or reads the clock: bytes go in, objects or ProtocolErrors come out.
An auditor's tool needs only this package.
"""
