"""Azure: a resource group, a virtual network and subnet (or yours), a network security group on
each node's NIC, a storage account and container holding the stack's files, a Key Vault with one
placeholder secret per secret, and one VM per node from the Ubuntu HPC image (NVIDIA driver,
CUDA, docker), each with a managed identity that may read the files and the secrets (a proximity
placement group above one node).

Storage and Key Vault answer on their public endpoints to Entra ID tokens only (shared keys off,
RBAC on), as S3 and Secrets Manager do to IAM on AWS. Facts behind the choices (azurerm 4.81 to
5.x docs, Microsoft's docs) are in docs/targets/terraform.md.
"""

from __future__ import annotations

from typing import Any

from stackc.output import BLANK, Block, Comment

from .cloud import Cloud, Items, Module, data, hcl_list, ignore, ref, resource, variable
from .provisioning import CloudDeployment

PROVIDER = ("hashicorp/azurerm", ">= 4.81, < 6.0")
# Ubuntu 24.04 HPC (Azure/azhpc-images ubuntu-24.04-hpc): Python 3.12. The 22.04 image's 3.10 cannot
# install vLLM 0.33 (Requires-Python >= 3.11), and its haproxy 2.4 and podman 3.4 predate what the
# router's hashing and the CDI devices need
IMAGE = {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2404", "version": "latest"}
ADMIN_USER = "azureuser"  # the login Azure creates with the SSH key; never the services' account
PLACEHOLDER = "stackc-unset"  # the value a secret holds until you set yours (Key Vault has no empty secret)

# shell for the first boot: a token from the instance metadata service for the VM's identity
PRELUDE = [
    "# tokens for the VM's managed identity, from the instance metadata service",
    "azure_token() {",
    '  curl -fsS -H Metadata:true "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$1" '
    "| python3 -c 'import json, sys; print(json.load(sys.stdin)[\"access_token\"])'",
    "}",
]
# every blob under stack/<node>/ into the bundle directory (the role assignment may take minutes to apply)
FETCH = """until python3 - "${account}" "${container}" "${node}" "$(azure_token https%3A%2F%2Fstorage.azure.com%2F)" <<'PY'
import os, sys, urllib.request, xml.etree.ElementTree as tree
account, container, node, token = sys.argv[1:]
base = "https://" + account + ".blob.core.windows.net/" + container
headers = {"Authorization": "Bearer " + token, "x-ms-version": "2023-11-03"}
def get(url):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers)).read()
listing = tree.fromstring(get(base + "?restype=container&comp=list&prefix=stack/" + node + "/"))
names = [b.findtext("Name") for b in listing.iter("Blob")]
if not names:
    sys.exit(1)
for name in names:
    path = os.path.join("/opt/stackc/bundle.new", name[len("stack/" + node + "/"):])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(get(base + "/" + name))
PY
do
  echo "waiting for the stack's files (the node's role may take minutes to apply)"
  sleep 20
done"""
READ_SECRET = ('curl -fsS -H "Authorization: Bearer $(azure_token https%3A%2F%2Fvault.azure.net)" '
               '"https://${vault}.vault.azure.net/secrets/${id}?api-version=7.4" | python3 -c '
               "'import json, sys; v = json.load(sys.stdin)[\"value\"]; sys.exit(1) if v == \"" + PLACEHOLDER + "\" else print(v)'")


class Azure(Cloud):
    name = "azure"
    title = "Azure"
    secret_store = "Key Vault"
    apply_vars = " -var 'subscription_id=...' -var 'ssh_public_key=...'"
    image_python = (3, 12)
    # the NVMe disks of NC A100 v4 and ND H100/H200 v5: 'Microsoft NVMe Direct Disk' (the OS disk is not)
    local_nvme_glob = "/dev/disk/by-id/nvme-Microsoft_NVMe_Direct_Disk*"
    login_user = ADMIN_USER
    prelude = PRELUDE
    fetch_bundle = FETCH
    read_secret = READ_SECRET
    put_secret = 'az keyvault secret set --vault-name VAULT --name NAME --value "$VALUE"'
    secret_output = "secret_names"
    provider = ("azurerm", *PROVIDER)
    terraform_version = (">= 1.11", "1.11: write-only arguments, so no secret value reaches the state")
    public_ip = 'azurerm_public_ip.node["node-0"].ip_address'
    instance_ids = "{ for name, node in azurerm_linux_virtual_machine.node : name => node.virtual_machine_id }"
    secret_ids = "{ for name, secret in azurerm_key_vault_secret.stack : name => secret.name }"
    secret_help = ("Set each secret's value (az keyvault secret set --vault-name VAULT --name NAME --value ...); the "
                   "nodes start the stack once none holds the placeholder.")
    store = ("key_vault", "The Key Vault holding the secrets.", "azurerm_key_vault.stack.name")

    def variables(self, dep: CloudDeployment) -> Items:
        return [
            variable("subscription_id", "The Azure subscription the stack runs in; required.", "string"),
            *self.common_variables(dep),
            variable("ssh_public_key", "The public key Azure requires to create a Linux VM (user " + ADMIN_USER + "); SSH stays "
                     "closed unless ssh_cidrs names a block.", "string"),
            variable("subnet_id", f"An existing subnet for the nodes (its prefix must be {dep.provisioning.subnet_cidr}, "
                     "the spec's `terraform.subnet_cidr`, with .10 and up free); null creates a virtual network.", "string", None),
            variable("name_suffix", "Storage account and Key Vault names are global: a suffix that makes them unique "
                     "(lowercase letters and digits); null: the start of the subscription id.", "string", None),
        ]

    # ---- main.tf

    def main(self, dep: CloudDeployment, module: Module) -> Items:
        node = dep.nodes[0]
        several = len(dep.nodes) > 1
        rg = ("resource_group_name", ref("azurerm_resource_group.stack.name"))
        loc = ("location", ref("azurerm_resource_group.stack.location"))
        items: Items = [
            Block("provider", ("azurerm",), (
                Block("features", ()),
                ("subscription_id", ref("var.subscription_id")),
                Comment("blobs are written with Entra ID: the storage account takes no shared keys"),
                ("storage_use_azuread", True),
            )),
            Block("locals", (), (
                ("name", dep.project),
                ("suffix", ref('coalesce(var.name_suffix, substr(replace(var.subscription_id, "-", ""), 0, 8))')),
                ("nodes", self.nodes_local(dep)),
                ("node_secrets", self.node_secrets(dep)),
                ("subnet_id", ref("var.subnet_id != null ? var.subnet_id : azurerm_subnet.stack[0].id")),
            )),
            data("azurerm_client_config", "current"),
            resource("azurerm_resource_group", "stack", ("name", ref("local.name")), ("location", node.region),
                     ("tags", {"stackc-stack": dep.project})),
        ]
        items += self.network(dep, module, several, rg, loc)
        items += self.storage(module, rg, loc)
        items += self.machines(dep, several, rg, loc)
        return items

    def network(self, dep: CloudDeployment, module: Module, several: bool, rg: Any, loc: Any) -> Items:
        count = ("count", ref("var.subnet_id == null ? 1 : 0"))
        cidr = dep.provisioning.subnet_cidr
        nsg = ("network_security_group_name", ref("azurerm_network_security_group.stack.name"))
        rules: Items = [
            resource("azurerm_network_security_rule", "public", ("name", "public"), rg, nsg, ("priority", 100),
                     ("direction", "Inbound"), ("access", "Allow"), ("protocol", "Tcp"), ("source_port_range", "*"),
                     ("destination_port_ranges", [str(p) for p in module.ports]),
                     ("source_address_prefixes", ref("var.allowed_cidrs")), ("destination_address_prefix", "*"),
                     ("description", "the stack's public ports from allowed_cidrs")),
            resource("azurerm_network_security_rule", "ssh", ("count", ref("length(var.ssh_cidrs) > 0 ? 1 : 0")),
                     ("name", "ssh"), rg, nsg, ("priority", 110), ("direction", "Inbound"), ("access", "Allow"),
                     ("protocol", "Tcp"), ("source_port_range", "*"), ("destination_port_range", "22"),
                     ("source_address_prefixes", ref("var.ssh_cidrs")), ("destination_address_prefix", "*"),
                     ("description", "SSH from ssh_cidrs")),
        ]
        if several:
            rules.append(resource(
                "azurerm_network_security_rule", "nodes", ("name", "nodes"), rg, nsg, ("priority", 120),
                ("direction", "Inbound"), ("access", "Allow"), ("protocol", "*"), ("source_port_range", "*"),
                ("destination_port_range", "*"), ("source_address_prefix", cidr), ("destination_address_prefix", cidr),
                ("description", "the stack's nodes to each other (engines, metrics, parallelism)")))
        return [
            Comment("a virtual network of its own, unless var.subnet_id places the stack in yours"),
            resource("azurerm_virtual_network", "stack", count, ("name", ref("local.name")), rg, loc,
                     ("address_space", [cidr])),
            resource("azurerm_subnet", "stack", count, ("name", ref("local.name")), rg,
                     ("virtual_network_name", ref("azurerm_virtual_network.stack[0].name")), ("address_prefixes", [cidr])),
            Comment("inbound: the public ports from allowed_cidrs, SSH from ssh_cidrs; Azure's default rules allow outbound"),
            resource("azurerm_network_security_group", "stack", ("name", ref("local.name")), rg, loc),
            *rules,
        ]

    def storage(self, module: Module, rg: Any, loc: Any) -> Items:
        me = ("principal_id", ref("data.azurerm_client_config.current.object_id"))
        return [
            Comment("the stack's files (stack/<node>/), read by each node at first boot"),
            *ignore("AVD-AZU-0012", "the account answers only to Entra ID tokens (no shared keys, no public blobs); "
                    "network rules would need private endpoints, which the module does not create"),
            resource("azurerm_storage_account", "stack", ("name", ref('substr("${replace(local.name, "-", "")}${local.suffix}", 0, 24)')),
                     rg, loc, ("account_tier", "Standard"), ("account_replication_type", "LRS"),
                     ("min_tls_version", "TLS1_2"), ("allow_nested_items_to_be_public", False),
                     ("shared_access_key_enabled", False), ("infrastructure_encryption_enabled", True)),
            resource("azurerm_storage_container", "stack", ("name", "stack"),
                     ("storage_account_id", ref("azurerm_storage_account.stack.id")), ("container_access_type", "private")),
            resource("azurerm_role_assignment", "writer", ("scope", ref("azurerm_storage_account.stack.id")),
                     ("role_definition_name", "Storage Blob Data Contributor"), me),
            resource("azurerm_storage_blob", "stack", ("for_each", ref('fileset("${path.module}/stack", "**")')),
                     ("name", ref('"stack/${each.value}"')), ("storage_container_id", ref("azurerm_storage_container.stack.id")),
                     ("type", "Block"), ("source", ref('"${path.module}/stack/${each.value}"')),
                     ("content_md5", ref('filemd5("${path.module}/stack/${each.value}")')),
                     ("depends_on", [ref("azurerm_role_assignment.writer")])),
            Comment(f"placeholder values ({PLACEHOLDER}): set yours after apply (see outputs); nodes wait for them at boot"),
            *ignore("AVD-AZU-0013", "the vault answers only to Entra ID tokens with RBAC; network rules would need "
                    "private endpoints, which the module does not create"),
            resource("azurerm_key_vault", "stack", ("name", ref('trimsuffix(substr("${local.name}-${local.suffix}", 0, 24), "-")')), rg, loc,
                     ("tenant_id", ref("data.azurerm_client_config.current.tenant_id")), ("sku_name", "standard"),
                     ("rbac_authorization_enabled", True), ("soft_delete_retention_days", 7),
                     ("purge_protection_enabled", False)),
            resource("azurerm_role_assignment", "secrets_officer", ("scope", ref("azurerm_key_vault.stack.id")),
                     ("role_definition_name", "Key Vault Secrets Officer"), me),
            Comment("write-only: the placeholder is sent once and never stored; your value never enters the state"),
            resource("azurerm_key_vault_secret", "stack", ("for_each", ref(f"toset({hcl_list(module.secrets)})")),
                     ("name", ref('replace(each.key, "_", "-")')), ("key_vault_id", ref("azurerm_key_vault.stack.id")),
                     ("value_wo", PLACEHOLDER), ("value_wo_version", 1), ("content_type", "text/plain"),
                     ("depends_on", [ref("azurerm_role_assignment.secrets_officer")])),
        ]

    def machines(self, dep: CloudDeployment, several: bool, rg: Any, loc: Any) -> Items:
        node = dep.nodes[0]
        items: Items = []
        if several:
            items += [Comment("the nodes close together, for parallelism across them"),
                      resource("azurerm_proximity_placement_group", "stack", ("name", ref("local.name")), rg, loc)]
        items += [
            *ignore("AVD-AZU-0076", "each node has a public address: the first boot downloads engines and weights, "
                    "node-0 serves the gateway; the security group admits only allowed_cidrs"),
            resource("azurerm_public_ip", "node", ("for_each", ref("local.nodes")), ("name", ref('"${local.name}-${each.key}"')),
                     rg, loc, ("allocation_method", "Static"), ("sku", "Standard")),
            resource("azurerm_network_interface", "node", ("for_each", ref("local.nodes")),
                     ("name", ref('"${local.name}-${each.key}"')), rg, loc,
                     Block("ip_configuration", (), (("name", "primary"), ("subnet_id", ref("local.subnet_id")),
                                                    ("private_ip_address_allocation", "Static"),
                                                    ("private_ip_address", ref("each.value.private_ip")),
                                                    ("public_ip_address_id", ref("azurerm_public_ip.node[each.key].id"))))),
            resource("azurerm_network_interface_security_group_association", "node", ("for_each", ref("local.nodes")),
                     ("network_interface_id", ref("azurerm_network_interface.node[each.key].id")),
                     ("network_security_group_id", ref("azurerm_network_security_group.stack.id"))),
        ]
        boot = ('base64gzip(templatefile("${path.module}/boot.sh.tftpl", { node = each.key, '
                'account = azurerm_storage_account.stack.name, container = azurerm_storage_container.stack.name, '
                'vault = azurerm_key_vault.stack.name, secrets = { for name in local.node_secrets[each.key] : '
                'name => azurerm_key_vault_secret.stack[name].name } }))')
        body: list[Any] = [
            ("for_each", ref("local.nodes")),
            ("name", ref('"${local.name}-${each.key}"')),
            rg, loc,
            ("size", node.instance_type),
            ("admin_username", ADMIN_USER),
            ("network_interface_ids", [ref("azurerm_network_interface.node[each.key].id")]),
            Comment("first boot installs the engines and this node's units, then starts the stack (custom data: at most 64 KB)"),
            ("custom_data", ref(boot)),
        ]
        if several:
            body.append(("proximity_placement_group_id", ref("azurerm_proximity_placement_group.stack.id")))
        if node.spot:
            body += [("priority", "Spot"), ("eviction_policy", "Deallocate"), ("max_bid_price", -1)]
        body += [
            BLANK,
            Block("admin_ssh_key", (), (("username", ADMIN_USER), ("public_key", ref("var.ssh_public_key")))),
            Block("os_disk", (), (("caching", "ReadWrite"), ("storage_account_type", "Premium_LRS"),
                                  ("disk_size_gb", ref("each.value.disk_gib")))),
            Comment("Ubuntu HPC: the NVIDIA driver, CUDA, docker and NVIDIA's container toolkit; no trusted launch "
                    "(its DKMS-built NVIDIA modules are not signed for secure boot)"),
            Block("source_image_reference", (), tuple(IMAGE.items())),
            Block("identity", (), (("type", "SystemAssigned"),)),
            Block("lifecycle", (), (Comment("the boot script of the first apply stays: a change would replace a node"),
                                    ("ignore_changes", [ref("custom_data")]))),
            ("depends_on", [ref("azurerm_storage_blob.stack"), ref("azurerm_network_interface_security_group_association.node")]),
        ]
        items.append(resource("azurerm_linux_virtual_machine", "node", *body))
        principal = ("principal_id", ref("azurerm_linux_virtual_machine.node[each.key].identity[0].principal_id"))
        items += [
            Comment("each node reads the stack's files and its secrets, nothing else"),
            resource("azurerm_role_assignment", "node_files", ("for_each", ref("local.nodes")),
                     ("scope", ref("azurerm_storage_account.stack.id")), ("role_definition_name", "Storage Blob Data Reader"),
                     principal, ("principal_type", "ServicePrincipal")),
            resource("azurerm_role_assignment", "node_secrets", ("for_each", ref("local.nodes")),
                     ("scope", ref("azurerm_key_vault.stack.id")), ("role_definition_name", "Key Vault Secrets User"),
                     principal, ("principal_type", "ServicePrincipal")),
        ]
        return items
