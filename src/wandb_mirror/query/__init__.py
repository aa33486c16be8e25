"""query layer (see DESIGN.md)."""
