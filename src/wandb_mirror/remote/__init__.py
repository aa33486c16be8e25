"""remote layer (see DESIGN.md)."""
