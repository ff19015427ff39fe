"""Managed (lifecycle) nodes: bring-up in steps, and a node that is not active publishes
nothing (the ROS 2 node lifecycle, as rclpy's LifecycleNode implements it).

A subclass puts what its transitions do in `configure`, `activate`, `deactivate` and
`release`. rclpy turns an exception in a transition into a bare ERROR with no word of why;
here it is logged with its message. With `autostart` (the nodes' default, so `ros2 launch`
and the project's launcher need no lifecycle manager) a configuration error at start-up
ends the process with its one-line message, as in an unmanaged node, and
`ros2 lifecycle set <node> deactivate|activate` still works on the running node.
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.lifecycle import (
    LifecycleNode,
    LifecyclePublisher,
    LifecycleState,
    TransitionCallbackReturn,
)

from alpamayo_ros.configuration import ConfigurationError


class TransitionFailed(ConfigurationError):
    """A start-up transition failed for a reason other than the configuration."""


class ManagedNode(LifecycleNode):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.configured = False
        self.active = False
        self._failure: Exception | None = None

    def configure(self) -> None:
        """Create publishers (lifecycle ones), subscriptions and stopped timers; open
        devices."""

    def activate(self) -> None:
        """Start producing output."""

    def deactivate(self) -> None:
        """Stop producing output; keep what was configured. The lifecycle publishers are
        still enabled, so a last message can go out (the control bridge's stop)."""

    def release(self) -> None:
        """Undo `configure`, also one that failed half-way (close what was opened); the
        lifecycle publishers are destroyed after it."""

    def autostart(self) -> None:
        """Configure and activate now; raises the error that made a step fail."""
        for name, transition in (
            ("configure", self.trigger_configure),
            ("activate", self.trigger_activate),
        ):
            self._failure = None
            if transition() != TransitionCallbackReturn.SUCCESS:
                if isinstance(self._failure, ConfigurationError):
                    raise self._failure
                raise TransitionFailed(f"{self.get_name()}: {name} failed: {self._failure!r}")

    def destroy_node(self) -> None:
        self._run("destroy", self._stop)
        super().destroy_node()

    # rclpy's transition callbacks; an ERROR result leads rclpy to on_error.
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.configured = True  # so that a configure that fails half-way is released
        return self._run("configure", self.configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        super().on_activate(state)  # enables the lifecycle publishers
        result = self._run("activate", self.activate)
        self.active = result == TransitionCallbackReturn.SUCCESS
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        result = self._run("deactivate", self.deactivate)
        super().on_deactivate(state)  # disables the lifecycle publishers, after a last word
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("cleanup", self._stop)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("shutdown", self._stop)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Everything released: back to unconfigured, ready to be configured again."""
        return self._run("recovery", self._stop)

    def _stop(self) -> None:
        """From whatever state: output stopped, resources released."""
        if self.active:
            self.active = False
            self.deactivate()
        if self.configured:
            self.configured = False
            try:
                self.release()
            finally:  # never left behind to be duplicated by the next configure
                for publisher in list(self.publishers):
                    if isinstance(publisher, LifecyclePublisher):
                        self.destroy_lifecycle_publisher(publisher)

    def _run(self, step: str, action: Callable[[], None]) -> TransitionCallbackReturn:
        try:
            action()
        except Exception as error:  # logged here: rclpy would drop the message
            self._failure = error
            self.get_logger().error(f"{step} failed: {error}")
            return TransitionCallbackReturn.ERROR
        return TransitionCallbackReturn.SUCCESS
