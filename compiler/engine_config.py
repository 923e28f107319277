"""What an engine runs, as planned: the `EngineConfig` an engine module renders into argv,
environment and files. The planner builds one to learn which flags stackc sets (so
`engine_args` cannot fight them); the lowering builds one per model for its replicas.
"""

from __future__ import annotations

from typing import Optional

from .catalog import GpuInfo
from .ir_engine import EngineConfig, KvOffload
from .plan import Settings
from .resolve import ResolvedModel

CACHE_DIR = "/models"  # where the model cache is mounted in every engine and download job
LOCAL_DIR = "/models/local"  # where a model from the spec's own disk is mounted


def engine_config(rm: ResolvedModel, s: Settings, tp: int, pp: int, gpu: GpuInfo, share: Optional[float],
                  with_extra: bool = True, gpu_layers: Optional[int] = None,
                  kv_tiers: tuple[KvOffload, ...] = ()) -> EngineConfig:
    """The planned settings an engine runs. Engines that pin defaults get the planned values
    (so the engine runs what was planned even if its defaults move); the others get what the
    spec sets and choose the rest themselves at start-up."""
    m, e = rm.spec, rm.engine
    pin = e.pins_defaults and e.has_memory_share
    shared = s.util is not None and m.gpu_memory_utilization is None  # a share the planner split
    prefix = None
    if m.task == "generate" and e.supports_prefix_caching:
        prefix = True if m.prefix_caching is None else m.prefix_caching
    return EngineConfig(
        engine=e.name,
        version=rm.version,
        model=model_reference(rm),
        model_file_pattern=model_file_pattern(rm),
        served_name=m.name,
        served_names=tuple(m.served_names),
        revision=m.revision,
        task=m.task,
        quantization=s.quantization,
        quantization_flag=e.quantization_flag(s.quantization, rm.loaded_format),
        dtype=m.dtype,
        kv_cache_dtype=s.kv_cache_dtype,
        max_context=s.max_context,
        max_num_seqs=s.max_num_seqs if pin else m.max_num_seqs,
        max_batched_tokens=s.max_batched_tokens if pin else m.max_batched_tokens,
        gpu_memory_utilization=(share if pin or shared else m.gpu_memory_utilization) if e.has_memory_share else None,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        expert_parallel=bool(m.parallel and m.parallel.expert),
        enforce_eager=m.enforce_eager,
        prefix_caching=prefix,
        concurrency=s.concurrency,
        speculative=(m.speculative.draft, m.speculative.tokens) if m.speculative else None,
        adapters=tuple((a.name, a.source) for a in m.adapters),
        extra_args=tuple(m.engine_args.items()) if with_extra else (),
        gpu_vendor=gpu.vendor,
        cache_dir=CACHE_DIR,
        gpu_layers=gpu_layers,
        kv_offload=kv_tiers if rm.kv_mechanism else (),
        kv_mechanism=rm.kv_mechanism if kv_tiers else None,
    )


def model_reference(rm: ResolvedModel) -> str:
    """What the engine is told to load, given where the download job put it (the engine says)."""
    if rm.artifact.kind == "local":
        return f"{LOCAL_DIR}/{rm.spec.name}"
    return rm.engine.model_reference(rm.artifact, CACHE_DIR)


def model_file_pattern(rm: ResolvedModel) -> Optional[str]:
    return rm.engine.model_file_pattern(rm.artifact)
