"""README.md beside the module: apply, fill in the secrets, where the stack answers, what it costs."""

from __future__ import annotations

from stackc import output

from .cloud import Cloud, Module
from .provisioning import CloudDeployment


def render(dep: CloudDeployment, spec_name: str, cloud: Cloud, module: Module) -> str:
    cost = " ".join(c.text for c in cloud.cost_comment(dep))
    described = {d.name: d.description for d in dep.secrets}
    lines = [
        f"# {dep.project} on {cloud.title}",
        "",
        f"{output.generated_by(spec_name, dep.environment)}. The {cost}.",
        "",
        "```sh",
        "terraform init",
        'terraform apply -var \'allowed_cidrs=["203.0.113.0/24"]\'' + cloud.apply_vars,
        "```",
        "",
        "The state backend is yours to choose: add a `backend` block (S3 with locking, Terraform Cloud, ...) in a",
        "file of your own beside these; stackc leaves it out so the module runs as it is.",
        "",
        f"Then give each secret a value in {cloud.secret_store} (the module creates the entries empty; no value is in",
        "the module, the plan or the state). The nodes wait for them, then start the stack:",
        "",
    ]
    lines += [f"- `{name}`" + (f": {' '.join(described[name].split())}" if described.get(name) else "") for name in module.secrets]
    files = dep.provisioning.files if dep.provisioning else ()
    if files:
        names = " and ".join(f"`{name}`" for name, _, _, _ in files)
        lines += ["", f"{names} hold the gateway's TLS certificate chain and its private key: put each PEM file's whole",
                  "content as the value. The node writes them where the edge reads them and restarts the edge when they",
                  "change, so a renewed certificate is a new value, picked up within 5 minutes."]
    lines += [
        "",
        "```sh",
        f"terraform output -json {cloud.secret_output}   # then, for each:",
        cloud.put_secret,
        "```",
        "",
        "The gateway answers at `terraform output gateway_url` ("
        + (f"ports {', '.join(map(str, module.ports))} are" if len(module.ports) > 1 else f"port {module.ports[0]} is")
        + " open to",
        "`allowed_cidrs` only; SSH stays closed unless `ssh_cidrs` names a block). The first boot installs the engines and",
        f"downloads the weights: follow it with `journalctl -u stackc-boot-{dep.project} -u '{dep.project}-*'`.",
        "",
        "After a change to the spec, rebuild and `terraform apply`: the nodes pick up the new files within 5 minutes",
        f"and restart only what changed (`sudo systemctl start stackc-boot-{dep.project}` applies them at once).",
        "",
        "Each node runs the systemd target's files for it (`stack/<node>/`, see that target's docs); the module uploads",
        "them to its bucket and the node reads them with its instance role.",
        "",
    ]
    return "\n".join(lines)
