"""Prints, as JSON, the IAM actions each function's role allows once SAM
has expanded deploy/template.yaml: {"<Handler>": ["service:Action", ...]}.
The permission test compares them with the calls each function makes.

Usage: python role_actions.py deploy/template.yaml
"""

import json
import sys

from check_template import actions, expand

# What the AWS managed policies SAM attaches allow (AWS's documents).
MANAGED = {
    "AWSLambdaBasicExecutionRole": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "AWSLambdaSQSQueueExecutionRole": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "deploy/template.yaml"
    resources = expand(path)["Resources"]
    out = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        role = resources[props["Role"]["Fn::GetAtt"][0]]["Properties"]
        allowed = set()
        for policy in role.get("Policies", []):
            for statement in policy["PolicyDocument"].get("Statement", []):
                if statement.get("Effect") == "Allow":
                    allowed.update(a for a in actions(statement) if isinstance(a, str))
        for arn in role.get("ManagedPolicyArns", []):
            name = json.dumps(arn).rsplit("/", 1)[-1].strip('"}] ')
            allowed.update(MANAGED.get(name, []))
        out[props["Handler"]] = sorted(allowed)
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
