"""hashmesh for python-threatexchange and HMA: a SignalExchangeAPI that fetches the consortium's
hashes from a hashmesh node's operator API (hashmesh_threatexchange/exchange.py).

Install with the `threatexchange` extra (`pip install 'hashmesh[threatexchange]'`), then
`threatexchange config extensions add hashmesh_threatexchange`. This package uses the node only
through its operator HTTP API (node/cli/operator_client.py's client); docs/threatexchange.md.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from hashmesh_threatexchange.exchange import (
    HashmeshCheckpoint,
    HashmeshCollabConfig,
    HashmeshCredentials,
    HashmeshSignalExchangeAPI,
)
from hashmesh_threatexchange.records import HashmeshOpinion, HashmeshSignalMetadata

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(HashmeshSignalExchangeAPI,))

__all__ = [
    "TX_MANIFEST",
    "HashmeshCheckpoint",
    "HashmeshCollabConfig",
    "HashmeshCredentials",
    "HashmeshOpinion",
    "HashmeshSignalExchangeAPI",
    "HashmeshSignalMetadata",
]
