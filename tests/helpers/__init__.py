"""Shared test builders. Test modules import from here, never from each other."""
