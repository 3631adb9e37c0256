"""Adapters to image APIs behind one small protocol (see `base`), found by name (see `registry`)."""
