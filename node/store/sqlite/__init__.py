"""The default store, SQLite: the store (`store`), its writes (`writes`), the writer process
that owns the database's only write connection (`writer`, `writer_child`, and their messages'
`framing`), the one-thread worker pattern the store's reads and the event outbox share
(`worker`, `own_thread`), and what every connection runs (`statements`).

May import: `node.store` (its interface and schema), `node.errors`, `protocol`.
"""
