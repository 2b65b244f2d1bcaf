"""The operator dashboard: server-rendered pages served by the node under /ui, behind a login.

`mount_dashboard(operator_app, service, token, peer_status)` adds it to the operator server;
`dashboard_app(...)` builds it alone (for tests or another server).
"""

from node.http.dashboard.app import dashboard_app, mount_dashboard

__all__ = ["dashboard_app", "mount_dashboard"]
