"""Data resource catalogue, matters and materials, grants, objections and DCAT-AP export (issue 6).

Importing the package registers the licence-type hook (catalog.licence_types), so every process that
loads the catalogue models publishes licence types into the 电子证照 base catalogue.
"""

from catalog import licence_types as _licence_types

_licence_types.register()
