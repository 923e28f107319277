"""The capacity plan: how many GPUs each replica needs, what its KV cache holds, what it costs.

For every model the planner resolves the engine's settings (its own defaults for what the
spec leaves unset), sizes the weights and the KV cache per GPU the way the engine budgets
memory, picks the fewest GPUs that hold `concurrency` sequences at `max_context` (`gpus:
auto`), checks compatibility (SC5xx) and capacity (SC4xx), and checks the whole stack fits the
hardware. Every `help:` it offers was re-planned and found to hold.

One module per concern: `settings` (settings and what they hold on a layout), `model` (one
model's plan), `help` (re-planned fixes), `compatibility` (SC5xx), `packing` (GPUs of the
whole stack), `cost` (the instance type), `host_memory` (SC412). The plan's data types are in
`stackc.plan`.
"""

from __future__ import annotations

from .. import host
from ..catalog import Catalog
from ..diagnostics import Diagnostic
from ..engines.base import GIB
from ..placement import place_plan
from ..plan import Evaluation, ModelPlan, Plan, Settings
from ..resolve import ResolvedStack
from .cost import choose_instance
from .host_memory import check_host_memory
from .model import download_bytes, engine_overhead_s, plan_model, read_bytes, start_up
from .packing import check_packing, needed_share, share_gpus
from .settings import evaluate, layouts, resolve_settings

def plan(stack: ResolvedStack, catalog: Catalog) -> tuple[Plan, list[Diagnostic]]:
    result = Plan(stack)
    diags: list[Diagnostic] = []
    for rm in stack.models:
        mp, model_diags = plan_model(rm, stack, catalog)
        diags += model_diags
        if mp is not None:
            result.models.append(mp)
    if not any(d.is_error for d in diags):
        diags += share_gpus(result)
    result.gpus_needed = round(sum(mp.gpus_used for mp in result.models))
    if not any(d.is_error for d in diags):
        diags += check_packing(result)
    for mp in result.models:
        mp.kv_tiers = host.kv_tiers(stack, mp.model)
        mp.host_memory_bytes = host.replica_memory(mp, mp.kv_tiers)
    placement = None
    if not any(d.is_error for d in diags):
        placement = place_plan(result)
    need = max((n.memory_bytes for n in host.node_needs(result, placement, None)), default=0) if placement else 0
    result.instance, cost_diags = choose_instance(stack, catalog, need)
    diags += cost_diags
    if placement is not None:
        ram = int(result.instance.ram_gib * GIB) if result.instance else stack.memory_per_node
        result.nodes = host.node_needs(result, placement, ram)
        diags += check_host_memory(result, placement, ram)
    start_up(result, placement)
    if result.instance and result.instance.price_usd_per_hour is not None:
        price_per_gpu = result.instance.price_usd_per_hour / result.instance.gpu_count
        for mp in result.models:
            mp.instance = result.instance
            mp.usd_per_hour = price_per_gpu * mp.gpus_used
    elif result.instance:
        for mp in result.models:
            mp.instance = result.instance
    return result, diags


__all__ = ["Evaluation", "ModelPlan", "Plan", "Settings", "download_bytes", "engine_overhead_s", "evaluate", "layouts",
           "needed_share", "plan", "plan_model", "read_bytes", "resolve_settings", "share_gpus", "start_up"]
