"""Recording and replay of the graph's topics as rosbag2 bags (rosbags library)."""
