"""Data resource catalogue, matters and materials, grants, objections and DCAT-AP export (issue 6; not built yet)."""
