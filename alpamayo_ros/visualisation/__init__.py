"""RViz views (MarkerArray, Path) of what the graph decided, built from its messages."""
