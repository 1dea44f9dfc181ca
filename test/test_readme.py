"""The README is in the order a user needs it: what the package is, the two set-up commands, the node
(launch, topics and services), then its parameters and the offline tools. Install variants, supported
versions and the method's details live on docs/ pages that the README links to, and those links resolve."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LAUNCH = "ros2 launch topreward_ros reward.launch.py"
TOPICS = "### Topics and services"
# Text that only the install variants (docs/INSTALL.md) need: none of it may come before the node.
INSTALL_VARIANT = re.compile(r"colcon|jetson|jetpack|rosdep|ROS_FROM_SYSTEM", re.IGNORECASE)
# docs page -> its first heading. The first three hold what used to be README sections.
PAGES = {
    "docs/INSTALL.md": "Installing topreward_ros",
    "docs/VERSIONS.md": "Supported versions",
    "docs/METHOD.md": "The method, exactly",
    "docs/PERFORMANCE.md": "Performance",
}
# Headings of the moved sections, which must not come back into the README.
MOVED_HEADINGS = ("Inside an existing ROS 2 install", "On a Jetson", "Supported versions", "The method, exactly",
                  "Rendering across transformers versions")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def headings(markdown: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"^(#{1,6}) +(.+)$", FENCE.sub("", markdown), re.MULTILINE)]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(markdown):
        base = anchor(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def position(readme: str, needle: str) -> int:
    index = readme.find(needle)
    assert index >= 0, f"README has no {needle!r}"
    return index


def test_the_node_comes_before_any_install_variant():
    readme = text(README)
    setup = position(readme, "\n    make demo\n"), position(readme, "\n    make test\n")
    launch, topics = position(readme, LAUNCH), position(readme, TOPICS)
    assert max(setup) < launch < topics
    variant = INSTALL_VARIANT.search(readme)
    if variant:
        assert variant.start() > topics, (
            f"install-variant text {variant.group()!r} comes before the node's launch command and topics")


def test_the_sections_come_in_the_order_a_user_needs_them():
    order = ["## Set up on a fresh machine", LAUNCH, TOPICS, "### Parameters", "### Raw images over DDS",
             "## Offline video evaluation", "## Rosbags: offline evaluation, live replay, calibration",
             "## Scoring collections"]
    readme = text(README)
    places = [position(readme, marker) for marker in order]
    assert places == sorted(places), "README sections out of order: " + ", ".join(
        marker for _, marker in sorted(zip(places, order)))


def test_the_moved_sections_are_not_back_in_the_readme():
    readme_headings = headings(text(README))
    for moved in MOVED_HEADINGS:
        assert not any(h.startswith(moved) for h in readme_headings), f"README has the moved section {moved!r} again"


def test_every_docs_page_is_linked_from_the_readme_and_starts_with_its_heading():
    linked = {target.split("#")[0] for target in LINK.findall(text(README))}
    for page, heading in PAGES.items():
        assert page in linked, f"README does not link {page}"
        path = ROOT / page
        assert path.is_file(), f"README links {page}, which does not exist"
        first = headings(text(path))[0]
        assert first == heading, f"{page} starts with {first!r}, not {heading!r}"


def test_every_relative_link_resolves():
    for source in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(text(source)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            page, _, fragment = target.partition("#")
            path = (source.parent / page).resolve() if page else source
            assert path.exists(), f"{source.relative_to(ROOT)} links {target}: no such file"
            if fragment and path.suffix == ".md":
                assert fragment in anchors(text(path)), f"{source.relative_to(ROOT)} links {target}: no such heading"


def test_every_program_is_in_the_readme():
    readme = text(README)
    programs = re.findall(r'"([\w-]+) = topreward_ros\.', text(ROOT / "setup.py"))
    assert "reward_node" in programs
    for program in programs:
        assert f"`{program}`" in readme, f"README does not name {program}"
