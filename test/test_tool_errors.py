"""Every bad option of the offline tools is one `error:` line and exit status 2, before the model
loads (the model given is a directory that does not exist, so reaching it would say so), with no
traceback and nothing written."""

import pytest

from test_eval_video import run_tool

NO_MODEL = "/nonexistent/model"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    assert run_tool("topreward-make-sample-video", str(root / "clip.mp4"), "--seconds", "2", "--fps", "5").returncode == 0
    assert run_tool("topreward-make-sample-bag", str(root / "bag"), "--progress", "1.0", "--seconds", "2",
                    "--fps", "5").returncode == 0
    (root / "malformed.yaml").write_text("prompts: [unclosed")
    (root / "latin1.yaml").write_bytes("prompts: ['Voil\xe0 {task} The answer is:']".encode("latin-1"))
    (root / "keys.yaml").write_text("episodes: {first: open the drawer}")
    (root / "null.yaml").write_text("episodes: {0: null}")
    (root / "a_file").write_text("not a folder")
    return root


def assert_one_error_line(result, expected: str):
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "model directory not found" not in result.stderr


@pytest.mark.parametrize("options,expected", [
    (["--prefixes", "1"], "must be an integer from 2 to"),
    (["--prefixes", "0"], "must be an integer from 2 to"),
    (["--prefixes", "-3"], "must be an integer from 2 to"),
    (["--prefixes", "1e12"], "not an integer"),
    (["--fps", "nan"], "must be a positive finite number"),
    (["--fps", "inf"], "must be a positive finite number"),
    (["--prompts-file", "{root}/malformed.yaml"], "not valid YAML"),
    (["--prompts-file", "{root}/latin1.yaml"], "cannot read prompt file"),
    (["--output", "{root}/a_file"], "exists and is not a folder"),
])
def test_eval_video_bad_options(inputs, options, expected):
    options = [o.format(root=inputs) for o in options]
    result = run_tool("topreward-eval-video", str(inputs / "clip.mp4"), "--task", "put the block in the bowl",
                      "--model", NO_MODEL, "--output", str(inputs / "never"), *options)
    assert_one_error_line(result, expected)
    assert not (inputs / "never").exists()


@pytest.mark.parametrize("options,expected", [
    (["--sample-fps", "nan"], "must be a positive finite number"),
    (["--max-frames", "5"], "must be an even integer from 4 to 1024"),
    (["--camera-slop", "-1"], "must be a finite number >= 0"),
    (["--gap", "-1"], "must be a positive finite number"),
    (["--gap", "nan"], "must be a positive finite number"),
    (["--prompts-file", "{root}/malformed.yaml"], "not valid YAML"),
    (["--prompts-file", "{root}/latin1.yaml"], "cannot read prompt file"),
    (["--episodes-yaml", "{root}/keys.yaml"], "is not an episode number"),
    (["--episodes-yaml", "{root}/null.yaml"], "the task must be a non-empty string, got None"),
    (["--output", "{root}/a_file"], "exists and is not a folder"),
])
def test_eval_bag_bad_options(inputs, options, expected):
    options = [o.format(root=inputs) for o in options]
    result = run_tool("topreward-eval-bag", str(inputs / "bag"), "--task", "put the block in the bowl",
                      "--model", NO_MODEL, "--output", str(inputs / "never"), *options)
    assert_one_error_line(result, expected)
    assert not (inputs / "never").exists()


@pytest.mark.parametrize("labels,expected", [
    ("episodes: [{bag: bag, episode: first, success: true}, {bag: bag, episode: 1, success: false}]",
     "episode must be an episode number"),
    ("episodes: [{bag: bag, episode: 0, success: true, task: 7}, {bag: bag, episode: 1, success: false}]",
     "task must be a non-empty string"),
    ("episodes: [{bag: bag, episode: 0, success: true}, {bag: bag, episode: 0, success: false}]",
     "labelled both success and failure"),
    ("episodes: [{bag: bag, episode: 0, success: false}, {bag: bag, episode: 1, success: false}]",
     "need at least one success and one failure episode, got only failures"),
])
def test_calibrate_bad_labels_fail_before_the_model(inputs, tmp_path, labels, expected):
    (tmp_path / "bag").symlink_to(inputs / "bag")
    (tmp_path / "labels.yaml").write_text(labels)
    result = run_tool("topreward-calibrate", str(tmp_path / "labels.yaml"), "--model", NO_MODEL,
                      "--output", str(tmp_path / "params.yaml"))
    assert_one_error_line(result, expected)
    assert not (tmp_path / "params.yaml").exists()


@pytest.mark.parametrize("options,expected", [
    (["--rate", "nan"], "--rate must be positive"),
    (["--rate", "inf"], "--rate must be positive"),
    (["--rate", "0"], "--rate must be positive"),
    (["--loop", "0"], "--loop at least 1"),
])
def test_replay_bad_options(inputs, options, expected):
    result = run_tool("topreward-replay", str(inputs / "bag"), *options)
    assert_one_error_line(result, expected)
