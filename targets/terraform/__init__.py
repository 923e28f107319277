"""The terraform target: a root module that creates the stack's machines on a cloud and boots
them straight into the stack.

The machines run what the systemd target writes for them (`stack/<node>/`, uploaded to the
module's bucket and installed at first boot by `boot.sh.tftpl`); this package adds the cloud
around it. `aws.py` is the one cloud so far; a cloud is a class that states its resources.
"""

# Nothing is imported here: the registry reads `options` (the spec section) without loading
# the translation in `target.py`.
