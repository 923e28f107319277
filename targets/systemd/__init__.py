"""The systemd target: per node, one unit per service, a `<project>.target`, the config files, a
`secrets.env.example` and an idempotent `install.sh`.

A translation of the IR and of each service's host run (`runs.py`, the target's own lowering): the command, its
environment and paths come from there; this module writes them as units, adds the
dependencies, restart policy, start-up budget and the hardening that fits the kind of service.
"""

# Nothing is imported here: the registry reads `options` (the spec section) without loading
# the translation in `target.py`.
