"""What the ROS-facing code shares: message conversions and the node runtime (parameters,
diagnostics, main). The nodes, the visualisation and the command line build on it."""
