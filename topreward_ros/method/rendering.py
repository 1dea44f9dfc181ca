"""The TOPReward rendering of (video, prompt) as Qwen3-VL token ids.

Layout, as transformers' Qwen3VLProcessor produces it for one video in an open user turn
(no assistant turn, no generation prompt)::

    <|im_start|>user\\n<|vision_start|>            prefix (bare rendering: only <|vision_start|>)
    <0.5 seconds><|vision_start|><|video_pad|>*n<|vision_end|>   one block per pair of frames
    <|vision_end|>{prompt} True                     suffix: closes the video, the claim, the answer

Rendered here directly (token by token) so a streaming cache can append one block at a
time; test_rendering pins it to the processor's own output.
"""

from __future__ import annotations

from ..errors import TopRewardError

import dataclasses

TEXT, VIDEO = 0, 2  # mm_token_type_ids values used by Qwen3-VL's get_rope_index


class RenderError(TopRewardError, RuntimeError):
    """The tokenizer cannot produce the documented rendering."""


def timestamp_text(seconds: float) -> str:
    return f"<{seconds:.1f} seconds>"


@dataclasses.dataclass(frozen=True)
class Segment:
    """Token ids with their modality types (TEXT or VIDEO)."""

    ids: list[int]
    types: list[int]

    def __add__(self, other: "Segment") -> "Segment":
        return Segment(self.ids + other.ids, self.types + other.types)

    def __len__(self) -> int:
        return len(self.ids)


class Renderer:
    def __init__(self, tokenizer, role_markers: bool = True):
        self.tokenizer = tokenizer
        self.role_markers = role_markers
        self.vision_start = self._special("<|vision_start|>")
        self.vision_end = self._special("<|vision_end|>")
        self.video_pad = self._special("<|video_pad|>")
        # Any special token in a prompt or task (<|im_end|>, <|vision_start|>, <|endoftext|>, ...) would
        # change the rendering's structure: refused.
        self.special_ids = set(tokenizer.all_special_ids) | {
            i for i, token in tokenizer.added_tokens_decoder.items() if token.special}
        answer = tokenizer.encode(" True", add_special_tokens=False)
        if len(answer) != 1:
            raise RenderError(f"' True' encodes to {len(answer)} tokens; the answer must be one token")
        self.answer_id = answer[0]

    def _special(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise RenderError(f"tokenizer has no {token} token: not a Qwen3-VL tokenizer")
        return token_id

    def _text(self, text: str) -> Segment:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return Segment(ids, [TEXT] * len(ids))

    def prefix(self) -> Segment:
        head = self._text("<|im_start|>user\n") if self.role_markers else Segment([], [])
        return head + Segment([self.vision_start], [TEXT])

    def group(self, timestamp: float, num_tokens: int) -> Segment:
        """One pair of frames: its timestamp text and its vision placeholder block."""
        return (self._text(timestamp_text(timestamp))
                + Segment([self.vision_start] + [self.video_pad] * num_tokens + [self.vision_end],
                          [TEXT] + [VIDEO] * num_tokens + [TEXT]))

    def groups(self, blocks) -> Segment:
        """Consecutive pair blocks from (timestamp, number of vision tokens) items, in one join."""
        ids, types = [], []
        for timestamp, num_tokens in blocks:
            block = self.group(timestamp, num_tokens)
            ids += block.ids
            types += block.types
        return Segment(ids, types)

    def close_video(self) -> Segment:
        return Segment([self.vision_end], [TEXT])

    def prompt(self, prompt_text: str) -> Segment:
        """The claim; the model's next-token distribution after it is read for the answer."""
        segment = self._text(prompt_text)
        special = self.special_ids & set(segment.ids)
        if special:
            names = ", ".join(sorted(self.tokenizer.convert_ids_to_tokens(sorted(special))))
            raise RenderError(f"the prompt or task contains the special token(s) {names}; they are not allowed")
        return segment

    def full(self, timestamps: list[float], tokens_per_group: int, prompt_text: str) -> Segment:
        """The whole rendering including the final answer token (for inspection and tests)."""
        return (self.prefix() + self.groups((t, tokens_per_group) for t in timestamps) + self.close_video()
                + self.prompt(prompt_text) + Segment([self.answer_id], [TEXT]))

    def processor_text(self, prompt_text: str) -> str:
        """The same rendering as a text for Qwen3VLProcessor (one video placeholder, answer included)."""
        head = "<|im_start|>user\n" if self.role_markers else ""
        return f"{head}<|vision_start|><|video_pad|><|vision_end|>{prompt_text} True"

    def check_no_assistant_turn(self, segment: Segment) -> None:
        text = self.tokenizer.decode(segment.ids)
        if "<|im_start|>assistant" in text or "<|im_end|>" in text:
            raise RenderError("rendering contains an assistant turn; TOPReward needs an open user turn")
