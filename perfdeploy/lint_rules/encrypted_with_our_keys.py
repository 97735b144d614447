from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import resources

# Resource type -> the property path that must name our KMS key (not an AWS-managed alias).
KMS_PROPERTIES = {
    "AWS::DynamoDB::Table": ("SSESpecification", "KMSMasterKeyId"),
    "AWS::Logs::LogGroup": ("KmsKeyId",),
    "AWS::SecretsManager::Secret": ("KmsKeyId",),
    "AWS::SNS::Topic": ("KmsMasterKeyId",),
    "AWS::SQS::Queue": ("KmsMasterKeyId",),
    "AWS::MSK::Cluster": ("EncryptionInfo", "EncryptionAtRest", "DataVolumeKMSKeyId"),
    "AWS::ElastiCache::ReplicationGroup": ("KmsKeyId",),
    "AWS::ECR::Repository": ("EncryptionConfiguration", "KmsKey"),
    "AWS::Backup::BackupVault": ("EncryptionKeyArn",),
}


def _get(props, path):
    for part in path:
        if not isinstance(props, dict) or part not in props:
            return None
        props = props[part]
    return props


def _alb_log_buckets(template) -> set:
    """Buckets an ALB writes access logs to: ALB log delivery accepts only SSE-S3 (AES256)."""
    found = set()
    for _, rtype, props, _ in resources(template):
        if rtype != "AWS::ElasticLoadBalancingV2::LoadBalancer":
            continue
        for attr in props.get("LoadBalancerAttributes", []) or []:
            if isinstance(attr, dict) and attr.get("Key") == "access_logs.s3.bucket":
                value = attr.get("Value")
                if isinstance(value, dict) and "Ref" in value:
                    found.add(value["Ref"])
    return found


class EncryptedWithOurKeys(CloudFormationLintRule):
    """Data at rest is encrypted with the environment's own KMS keys wherever the service supports it."""

    id = "E9102"
    shortdesc = "Encryption with our KMS keys"
    description = ("Tables, log groups, secrets, topics, Kafka, Redis, repositories, backup vaults and buckets "
                   "are encrypted with a customer-managed key (ALB access-log buckets: SSE-S3, the only kind "
                   "ALB log delivery accepts)")
    source_url = "https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#customer-cmk"
    tags = ["perfdeploy", "encryption"]

    def match(self, cfn):
        matches = []
        alb_buckets = _alb_log_buckets(cfn.template)
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype == "AWS::S3::Bucket":
                matches += self._bucket(lid, props, lid in alb_buckets)
                continue
            path = KMS_PROPERTIES.get(rtype)
            if path is None:
                continue
            value = _get(props, path)
            if value is None:
                matches.append(RuleMatch(["Resources", lid, "Properties"],
                                         f"{lid} ({rtype}) must set {'.'.join(path)} to one of our KMS keys"))
            elif isinstance(value, str) and value.startswith("alias/aws/"):
                matches.append(RuleMatch(["Resources", lid, "Properties", *path],
                                         f"{lid} uses the AWS-managed key {value}; use one of ours"))
        return matches

    def _bucket(self, lid, props, alb_logs):
        rules = _get(props, ("BucketEncryption", "ServerSideEncryptionConfiguration")) or []
        algorithms = [_get(r, ("ServerSideEncryptionByDefault", "SSEAlgorithm")) for r in rules]
        if alb_logs:
            if algorithms != ["AES256"]:
                return [RuleMatch(["Resources", lid], f"{lid} receives ALB access logs: it must use SSE-S3 "
                                  "(AES256), the only encryption ALB log delivery accepts")]
            return []
        if "aws:kms" not in algorithms or not any(
                _get(r, ("ServerSideEncryptionByDefault", "KMSMasterKeyID")) for r in rules):
            return [RuleMatch(["Resources", lid], f"{lid} must be encrypted with aws:kms and one of our keys")]
        return []
