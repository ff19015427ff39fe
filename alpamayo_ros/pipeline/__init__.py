"""One cycle of the stack as plain Python, no rclpy: inference, planning and control.

The ROS nodes, offline evaluation, the benchmark and the simulator all run a cycle through
these classes, so a figure measured offline is a figure of what the graph does.
"""
