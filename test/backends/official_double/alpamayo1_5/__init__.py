"""Test double of the official `alpamayo1_5` package (see ../README.md)."""
