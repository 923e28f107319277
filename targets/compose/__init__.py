"""The docker-compose target: `compose.yaml`, its config files and `.env.example`.

A translation of the IR: every service becomes a compose service named as in the IR, GPUs
are pinned with device reservations (NVIDIA) or device nodes (AMD), one-shot jobs gate the
engines with `service_completed_successfully`, secrets are `${NAME:?...}` references that
compose fills from an `.env` file stackc never writes.
"""

# Nothing is imported here: the registry reads `options` (the spec section) without loading
# the translation in `target.py`.
