"""Pure logic of alpamayo_ros (no ROS imports): buffering, alignment, kinematics, checks, control.

Kept free of rclpy so it can be unit-tested and reused offline (replay, evaluation).
"""
