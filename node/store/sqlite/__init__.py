"""The default store, SQLite: the store (`store`), its statements (`writes`), the writer
process that owns the database's only write connection (`writer`, `writer_child`), and the
one-thread worker pattern the store's reads and the event outbox share (`worker`,
`own_thread`).

May import: `node.store` (its interface and schema), `node.errors`, `protocol`.
"""
