"""Scoring the episodes of a bag with the streaming engine: one update per sampled frame,
exactly the updates the node publishes when the bag is replayed to it."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time

from tqdm import tqdm

from ..sources.bags import BagEpisodes, Episode
from .curve import Curve, CurveReport
from ..method.engine import StreamingEngine
from ..errors import TopRewardError
from ..method.scoring import ScoringConfig


@dataclasses.dataclass
class EpisodeResult:
    index: int
    task: str
    report: CurveReport
    seconds: float         # compute time of the real curve

    @property
    def updates_per_second(self) -> float:
        return len(self.report.curve.scores) / self.seconds if self.seconds > 0 else math.inf

    def row(self) -> dict:
        curve = self.report.curve
        return {"episode": self.index, "task": self.task, "frames": curve.lengths[-1], "updates": len(curve.scores),
                "voc": curve.voc, "static_voc": self.report.static.voc, "final_reward": curve.values[-1],
                "updates_per_second": self.updates_per_second}


def episode_tasks(episodes: list[Episode], default_task: str | None, listed: dict[int, str]) -> list[str]:
    """Each episode's task: listed (per-episode YAML) > its marker > the default."""
    tasks = []
    for episode in episodes:
        task = listed.get(episode.index) or episode.marker_task or default_task
        if not task or not task.strip():
            raise TopRewardError(f"episode {episode.index} has no task: pass --task or list it in --episodes-yaml")
        tasks.append(task.strip())
    return tasks


def run_episode(engine: StreamingEngine, frames, times, task: str, stamps=None) -> Curve:
    engine.reset()
    updates = [engine.push(frame, t, task) for frame, t in zip(frames, times)]
    return Curve(lengths=[u.num_frames for u in updates], times=list(times), scores=[u.score for u in updates],
                 stamps=list(stamps) if stamps is not None else None)


def evaluate_episodes(reward_model, config: ScoringConfig, bag: BagEpisodes, tasks: list[str], max_frames: int,
                      show_progress: bool = True) -> list[EpisodeResult]:
    engine = StreamingEngine(reward_model, config, max_frames=max_frames)
    results = []
    for episode, task in tqdm(list(zip(bag.episodes, tasks)), desc="episodes", unit="episode",
                              disable=not show_progress):
        start = time.perf_counter()
        curve = run_episode(engine, episode.frames, episode.times, task, episode.stamps)
        seconds = time.perf_counter() - start
        static = run_episode(engine, [episode.frames[0]] * len(episode.frames), episode.times, task)
        results.append(EpisodeResult(episode.index, task, CurveReport(curve=curve, static=static), seconds))
    return results


def summarize(results: list[EpisodeResult]) -> dict:
    vocs = [r.report.curve.voc for r in results if not math.isnan(r.report.curve.voc)]
    statics = [r.report.static.voc for r in results if not math.isnan(r.report.static.voc)]
    updates = sum(len(r.report.curve.scores) for r in results)
    seconds = sum(r.seconds for r in results)
    return {
        "episodes": len(results),
        "voc_mean": statistics.fmean(vocs) if vocs else math.nan,
        "voc_std": statistics.pstdev(vocs) if vocs else math.nan,
        "voc_defined": len(vocs),
        "static_voc_mean": statistics.fmean(statics) if statics else math.nan,
        "updates": updates,
        "updates_per_second": updates / seconds if seconds > 0 else math.nan,
        "per_episode": [r.row() for r in results],
    }
