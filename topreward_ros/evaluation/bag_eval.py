"""Scoring the episodes of a bag through the node's reward stream: one update per sampled frame,
exactly the updates (score, reward, progress, success) the node publishes when the bag is
replayed to it at a pace its model keeps up with. An episode that fails is recorded with its
error; the others are still scored."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time

from tqdm import tqdm

from ..errors import TopRewardError
from ..method.scoring import Score
from ..sources.bags import BagEpisodes, Episode
from ..stream.episode_stream import SampledFrame
from ..stream.reward_stream import RewardStream, update_streams
from ..stream.settings import RewardSettings
from .curve import Curve, CurveReport


@dataclasses.dataclass
class EpisodeResult:
    index: int
    task: str
    report: CurveReport | None   # None when the episode failed
    seconds: float               # compute time of the real curve
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.report is None

    @property
    def updates_per_second(self) -> float:
        return len(self.report.curve.scores) / self.seconds if self.seconds > 0 else math.inf

    def row(self) -> dict:
        if self.failed:
            return {"episode": self.index, "task": self.task, "error": self.error}
        curve = self.report.curve
        return {"episode": self.index, "task": self.task, "frames": curve.lengths[-1], "updates": len(curve.scores),
                "voc": curve.voc, "static_voc": self.report.static.voc, "final_reward": curve.values[-1],
                "final_progress": curve.updates[-1].progress, "success": curve.updates[-1].success,
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


def run_episode(rewards: RewardStream, frames, times, task: str, stamps=None) -> Curve:
    """One update per frame through the reward stream, as the node publishes them: past max_frames a
    frame the stride skips has no update (the next one covers it, as live)."""
    curve = run_episodes([rewards], [(frames, times, task, stamps)])[0]
    if isinstance(curve, Exception):
        raise curve
    return curve


def run_episodes(streams: list[RewardStream], episodes: list[tuple]) -> list[Curve | Exception]:
    """Episodes (frames, times, task, stamps or None) in lockstep, one reward stream each, whose engines are
    sessions of one pool: step t updates every episode that has a t-th frame, all in one forward. Each curve
    equals ``run_episode``'s for that episode alone; an episode that fails gets its exception, the others go on."""
    for rewards in streams:
        rewards.reset()
    updates: list[list] = [[] for _ in episodes]
    failed: dict[int, Exception] = {}
    for step in range(max((len(frames) for frames, *_ in episodes), default=0)):
        batch = [k for k, (frames, *_) in enumerate(episodes) if step < len(frames) and k not in failed]
        requests = []
        for k in batch:
            frames, times, task, stamps = episodes[k]
            stamp = stamps[step] if stamps is not None else times[step]
            requests.append((streams[k], [SampledFrame(times[step], stamp, frames[step], False)], task))
        for k, result in zip(batch, update_streams(requests)):
            if isinstance(result, Exception):
                failed[k] = result
            elif result is not None:
                updates[k].append(result)
    curves: list[Curve | Exception] = []
    for k, (_frames, _times, _task, stamps) in enumerate(episodes):
        if k in failed:
            curves.append(failed[k])
            continue
        contrastive = streams[k].engine.config.contrastive
        curves.append(Curve(lengths=[u.frames for u in updates[k]], times=[u.time for u in updates[k]],
                            scores=[Score(u.true_logprobs, u.false_logprobs, contrastive) for u in updates[k]],
                            stamps=[u.stamp for u in updates[k]] if stamps is not None else None,
                            updates=updates[k]))
    return curves


def evaluate_episodes(reward_model, settings: RewardSettings, bag: BagEpisodes, tasks: list[str],
                      show_progress: bool = True) -> list[EpisodeResult]:
    rewards = RewardStream.from_settings(settings, reward_model)
    results = []
    for episode, task in tqdm(list(zip(bag.episodes, tasks)), desc="episodes", unit="episode",
                              disable=not show_progress):
        start = time.perf_counter()
        try:
            curve = run_episode(rewards, episode.frames, episode.times, task, episode.stamps)
            seconds = time.perf_counter() - start
            static = run_episode(rewards, [episode.frames[0]] * len(episode.frames), episode.times, task)
        except TopRewardError as exc:
            results.append(EpisodeResult(episode.index, task, None, time.perf_counter() - start, str(exc)))
            continue
        results.append(EpisodeResult(episode.index, task, CurveReport(curve=curve, static=static), seconds))
    return results


def summarize(results: list[EpisodeResult]) -> dict:
    failed = [r for r in results if r.failed]
    results = [r for r in results if not r.failed]
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
        "failed_episodes": [r.row() for r in failed],
    }
