"""Validates deploy/template.yaml offline.

1. Expands the SAM transform with aws-sam-translator, as CloudFormation
   would (CodeUri rewritten to an s3:// location, as `sam package` does).
2. Runs cfn-lint on the expanded template, which catches what cfn-lint
   misses on SAM resources (runtimes, batch sizes, event settings).
3. Checks Storytime's own rules: least privilege (no `*` or `service:*`
   actions), every SQS-triggered function reports partial batch failures,
   may change its messages' visibility, has reserved concurrency and caps
   its event source; every queue has a dead-letter queue with an alarm on
   it; the bucket is private and expires media; every function's log group
   has a retention; no function has a secret in a plain variable; a
   CloudFront distribution serves only links signed with a key group's key;
   a Cognito user pool's REST routes sit behind API Gateway's JWT authorizer.

Usage: python check_template.py deploy/template.yaml
"""

import json
import os
import subprocess
import sys
import tempfile

from cfnlint.decode import decode
from samtranslator.translator.transform import transform


# cfn-lint's command, beside this interpreter in the virtualenv.
CFN_LINT = os.path.join(os.path.dirname(sys.executable), "cfn-lint")


class NoManagedPolicies:
    """The template names no AWS managed policies; nothing to look up."""

    def load(self):
        return {}


# Settings that are secrets: never in a function's plain environment.
SECRETS = (
    "SLACK_SIGNING_SECRET",
    "SLACK_SIGNING_SECRET_PREVIOUS",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_SECRET",
    "STORYTIME_API_KEYS",
    "STORYTIME_MEDIA_SECRET",
    "STORYTIME_METRICS_TOKEN",
    "STORYTIME_CDN_PRIVATE_KEY",
)


def problem(message, problems):
    problems.append(message)


def expand(path):
    template, matches = decode(path)
    if matches:
        for m in matches:
            print(m, file=sys.stderr)
        sys.exit(1)
    template = json.loads(json.dumps(template, default=str))
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://storytime-artifacts/storytime.zip"
    template["Globals"]["Function"].pop("CodeUri", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(template, {}, NoManagedPolicies())


def actions(statement):
    found = statement.get("Action", [])
    return [found] if isinstance(found, str) else found


def check_rules(expanded, problems):
    resources = expanded["Resources"]
    for name, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        policies = []
        if kind == "AWS::IAM::Role":
            policies = [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        for document in policies:
            for statement in document.get("Statement", []):
                for action in actions(statement):
                    if not isinstance(action, str) or action == "*" or action.endswith(":*"):
                        problem(f"{name}: action {action!r} is not least privilege", problems)
        if kind == "AWS::Lambda::EventSourceMapping":
            if "ReportBatchItemFailures" not in props.get("FunctionResponseTypes", []):
                problem(f"{name}: SQS batches must report partial failures", problems)
        if kind == "AWS::SQS::Queue" and not name.endswith("Dlq"):
            if "RedrivePolicy" not in props:
                problem(f"{name}: a queue needs a dead-letter queue", problems)
            dlq = name[: -len("Queue")] + "Dlq"
            if dlq + "Alarm" not in resources:
                problem(f"{name}: its dead-letter queue {dlq} needs an alarm", problems)
        if kind == "AWS::S3::Bucket":
            block = props.get("PublicAccessBlockConfiguration", {})
            if not all(block.get(k) for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")):
                problem(f"{name}: public access must be blocked", problems)
            rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
            if not any(r.get("Status") == "Enabled" and "ExpirationInDays" in r for r in rules):
                problem(f"{name}: media must expire (a lifecycle rule)", problems)
            # Photos sent to /uploads links are announced on the inbound
            # queue, which must let S3 send to it.
            announced = [
                q for q in props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
                if q.get("Queue", {}).get("Fn::GetAtt", [None])[0] == "InboundQueue"
                and {"Name": "prefix", "Value": "incoming/"} in q.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            ]
            if not announced:
                problem(f"{name}: new objects under incoming/ must be announced on InboundQueue", problems)
            senders = [
                s for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"
                and {"Ref": "InboundQueue"} in r["Properties"].get("Queues", [])
                for s in r["Properties"].get("PolicyDocument", {}).get("Statement", [])
                if s.get("Principal") == {"Service": "s3.amazonaws.com"} and "sqs:SendMessage" in actions(s)
                and "aws:SourceAccount" in json.dumps(s.get("Condition"))
            ]
            if not senders:
                problem("InboundQueue: its policy must let this account's S3 send to it", problems)
            if resource.get("DependsOn") != "InboundQueueUploadsPolicy":
                problem(f"{name}: must be created after the queue policy S3 checks", problems)
        if kind == "AWS::Lambda::EventSourceMapping":
            function = props.get("FunctionName", {}).get("Ref")
            queue = props.get("EventSourceArn", {}).get("Fn::GetAtt", [None])[0]
            if "MaximumConcurrency" not in props.get("ScalingConfig", {}):
                problem(f"{name}: the event source must cap its concurrency", problems)
            if function and queue:
                role = resources.get(function, {}).get("Properties", {}).get("Role", {}).get("Fn::GetAtt", [None])[0]
                granted = [
                    s
                    for p in resources.get(role, {}).get("Properties", {}).get("Policies", [])
                    for s in p.get("PolicyDocument", {}).get("Statement", [])
                    if "sqs:ChangeMessageVisibility" in actions(s)
                ]
                if not any(queue in json.dumps(s.get("Resource")) for s in granted):
                    problem(f"{function}: may not change the visibility of {queue}'s messages", problems)
                if "ReservedConcurrentExecutions" not in resources.get(function, {}).get("Properties", {}):
                    problem(f"{function}: needs reserved concurrency", problems)
        if kind == "AWS::CloudFront::Distribution":
            config = props.get("DistributionConfig", {})
            behaviors = [config.get("DefaultCacheBehavior", {})] + config.get("CacheBehaviors", [])
            for behavior in behaviors:
                groups = behavior.get("TrustedKeyGroups")
                if not isinstance(groups, list) or not groups:
                    problem(f"{name}: every cache behavior must serve only signed links (TrustedKeyGroups)", problems)
        if kind == "AWS::Lambda::Function":
            variables = props.get("Environment", {}).get("Variables", {})
            for secret in SECRETS:
                if secret in variables:
                    problem(f"{name}: {secret} must come from Secrets Manager (STORYTIME_SECRETS), not a variable", problems)
            groups = [
                r for r in resources.values()
                if r["Type"] == "AWS::Logs::LogGroup" and name in json.dumps(r["Properties"].get("LogGroupName"))
            ]
            if not any("RetentionInDays" in g["Properties"] for g in groups):
                problem(f"{name}: its log group needs a retention", problems)


# The REST routes a user pool's users call, each behind the JWT authorizer.
REST_ROUTES = {"POST /upload", "POST /uploads", "GET /retrieve", "POST /bulk", "GET /bulk"}


def check_user_pool(resources, problems):
    """A user pool's tokens are checked by API Gateway before any function
    runs: a JWT authorizer trusting the pool (issuer) and its app client
    (audience) on every REST route of an API that may invoke the function."""
    pools = [n for n, r in resources.items() if r["Type"] == "AWS::Cognito::UserPool"]
    clients = [n for n, r in resources.items() if r["Type"] == "AWS::Cognito::UserPoolClient"]
    for pool in pools:
        authorizers = {
            n: r["Properties"] for n, r in resources.items()
            if r["Type"] == "AWS::ApiGatewayV2::Authorizer"
            and r["Properties"].get("AuthorizerType") == "JWT"
            and f"${{{pool}}}" in json.dumps(r["Properties"].get("JwtConfiguration", {}).get("Issuer"))
            and any({"Ref": c} in r["Properties"]["JwtConfiguration"].get("Audience", []) for c in clients)
        }
        if not authorizers:
            problem(f"{pool}: no JWT authorizer trusts the pool and its app client", problems)
            continue
        for name, authorizer in authorizers.items():
            api = authorizer["ApiId"]
            routes = {
                r["Properties"]["RouteKey"]: r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"].get("ApiId") == api
            }
            for key in sorted(REST_ROUTES):
                route = routes.get(key)
                if route is None:
                    problem(f"{name}: its API has no route {key}", problems)
                elif route.get("AuthorizationType") != "JWT" or route.get("AuthorizerId") != {"Ref": name}:
                    problem(f"{name}: route {key} is not behind the JWT authorizer", problems)
            invokable = any(
                r["Type"] == "AWS::Lambda::Permission"
                and r["Properties"].get("Principal") == "apigateway.amazonaws.com"
                and f"${{{api['Ref']}}}" in json.dumps(r["Properties"].get("SourceArn"))
                for r in resources.values()
            )
            if not invokable:
                problem(f"{name}: API Gateway may not invoke the function behind its API", problems)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "deploy/template.yaml"
    expanded = expand(path)
    problems = []
    check_rules(expanded, problems)
    check_user_pool(expanded["Resources"], problems)
    functions = [n for n, r in expanded["Resources"].items() if r["Type"] == "AWS::Lambda::Function"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(expanded, out, indent=1)
    # W3037: SAM's own SQS poller policy names batch actions cfn-lint does not know.
    lint = subprocess.run(
        [CFN_LINT, "--ignore-checks", "W3037", "--", out.name],
        capture_output=True,
        text=True,
    )
    os.unlink(out.name)
    if lint.returncode != 0:
        problems.append("cfn-lint on the expanded template:\n" + lint.stdout + lint.stderr)
    raw = subprocess.run(
        [CFN_LINT, "--ignore-checks", "W3037", "--", path], capture_output=True, text=True
    )
    if raw.returncode != 0:
        problems.append("cfn-lint on the template:\n" + raw.stdout + raw.stderr)
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{path}: valid ({len(functions)} functions, {len(expanded['Resources'])} resources once expanded)")


if __name__ == "__main__":
    main()
