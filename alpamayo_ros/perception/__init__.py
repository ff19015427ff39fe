"""Classical perception beside the model: what a camera shows plainly enough that no
network need guess it (the ego lane's markings, a lit lamp, clear road). Pure numpy and
OpenCV, no ROS."""


class PerceptionError(ValueError):
    """A detector that cannot work with the cameras it is given (each detector's own error
    derives from it), or a frame it cannot read."""
