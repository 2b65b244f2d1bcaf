"""The domain core: the node service (`service`) that owns our log (`own_log`: appends and
checkpoint signing) and the node's view of every peer's log; peers' logs as verified replicas
fed by pushes and pulls (`peer_logs`) through the catch-up pipeline (`pipeline`) under each
log's lock (`log_locks`); pages and proofs as we serve them (`log_proofs`); the trusted roster
chain (`rosters`); our checkpoint keys through a rotation (`log_keys`); witnessing
(`witness`); the peer API's bodies (`wire`); the status report and alerts (`status`); the
listeners of durable ranges, each handed the range and its decodings, each failure kept to
its listener (`listeners`).

May import: `node.matching`, `node.formats`, `node.store`, `node.credentials`, `node.config`,
`node.errors`, `protocol`.
"""
