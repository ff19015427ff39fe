"""Camera driver node: publishes every camera of a source as Image + CameraInfo.

What goes out, and on which topics and QoS, is ros.sensor_output's (shared with the
simulator). When the source knows the ego pose (synthetic world, recordings) it is
published at its own rate and at each frame capture instant (just before the frames; the
odometry tick that falls on a capture leaves it to the frame tick); the rig goes on
/tf_static at activation. A recording that logged the planner's set speed (a bag) has it
republished, latched, on `set_speed` each time it changes, before the frames it holds for.

With `lockstep` the driver owns the time (pipeline.lockstep): it publishes /clock, steps
through the odometry and camera instants as fast as the stack answers, and holds the clock
after each camera set until the planner's trajectory for it arrives, or its candidates
with none selected (no feasible plan: no trajectory comes; bounded, counted).
The other nodes run on use_sim_time; a run starts at the same stamp and gives the same
outputs every time.

A managed node: `configure` opens the source (a missing device fails here), `activate`
starts the frame and odometry timers, `deactivate` stops them (nothing is published while
inactive) and `cleanup` closes the source.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from alpamayo_ros_msgs.msg import Trajectory, TrajectoryCandidates
from rclpy.clock import Clock, ClockType
from rclpy.publisher import Publisher
from rclpy.timer import Timer
from std_msgs.msg import Float64

from alpamayo_ros.core.contract import HISTORY_PERIOD_NS, HISTORY_POSES, NS_PER_S
from alpamayo_ros.core.rig import CameraRig
from alpamayo_ros.core.stamped import classify_arrival
from alpamayo_ros.pipeline.lockstep import LOCKSTEP_START_NS, LockStep, StartGate, Step
from alpamayo_ros.resources import config_file
from alpamayo_ros.ros import conversions
from alpamayo_ros.ros.managed import ManagedNode
from alpamayo_ros.ros.runtime import LATCHED_QOS, OK, WARN, Diagnostics, declare_parameters, run
from alpamayo_ros.ros.sensor_output import SensorOutput
from alpamayo_ros.sensors import create_source
from alpamayo_ros.sensors.base import CameraFrame, CameraSource

# Prefetching starts this fraction of a frame period before the frames are due.
PREFETCH_LEAD = 0.3
# Lock-step: how often the wall-clock timer checks discovery and the answer's bound (an
# answer itself steps at once); time starts at the fixed LOCKSTEP_START_NS, so runs
# compare stamp for stamp.
LOCKSTEP_POLL_S = 0.01
# No answer can come before the model has its ego history (and the frames before t0).
MODEL_WARMUP_NS = (HISTORY_POSES - 1) * HISTORY_PERIOD_NS


class CameraDriver(ManagedNode):
    def __init__(self) -> None:
        super().__init__("camera_driver")
        self.params = declare_parameters(self, "camera_driver")
        self.diagnostics = Diagnostics(self, hardware_id=self.params["source"])
        self.diagnostics.update(WARN, "unconfigured: publishing nothing")
        self.source: CameraSource | None = None
        self.clocks: list[Timer] = []
        self.lockstep: LockStep | None = None
        # A recording's set speed, where it logged one (`publish_set_speed`).
        self.set_speed_publisher: Publisher | None = None
        self.set_speed_sent: float | None = None

    def configure(self) -> None:
        rig_file = self.params["rig_file"] or str(config_file("rig.yaml"))
        self.rig = CameraRig.load(rig_file, self.params["cameras"])
        source = self.params["source"]
        options = {
            name.removeprefix(f"{source}."): value
            for name, value in self.params.items()
            if name.startswith(f"{source}.")
        }
        self.source = create_source(source, self.rig, **options)
        if self.source.logs_set_speed:
            self.set_speed_publisher = self.create_publisher(Float64, "set_speed", LATCHED_QOS)
        self.output = SensorOutput(
            self,
            self.rig,
            self.params["camera_namespace"],
            self.params["frame_id"],
            self.params["odom_frame_id"],
            compressed=self.params["publish_compressed"],
            clock=self.params["lockstep"],
        )
        self.frames_published = 0
        self.last_odometry_ns: int | None = None
        self.next_tick_ns: int | None = None  # the frames to prefetch, once their time comes
        if self.params["lockstep"]:
            self.configure_lockstep()
        else:
            self.frame_timer = self.clock(self.params["rate_hz"], self.on_frame_tick)
            odometry_timer = self.clock(self.params["odometry_rate_hz"], self.on_odometry_tick)
            self.odometry_period_ns = odometry_timer.timer_period_ns
        self.diagnostics.update(WARN, "inactive: publishing nothing")

    def configure_lockstep(self) -> None:
        self.answers = self.create_subscription(Trajectory, "trajectory", self.on_answer, 10)
        self.no_plan_answers = self.create_subscription(
            TrajectoryCandidates, "candidates", self.on_candidates, 10
        )
        # Last: release() destroys the answers' subscriptions when lock-step is set up.
        self.lockstep = LockStep(
            LOCKSTEP_START_NS,
            round(NS_PER_S / self.params["rate_hz"]),
            round(NS_PER_S / self.params["odometry_rate_hz"]),
            self.params["lockstep_answer_timeout_s"],
            warmup_ns=MODEL_WARMUP_NS,
        )
        self.start_gate = StartGate(
            self.params["lockstep_start_timeout_s"], self.params["lockstep_settle_s"]
        )
        self.lockstep_ended = False
        self.clocks.append(
            self.create_timer(
                LOCKSTEP_POLL_S,
                self.on_lockstep_tick,
                clock=Clock(clock_type=ClockType.STEADY_TIME),
                autostart=False,
            )
        )

    def clock(self, rate_hz: float, callback: Callable[[], None]) -> Timer:
        """A timer that runs while the node is active."""
        self.clocks.append(self.create_timer(1.0 / rate_hz, callback, autostart=False))
        return self.clocks[-1]

    def activate(self) -> None:
        self.output.publish_rig(self.now_ns())
        for timer in self.clocks:
            timer.reset()
        self.diagnostics.update(OK, "active: waiting for the first frames")

    def deactivate(self) -> None:
        for timer in self.clocks:
            timer.cancel()
        self.diagnostics.update(WARN, "inactive: publishing nothing")

    def release(self) -> None:
        """What `configure` made, also when it failed half-way."""
        for timer in self.clocks:
            self.destroy_timer(timer)
        self.clocks = []
        if self.lockstep is not None:
            self.destroy_subscription(self.answers)
            self.destroy_subscription(self.no_plan_answers)
            self.lockstep = None
        if self.source is not None:
            self.source.close()
            self.source = None
        if self.set_speed_publisher is not None:
            self.destroy_publisher(self.set_speed_publisher)
            self.set_speed_publisher, self.set_speed_sent = None, None
        self.diagnostics.update(WARN, "unconfigured: publishing nothing")

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def tick_ns(self) -> int:
        """The instant this frame-timer call was scheduled for (the timer's grid point),
        not when the executor got round to it, so captures keep an exact period."""
        now_ns = self.now_ns()
        until_next = self.frame_timer.time_until_next_call()
        if until_next is None:
            return now_ns
        return min(now_ns, now_ns + until_next - self.frame_timer.timer_period_ns)

    def on_frame_tick(self) -> None:
        tick_ns = self.tick_ns()
        self.publish_frames(tick_ns)
        self.next_tick_ns = tick_ns + self.frame_timer.timer_period_ns

    def publish_frames(self, tick_ns: int) -> list[CameraFrame]:
        """The source's frames at `tick_ns` (with the ego pose at their capture first) and
        their camera infos; what was published."""
        frames = self.source.frames(tick_ns)
        # As it was at t0, the oldest of the newest frames (as evaluate --bag plans it).
        self.publish_set_speed(min(frame.stamp_ns for frame in frames) if frames else tick_ns)
        # The ego pose at the capture instant first, so the frames' history is complete
        # when they arrive; at the tick without frames too (the odometry tick left it here).
        self.publish_odometry(frames[0].stamp_ns if frames else tick_ns)
        self.output.publish_frames(frames)
        self.frames_published += len(frames)
        problem = self.source_problem()
        if problem:
            if problem != self.diagnostics.message:
                self.get_logger().warning(problem)
            self.diagnostics.update(WARN, problem, frames_published=self.frames_published)
        elif frames:
            publish_delay_ms = (self.now_ns() - frames[0].stamp_ns) / 1e6
            self.diagnostics.update(
                OK,
                "publishing",
                cameras=len(frames),
                frames_published=self.frames_published,
                publish_delay_ms=f"{publish_delay_ms:.1f}",
                **self.lockstep_values(),
            )
        return frames

    def publish_set_speed(self, stamp_ns: int) -> None:
        """The set speed a recording logged, each time it changes, before the frames it
        holds for (latched, so a planner that joins later has it too): a replayed drive is
        planned with the set speed it was driven with, as `evaluate --bag` plans it."""
        if self.set_speed_publisher is None:
            return
        value, sent = self.source.set_speed(stamp_ns), self.set_speed_sent
        if value is None:
            return
        # Unchanged: equal, or both NaN (a bad value goes out once; the planner reports it).
        if sent is not None and (value == sent or (math.isnan(value) and math.isnan(sent))):
            return
        self.set_speed_sent = value
        self.set_speed_publisher.publish(Float64(data=value))

    def on_lockstep_tick(self) -> None:
        """Start once the graph is discovered (or the bound passed), the start instant on
        /clock meanwhile; then check the answer's bound, which moves the clock on when it
        passes."""
        if not self.start_gate.open:
            if not self.start_gate.check(self.undiscovered(), time.monotonic_ns()):
                self.output.publish_clock(LOCKSTEP_START_NS)
                return
            if self.start_gate.missing:
                self.get_logger().warning(
                    f"lock-step starts without {', '.join(self.start_gate.missing)} after "
                    f"{self.params['lockstep_start_timeout_s']:.0f} s"
                )
        self.advance()

    def undiscovered(self) -> list[str]:
        """What lock-step waits for at the start: the VLA node (`lockstep_subscriber`) on
        every camera's image topic and on the odometry, the planner (`set_speed_subscriber`)
        on the set speed where the recording logged one, and a publisher of the answers."""
        missing = self.output.unsubscribed(
            [*self.output.image_topics, self.output.odometry.topic_name],
            self.params["lockstep_subscriber"],
        )
        if self.set_speed_publisher is not None:
            missing += self.output.unsubscribed(
                [self.set_speed_publisher.topic_name], self.params["set_speed_subscriber"]
            )
        if self.count_publishers(self.answers.topic_name) == 0:
            missing.append(self.answers.topic_name)
        return missing

    def on_answer(self, msg: Trajectory | TrajectoryCandidates) -> None:
        if self.lockstep.answer(conversions.stamp_ns(msg.header.stamp)) and self.start_gate.open:
            self.advance()

    def on_candidates(self, msg: TrajectoryCandidates) -> None:
        # A plan with no feasible candidate sends no trajectory: its candidates are the
        # planner's answer to those frames, not a stack that fell behind.
        if msg.selected_index == TrajectoryCandidates.NONE_SELECTED:
            self.on_answer(msg)

    def advance(self) -> None:
        """Step simulated time until a camera set goes out (then hold for its answer) or
        the recording ends."""
        while not self.source.finished:
            step = self.lockstep.next_step(time.monotonic_ns())
            if step is None:
                return
            self.publish_step(step)
        # The last camera set's answer (or its bound) before the end.
        if not self.lockstep_ended and not self.lockstep.holding(time.monotonic_ns()):
            self.lockstep_ended = True
            report = self.lockstep.report()
            self.get_logger().info(
                f"lock-step: the recording has ended after {report.simulated_s:.1f} s in "
                f"{report.wall_s:.1f} s ({report.speed:.1f}x real time); {report.answered} "
                f"of {report.expected} camera sets answered, {report.timeouts} timed out"
            )
            self.diagnostics.update(
                WARN,
                self.source_problem(),
                frames_published=self.frames_published,
                **self.lockstep_values(),
            )
            # The clock has stopped, and with it every timer on it: say so now.
            self.diagnostics.publish()

    def publish_step(self, step: Step) -> None:
        self.output.publish_clock(step.stamp_ns)
        if step.odometry_due:
            self.publish_odometry(step.stamp_ns)
        if step.frames_due:
            frames = self.publish_frames(step.stamp_ns)
            if frames:
                oldest_ns = min(frame.stamp_ns for frame in frames)
                self.lockstep.frames_sent(oldest_ns, time.monotonic_ns())
                # The next set while the stack thinks about this one.
                self.source.prefetch(step.stamp_ns + round(NS_PER_S / self.params["rate_hz"]))

    def lockstep_values(self) -> dict[str, str]:
        """Lock-step figures for the diagnostics; none in real time."""
        if self.lockstep is None:
            return {}
        report = self.lockstep.report()
        return {
            "lockstep_speed": f"{report.speed:.2f}",
            "lockstep_answered": str(report.answered),
            "lockstep_timeouts": str(report.timeouts),
        }

    def source_problem(self) -> str:
        """Why the source publishes less than it should, or "". In lock-step a recording
        has ended once its last camera set is answered (or its bound passed), not when its
        last frames go out: the status that says so carries the run's final figures."""
        if self.source.finished and (self.lockstep is None or self.lockstep_ended):
            return "the recording has ended: nothing more to publish"
        failed = self.source.failed_cameras
        return f"camera(s) {', '.join(failed)} stopped delivering frames" if failed else ""

    def on_odometry_tick(self) -> None:
        now_ns = self.now_ns()
        if not self.frame_tick_imminent():
            self.publish_odometry(now_ns)
        # The next frames, where the source can know them ahead, rendered late in the
        # frame period: early on, the stack is busy with the frames just sent.
        next_tick = self.next_tick_ns
        period_ns = self.frame_timer.timer_period_ns
        if next_tick is not None and now_ns >= next_tick - PREFETCH_LEAD * period_ns:
            self.next_tick_ns = None
            self.source.prefetch(next_tick)

    def frame_tick_imminent(self) -> bool:
        """Whether the frame timer is due (or overdue) within half an odometry period: its
        tick publishes the pose at the capture instant itself. When the two timers fell on
        the same instant, the odometry ran first: the frames waited for it (2-3 ms in
        `benchmark --graph`) and their own pose was dropped as older than the one just
        sent. Half a period also catches an odometry tick that runs a little late."""
        until_next = self.frame_timer.time_until_next_call()
        return until_next is not None and until_next < self.odometry_period_ns // 2

    def publish_odometry(self, stamp_ns: int) -> None:
        """The pose at `stamp_ns`, unless a newer one went out already (the two timers
        interleave; odometry stamps only increase, except after the clock jumped back)."""
        if not classify_arrival(stamp_ns, self.last_odometry_ns).keeps_sample:
            return
        pose = self.source.ego_pose(stamp_ns)
        if pose is not None:
            self.last_odometry_ns = stamp_ns
            self.output.publish_pose(pose)


def main(args: list[str] | None = None) -> int:
    return run(CameraDriver, args)


if __name__ == "__main__":
    raise SystemExit(main())
