"""The command-line programs, one module each (setup.py's console_scripts run their main()). The package
exports nothing and imports none of them: each program loads only what it needs."""

__all__: list[str] = []

# The programs that talk over DDS: they import rclpy (directly or through topreward_ros.ros) and need ROS 2. The
# other tools run wherever the Python dependencies install (test/test_ros_programs.py keeps this list true).
ROS_PROGRAMS = ("demo", "play_video", "replay")
