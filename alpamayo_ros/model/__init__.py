"""The embedded VLA: a small Alpamayo-R1-shaped model that runs on a laptop CPU."""
