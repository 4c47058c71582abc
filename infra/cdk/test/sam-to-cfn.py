"""Expand infra/template.yaml (SAM) into plain CloudFormation with the AWS SAM
translator (the library `sam build`/`sam deploy` and cfn-lint use), offline, and print
it as JSON: the SAM side of the SAM/CDK comparison (test/compare.test.mjs)."""

import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class ManagedPolicies:
    """Offline stand-in for IAM's list of AWS managed policies: ARNs by name."""

    def load(self):
        return {}

    def __getitem__(self, name):
        return f"arn:aws:iam::aws:policy/service-role/{name}"

    def get(self, name, default=None):
        return self[name]


def main(path):
    # The translator asks boto for a region; nothing is called.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # As `sam package` would: local code becomes an S3 object (named by its binary).
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", "code")
            resource.setdefault("Properties", {})["CodeUri"] = f"s3://code/{binary}"
    try:
        out = transform(template, {}, ManagedPolicies(), passthrough_metadata=True)
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(cause.message, file=sys.stderr)
        sys.exit(1)
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
