"""HTTP routers, one per area of DESIGN.md §4."""
