"""TOPReward for ROS 2: dense rewards from log P(" True") of a video VLM."""
