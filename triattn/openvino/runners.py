"""The backend's runners, passed in to core's runner registry (core imports nothing from here):
OpenVINO GenAI's ContinuousBatchingPipeline with its own cache eviction (genai.py), and the model
that calibration measures queries on."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core import calibration
from ..core.config import EvictionConfig
from ..core.runner import register_runner


@dataclass
class GenAIRunner:
    """OpenVINO GenAI's ContinuousBatchingPipeline with its own cache eviction (genai.py)."""
    model: object
    eviction: EvictionConfig
    calibration: object = field(default=None, repr=False)  # unused: GenAI scores with its own statistics
    session: object = field(default=None, repr=False)
    teacher_forcing = False
    reports_prunes = False

    def cancel(self) -> None:
        """Nothing to do: a GenAI step cannot be interrupted; a Stop ends the run after its step."""

    @staticmethod
    def check(model, eviction: EvictionConfig) -> None:
        """Refuse what this GenAI cannot run (settings() checks the device and the eviction mode)."""
        from . import genaiset
        genaiset.settings(model, eviction)

    def stream(self, prompt_ids, sampling, max_new_tokens, used: dict | None = None, **kw):
        from . import genai
        return genai.generate(self.model, prompt_ids, self.eviction, sampling, max_new_tokens, used=used, **kw)

    def kv_bytes_per_token(self, used: dict) -> int:
        return used.get("kv_bytes_per_token", self.model.kv_bytes_per_token)  # its own cache's precision

    def describe(self, used: dict) -> str | None:
        from . import genaiset
        return genaiset.describe(used) if used else None

    def label(self, eviction: EvictionConfig, used: dict) -> str:
        if not used:
            return f"{eviction.policy}, budget {eviction.budget} tokens, rounded to whole blocks when it starts"
        return (f"{eviction.policy}, budget {eviction.budget} tokens, used as whole blocks of {used['block_size']}: "
                f"cache {used['max_cache_size']}, start {used['start_size']}, recent {used['recent_size']} tokens")

    def why_larger(self, used: dict) -> str:
        if not used:
            return ""
        return (f"OpenVINO GenAI counts its cache in whole blocks of {used['block_size']} tokens, partly filled "
                f"ones included")

    def held(self, tokens: int, used: dict) -> str:
        """Why its cache held `tokens`, more than the budget: whole blocks, and one more being filled."""
        if not used or tokens <= used["requested"]["budget"]:
            return ""
        crush = f", plus KVCrush's {used['kvcrush']['blocks']} block(s)" if "kvcrush" in used else ""
        return (f"whole blocks of {used['block_size']}: the budget of {used['requested']['budget']} as a cache of "
                f"{used['max_cache_size']}{crush}, plus the block being filled")


def _query_model(model_dir, device, precision):
    from .model import LoadedModel
    return LoadedModel(model_dir, device, precision, queries=True)  # not cached: used once


register_runner("genai", GenAIRunner)
calibration.use_query_model(_query_model)
