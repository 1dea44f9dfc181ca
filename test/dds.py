"""Real DDS between processes for the node tests: an isolated domain, the node started with the
command line launch_ros would build, camera publishers in their own processes, and a listener."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import launch_standins

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# How long a test waits for an event (discovery, a node's first rewards): a bound against hanging, not a
# performance claim. A busy 2-core machine has taken close to 30 s to load two nodes' models.
DISCOVERY_TIMEOUT = 120.0
# Domains a test run may take: valid for Fast DDS on any OS (0..101 keep its ports below Linux's
# ephemeral range), clear of 0 (every ROS user's default) and of 100..199 (100 + pid % 100, the
# choice of older checkouts, which hold no lock).
DOMAIN_IDS = range(1, 100)
LOCK_DIR = Path("/tmp")  # machine-wide, whatever TMPDIR a run has
GRAPH_CHECK_SECONDS = 5.0  # how long a new domain is watched for nodes of others before the run starts


class SharedDomain(RuntimeError):
    """No DDS domain this run can have to itself."""


def claim_domain(candidates=DOMAIN_IDS, lock_dir: Path = LOCK_DIR, start: int = 0,
                 wait: float = GRAPH_CHECK_SECONDS) -> tuple[int, int]:
    """The first of ``candidates`` (from index ``start``, wrapping) that no other run holds and no
    node uses, and the open descriptor of its lock.

    A domain is held through an exclusive lock on ``lock_dir/topreward-dds-domain-<id>.lock``, which
    the kernel releases when this process ends, however it ends. A locked domain is also watched for
    ``wait`` seconds: one whose graph shows nodes (left over from a killed run, a user's own) is
    passed over, and named in the error if no domain is left."""
    used = []
    for k in range(len(candidates)):
        domain = candidates[(start + k) % len(candidates)]
        try:
            fd = os.open(lock_dir / f"topreward-dds-domain-{domain}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:
            continue  # another user's lock file, which we may not open: that domain is theirs
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        others = foreign_nodes(domain, wait)
        if not others:
            return domain, fd
        os.close(fd)
        used.append(f"domain {domain} has nodes this run did not start: {', '.join(sorted(others))}")
    raise SharedDomain(f"no DDS domain of {candidates[0]}..{candidates[-1]} is free: the others are locked by "
                       f"other test runs (lock files in {lock_dir}); " + ("; ".join(used) or "none in use"))


def foreign_nodes(domain: int, wait: float = GRAPH_CHECK_SECONDS) -> list[str]:
    """The nodes on ``domain`` a probe sees within ``wait`` seconds (it returns at the first), run in
    a process of its own with the tests' discovery settings."""
    probe = ("import json, sys, time, rclpy\n"
             "rclpy.init()\n"
             "node = rclpy.create_node('topreward_domain_probe')\n"
             "deadline = time.monotonic() + float(sys.argv[1])\n"
             "others = []\n"
             "while not others and time.monotonic() < deadline:\n"
             "    time.sleep(0.1)\n"
             "    others = [ns.rstrip('/') + '/' + n for n, ns in node.get_node_names_and_namespaces()\n"
             "              if n != node.get_name()]\n"
             "print(json.dumps(others))\n"
             "rclpy.shutdown()\n")
    result = subprocess.run([sys.executable, "-c", probe, str(wait)], capture_output=True, text=True,
                            timeout=wait + 60, env={**os.environ, **domain_environment(domain)})
    if result.returncode != 0:
        raise SharedDomain(f"the DDS domain probe failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


_claimed: tuple[int, int] | None = None  # (domain, lock descriptor), held for the life of this process


def isolated_domain() -> int:
    """This run's DDS domain, claimed on first use (conftest claims it before the first test)."""
    global _claimed
    if _claimed is None:
        _claimed = claim_domain(start=os.getpid() % len(DOMAIN_IDS))  # runs started together spread out
    return _claimed[0]


def ros_environment() -> dict:
    """The environment of this run's ROS processes: the run's own DDS domain."""
    return domain_environment(isolated_domain())


def domain_environment(domain: int) -> dict:
    """A ROS process on ``domain``: discovery on this host only, the large-image Fast DDS profile."""
    return {
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(ROOT / "config" / "fastdds_large_images.xml"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


class Process:
    """A child process with its output in a file (read back with .output())."""

    started: list[Process] = []  # stopped after each test (conftest), whatever the test did

    def __init__(self, argv: list[str], log: Path):
        self.log = log
        self._file = log.open("w")
        self.popen = subprocess.Popen(argv, stdout=self._file, stderr=subprocess.STDOUT,
                                      env={**os.environ, **ros_environment()})
        Process.started.append(self)

    def output(self) -> str:
        if not self._file.closed:
            self._file.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._file.close()
        return self.popen.returncode

    @classmethod
    def stop_all(cls) -> None:
        """Stop what a failed test left running: a stray node on the run's domain would answer the
        next test's service calls and publish into its topics."""
        while cls.started:
            cls.started.pop().stop(timeout=5.0)


def start_node(workdir: Path, **launch_arguments) -> Process:
    """reward_node, started exactly as `ros2 launch topreward_ros reward.launch.py ARGS` would start it."""
    _, nodes = launch_standins.launch({k: str(v) for k, v in launch_arguments.items()})
    argv = launch_standins.command_line(nodes[0], str(BIN / nodes[0].kwargs["executable"]), workdir)
    return Process(argv, workdir / "node.log")


def start_camera(workdir: Path, name: str = "camera", **options) -> Process:
    argv = [sys.executable, str(ROOT / "test" / "camera_publisher.py")]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return Process(argv, workdir / f"{name}.log")


class Listener:
    """Subscribes to the node's outputs in this process; a background thread spins it."""

    def __init__(self, node: str = "/topreward"):
        """``node``: the reward node's fully qualified name; its outputs are ``node``/reward etc."""
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import Bool, Float32, String

        self.node = rclpy.create_node(f"test_listener_{os.getpid()}_{id(self)}")
        self.clients: dict = {}  # service name -> its client
        self.lock = threading.Lock()
        self.updates, self.rewards, self.successes, self.diagnostics = [], [], [], []
        self.status_name = f"{node.lstrip('/')}: reward"
        self.update_subscription = self.node.create_subscription(String, f"{node}/update", self._on_update, 100)
        self.node.create_subscription(Float32, f"{node}/reward", lambda m: self._add(self.rewards, m.data), 100)
        self.node.create_subscription(Bool, f"{node}/success", lambda m: self._add(self.successes, m.data), 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _add(self, target, value):
        with self.lock:
            target.append((time.time(), value))

    def _on_update(self, msg):
        self._add(self.updates, json.loads(msg.data))

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == self.status_name:
                level = status.level[0] if isinstance(status.level, bytes) else status.level  # a byte field
                self._add(self.diagnostics, (level, status.message, {kv.key: kv.value for kv in status.values}))

    def wait_for(self, predicate, timeout: float = DISCOVERY_TIMEOUT, what: str = "condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if predicate(self):
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_for_update_publisher(self, matched: bool = True) -> None:
        """Wait until the subscription to the node's updates has (``matched``) or has no matched publisher.
        The outputs are volatile: an update published before the match never arrives."""
        self.wait_for(lambda s: (s.update_subscription.get_publisher_count() > 0) == matched,
                      what=f"the node's update publisher {'matched' if matched else 'gone'}")

    def call(self, service_type, name: str, request):
        """Call service ``name`` on a client made at its first call and kept (``ask`` says why)."""
        from topreward_ros.ros.services import ask

        if name not in self.clients:
            self.clients[name] = self.node.create_client(service_type, name)
        return ask(self.clients[name], request)

    def publish(self, msg_type, topic: str, msg, wait_for_subscriber: float = DISCOVERY_TIMEOUT) -> None:
        publisher = self.node.create_publisher(msg_type, topic, 10)
        deadline = time.time() + wait_for_subscriber
        while publisher.get_subscription_count() == 0 and time.time() < deadline:
            time.sleep(0.05)
        publisher.publish(msg)

    def publish_until(self, publisher, msg, predicate, what: str, period: float = 0.25,
                      timeout: float = DISCOVERY_TIMEOUT) -> None:
        """Publish ``msg`` every ``period`` s until ``predicate`` holds. A best-effort camera subscription
        misses messages sent before it has matched the publisher, or while its queue is full on a busy
        machine; resending until the effect is seen waits for the event instead of guessing a delay."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            publisher.publish(msg)
            try:
                return self.wait_for(predicate, timeout=period, what=what)
            except AssertionError:
                continue
        raise AssertionError(f"timed out after {timeout:.0f} s publishing until {what}")

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
