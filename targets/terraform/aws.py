"""AWS: a VPC and subnet (or yours), one security group, a KMS key for every store, a private
bucket holding the stack's files, empty Secrets Manager entries, an instance role that reads
both, and one instance per node (a cluster placement group above one node).

Each finding of the policy scan that stays is ignored at its resource with the reason above it.
"""

from __future__ import annotations

from typing import Any

from stackc.output import BLANK, Block, Comment

from .cloud import Cloud, Items, Module, data, hcl_list, ignore, ref, resource, variable
from .provisioning import CloudDeployment

PROVIDER = ("hashicorp/aws", ">= 5.100, < 7.0")
# the Deep Learning Base AMI with NVIDIA's driver, CUDA, the container toolkit and the AWS CLI
AMI_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) *"


class Aws(Cloud):
    name = "aws"
    title = "AWS"
    secret_store = "AWS Secrets Manager"
    # the Deep Learning Base AMI (Ubuntu 24.04): /usr/bin/python3 is 3.12, the login user `ubuntu`
    # (docs.aws.amazon.com/dlami/latest/devguide release notes; EC2 user guide, connection prerequisites)
    image_python = (3, 12)
    # instance store: the NVMe controller model 'Amazon EC2 NVMe Instance Storage' (EBS volumes say 'Amazon Elastic Block Store')
    local_nvme_glob = "/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*"
    login_user = "ubuntu"
    fetch_bundle = 'aws s3 cp --recursive --only-show-errors --region "${region}" "s3://${bucket}/stack/${node}/" /opt/stackc/bundle.new/'
    read_secret = ('aws secretsmanager get-secret-value --region "${region}" --secret-id "${id}" '
                   "--query SecretString --output text 2>/dev/null")
    put_secret = 'aws secretsmanager put-secret-value --secret-id ARN --secret-string "$VALUE"'
    secret_output = "secret_arns"
    provider = ("aws", *PROVIDER)
    public_ip = 'aws_instance.node["node-0"].public_ip'
    instance_ids = "{ for name, node in aws_instance.node : name => node.id }"
    secret_ids = "{ for name, secret in aws_secretsmanager_secret.stack : name => secret.arn }"
    secret_help = ("Put each secret's value (aws secretsmanager put-secret-value --secret-id ARN --secret-string ...); "
                   "the nodes start the stack once all are set.")
    store = ("bucket", "The bucket holding the stack's files.", "aws_s3_bucket.stack.id")

    def variables(self, dep: CloudDeployment) -> Items:
        return self.common_variables(dep) + [
            variable("subnet_id", f"An existing subnet for the nodes (its CIDR must be {dep.provisioning.subnet_cidr}, "
                     "the spec's `terraform.subnet_cidr`, with .10 and up free); null creates a VPC and subnet.",
                     "string", None),
            variable("availability_zone", "The zone of the subnet the module creates; null: the region's first.", "string", None),
            variable("ami_id", "A GPU image instead of the newest Deep Learning Base AMI (read once; later applies keep "
                     "the instances' image).", "string", None),
        ]

    # ---- main.tf

    def main(self, dep: CloudDeployment, module: Module) -> Items:
        node = dep.nodes[0]
        several = len(dep.nodes) > 1
        cidr = dep.provisioning.subnet_cidr
        tags = {"stackc:stack": dep.project}
        items: Items = [
            Block("provider", ("aws",), (("region", node.region),
                                         Block("default_tags", (), (("tags", tags),)))),
            Block("locals", (), (
                ("name", dep.project),
                ("nodes", self.nodes_local(dep)),
                ("node_secrets", self.node_secrets(dep)),
                ("subnet_id", ref("var.subnet_id != null ? var.subnet_id : aws_subnet.stack[0].id")),
            )),
            data("aws_subnet", "stack", ("id", ref("local.subnet_id"))),
            data("aws_availability_zones", "available", ("state", "available")),
        ]
        items += self.network(cidr)
        items += self.security(dep, module, several)
        items += self.storage()
        items += self.secrets(module)
        items += self.identity()
        items += self.machines(dep, several)
        return items

    def network(self, cidr: str) -> Items:
        count = ("count", ref("var.subnet_id == null ? 1 : 0"))
        return [
            Comment("a VPC and subnet of its own, unless var.subnet_id places the stack in yours"),
            *ignore("AVD-AWS-0178", "flow logs are the account's policy (a log group and its retention), not the stack's"),
            resource("aws_vpc", "stack", count, ("cidr_block", cidr), ("enable_dns_hostnames", True),
                     ("tags", {"Name": ref("local.name")})),
            resource("aws_internet_gateway", "stack", count, ("vpc_id", ref("aws_vpc.stack[0].id"))),
            resource("aws_subnet", "stack", count, ("vpc_id", ref("aws_vpc.stack[0].id")), ("cidr_block", cidr),
                     ("availability_zone", ref("coalesce(var.availability_zone, data.aws_availability_zones.available.names[0])"))),
            resource("aws_route_table", "stack", count, ("vpc_id", ref("aws_vpc.stack[0].id")),
                     Block("route", (), (("cidr_block", "0.0.0.0/0"), ("gateway_id", ref("aws_internet_gateway.stack[0].id"))))),
            resource("aws_route_table_association", "stack", count, ("subnet_id", ref("aws_subnet.stack[0].id")),
                     ("route_table_id", ref("aws_route_table.stack[0].id"))),
        ]

    def security(self, dep: CloudDeployment, module: Module, several: bool) -> Items:
        items: Items = [
            resource("aws_security_group", "stack", ("name_prefix", ref('"${local.name}-"')),
                     ("description", f"{dep.project}: public ports from allowed_cidrs, SSH from ssh_cidrs, the nodes to each other"),
                     ("vpc_id", ref("data.aws_subnet.stack.vpc_id"))),
        ]
        for port in module.ports:
            items.append(resource(
                "aws_vpc_security_group_ingress_rule", f"public_{port}", ("for_each", ref("toset(var.allowed_cidrs)")),
                ("security_group_id", ref("aws_security_group.stack.id")), ("description", f"port {port} from allowed_cidrs"),
                ("cidr_ipv4", ref("each.value")), ("ip_protocol", "tcp"), ("from_port", port), ("to_port", port)))
        items.append(resource(
            "aws_vpc_security_group_ingress_rule", "ssh", ("for_each", ref("toset(var.ssh_cidrs)")),
            ("security_group_id", ref("aws_security_group.stack.id")), ("description", "SSH from ssh_cidrs"),
            ("cidr_ipv4", ref("each.value")), ("ip_protocol", "tcp"), ("from_port", 22), ("to_port", 22)))
        if several:
            items.append(resource(
                "aws_vpc_security_group_ingress_rule", "nodes", ("security_group_id", ref("aws_security_group.stack.id")),
                ("description", "the stack's nodes to each other (engines, metrics, parallelism)"),
                ("referenced_security_group_id", ref("aws_security_group.stack.id")), ("ip_protocol", "-1")))
        items += ignore("AVD-AWS-0104", "the nodes download weights, engines and images from the internet at boot")
        items.append(resource(
            "aws_vpc_security_group_egress_rule", "all", ("security_group_id", ref("aws_security_group.stack.id")),
            ("description", "downloads at boot; the hosted overflow APIs"), ("cidr_ipv4", "0.0.0.0/0"), ("ip_protocol", "-1")))
        return items

    def storage(self) -> Items:
        bucket = ("bucket", ref("aws_s3_bucket.stack.id"))
        return [
            Comment("one key for the bucket, the secrets and the disks"),
            resource("aws_kms_key", "stack", ("description", ref('"${local.name}: the stack\'s files, secrets and disks"')),
                     ("enable_key_rotation", True), ("deletion_window_in_days", 7)),
            Comment("the stack's files (stack/<node>/), read by each node at first boot"),
            *ignore("AVD-AWS-0089", "access logging needs a second bucket; the files are the generated units and configs, no data"),
            resource("aws_s3_bucket", "stack", ("bucket_prefix", ref('"${substr(local.name, 0, 24)}-stack-"')), ("force_destroy", True)),
            resource("aws_s3_bucket_public_access_block", "stack", bucket, ("block_public_acls", True),
                     ("block_public_policy", True), ("ignore_public_acls", True), ("restrict_public_buckets", True)),
            resource("aws_s3_bucket_versioning", "stack", bucket,
                     Block("versioning_configuration", (), (("status", "Enabled"),))),
            resource("aws_s3_bucket_server_side_encryption_configuration", "stack", bucket,
                     Block("rule", (), (Block("apply_server_side_encryption_by_default", (), (
                         ("sse_algorithm", "aws:kms"), ("kms_master_key_id", ref("aws_kms_key.stack.arn")))),))),
            resource("aws_s3_object", "stack", ("for_each", ref('fileset("${path.module}/stack", "**")')), bucket,
                     ("key", ref('"stack/${each.value}"')), ("source", ref('"${path.module}/stack/${each.value}"')),
                     ("source_hash", ref('filemd5("${path.module}/stack/${each.value}")')),
                     ("kms_key_id", ref("aws_kms_key.stack.arn"))),
        ]

    def secrets(self, module: Module) -> Items:
        return [
            Comment("empty entries: put the values after apply (see outputs); nodes wait for them at boot"),
            resource("aws_secretsmanager_secret", "stack", ("for_each", ref(f"toset({hcl_list(module.secrets)})")),
                     ("name_prefix", ref('"${local.name}/${each.key}-"')), ("kms_key_id", ref("aws_kms_key.stack.arn")),
                     ("recovery_window_in_days", 7)),
        ]

    def identity(self) -> Items:
        return [
            data("aws_iam_policy_document", "assume", Block("statement", (), (
                ("actions", ["sts:AssumeRole"]),
                Block("principals", (), (("type", "Service"), ("identifiers", ["ec2.amazonaws.com"]))),
            ))),
            data("aws_iam_policy_document", "node",
                 Block("statement", (), (("sid", "ReadStack"), ("actions", ["s3:GetObject", "s3:ListBucket"]),
                                         ("resources", [ref("aws_s3_bucket.stack.arn"), ref('"${aws_s3_bucket.stack.arn}/*"')]))),
                 Block("statement", (), (("sid", "ReadSecrets"), ("actions", ["secretsmanager:GetSecretValue"]),
                                         ("resources", ref("[for s in aws_secretsmanager_secret.stack : s.arn]")))),
                 Block("statement", (), (("sid", "Decrypt"), ("actions", ["kms:Decrypt"]),
                                         ("resources", [ref("aws_kms_key.stack.arn")])))),
            resource("aws_iam_role", "node", ("name_prefix", ref('"${substr(local.name, 0, 24)}-node-"')),
                     ("assume_role_policy", ref("data.aws_iam_policy_document.assume.json"))),
            resource("aws_iam_role_policy", "node", ("name", "read-stack"), ("role", ref("aws_iam_role.node.id")),
                     ("policy", ref("data.aws_iam_policy_document.node.json"))),
            resource("aws_iam_instance_profile", "node", ("name_prefix", ref('"${substr(local.name, 0, 24)}-node-"')),
                     ("role", ref("aws_iam_role.node.name"))),
        ]

    def machines(self, dep: CloudDeployment, several: bool) -> Items:
        node = dep.nodes[0]
        items: Items = [
            data("aws_ami", "gpu", ("most_recent", True), ("owners", ["amazon"]),
                 Block("filter", (), (("name", "name"), ("values", [AMI_NAME]))),
                 Block("filter", (), (("name", "architecture"), ("values", ["x86_64"])))),
        ]
        if several:
            items += [Comment("the nodes close together, for parallelism across them"),
                      resource("aws_placement_group", "stack", ("name", ref("local.name")), ("strategy", "cluster"))]
        boot = ('base64gzip(templatefile("${path.module}/boot.sh.tftpl", { node = each.key, region = "'
                + str(node.region) + '", bucket = aws_s3_bucket.stack.id, secrets = { for name in local.node_secrets[each.key] : '
                'name => aws_secretsmanager_secret.stack[name].arn } }))')
        body: list[Any] = [
            ("for_each", ref("local.nodes")),
            ("ami", ref("coalesce(var.ami_id, data.aws_ami.gpu.id)")),
            ("instance_type", node.instance_type),
            ("subnet_id", ref("local.subnet_id")),
            ("private_ip", ref("each.value.private_ip")),
            ("vpc_security_group_ids", [ref("aws_security_group.stack.id")]),
            ("iam_instance_profile", ref("aws_iam_instance_profile.node.name")),
            Comment("every node reaches the internet at boot (engines, weights); the security group admits only allowed_cidrs"),
            ("associate_public_ip_address", True),
            ("ebs_optimized", True),
            ("monitoring", True),
            Comment("first boot installs the engines and this node's units, then starts the stack (gzip: user data is at most 16 KB)"),
            ("user_data_base64", ref(boot)),
        ]
        if several:
            body.append(("placement_group", ref("aws_placement_group.stack.id")))
        body += [
            BLANK,
            Comment("IMDSv2 only; two hops so containers on the node reach it"),
            Block("metadata_options", (), (("http_endpoint", "enabled"), ("http_tokens", "required"),
                                           ("http_put_response_hop_limit", 2))),
            Block("root_block_device", (), (("volume_type", "gp3"), ("volume_size", ref("each.value.disk_gib")),
                                            ("encrypted", True), ("kms_key_id", ref("aws_kms_key.stack.arn")),
                                            ("delete_on_termination", True))),
        ]
        if node.spot:
            body.append(Block("instance_market_options", (), (("market_type", "spot"), Block("spot_options", (), (
                ("spot_instance_type", "one-time"), ("instance_interruption_behavior", "terminate"))))))
        body += [
            Block("lifecycle", (), (Comment("the image and boot script found at the first apply stay: a newer AMI does not replace a node"),
                                    ("ignore_changes", [ref("ami"), ref("user_data_base64")]))),
            ("tags", {"Name": ref('"${local.name}-${each.key}"')}),
            ("depends_on", [ref("aws_s3_object.stack"), ref("aws_iam_role_policy.node")]),
        ]
        items.append(resource("aws_instance", "node", *body))
        return items
