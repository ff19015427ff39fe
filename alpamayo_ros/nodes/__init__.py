"""One thin rclpy node per concern, plus the message conversions and runtime they share."""
