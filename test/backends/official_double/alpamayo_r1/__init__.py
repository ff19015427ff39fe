"""Test double of the official `alpamayo_r1` package (see ../README.md)."""
