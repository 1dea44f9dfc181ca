"""Each test run has a DDS domain of its own: locked against other runs on this machine, and refused
when its graph already holds nodes the run did not start."""

import os
import subprocess
import sys

import pytest

import dds

pytestmark = pytest.mark.dds  # starts ROS 2 processes and talks over DDS


def test_a_domain_held_by_another_run_is_never_shared(tmp_path):
    """Runs that start together, even at the same first choice, get different domains."""
    mine, fd = dds.claim_domain([7, 8], lock_dir=tmp_path, wait=0.0)
    try:
        other_run = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import dds\n"
                     "print(dds.claim_domain([7, 8], lock_dir=Path(sys.argv[2]), wait=0.0)[0])")
        result = subprocess.run([sys.executable, "-c", other_run, str(dds.ROOT / "test"), str(tmp_path)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert (mine, int(result.stdout)) == (7, 8)
        with pytest.raises(dds.SharedDomain, match="no DDS domain of 7..7 is free"):
            dds.claim_domain([7], lock_dir=tmp_path, wait=0.0)
    finally:
        os.close(fd)
    assert dds.claim_domain([7], lock_dir=tmp_path, wait=0.0)[0] == 7  # released with its holder


def test_a_domain_with_nodes_of_others_is_refused(tmp_path):
    """A node this run did not start (here a camera on a domain no run holds) makes its domain unusable:
    the claim names it, without waiting for the whole watch once the node is seen."""
    domain, fd = dds.claim_domain(wait=0.0)  # a real domain no other run uses, held while the test runs
    camera = subprocess.Popen([sys.executable, str(dds.ROOT / "test" / "camera_publisher.py"), "--seconds", "300"],
                              env={**os.environ, **dds.domain_environment(domain)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        refused = f"domain {domain} has nodes this run did not start: /camera_publisher"
        with pytest.raises(dds.SharedDomain, match=refused):
            dds.claim_domain([domain], lock_dir=tmp_path, wait=dds.DISCOVERY_TIMEOUT)
    finally:
        camera.kill()
        camera.wait()
        os.close(fd)
