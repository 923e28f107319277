"""The arguments and nested blocks stackc writes, per resource and data source type, as the
providers' documentation names them: hashicorp/aws 5.100 (registry.terraform.io/providers/
hashicorp/aws/5.100.0/docs) and hashicorp/google 6.41 to 7.x (the provider repository's
website/docs/r and d pages at v6.41.0 and v7.0.0; `source_md5hash` is the newest, from 6.41).

The tests check every generated module against this table, everywhere, and the table against a
provider's own schema (`terraform providers schema -json`) where a mirror of that provider is on
the machine (hashicorp/aws here), so an argument stackc writes is known to exist.
"""

from __future__ import annotations

ARGUMENTS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "aws_iam_instance_profile": ["name_prefix", "role"],
    "aws_iam_role": ["assume_role_policy", "name_prefix"],
    "aws_iam_role_policy": ["name", "policy", "role"],
    "aws_instance": ["ami", "associate_public_ip_address", "ebs_optimized", "iam_instance_profile",
                     "instance_market_options", "instance_type", "metadata_options", "monitoring", "placement_group",
                     "private_ip", "root_block_device", "subnet_id", "tags", "user_data_base64", "vpc_security_group_ids"],
    "aws_instance.instance_market_options": ["market_type", "spot_options"],
    "aws_instance.instance_market_options.spot_options": ["instance_interruption_behavior", "spot_instance_type"],
    "aws_instance.metadata_options": ["http_endpoint", "http_put_response_hop_limit", "http_tokens"],
    "aws_instance.root_block_device": ["delete_on_termination", "encrypted", "kms_key_id", "volume_size", "volume_type"],
    "aws_internet_gateway": ["vpc_id"],
    "aws_kms_key": ["deletion_window_in_days", "description", "enable_key_rotation"],
    "aws_placement_group": ["name", "strategy"],
    "aws_route_table": ["route", "vpc_id"],
    "aws_route_table.route": ["cidr_block", "gateway_id"],
    "aws_route_table_association": ["route_table_id", "subnet_id"],
    "aws_s3_bucket": ["bucket_prefix", "force_destroy"],
    "aws_s3_bucket_public_access_block": ["block_public_acls", "block_public_policy", "bucket", "ignore_public_acls",
                                          "restrict_public_buckets"],
    "aws_s3_bucket_server_side_encryption_configuration": ["bucket", "rule"],
    "aws_s3_bucket_server_side_encryption_configuration.rule": ["apply_server_side_encryption_by_default"],
    "aws_s3_bucket_server_side_encryption_configuration.rule.apply_server_side_encryption_by_default":
        ["kms_master_key_id", "sse_algorithm"],
    "aws_s3_bucket_versioning": ["bucket", "versioning_configuration"],
    "aws_s3_bucket_versioning.versioning_configuration": ["status"],
    "aws_s3_object": ["bucket", "key", "kms_key_id", "source", "source_hash"],
    "aws_secretsmanager_secret": ["kms_key_id", "name_prefix", "recovery_window_in_days"],
    "aws_security_group": ["description", "name_prefix", "vpc_id"],
    "aws_subnet": ["availability_zone", "cidr_block", "vpc_id"],
    "aws_vpc": ["cidr_block", "enable_dns_hostnames", "tags"],
    "aws_vpc_security_group_egress_rule": ["cidr_ipv4", "description", "ip_protocol", "security_group_id"],
    "aws_vpc_security_group_ingress_rule": ["cidr_ipv4", "description", "from_port", "ip_protocol",
                                            "referenced_security_group_id", "security_group_id", "to_port"],
    "data.aws_ami": ["filter", "most_recent", "owners"],
    "data.aws_ami.filter": ["name", "values"],
    "data.aws_availability_zones": ["state"],
    "data.aws_iam_policy_document": ["statement"],
    "data.aws_iam_policy_document.statement": ["actions", "principals", "resources", "sid"],
    "data.aws_iam_policy_document.statement.principals": ["identifiers", "type"],
    "data.aws_subnet": ["id"],
    # hashicorp/google
    "data.google_compute_image": ["family", "project"],
    "data.google_compute_subnetwork": ["self_link"],
    "google_compute_firewall": ["allow", "description", "direction", "name", "network", "source_ranges", "source_tags",
                                "target_tags"],
    "google_compute_firewall.allow": ["ports", "protocol"],
    "google_compute_instance": ["allow_stopping_for_update", "boot_disk", "machine_type", "metadata", "name",
                                "network_interface", "resource_policies", "scheduling", "service_account",
                                "shielded_instance_config", "tags", "zone"],
    "google_compute_instance.boot_disk": ["initialize_params"],
    "google_compute_instance.boot_disk.initialize_params": ["image", "size", "type"],
    "google_compute_instance.network_interface": ["access_config", "network_ip", "subnetwork"],
    "google_compute_instance.network_interface.access_config": [],
    "google_compute_instance.scheduling": ["automatic_restart", "instance_termination_action", "on_host_maintenance",
                                           "preemptible", "provisioning_model"],
    "google_compute_instance.service_account": ["email", "scopes"],
    "google_compute_instance.shielded_instance_config": ["enable_integrity_monitoring", "enable_secure_boot", "enable_vtpm"],
    "google_compute_network": ["auto_create_subnetworks", "name"],
    "google_compute_resource_policy": ["group_placement_policy", "name", "region"],
    "google_compute_resource_policy.group_placement_policy": ["collocation", "vm_count"],
    "google_compute_subnetwork": ["ip_cidr_range", "log_config", "name", "network", "private_ip_google_access", "region"],
    "google_compute_subnetwork.log_config": ["aggregation_interval", "flow_sampling", "metadata"],
    "google_secret_manager_secret": ["replication", "secret_id"],
    "google_secret_manager_secret.replication": ["auto"],
    "google_secret_manager_secret.replication.auto": [],
    "google_secret_manager_secret_iam_member": ["member", "role", "secret_id"],
    "google_service_account": ["account_id", "display_name"],
    "google_storage_bucket": ["force_destroy", "location", "name", "public_access_prevention",
                              "uniform_bucket_level_access", "versioning"],
    "google_storage_bucket.versioning": ["enabled"],
    "google_storage_bucket_iam_member": ["bucket", "member", "role"],
    "google_storage_bucket_object": ["bucket", "name", "source", "source_md5hash"],
}.items()}
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "lifecycle", "provider"})
