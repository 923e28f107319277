"""GCP: a VPC network and subnetwork with flow logs (or yours), firewall rules by network tag, a
service account, a private bucket holding the stack's files, empty Secret Manager entries that
only that account reads, and one VM per node from a Deep Learning VM image family (a compact
placement policy above one node).

Facts behind the choices (provider 6.41+/7.x docs, Google's GPU docs) are in
docs/targets/terraform.md; each finding of the policy scan that stays is ignored at its resource
with the reason above it.
"""

from __future__ import annotations

from typing import Any

from stackc.output import BLANK, Block, Comment

from .cloud import Cloud, Items, Module, data, hcl_list, ignore, ref, resource, variable
from .provisioning import CloudDeployment

PROVIDER = ("hashicorp/google", ">= 6.41, < 8.0")  # source_md5hash on bucket objects came in 6.41
IMAGE_PROJECT = "deeplearning-platform-release"
IMAGE_FAMILY = "common-cu129-ubuntu-2404-nvidia-580"  # CUDA 12.9, driver 580, Ubuntu 24.04 (podman with CDI)


class Gcp(Cloud):
    name = "gcp"
    title = "Google Cloud"
    apply_vars = " -var 'project_id=my-project'"
    secret_store = "Secret Manager"
    # the Deep Learning VM family common-cu129-ubuntu-2404-nvidia-580 (Ubuntu 24.04, Python 3.12); people
    # log in through OS Login as accounts of their own (cloud.google.com/compute/docs/oslogin)
    image_python = (3, 12)
    # Local SSD over NVMe: google-local-nvme-ssd-N (persistent disks are google-persistent-disk-N)
    local_nvme_glob = "/dev/disk/by-id/google-local-nvme-ssd-*"
    login_user = ""
    fetch_bundle = 'gcloud storage cp --recursive "gs://${bucket}/stack/${node}/*" /opt/stackc/bundle.new/'
    read_secret = 'gcloud secrets versions access latest --project "${project}" --secret "${id}" 2>/dev/null'
    put_secret = 'printf %s "$VALUE" | gcloud secrets versions add ID --data-file=-'
    secret_output = "secret_ids"
    provider = ("google", *PROVIDER)
    public_ip = 'google_compute_instance.node["node-0"].network_interface[0].access_config[0].nat_ip'
    instance_ids = "{ for name, node in google_compute_instance.node : name => node.instance_id }"
    secret_ids = "{ for name, secret in google_secret_manager_secret.stack : name => secret.secret_id }"
    secret_help = ("Add each secret's value (gcloud secrets versions add ID --data-file=-); the nodes start the stack "
                   "once all are set.")
    store = ("bucket", "The bucket holding the stack's files.", "google_storage_bucket.stack.name")

    def variables(self, dep: CloudDeployment) -> Items:
        region = dep.nodes[0].region
        return [
            variable("project_id", "The Google Cloud project the stack runs in; required.", "string"),
            *self.common_variables(dep),
            variable("subnetwork", f"An existing subnetwork's self link for the nodes (its range must be "
                     f"{dep.provisioning.subnet_cidr}, the spec's `terraform.subnet_cidr`, with .10 and up free); "
                     "null creates a network and subnetwork.", "string", None),
            variable("zone", "The zone of the nodes (one with the machine type).", "string", f"{region}-a"),
            variable("image_family", f"A Deep Learning VM image family in {IMAGE_PROJECT} (CUDA and the NVIDIA driver); "
                     "read once, later applies keep the nodes' image.", "string", IMAGE_FAMILY),
            variable("bucket_name", "The bucket for the stack's files; null: <project_id>-<stack> (bucket names are "
                     "global, at most 63 characters).", "string", None),
        ]

    # ---- main.tf

    def main(self, dep: CloudDeployment, module: Module) -> Items:
        node = dep.nodes[0]
        several = len(dep.nodes) > 1
        items: Items = [
            Block("provider", ("google",), (("project", ref("var.project_id")), ("region", node.region),
                                            ("default_labels", {"stackc-stack": dep.project}))),
            Block("locals", (), (
                ("name", dep.project),
                ("nodes", self.nodes_local(dep)),
                ("node_secrets", self.node_secrets(dep)),
                ("subnetwork", ref("var.subnetwork != null ? var.subnetwork : google_compute_subnetwork.stack[0].self_link")),
            )),
            data("google_compute_subnetwork", "stack", ("self_link", ref("local.subnetwork"))),
        ]
        items += self.network(dep)
        items += self.firewall(module, several)
        items += self.storage(module)
        items += self.machines(dep, several)
        return items

    def network(self, dep: CloudDeployment) -> Items:
        count = ("count", ref("var.subnetwork == null ? 1 : 0"))
        return [
            Comment("a network and subnetwork of its own, unless var.subnetwork places the stack in yours"),
            resource("google_compute_network", "stack", count, ("name", ref("local.name")),
                     ("auto_create_subnetworks", False)),
            resource("google_compute_subnetwork", "stack", count, ("name", ref("local.name")),
                     ("network", ref("google_compute_network.stack[0].id")),
                     ("ip_cidr_range", dep.provisioning.subnet_cidr),
                     ("region", dep.nodes[0].region), ("private_ip_google_access", True),
                     Block("log_config", (), (("aggregation_interval", "INTERVAL_5_MIN"), ("flow_sampling", 0.5),
                                              ("metadata", "INCLUDE_ALL_METADATA")))),
        ]

    def firewall(self, module: Module, several: bool) -> Items:
        network = ("network", ref("data.google_compute_subnetwork.stack.network"))
        items: Items = [
            resource("google_compute_firewall", "public", ("name", ref('"${local.name}-public"')), network,
                     ("description", "the stack's public ports from allowed_cidrs"), ("direction", "INGRESS"),
                     ("source_ranges", ref("var.allowed_cidrs")), ("target_tags", [ref("local.name")]),
                     Block("allow", (), (("protocol", "tcp"), ("ports", [str(p) for p in module.ports])))),
            resource("google_compute_firewall", "ssh", ("count", ref("length(var.ssh_cidrs) > 0 ? 1 : 0")),
                     ("name", ref('"${local.name}-ssh"')), network, ("description", "SSH from ssh_cidrs"),
                     ("direction", "INGRESS"), ("source_ranges", ref("var.ssh_cidrs")), ("target_tags", [ref("local.name")]),
                     Block("allow", (), (("protocol", "tcp"), ("ports", ["22"])))),
        ]
        if several:
            items.append(resource(
                "google_compute_firewall", "nodes", ("name", ref('"${local.name}-nodes"')), network,
                ("description", "the stack's nodes to each other (engines, metrics, parallelism)"), ("direction", "INGRESS"),
                ("source_tags", [ref("local.name")]), ("target_tags", [ref("local.name")]),
                Block("allow", (), (("protocol", "all"),))))
        return items

    def storage(self, module: Module) -> Items:
        member = ("member", ref('"serviceAccount:${google_service_account.node.email}"'))
        return [
            resource("google_service_account", "node", ("account_id", ref('"${substr(local.name, 0, 25)}-node"')),
                     ("display_name", ref('"${local.name}: the nodes\' identity"'))),
            Comment("the stack's files (stack/<node>/), read by each node at first boot"),
            resource("google_storage_bucket", "stack",
                     ("name", ref('coalesce(var.bucket_name, "${var.project_id}-${local.name}")')),
                     ("location", ref("upper(data.google_compute_subnetwork.stack.region)")), ("force_destroy", True),
                     ("uniform_bucket_level_access", True), ("public_access_prevention", "enforced"),
                     Block("versioning", (), (("enabled", True),))),
            resource("google_storage_bucket_object", "stack", ("for_each", ref('fileset("${path.module}/stack", "**")')),
                     ("name", ref('"stack/${each.value}"')), ("bucket", ref("google_storage_bucket.stack.name")),
                     ("source", ref('"${path.module}/stack/${each.value}"')),
                     ("source_md5hash", ref('filemd5("${path.module}/stack/${each.value}")'))),
            resource("google_storage_bucket_iam_member", "node", ("bucket", ref("google_storage_bucket.stack.name")),
                     ("role", "roles/storage.objectViewer"), member),
            Comment("empty entries: add a version with each value after apply (see outputs); nodes wait for them at boot"),
            resource("google_secret_manager_secret", "stack", ("for_each", ref(f"toset({hcl_list(module.secrets)})")),
                     ("secret_id", ref('"${local.name}-${each.key}"')),
                     Block("replication", (), (Block("auto", ()),))),
            resource("google_secret_manager_secret_iam_member", "node",
                     ("for_each", ref("google_secret_manager_secret.stack")), ("secret_id", ref("each.value.id")),
                     ("role", "roles/secretmanager.secretAccessor"), member),
        ]

    def machines(self, dep: CloudDeployment, several: bool) -> Items:
        node = dep.nodes[0]
        items: Items = [data("google_compute_image", "gpu", ("family", ref("var.image_family")), ("project", IMAGE_PROJECT))]
        if several:
            items += [Comment("the nodes close together, for parallelism across them"),
                      resource("google_compute_resource_policy", "stack", ("name", ref("local.name")),
                               ("region", node.region), Block("group_placement_policy", (), (
                                   ("vm_count", len(dep.nodes)), ("collocation", "COLLOCATED"))))]
        boot = ('templatefile("${path.module}/boot.sh.tftpl", { node = each.key, project = var.project_id, '
                'bucket = google_storage_bucket.stack.name, secrets = { for name in local.node_secrets[each.key] : '
                'name => google_secret_manager_secret.stack[name].secret_id } })')
        scheduling: list[Any] = [
            Comment("GPUs stop for host maintenance; they cannot migrate"),
            ("on_host_maintenance", "TERMINATE"),
            ("provisioning_model", "SPOT" if node.spot else "STANDARD"),
            ("preemptible", node.spot),
            ("automatic_restart", not node.spot),
        ]
        if node.spot:
            scheduling.append(("instance_termination_action", "STOP"))
        body: list[Any] = [
            ("for_each", ref("local.nodes")),
            ("name", ref('"${local.name}-${each.key}"')),
            Comment("the GPUs come with the machine type (A2, A3, G2)"),
            ("machine_type", node.instance_type),
            ("zone", ref("var.zone")),
            ("tags", [ref("local.name")]),
            ("allow_stopping_for_update", True),
        ]
        if several:
            body.append(("resource_policies", [ref("google_compute_resource_policy.stack.self_link")]))
        body += [
            ("metadata", {
                "block-project-ssh-keys": True, "enable-oslogin": True, "install-nvidia-driver": "True",
                "startup-script": ref(boot),
            }),
            BLANK,
            Block("boot_disk", (), (Block("initialize_params", (), (
                ("image", ref("data.google_compute_image.gpu.self_link")), ("size", ref("each.value.disk_gib")),
                ("type", "pd-ssd"))),)),
            Block("network_interface", (), (
                ("subnetwork", ref("local.subnetwork")), ("network_ip", ref("each.value.private_ip")),
                Comment("a public address: the first boot downloads engines and weights; the firewall admits only allowed_cidrs"),
                Block("access_config", ()))),
            Block("service_account", (), (("email", ref("google_service_account.node.email")), ("scopes", ["cloud-platform"]))),
            Block("scheduling", (), tuple(scheduling)),
            Block("shielded_instance_config", (), (
                Comment("secure boot off: the image's NVIDIA kernel modules are not signed for it"),
                ("enable_secure_boot", False), ("enable_vtpm", True), ("enable_integrity_monitoring", True))),
            Block("lifecycle", (), (Comment("the image and boot script of the first apply stay: a newer image does not replace a node"),
                                    *([Comment("the machine type's bundled Local SSD disks are not declared: a plan must "
                                               "not read them as a change")] if node.cache_on_local_nvme else []),
                                    ("ignore_changes", [ref("boot_disk[0].initialize_params[0].image"),
                                                        ref('metadata["startup-script"]'),
                                                        *([ref("scratch_disk")] if node.cache_on_local_nvme else [])]))),
            ("depends_on", [ref("google_storage_bucket_object.stack"), ref("google_storage_bucket_iam_member.node"),
                            ref("google_secret_manager_secret_iam_member.node")]),
        ]
        items += ignore("AVD-GCP-0031", "each node has a public address: the first boot downloads engines and weights, "
                        "node-0 serves the gateway; the firewall admits only allowed_cidrs")
        items.append(resource("google_compute_instance", "node", *body))
        return items
