"""The helm target: `values.yaml` for the vLLM production-stack chart (`vllm-stack`) and an
install README.

A translation of the IR onto the chart's keys: each model's engine replicas become one
`modelSpec` entry (the pod runs the argv every target runs), its download job the entry's init
container, the router the chart's own router with the spec's routing, and everything the chart
lacks (gateway, UI, DCGM exporter, KEDA, monitors, dashboard, an optional Secret) goes into
`extraObjects`, so one values file is the whole deployment.
"""

# Nothing is imported here: the registry reads `options` (the spec section) without loading
# the translation in `target.py`.
