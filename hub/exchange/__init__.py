"""The exchange use cases (DESIGN.md §2): materials check, fetch, verify, and the holder consents they rely on.

Importing the package registers the push-notice hook on licence changes (hub.exchange.notices), so every
process that loads the schema tells relying departments when a licence they used changes.
"""

from hub.exchange import notices as _notices

_notices.register()
