"""Making records by the million (a catch-up makes several an entry): the fast way to make a
NamedTuple whose every field is given.

A NamedTuple's own __new__ is generated Python that calls tuple.__new__ with its fields;
calling tuple.__new__ directly, every field given in order, saves that frame, a third of
making a store row. Used for protocol/replica.py's ReceivedEntry and node/store/rows.py's
EntryRow; with every field given it makes exactly what the class's own __new__ makes.
"""

from __future__ import annotations

#: new_record(Cls, (field, ...)): a `Cls` NamedTuple from all its fields, in order.
new_record = tuple.__new__
