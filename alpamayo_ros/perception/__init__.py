"""Classical perception beside the model: what a camera shows plainly enough that no
network need guess it (the ego lane's markings). Pure numpy and OpenCV, no ROS."""
