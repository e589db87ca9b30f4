"""The scenarios that ship in the box (each module registers its scenarios on import)."""
